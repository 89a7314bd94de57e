/* pxs-bench-pipeline: the seed scenario against what a user writes without
 * the library, measured in the same run.
 *
 *   mpirun --oversubscribe -n 4 pxs-bench-pipeline [--json] [--stats] [--reps R]
 *          [--scale F] [--batch B] [--arena S] [--only pipeline|stream]
 *          [--sizes S,S,...]
 *          [--max-size S] [--ref-ring N] [--quick] [--quiet-busy F] [--quiet-wait S]
 * (--repeats R is the old spelling of --reps R.) --quick: --scale 0.02 and
 * --max-size 1M unless given. Shared options (quiet check, --reps):
 * app_bench_init in apps/common/app_common.h.
 *
 * Layout: rank 0 generator, rank 1 dispatcher, ranks 2.. workers (default 4
 * ranks: 2 workers). Cases:
 *  pipeline        chunks/s end to end (first send to last chunk received by
 *                  a worker), 64 KiB, 1 MiB, 16 MiB.
 *                  baseline "relay": the generator MPI_Sends each chunk to the
 *                  dispatcher, which MPI_Sends it to a worker (round robin;
 *                  the dispatcher pre-posts the next receive while it sends).
 *                  ours: generator pxs_producer_send (store put + event), the
 *                  dispatcher receives the event and forwards the proxy on the
 *                  worker's topic (pxs_producer_send_proxy, round robin), the
 *                  worker resolves it into its buffer.
 *  pipeline-bw     the same in GB/s of payload delivered to workers.
 *  dispatcher-bytes bytes that cross the dispatcher per chunk (B/chunk,
 *                  smaller is better): relay = the chunk; ours = one event
 *                  as it crosses the wire: a fixed 192 B mailbox record (header,
 *                  64 B proxy, metadata room) + its 8 B sequence word.
 *  stream-1to1     1 producer (rank 0) -> 1 consumer (rank 1) that resolves
 *                  every chunk, 1 KiB .. 16 MiB; baseline MPI_Send/MPI_Recv of
 *                  the chunk; plus stream-1to1-bw in GB/s. --sizes replaces
 *                  its sizes (e.g. 64,256,1K,4K,16K: with PXS_INLINE_MAX
 *                  on and off, the inline crossover, docs/DESIGN.md
 *                  "Inline chunks").
 *  stream-1to1-ref the same with pxs_producer_send_ref (lent buffers, no copy
 *                  into the arena; docs/DESIGN.md "Lent buffers"): the
 *                  producer lends a ring of buffers (64 MiB worth, 4 .. 16)
 *                  and reuses the oldest after pxs_producer_ref_wait; same
 *                  baseline. Where the store
 *                  cannot lend it copies (the line says lent 0).
 *  stream-1to1-zc  in situ, no copy (docs/DESIGN.md "Reserved puts"): the
 *                  producer reserves each chunk in its arena
 *                  (pxs_producer_reserve), writes every byte (memset with
 *                  the chunk index) and pxs_producer_send_reserved; the
 *                  consumer views it in place and reads every byte (64-bit
 *                  sum, checked). Baseline: the producer fills its send
 *                  buffer the same way and MPI_Sends it; the consumer
 *                  MPI_Recvs and reads it the same way.
 *  pipeline-zc     the same work in the pipeline: the generator reserves and
 *                  fills, workers view and read; baseline relay with the
 *                  same fill and read.
 * Every figure is the median over --reps runs (default 5); the baseline and
 * ours alternate run by run (app_interleave). Sizes above --max-size are
 * skipped. ratio > 1 means proxystream is better. */
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_common.h"
#include "proxystream.h"

enum { T_CHUNKS = 1, T_WORKER0 = 100 };
enum { TAG_CHUNK = 11 };

static int g_rank, g_size, g_nwork, g_stats;
static int g_batch = 16;
static pxs_store_t *g_store;
static unsigned char *g_buf[2];
static size_t g_bufsize;

#define DIE_IF(rc, what)                                                       \
    do {                                                                       \
        int rc_ = (rc);                                                        \
        if (rc_ < 0) {                                                         \
            fprintf(stderr, "pxs-bench-pipeline[%d]: %s failed: %s (%s)\n",    \
                    g_rank, what, pxs_errname(rc_), pxs_last_error_detail());  \
            MPI_Abort(MPI_COMM_WORLD, 2);                                      \
        }                                                                      \
    } while (0)

/* Chunks the round robin gives worker w out of n. */
static long
share(long n, int w)
{
    return n / g_nwork + (w < n % g_nwork ? 1 : 0);
}

