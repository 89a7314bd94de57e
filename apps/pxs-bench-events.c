/* pxs-bench-events: event plane latency and throughput against raw MPI.
 *   mpirun -n 5 pxs-bench-events [--events N] [--iters N] [--json] [--stats]
 * --stats: each rank prints its bus counters after each case (app_print_stats).
 * Cases (those that fit the number of ranks run):
 *   latency.1to1.bK     one-way latency, ping-pong over the bus (RTT/2);
 *                       baseline: MPI_Put + flush of the same 192-byte record
 *                       and a polled flag word (ping-pong, RTT/2)
 *   throughput.PtoS.bK  events/s per subscriber, P producers -> S subscribers;
 *                       baseline: MPI_Send/MPI_Recv of the same records
 * ratio > 1 means the bus is better. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "app_common.h"
#include "proxystream.h"

#define REC 192
static int rank, size, json, stats;

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

static pxs_bus_t *
mkbus(const uint32_t *pub, size_t np, const uint32_t *sub, size_t ns, uint32_t batch)
{
    pxs_subscription_t s[2];
    memset(s, 0, sizeof s); /* fields not set below (prefetch) are 0: defaults */
    for (size_t i = 0; i < ns; i++) {
        s[i].topic = sub[i];
        s[i].group = NULL;
    }
    pxs_bus_opts_t o;
    OK(pxs_bus_opts_init(&o));
    o.publish = pub;
    o.n_publish = np;
    o.subscribe = s;
    o.n_subscribe = ns;
    o.batch = batch;
    o.slots = 1024;
    pxs_bus_t *b;
    OK(pxs_bus_create(MPI_COMM_WORLD, &o, &b));
    return b;
}

/* ---------------------------------------------------------------- latency */
static double
lat_bus(uint32_t batch, int iters)
{
    uint32_t t1 = 1, t2 = 2;
    int me = rank == 0 ? 0 : rank == 1 ? 1 : -1;
    pxs_bus_t *b = me == 0 ? mkbus(&t1, 1, &t2, 1, batch)
                 : me == 1 ? mkbus(&t2, 1, &t1, 1, batch)
                           : mkbus(NULL, 0, NULL, 0, batch);
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    OK(pxs_bus_publisher(b, &pub));
    OK(pxs_bus_subscriber(b, &sub));
    pxs_proxy_t px;
    pxs_proxy_info_t pinfo;
    memset(&pinfo, 0, sizeof pinfo);
    pinfo.kind = PXS_CONN_RMA;
    pinfo.size = 1;
    if (pxs_proxy_encode(&pinfo, &px) != PXS_OK) /* publishers send valid proxies only */
        MPI_Abort(MPI_COMM_WORLD, 1);
    unsigned char meta[64] = {0};
    pxs_event_t ev;
    double *v = malloc(sizeof(double) * (size_t)iters);
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < iters + 100 && me >= 0; i++) {
        double t0 = app_now();
        if (me == 0) {
            OK(pxs_publisher_send(pub, 1, &px, meta, sizeof meta, NULL));
            if (batch > 1)
                OK(pxs_publisher_flush(pub));
            OK(pxs_subscriber_recv(sub, &ev, -1));
        } else {
            OK(pxs_subscriber_recv(sub, &ev, -1));
            OK(pxs_publisher_send(pub, 2, &px, meta, sizeof meta, NULL));
            if (batch > 1)
                OK(pxs_publisher_flush(pub));
        }
        if (i >= 100)
            v[i - 100] = (app_now() - t0) / 2;
    }
    app_park(MPI_COMM_WORLD, me < 0); /* idle ranks sleep, not spin (see app_park) */
    double med = me == 0 ? app_median(v, iters) : 0;
    free(v);
    if (stats)
        app_print_stats(MPI_COMM_WORLD, "pingpong", b, NULL);
    OK(pxs_bus_destroy(b));
    return med;
}

static double
lat_raw(int iters)
{
    /* per rank: [0..7] flag, [64..] record */
    MPI_Win win;
    unsigned char *base;
    MPI_Win_allocate(64 + REC, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
    memset(base, 0, 64 + REC);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    MPI_Barrier(MPI_COMM_WORLD);
    unsigned char rec[REC];
    memset(rec, 1, sizeof rec);
    uint64_t val[2];
    double *v = malloc(sizeof(double) * (size_t)iters);
    int peer = 1 - rank;
    volatile uint64_t *flag = (volatile uint64_t *)(void *)base;
    for (int i = 0; i < iters + 100 && rank < 2; i++) {
        double t0 = app_now();
        uint64_t want = (uint64_t)i + 1;
        if (rank == 1) {
            int n = 0;
            while (__atomic_load_n(flag, __ATOMIC_ACQUIRE) != want)
                if (++n % 64 == 0) {
                    int f;
                    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &f, MPI_STATUS_IGNORE);
                }
            MPI_Win_sync(win);
        }
        MPI_Put(rec, REC, MPI_BYTE, peer, 64, REC, MPI_BYTE, win);
        MPI_Win_flush(peer, win);
        val[0] = want;
        MPI_Accumulate(val, 1, MPI_UINT64_T, peer, 0, 1, MPI_UINT64_T, MPI_REPLACE, win);
        MPI_Win_flush(peer, win);
        if (rank == 0) {
            int n = 0;
            while (__atomic_load_n(flag, __ATOMIC_ACQUIRE) != want)
                if (++n % 64 == 0) {
                    int f;
                    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &f, MPI_STATUS_IGNORE);
                }
            MPI_Win_sync(win);
        }
        if (i >= 100)
            v[i - 100] = (app_now() - t0) / 2;
    }
    app_park(MPI_COMM_WORLD, rank >= 2);
    double med = rank == 0 ? app_median(v, iters) : 0;
    free(v);
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    return med;
}

