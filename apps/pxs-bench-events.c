/* pxs-bench-events: event plane latency and throughput against raw MPI and
 * raw shared memory, measured in the same run.
 *   mpirun -n 5 pxs-bench-events [--events N] [--iters N] [--json] [--stats]
 *          [--reps N] [--quick] [--quiet-busy F] [--quiet-wait S]
 * --stats: each rank prints its bus counters after each case (app_print_stats).
 * --quick: --iters 200 --events 2000 unless given. Shared options (quiet
 * check, --reps): app_bench_init in apps/common/app_common.h.
 * Each figure is the median of --reps samples (default 5); ours and its
 * baselines alternate sample by sample (app_interleave).
 * Cases (those that fit the number of ranks run):
 *   latency.1to1.bK     one-way latency, ping-pong over the bus (RTT/2, the
 *                       median of --iters round trips per sample);
 *                       baseline: MPI_Put + flush of the same 192-byte record
 *                       and a polled flag word (ping-pong, RTT/2)
 *   latency-vs-shm.1to1.bK  the same bus figure against the floor: a raw
 *                       shared-memory flag chain (shm_open segment; the
 *                       sender copies the 192-byte record into it and
 *                       release-stores a sequence word, the receiver polls
 *                       the word with acquire loads and copies the record
 *                       out). Ranks 0 and 1 on one node only.
 *   throughput.PtoS.bK  events/s per subscriber, P producers -> S subscribers;
 *                       baseline: MPI_Send/MPI_Recv of the same records
 * ratio > 1 means the bus is better. */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* The floor for one-way latency: two slots in a shared segment, one per
 * direction; a slot is the record followed by its sequence word (one
 * cache-line-aligned block). The sender copies the record in and
 * release-stores the sequence number; the receiver spins on acquire loads
 * (pause; sched_yield every 1024 polls, so that it cannot starve a peer on
 * an oversubscribed node) and copies the record out. Plain C11-style
 * atomics only, no MPI call in the loop: what a programmer who owns both
 * ends would write. Returns the median RTT/2 on rank 0; -1 on every rank if
 * ranks 0 and 1 are not on one node or the segment cannot be made. */
struct shm_slot {
    unsigned char rec[REC];
    uint64_t seq;
} __attribute__((aligned(64)));

static void
shm_wait(const uint64_t *seq, uint64_t want)
{
    unsigned n = 0;
    while (__atomic_load_n(seq, __ATOMIC_ACQUIRE) != want) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (++n % 1024 == 0)
            sched_yield();
    }
}

static struct shm_slot *g_shm;  /* 2 slots, mapped on ranks 0 and 1 */
static int g_shm_ok = -1;       /* -1 unknown, 0 no, 1 yes */

static void
shm_setup(void)
{
    int ok = app_same_node(MPI_COMM_WORLD, 0, 1);
    char name[64];
    snprintf(name, sizeof name, "/pxs-bench-events-%ld", (long)getpid());
    MPI_Bcast(name, sizeof name, MPI_CHAR, 0, MPI_COMM_WORLD);
    size_t len = 2 * sizeof(struct shm_slot);
    if (ok && rank == 0) {
        int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)len) != 0)
            ok = 0;
        if (fd >= 0)
            close(fd);
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (ok && rank < 2) {
        int fd = shm_open(name, O_RDWR, 0600);
        void *p = fd >= 0 ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
        if (fd >= 0)
            close(fd);
        if (p == MAP_FAILED)
            ok = 0;
        else
            g_shm = p;
    }
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank == 0)
        shm_unlink(name); /* the mappings stay */
    g_shm_ok = ok;
    if (!ok && rank == 0)
        fprintf(stderr, "pxs-bench-events: no shared segment between ranks 0 and 1 "
                        "(not on one node?): latency-vs-shm cases skipped\n");
}

