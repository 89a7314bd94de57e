/* pxs-bench-scale: how every cost grows with ranks (issue 13; docs/DESIGN.md
 * "Scale model").
 *   mpirun --oversubscribe -n N pxs-bench-scale [--events N] [--batch K]
 *          [--reps R] [--cases create,many-to-one,one-to-many,group,destroy]
 *          [--json] [--check]
 * One run measures one N (the script apps/run-scale.sh sweeps N). Cases:
 *   create       bus and store creation on N ranks: time (max over ranks,
 *                median of R), routing state kept per rank (pxs_bus_stats
 *                routing_bytes; baseline: the O(ranks) tables kept before
 *                issue 13), resident memory added per rank; baselines
 *                MPI_Allgather + MPI_Win_allocate of the same window, and
 *                MPI_Win_allocate of the same arena
 *   many-to-one  N-1 producers -> 1 subscriber: us/event at the subscriber;
 *                baseline MPI_Send/MPI_Recv of the same 192-byte records
 *   one-to-many  1 producer -> N-1 subscribers: us/event at the producer
 *                (each event goes to every subscriber); baseline: MPI_Send
 *                of the record to each subscriber
 *   group        1 producer -> a work-sharing group of N-1 members: us/event
 *                at the producer; baseline: round-robin MPI_Send
 *   destroy      bus and store destroy time; baseline MPI_Win_free
 * size = the number that grows (ranks, producers, subscribers, members).
 * Every event-case line also carries the per-event work summed over ranks
 * from pxs_bus_stats: atomics, flushes, bytes put, subscriber atomics per
 * event, and group probes per pick (the scan length).
 * --check: exit non-zero unless the counters fit the model (docs/DESIGN.md
 * "Scale model"): routing state that does not grow with N, group probes per
 * pick <= 8, atomics per event within the model's bound. The scale tests run
 * it this way (PXS_SCALE_VERBOSE=1: print the many-to-one atomics against
 * their polling bound). ratio > 1 means ours is better. Times on an oversubscribed
 * node are not meaningful in absolute terms: compare the counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "app_common.h"
#include "proxystream.h"

#define REC 192
#define SLOTS 256
static int rank, size, json, check, failed;
static uint32_t batch = 1;
static long nev = 2000;
static int reps = 5;
static double stall_s; /* run_bus: the consumers start reading this late */

