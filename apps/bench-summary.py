#!/usr/bin/python3
"""Summary of a benchmark run: reads the JSON lines written by
apps/run-benchmarks.sh (one file, every component) and prints

  1. the medians table: one markdown row per (run, case, size), with the
     median ours, baseline and ratio over the file's lines for that row
     (several when PXS_BENCH_RUNS > 1), the CPU busy fraction measured by the
     program's quiet check and the samples per median (reps);
  2. the targets table of issue 15: case, component, size, ratio, target,
     met? (rows from single-node runs: events and store on 2 ranks, pipeline
     and stream-1to1 on 4; their zero-copy forms stream-1to1-zc and
     pipeline-zc as rows of their own);

and writes PNG plots (ratio per size, one line per component, the target
dashed) for store and pipeline, and for events (one record size: ratio per
case, one line per component) into --plots DIR (default: the input
file's directory).

usage: apps/bench-summary.py [bench.jsonl] [--plots DIR | --no-plots] [--quick]
--quick: a smoke run's file (apps/run-benchmarks.sh --quick): the same
tables, titled as a smoke run (its figures are not results).
Needs Debian's python3-matplotlib for the plots; installs it (apt-get) when
missing and running as root, else writes no plots and says so.
Exit status 0; 2 on usage errors or an unreadable/empty input."""
import json
import os
import statistics
import subprocess
import sys
from collections import OrderedDict, defaultdict

KiB, MiB = 1024, 1024 * 1024

# (case, np of the run, predicate on size, target ratio, description)
TARGETS = [
    ("latency-vs-shm.1to1.b1", 2, lambda s: True, 0.8,
     "event one-way latency vs raw shared-memory flag chain"),
    ("throughput.1to1.b32", 2, lambda s: True, 3.0,
     "event throughput batch 32 vs MPI_Send/MPI_Recv"),
    ("resolve-same-node-GB/s", 2, lambda s: s == 4 * KiB, 0.5, "same-node resolve vs memcpy"),
    ("resolve-same-node-GB/s", 2, lambda s: s >= 64 * KiB, 0.9, "same-node resolve vs memcpy"),
    ("put-GB/s", 2, lambda s: s == 4 * KiB, 0.5, "put vs memcpy"),
    ("put-GB/s", 2, lambda s: s >= MiB, 0.9, "put vs memcpy"),
    # the same targets against the fairer baselines (docs/BENCHMARKS.md)
    ("resolve-same-node-samealign-GB/s", 2, lambda s: s == 4 * KiB, 0.5,
     "same-node resolve vs memcpy from the arena block's page offset"),
    ("resolve-same-node-samealign-GB/s", 2, lambda s: s >= 64 * KiB, 0.9,
     "same-node resolve vs memcpy from the arena block's page offset"),
    ("put-batch-GB/s", 2, lambda s: s == 4 * KiB, 0.5, "put vs memcpy, both timed per batch"),
    ("put-batch-GB/s", 2, lambda s: s >= MiB, 0.9, "put vs memcpy, both timed per batch"),
    ("stream-1to1", 4, lambda s: s == KiB, 5.0, "stream 1->1 vs MPI_Send"),
    ("stream-1to1", 4, lambda s: s in (MiB, 16 * MiB), 1.5, "stream 1->1 vs MPI_Send"),
    ("pipeline", 4, lambda s: s in (64 * KiB, MiB, 16 * MiB), 2.5,
     "pipeline vs two-sided relay"),
    # in situ, no copy (reserved puts + views; both sides fill and read
    # every byte): the same targets, rows of their own
    ("stream-1to1-zc", 4, lambda s: s in (MiB, 16 * MiB), 1.5,
     "stream 1->1 zero-copy (reserve+fill / view+read) vs MPI_Send (fill / read)"),
    ("pipeline-zc", 4, lambda s: s in (64 * KiB, MiB, 16 * MiB), 2.5,
     "pipeline zero-copy (reserve+fill / view+read) vs relay (fill / read)"),
    ("resolve-remote-vs-limit-GB/s", 2, lambda s: s >= 64 * KiB, 0.9,
     "remote resolve (malloc'd dst) vs best raw MPI_Get+flush"),
    ("resolve-remote-aligned-vs-limit-GB/s", 2, lambda s: s >= 64 * KiB, 0.9,
     "remote resolve (aligned dst) vs best raw MPI_Get+flush"),
]

