/* pxs-bench-hdf5: put and resolve throughput of the HDF5 connector next to a
 * raw write() / pread() of the same bytes to the same file system, measured
 * in the same run (HDF5 builds only).
 *
 *   mpirun -n 1|2 pxs-bench-hdf5 [--dir DIR] [--max-size 16M] [--mib 256]
 *          [--spill-arena 8M] [--json] [--reps N] [--quick] [--quiet-busy F]
 *          [--quiet-wait S]
 * (--quick: --max-size 1M --mib 8 unless given; shared options: app_bench_init
 * in apps/common/app_common.h)
 *
 * Each rank writes its own file (as the connector does). For each size
 * (64 KiB, 1 MiB, 16 MiB, capped by --max-size), about --mib MiB per rank:
 *   put      pxs_store_put (durable = 0: every put flushed to the OS, no
 *            fsync) vs write() of the same buffers to a plain file (no fsync)
 *   resolve  pxs_store_resolve through pxs_store_open (a reader job's path,
 *            CRC32C checked) vs pread() of the plain file; both open their
 *            file before the clock (the store: one untimed resolve of the
 *            first object, which opens the rank's file)
 * Both sides read what they just wrote, so both are served by the page
 * cache: the ratio is the connector's overhead, not the disk's speed.
 *   resolve-crc32c  pxs_crc32c alone over the same bytes (best of --reps)
 *            vs the same pread(): what the CRC32C check that every resolve
 *            makes costs next to the read (a resolve cannot beat
 *            1 / (1/pread + 1/crc32c))
 * Each figure is the median of --reps samples (default 5), in the order put,
 * write(), resolve, pread() per sample (each sample a fresh store and file).
 * Then spill under pressure with a stalled consumer:
 *   spill-stalled  rank 0 sends about --mib MiB in 1 MiB chunks
 *            (pxs_producer_send) through an RMA store of --spill-arena
 *            (at most a quarter of the stream, at least 2 chunks)
 *            bytes with spill_path set (spill_after 0) while the consumer
 *            (rank 1; with one rank: nobody) does not read: once the arena
 *            is full every chunk spills to HDF5. GB/s and chunks/s vs
 *            write() of the same chunks to a plain file. Afterwards the
 *            consumer reads and verifies every chunk (not timed), and the
 *            spill count and the arena bound are checked (stderr line). One sample
 *            (a spill run is not repeatable in place), not a median.
 * Ratios > 1 = ours better. Files are removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_common.h"
#include "proxystream.h"

static int rank, nranks;

static void
die(const char *what, int rc)
{
    fprintf(stderr, "[%d] %s: %s (%s)\n", rank, what, pxs_errname(rc), pxs_last_error_detail());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void
rm_tree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "pxs-bench-hdf5: could not remove %s\n", dir);
}

/* One sample of each contender, in the order h_put, h_write, h_resolve,
 * h_read (one round of app_interleave): a fresh store directory and raw
 * file per round, removed by h_read. Each returns its wall time. */
struct hsamp {
    size_t sz, n, k;
    const char *base;
    unsigned char *buf;
    pxs_proxy_t *px;
    int rep;
    char sdir[4200], raw[4300];
};

static double
h_put(void *p)
{
    struct hsamp *c = p;
    snprintf(c->sdir, sizeof c->sdir, "%s/s%zu-%d", c->base, c->sz, c->rep);
    snprintf(c->raw, sizeof c->raw, "%s/raw%zu-%d-r%d", c->base, c->sz, c->rep, rank);
    pxs_store_opts_t so;
    pxs_store_opts_init(&so);
    so.connector = PXS_CONN_HDF5;
    so.path = c->sdir;
    pxs_store_t *st;
    int rc = pxs_store_create(MPI_COMM_WORLD, &so, &st);
    if (rc)
        die("store_create", rc);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = app_now();
    for (size_t i = 0; i < c->n; i++)
        if ((rc = pxs_store_put(st, c->buf, c->sz, NULL, &c->px[i])) != PXS_OK)
            die("put", rc);
    double t = app_now() - t0;
    if ((rc = pxs_store_destroy(st)) != PXS_OK)
        die("store_destroy", rc);
    return t;
}

