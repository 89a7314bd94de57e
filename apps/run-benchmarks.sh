#!/bin/bash
# Runs every benchmark the way docs/BENCHMARKS.md quotes them; writes one JSON
# line per measurement (plus a "run" field) to $OUT (default bench.jsonl),
# human tables to stdout. Repeats each run R times (default 3): report the
# medians of the ratios.   usage: apps/run-benchmarks.sh [build-dir]
set -u
build=${1:-build}
R=${PXS_BENCH_REPEATS:-3}
OUT=${OUT:-bench.jsonl}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
here=$(cd "$(dirname "$0")/.." && pwd)
fake=$here/tests/tools/fakenodes.sh
: > "$OUT"
run() { # label, command...
    local label=$1; shift
    for r in $(seq 1 "$R"); do
        echo "## $label (run $r): $*"
        "$@" --json 2>/dev/null | sed "s/^{/{\"run\":\"$label\",/" | tee -a "$OUT"
    done
}
for osc in sm rdma ucx; do
    export OMPI_MCA_osc=$osc
    run "events.$osc.n2" mpirun -n 2 "$build/apps/pxs-bench-events"
    run "events.$osc.n5" mpirun --oversubscribe -n 5 "$build/apps/pxs-bench-events" \
        $([ $osc = ucx ] && echo --events 2000 --iters 500)
    run "store.$osc.n2" mpirun -n 2 "$build/apps/pxs-bench-store" --max-size 256M
    run "pipeline.$osc.n4" mpirun --oversubscribe -n 4 "$build/apps/pxs-bench-pipeline" --repeats 3
done
unset OMPI_MCA_osc
# HDF5 connector vs raw write()/pread() (only in HDF5 builds)
if [ -x "$build/apps/pxs-bench-hdf5" ]; then
    run "store-hdf5.n1" mpirun -n 1 "$build/apps/pxs-bench-hdf5" --max-size 16M --mib 256
fi
for osc in pt2pt ucx; do
    run "store.2node.$osc" "$fake" -np 2 --mca osc $osc "$build/apps/pxs-bench-store" \
        --max-size 16M --mib-per-sample 16
    FAKENODES_PPN=2 run "pipeline.2node.$osc" "$fake" -np 4 --oversubscribe --mca osc $osc \
        "$build/apps/pxs-bench-pipeline" --repeats 3 --scale 0.25
done
