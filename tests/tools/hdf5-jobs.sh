#!/bin/bash
# HDF5 connector across separate jobs (ctest mpi.store.hdf5.*): each
# scenario runs several mpiexec jobs on one fresh directory.
# usage: hdf5-jobs.sh SCENARIO EXE MPIEXEC NPFLAG [mpiexec flags...]
#   durable  job 1 (3 ranks) writes, job 2 (2 ranks) resolves every proxy,
#            job 3 (1 rank) damages the files and checks the outcome
#   faults   bad directories and manifests; objects across many data
#            chunks, a directory in place of a rank's file
#   cuts     one file truncated at several offsets: complete records resolve
#   full     disk full (RLIMIT_FSIZE) on one rank; a later job resolves
#            every put that succeeded
#   readonly create on a read-only mount fails (PXS_ERR_IO), open works
#   demo     (EXE: pxs-demo) pxs-demo --log, then --replay in a new job
#   spill    (EXE: mpitest_store_spill) an RMA store spilling to HDF5
#            with a stalled consumer
#   replay   (EXE: mpitest_stream_replay) 3 producers log a stream while a
#            consumer reads it live; a later one-rank job replays the log
set -eu
scenario=$1 exe=$2 mpiexec=$3 npflag=$4
shift 4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run() { # np args...
    local np=$1
    shift
    "$mpiexec" "$npflag" "$np" "$@"
}
case $scenario in
durable)
    run 3 "$@" "$exe" write "$dir/store" "$dir/proxies.txt"
    grep -c 'pxs2:' "$dir/proxies.txt"
    run 2 "$@" "$exe" read "$dir/store" "$dir/proxies.txt"
    run 1 "$@" "$exe" damage "$dir/store" "$dir/proxies.txt"
    ;;
faults)
    run 2 "$@" "$exe" faults "$dir"
    run 1 "$@" "$exe" chunks "$dir/chunks"
    ;;
cuts)
    run 1 "$@" "$exe" cuts "$dir/store" | tee "$dir/cuts.txt"
    if [ -n "${INSPECT:-}" ]; then
        # pxs-inspect on each truncated copy (store.cut<i>, in the order of
        # the "cut at" lines): ls and verify exit 2 and say TRUNCATED; verify
        # finds good exactly the records the store resolved where the index
        # survived the cut, never more; the last cut (one byte) keeps all 40
        i=0 sum=0
        while read -r ok; do
            c="$dir/store.cut$i"
            rc=0
            "$INSPECT" ls "$c" >"$dir/ls$i.txt" || rc=$?
            test "$rc" = 2 && grep -q 'TRUNCATED' "$dir/ls$i.txt"
            rc=0
            "$INSPECT" verify "$c" >"$dir/v$i.txt" || rc=$?
            grep -v ' record [0-9]*: ' "$dir/v$i.txt"
            test "$rc" = 2 && grep -q 'TRUNCATED' "$dir/v$i.txt" && grep -q '^CORRUPT' "$dir/v$i.txt"
            good=$(sed -n 's/.*[:,] \([0-9]*\) good.*/\1/p' "$dir/v$i.txt")
            echo "cut $i: store resolved $ok, pxs-inspect verify: $good good"
            test "$good" -le "$ok"
            sum=$((sum + good))
            i=$((i + 1))
        done < <(sed -n 's/^cut at .*bytes: \([0-9]*\) record(s) resolve.*/\1/p' "$dir/cuts.txt")
        test "$i" -ge 5 && test "$sum" -gt 0 && test "$good" = 40
        rc=0
        "$INSPECT" --json verify "$dir/store.cut$((i - 1))" >"$dir/vj.txt" || rc=$?
        cat "$dir/vj.txt"
        test "$rc" = 2 && grep -q '"truncated": true' "$dir/vj.txt" && grep -q '"good": 40' "$dir/vj.txt"
    fi
    ;;
full)
    run 2 "$@" "$exe" full "$dir/store" "$dir/proxies.txt"
    run 1 "$@" "$exe" readfull "$dir/store" "$dir/proxies.txt"
    ;;
