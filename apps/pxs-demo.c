/* pxs-demo: the seed scenario. Generator ranks stream chunks; one dispatcher
 * receives *proxies* (64 B each, never the chunk) and hands each to a worker;
 * only the worker that resolves a chunk pulls its bytes, straight from the
 * generator's arena. Workers verify every byte.
 *
 *   mpirun --oversubscribe -n 4 pxs-demo            # 1 generator, 1 dispatcher, 2 workers
 *   mpirun -n 6 pxs-demo --generators 2 --chunks 100 --chunk-size 4M --mode group
 *
 * Modes (default: all three in one run; each gets its own bus, the store is shared):
 *   group    dispatcher republishes each proxy on topic WORK; the workers are
 *            one work-sharing group on WORK: the bus gives each event to exactly
 *            one member, picked by free mailbox credits (a busy worker gets fewer)
 *   forward  dispatcher picks the worker (round robin) and publishes the proxy
 *            on that worker's own topic (pxs_producer_send_proxy)
 *   mpi      dispatcher picks the worker and MPI_Sends the 64 proxy bytes;
 *            the worker validates and resolves them (no bus on that leg)
 *
 * Options: --generators N (1) --chunks N per generator (64) --chunk-size S (1M)
 *          --mode group|forward|mpi|all (all) --rate R (average chunks/s per
 *          generator, 0 = as fast as possible; default 0) --steady (no rate
 *          fluctuation; default: bursts alternate with slow phases)
 *          --checksum (store CRC32C, verified on resolve) --arena S (8M: eight
 *          1 MiB chunks, small on purpose so that bursts meet arena
 *          backpressure, visible with PXS_LOG=debug and --stats)
 *          --quiet (only the summary) --stats (every rank's bus counters after
 *          each mode, store counters at the end: app_print_stats)
 *          --log DIR (HDF5 builds: the generators' chunks go to an HDF5 store in
 *          DIR/store and their events to a stream log in DIR/log; one mode,
 *          group unless --mode says otherwise)
 *
 *   mpirun -n 4 pxs-demo --log /tmp/run1 --chunks 16     # record a run
 *   mpirun -n 1 pxs-demo --replay /tmp/run1              # replay it in a new job
 *
 * --replay DIR: rank 0 replays DIR/log with a store opened on DIR/store and
 * verifies every chunk (contiguous per generator, pattern and length).
 * Across jobs (UCX builds; README "Across jobs"): the generators and the
 * dispatcher run in one job, the workers in another, started later:
 *   mpirun -n 3 pxs-demo --export /tmp/run.pxs --chunks 200   # 2 generators + dispatcher
 *   mpirun -n 2 pxs-demo --attach /tmp/run.pxs                # workers (group "workers")
 * --export FILE: ranks 0..N-2 generate, rank N-1 dispatches to topic "work",
 * exported with the UCX store; its first forward waits (--wait S, 300) for
 * one attaching job. --attach FILE: every rank is a worker until END;
 * --max K: leave (detach) after K chunks in total, so that a further
 * --attach job takes the rest (chunks unread at a leaving job are given
 * back to the dispatcher, which forwards them to the next job).
 *
 * Exit status: 0 only if every chunk was resolved and verified in every mode. */
#include <errno.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app_common.h"
#include "proxystream.h"

enum { T_CHUNKS = 1, T_WORK = 2, T_WORKER0 = 100 };
enum { TAG_PROXY = 7001, TAG_END = 7002 };
enum { MODE_GROUP = 1, MODE_FORWARD = 2, MODE_MPI = 4 };

/* Metadata every chunk carries in its event (the dispatcher forwards it as is). */
typedef struct chunk_meta {
    uint32_t gen;   /* generator index */
    uint32_t idx;   /* chunk index within that generator */
    uint64_t len;   /* chunk size */
    uint64_t check; /* pattern seed, for the worker to cross-check */
} chunk_meta_t;

static int g_rank, g_size, g_ngen, g_nwork, g_disp;
static char g_log[4096]; /* --log: the stream log directory, else "" */

#define DIE_IF(rc, what)                                                       \
    do {                                                                       \
        int rc_ = (rc);                                                        \
        if (rc_ < 0) {                                                         \
            fprintf(stderr, "pxs-demo[%d]: %s failed: %s (%s)\n", g_rank,      \
                    what, pxs_errname(rc_), pxs_last_error_detail());          \
            MPI_Abort(MPI_COMM_WORLD, 2);                                      \
        }                                                                      \
    } while (0)

/* ---------------------------------------------------------------- pattern */

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t
chunk_seed(uint32_t gen, uint32_t idx)
{
    return mix64(((uint64_t)gen << 32) | idx) | 1u;
}