/* ---------------------------------------------------------------- zero-copy cases */
/* The -zc cases (stream-1to1-zc, pipeline-zc) make both sides do the work
 * of an in-situ producer and consumer: the producer writes every byte of
 * chunk i (zc_fill), the consumer reads every byte (zc_read, a 64-bit sum)
 * and checks it. The same two functions on both sides: ours fills the
 * reserved arena block and reads a view in place, the baseline fills its
 * send buffer and reads its receive buffer. */
static int g_zc_arena; /* the last -zc run's reservation was in the arena */
static int g_zc; /* stream1to1_once / pxs_once / relay_once / send1to1_once: -zc */

static void
zc_fill(unsigned char *p, size_t size, long i)
{
    memset(p, (int)(i & 0xff), size);
}

static void
zc_read(const unsigned char *p, size_t size, long i)
{
    uint64_t sum = 0, w;
    size_t k = 0;
    for (; k + 8 <= size; k += 8) {
        memcpy(&w, p + k, 8);
        sum += w;
    }
    uint64_t b = (uint64_t)(i & 0xff), expect = (uint64_t)(size / 8) * (b * 0x0101010101010101ull);
    for (; k < size; k++) {
        sum += p[k];
        expect += b;
    }
    if (sum != expect)
        DIE_IF(PXS_ERR_CORRUPT, "zero-copy case: chunk contents");
}

/* Wall time of the slowest rank (all start after a barrier). */
static double
slowest(double t0, int active)
{
    double dt = MPI_Wtime() - t0, mx = 0;
    app_park(MPI_COMM_WORLD, g_rank >= active); /* idle ranks sleep, not spin */
    MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return mx;
}

/* ---------------------------------------------------------------- relay */

static double
relay_once(size_t size, long n)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    int cnt = (int)size;
    if (g_rank == 0) {
        for (long i = 0; i < n; i++) {
            if (g_zc)
                zc_fill(g_buf[0], size, i);
            MPI_Send(g_buf[0], cnt, MPI_BYTE, 1, TAG_CHUNK, MPI_COMM_WORLD);
        }
    } else if (g_rank == 1) {
        MPI_Request rq;
        if (n > 0)
            MPI_Irecv(g_buf[0], cnt, MPI_BYTE, 0, TAG_CHUNK, MPI_COMM_WORLD, &rq);
        for (long i = 0; i < n; i++) {
            MPI_Wait(&rq, MPI_STATUS_IGNORE);
            unsigned char *cur = g_buf[i & 1];
            if (i + 1 < n)
                MPI_Irecv(g_buf[(i + 1) & 1], cnt, MPI_BYTE, 0, TAG_CHUNK, MPI_COMM_WORLD, &rq);
            MPI_Send(cur, cnt, MPI_BYTE, 2 + (int)(i % g_nwork), TAG_CHUNK, MPI_COMM_WORLD);
        }
    } else if (g_rank - 2 < g_nwork) {
        long mine = share(n, g_rank - 2);
        for (long i = 0; i < mine; i++) {
            MPI_Recv(g_buf[0], cnt, MPI_BYTE, 1, TAG_CHUNK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (g_zc)
                zc_read(g_buf[0], size, (g_rank - 2) + i * g_nwork);
        }
    }
    return slowest(t0, g_size);
}

/* ---------------------------------------------------------------- proxystream */

static pxs_bus_t *
pipeline_bus(void)
{
    uint32_t pubs[64];
    pxs_subscription_t subs[1];
    memset(subs, 0, sizeof subs); /* fields not set below (prefetch) are 0: defaults */
    size_t np = 0, ns = 0;
    if (g_rank == 0) {
        pubs[np++] = T_CHUNKS;
    } else if (g_rank == 1) {
        subs[ns].topic = T_CHUNKS;
        subs[ns++].group = NULL;
        for (int w = 0; w < g_nwork; w++)
            pubs[np++] = T_WORKER0 + (uint32_t)w;
    } else {
        subs[ns].topic = T_WORKER0 + (uint32_t)(g_rank - 2);
        subs[ns++].group = NULL;
    }
    pxs_bus_opts_t bo;
    DIE_IF(pxs_bus_opts_init(&bo), "bus_opts_init");
    bo.publish = pubs;
    bo.n_publish = np;
    bo.subscribe = subs;
    bo.n_subscribe = ns;
    bo.batch = (uint32_t)g_batch;
    pxs_bus_t *bus;
    DIE_IF(pxs_bus_create(MPI_COMM_WORLD, &bo, &bus), "bus_create");
    return bus;
}