/* ---------------------------------------------------------------- throughput */
/* returns events/s per subscriber (median over subscribers, valid on rank 0) */
static double
tput_bus(int P, int S, uint32_t batch, long n)
{
    uint32_t t = 1;
    int is_pub = rank < P, is_sub = rank >= P && rank < P + S;
    pxs_bus_t *b = mkbus(&t, is_pub, &t, is_sub, batch);
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    OK(pxs_bus_publisher(b, &pub));
    OK(pxs_bus_subscriber(b, &sub));
    pxs_proxy_t px;
    pxs_proxy_info_t pinfo;
    memset(&pinfo, 0, sizeof pinfo);
    pinfo.kind = PXS_CONN_RMA;
    pinfo.size = 1;
    if (pxs_proxy_encode(&pinfo, &px) != PXS_OK) /* publishers send valid proxies only */
        MPI_Abort(MPI_COMM_WORLD, 1);
    unsigned char meta[64] = {0};
    pxs_event_t ev;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = app_now(), rate = 0;
    if (is_pub) {
        for (long i = 0; i < n; i++)
            OK(pxs_publisher_send(pub, 1, &px, meta, sizeof meta, NULL));
        OK(pxs_publisher_close_topic(pub, 1));
    }
    if (is_sub) {
        long got = 0;
        int rc;
        while ((rc = pxs_subscriber_recv(sub, &ev, -1)) == PXS_OK || ev.topic != PXS_TOPIC_ALL) {
            OK(rc);
            got += rc == PXS_OK;
        }
        if (got != n * P)
            die("event count", PXS_ERR_CORRUPT);
        rate = (double)got / (app_now() - t0);
    }
    app_park(MPI_COMM_WORLD, !is_pub && !is_sub);
    double *all = malloc(sizeof(double) * (size_t)size);
    MPI_Gather(&rate, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    double med = rank == 0 ? app_median(all + P, S) : 0;
    free(all);
    if (stats)
        app_print_stats(MPI_COMM_WORLD, "throughput", b, NULL);
    OK(pxs_bus_destroy(b));
    return med;
}

static double
tput_raw(int P, int S, long n)
{
    int is_pub = rank < P, is_sub = rank >= P && rank < P + S;
    unsigned char rec[REC];
    memset(rec, 1, sizeof rec);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = app_now(), rate = 0;
    if (is_pub)
        for (long i = 0; i < n; i++)
            for (int s = 0; s < S; s++)
                MPI_Send(rec, REC, MPI_BYTE, P + s, 7, MPI_COMM_WORLD);
    if (is_sub) {
        for (long i = 0; i < n * P; i++)
            MPI_Recv(rec, REC, MPI_BYTE, MPI_ANY_SOURCE, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        rate = (double)(n * P) / (app_now() - t0);
    }
    app_park(MPI_COMM_WORLD, !is_pub && !is_sub);
    double *all = malloc(sizeof(double) * (size_t)size);
    MPI_Gather(&rate, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    double med = rank == 0 ? app_median(all + P, S) : 0;
    free(all);
    MPI_Barrier(MPI_COMM_WORLD);
    return med;
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    json = app_has_flag(argc, argv, "--json");
    stats = app_has_flag(argc, argv, "--stats");
    const char *e = app_opt(argc, argv, "--events"), *it = app_opt(argc, argv, "--iters");
    long n = e ? atol(e) : 20000;
    int iters = it ? atoi(it) : 2000;
    if (size < 2) {
        if (rank == 0)
            fprintf(stderr, "pxs-bench-events: needs at least 2 ranks\n");
        MPI_Finalize();
        return 1;
    }
    char name[64];
    uint32_t batches[2] = {1, 32};
    double raw = lat_raw(iters);
    for (int k = 0; k < 2; k++) {
        double ours = lat_bus(batches[k], iters);
        snprintf(name, sizeof name, "latency.1to1.b%u", batches[k]);
        if (rank == 0)
            app_report(json, "events", name, 2, REC, ours * 1e6, raw * 1e6, "mpi_put_flush_flag",
                       "us", 0);
    }
    int cfg[3][2] = {{1, 1}, {4, 1}, {1, 4}};
    for (int c = 0; c < 3; c++) {
        int P = cfg[c][0], S = cfg[c][1];
        if (P + S > size)
            continue;
        double base = tput_raw(P, S, n);
        for (int k = 0; k < 2; k++) {
            double ours = tput_bus(P, S, batches[k], n);
            snprintf(name, sizeof name, "throughput.%dto%d.b%u", P, S, batches[k]);
            if (rank == 0)
                app_report(json, "events", name, P + S, REC, ours, base, "mpi_send_recv",
                           "events/s", 1);
        }
    }
    MPI_Finalize();
    return 0;
}