static double
h_write(void *p)
{
    struct hsamp *c = p;
    int fd = open(c->raw, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        die("open raw", PXS_ERR_IO);
    double t0 = app_now();
    for (size_t i = 0; i < c->n; i++)
        if (write(fd, c->buf, c->sz) != (ssize_t)c->sz)
            die("write raw", PXS_ERR_IO);
    double t = app_now() - t0;
    close(fd);
    return t;
}

/* a reader job: pxs_store_open */
static double
h_resolve(void *p)
{
    struct hsamp *c = p;
    pxs_store_t *st;
    int rc;
    if ((rc = pxs_store_open(MPI_COMM_WORLD, c->sdir, &st)) != PXS_OK)
        die("store_open", rc);
    /* the rank's file is opened (H5Fopen) at the first resolve: once before
     * the clock, as the pread() side opens its file before the clock */
    size_t len0 = 0;
    if ((rc = pxs_store_resolve(st, &c->px[0], c->buf, c->sz, &len0)) != PXS_OK)
        die("resolve", rc);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = app_now();
    for (size_t i = 0; i < c->n; i++) {
        size_t len = 0;
        if ((rc = pxs_store_resolve(st, &c->px[i], c->buf, c->sz, &len)) != PXS_OK ||
            len != c->sz)
            die("resolve", rc);
    }
    double t = app_now() - t0;
    if ((rc = pxs_store_destroy(st)) != PXS_OK)
        die("store_destroy", rc);
    return t;
}

static double
h_read(void *p)
{
    struct hsamp *c = p;
    int fd = open(c->raw, O_RDONLY);
    if (fd < 0)
        die("open raw", PXS_ERR_IO);
    double t0 = app_now();
    for (size_t i = 0; i < c->n; i++)
        if (pread(fd, c->buf, c->sz, (off_t)(i * c->sz)) != (ssize_t)c->sz)
            die("pread raw", PXS_ERR_IO);
    double t = app_now() - t0;
    close(fd);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        rm_tree(c->sdir);
    unlink(c->raw);
    c->rep++;
    return t;
}

/* spill-stalled (see the file comment). Rank 0 produces, rank 1 consumes
 * after the producer finished, other ranks only join the collectives. */
static void
bench_spill(int json, const char *base, size_t sz, size_t mib, size_t arena)
{
    size_t n = (mib << 20) / sz;
    if (n < 8)
        n = 8;
    /* the arena must be smaller than the stream, or nothing spills (smoke
     * runs send a few MiB): at most a quarter of it, at least 2 chunks */
    if (arena > n * sz / 4)
        arena = n * sz / 4;
    if (arena < 2 * sz + ((size_t)64 << 10))
        arena = 2 * sz + ((size_t)64 << 10);
    char sp[4200], raw[4300];
    snprintf(sp, sizeof sp, "%s/spill", base);
    snprintf(raw, sizeof raw, "%s/rawspill-r%d", base, rank);
    pxs_store_opts_t so;
    pxs_store_opts_init(&so);
    so.connector = PXS_CONN_RMA;
    so.arena_bytes = arena;
    so.spill_path = sp;
    so.spill_after = 0;
    pxs_store_t *st;
    int rc = pxs_store_create(MPI_COMM_WORLD, &so, &st);
    if (rc)
        die("spill store_create", rc);
    const uint32_t T = 1;
    pxs_subscription_t sub = {T, NULL, 0};
    pxs_bus_opts_t bo;
    pxs_bus_opts_init(&bo);
    bo.publish = rank == 0 ? &T : NULL;
    bo.n_publish = rank == 0 ? 1 : 0;
    bo.subscribe = rank == 1 ? &sub : NULL;
    bo.n_subscribe = rank == 1 ? 1 : 0;
    bo.slots = (uint32_t)(n + 16); /* the mailbox holds every event: only the arena is short */
    pxs_bus_t *bus;
    if ((rc = pxs_bus_create(MPI_COMM_WORLD, &bo, &bus)) != PXS_OK)
        die("spill bus_create", rc);
    unsigned char *buf = malloc(sz);
    if (!buf)
        die("malloc", PXS_ERR_NOMEM);
    for (size_t i = 0; i < sz; i++)
        buf[i] = (unsigned char)(i * 131u + 7u);
    double t_spill = 0, t_write = 0;
    uint64_t sp_obj = 0, sp_bytes = 0;
    size_t used = 0, cap = 0;
    int bad = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        pxs_publisher_t *pub;
        pxs_producer_t *prod;
        if ((rc = pxs_bus_publisher(bus, &pub)) != PXS_OK ||
            (rc = pxs_producer_create(st, pub, NULL, &prod)) != PXS_OK)
            die("spill producer", rc);
        double t0 = app_now();
        for (size_t i = 0; i < n; i++) {
            memcpy(buf, &i, sizeof i); /* chunk number, checked by the consumer */
            if ((rc = pxs_producer_send(prod, T, buf, sz, NULL, NULL)) != PXS_OK)
                die("spill send", rc);
        }
        if ((rc = pxs_producer_flush(prod)) != PXS_OK)
            die("spill flush", rc);
        t_spill = app_now() - t0;
        if ((rc = pxs_producer_close_topic(prod, T)) != PXS_OK)
            die("spill close_topic", rc);
        if ((rc = pxs_producer_destroy(prod)) != PXS_OK)
            die("spill producer_destroy", rc);
        (void)pxs_store_spilled(st, &sp_obj, &sp_bytes);
        if ((rc = pxs_store_used(st, &used, &cap)) != PXS_OK)
            die("spill used", rc);
        int fd = open(raw, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        if (fd < 0)
            die("open raw", PXS_ERR_IO);
        t0 = app_now();
        for (size_t i = 0; i < n; i++) {
            memcpy(buf, &i, sizeof i);
            if (write(fd, buf, sz) != (ssize_t)sz)
                die("write raw", PXS_ERR_IO);
        }
        t_write = app_now() - t0;
        close(fd);
        unlink(raw);
    }
    MPI_Barrier(MPI_COMM_WORLD); /* the consumer stalled until here */
    size_t got = 0;
    if (rank == 1) {
        pxs_subscriber_t *s;
        pxs_consumer_t *c;
        if ((rc = pxs_bus_subscriber(bus, &s)) != PXS_OK ||
            (rc = pxs_consumer_create(st, s, NULL, &c)) != PXS_OK)
            die("spill consumer", rc);
        pxs_event_t ev;
        while ((rc = pxs_consumer_next(c, &ev, 60.0)) == PXS_OK) {
            size_t len = 0, idx = 0;
            if ((rc = pxs_consumer_resolve(c, &ev, buf, sz, &len)) != PXS_OK)
                die("spill resolve", rc);
            memcpy(&idx, buf, sizeof idx);
            bad += len != sz || idx != got;
            for (size_t j = sizeof idx; j < len && !bad; j++)
                bad += buf[j] != (unsigned char)(j * 131u + 7u);
            got++;
        }
        if (rc != PXS_END)
            die("spill next", rc);
        bad += got != n;
        if ((rc = pxs_consumer_destroy(c)) != PXS_OK)
            die("spill consumer_destroy", rc);
    }
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        double gb = (double)n * (double)sz / 1e9;
        app_report(json, "store-hdf5", "spill-stalled", nranks, sz, gb / t_spill, gb / t_write,
                   "write()", "GB/s", 1);
        app_report(json, "store-hdf5", "spill-stalled-chunks", nranks, sz, (double)n / t_spill,
                   (double)n / t_write, "write()", "chunks/s", 1);
        fprintf(stderr,
                "pxs-bench-hdf5: spill-stalled: %llu of %zu chunk(s) spilled (%llu B); arena "
                "%zu of %zu B used; consumer %s\n",
                (unsigned long long)sp_obj, n, (unsigned long long)sp_bytes, used, cap,
                nranks < 2 ? "none (1 rank)"
                : bad      ? "FAILED verification"
                           : "verified every chunk");
    }
    free(buf);
    if ((rc = pxs_bus_destroy(bus)) != PXS_OK)
        die("spill bus_destroy", rc);
    if ((rc = pxs_store_destroy(st)) != PXS_OK)
        die("spill store_destroy", rc);
    if (bad || (rank == 0 && (sp_obj == 0 || used > cap)))
        die("spill-stalled: check failed", PXS_ERR_CORRUPT);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        rm_tree(sp);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
#ifndef PXS_HAVE_HDF5
    /* a build without the HDF5 connector: nothing to measure (not a failure,
     * so that apps/run-benchmarks.sh goes on) */
    if (rank == 0)
        fprintf(stderr, "pxs-bench-hdf5: this build has no HDF5 connector; nothing measured\n");
    MPI_Finalize();
    return 0;
#endif
    app_bench_t bo;
    int brc = app_bench_init(MPI_COMM_WORLD, argc, argv, "pxs-bench-hdf5", &bo);
    if (brc) {
        MPI_Finalize();
        return brc;
    }
    int json = bo.json;
    size_t maxsz = bo.quick ? (size_t)1 << 20 : (size_t)16 << 20, mib = bo.quick ? 8 : 256;
    const char *v;
    if ((v = app_opt(argc, argv, "--max-size")) && !(maxsz = app_parse_size(v)))
        die("--max-size", PXS_ERR_INVALID);
    if ((v = app_opt(argc, argv, "--mib")))
        mib = (size_t)strtoul(v, NULL, 10);
    if (mib == 0)
        mib = 1;
    char base[4096];
    const char *tmp = getenv("TMPDIR");
    if ((v = app_opt(argc, argv, "--dir")))
        snprintf(base, sizeof base, "%s", v);
    else
        snprintf(base, sizeof base, "%s/pxs-bench-hdf5-%ld", tmp ? tmp : "/tmp", (long)getpid());
    MPI_Bcast(base, (int)sizeof base, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0 && mkdir(base, 0777) != 0 && errno != EEXIST)
        die("mkdir --dir", PXS_ERR_IO);
    MPI_Barrier(MPI_COMM_WORLD);

    const size_t sizes[] = {(size_t)64 << 10, (size_t)1 << 20, (size_t)16 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t sz = sizes[k];
        if (sz > maxsz)
            break;
        size_t n = (mib << 20) / sz;
        if (n < 4)
            n = 4;
        struct hsamp c = {.sz = sz, .n = n, .k = k, .base = base, .rep = 0};
        c.buf = malloc(sz);
        c.px = malloc(n * sizeof *c.px);
        if (!c.buf || !c.px)
            die("malloc", PXS_ERR_NOMEM);
        for (size_t i = 0; i < sz; i++)
            c.buf[i] = (unsigned char)(i * 131u + k);
        /* ABCD ABCD ...: put, write(), resolve, pread() */
        app_sample_fn fn[4] = {h_put, h_write, h_resolve, h_read};
        void *ctx[4] = {&c, &c, &c, &c};
        double m[4];
        app_interleave(bo.reps, 4, fn, ctx, m);
        double gb = (double)n * (double)sz / 1e9;
        /* where resolve's time goes: the CRC32C every resolve checks, over
         * the same bytes (best of --reps passes over n buffers of sz) */
        double tc = 0;
        uint32_t cs = 0;
        for (int r = 0; r < bo.reps; r++) {
            double t0 = app_now();
            for (size_t i = 0; i < n; i++)
                cs = pxs_crc32c(cs, c.buf, sz);
            double t = app_now() - t0;
            (void)cs;
            tc = r == 0 || t < tc ? t : tc;
        }
        if (rank == 0) {
            app_report(json, "store-hdf5", "put", nranks, sz, gb / m[0], gb / m[1], "write()",
                       "GB/s", 1);
            app_report(json, "store-hdf5", "resolve", nranks, sz, gb / m[2], gb / m[3],
                       "pread()", "GB/s", 1);
            app_report(json, "store-hdf5", "resolve-crc32c", nranks, sz, gb / tc, gb / m[3],
                       "pread()", "GB/s", 1);
        }
        free(c.buf);
        free(c.px);
    }
    size_t arena = (size_t)8 << 20;
    if ((v = app_opt(argc, argv, "--spill-arena")) && !(arena = app_parse_size(v)))
        die("--spill-arena", PXS_ERR_INVALID);
    bench_spill(json, base, maxsz < ((size_t)1 << 20) ? maxsz : (size_t)1 << 20, mib, arena);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0 && !app_opt(argc, argv, "--dir"))
        rm_tree(base);
    MPI_Finalize();
    return 0;
}
