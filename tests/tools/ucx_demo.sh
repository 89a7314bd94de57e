#!/bin/bash
# pxs-demo across jobs (README "Across jobs"): usage ucx_demo.sh DEMO MPIEXEC
# NPFLAG [PREFLAGS...]. Generators + dispatcher export; a first worker job
# leaves after 40 chunks, a second one takes the rest until END; every chunk
# a worker gets is verified; together they get all but the few queued at
# the first job when it left (at most its prefetch per worker).
set -u
exe=$1; mpiexec=$2; npflag=$3; shift 3
pre=("$@")
d=$(mktemp -d /tmp/pxs-demo-x.XXXXXX)
trap 'rm -rf "$d"' EXIT
fail() { echo "FAILED: $*"; [ -n "${xp:-}" ] && kill -9 "$xp" 2>/dev/null; cat "$d"/xlog; exit 1; }
"$mpiexec" "$npflag" 3 "${pre[@]}" "$exe" --export "$d/run.pxs" --chunks 60 --chunk-size 64K \
  --wait 10 > "$d/xlog" 2>&1 & xp=$!
"$mpiexec" "$npflag" 2 "${pre[@]}" "$exe" --attach "$d/run.pxs" --chunk-size 64K --max 40 \
  > "$d/a1" 2>&1 || { cat "$d/a1"; fail "first worker job"; }
"$mpiexec" "$npflag" 2 "${pre[@]}" "$exe" --attach "$d/run.pxs" --chunk-size 64K \
  > "$d/a2" 2>&1 || { cat "$d/a2"; fail "second worker job"; }
wait $xp || fail "export job"; xp=
grep "pxs-demo:" "$d/xlog" "$d/a1" "$d/a2"
n1=$(sed -n 's/.*verified \([0-9]*\)\/.*/\1/p' "$d/a1")
n2=$(sed -n 's/.*verified \([0-9]*\)\/.*/\1/p' "$d/a2")
[ -n "$n1" ] && [ -n "$n2" ] || fail "no counts"
[ "$n1" -ge 40 ] || fail "first job verified $n1 < 40"
[ $((n1 + n2)) -le 120 ] && [ $((n1 + n2)) -ge $((120 - 4)) ] || fail "verified $n1 + $n2 of 120"
grep -q "forwarded 120 to attached" "$d/xlog" || fail "dispatcher did not forward all"
echo "--- demo across jobs: OK ($n1 + $n2 of 120 chunks verified)"
