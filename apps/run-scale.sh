#!/bin/bash
# Sweeps pxs-bench-scale (apps/pxs-bench-scale.c) over the number of ranks (docs/DESIGN.md
# "Scale model"): oversubscribed on this node under each osc component, and
# across two emulated nodes (tests/tools/fakenodes.sh). Writes one JSON line
# per measurement (plus a "run" field: osc or 2node.osc) to $OUT (default
# scale.jsonl) and human tables to stdout; then plot with
#   /usr/bin/python3 apps/scale-plot.py scale.jsonl [outdir]
# usage: apps/run-scale.sh [build-dir]
# Env: PXS_SCALE_RANKS (default "2 4 8 16"; up to 64 when the machine is
#      free, e.g. "2 4 8 16 32 64"), PXS_SCALE_OSC (default "sm rdma"),
#      PXS_SCALE_2NODE_OSC (default "ucx"; empty: no two-node runs),
#      PXS_SCALE_EVENTS (default 1000 per producer), PXS_SCALE_BATCHES
#      ("1 16"), PXS_SCALE_TIMEOUT (s per run, default 300),
#      PXS_SCALE_2NODE_RANKS (default: PXS_SCALE_RANKS), PXS_SCALE_2NODE_EVENTS
#      (default 50: under osc ucx/pt2pt every operation on a window waits for
#      its owner to enter MPI, and with 32 ranks on 2 cores that is a
#      scheduler round, about 3 ms: 55 ms per many-to-one event at 32 ranks,
#      so 1000 events per producer would take half an hour; the counters per
#      event need few events).
# "UCX WARN disconnect failed: Endpoint timeout" at the end of a two-node
# osc ucx run is Open MPI's finalize (a bare window, one atomic per peer and
# MPI_Finalize print it too, from 8 ranks on): harmless, exit status 0.
# Times on an oversubscribed node mostly measure the scheduler: read the
# per-event counters (atomics, flushes, bytes, probes) next to them.
# PXS_SHM defaults to 0 here: the counters count MPI operations, and the MPI
# rings are what a real interconnect uses (on one node the node ring makes
# same-node appends MPI-free: docs/DESIGN.md "Node ring"). PXS_SHM=1 measures
# the node-local path instead.
set -u
export PXS_SHM=${PXS_SHM:-0}
build=${1:-build}
OUT=${OUT:-scale.jsonl}
RANKS=${PXS_SCALE_RANKS:-2 4 8 16}
OSCS=${PXS_SCALE_OSC:-sm rdma}
OSC2=${PXS_SCALE_2NODE_OSC-ucx}
EV=${PXS_SCALE_EVENTS:-1000}
BATCHES=${PXS_SCALE_BATCHES:-1 16}
TMO=${PXS_SCALE_TIMEOUT:-300}
RANKS2=${PXS_SCALE_2NODE_RANKS:-$RANKS}
EV2=${PXS_SCALE_2NODE_EVENTS:-50}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
here=$(cd "$(dirname "$0")/.." && pwd)
fake=$here/tests/tools/fakenodes.sh
bin=$build/apps/pxs-bench-scale
[ -x "$bin" ] || { echo "run-scale.sh: $bin not built" >&2; exit 2; }
: > "$OUT"
status=0
run() { # label, command...
    local label=$1; shift
    echo "## $label: $*"
    local tmp
    tmp=$(mktemp)
    timeout "$TMO" "$@" --json >"$tmp" 2>/tmp/scale-run-stderr.log || {
        echo "## $label: exit $? (stderr in /tmp/scale-run-stderr.log)"; status=1; }
    # only the benchmark's lines (a transport may print warnings on stdout)
    grep '^{"bench"' "$tmp" | sed "s/^{/{\"run\":\"$label\",/" | tee -a "$OUT"
    rm -f "$tmp"
}
uptime
for osc in $OSCS; do
    for n in $RANKS; do
        for k in $BATCHES; do
            cases=many-to-one,one-to-many,group
            # create/destroy do not depend on the batch: once per n
            [ "$k" = "$(echo $BATCHES | cut -d' ' -f1)" ] && cases=create,destroy,$cases
            OMPI_MCA_osc=$osc run "$osc.b$k" mpirun --oversubscribe -n "$n" "$bin" \
                --events "$EV" --batch "$k" --reps 3 --cases "$cases"
        done
    done
done
for osc in $OSC2; do
    for n in $RANKS2; do
        [ $((n % 2)) = 0 ] || continue
        FAKENODES_PPN=$((n / 2)) FAKENODES_TIMEOUT=$TMO run "2node.$osc.b1" "$fake" -np "$n" \
            --oversubscribe --mca osc "$osc" "$bin" --events "$EV2" --batch 1 --reps 3
    done
done
uptime
exit $status
