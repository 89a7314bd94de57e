#!/bin/bash
# Runs every benchmark the way docs/BENCHMARKS.md quotes them, under Open
# MPI's DEFAULT one-sided component (OMPI_MCA_osc unset: what a user gets)
# and under osc sm, rdma and ucx; writes every JSON line to one file, each
# prefixed with "run" (label), "component" and "np" fields, human-readable
# progress to stdout and each program's stderr (the quiet-check lines) to
# stdout and to $OUT.log.
#
#   usage: apps/run-benchmarks.sh [--quick] [build-dir]      (build-dir: build)
#   then:  apps/bench-summary.py bench.jsonl                  (targets table, plots)
#
# Every program checks that the machine is quiet before it starts, alternates
# ours and its baselines sample by sample and reports medians of --reps
# samples (apps/common/app_common.h, app_bench_init). Environment:
#   OUT                   output file (default bench.jsonl)
#   PXS_BENCH_COMPONENTS  components to run (default "default sm rdma ucx")
#   PXS_BENCH_REPS        samples per median (default 5), read by the programs
#   PXS_BENCH_QUIET_BUSY, PXS_BENCH_QUIET_WAIT  the quiet check (programs)
#   PXS_BENCH_RUNS        runs of each program (default 1)
# --quick: a smoke run (under 10 s per component on an idle 2-core machine): small
# sizes, 2 ranks for events, no oversubscribed and no two-node runs, no
# waiting for quiet (unless PXS_BENCH_QUIET_WAIT says otherwise). Its figures
# show that every case runs; they are not results.
set -u
quick=0
if [ "${1:-}" = --quick ]; then
    quick=1
    shift
fi
build=${1:-build}
R=${PXS_BENCH_RUNS:-1}
OUT=${OUT:-bench.jsonl}
LOG=$OUT.log
COMPONENTS=${PXS_BENCH_COMPONENTS:-default sm rdma ucx}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
here=$(cd "$(dirname "$0")/.." && pwd)
fake=$here/tests/tools/fakenodes.sh
for p in pxs-bench-events pxs-bench-store pxs-bench-pipeline; do
    if [ ! -x "$build/apps/$p" ]; then
        echo "run-benchmarks: $build/apps/$p not found (build first, or pass the build dir)" >&2
        exit 2
    fi
done
Q=()
[ $quick = 1 ] && Q=(--quick)
: > "$OUT"
: > "$LOG"
status=0
run() { # label component np command...
    local label=$1 comp=$2 np=$3
    shift 3
    for r in $(seq 1 "$R"); do
        echo "## $label (run $r): $*" | tee -a "$LOG"
        "$@" --json "${Q[@]}" 2> >(tee -a "$LOG" >&2) |
            sed "s/^{/{\"run\":\"$label\",\"component\":\"$comp\",\"np\":$np,/" | tee -a "$OUT"
        local rc=${PIPESTATUS[0]}
        if [ "$rc" != 0 ]; then
            echo "## $label: exit status $rc" | tee -a "$LOG"
            status=1
        fi
    done
}
for comp in $COMPONENTS; do
    if [ "$comp" = default ]; then
        unset OMPI_MCA_osc
    else
        export OMPI_MCA_osc=$comp
    fi
    run "events.$comp.n2" "$comp" 2 mpirun -n 2 "$build/apps/pxs-bench-events"
    if [ $quick = 0 ]; then
        run "events.$comp.n5" "$comp" 5 mpirun --oversubscribe -n 5 "$build/apps/pxs-bench-events" \
            $([ "$comp" = ucx ] && echo --events 2000 --iters 500)
        run "store.$comp.n2" "$comp" 2 mpirun -n 2 "$build/apps/pxs-bench-store" --max-size 256M
    else
        run "store.$comp.n2" "$comp" 2 mpirun -n 2 "$build/apps/pxs-bench-store"
    fi
    run "pipeline.$comp.n4" "$comp" 4 mpirun --oversubscribe -n 4 "$build/apps/pxs-bench-pipeline"
done
unset OMPI_MCA_osc
# HDF5 connector vs raw write()/pread() (only in HDF5 builds; no osc involved)
if [ -x "$build/apps/pxs-bench-hdf5" ]; then
    if [ $quick = 0 ]; then
        run "store-hdf5.n1" none 1 mpirun -n 1 "$build/apps/pxs-bench-hdf5" --max-size 16M --mib 256
    else
        run "store-hdf5.n1" none 1 mpirun -n 1 "$build/apps/pxs-bench-hdf5"
    fi
fi
if [ $quick = 0 ]; then
    for osc in pt2pt ucx; do
        run "store.2node.$osc" "2node-$osc" 2 "$fake" -np 2 --mca osc $osc \
            "$build/apps/pxs-bench-store" --max-size 16M --mib-per-sample 16
        FAKENODES_PPN=2 run "pipeline.2node.$osc" "2node-$osc" 4 "$fake" -np 4 --oversubscribe \
            --mca osc $osc "$build/apps/pxs-bench-pipeline" --scale 0.25
    done
fi
echo "## JSON lines: $OUT; quiet checks and errors: $LOG"
exit $status