static double
pxs_once(size_t size, long n)
{
    pxs_bus_t *bus = pipeline_bus();
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    DIE_IF(pxs_bus_publisher(bus, &pub), "bus_publisher");
    DIE_IF(pxs_bus_subscriber(bus, &sub), "bus_subscriber");
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (g_rank == 0) {
        pxs_producer_t *prod;
        DIE_IF(pxs_producer_create(g_store, pub, NULL, &prod), "producer_create");
        for (long i = 0; i < n; i++) {
            if (g_zc) {
                pxs_reservation_t res;
                DIE_IF(pxs_producer_reserve(prod, size, &res), "reserve");
                zc_fill(res.data, size, i);
                DIE_IF(pxs_producer_send_reserved(prod, T_CHUNKS, &res, NULL, NULL),
                       "send_reserved");
            } else {
                DIE_IF(pxs_producer_send(prod, T_CHUNKS, g_buf[0], size, NULL, NULL), "send");
            }
        }
        DIE_IF(pxs_producer_destroy(prod), "producer_destroy"); /* flush + END */
    } else if (g_rank == 1) {
        pxs_consumer_t *cons;
        pxs_producer_t *fwd;
        DIE_IF(pxs_consumer_create(NULL, sub, NULL, &cons), "consumer_create");
        DIE_IF(pxs_producer_create(NULL, pub, NULL, &fwd), "producer_create");
        long i = 0;
        for (;;) {
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, 0.0);
            if (rc == PXS_TIMEOUT) {
                DIE_IF(pxs_producer_flush(fwd), "flush"); /* idle: deliver the batch */
                rc = pxs_consumer_next(cons, &ev, PXS_WAIT_FOREVER);
            }
            DIE_IF(rc, "consumer_next");
            if (rc == PXS_END)
                break;
            DIE_IF(pxs_producer_send_proxy(fwd, T_WORKER0 + (uint32_t)(i % g_nwork), &ev.proxy,
                                           NULL, 0),
                   "send_proxy");
            i++;
        }
        DIE_IF(pxs_producer_destroy(fwd), "producer_destroy");
        DIE_IF(pxs_consumer_destroy(cons), "consumer_destroy");
    } else {
        pxs_consumer_t *cons;
        DIE_IF(pxs_consumer_create(g_store, sub, NULL, &cons), "consumer_create");
        long mine = 0; /* -zc: this worker's k-th chunk is chunk w + k * nwork */
        for (;;) {
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, PXS_WAIT_FOREVER);
            DIE_IF(rc, "consumer_next");
            if (rc == PXS_END)
                break;
            size_t len = 0;
            if (g_zc) {
                pxs_view_t v;
                DIE_IF(pxs_store_view(g_store, &ev.proxy, &v), "view");
                zc_read(v.data, v.len, (g_rank - 2) + mine * g_nwork);
                mine++;
                len = v.len;
                DIE_IF(pxs_store_release(g_store, &v), "release");
            } else {
                DIE_IF(pxs_consumer_resolve(cons, &ev, g_buf[0], g_bufsize, &len), "resolve");
            }
            if (len != size)
                DIE_IF(PXS_ERR_CORRUPT, "resolved size");
        }
        DIE_IF(pxs_consumer_destroy(cons), "consumer_destroy");
    }
    double dt = slowest(t0, g_size);
    if (g_stats)
        app_print_stats(MPI_COMM_WORLD, "pipeline", bus, NULL);
    DIE_IF(pxs_bus_destroy(bus), "bus_destroy");
    return dt;
}

/* ---------------------------------------------------------------- 1 -> 1 */
static int g_ref;       /* stream1to1_once: send_ref from a ring of buffers */
static int g_ref_lent;  /* the last ref run lent (1) or copied (0) */
enum { REF_RING = 16 }; /* most lent buffers in flight */

/* Lent buffers in the ring for chunks of `size`: 64 MiB worth, 4 .. 16 (a
 * deeper ring lets the consumer work through queued chunks while the
 * producer waits for the oldest one only). */
static int g_ref_ring; /* --ref-ring N: fixed depth (0: by size) */
static int
ref_ring(size_t size)
{
    if (g_ref_ring > 0)
        return g_ref_ring;
    size_t k = ((size_t)64 << 20) / (size ? size : 1);
    return k < 4 ? 4 : k > REF_RING ? REF_RING : (int)k;
}

