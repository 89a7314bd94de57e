#!/bin/bash
# Work-sharing groups across jobs (docs/DESIGN.md, "Events across jobs"):
# usage ucx_xgroup.sh EXE MPIEXEC NPFLAG [PREFLAGS...]. UCX_TLS from the
# environment applies to every job (default and tcp runs).
set -u
exe=$1; mpiexec=$2; npflag=$3; shift 3
pre=("$@")
d=$(mktemp -d /tmp/pxs-xgroup.XXXXXX)
kp=
trap 'rm -rf "$d"' EXIT
fail() {
  echo "FAILED: $*"
  [ -n "${xp:-}" ] && kill -9 "$xp" 2>/dev/null
  [ -n "${kp:-}" ] && kill -9 "$kp" 2>/dev/null
  tail -20 "$d"/xlog 2>/dev/null; exit 1
}
run() { local n=$1; shift; "$mpiexec" "$npflag" "$n" "${pre[@]}" "$exe" "$@"; }
# every index 0 .. N-1 exactly once across the given files
once() {
  local n=$1; shift
  local dup; dup=$(cat "$@" | sort -n | uniq -d | head -3)
  [ -z "$dup" ] || fail "delivered twice: $dup"
  local c; c=$(cat "$@" | sort -n | uniq | wc -l)
  [ "$c" = "$n" ] || fail "$c distinct of $n delivered"
  [ "$(cat "$@" | sort -n | head -1)" = 0 ] && [ "$(cat "$@" | sort -n | tail -1)" = $((n - 1)) ] ||
    fail "indices out of range"
}
N=120

# 1. a group "w" with members in both jobs: one local member (exporting
#    job rank 1) and two attached ones; each attached member holds its
#    first event until the local member got one, so both jobs get events
#    whatever the timing; every event exactly once across both jobs
run 2 gexport "$d" $N > "$d/xlog" 2>&1 & xp=$!
run 2 mixed "$d" > "$d/alog" 2>&1 || { cat "$d/alog"; fail "attached members"; }
touch "$d/done"
wait $xp || fail "export run"; xp=
cat "$d/xlog" "$d/alog"
[ -s "$d/got.L.1" ] || fail "the local member got nothing"
[ "$(cat "$d"/got.A.* | wc -l)" -gt 0 ] || fail "the attached members got nothing"
once $N "$d"/got.*
echo "--- mixed group: $(wc -l < "$d/got.L.1") local, $(cat "$d"/got.A.* | wc -l) attached, each of $N once: OK"

# 2. an attached member killed (kill -9) while it holds group events: the
#    producer notices (UCX peer failure), delivers the events it had not
#    finished to the local member, and everything ends cleanly
rm -f "$d"/contact "$d"/done "$d"/kill "$d"/killed "$d"/local1 "$d"/attached "$d"/got.*
PXS_LOG=warn run 2 gexport "$d" $N die > "$d/xlog" 2>&1 & xp=$!
run 1 die "$d" > "$d/alog" 2>&1 & kp=$!
for i in $(seq 1 1200); do [ -e "$d/kill" ] && break; sleep 0.1; done
[ -e "$d/kill" ] || fail "the attached member never held its third event"
kill -9 "$(cat "$d/pid.K")" || fail "no attached member to kill"
wait "$kp" 2>/dev/null; kp= # its mpiexec ends (with an error)
for i in $(seq 1 1200); do grep -q "died" "$d/xlog" && break; sleep 0.1; done
grep "died" "$d/xlog" || fail "the producer did not notice the death"
touch "$d/killed" "$d/done"
wait $xp || fail "export run (member killed)"; xp=
cat "$d/xlog"
once $N "$d"/got.L.1 "$d"/got.K.0
echo "--- attached member killed: its undone events delivered again, each of $N once: OK"

# 3. registration slots reused: the exporter offers 2 slots per rank (test
#    hook), a 2-rank job attaches and detaches 5 times; in each reused slot
#    a stale XS_OFF of the previous generation is written (test hook): the
#    producer ignores it and goes on routing there
rm -f "$d"/contact "$d"/done "$d"/got.*
PXS_TEST_XBUS_REGS=2 run 2 serve "$d" > "$d/xlog" 2>&1 & xp=$!
PXS_TEST_XBUS_STALE=1 run 2 cycle "$d" 5 || fail "attach/detach cycles"
wait $xp || fail "serve run"; xp=
cat "$d/xlog"
echo "--- 5 attach/detach cycles through 2 registration slots: OK"

# 4. every slot in use: an attaching job gets PXS_ERR_AGAIN within its
#    timeout (on every rank); after the holder detaches, a job gets in
rm -f "$d"/contact "$d"/done "$d"/held "$d"/release "$d"/got.*
PXS_TEST_XBUS_REGS=2 run 2 serve "$d" > "$d/xlog" 2>&1 & xp=$!
run 2 hold "$d" & kp=$!
for i in $(seq 1 1200); do [ -e "$d/held" ] && break; sleep 0.1; done
[ -e "$d/held" ] || fail "the holding job never attached"
run 1 full "$d" || fail "attach with every slot in use"
touch "$d/release"
wait "$kp" || fail "holding job"; kp=
run 2 cycle "$d" 1 || fail "attach after the slots came free"
wait $xp || fail "serve run"; xp=
echo "--- every slot in use: PXS_ERR_AGAIN, then free again: OK"
