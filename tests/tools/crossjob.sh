#!/bin/bash
# Cross-job proxy identity (ctest mpi.store.crossjob): two separate mpiexec
# runs pass a proxy through a file; the second job's store must refuse it
# (PXS_ERR_STALE), and a version 1 text proxy is refused (PXS_ERR_CORRUPT).
# usage: crossjob.sh EXE MPIEXEC NPFLAG [mpiexec flags...]
set -eu
exe=$1 mpiexec=$2 npflag=$3
shift 3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run() { # np args...
    local np=$1
    shift
    "$mpiexec" "$npflag" "$np" "$@"
}
# rma connector, 2 ranks per job
run 2 "$@" "$exe" write rma "$dir/rma.txt"
grep -q '^pxs2:' "$dir/rma.txt"
run 2 "$@" "$exe" read rma "$dir/rma.txt"
# local connector, one process per job
run 1 "$@" "$exe" write local "$dir/local.txt"
run 1 "$@" "$exe" read local "$dir/local.txt"
# a proxy written by the 0.1 library (format version 1)
echo 'pxs1:010200000100000003000000000000000010000000000000000001000000000007000000000000000100000000000000000000000100000000000000485fcc5f' >"$dir/v1.txt"
run 2 "$@" "$exe" v1 "$dir/v1.txt"
echo "crossjob: OK"