static double
send1to1_once(size_t size, long n)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (g_rank == 0)
        for (long i = 0; i < n; i++) {
            if (g_zc)
                zc_fill(g_buf[0], size, i);
            MPI_Send(g_buf[0], (int)size, MPI_BYTE, 1, TAG_CHUNK, MPI_COMM_WORLD);
        }
    else if (g_rank == 1)
        for (long i = 0; i < n; i++) {
            MPI_Recv(g_buf[0], (int)size, MPI_BYTE, 0, TAG_CHUNK, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            if (g_zc)
                zc_read(g_buf[0], size, i);
        }
    return slowest(t0, 2);
}

static double
stream1to1_once(size_t size, long n)
{
    uint32_t pubs[1] = {T_CHUNKS};
    pxs_subscription_t subs[1] = {{.topic = T_CHUNKS, .group = NULL}};
    pxs_bus_opts_t bo;
    DIE_IF(pxs_bus_opts_init(&bo), "bus_opts_init");
    if (g_rank == 0) {
        bo.publish = pubs;
        bo.n_publish = 1;
    } else if (g_rank == 1) {
        bo.subscribe = subs;
        bo.n_subscribe = 1;
    }
    bo.batch = (uint32_t)g_batch;
    pxs_bus_t *bus;
    DIE_IF(pxs_bus_create(MPI_COMM_WORLD, &bo, &bus), "bus_create");
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    DIE_IF(pxs_bus_publisher(bus, &pub), "bus_publisher");
    DIE_IF(pxs_bus_subscriber(bus, &sub), "bus_subscriber");
    /* the lent ring, allocated and touched before the clock starts */
    unsigned char *ring[REF_RING] = {NULL};
    const int depth = ref_ring(size);
    for (int k = 0; g_ref && g_rank == 0 && k < depth; k++) {
        if (posix_memalign((void **)&ring[k], 4096, size))
            MPI_Abort(MPI_COMM_WORLD, 2);
        memset(ring[k], 0x5a, size);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (g_rank == 0) {
        pxs_producer_t *prod;
        DIE_IF(pxs_producer_create(g_store, pub, NULL, &prod), "producer_create");
        if (g_ref) {
            pxs_proxy_t px[REF_RING];
            int lent[REF_RING] = {0};
            for (long i = 0; i < n; i++) {
                int k = (int)(i % depth);
                if (i >= depth && lent[k])
                    DIE_IF(pxs_producer_ref_wait(prod, &px[k], PXS_WAIT_FOREVER), "ref_wait");
                DIE_IF(pxs_producer_send_ref(prod, T_CHUNKS, ring[k], size, NULL, &px[k],
                                             &lent[k]),
                       "send_ref");
                g_ref_lent = lent[k];
            }
            for (int k = 0; k < depth && k < n; k++)
                if (lent[k])
                    DIE_IF(pxs_producer_ref_wait(prod, &px[k], PXS_WAIT_FOREVER), "ref_wait");
        } else if (g_zc) {
            for (long i = 0; i < n; i++) {
                pxs_reservation_t res;
                DIE_IF(pxs_producer_reserve(prod, size, &res), "reserve");
                zc_fill(res.data, size, i);
                DIE_IF(pxs_producer_send_reserved(prod, T_CHUNKS, &res, NULL, NULL),
                       "send_reserved");
                g_zc_arena = res.in_arena;
            }
        } else {
            for (long i = 0; i < n; i++)
                DIE_IF(pxs_producer_send(prod, T_CHUNKS, g_buf[0], size, NULL, NULL), "send");
        }
        DIE_IF(pxs_producer_destroy(prod), "producer_destroy");
    } else if (g_rank == 1) {
        pxs_consumer_t *cons;
        DIE_IF(pxs_consumer_create(g_store, sub, NULL, &cons), "consumer_create");
        for (long i = 0;; i++) {
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, PXS_WAIT_FOREVER);
            DIE_IF(rc, "consumer_next");
            if (rc == PXS_END)
                break;
            size_t len;
            if (g_zc) {
                /* in place: the view of the producer's arena block */
                pxs_view_t v;
                DIE_IF(pxs_store_view(g_store, &ev.proxy, &v), "view");
                zc_read(v.data, v.len, i);
                DIE_IF(pxs_store_release(g_store, &v), "release");
            } else {
                DIE_IF(pxs_consumer_resolve(cons, &ev, g_buf[0], g_bufsize, &len), "resolve");
            }
        }
        DIE_IF(pxs_consumer_destroy(cons), "consumer_destroy");
    }
    double dt = slowest(t0, 2);
    for (int k = 0; k < REF_RING; k++)
        free(ring[k]);
    if (g_stats)
        app_print_stats(MPI_COMM_WORLD, "pair", bus, NULL);
    DIE_IF(pxs_bus_destroy(bus), "bus_destroy");
    return dt;
}

