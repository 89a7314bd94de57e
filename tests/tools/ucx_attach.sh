#!/bin/bash
# Two-job test of export/attach (docs/DESIGN.md, section "Export and
# attach"): usage ucx_attach.sh EXE MPIEXEC NPFLAG [PREFLAGS...]
# UCX_TLS from the environment applies to both jobs (default and tcp runs).
set -u
exe=$1; mpiexec=$2; npflag=$3; shift 3
pre=("$@")
d=$(mktemp -d /tmp/pxs-attach.XXXXXX)
trap 'rm -rf "$d"' EXIT
fail() { echo "FAILED: $*"; [ -n "${xp:-}" ] && kill -9 "$xp" 2>/dev/null; exit 1; }
run() { "$mpiexec" "$npflag" 2 "${pre[@]}" "$exe" "$@"; }

# 1. producer job exports; consumer job (started after) attaches, verifies
run export "$d" & xp=$!
run attach "$d" || fail "attach run"
wait $xp || fail "export run"; xp=
echo "--- two jobs: OK"

# 2. the contact file of a job that is gone: recognised, not trusted
run expect PEER "$d/contact" || fail "stale contact file"
# 3. loose permissions, another owner, damage, absent file
cp -p "$d/contact" "$d/ww"; chmod 666 "$d/ww"
run expect INVALID "$d/ww" || fail "world-writable file accepted"
cp -p "$d/contact" "$d/gw"; chmod 620 "$d/gw"
run expect INVALID "$d/gw" || fail "group-writable file accepted"
if [ "$(id -u)" = 0 ]; then
  cp -p "$d/contact" "$d/other"; chown 12345 "$d/other"
  run expect INVALID "$d/other" || fail "file of another user accepted"
fi
cp -p "$d/contact" "$d/bad"
printf '\x55' | dd of="$d/bad" bs=1 seek=200 conv=notrunc status=none
run expect CORRUPT "$d/bad" || fail "damaged file accepted"
run expect TIMEDOUT "$d/absent" || fail "absent file"
echo "--- forged/stale contact files: OK"

# 4. the producer job is killed while attached: a clear error, no hang
rm -f "$d/contact" "$d/proxies" "$d/done" "$d"/pid.*
run export "$d" & xp=$!
run killed "$d" & cp=$!
for i in $(seq 1 600); do [ -e "$d/kill" ] && break; sleep 0.1; done
[ -e "$d/kill" ] || fail "consumer never attached"
for f in "$d"/pid.*; do kill -9 "$(cat "$f")" 2>/dev/null; done
wait $cp || fail "killed run"
kill -9 $xp 2>/dev/null; wait $xp 2>/dev/null; xp=
echo "--- producer killed: OK"

# 5. an exporting job that does not progress (progress thread off, ranks
# "computing"): the attach's first get times out; the endpoint is
# force-closed and the get collected before pxs_attach returns
# PXS_ERR_PEER (docs/DESIGN.md, "Progress, death, timeouts"); no hang
rm -f "$d/contact" "$d/proxies" "$d/done" "$d"/pid.*
PXS_PROGRESS_THREAD=0 run export "$d" & xp=$!
for i in $(seq 1 600); do [ -e "$d/contact" ] && break; sleep 0.1; done
[ -e "$d/contact" ] || fail "exporter never exported"
run expect PEER "$d/contact" || fail "attach to a job that does not progress"
touch "$d/done"
wait $xp || fail "export run (no progress thread)"; xp=
echo "--- exporter without progress: OK"
