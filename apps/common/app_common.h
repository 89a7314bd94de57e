/* Shared helpers for the demo and benchmarks (not part of the library). */
#ifndef PXS_APP_COMMON_H
#define PXS_APP_COMMON_H

#include <stddef.h>

#include <mpi.h>

#include "proxystream.h"

/* Monotonic seconds. */
double app_now(void);
/* Median of n doubles (sorts a copy). */
double app_median(const double *v, int n);
/* Parse "64K", "1M", "16MiB", "2G" -> bytes; returns 0 on error. */
size_t app_parse_size(const char *s);
/* Does argv hold exactly `flag`? */
int app_has_flag(int argc, char **argv, const char *flag);
/* Value after `--name` (either "--name v" or "--name=v"), or NULL. */
const char *app_opt(int argc, char **argv, const char *name);

/* --stats: every rank of comm prints the counters of its bus and/or store
 * (either may be NULL) on stdout, in rank order, one line per handle,
 * labelled `label` (pxs_bus_stats, pxs_store_stats). Collective. */
void app_print_stats(MPI_Comm comm, const char *label, pxs_bus_t *bus, pxs_store_t *store);

/* Do ranks a and b of comm share a node (MPI_COMM_TYPE_SHARED; not so
 * across tests/tools/fakenodes.sh's emulated nodes)? Collective over comm;
 * the same answer on every rank. */
int app_same_node(MPI_Comm comm, int a, int b);

/* Wait for every rank of comm (a barrier): MPI_Ibarrier, then MPI_Test with
 * 100 us naps when `idle`, else with sched_yield (a rank that took part
 * keeps calling MPI: under osc/ucx and pt2pt its peers' atomics on its
 * windows, e.g. resolves of its objects, need it inside MPI). Ranks that
 * take no part in a measurement park
 * here instead of in a spinning MPI_Barrier, so that on an oversubscribed
 * node they do not take the cores from the ranks being measured (Open MPI's
 * progress loop yields when oversubscribed, and every MPI_Win_flush under
 * osc/rdma then becomes a context switch to a spinning idle rank). */
void app_park(MPI_Comm comm, int idle);

/* ------------------------------------------------------------ benchmarks
 * Every pxs-bench-* program starts with app_bench_init (options below, the
 * quiet check) and measures with app_interleave (ours and the baselines in
 * alternation, medians of reps samples). */

/* Settings shared by every benchmark program. */
typedef struct {
    int json;            /* --json: JSON lines instead of a table */
    int quick;           /* --quick: smoke-run sizes (each program says which) */
    int reps;            /* --reps N (or --repeats N): samples per figure */
    double quiet_busy;   /* quiet when CPU busy < this fraction (0..1; 1: always) */
    double quiet_wait;   /* wait at most this many seconds for quiet */
    double busy;         /* CPU busy fraction measured last, before the start */
    double waited;       /* seconds spent waiting for quiet */
    int quiet;           /* busy < quiet_busy at the start */
} app_bench_t;

#define APP_BENCH_REPS_DEFAULT 5
#define APP_BENCH_QUIET_BUSY_DEFAULT 0.15
#define APP_BENCH_QUIET_WAIT_DEFAULT 60.0
#define APP_BENCH_QUIET_WAIT_QUICK 0.0

/* CPU busy fraction of the whole machine (all CPUs, 0..1) over `seconds`,
 * from the first line of /proc/stat: 1 - (idle + iowait) / total. Returns a
 * negative value when /proc/stat cannot be read. Sleeps `seconds`. */
double app_cpu_busy(double seconds);

/* Parse the shared options and check that the machine is quiet. Collective
 * over comm. Options (each with an environment override, the option wins):
 *   --json, --quick
 *   --reps N          PXS_BENCH_REPS        (default 5, N >= 1)
 *   --quiet-busy F    PXS_BENCH_QUIET_BUSY  (default 0.15; 0..1; quiet when the
 *                     busy fraction is below F; 0 = never quiet, 1 = always)
 *   --quiet-wait S    PXS_BENCH_QUIET_WAIT  (default 60 s, --quick: 0; S >= 0)
 * Rank 0 samples CPU busy over 0.5 s, again and again until it is below
 * quiet_busy or quiet_wait seconds have passed, then the run starts anyway;
 * the other ranks sleep meanwhile (app_park). Rank 0 writes one line on
 * stderr saying how busy the machine was and whether it was quiet (and on
 * stdout as a "# " comment when not --json). app_report adds the busy
 * fraction and reps to every JSON line.
 * Returns 0, or 2 after a message on rank 0's stderr when an option is bad
 * (every rank returns 2: the caller finalizes MPI and exits with it). */
int app_bench_init(MPI_Comm comm, int argc, char **argv, const char *prog, app_bench_t *b);

/* One sample of one contender (ours or a baseline). Called on every rank of
 * the benchmark's communicator, as the contender requires; returns the
 * sample (time, rate, ...), meaningful on the ranks that measure. */
typedef double (*app_sample_fn)(void *ctx);

/* Interleaved repetitions: `reps` rounds, each calling fn[0], fn[1], ...,
 * fn[n-1] once in that order (ABAB..., ABCABC...), so that a change of the
 * machine's load hits ours and the baselines alike. med_out[k] = median of
 * the reps samples of fn[k]. reps is capped at 1000. */
void app_interleave(int reps, int n, app_sample_fn const *fn, void *const *ctx,
                    double *med_out);

/* One benchmark measurement. higher_better: 1 when a larger value is better
 * (throughput), 0 when smaller is better (latency, bytes). ratio is always
 * "> 1 means ours is better": ours/baseline or baseline/ours.
 * json != 0: one JSON object per line with fields bench, case, ranks, size,
 * ours, baseline, baseline_name, unit, ratio, busy (CPU busy fraction at the
 * start, -1 if unknown) and reps (samples per median; both from the last
 * app_bench_init, 0 before one). Otherwise a table row (the header is
 * printed by the first call with json == 0). */
void app_report(int json, const char *bench, const char *case_name, int ranks,
                size_t size, double ours, double baseline,
                const char *baseline_name, const char *unit, int higher_better);

#endif
