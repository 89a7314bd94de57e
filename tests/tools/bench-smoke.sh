#!/bin/bash
# bench-smoke.sh - smoke tests of the benchmark programs (tests/bench.cmake):
# they run, print the JSON fields the tools read (busy, reps, the case names
# the targets table needs), honour the quiet-check options and refuse bad
# ones. Never asserts a timing or a speed.
#
#   bench-smoke.sh CASE BUILD_DIR SOURCE_DIR
#   CASE: events | notquiet | badopts | store | oscprobe | pipeline | hdf5 | script
# Env: BENCH_MPIEXEC (default "mpiexec --oversubscribe"), the launcher.
# Exit status: 0 pass, 1 fail (with the reason on stderr).
set -u
case_=$1
build=$2
src=$3
MPI=(${BENCH_MPIEXEC:-mpiexec --oversubscribe})
PY=/usr/bin/python3
W=$(mktemp -d /tmp/bench-smoke.XXXXXX) || exit 1
trap 'rm -rf "$W"' EXIT
fail() {
    echo "bench-smoke $case_: FAIL: $*" >&2
    for f in "$W"/out "$W"/err; do [ -s "$f" ] && { echo "--- $f" >&2; tail -30 "$f" >&2; }; done
    exit 1
}

# check_json FILE REPS CASE... : every line is JSON with the old keys plus
# busy (-1 or 0..1) and reps (== REPS), ours and baseline > 0; every CASE occurs
check_json() {
    "$PY" - "$@" <<'EOF'
import json, sys
path, reps, cases = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
seen = set()
keys = ("bench", "case", "ranks", "size", "ours", "baseline", "baseline_name", "unit",
        "ratio", "busy", "reps")
n = 0
for line in open(path):
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    n += 1
    for k in keys:
        if k not in d:
            sys.exit("line %d: no %r: %s" % (n, k, line))
    if d["reps"] != reps:
        sys.exit("line %d: reps %r, expected %d" % (n, d["reps"], reps))
    if not (d["busy"] == -1 or 0 <= d["busy"] <= 1):
        sys.exit("line %d: busy %r out of range" % (n, d["busy"]))
    if not (d["ours"] > 0 and d["baseline"] > 0 and d["ratio"] > 0):
        sys.exit("line %d: a figure is not positive: %s" % (n, line))
    seen.add(d["case"])
missing = [c for c in cases if c not in seen]
if missing:
    sys.exit("cases missing: %s (seen: %s)" % (missing, sorted(seen)))
if n == 0:
    sys.exit("no JSON lines")
EOF
}

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset PXS_BENCH_REPS PXS_BENCH_QUIET_BUSY PXS_BENCH_QUIET_WAIT
A=$build/apps
case $case_ in
events)
    "${MPI[@]}" -n 2 "$A/pxs-bench-events" --quick --json --reps 2 --iters 50 --events 500 \
        >"$W/out" 2>"$W/err" || fail "exit status $?"
    check_json "$W/out" 2 latency.1to1.b1 latency.1to1.b32 latency-vs-shm.1to1.b1 \
        latency-vs-shm.1to1.b32 throughput.1to1.b1 throughput.1to1.b32 || fail "JSON"
    grep -q "quiet check: " "$W/err" || fail "no quiet-check line on stderr"
    # table mode: the quiet check as a comment line on stdout
    "${MPI[@]}" -n 2 "$A/pxs-bench-events" --quick --reps 1 --iters 20 --events 100 \
        >"$W/out" 2>"$W/err" || fail "exit status $? (table)"
    grep -q "^# quiet check: CPU busy .*1 reps per median" "$W/out" || fail "table comment"
    grep -q "^latency-vs-shm.1to1.b1 " "$W/out" || fail "table row"
    ;;
