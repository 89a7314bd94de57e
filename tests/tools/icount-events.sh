#!/bin/sh
# Instructions per event on the event path (callgrind; repeatable under load).
# usage: tests/tools/icount-events.sh BUILD_DIR [N [BATCH]]   (env passes through,
# e.g. PXS_INLINE_MAX=2K). Prints send-b1, recv-b1, stream-1KiB instructions/event;
# with BATCH > 1, send and recv at that batch (no stream line).
set -e
B=${1:?build dir}
N=${2:-500}
BATCH=${3:-1}
D=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mpicc -O2 -I"$D/../../include" -I"$B" "$D/icount-events.c" -o "$T/icount-events" \
    -L"$B" -lproxystream -Wl,-rpath,"$(cd "$B" && pwd)"
OMPI_MCA_osc=${OMPI_MCA_osc-} valgrind --tool=callgrind --collect-atstart=no \
    --toggle-collect=phase_send --toggle-collect=phase_recv --toggle-collect=phase_stream \
    --callgrind-out-file="$T/cg.out" "$T/icount-events" "$N" "$BATCH" >"$T/log" 2>&1 || {
    cat "$T/log"
    exit 1
}
callgrind_annotate --inclusive=yes "$T/cg.out" 2>/dev/null |
    awk -v n="$N" '/phase_(send|recv|stream) /{
        gsub(",", "", $1); name=$0; sub(/.*phase_/, "", name); sub(/ .*/, "", name);
        printf "%-7s %8.0f instructions/event\n", name, $1 / n }'
