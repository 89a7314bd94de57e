#include "app_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

/* what app_report adds to each JSON line (set by app_bench_init) */
static double g_busy = -1.0;
static int g_reps;

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
               "\"unit\":\"%s\",\"ratio\":%.4f,\"busy\":%.4f,\"reps\":%d}\n",
               bench, case_name, ranks, size, ours, baseline, baseline_name, unit,
               ratio, g_busy, g_reps);
    } else {
        if (!header_done) {
            printf("%-38s %5s %10s %14s %14s %-26s %-9s %7s\n", "case", "ranks",
                   "size", "ours", "baseline", "baseline_name", "unit", "ratio");
            header_done = 1;
        }
        printf("%-38s %5d %10zu %14.4g %14.4g %-26s %-9s %7.2f\n", case_name, ranks,
               size, ours, baseline, baseline_name, unit, ratio);
    }
    fflush(stdout);
}

int
app_same_node(MPI_Comm comm, int a, int b)
{
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm node;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    /* the node's lowest rank in comm names the node */
    int lead = rank, la, lb;
    MPI_Allreduce(MPI_IN_PLACE, &lead, 1, MPI_INT, MPI_MIN, node);
    MPI_Comm_free(&node);
    la = lb = lead;
    MPI_Bcast(&la, 1, MPI_INT, a, comm);
    MPI_Bcast(&lb, 1, MPI_INT, b, comm);
    return la == lb;
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

/* ------------------------------------------------------------ benchmarks */

/* first line of /proc/stat: busy and total jiffies; 0 on success */
static int
read_cpu(unsigned long long *busy, unsigned long long *total)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 4)
        return -1;
    /* user nice system idle iowait irq softirq steal (guest, guest_nice are
     * already counted in user and nice) */
    unsigned long long t = 0;
    for (int i = 0; i < 8 && i < n; i++)
        t += v[i];
    *total = t;
    *busy = t - v[3] - (n > 4 ? v[4] : 0);
    return 0;
}

double
app_cpu_busy(double seconds)
{
    unsigned long long b0, t0, b1, t1;
    if (read_cpu(&b0, &t0) != 0)
        return -1.0;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    if (read_cpu(&b1, &t1) != 0 || t1 <= t0)
        return -1.0;
    return (double)(b1 - b0) / (double)(t1 - t0);
}

/* option value, else environment value, else NULL */
static const char *
opt_or_env(int argc, char **argv, const char *opt, const char *env)
{
    const char *v = app_opt(argc, argv, opt);
    if (!v)
        v = getenv(env);
    return v && *v ? v : NULL;
}

/* parse a double in [lo, hi]; 0 on success */
static int
parse_range(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    double d = strtod(s, &end);
    if (end == s || *end != '\0' || !(d >= lo && d <= hi))
        return -1;
    *out = d;
    return 0;
}

int
app_bench_init(MPI_Comm comm, int argc, char **argv, const char *prog, app_bench_t *b)
{
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    memset(b, 0, sizeof *b);
    b->json = app_has_flag(argc, argv, "--json");
    b->quick = app_has_flag(argc, argv, "--quick");
    b->reps = APP_BENCH_REPS_DEFAULT;
    b->quiet_busy = APP_BENCH_QUIET_BUSY_DEFAULT;
    b->quiet_wait = b->quick ? APP_BENCH_QUIET_WAIT_QUICK : APP_BENCH_QUIET_WAIT_DEFAULT;
    b->busy = -1.0;
    const char *v, *bad = NULL;
    double d;
    if ((v = app_opt(argc, argv, "--reps")) || (v = app_opt(argc, argv, "--repeats")) ||
        (v = getenv("PXS_BENCH_REPS"))) {
        if (parse_range(v, 1, 1000, &d) != 0 || d != (double)(int)d)
            bad = "--reps (PXS_BENCH_REPS) must be an integer from 1 to 1000";
        else
            b->reps = (int)d;
    }
    if (!bad && (v = opt_or_env(argc, argv, "--quiet-busy", "PXS_BENCH_QUIET_BUSY"))) {
        if (parse_range(v, 0, 1, &b->quiet_busy) != 0)
            bad = "--quiet-busy (PXS_BENCH_QUIET_BUSY) must be a fraction from 0 to 1";
    }
    if (!bad && (v = opt_or_env(argc, argv, "--quiet-wait", "PXS_BENCH_QUIET_WAIT"))) {
        if (parse_range(v, 0, 86400, &b->quiet_wait) != 0)
            bad = "--quiet-wait (PXS_BENCH_QUIET_WAIT) must be seconds from 0 to 86400";
    }
    if (bad) {
        if (rank == 0)
            fprintf(stderr, "%s: bad option: %s (got \"%s\")\n", prog, bad, v);
        return 2;
    }
    /* the quiet check: rank 0 measures, the others sleep */
    double r[3] = {-1.0, 0.0, 0.0};
    if (rank == 0) {
        double t0 = app_now();
        for (;;) {
            r[0] = app_cpu_busy(0.5);
            r[1] = app_now() - t0;
            if (r[0] < 0 || r[0] < b->quiet_busy || b->quiet_busy >= 1 || r[1] >= b->quiet_wait)
                break;
        }
        r[2] = r[0] >= 0 && (r[0] < b->quiet_busy || b->quiet_busy >= 1);
        if (r[0] < 0)
            fprintf(stderr, "# %s: quiet check: cannot read /proc/stat; running\n", prog);
        else if (r[2])
            fprintf(stderr,
                    "# %s: quiet check: CPU busy %.1f%% (quiet: < %.0f%%) after %.1f s; running\n",
                    prog, 100 * r[0], 100 * b->quiet_busy, r[1]);
        else
            fprintf(stderr,
                    "# %s: quiet check: machine NOT quiet: CPU busy %.1f%% (threshold %.0f%%) "
                    "after waiting %.1f s (limit %.0f s); running anyway\n",
                    prog, 100 * r[0], 100 * b->quiet_busy, r[1], b->quiet_wait);
        if (!b->json)
            printf("# quiet check: CPU busy %.1f%% after %.1f s (%s), %d reps per median\n",
                   100 * r[0], r[1], r[2] ? "quiet" : "NOT quiet", b->reps);
        fflush(stdout);
        fflush(stderr);
        app_park(comm, 0);
    } else {
        app_park(comm, 1);
    }
    MPI_Bcast(r, 3, MPI_DOUBLE, 0, comm);
    b->busy = r[0];
    b->waited = r[1];
    b->quiet = r[2] != 0;
    g_busy = b->busy;
    g_reps = b->reps;
    return 0;
}

void
app_interleave(int reps, int n, app_sample_fn const *fn, void *const *ctx, double *med_out)
{
    if (reps < 1)
        reps = 1;
    if (reps > 1000)
        reps = 1000;
    double *v = malloc(sizeof(double) * (size_t)reps * (size_t)n);
    if (!v) {
        fprintf(stderr, "app_interleave: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < n; k++)
            v[(size_t)k * (size_t)reps + (size_t)r] = fn[k](ctx[k]);
    for (int k = 0; k < n; k++)
        med_out[k] = app_median(v + (size_t)k * (size_t)reps, reps);
    free(v);
}