notquiet)
    # threshold 0: never quiet; the wait is bounded (1 s), then it runs anyway
    PXS_BENCH_QUIET_BUSY=0 PXS_BENCH_QUIET_WAIT=1 "${MPI[@]}" -n 2 "$A/pxs-bench-events" \
        --json --reps 1 --iters 20 --events 100 >"$W/out" 2>"$W/err" || fail "exit status $?"
    grep -q "machine NOT quiet: CPU busy [0-9.]*% (threshold 0%) after waiting [0-9.]* s (limit 1 s); running anyway" \
        "$W/err" || fail "no NOT-quiet message"
    waited=$(sed -n 's/.*after waiting \([0-9.]*\) s.*/\1/p' "$W/err" | head -1)
    "$PY" -c "import sys; sys.exit(0 if float('$waited') >= 1.0 else 1)" ||
        fail "gave up after $waited s, before the 1 s limit"
    check_json "$W/out" 1 latency.1to1.b1 || fail "JSON after a wait"
    # the option wins over the environment
    PXS_BENCH_QUIET_BUSY=0 PXS_BENCH_QUIET_WAIT=1 "${MPI[@]}" -n 2 "$A/pxs-bench-events" \
        --quiet-wait 0 --json --reps 1 --iters 20 --events 100 >"$W/out" 2>"$W/err" ||
        fail "exit status $? (--quiet-wait 0)"
    grep -q "(limit 0 s); running anyway" "$W/err" || fail "--quiet-wait 0 did not win over the env"
    # a threshold of 1: quiet at the first sample, however busy
    "${MPI[@]}" -n 2 "$A/pxs-bench-events" --quiet-busy 1 --quiet-wait 5 --json --reps 1 \
        --iters 20 --events 100 >"$W/out" 2>"$W/err" || fail "exit status $? (--quiet-busy 1)"
    grep -q "quiet check: CPU busy [0-9.]*% (quiet: < 100%) after [0-9.]* s; running" "$W/err" ||
        fail "--quiet-busy 1 was not quiet at the first sample"
    ;;
badopts)
    # every bad value (on events; one each on the others, which share the
    # parser): exit status 2, a message naming the option, no measurement
    all=("--reps 0" "--reps 2x" "--repeats -3" "--quiet-busy 1.5" "--quiet-wait -1"
        "env:PXS_BENCH_REPS=0" "env:PXS_BENCH_QUIET_BUSY=x" "env:PXS_BENCH_QUIET_WAIT=-2")
    for prog in pxs-bench-events pxs-bench-store pxs-bench-pipeline; do
        np=2
        [ $prog = pxs-bench-pipeline ] && np=4
        list=("${all[@]}")
        [ $prog = pxs-bench-store ] && list=("--reps 1001")
        [ $prog = pxs-bench-pipeline ] && list=("env:PXS_BENCH_QUIET_WAIT=soon")
        for bad in "${list[@]}"; do
            envs=()
            args=()
            case $bad in
            env:*) envs=("${bad#env:}") ;;
            *) args=($bad) ;;
            esac
            env "${envs[@]}" "${MPI[@]}" -n $np "$A/$prog" --json "${args[@]}" >"$W/out" 2>"$W/err"
            rc=$?
            [ $rc = 2 ] || fail "$prog $bad: exit status $rc, expected 2"
            opt=${bad%% *}
            case $opt in
            env:PXS_BENCH_REPS=*) want="--reps (PXS_BENCH_REPS)" ;;
            env:PXS_BENCH_QUIET_BUSY=*) want="--quiet-busy (PXS_BENCH_QUIET_BUSY)" ;;
            env:PXS_BENCH_QUIET_WAIT=*) want="--quiet-wait (PXS_BENCH_QUIET_WAIT)" ;;
            --repeats) want="--reps (PXS_BENCH_REPS)" ;;
            *) want="$opt (" ;;
            esac
            grep -qF "$prog: bad option: $want" "$W/err" || fail "$prog $bad: no message naming $want"
            grep -q '^{' "$W/out" && fail "$prog $bad: measured anyway"
        done
    done
    ;;
store)
    "${MPI[@]}" -n 2 "$A/pxs-bench-store" --quick --json --reps 2 --max-size 64K \
        --mib-per-sample 1 >"$W/out" 2>"$W/err" || fail "exit status $?"
    check_json "$W/out" 2 resolve-same-node-GB/s resolve-same-node-lat-us \
        resolve-same-node-aligned-GB/s resolve-remote-GB/s resolve-remote-lat-us \
        resolve-remote-aligned-GB/s resolve-remote-vs-limit-GB/s \
        resolve-remote-aligned-vs-limit-GB/s raw-get-unaligned-vs-aligned-GB/s put-GB/s ||
        fail "JSON"
    ;;
