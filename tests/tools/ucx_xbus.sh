#!/bin/bash
# Events across jobs (docs/DESIGN.md, section "Export and attach"): usage
# ucx_xbus.sh EXE MPIEXEC NPFLAG [PREFLAGS...]. UCX_TLS from the environment
# applies to every job (default and tcp runs).
set -u
exe=$1; mpiexec=$2; npflag=$3; shift 3
pre=("$@")
d=$(mktemp -d /tmp/pxs-xbus.XXXXXX)
trap 'rm -rf "$d"' EXIT
fail() { echo "FAILED: $*"; [ -n "${xp:-}" ] && kill -9 "$xp" 2>/dev/null; cat "$d"/xlog 2>/dev/null | tail -20; exit 1; }
run() { "$mpiexec" "$npflag" 2 "${pre[@]}" "$exe" "$@"; }
N=200
if [ "${XBUS_TWO_NODE:-0}" = 1 ]; then
  # each job on its own emulated node (tests/tools/fakenodes.sh: own UTS and
  # IPC namespaces, so UCX reaches the other job over tcp only)
  fk=$(dirname "$0")/fakenodes.sh
  runx() { FAKENODES_NODES=1 FAKENODES_PPN=2 FAKENODES_PREFIX=nodeA bash "$fk" -np 2 "$exe" "$@"; }
  runa() { FAKENODES_NODES=1 FAKENODES_PPN=2 FAKENODES_PREFIX=nodeB bash "$fk" -np 2 "$exe" "$@"; }
  runx export "$d" $N > "$d/xlog" 2>&1 & xp=$!
  runa first "$d" $N || fail "first attaching job (other node)"
  runa second "$d" $N || fail "second attaching job (other node)"
  wait $xp || fail "export run"; xp=
  grep "OK" "$d/xlog"
  echo "--- two emulated nodes: attach, detach after half, second attach: OK"
  exit 0
fi

# 1. attach (export_wait 1: nothing sent before it), detach after half,
#    a second job attaches for the rest and gets END
run export "$d" $N > "$d/xlog" 2>&1 & xp=$!
run first "$d" $N || fail "first attaching job"
run second "$d" $N || fail "second attaching job"
wait $xp || fail "export run"; xp=
cat "$d/xlog"
echo "--- attach, detach after half, second attach for the rest: OK"

# 1b. budgets: pxs_producer's default budget counts the attached
#     subscribers too (1 local + 2 attached resolves per object, no
#     PXS_ERR_STALE, arena empty at the end)
rm -f "$d"/contact "$d"/done "$d"/pid.*
run bexport "$d" 40 > "$d/xlog" 2>&1 & xp=$!
run battach "$d" 40 || fail "budget: attaching job"
wait $xp || fail "budget: export run"; xp=
grep "OK" "$d/xlog"
echo "--- budgets across jobs: OK"

# 2. refused registrations: a wrong attach token, a mailbox size that would
#    make the producer write outside the registered mailbox; the exporter
#    goes on serving a good job afterwards
rm -f "$d"/contact "$d"/done "$d"/pid.*
PXS_LOG=warn run serve "$d" > "$d/xlog" 2>&1 & xp=$!
run errors "$d" || fail "bad attach arguments"
PXS_TEST_XBUS_BAD_TOKEN=1 run refused "$d" || fail "wrong token accepted"
PXS_TEST_XBUS_BIG_MAILBOX=1 run refused "$d" || fail "oversized mailbox accepted"
run tail "$d" || fail "good job after refused ones"
wait $xp || fail "serve run"; xp=
grep -q "refused: wrong attach token" "$d/xlog" || fail "wrong token not logged"
grep -q "refused: mailbox size differs" "$d/xlog" || fail "mailbox size not logged"
tok=$(od -An -tx8 -j24 -N8 "$d/contact" | tr -d ' ')
grep -qi "$tok" "$d/xlog" && fail "the token was printed"
grep "refused" "$d/xlog" | head -2
echo "--- refused registrations: OK"

# 3. the exporting job is killed while attached: PXS_ERR_PEER, no hang
rm -f "$d"/contact "$d"/done "$d"/kill "$d"/pid.*
run serve "$d" > "$d/xlog" 2>&1 & xp=$!
run killed "$d" & cp=$!
for i in $(seq 1 600); do [ -e "$d/kill" ] && break; sleep 0.1; done
[ -e "$d/kill" ] || fail "consumer never attached"
for f in "$d"/pid.*; do kill -9 "$(cat "$f")" 2>/dev/null; done
wait $cp || fail "killed run"
kill -9 $xp 2>/dev/null; wait $xp 2>/dev/null; xp=
echo "--- exporting job killed: OK"