static double
lat_shm(int iters)
{
    double med = -1;
    if (!g_shm_ok)
        return med;
    double *v = malloc(sizeof(double) * (size_t)iters);
    unsigned char rec[REC], in[REC];
    memset(rec, 1, sizeof rec);
    if (rank < 2)
        memset(g_shm, 0, 2 * sizeof *g_shm);
    MPI_Barrier(MPI_COMM_WORLD);
    struct shm_slot *to = rank < 2 ? &g_shm[1 - rank] : NULL;
    struct shm_slot *from = rank < 2 ? &g_shm[rank] : NULL;
    for (int i = 0; i < iters + 100 && rank < 2; i++) {
        double t0 = app_now();
        uint64_t want = (uint64_t)i + 1;
        if (rank == 1) {
            shm_wait(&from->seq, want);
            memcpy(in, from->rec, REC);
        }
        memcpy(to->rec, rec, REC);
        __atomic_store_n(&to->seq, want, __ATOMIC_RELEASE);
        if (rank == 0) {
            shm_wait(&from->seq, want);
            memcpy(in, from->rec, REC);
        }
        __asm__ __volatile__("" ::"r"(in) : "memory");
        if (i >= 100)
            v[i - 100] = (app_now() - t0) / 2;
    }
    app_park(MPI_COMM_WORLD, rank >= 2);
    if (rank == 0)
        med = app_median(v, iters);
    free(v);
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

/* ------------------------------------------------------------ samples */
struct lat_ctx {
    uint32_t batch; /* 0: raw put chain, else the bus with this batch */
    int iters;
    int shm;        /* 1: raw shared-memory chain */
};

static double
lat_sample(void *p)
{
    const struct lat_ctx *c = p;
    if (c->shm)
        return lat_shm(c->iters);
    return c->batch ? lat_bus(c->batch, c->iters) : lat_raw(c->iters);
}

struct tput_ctx {
    int P, S;
    uint32_t batch; /* 0: MPI_Send/MPI_Recv */
    long n;
};

static double
tput_sample(void *p)
{
    const struct tput_ctx *c = p;
    return c->batch ? tput_bus(c->P, c->S, c->batch, c->n) : tput_raw(c->P, c->S, c->n);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    app_bench_t bo;
    int brc = app_bench_init(MPI_COMM_WORLD, argc, argv, "pxs-bench-events", &bo);
    if (brc) {
        MPI_Finalize();
        return brc;
    }
    json = bo.json;
    stats = app_has_flag(argc, argv, "--stats");
    const char *e = app_opt(argc, argv, "--events"), *it = app_opt(argc, argv, "--iters");
    long n = e ? atol(e) : bo.quick ? 2000 : 20000;
    int iters = it ? atoi(it) : bo.quick ? 200 : 2000;
    if (size < 2 || n < 1 || iters < 1) {
        if (rank == 0)
            fprintf(stderr, "pxs-bench-events: needs at least 2 ranks, --events >= 1, "
                            "--iters >= 1\n");
        MPI_Finalize();
        return 2;
    }
    shm_setup();
    char name[64];
    uint32_t batches[2] = {1, 32};
    {
        /* ABCD ABCD ...: bus b1, raw put chain, raw shm chain, bus b32 */
        struct lat_ctx lc[4] = {{1, iters, 0}, {0, iters, 0}, {0, iters, 1}, {32, iters, 0}};
        app_sample_fn fn[4] = {lat_sample, lat_sample, lat_sample, lat_sample};
        void *ctx[4] = {&lc[0], &lc[1], &lc[2], &lc[3]};
        double med[4];
        app_interleave(bo.reps, 4, fn, ctx, med); /* lat_shm: -1 at once without a segment */
        double ours[2] = {med[0], med[3]};
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "latency.1to1.b%u", batches[k]);
            if (rank == 0)
                app_report(json, "events", name, 2, REC, ours[k] * 1e6, med[1] * 1e6,
                           "mpi_put_flush_flag", "us", 0);
        }
        for (int k = 0; k < 2 && g_shm_ok; k++) {
            snprintf(name, sizeof name, "latency-vs-shm.1to1.b%u", batches[k]);
            if (rank == 0)
                app_report(json, "events", name, 2, REC, ours[k] * 1e6, med[2] * 1e6,
                           "shm_store_flag", "us", 0);
        }
    }
    int cfg[3][2] = {{1, 1}, {4, 1}, {1, 4}};
    for (int c = 0; c < 3; c++) {
        int P = cfg[c][0], S = cfg[c][1];
        if (P + S > size)
            continue;
        /* ABC ABC ...: MPI_Send/MPI_Recv, bus b1, bus b32 */
        struct tput_ctx tc[3] = {{P, S, 0, n}, {P, S, 1, n}, {P, S, 32, n}};
        app_sample_fn fn[3] = {tput_sample, tput_sample, tput_sample};
        void *ctx[3] = {&tc[0], &tc[1], &tc[2]};
        double med[3];
        app_interleave(bo.reps, 3, fn, ctx, med);
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "throughput.%dto%d.b%u", P, S, batches[k]);
            if (rank == 0)
                app_report(json, "events", name, P + S, REC, med[1 + k], med[0],
                           "mpi_send_recv", "events/s", 1);
        }
    }
    if (g_shm && rank < 2)
        munmap(g_shm, 2 * sizeof *g_shm);
    MPI_Finalize();
    return 0;
}