# plots: file name -> cases (one panel each)
PLOTS = OrderedDict([
    ("events", ["latency.1to1.b1", "latency-vs-shm.1to1.b1", "latency-vs-shm.1to1.b32",
                "throughput.1to1.b1", "throughput.1to1.b32"]),
    ("store", ["resolve-same-node-GB/s", "resolve-same-node-aligned-GB/s", "put-GB/s",
               "resolve-same-node-samealign-GB/s", "put-batch-GB/s",
               "resolve-remote-GB/s", "resolve-remote-aligned-GB/s",
               "resolve-remote-vs-limit-GB/s", "resolve-remote-aligned-vs-limit-GB/s",
               "raw-get-unaligned-vs-aligned-GB/s"]),
    ("pipeline", ["pipeline", "stream-1to1", "stream-1to1-zc", "pipeline-zc"]),
])
COMPONENTS = ["default", "sm", "rdma", "ucx"]


def usage(msg):
    use = [l for l in __doc__.splitlines() if l.startswith("usage:")]
    sys.stderr.write("bench-summary: %s\n%s\n" % (msg, use[0] if use else ""))
    sys.exit(2)


def size_label(s):
    if s >= MiB and s % MiB == 0:
        return "%d MiB" % (s // MiB)
    if s >= KiB and s % KiB == 0:
        return "%d KiB" % (s // KiB)
    return "%d B" % s


def load(path):
    rows = OrderedDict()
    try:
        f = open(path)
    except OSError as e:
        usage("cannot read %s: %s" % (path, e))
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                d = json.loads(line)
            except ValueError:
                sys.stderr.write("bench-summary: %s:%d: not JSON, skipped\n" % (path, n))
                continue
            d.setdefault("run", "?")
            d.setdefault("component", "?")
            d.setdefault("np", d.get("ranks", 0))
            key = (d["run"], d["component"], d["np"], d["case"], d["size"], d["ranks"],
                   d["unit"], d["baseline_name"])
            rows.setdefault(key, []).append(d)
    if not rows:
        usage("no JSON lines in %s" % path)
    return rows


def med(v, field, default=float("nan")):
    x = [r[field] for r in v if field in r and r[field] is not None]
    return statistics.median(x) if x else default


def medians_table(rows):
    print("| run | case | ranks | size | ours | baseline | unit | ratio (median) | busy | reps "
          "| n |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key, v in rows.items():
        run, comp, np_, case, size, ranks, unit, bname = key
        busy = med(v, "busy")
        busy_s = "%.0f%%" % (100 * busy) if busy == busy and busy >= 0 else "?"
        reps = med(v, "reps", 0)
        print("| %s | %s | %s | %s | %.4g | %.4g (%s) | %s | %.2f | %s | %s | %d |"
              % (run, case, ranks, size, med(v, "ours"), med(v, "baseline"), bname, unit,
                 med(v, "ratio"), busy_s, int(reps) if reps else "?", len(v)))


def target_rows(rows):
    """[(description, case, component, size, ratio, target, met, busy, reps)]"""
    out = []
    for case, np_, pred, target, desc in TARGETS:
        for key, v in rows.items():
            run, comp, rnp, kcase, size, ranks, unit, bname = key
            if kcase != case or rnp != np_ or not pred(size) or comp.startswith("2node"):
                continue
            ratio = med(v, "ratio")
            out.append((desc, case, comp, size, ratio, target, ratio >= target,
                        med(v, "busy"), int(med(v, "reps", 0))))
    order = {c: i for i, c in enumerate(COMPONENTS)}
    return out, order


def targets_table(rows):
    out, _ = target_rows(rows)
    print("| case | component | size | ratio | target | met? | busy | reps |")
    print("|---|---|---|---|---|---|---|---|")
    missed = 0
    for desc, case, comp, size, ratio, target, met, busy, reps in out:
        busy_s = "%.0f%%" % (100 * busy) if busy == busy and busy >= 0 else "?"
        note = "" if reps >= 5 else " (reps < 5)"
        print("| %s `%s` | %s | %s | %.3g | >= %g | %s%s | %s | %d |"
              % (desc, case, comp, size_label(size), ratio, target, "yes" if met else "NO",
                 note, busy_s, reps))
        missed += not met
    if not out:
        print("(no single-node rows of the targeted cases in this file)")
    else:
        print("\n%d of %d target rows met." % (len(out) - missed, len(out)))


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        pass
    if os.geteuid() != 0:
        sys.stderr.write("bench-summary: python3-matplotlib is missing (apt-get install "
                         "python3-matplotlib as root); no plots\n")
        return False
    sys.stderr.write("bench-summary: installing python3-matplotlib (apt-get)\n")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    rc = subprocess.call(["apt-get", "install", "-y", "-q", "python3-matplotlib"],
                         stdout=sys.stderr, env=env)
    if rc != 0:
        sys.stderr.write("bench-summary: apt-get failed (%d); no plots\n" % rc)
        return False
    try:
        import matplotlib  # noqa: F401,F811
        return True
    except ImportError:
        return False


def plots(rows, outdir, quick):
    if not have_matplotlib():
        return []
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    target_of = defaultdict(list)
    for case, np_, pred, target, desc in TARGETS:
        target_of[case].append((pred, target))
    os.makedirs(outdir, exist_ok=True)
    written = []
    for name, cases in PLOTS.items():
        # case -> component -> {size: ratio}; single-node runs of the usual np
        data = OrderedDict()
        for key, v in rows.items():
            run, comp, rnp, case, size, ranks, unit, bname = key
            if case not in cases or comp.startswith("2node"):
                continue
            if name == "events" and rnp != 2:
                continue
            data.setdefault(case, {}).setdefault(comp, {})[size] = med(v, "ratio")
        if not data:
            continue
        present = [c for c in cases if c in data]
        if name == "events":
            # one size (a 192 B record): one panel, the cases side by side
            fig, ax = plt.subplots(figsize=(9, 4))
            comps = sorted({c for case in present for c in data[case]},
                           key=lambda c: (COMPONENTS.index(c) if c in COMPONENTS else 99, c))
            for comp in comps:
                xs = [j for j, case in enumerate(present) if comp in data[case]]
                ax.plot(xs, [list(data[present[j]][comp].values())[0] for j in xs],
                        marker="o", label=comp)
            for j, case in enumerate(present):
                for pred, target in target_of.get(case, []):
                    ax.hlines(target, j - 0.3, j + 0.3, colors="k", linestyles="dashed")
            ax.axhline(1.0, color="grey", linewidth=0.5)
            ax.set_xticks(range(len(present)))
            ax.set_xticklabels(present, fontsize=7, rotation=15)
            ax.set_ylabel("ratio (> 1: ours better)")
            ax.set_title("events, 2 ranks (dashed: target)%s"
                         % (" (smoke run, not results)" if quick else ""), fontsize=10)
            ax.legend(fontsize=7, loc="upper left")
            fig.tight_layout()
            path = os.path.join(outdir, name + ".png")
            fig.savefig(path, dpi=90)
            plt.close(fig)
            written.append(path)
            continue
        ncol = min(3, len(present))
        nrow = (len(present) + ncol - 1) // ncol
        fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.6 * nrow), squeeze=False)
        for i, case in enumerate(present):
            ax = axes[i // ncol][i % ncol]
            comps = sorted(data[case], key=lambda c: (COMPONENTS.index(c)
                                                      if c in COMPONENTS else 99, c))
            sizes_all = sorted({s for c in comps for s in data[case][c]})
            for comp in comps:
                pts = sorted(data[case][comp].items())
                ax.plot([sizes_all.index(s) for s, _ in pts], [r for _, r in pts],
                        marker="o", label=comp)
            for pred, target in target_of.get(case, []):
                xs = [j for j, s in enumerate(sizes_all) if pred(s)]
                if xs:
                    ax.hlines(target, min(xs) - 0.2, max(xs) + 0.2, colors="k",
                              linestyles="dashed", label="target %g" % target)
            ax.axhline(1.0, color="grey", linewidth=0.5)
            ax.set_xticks(range(len(sizes_all)))
            ax.set_xticklabels([size_label(s) for s in sizes_all])
            ax.set_title(case, fontsize=9)
            ax.set_xlabel("size")
            ax.set_ylabel("ratio (> 1: ours better)")
            ax.legend(fontsize=7)
        for j in range(len(present), nrow * ncol):
            axes[j // ncol][j % ncol].axis("off")
        fig.suptitle("%s: ratio to the baseline measured in the same run%s"
                     % (name, " (smoke run, not results)" if quick else ""))
        fig.tight_layout()
        path = os.path.join(outdir, name + ".png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def main(argv):
    path, outdir, do_plots, quick = None, None, True, False
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--no-plots":
            do_plots = False
        elif a == "--quick":
            quick = True
        elif a == "--plots":
            if i + 1 >= len(argv):
                usage("--plots needs a directory")
            outdir = argv[i + 1]
            i += 1
        elif a.startswith("--plots="):
            outdir = a.split("=", 1)[1]
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        elif a.startswith("-"):
            usage("unknown option %s" % a)
        elif path is None:
            path = a
        else:
            usage("one input file only")
        i += 1
    path = path or "bench.jsonl"
    rows = load(path)
    title = " (smoke run: figures are not results)" if quick else ""
    print("## Medians%s\n" % title)
    medians_table(rows)
    print("\n## Targets (issue 15)%s\n" % title)
    targets_table(rows)
    if do_plots:
        outdir = outdir or (os.path.dirname(os.path.abspath(path)) or ".")
        for p in plots(rows, outdir, quick):
            print("plot: %s" % p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