oscprobe)
    # pxs-osc-probe under each component: every operation's line, a number
    for osc in sm rdma ucx; do
        OMPI_MCA_osc=$osc "${MPI[@]}" -n 2 "$A/pxs-osc-probe" --iters 20 --reps 1 --size 4096 \
            >"$W/out" 2>"$W/err" || fail "$osc: exit status $?"
        for op in fetch_and_op-sum+flush fetch_and_op-sum fetch_and_op-no_op+flush \
            fetch_and_op-replace+flush accumulate-sum+flush get_accumulate-no_op+flush \
            get-24B+flush flush-idle get-bulk+flush resolve-sequence; do
            grep -Eq "^$(printf '%s' "$op" | sed 's/+/[+]/g') +[0-9]+[.][0-9]+$" "$W/out" ||
                fail "$osc: no line for $op"
        done
    done
    "${MPI[@]}" -n 2 "$A/pxs-osc-probe" --iters 0 >"$W/out" 2>"$W/err"
    [ $? = 2 ] || fail "--iters 0: not exit status 2"
    grep -q "bad option --iters" "$W/err" || fail "--iters 0: no message naming the option"
    ;;
pipeline)
    "${MPI[@]}" -n 4 "$A/pxs-bench-pipeline" --quick --json --reps 2 --max-size 64K \
        --scale 0.01 >"$W/out" 2>"$W/err" || fail "exit status $?"
    check_json "$W/out" 2 pipeline pipeline-bw dispatcher-bytes stream-1to1 stream-1to1-bw ||
        fail "JSON"
    # --repeats is still accepted (old spelling of --reps)
    "${MPI[@]}" -n 4 "$A/pxs-bench-pipeline" --json --repeats 1 --quick --max-size 1K \
        --only stream >"$W/out" 2>"$W/err" || fail "exit status $? (--repeats)"
    check_json "$W/out" 1 stream-1to1 || fail "JSON (--repeats)"
    ;;
hdf5)
    "${MPI[@]}" -n 1 "$A/pxs-bench-hdf5" --quick --json --reps 2 --max-size 64K --mib 1 \
        --dir "$W/h5" >"$W/out" 2>"$W/err" || fail "exit status $?"
    check_json "$W/out" 2 put resolve || fail "JSON"
    [ -z "$(ls -A "$W/h5" 2>/dev/null)" ] || fail "files left in --dir: $(ls "$W/h5")"
    ;;
script)
    # the runner (one component) and the summary: tables and the three plots
    OUT=$W/b.jsonl PXS_BENCH_COMPONENTS=sm PXS_BENCH_REPS=1 bash "$src/apps/run-benchmarks.sh" \
        --quick "$build" >"$W/out" 2>"$W/err" || fail "run-benchmarks.sh: exit status $?"
    "$PY" - "$W/b.jsonl" <<'EOF' || fail "runner JSON"
import json, sys
runs = set()
for line in open(sys.argv[1]):
    d = json.loads(line)
    for k in ("run", "component", "np", "busy", "reps"):
        if k not in d:
            sys.exit("no %r: %s" % (k, line))
    if d["component"] not in ("sm", "none") or d["reps"] != 1:
        sys.exit("component/reps: %s" % line)
    runs.add(d["run"])
want = {"events.sm.n2", "store.sm.n2", "pipeline.sm.n4"}
if not want <= runs:
    sys.exit("runs missing: %s" % (want - runs))
EOF
    grep -q "quiet check" "$W/b.jsonl.log" || fail "no quiet-check lines in the log"
    "$PY" "$src/apps/bench-summary.py" "$W/b.jsonl" --quick --plots "$W/plots" >"$W/out" 2>"$W/err" ||
        fail "bench-summary.py: exit status $?"
    grep -q "^| case | component | size | ratio | target | met? | busy | reps |" "$W/out" ||
        fail "no targets table"
    grep -q "^| same-node resolve vs memcpy \`resolve-same-node-GB/s\` | sm | 4 KiB | " "$W/out" ||
        fail "no same-node 4 KiB target row"
    grep -q "target rows met" "$W/out" || fail "no count of targets met"
    if "$PY" -c "import matplotlib" 2>/dev/null; then
        for p in events store pipeline; do
            [ -s "$W/plots/$p.png" ] || fail "no $p.png"
        done
    fi
    "$PY" "$src/apps/bench-summary.py" "$W/nonexistent.jsonl" --no-plots >"$W/out" 2>"$W/err"
    [ $? = 2 ] || fail "bench-summary.py on a missing file: not exit status 2"
    ;;
*)
    echo "bench-smoke: unknown case $case_" >&2
    exit 2
    ;;
esac
echo "bench-smoke $case_: OK"