static void
die(const char *what, int rc)
{
    fprintf(stderr, "[%d] %s: %s (%s)\n", rank, what, pxs_errname(rc), pxs_last_error_detail());
    MPI_Abort(MPI_COMM_WORLD, 1);
}
#define OK(x)                                                                  \
    do {                                                                       \
        int rc_ = (x);                                                         \
        if (rc_ < 0)                                                           \
            die(#x, rc_);                                                      \
    } while (0)

/* per-event work, summed over ranks, divided by events published */
typedef struct {
    double atomics, flushes, bytes, sub_atomics, probes_per_pick, appends;
    double records; /* event records appended (ENDs excluded), summed over ranks */
    double t_atomics, t_flushes, t_bytes, t_appends, t_records; /* totals, ENDs included */
    double t_sent, t_bp_waits, t_bp_seconds; /* events sent, backpressure episodes, time */
    int have;
} work_t;

static void
report(const char *cas, const char *metric, size_t sz, double ours, double base,
       const char *bname, const char *unit, int higher_better, const work_t *w)
{
    if (rank != 0)
        return;
    double ratio = 0.0;
    if (ours > 0 && base > 0)
        ratio = higher_better ? ours / base : base / ours;
    if (json) {
        printf("{\"bench\":\"scale\",\"case\":\"%s\",\"metric\":\"%s\",\"ranks\":%d,"
               "\"size\":%zu,\"batch\":%u,\"ours\":%.6g,\"baseline\":%.6g,"
               "\"baseline_name\":\"%s\",\"unit\":\"%s\",\"ratio\":%.4f",
               cas, metric, size, sz, batch, ours, base, bname, unit, ratio);
        if (w && w->have)
            printf(",\"atomics_per_event\":%.4g,\"flushes_per_event\":%.4g,"
                   "\"bytes_per_event\":%.6g,\"sub_atomics_per_event\":%.4g,"
                   "\"probes_per_pick\":%.4g,\"appends_per_event\":%.4g",
                   w->atomics, w->flushes, w->bytes, w->sub_atomics, w->probes_per_pick,
                   w->appends);
        printf("}\n");
    } else {
        static int hdr;
        if (!hdr++)
            printf("%-12s %-14s %5s %5s %12s %12s %-26s %-9s %6s | %7s %7s %8s %7s %6s\n",
                   "case", "metric", "ranks", "size", "ours", "baseline", "baseline_name",
                   "unit", "ratio", "atom/ev", "flsh/ev", "bytes/ev", "subat/ev", "probes");
        printf("%-12s %-14s %5d %5zu %12.4g %12.4g %-26s %-9s %6.2f", cas, metric, size, sz,
               ours, base, bname, unit, ratio);
        if (w && w->have)
            printf(" | %7.3f %7.3f %8.1f %7.3f %6.2f", w->atomics, w->flushes, w->bytes,
                   w->sub_atomics, w->probes_per_pick);
        printf("\n");
    }
    fflush(stdout);
}

static void
expect(int ok, const char *what)
{
    if (!ok && rank == 0) {
        fprintf(stderr, "pxs-bench-scale --check: %s (ranks %d, batch %u)\n", what, size, batch);
        failed = 1;
    }
}

static int
sole_off(void)
{
    const char *e = getenv("PXS_MAILBOX_SOLE");
    return e && (strcmp(e, "0") == 0 || strcmp(e, "off") == 0 || strcmp(e, "false") == 0);
}

/* PXS_SHM=0: every append goes through the MPI rings, so the counters
 * (MPI operations) must show each one. Otherwise same-node appends go
 * through the node ring and count no MPI operation (docs/DESIGN.md "Node
 * ring"): the exact per-append figures are not checked then, the record
 * counts, probes, routing state and the polling bound still are. */
static int
mpi_rings(void)
{
    const char *e = getenv("PXS_SHM");
    return e && (strcmp(e, "0") == 0 || strcmp(e, "off") == 0 || strcmp(e, "false") == 0);
}

static size_t
rss_bytes(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static double
max_all(double v)
{
    double m;
    MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

static pxs_bus_t *
mkbus(const uint32_t *pub, size_t np, uint32_t sub, const char *group)
{
    pxs_subscription_t s;
    memset(&s, 0, sizeof s);
    s.topic = sub;
    s.group = group;
    pxs_bus_opts_t o;
    OK(pxs_bus_opts_init(&o));
    o.publish = pub;
    o.n_publish = np;
    o.subscribe = &s;
    o.n_subscribe = sub ? 1 : 0;
    o.batch = batch;
    o.slots = SLOTS;
    pxs_bus_t *b;
    OK(pxs_bus_create(MPI_COMM_WORLD, &o, &b));
    return b;
}

/* ---------------------------------------------------------------- create, destroy */
static void
case_create_destroy(int do_create, int do_destroy)
{
    /* ring: rank r publishes topic r+1 and subscribes topic r (rank r-1's):
     * what each rank declares does not grow with N, so neither may its
     * routing state */
    uint32_t mine = (uint32_t)rank + 1, prev = rank ? (uint32_t)rank : (uint32_t)size;
    double *tc = calloc((size_t)reps, sizeof *tc), *td = calloc((size_t)reps, sizeof *td);
    double *bc = calloc((size_t)reps, sizeof *bc), *bd = calloc((size_t)reps, sizeof *bd);
    double *sc = calloc((size_t)reps, sizeof *sc), *sd = calloc((size_t)reps, sizeof *sd);
    double *wc = calloc((size_t)reps, sizeof *wc), *wd = calloc((size_t)reps, sizeof *wd);
    double routing = 0, rss_bus = 0, rss_store = 0;
    size_t arena = (size_t)1 << 20;
    MPI_Aint winb = 64 + (MPI_Aint)SLOTS * (8 + REC);
    for (int r = 0; r < reps; r++) {
        /* bus */
        MPI_Barrier(MPI_COMM_WORLD);
        size_t m0 = rss_bytes();
        double t0 = app_now();
        pxs_bus_t *b = mkbus(&mine, 1, prev, NULL);
        tc[r] = max_all(app_now() - t0);
        size_t m1 = rss_bytes();
        pxs_bus_stats_t st;
        pxs_bus_stats_init(&st);
        OK(pxs_bus_stats(b, &st));
        routing = max_all((double)st.routing_bytes);
        rss_bus = max_all((double)(m1 > m0 ? m1 - m0 : 0));
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = app_now();
        OK(pxs_bus_destroy(b));
        td[r] = max_all(app_now() - t0);
        /* baseline: what any bus must do: exchange declarations, allocate
         * the mailbox window; then free it */
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = app_now();
        unsigned char mydecl[32] = {0}, *all = malloc((size_t)size * 32);
        MPI_Allgather(mydecl, 32, MPI_BYTE, all, 32, MPI_BYTE, MPI_COMM_WORLD);
        MPI_Win w;
        void *base;
        MPI_Win_allocate(winb, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &w);
        bc[r] = max_all(app_now() - t0);
        free(all);
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = app_now();
        MPI_Win_free(&w);
        bd[r] = max_all(app_now() - t0);
        /* store */
        pxs_store_opts_t so;
        OK(pxs_store_opts_init(&so));
        so.arena_bytes = arena;
        MPI_Barrier(MPI_COMM_WORLD);
        m0 = rss_bytes();
        t0 = app_now();
        pxs_store_t *s;
        OK(pxs_store_create(MPI_COMM_WORLD, &so, &s));
        sc[r] = max_all(app_now() - t0);
        m1 = rss_bytes();
        rss_store = max_all((double)(m1 > m0 ? m1 - m0 : 0));
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = app_now();
        OK(pxs_store_destroy(s));
        sd[r] = max_all(app_now() - t0);
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = app_now();
        MPI_Win_allocate((MPI_Aint)arena, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &w);
        wc[r] = max_all(app_now() - t0);
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = app_now();
        MPI_Win_free(&w);
        wd[r] = max_all(app_now() - t0);
    }
    /* what the routing tables indexed by rank cost before issue 13, for the
     * same declarations: direct[size] pointers, lseq[1 x size], links[1 x
     * size] (24 B), is_producer[size] */
    double before = (double)size * (8 + 8 + 24 + 1);
    if (do_create) {
        report("create", "bus-time", (size_t)size, app_median(tc, reps) * 1e6,
               app_median(bc, reps) * 1e6, "allgather+win_allocate", "us", 0, NULL);
        report("create", "bus-routing", (size_t)size, routing, before, "O(ranks) tables alone (before)",
               "bytes", 0, NULL);
        report("create", "bus-rss", (size_t)size, rss_bus, (double)winb, "mailbox window",
               "bytes", 0, NULL);
        report("create", "store-time", (size_t)size, app_median(sc, reps) * 1e6,
               app_median(wc, reps) * 1e6, "win_allocate(arena)", "us", 0, NULL);
        report("create", "store-rss", (size_t)size, rss_store, (double)arena, "arena", "bytes",
               0, NULL);
        /* the ring's routing state does not depend on N (a few hundred bytes
         * plus the batch queues) */
        expect(routing > 0 && routing < 4096.0 + (double)batch * 400.0,
               "routing state per rank grows beyond the ring's own topics");
    }
    if (do_destroy) {
        report("destroy", "bus-time", (size_t)size, app_median(td, reps) * 1e6,
               app_median(bd, reps) * 1e6, "win_free", "us", 0, NULL);
        report("destroy", "store-time", (size_t)size, app_median(sd, reps) * 1e6,
               app_median(wd, reps) * 1e6, "win_free(arena)", "us", 0, NULL);
    }
    free(tc), free(td), free(bc), free(bd), free(sc), free(sd), free(wc), free(wd);
}

/* ---------------------------------------------------------------- events */
static work_t
gather_work(pxs_bus_t *b, double events)
{
    pxs_bus_stats_t st;
    pxs_bus_stats_init(&st);
    OK(pxs_bus_stats(b, &st));
    double v[12] = {(double)st.rma_atomics, (double)st.rma_flushes, (double)st.rma_bytes,
                    (double)st.sub_rma_atomics, (double)st.group_probes,
                    (double)st.group_picks, (double)st.ends_sent, (double)st.appends,
                    (double)st.records_appended, (double)st.events_sent,
                    (double)st.backpressure_waits, st.backpressure_seconds};
    double s[12];
    MPI_Allreduce(v, s, 12, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    work_t w;
    w.atomics = s[0] / events;
    w.flushes = s[1] / events;
    w.bytes = s[2] / events;
    w.sub_atomics = s[3] / events;
    w.probes_per_pick = s[5] > 0 ? s[4] / s[5] : 0;
    w.appends = s[7] / events;
    w.records = s[8] - s[6];
    w.t_atomics = s[0];
    w.t_flushes = s[1];
    w.t_bytes = s[2];
    w.t_appends = s[7];
    w.t_records = s[8];
    w.t_sent = s[9];
    w.t_bp_waits = s[10];
    w.t_bp_seconds = s[11];
    w.have = 1;
    return w;
}

/* Roles: producers publish topic 1 (n events each, then close); consumers
 * subscribe to it (group name or plain) and read until END. Returns the
 * elapsed time measured on `timer` rank (0). */
static double
run_bus(int is_prod, int is_cons, const char *group, work_t *w, long n, int nprod)
{
    uint32_t t = 1;
    pxs_bus_t *b = mkbus(&t, is_prod ? 1 : 0, is_cons ? 1 : 0, group);
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    OK(pxs_bus_publisher(b, &pub));
    OK(pxs_bus_subscriber(b, &sub));
    pxs_proxy_t px;
    pxs_proxy_info_t pinfo;
    memset(&pinfo, 0, sizeof pinfo);
    pinfo.kind = PXS_CONN_RMA;
    pinfo.size = 1;
    if (pxs_proxy_encode(&pinfo, &px) != PXS_OK)
        MPI_Abort(MPI_COMM_WORLD, 1);
    unsigned char meta[64] = {0};
    pxs_event_t ev;
    long got = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = app_now();
    if (is_prod) {
        for (long i = 0; i < n; i++)
            OK(pxs_publisher_send(pub, 1, &px, meta, sizeof meta, NULL));
        OK(pxs_publisher_close_topic(pub, 1));
    }
    if (is_cons) {
        int rc;
        if (stall_s > 0)
            usleep((useconds_t)(stall_s * 1e6));
        while ((rc = pxs_subscriber_recv(sub, &ev, -1)) == PXS_OK || ev.topic != PXS_TOPIC_ALL) {
            OK(rc);
            got += rc == PXS_OK;
        }
    }
    app_park(MPI_COMM_WORLD, !is_prod && !is_cons);
    double el = max_all(app_now() - t0);
    /* every event arrived exactly once (plain: at every subscriber; group:
     * at one member) */
    long tot = 0;
    MPI_Allreduce(&got, &tot, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    long want = group ? n * nprod : -1;
    if (group && tot != want)
        die("group event count", PXS_ERR_CORRUPT);
    if (!group && is_cons && got != n * nprod)
        die("event count", PXS_ERR_CORRUPT);
    *w = gather_work(b, (double)(n * nprod));
    OK(pxs_bus_destroy(b));
    return el;
}

/* Baseline: MPI_Send of the same records; `rr`: round-robin over the
 * consumers instead of to each. */
static double
run_raw(int is_prod, int ncons, int first_cons, int rr, long n, int nprod)
{
    unsigned char rec[REC];
    memset(rec, 1, sizeof rec);
    int is_cons = rank >= first_cons && rank < first_cons + ncons;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = app_now();
    if (is_prod)
        for (long i = 0; i < n; i++) {
            if (rr)
                MPI_Send(rec, REC, MPI_BYTE, first_cons + (int)(i % ncons), 7, MPI_COMM_WORLD);
            else
                for (int c = 0; c < ncons; c++)
                    MPI_Send(rec, REC, MPI_BYTE, first_cons + c, 7, MPI_COMM_WORLD);
        }
    if (is_cons) {
        long expect_n = rr ? (n / ncons + ((rank - first_cons) < n % ncons)) : n * nprod;
        for (long i = 0; i < expect_n; i++)
            MPI_Recv(rec, REC, MPI_BYTE, MPI_ANY_SOURCE, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    app_park(MPI_COMM_WORLD, !is_prod && !is_cons);
    return max_all(app_now() - t0);
}

/* Polls of a full mailbox (docs/DESIGN.md "Scale model", "Polling a full
 * mailbox"): a credit attempt that gets nothing costs at most 3 atomics
 * (read, take, give back). One is made per non-blocking flush (<= one per
 * send, + close and destroy); a wait (backpressure episode) makes at most
 * 13 (the read interval doubles from 64 us to its cap, 65.5 ms), + 12 more
 * per append within it when batch > 1 (a take restarts the interval; at
 * batch 1 a take ends the wait), + one per 65.5 ms waited. An append costs
 * at most 6 (read, take, give back, ticket, two sequence-word writes).
 * Counters only: the bound holds however the ranks are scheduled and does
 * not grow with the producers; a producer polling at its back-off pace
 * (2 atomics per <= 64 us pause, before) exceeds it once it waits a few
 * milliseconds. */
static void
m2o_poll_bound(const work_t *w, int P, const char *what)
{
    double fails = (w->t_sent + 4.0 * P) + 13.0 * w->t_bp_waits +
                   (batch > 1 ? 12.0 * w->t_appends : 0.0) + w->t_bp_seconds / 65.5e-3;
    double bound = 6.0 * w->t_appends + 3.0 * fails;
    char msg[256];
    snprintf(msg, sizeof msg,
             "%s: %.0f atomics, polling bound %.0f (appends %.0f, sends %.0f, waits %.0f, "
             "%.3f s waited)",
             what, w->t_atomics, bound, w->t_appends, w->t_sent, w->t_bp_waits,
             w->t_bp_seconds);
    expect(w->t_atomics <= bound, msg);
    if (getenv("PXS_SCALE_VERBOSE") && rank == 0)
        fprintf(stderr, "%s\n", msg);
}

static void
case_many_to_one(void)
{
    int P = size - 1;
    work_t w;
    double ours = run_bus(rank > 0, rank == 0, NULL, &w, nev, P);
    double base = run_raw(rank > 0, 1, 0, 0, nev, P);
    double ne = (double)nev * P;
    report("many-to-one", "recv", (size_t)P, ours / ne * 1e6, base / ne * 1e6, "mpi_send_recv",
           "us/event", 0, &w);
    /* atomics and flushes include credit polls while a mailbox is full (a
     * wait's work, not deterministic): checked are the records moved */
    expect(w.records == ne, "many-to-one: records appended != events");
    /* shared mailbox: every append takes credits and a ticket and writes
     * sequence words (3 atomics) with 4 flushes; polls only add */
    if (mpi_rings()) {
        expect(w.t_bytes == w.t_records * REC, "many-to-one: bytes put != records x 192");
        expect(w.t_atomics >= 3 * w.t_appends && w.t_flushes >= 4 * w.t_appends,
               "many-to-one: fewer atomics/flushes than 3/4 per append (shared mailbox)");
    }
    m2o_poll_bound(&w, P, "many-to-one");
    if (check) {
        /* again with a subscriber that starts 300 ms late: every producer
         * waits on the full mailbox that long; polling at the back-off
         * pace would cost thousands of atomics per producer */
        stall_s = 0.3;
        (void)run_bus(rank > 0, rank == 0, NULL, &w, nev, P);
        stall_s = 0;
        expect(w.records == ne, "many-to-one (stalled subscriber): records appended != events");
        m2o_poll_bound(&w, P, "many-to-one (stalled subscriber)");
    }
}

static void
case_one_to_many(void)
{
    int M = size - 1;
    work_t w;
    double ours = run_bus(rank == 0, rank > 0, NULL, &w, nev, 1);
    double base = run_raw(rank == 0, M, 1, 0, nev, 1);
    report("one-to-many", "send", (size_t)M, ours / (double)nev * 1e6,
           base / (double)nev * 1e6, "mpi_send_each", "us/event", 0, &w);
    expect(w.records == (double)nev * M, "one-to-many: records appended != events x M");
    if (mpi_rings())
        expect(w.t_bytes == w.t_records * REC, "one-to-many: bytes put != records x 192");
    /* one writer per mailbox (the sole-writer path, on unless
     * PXS_MAILBOX_SOLE=0): exactly 2 flushes per append, at least one
     * atomic (the sequence words) */
    if (!sole_off() && mpi_rings())
        expect(w.t_flushes == 2 * w.t_appends && w.t_atomics >= w.t_appends,
               "one-to-many: sole writer not 2 flushes and >= 1 atomic per append");
}

static void
case_group(void)
{
    int S = size - 1;
    work_t w;
    double ours = run_bus(rank == 0, rank > 0, "g", &w, nev, 1);
    double base = run_raw(rank == 0, S, 1, 1, nev, 1);
    report("group", "send", (size_t)S, ours / (double)nev * 1e6, base / (double)nev * 1e6,
           "mpi_send_round_robin", "us/event", 0, &w);
    expect(w.probes_per_pick <= 8.0, "group: more than 8 members probed per pick");
    expect(w.records == (double)nev, "group: records appended != events");
    if (mpi_rings())
        expect(w.t_bytes == w.t_records * REC, "group: bytes put != records x 192");
    if (!sole_off() && mpi_rings())
        expect(w.t_flushes == 2 * w.t_appends,
               "group: sole writer not 2 flushes per append");
}

static int
has_case(const char *list, const char *c)
{
    if (!list)
        return 1;
    size_t n = strlen(c);
    for (const char *p = list; (p = strstr(p, c)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    json = app_has_flag(argc, argv, "--json");
    check = app_has_flag(argc, argv, "--check");
    const char *e = app_opt(argc, argv, "--events"), *k = app_opt(argc, argv, "--batch");
    const char *rp = app_opt(argc, argv, "--reps"), *cs = app_opt(argc, argv, "--cases");
    if (e)
        nev = atol(e);
    if (k)
        batch = (uint32_t)atoi(k);
    if (rp)
        reps = atoi(rp);
    if (size < 2 || nev < 1 || batch < 1 || batch > SLOTS || reps < 1) {
        if (rank == 0)
            fprintf(stderr, "pxs-bench-scale: needs >= 2 ranks, --events >= 1, "
                            "--batch 1..%d, --reps >= 1\n", SLOTS);
        MPI_Finalize();
        return 2;
    }
    if (has_case(cs, "create") || has_case(cs, "destroy"))
        case_create_destroy(has_case(cs, "create"), has_case(cs, "destroy"));
    if (has_case(cs, "many-to-one"))
        case_many_to_one();
    if (has_case(cs, "one-to-many"))
        case_one_to_many();
    if (has_case(cs, "group"))
        case_group();
    MPI_Bcast(&failed, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return check && failed ? 1 : 0;
}
