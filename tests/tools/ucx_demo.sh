#!/bin/bash
# pxs-demo across jobs (README "Across jobs"): usage ucx_demo.sh DEMO MPIEXEC
# NPFLAG [PREFLAGS...]. Generators + dispatcher export; a first worker job
# leaves after 40 chunks, a second one takes the rest until END; every chunk
# a worker gets is verified; together they verify every chunk exactly once:
# group events unread at the first job when it left are given back to the
# dispatcher, which hands them to the second job (docs/DESIGN.md "Events
# across jobs", Detach).
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
[ $((n1 + n2)) -eq 120 ] || fail "verified $n1 + $n2 of 120 (each chunk exactly once)"
# which chunks: ids 2^20 gen + idx (gen 0..1, idx 0..59); the sums of the ids
# and of their squares over both jobs are those of every chunk once
ids() { sed -n "s/.*ids 2^20 gen + idx: sum \([0-9]*\), sum of squares \([0-9]*\)).*/\1 \2/p" "$1"; }
read -r s1 q1 <<< "$(ids "$d/a1")"; read -r s2 q2 <<< "$(ids "$d/a2")"
es=0; eq=0
for g in 0 1; do for i in $(seq 0 59); do id=$((g * 1048576 + i)); es=$((es + id)); eq=$((eq + id * id)); done; done
[ -n "${s1:-}" ] && [ -n "${s2:-}" ] || fail "no chunk id sums"
[ $((s1 + s2)) -eq $es ] && [ $((q1 + q2)) -eq $eq ] || fail "chunk ids: sums $((s1 + s2)) $((q1 + q2)), want $es $eq (a chunk lost or twice)"
grep -q "forwarded 120 to attached" "$d/xlog" || fail "dispatcher did not forward all"
echo "--- demo across jobs: OK ($n1 + $n2 of 120 chunks verified)"