/* ---------------------------------------------------------------- driver */

/* Number of chunks per run: about `scale` x 256 MiB, at least 24, at most 20000. */
static long
count_for(size_t size, double scale)
{
    double n = scale * 256.0 * 1048576.0 / (double)size;
    if (n < 24)
        n = 24;
    if (n > 20000 * scale)
        n = 20000 * scale;
    if (n < 8)
        n = 8;
    return (long)n;
}

typedef double (*run_fn)(size_t, long);

struct rate_ctx {
    run_fn f;
    size_t size;
    long n;
};

/* one run: chunks/s (the slowest rank's wall time) */
static double
rate_sample(void *p)
{
    const struct rate_ctx *c = p;
    return (double)c->n / c->f(c->size, c->n);
}

/* medians of `reps` runs of the baseline and of ours, alternating */
static void
median_rates(run_fn base, run_fn ours, size_t size, long n, int reps, double *base_out,
             double *ours_out)
{
    struct rate_ctx c[2] = {{base, size, n}, {ours, size, n}};
    app_sample_fn fn[2] = {rate_sample, rate_sample};
    void *ctx[2] = {&c[0], &c[1]};
    double m[2];
    app_interleave(reps, 2, fn, ctx, m);
    *base_out = m[0];
    *ours_out = m[1];
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    app_bench_t bo;
    int brc = app_bench_init(MPI_COMM_WORLD, argc, argv, "pxs-bench-pipeline", &bo);
    if (brc) {
        MPI_Finalize();
        return brc;
    }
    int json = bo.json;
    g_stats = app_has_flag(argc, argv, "--stats");
    int repeats = bo.reps;
    double scale = bo.quick ? 0.02 : 1.0;
    size_t maxsize = bo.quick ? (size_t)1 << 20 : (size_t)16 << 20;
    size_t arena = 160u << 20;
    const char *only = app_opt(argc, argv, "--only");
    const char *v;
    if ((v = app_opt(argc, argv, "--max-size")))
        maxsize = app_parse_size(v);
    if ((v = app_opt(argc, argv, "--scale")))
        scale = atof(v);
    if ((v = app_opt(argc, argv, "--batch")))
        g_batch = atoi(v);
    if ((v = app_opt(argc, argv, "--arena")))
        arena = app_parse_size(v);
    if ((v = app_opt(argc, argv, "--ref-ring")))
        g_ref_ring = atoi(v);
    if (g_size < 4 || repeats < 1 || scale <= 0 || g_batch < 1 || arena == 0 ||
        (app_opt(argc, argv, "--ref-ring") && (g_ref_ring < 1 || g_ref_ring > REF_RING)) ||
        maxsize == 0 || g_size - 2 > 64) {
        if (g_rank == 0)
            fprintf(stderr, "usage: mpirun -n 4 pxs-bench-pipeline [--json] [--stats] [--reps R] "
                            "[--scale F] [--batch B] [--arena S] [--only pipeline|stream] "
                            "[--max-size S] [--ref-ring 1..16] [--quick] [--quiet-busy F] "
                            "[--quiet-wait S]\n"
                            "(needs >= 4 ranks: generator, dispatcher, >= 2 workers)\n");
        MPI_Finalize();
        return 2;
    }
    g_nwork = g_size - 2;
    const size_t maxsz = 16u << 20;
    g_bufsize = maxsz;
    g_buf[0] = malloc(maxsz);
    g_buf[1] = malloc(maxsz);
    if (!g_buf[0] || !g_buf[1])
        MPI_Abort(MPI_COMM_WORLD, 2);
    memset(g_buf[0], 0x5a, maxsz);
    memset(g_buf[1], 0xa5, maxsz);

    pxs_store_opts_t so;
    DIE_IF(pxs_store_opts_init(&so), "store_opts_init");
    so.arena_bytes = arena;
    DIE_IF(pxs_store_create(MPI_COMM_WORLD, &so, &g_store), "store_create");

    if (g_rank == 0 && !json)
        printf("# pxs-bench-pipeline: %d ranks (generator, dispatcher, %d workers), median of %d, "
               "bus batch %d, arena %zu MiB\n",
               g_size, g_nwork, repeats, g_batch, arena >> 20);

    /* warm-up (connections, windows, page faults) */
    (void)relay_once(1u << 20, 8);
    (void)pxs_once(1u << 20, 8);

    /* One event = one fixed mailbox record (192 B: header, 64 B proxy, 96 B
     * metadata room) + its 8-byte sequence word, whatever the chunk size. */
    const double ev_bytes = 192.0 + 8.0;
    if (!only || !strcmp(only, "pipeline")) {
        const size_t sizes[] = {64u << 10, 1u << 20, 16u << 20};
        for (int s = 0; s < 3; s++) {
            size_t sz = sizes[s], n = 0;
            if (sz > maxsize)
                continue;
            n = (size_t)count_for(sz, scale);
            double relay, ours;
            median_rates(relay_once, pxs_once, sz, (long)n, repeats, &relay, &ours);
            if (g_rank == 0) {
                app_report(json, "pipeline", "pipeline", g_size, sz, ours, relay, "relay",
                           "chunks/s", 1);
                app_report(json, "pipeline", "pipeline-bw", g_size, sz, ours * (double)sz / 1e9,
                           relay * (double)sz / 1e9, "relay", "GB/s", 1);
                app_report(json, "pipeline", "dispatcher-bytes", g_size, sz, ev_bytes,
                           (double)sz, "relay", "B/chunk", 0);
                fflush(stdout);
            }
            /* in situ: the generator fills the chunk, workers read every byte */
            g_zc = 1;
            median_rates(relay_once, pxs_once, sz, (long)n, repeats, &relay, &ours);
            g_zc = 0;
            if (g_rank == 0) {
                app_report(json, "pipeline", "pipeline-zc", g_size, sz, ours, relay, "relay",
                           "chunks/s", 1);
                fflush(stdout);
            }
        }
    }
    if (!only || !strcmp(only, "stream")) {
        size_t sizes[16] = {1u << 10, 64u << 10, 1u << 20, 16u << 20};
        int nsizes = 4;
        if ((v = app_opt(argc, argv, "--sizes"))) {
            char list[256];
            snprintf(list, sizeof list, "%s", v);
            nsizes = 0;
            for (char *tok = strtok(list, ","); tok && nsizes < 16; tok = strtok(NULL, ",")) {
                size_t z = app_parse_size(tok);
                if (z > 0 && z <= maxsz)
                    sizes[nsizes++] = z;
            }
        }
        for (int s = 0; s < nsizes; s++) {
            size_t sz = sizes[s], n = 0;
            if (sz > maxsize)
                continue;
            n = (size_t)count_for(sz, scale);
            double base, ours;
            median_rates(send1to1_once, stream1to1_once, sz, (long)n, repeats, &base, &ours);
            if (g_rank == 0) {
                app_report(json, "pipeline", "stream-1to1", g_size, sz, ours, base, "MPI_Send",
                           "chunks/s", 1);
                app_report(json, "pipeline", "stream-1to1-bw", g_size, sz,
                           ours * (double)sz / 1e9, base * (double)sz / 1e9, "MPI_Send", "GB/s",
                           1);
                fflush(stdout);
            }
            /* lent buffers: send_ref against the same baseline */
            g_ref = 1;
            median_rates(send1to1_once, stream1to1_once, sz, (long)n, repeats, &base, &ours);
            g_ref = 0;
            if (g_rank == 0) {
                app_report(json, "pipeline", "stream-1to1-ref", g_size, sz, ours, base,
                           "MPI_Send", "chunks/s", 1);
                if (!json)
                    printf("#   stream-1to1-ref %zu B: lent %d\n", sz, g_ref_lent);
                fflush(stdout);
            }
            /* reserved chunks (no copy): fill + read on both sides */
            g_zc = 1;
            median_rates(send1to1_once, stream1to1_once, sz, (long)n, repeats, &base, &ours);
            g_zc = 0;
            if (g_rank == 0) {
                app_report(json, "pipeline", "stream-1to1-zc", g_size, sz, ours, base,
                           "MPI_Send", "chunks/s", 1);
                if (!json)
                    printf("#   stream-1to1-zc %zu B: in arena %d\n", sz, g_zc_arena);
                fflush(stdout);
            }
        }
    }
    if (g_stats)
        app_print_stats(MPI_COMM_WORLD, "end", NULL, g_store);
    DIE_IF(pxs_store_destroy(g_store), "store_destroy");
    free(g_buf[0]);
    free(g_buf[1]);
    MPI_Finalize();
    return 0;
}