/* Word i of a chunk is seed * (i + 1) (cheap, position- and chunk-dependent). */
static void
pattern_fill(unsigned char *p, size_t len, uint64_t seed)
{
    size_t nw = len / 8;
    for (size_t i = 0; i < nw; i++) {
        uint64_t w = seed * (uint64_t)(i + 1);
        memcpy(p + 8 * i, &w, 8);
    }
    uint64_t t = mix64(seed);
    for (size_t i = nw * 8; i < len; i++)
        p[i] = (unsigned char)(t >> (8 * (i % 8)));
}

static int
pattern_ok(const unsigned char *p, size_t len, uint64_t seed)
{
    size_t nw = len / 8;
    for (size_t i = 0; i < nw; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        if (w != seed * (uint64_t)(i + 1))
            return 0;
    }
    uint64_t t = mix64(seed);
    for (size_t i = nw * 8; i < len; i++)
        if (p[i] != (unsigned char)(t >> (8 * (i % 8))))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- options */

typedef struct demo_opts {
    int ngen;
    uint32_t chunks;
    size_t chunk_size;
    int modes;
    double rate;
    int fluctuate;
    int checksum;
    size_t arena;
    int quiet;
    int stats;
} demo_opts_t;

/* Per-rank, per-mode counters, gathered on rank 0. */
typedef struct demo_stats {
    double sent, sent_bytes;        /* generator */
    double disp_events, disp_bytes; /* dispatcher: events and bytes it received */
    double resolved, verified, moved; /* worker */
    double failed;                  /* any rank */
    double seconds;
} demo_stats_t;

/* Production rate: bursts (no pause), medium and slow phases of 8 chunks, with
 * jitter, averaging about `rate` chunks/s when rate > 0.
 * The generator waits in slices of at most 50 us and calls pxs_store_progress
 * between them: where RMA needs the target inside MPI (MPICH; Open MPI osc/ucx
 * and pt2pt), the workers' claims on this rank's objects complete only then.
 * Sleeping through the whole pause held the demo at ~120-270 chunks/s under
 * MPICH (docs/DESIGN.md, section "MPICH"). A simulation that computes instead
 * should do the same now and then, or use MPICH's MPIR_CVAR_ASYNC_PROGRESS. */
static void
gen_pause(const demo_opts_t *o, uint32_t idx, unsigned *rng, pxs_store_t *store)
{
    double base = o->rate > 0 ? 1.0 / o->rate : 0.0;
    double d = base;
    if (o->fluctuate) {
        int phase = (int)((idx / 8) % 3);
        double f = phase == 0 ? 0.0 : phase == 1 ? 1.0 : 2.0; /* mean 1.0 */
        if (base == 0.0)
            base = 200e-6; /* unthrottled: still fluctuate, around 5000 chunks/s */
        *rng = *rng * 1103515245u + 12345u;
        double jitter = 0.5 + (double)((*rng >> 16) & 0x7fff) / 32768.0; /* 0.5..1.5 */
        d = base * f * jitter;
    }
    if (d <= 0)
        return;
    double end = MPI_Wtime() + d;
    for (double left = d; left > 0; left = end - MPI_Wtime()) {
        double slice = left < 50e-6 ? left : 50e-6;
        struct timespec ts = {0, (long)(slice * 1e9)};
        nanosleep(&ts, NULL);
        (void)pxs_store_progress(store); /* reclaim; enters MPI while objects are live */
    }
}

/* ---------------------------------------------------------------- roles */

static void
run_generator(const demo_opts_t *o, pxs_store_t *store, pxs_publisher_t *pub,
              demo_stats_t *st)
{
    int gen = g_rank;
    uint32_t topics[1] = {T_CHUNKS};
    pxs_producer_opts_t po;
    DIE_IF(pxs_producer_opts_init(&po), "producer_opts_init");
    po.topics = topics;
    po.n_topics = 1;
    po.checksum = o->checksum;
    if (g_log[0])
        po.log_path = g_log;
    pxs_producer_t *prod;
    DIE_IF(pxs_producer_create(store, pub, &po, &prod), "producer_create");
    unsigned char *buf = malloc(o->chunk_size ? o->chunk_size : 1);
    if (!buf)
        MPI_Abort(MPI_COMM_WORLD, 2);
    unsigned rng = 12345u + (unsigned)gen;
    for (uint32_t i = 0; i < o->chunks; i++) {
        chunk_meta_t m = {(uint32_t)gen, i, o->chunk_size, chunk_seed((uint32_t)gen, i)};
        pattern_fill(buf, o->chunk_size, m.check);
        pxs_send_opts_t so;
        DIE_IF(pxs_send_opts_init(&so), "send_opts_init");
        so.meta = &m;
        so.meta_len = sizeof m;
        DIE_IF(pxs_producer_send(prod, T_CHUNKS, buf, o->chunk_size, &so, NULL),
               "producer_send");
        st->sent += 1;
        st->sent_bytes += (double)o->chunk_size;
        if (o->fluctuate || o->rate > 0) {
            DIE_IF(pxs_producer_flush(prod), "producer_flush"); /* idle soon: deliver */
            gen_pause(o, i, &rng, store);
        }
    }
    DIE_IF(pxs_producer_close_topic(prod, T_CHUNKS), "close_topic");
    DIE_IF(pxs_producer_destroy(prod), "producer_destroy");
    free(buf);
}

static void
run_dispatcher(int mode, pxs_store_t *store, pxs_bus_t *bus, demo_stats_t *st)
{
    pxs_subscriber_t *sub;
    pxs_publisher_t *pub;
    DIE_IF(pxs_bus_subscriber(bus, &sub), "bus_subscriber");
    DIE_IF(pxs_bus_publisher(bus, &pub), "bus_publisher");
    /* The dispatcher never resolves: its consumer needs no store. */
    (void)store;
    pxs_consumer_t *cons;
    DIE_IF(pxs_consumer_create(NULL, sub, NULL, &cons), "consumer_create");
    pxs_producer_t *fwd = NULL;
    if (mode != MODE_MPI)
        DIE_IF(pxs_producer_create(NULL, pub, NULL, &fwd), "producer_create(forward)");
    int next_worker = 0;
    for (;;) {
        pxs_event_t ev;
        int rc = pxs_consumer_next(cons, &ev, 0.0);
        if (rc == PXS_TIMEOUT) {
            /* Input idle: deliver whatever the bus still coalesces, then wait. */
            if (fwd)
                DIE_IF(pxs_producer_flush(fwd), "flush");
            rc = pxs_consumer_next(cons, &ev, PXS_WAIT_FOREVER);
        }
        DIE_IF(rc, "consumer_next");
        if (rc == PXS_END)
            break;
        st->disp_events += 1;
        /* on the wire: one fixed mailbox record (192 B: header, 64 B proxy,
         * metadata room) + its 8 B sequence word; the chunk never comes here */
        st->disp_bytes += 192.0 + 8.0;
        int w = next_worker;
        next_worker = (next_worker + 1) % g_nwork;
        if (mode == MODE_GROUP) {
            DIE_IF(pxs_producer_send_proxy(fwd, T_WORK, &ev.proxy, ev.meta, ev.meta_len),
                   "send_proxy(group)");
        } else if (mode == MODE_FORWARD) {
            DIE_IF(pxs_producer_send_proxy(fwd, T_WORKER0 + (uint32_t)w, &ev.proxy, ev.meta,
                                           ev.meta_len),
                   "send_proxy(worker)");
        } else {
            if (MPI_Send(ev.proxy.bytes, PXS_PROXY_SIZE, MPI_BYTE, g_disp + 1 + w, TAG_PROXY,
                         MPI_COMM_WORLD) != MPI_SUCCESS)
                DIE_IF(PXS_ERR_MPI, "MPI_Send(proxy)");
        }
    }
    if (mode == MODE_MPI) {
        for (int w = 0; w < g_nwork; w++)
            MPI_Send(NULL, 0, MPI_BYTE, g_disp + 1 + w, TAG_END, MPI_COMM_WORLD);
    }
    DIE_IF(pxs_producer_destroy(fwd), "producer_destroy"); /* closes WORK topics: END */
    DIE_IF(pxs_consumer_destroy(cons), "consumer_destroy");
}

static void
worker_check(const demo_opts_t *o, const pxs_proxy_t *proxy, const unsigned char *buf,
             size_t len, const chunk_meta_t *meta, demo_stats_t *st)
{
    /* The proxy names the owner (the generator's rank) and the sequence
     * number (the chunk index): enough to recompute the pattern even on the
     * MPI path that carries no metadata. */
    pxs_proxy_info_t info;
    int ok = pxs_proxy_decode(proxy->bytes, PXS_PROXY_SIZE, &info) == PXS_OK;
    uint64_t seed = ok ? chunk_seed(info.owner, (uint32_t)info.seq) : 0;
    ok = ok && len == o->chunk_size && pattern_ok(buf, len, seed);
    if (meta)
        ok = ok && meta->gen == info.owner && meta->idx == info.seq && meta->check == seed;
    if (ok)
        st->verified += 1;
    else
        fprintf(stderr, "pxs-demo[%d]: chunk from rank %u seq %llu did NOT verify\n",
                g_rank, info.owner, (unsigned long long)info.seq);
}

static void
run_worker(const demo_opts_t *o, int mode, pxs_store_t *store, pxs_bus_t *bus,
           demo_stats_t *st)
{
    unsigned char *buf = malloc(o->chunk_size ? o->chunk_size : 1);
    if (!buf)
        MPI_Abort(MPI_COMM_WORLD, 2);
    if (mode == MODE_MPI) {
        for (;;) {
            pxs_proxy_t p;
            MPI_Status s;
            MPI_Recv(p.bytes, PXS_PROXY_SIZE, MPI_BYTE, g_disp, MPI_ANY_TAG, MPI_COMM_WORLD, &s);
            if (s.MPI_TAG == TAG_END)
                break;
            DIE_IF(pxs_proxy_validate(&p), "proxy_validate");
            size_t len = 0;
            int rc = pxs_store_resolve(store, &p, buf, o->chunk_size, &len);
            if (rc < 0) {
                fprintf(stderr, "pxs-demo[%d]: resolve: %s (%s)\n", g_rank, pxs_errname(rc),
                        pxs_last_error_detail());
                st->failed += 1;
                continue;
            }
            st->resolved += 1;
            st->moved += (double)len;
            worker_check(o, &p, buf, len, NULL, st);
        }
    } else {
        pxs_subscriber_t *sub;
        DIE_IF(pxs_bus_subscriber(bus, &sub), "bus_subscriber");
        pxs_consumer_t *cons;
        DIE_IF(pxs_consumer_create(store, sub, NULL, &cons), "consumer_create");
        for (;;) {
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, PXS_WAIT_FOREVER);
            DIE_IF(rc, "consumer_next");
            if (rc == PXS_END)
                break;
            size_t len = 0;
            rc = pxs_consumer_resolve(cons, &ev, buf, o->chunk_size, &len);
            if (rc < 0) {
                fprintf(stderr, "pxs-demo[%d]: resolve: %s (%s)\n", g_rank, pxs_errname(rc),
                        pxs_last_error_detail());
                st->failed += 1;
                continue;
            }
            st->resolved += 1;
            st->moved += (double)len;
            chunk_meta_t m;
            int have_meta = ev.meta_len == sizeof m;
            if (have_meta)
                memcpy(&m, ev.meta, sizeof m);
            else
                st->failed += 1;
            worker_check(o, &ev.proxy, buf, len, have_meta ? &m : NULL, st);
        }
        DIE_IF(pxs_consumer_destroy(cons), "consumer_destroy");
    }
    free(buf);
}