inspect)
    # EXE is mpitest_store_hdf5, $INSPECT is pxs-inspect
    run 3 "$@" "$exe" write "$dir/store" "$dir/proxies.txt"
    "$INSPECT" ls "$dir/store" | tee "$dir/ls.txt"
    grep -q 'rank 2: 7 record(s): 6 live' "$dir/ls.txt"
    "$INSPECT" --json verify "$dir/store" | tee "$dir/v.json"
    grep -q '"verified": true' "$dir/v.json"
    "$INSPECT" proxy "$(awk 'NR==5 {print $5}' "$dir/proxies.txt")" | tee "$dir/p.txt"
    grep -q '^kind hdf5' "$dir/p.txt"
    if "$INSPECT" proxy "pxs2:00" >/dev/null; then exit 1; fi
    run 1 "$@" "$exe" damage "$dir/store" "$dir/proxies.txt"
    rc=0
    "$INSPECT" verify "$dir/store" >"$dir/v2.txt" || rc=$?
    cat "$dir/v2.txt"
    test "$rc" = 2
    grep -q 'payload checksum mismatch' "$dir/v2.txt"
    grep -q '^CORRUPT' "$dir/v2.txt"
    if [ -n "${REPLAY:-}" ]; then
        run 4 "$@" "$REPLAY" live "$dir/s2" "$dir/log"
        "$INSPECT" ls "$dir/log" | tee "$dir/logls.txt"
        grep -q 'producer 2 topic 2: 5 event(s), seq 0..4, END' "$dir/logls.txt"
        test "$("$INSPECT" dump "$dir/log" --topic 1 | grep -c 'seq')" = 60
        "$INSPECT" verify "$dir/log"
        # the durable copies beside an RMA stream's log: one store per producer
        run 4 "$@" "$REPLAY" liverma - "$dir/log3"
        "$INSPECT" ls "$dir/log3" | tee "$dir/log3.txt"
        test "$(grep -c '^store ' "$dir/log3.txt")" = 3
        "$INSPECT" verify "$dir/log3" | tail -1 | grep -q '^OK'
    fi
    ;;
readonly)
    # no permission, as root: a read-only bind mount in a private mount
    # namespace (unshare -m; skipped where that is not allowed)
    run 1 "$@" "$exe" small "$dir/store" "$dir/proxies.txt"
    if ! unshare --mount true 2>/dev/null; then
        echo "hdf5 readonly: SKIPPED (no unshare --mount here)"
        exit 0
    fi
    cmd=$(printf '%q ' "$mpiexec" "$npflag" 1 "$@" "$exe" ro "$dir/store" "$dir/proxies.txt")
    unshare --mount bash -c "mount --bind '$dir/store' '$dir/store' &&
        mount -o remount,bind,ro '$dir/store' && $cmd"
    ;;
demo)
    # EXE is pxs-demo: record a run, replay it in a new job
    run 4 "$@" "$exe" --log "$dir/run" --chunks 12 --chunk-size 64K --quiet
    run 1 "$@" "$exe" --replay "$dir/run" | tee "$dir/replay.txt"
    grep -q 'replayed 12 chunk(s).*verified 12/12: OK' "$dir/replay.txt"
    ;;
spill)
    # EXE is mpitest_store_spill
    run 3 "$@" "$exe" "$dir"
    ls "$dir/spill"
    ;;
replay)
    run 4 "$@" "$exe" live "$dir/store" "$dir/log"
    ls "$dir/log"
    run 1 "$@" "$exe" replay "$dir/store" "$dir/log"
    # an RMA store: the log keeps durable copies (log_bytes = 1)
    run 4 "$@" "$exe" liverma - "$dir/log2"
    ls "$dir/log2"
    run 1 "$@" "$exe" replay "$dir/log2" "$dir/log2"
    ;;
*)
    echo "unknown scenario $scenario" >&2
    exit 2
    ;;
esac
echo "hdf5 $scenario: OK"
