#!/usr/bin/env python3
"""Median of repeated benchmark runs: reads the JSON lines written by
apps/run-benchmarks.sh and prints one markdown row per (run, case, size):
median ours, median baseline, median ratio, and the number of repeats."""
import json, statistics, sys
from collections import defaultdict

rows = defaultdict(list)
order = []
for line in open(sys.argv[1] if len(sys.argv) > 1 else "bench.jsonl"):
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    key = (d["run"], d["case"], d["size"], d["ranks"], d["unit"], d["baseline_name"])
    if key not in rows:
        order.append(key)
    rows[key].append(d)
print("| run | case | ranks | size | ours | baseline | unit | ratio (median) | n |")
print("|---|---|---|---|---|---|---|---|---|")
for key in order:
    v = rows[key]
    med = lambda f: statistics.median(x[f] for x in v)
    run, case, size, ranks, unit, bname = key
    print(f"| {run} | {case} | {ranks} | {size} | {med('ours'):.4g} | {med('baseline'):.4g} "
          f"({bname}) | {unit} | {med('ratio'):.2f} | {len(v)} |")