static const char *
mode_name(int mode)
{
    return mode == MODE_GROUP ? "group" : mode == MODE_FORWARD ? "forward" : "mpi";
}

/* One mode: a fresh bus with this mode's routing; returns 1 if all verified. */
static int
run_mode(const demo_opts_t *o, int mode, pxs_store_t *store, double *verified_out)
{
    uint32_t pubs[64];
    pxs_subscription_t subs[2];
    memset(subs, 0, sizeof subs); /* fields not set below (prefetch) are 0: defaults */
    size_t npub = 0, nsub = 0;
    char group[] = "workers";
    int worker = g_rank > g_disp ? g_rank - g_disp - 1 : -1;
    if (g_rank < g_ngen) {
        pubs[npub++] = T_CHUNKS;
    } else if (g_rank == g_disp) {
        subs[nsub].topic = T_CHUNKS;
        subs[nsub++].group = NULL;
        if (mode == MODE_GROUP)
            pubs[npub++] = T_WORK;
        else if (mode == MODE_FORWARD)
            for (int w = 0; w < g_nwork && w < 64; w++)
                pubs[npub++] = T_WORKER0 + (uint32_t)w;
    } else if (mode == MODE_GROUP) {
        subs[nsub].topic = T_WORK;
        subs[nsub++].group = group;
    } else if (mode == MODE_FORWARD) {
        subs[nsub].topic = T_WORKER0 + (uint32_t)worker;
        subs[nsub++].group = NULL;
    }
    pxs_bus_opts_t bo;
    DIE_IF(pxs_bus_opts_init(&bo), "bus_opts_init");
    bo.publish = pubs;
    bo.n_publish = npub;
    bo.subscribe = subs;
    bo.n_subscribe = nsub;
    pxs_bus_t *bus;
    DIE_IF(pxs_bus_create(MPI_COMM_WORLD, &bo, &bus), "bus_create");
    pxs_publisher_t *pub;
    DIE_IF(pxs_bus_publisher(bus, &pub), "bus_publisher");

    demo_stats_t st;
    memset(&st, 0, sizeof st);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (g_rank < g_ngen)
        run_generator(o, store, pub, &st);
    else if (g_rank == g_disp)
        run_dispatcher(mode, store, bus, &st);
    else
        run_worker(o, mode, store, bus, &st);
    st.seconds = MPI_Wtime() - t0;

    demo_stats_t *all = NULL;
    if (g_rank == 0)
        all = calloc((size_t)g_size, sizeof *all);
    MPI_Gather(&st, (int)(sizeof st / sizeof(double)), MPI_DOUBLE, all,
               (int)(sizeof st / sizeof(double)), MPI_DOUBLE, 0, MPI_COMM_WORLD);
    /* Generators wait here until workers resolved everything, so their
     * arenas stay alive; then the bus goes (collective). */
    if (o->stats)
        app_print_stats(MPI_COMM_WORLD, mode_name(mode), bus, NULL);
    DIE_IF(pxs_bus_destroy(bus), "bus_destroy");

    int ok = 1;
    if (g_rank == 0) {
        double sent = 0, sent_bytes = 0, dev = 0, dbytes = 0, res = 0, ver = 0, moved = 0,
               failed = 0, secs = 0;
        for (int r = 0; r < g_size; r++) {
            sent += all[r].sent;
            sent_bytes += all[r].sent_bytes;
            dev += all[r].disp_events;
            dbytes += all[r].disp_bytes;
            res += all[r].resolved;
            ver += all[r].verified;
            moved += all[r].moved;
            failed += all[r].failed;
            if (all[r].seconds > secs)
                secs = all[r].seconds;
        }
        ok = failed == 0 && ver == sent && res == sent && dev == sent;
        printf("[%s] chunks sent %.0f (%.1f MiB)\n", mode_name(mode), sent,
               sent_bytes / 1048576.0);
        printf("[%s] resolved per worker:", mode_name(mode));
        for (int w = 0; w < g_nwork; w++)
            printf(" w%d=%.0f", w, all[g_disp + 1 + w].resolved);
        printf("\n");
        printf("[%s] dispatcher received %.0f events, %.0f B (%.0f B/chunk: one mailbox "
               "record with the 64 B proxy + metadata%s), 0 payload bytes\n",
               mode_name(mode), dev, dbytes, dev > 0 ? dbytes / dev : 0.0,
               mode == MODE_MPI ? "; forwarded as 64 B MPI messages" : "");
        printf("[%s] bytes moved to workers %.0f (%.1f MiB) in %.3f s: %.0f chunks/s, "
               "%.2f GB/s\n",
               mode_name(mode), moved, moved / 1048576.0, secs, secs > 0 ? res / secs : 0.0,
               secs > 0 ? moved / secs / 1e9 : 0.0);
        printf("[%s] verified %.0f/%.0f%s\n", mode_name(mode), ver, sent,
               ok ? "" : "  <-- FAILED");
        fflush(stdout);
        free(all);
        *verified_out += ver;
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return ok;
}

/* --replay DIR: the recorded run, in this job (rank 0; the others wait). */
static int
run_replay(const char *dir)
{
    int ok = 1;
    if (g_rank == 0) {
        char sdir[4200], ldir[4200];
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        snprintf(ldir, sizeof ldir, "%s/log", dir);
        pxs_store_t *store;
        DIE_IF(pxs_store_open(MPI_COMM_SELF, sdir, &store), "store_open");
        pxs_subscription_t subs[] = {{.topic = T_CHUNKS, .group = NULL}};
        pxs_subscriber_t *sub;
        DIE_IF(pxs_log_subscriber_open(ldir, subs, 1, &sub), "log_subscriber_open");
        pxs_consumer_t *cons;
        DIE_IF(pxs_consumer_create(store, sub, NULL, &cons), "consumer_create");
        uint32_t next[64] = {0};
        double n = 0, verified = 0, bytes = 0;
        double t0 = MPI_Wtime();
        for (;;) {
            pxs_event_t ev;
            void *data = NULL;
            size_t len = 0;
            int rc = pxs_consumer_next_object(cons, &ev, &data, &len, 10.0);
            if (rc == PXS_END)
                break;
            DIE_IF(rc, "consumer_next_object (replay)");
            chunk_meta_t m;
            n++;
            int good = ev.meta_len == sizeof m;
            if (good) {
                memcpy(&m, ev.meta, sizeof m);
                good = m.gen < 64 && m.idx == next[m.gen] && m.len == len &&
                       m.check == chunk_seed(m.gen, m.idx) && pattern_ok(data, len, m.check);
                if (m.gen < 64)
                    next[m.gen] = m.idx + 1;
            }
            verified += good;
            bytes += (double)len;
            pxs_free(data);
        }
        double secs = MPI_Wtime() - t0;
        int gens = 0;
        for (int g = 0; g < 64; g++)
            gens += next[g] > 0;
        ok = n > 0 && verified == n;
        printf("pxs-demo: replayed %.0f chunk(s) (%.1f MiB) of %d generator(s) from %s in %.3f "
               "s; verified %.0f/%.0f: %s\n",
               n, bytes / 1048576.0, gens, dir, secs, verified, n, ok ? "OK" : "FAILED");
        fflush(stdout);
        DIE_IF(pxs_consumer_destroy(cons), "consumer_destroy");
        DIE_IF(pxs_log_subscriber_close(sub), "log_subscriber_close");
        DIE_IF(pxs_store_destroy(store), "store_destroy");
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return ok;
}

/* ---------------------------------------------------------------- across jobs */
#ifdef PXS_HAVE_UCX
#include "proxystream/attach.h"

/* --export FILE: generators 0..N-2, dispatcher N-1 (forwards to T_WORK,
 * which only attached workers subscribe to). */
static int
run_export(const demo_opts_t *o, const char *file, double wait)
{
    int disp = g_size - 1;
    pxs_store_opts_t so;
    DIE_IF(pxs_store_opts_init(&so), "store_opts_init");
    so.connector = PXS_CONN_UCX;
    so.arena_bytes = o->arena;
    so.put_timeout = wait;
    pxs_store_t *store;
    DIE_IF(pxs_store_create(MPI_COMM_WORLD, &so, &store), "store_create");
    uint32_t chunks[1] = {T_CHUNKS}, work[1] = {T_WORK};
    pxs_subscription_t sub = {.topic = T_CHUNKS};
    pxs_bus_opts_t bo;
    DIE_IF(pxs_bus_opts_init(&bo), "bus_opts_init");
    bo.send_timeout = wait;
    if (g_rank == disp) {
        bo.subscribe = &sub;
        bo.n_subscribe = 1;
        bo.publish = work;
        bo.n_publish = 1;
        bo.export_wait = 1; /* the first forward waits for the workers' job */
    } else {
        bo.publish = chunks;
        bo.n_publish = 1;
    }
    pxs_bus_t *bus;
    DIE_IF(pxs_bus_create(MPI_COMM_WORLD, &bo, &bus), "bus_create");
    DIE_IF(pxs_export(bus, store, file), "export");
    if (g_rank == 0) {
        printf("pxs-demo: exported to %s; start the workers: mpirun -n W pxs-demo --attach %s\n",
               file, file);
        fflush(stdout);
    }
    demo_stats_t st;
    memset(&st, 0, sizeof st);
    double t0 = MPI_Wtime();
    if (g_rank == disp) {
        pxs_publisher_t *pub;
        DIE_IF(pxs_bus_publisher(bus, &pub), "bus_publisher");
        run_dispatcher(MODE_GROUP, store, bus, &st);
    } else {
        pxs_publisher_t *pub;
        DIE_IF(pxs_bus_publisher(bus, &pub), "bus_publisher");
        run_generator(o, store, pub, &st);
    }
    /* the chunks are resolved by the other job: keep serving (the store's
     * progress thread does) until every generator's arena is empty */
    for (;;) {
        size_t used = 0, cap = 0;
        DIE_IF(pxs_store_progress(store), "store_progress");
        DIE_IF(pxs_store_used(store, &used, &cap), "store_used");
        int mine = used == 0, all = 0;
        MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
        if (all || MPI_Wtime() - t0 > wait)
            break;
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    double sent = 0, fwd = 0;
    MPI_Reduce(&st.sent, &sent, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&st.disp_events, &fwd, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    DIE_IF(pxs_bus_destroy(bus), "bus_destroy");
    DIE_IF(pxs_store_destroy(store), "store_destroy");
    if (g_rank == 0) {
        printf("pxs-demo: export OK: %d generator(s) sent %.0f chunks, the dispatcher forwarded "
               "%.0f to attached workers (%.1f s)\n",
               g_size - 1, sent, fwd, MPI_Wtime() - t0);
        fflush(stdout);
    }
    return sent == fwd;
}

/* --attach FILE: every rank is a worker (group "workers" of T_WORK). */
static int
run_attach(const demo_opts_t *o, const char *file, double wait, double max)
{
    pxs_subscription_t sub = {.topic = T_WORK, .group = "workers"};
    pxs_bus_t *bus;
    pxs_store_t *store;
    double t0 = MPI_Wtime();
    DIE_IF(pxs_attach(MPI_COMM_WORLD, file, &sub, 1, wait, &bus, &store), "attach");
    double t_att = MPI_Wtime() - t0;
    pxs_subscriber_t *s;
    DIE_IF(pxs_bus_subscriber(bus, &s), "bus_subscriber");
    pxs_consumer_t *cons;
    DIE_IF(pxs_consumer_create(store, s, NULL, &cons), "consumer_create");
    demo_stats_t st;
    memset(&st, 0, sizeof st);
    unsigned char *buf = malloc(o->chunk_size ? o->chunk_size : 1);
    if (!buf)
        MPI_Abort(MPI_COMM_WORLD, 2);
    double first = -1, ids[2] = {0, 0}, idt[2] = {0, 0};
    int ended = 0;
    for (;;) {
        if (max > 0) { /* leave together once the job's share is done */
            double done = 0;
            int e = ended, any = 0;
            MPI_Allreduce(&st.verified, &done, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
            MPI_Allreduce(&e, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
            if (done >= max || any)
                break;
        } else if (ended) {
            break;
        }
        pxs_event_t ev;
        int rc = pxs_consumer_next(cons, &ev, max > 0 ? 0.05 : wait);
        if (rc == PXS_TIMEOUT && max > 0)
            continue;
        DIE_IF(rc, "consumer_next");
        if (rc == PXS_END || rc == PXS_TIMEOUT) {
            ended = 1;
            continue;
        }
        if (first < 0)
            first = MPI_Wtime() - t0;
        size_t len = 0;
        rc = pxs_consumer_resolve(cons, &ev, buf, o->chunk_size, &len);
        if (rc < 0) {
            fprintf(stderr, "pxs-demo[%d]: resolve: %s (%s)\n", g_rank, pxs_errname(rc),
                    pxs_last_error_detail());
            st.failed += 1;
            continue;
        }
        st.resolved += 1;
        st.moved += (double)len;
        chunk_meta_t m;
        int have = ev.meta_len == sizeof m;
        if (have)
            memcpy(&m, ev.meta, sizeof m);
        else
            st.failed += 1;
        double before = st.verified;
        worker_check(o, &ev.proxy, buf, len, have ? &m : NULL, &st);
        if (st.verified > before && have) { /* which chunk: exactly once across jobs */
            double id = (double)m.gen * 1048576.0 + (double)m.idx;
            ids[0] += id;
            ids[1] += id * id;
        }
    }
    free(buf);
    DIE_IF(pxs_consumer_destroy(cons), "consumer_destroy");
    DIE_IF(pxs_bus_destroy(bus), "bus_destroy (detach)");
    DIE_IF(pxs_store_destroy(store), "store_destroy");
    double v = 0, r = 0, f = 0;
    MPI_Reduce(&st.verified, &v, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&st.resolved, &r, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&st.failed, &f, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(ids, idt, 2, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    int ok = f == 0 && v == r;
    if (g_rank == 0) {
        printf("pxs-demo: attach %s: %d worker(s) verified %.0f/%.0f chunks from %s (attach "
               "%.3f s, first chunk %.3f s after it started; chunk ids 2^20 gen + idx: sum "
               "%.0f, sum of squares %.0f)\n",
               ok ? "OK" : "FAILED", g_size, v, r, file, t_att, first, idt[0], idt[1]);
        fflush(stdout);
    }
    return ok;
}
#endif

static void
usage(void)
{
    fprintf(stderr,
            "usage: mpirun -n N pxs-demo [--generators G] [--chunks N] [--chunk-size S]\n"
            "       [--mode group|forward|mpi|all] [--rate R] [--steady] [--checksum]\n"
            "       [--arena S] [--quiet] [--stats] [--log DIR]   (N >= G + 2: G generators,\n"
            "       1 dispatcher, workers)\n"
            "       mpirun -n 1 pxs-demo --replay DIR   (replay a run recorded with --log DIR)\n"
            "       mpirun -n N pxs-demo --export FILE [--wait S] ...  (N >= 2: generators +\n"
            "       dispatcher; UCX builds)\n"
            "       mpirun -n W pxs-demo --attach FILE [--max K]  (W workers, another job)\n");
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);

    demo_opts_t o = {1, 64, 1u << 20, MODE_GROUP | MODE_FORWARD | MODE_MPI, 0.0, 1, 0,
                     (size_t)8 << 20, 0, 0};
    const char *v;
    int bad = 0;
    if ((v = app_opt(argc, argv, "--generators")))
        o.ngen = atoi(v);
    if ((v = app_opt(argc, argv, "--chunks")))
        o.chunks = (uint32_t)strtoul(v, NULL, 10);
    if ((v = app_opt(argc, argv, "--chunk-size")))
        bad |= (o.chunk_size = app_parse_size(v)) == 0;
    if ((v = app_opt(argc, argv, "--arena")))
        bad |= (o.arena = app_parse_size(v)) == 0;
    if ((v = app_opt(argc, argv, "--rate")))
        o.rate = atof(v);
    if ((v = app_opt(argc, argv, "--mode"))) {
        if (!strcmp(v, "group"))
            o.modes = MODE_GROUP;
        else if (!strcmp(v, "forward"))
            o.modes = MODE_FORWARD;
        else if (!strcmp(v, "mpi"))
            o.modes = MODE_MPI;
        else if (strcmp(v, "all"))
            bad = 1;
    }
    if ((v = app_opt(argc, argv, "--replay"))) {
        int ok = run_replay(v);
        MPI_Finalize();
        return ok ? 0 : 1;
    }
    if ((v = app_opt(argc, argv, "--log"))) {
        snprintf(g_log, sizeof g_log, "%s/log", v);
        if (o.modes == (MODE_GROUP | MODE_FORWARD | MODE_MPI))
            o.modes = MODE_GROUP; /* one recorded run */
        else if (o.modes != MODE_GROUP && o.modes != MODE_FORWARD && o.modes != MODE_MPI)
            bad = 1;
    }
    const char *xfile = app_opt(argc, argv, "--export");
    const char *afile = app_opt(argc, argv, "--attach");
    if (xfile || afile) {
#ifdef PXS_HAVE_UCX
        double wait = 300.0, max = 0;
        if ((v = app_opt(argc, argv, "--wait")))
            wait = atof(v);
        if ((v = app_opt(argc, argv, "--max")))
            max = atof(v);
        o.fluctuate = !app_has_flag(argc, argv, "--steady");
        o.checksum = app_has_flag(argc, argv, "--checksum");
        if (bad || (xfile && afile) || (xfile && g_size < 2)) {
            if (g_rank == 0)
                usage();
            MPI_Finalize();
            return 2;
        }
        g_nwork = 1;
        int ok = xfile ? run_export(&o, xfile, wait) : run_attach(&o, afile, wait, max);
        MPI_Finalize();
        return ok ? 0 : 1;
#else
        if (g_rank == 0)
            fprintf(stderr, "pxs-demo: --export/--attach need a build with UCX\n");
        MPI_Finalize();
        return 2;
#endif
    }
    o.fluctuate = !app_has_flag(argc, argv, "--steady");
    o.checksum = app_has_flag(argc, argv, "--checksum");
    o.quiet = app_has_flag(argc, argv, "--quiet");
    o.stats = app_has_flag(argc, argv, "--stats");
    if (app_has_flag(argc, argv, "--help") || app_has_flag(argc, argv, "-h"))
        bad = 1;
    if (o.ngen < 1 || g_size < o.ngen + 2 || g_size - o.ngen - 1 > 64)
        bad = 1;
    if (bad) {
        if (g_rank == 0)
            usage();
        MPI_Finalize();
        return 2;
    }
    g_ngen = o.ngen;
    g_disp = o.ngen;
    g_nwork = g_size - o.ngen - 1;

    if (g_rank == 0) {
        printf("pxs-demo: %d generator(s) -> 1 dispatcher -> %d worker(s); %u chunks x "
               "%zu B per generator; production rate %s\n",
               g_ngen, g_nwork, o.chunks, o.chunk_size,
               o.fluctuate ? "fluctuating (bursts, slow phases)" : "steady");
        fflush(stdout);
    }

    pxs_store_opts_t so;
    DIE_IF(pxs_store_opts_init(&so), "store_opts_init");
    if (o.arena)
        so.arena_bytes = o.arena;
    char sdir[4200];
    if (g_log[0]) { /* --log: a durable store in DIR/store, the log in DIR/log */
        const char *dir = app_opt(argc, argv, "--log");
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        if (g_rank == 0 && mkdir(dir, 0777) != 0 && errno != EEXIST)
            fprintf(stderr, "pxs-demo: mkdir %s: %s\n", dir, strerror(errno));
        MPI_Barrier(MPI_COMM_WORLD);
        so.connector = PXS_CONN_HDF5;
        so.path = sdir;
    }
    pxs_store_t *store;
    DIE_IF(pxs_store_create(MPI_COMM_WORLD, &so, &store), "store_create");

    int all_ok = 1;
    double total_sent = 0, total_verified = 0;
    for (int mode = MODE_GROUP; mode <= MODE_MPI; mode <<= 1) {
        if (!(o.modes & mode))
            continue;
        all_ok &= run_mode(&o, mode, store, &total_verified);
        total_sent += (double)o.chunks * o.ngen;
    }
    if (o.stats)
        app_print_stats(MPI_COMM_WORLD, "all modes", NULL, store);
    DIE_IF(pxs_store_destroy(store), "store_destroy");
    if (g_rank == 0) {
        printf("pxs-demo: %s (verified %.0f/%.0f chunks over all modes)\n",
               all_ok ? "OK" : "FAILED", total_verified, total_sent);
        fflush(stdout);
    }
    MPI_Finalize();
    return all_ok ? 0 : 1;
}
