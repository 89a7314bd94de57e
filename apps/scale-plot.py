#!/usr/bin/python3
"""Plots the JSON lines of apps/run-scale.sh: one PNG per curve, i.e. per
(case, metric), with one line per run (osc, batch) for ours and a dashed one
for the baseline; event cases get a second panel with the per-event work
(atomics, flushes per event; probes per pick for groups). Also writes
outdir/scale-table.md: the per-event work of every event case, one row per
(case, run), one column per size (atomics / flushes per event).
usage: /usr/bin/python3 apps/scale-plot.py [scale.jsonl] [outdir]"""
import json, os, sys
from collections import defaultdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

src = sys.argv[1] if len(sys.argv) > 1 else "scale.jsonl"
out = sys.argv[2] if len(sys.argv) > 2 else "scale-plots"
os.makedirs(out, exist_ok=True)
curves = defaultdict(lambda: defaultdict(list))
for line in open(src):
    line = line.strip()
    if line.startswith("{"):
        try:
            d = json.loads(line)
        except ValueError:  # a line mixed with a transport's warning
            continue
        curves[(d["case"], d["metric"])][d.get("run", "")].append(d)

for (case, metric), runs in sorted(curves.items()):
    work = any("atomics_per_event" in d for v in runs.values() for d in v)
    fig, axes = plt.subplots(1, 2 if work else 1, figsize=(11 if work else 6, 4), squeeze=False)
    ax = axes[0][0]
    unit = bname = ""
    for run, v in sorted(runs.items()):
        v.sort(key=lambda d: d["size"])
        xs = [d["size"] for d in v]
        unit, bname = v[0]["unit"], v[0]["baseline_name"]
        line, = ax.plot(xs, [d["ours"] for d in v], marker="o", label=f"{run}")
        ax.plot(xs, [d["baseline"] for d in v], ls="--", color=line.get_color(),
                label=f"{run} {bname}")
        if work:
            w = axes[0][1]
            w.plot(xs, [d["atomics_per_event"] for d in v], marker="o", color=line.get_color(),
                   label=f"{run} atomics/event")
            w.plot(xs, [d["flushes_per_event"] for d in v], marker="s", ls=":",
                   color=line.get_color(), label=f"{run} flushes/event")
            if case == "group":
                w.plot(xs, [d["probes_per_pick"] for d in v], marker="^", ls="-.",
                       color=line.get_color(), label=f"{run} probes/pick")
    ax.set_xscale("log", base=2)
    if unit.startswith("us"):
        ax.set_yscale("log")
    ax.set_xlabel({"many-to-one": "producers", "one-to-many": "subscribers",
                   "group": "group members"}.get(case, "ranks"))
    ax.set_ylabel(unit)
    ax.set_title(f"{case} {metric} (dashed: baseline)")
    ax.legend(fontsize=6)
    if work:
        w = axes[0][1]
        w.set_xscale("log", base=2)
        w.set_xlabel(ax.get_xlabel())
        w.set_ylabel("per event (summed over ranks)")
        w.set_title(f"{case}: work per event (stats counters)")
        w.legend(fontsize=6)
    fig.tight_layout()
    path = os.path.join(out, f"scale-{case}-{metric}.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(path)

# per-event work table (docs/DESIGN.md "Scale model" quotes it)
rows = []
for (case, metric), runs in sorted(curves.items()):
    for run, v in sorted(runs.items()):
        if not any("atomics_per_event" in d for d in v):
            continue
        cells = {d["size"]: f'{d["atomics_per_event"]:.2f} / {d["flushes_per_event"]:.2f}'
                 + (f' ({d["probes_per_pick"]:.1f})' if case == "group" else "")
                 for d in v}
        rows.append((case, run, cells))
sizes = sorted({sz for _, _, c in rows for sz in c})
path = os.path.join(out, "scale-table.md")
with open(path, "w") as f:
    f.write("atomics / flushes per event (group: probes per pick), by size\n\n")
    f.write("| case | run | " + " | ".join(str(x) for x in sizes) + " |\n")
    f.write("|---|---|" + "---|" * len(sizes) + "\n")
    for case, run, cells in rows:
        f.write(f"| {case} | {run} | " + " | ".join(cells.get(x, "") for x in sizes) + " |\n")
print(path)
