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

/* One benchmark measurement. higher_better: 1 when a larger value is better
 * (throughput), 0 when smaller is better (latency, bytes). ratio is always
 * "> 1 means ours is better": ours/baseline or baseline/ours.
 * json != 0: one JSON object per line with fields bench, case, ranks, size,
 * ours, baseline, baseline_name, unit, ratio. Otherwise a table row (the
 * header is printed by the first call with json == 0). */
void app_report(int json, const char *bench, const char *case_name, int ranks,
                size_t size, double ours, double baseline,
                const char *baseline_name, const char *unit, int higher_better);

#endif
