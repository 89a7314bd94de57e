#include "app_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

double
app_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double
app_median(const double *v, int n)
{
    if (n <= 0)
        return 0.0;
    double *c = malloc(sizeof(double) * (size_t)n);
    if (!c)
        return v[0];
    memcpy(c, v, sizeof(double) * (size_t)n);
    qsort(c, (size_t)n, sizeof(double), cmp_double);
    double m = (n % 2) ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

size_t
app_parse_size(const char *s)
{
    if (!s || !*s)
        return 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return 0;
    switch (*end) {
    case 'k': case 'K': v <<= 10; break;
    case 'm': case 'M': v <<= 20; break;
    case 'g': case 'G': v <<= 30; break;
    case '\0': break;
    default: return 0;
    }
    return (size_t)v;
}

int
app_has_flag(int argc, char **argv, const char *flag)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return 1;
    return 0;
}

const char *
app_opt(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], name, n) == 0) {
            if (argv[i][n] == '=')
                return argv[i] + n + 1;
            if (argv[i][n] == '\0' && i + 1 < argc)
                return argv[i + 1];
        }
    }
    return NULL;
}

void
app_report(int json, const char *bench, const char *case_name, int ranks,
           size_t size, double ours, double baseline, const char *baseline_name,
           const char *unit, int higher_better)
{
    static int header_done;
    double ratio = 0.0;
    if (ours > 0 && baseline > 0)
        ratio = higher_better ? ours / baseline : baseline / ours;
    if (json) {
        printf("{\"bench\":\"%s\",\"case\":\"%s\",\"ranks\":%d,\"size\":%zu,"
               "\"ours\":%.6g,\"baseline\":%.6g,\"baseline_name\":\"%s\","
               "\"unit\":\"%s\",\"ratio\":%.4f}\n",
               bench, case_name, ranks, size, ours, baseline, baseline_name, unit,
               ratio);
    } else {
        if (!header_done) {
            printf("%-28s %5s %10s %14s %14s %-22s %-9s %7s\n", "case", "ranks",
                   "size", "ours", "baseline", "baseline_name", "unit", "ratio");
            header_done = 1;
        }
        printf("%-28s %5d %10zu %14.4g %14.4g %-22s %-9s %7.2f\n", case_name, ranks,
               size, ours, baseline, baseline_name, unit, ratio);
    }
    fflush(stdout);
}

void
app_park(MPI_Comm comm, int idle)
{
    MPI_Request req;
    int done = 0;
    MPI_Ibarrier(comm, &req);
    for (;;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done)
            break;
        if (idle) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        } else {
            sched_yield();
        }
    }
}

void
app_print_stats(MPI_Comm comm, const char *label, pxs_bus_t *bus, pxs_store_t *store)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    pxs_bus_stats_t b;
    pxs_store_stats_t s;
    int hb = bus && pxs_bus_stats_init(&b) == PXS_OK && pxs_bus_stats(bus, &b) == PXS_OK;
    int hs = store && pxs_store_stats_init(&s) == PXS_OK && pxs_store_stats(store, &s) == PXS_OK;
    fflush(stdout);
    for (int r = 0; r < size; r++) {
        MPI_Barrier(comm);
        if (r != rank)
            continue;
        if (hb) {
            printf("stats %s rank %d bus: sent=%llu recv=%llu records=%llu appends=%llu "
                   "ends_sent=%llu ends_recv=%llu topics_closed=%u/%u topics_ended=%u/%u "
                   "slots=%u depth=%u depth_hwm=%u bp_waits=%llu bp_seconds=%.6f",
                   label, rank, (unsigned long long)b.events_sent,
                   (unsigned long long)b.events_received, (unsigned long long)b.records_appended,
                   (unsigned long long)b.appends, (unsigned long long)b.ends_sent,
                   (unsigned long long)b.ends_received, b.topics_closed, b.topics_published,
                   b.topics_ended, b.topics_subscribed, b.mailbox_slots, b.depth_now,
                   b.depth_hwm, (unsigned long long)b.backpressure_waits,
                   b.backpressure_seconds);
            for (uint32_t g = 0; g < b.n_groups; g++) {
                printf(" group(topic %u):", b.group_topic[g]);
                for (uint32_t i = 0; i < b.group_members[g] && i < PXS_STATS_MEMBERS_MAX; i++)
                    printf(" r%d=%llu", b.group_rank[g][i], (unsigned long long)b.group_sent[g][i]);
            }
            printf("\n");
        }
        if (hs)
            printf("stats %s rank %d store: puts=%llu bytes_put=%llu resolves=%llu "
                   "bytes_resolved=%llu self/shm/rma=%llu/%llu/%llu stale=%llu corrupt=%llu "
                   "put_waits=%llu put_wait_seconds=%.6f arena=%llu used=%llu used_hwm=%llu "
                   "largest_free=%llu live=%llu\n",
                   label, rank, (unsigned long long)s.puts, (unsigned long long)s.bytes_put,
                   (unsigned long long)s.resolves, (unsigned long long)s.bytes_resolved,
                   (unsigned long long)s.resolves_self, (unsigned long long)s.resolves_shm,
                   (unsigned long long)s.resolves_rma, (unsigned long long)s.stale,
                   (unsigned long long)s.corrupt, (unsigned long long)s.put_waits,
                   s.put_wait_seconds, (unsigned long long)s.arena_bytes,
                   (unsigned long long)s.arena_used, (unsigned long long)s.arena_hwm,
                   (unsigned long long)s.largest_free, (unsigned long long)s.objects_live);
        fflush(stdout);
    }
    MPI_Barrier(comm);
}
