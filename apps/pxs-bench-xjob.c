/* pxs-bench-xjob: a stream across jobs (pxs_export of a bus + pxs_attach)
 * against the same stream inside one job, and the attach time. UCX builds.
 *
 *   mpirun -n 1 pxs-bench-xjob export FILE [--events N] [--size S] &
 *   mpirun -n 1 pxs-bench-xjob attach FILE [--events N] [--size S]
 *   mpirun -n 2 pxs-bench-xjob local [--events N] [--size S]
 *   mpirun -n 2 pxs-bench-xjob resolve [--iters N] [--owner poll|idle]
 *
 * 1 -> 1: the producer puts each chunk into a UCX store (one resolve) and
 * sends its proxy on topic 1; the consumer resolves every chunk into its
 * buffer and checks its first word. export/attach: two jobs (the exporter
 * waits for the attaching job: export_wait 1); local: ranks 0 -> 1 of one
 * job, the same store connector and bus. Reported by the consumer:
 *   attach      s from pxs_attach's call to its return (contact file there)
 *   first-event s from pxs_attach's call to the first event received
 *   stream      chunks/s and MB/s from the first event to END
 * resolve: rank 1 resolves rank 0's kept objects (64 KiB, 1 MiB) from a UCX
 * store, against a raw ucp_get_nbx of the same size between the same two
 * processes (own context and worker, UCX-allocated buffer), interleaved in
 * one loop into the same buffer; the owner polls both workers (--owner
 * poll) or sits in MPI_Barrier (--owner idle: ours only); GB/s, ours / raw
 * = ratio (UCX_TLS=tcp for the network path).
 * Defaults: 2000 events of 64 KiB. Figures on a loaded machine are noisy. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app_common.h"
#include "proxystream.h"

#ifdef PXS_HAVE_UCX
#include <ucp/api/ucp.h>

#include "proxystream/attach.h"

#define DIE_IF(rc, what)                                                                 \
    do {                                                                                 \
        int rc_ = (rc);                                                                  \
        if (rc_ < 0) {                                                                   \
            fprintf(stderr, "pxs-bench-xjob: %s: %s (%s)\n", what, pxs_errname(rc_),     \
                    pxs_last_error_detail());                                            \
            MPI_Abort(MPI_COMM_WORLD, 2);                                                \
        }                                                                                \
    } while (0)

static void
produce(pxs_store_t *st, pxs_publisher_t *pub, uint64_t n, size_t size)
{
    unsigned char *b = calloc(1, size < 8 ? 8 : size);
    pxs_put_opts_t po;
    DIE_IF(pxs_put_opts_init(&po), "put_opts_init");
    po.resolves = 1;
    po.timeout = 120;
    for (uint64_t i = 0; i < n; i++) {
        memcpy(b, &i, 8);
        pxs_proxy_t p;
        DIE_IF(pxs_store_put(st, b, size, &po, &p), "put");
        DIE_IF(pxs_publisher_send(pub, 1, &p, &i, sizeof i, NULL), "send");
    }
    DIE_IF(pxs_publisher_close_topic(pub, 1), "close");
    free(b);
}

/* consumer: returns chunks received; t_first: time of the first event */
static uint64_t
consume(pxs_store_t *st, pxs_subscriber_t *sub, size_t size, double *t_first, double *t_end)
{
    unsigned char *b = malloc(size < 8 ? 8 : size);
    uint64_t got = 0;
    *t_first = -1;
    for (;;) {
        pxs_event_t ev;
        int rc = pxs_subscriber_recv(sub, &ev, 120.0);
        DIE_IF(rc, "recv");
        if (rc == PXS_END)
            break;
        if (rc != PXS_OK)
            DIE_IF(PXS_ERR_AGAIN, "recv timed out");
        if (*t_first < 0)
            *t_first = app_now();
        size_t len = 0;
        DIE_IF(pxs_store_resolve(st, &ev.proxy, b, size, &len), "resolve");
        uint64_t i, w;
        memcpy(&i, ev.meta, 8);
        memcpy(&w, b, 8);
        if (len != size || w != i)
            DIE_IF(PXS_ERR_CORRUPT, "chunk does not verify");
        got++;
    }
    *t_end = app_now();
    free(b);
    return got;
}

static void
report(const char *mode, uint64_t got, size_t size, double t_first, double t_end)
{
    double s = t_end - t_first;
    printf("pxs-bench-xjob %s: stream 1->1 %llu chunks of %zu B: %.0f chunks/s, %.1f MB/s\n",
           mode, (unsigned long long)got, size, got > 1 && s > 0 ? (double)(got - 1) / s : 0.0,
           got > 1 && s > 0 ? (double)(got - 1) * (double)size / s / 1e6 : 0.0);
}

/* The raw baseline: its own UCP context and worker, rank 0's buffer
 * allocated by UCX (as the store's arena), rank 1's endpoint and key. */
typedef struct raw {
    ucp_context_h ctx;
    ucp_worker_h w;
    ucp_mem_h mh;
    ucp_ep_h ep;
    ucp_rkey_h rk;
    uint64_t addr;
} raw_t;

static ucs_status_t
raw_wait(ucp_worker_h w, ucs_status_ptr_t r)
{
    ucs_status_t st = UCS_PTR_STATUS(r);
    if (UCS_PTR_IS_PTR(r)) {
        while ((st = ucp_request_check_status(r)) == UCS_INPROGRESS)
            ucp_worker_progress(w);
        ucp_request_free(r);
    }
    return st;
}

static void
raw_open(raw_t *x, int rank, size_t size)
{
    memset(x, 0, sizeof *x);
    ucp_params_t cp;
    memset(&cp, 0, sizeof cp);
    cp.field_mask = UCP_PARAM_FIELD_FEATURES;
    cp.features = UCP_FEATURE_RMA;
    if (ucp_init(&cp, NULL, &x->ctx) != UCS_OK)
        DIE_IF(PXS_ERR_NOTSUP, "ucp_init");
    ucp_worker_params_t wp;
    memset(&wp, 0, sizeof wp);
    wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wp.thread_mode = UCS_THREAD_MODE_SINGLE;
    if (ucp_worker_create(x->ctx, &wp, &x->w) != UCS_OK)
        DIE_IF(PXS_ERR_NOTSUP, "ucp_worker_create");
    ucp_mem_map_params_t mp;
    memset(&mp, 0, sizeof mp);
    mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                    UCP_MEM_MAP_PARAM_FIELD_FLAGS;
    mp.length = size;
    mp.flags = UCP_MEM_MAP_ALLOCATE;
    if (ucp_mem_map(x->ctx, &mp, &x->mh) != UCS_OK)
        DIE_IF(PXS_ERR_NOMEM, "ucp_mem_map");
    ucp_mem_attr_t ma;
    memset(&ma, 0, sizeof ma);
    ma.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS;
    ucp_mem_query(x->mh, &ma);
    memset(ma.address, 7, size);
    /* rank 0's address, key and worker address to rank 1 */
    unsigned char blob[8192];
    memset(blob, 0, sizeof blob);
    if (rank == 0) {
        void *k = NULL;
        size_t kl = 0, al = 0;
        ucp_address_t *a = NULL;
        ucp_rkey_pack(x->ctx, x->mh, &k, &kl);
        ucp_worker_get_address(x->w, &a, &al);
        uint64_t h[3] = {(uint64_t)(uintptr_t)ma.address, kl, al};
        if (24 + kl + al > sizeof blob)
            DIE_IF(PXS_ERR_NOMEM, "address blob");
        memcpy(blob, h, 24);
        memcpy(blob + 24, k, kl);
        memcpy(blob + 24 + kl, a, al);
        ucp_rkey_buffer_release(k);
        ucp_worker_release_address(x->w, a);
    }
    MPI_Bcast(blob, (int)sizeof blob, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank == 1) {
        uint64_t h[3];
        memcpy(h, blob, 24);
        ucp_ep_params_t ep;
        memset(&ep, 0, sizeof ep);
        ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
        ep.address = (const ucp_address_t *)(blob + 24 + h[1]);
        if (ucp_ep_create(x->w, &ep, &x->ep) != UCS_OK ||
            ucp_ep_rkey_unpack(x->ep, blob + 24, &x->rk) != UCS_OK)
            DIE_IF(PXS_ERR_PEER, "raw endpoint");
        x->addr = h[0];
    }
}

/* rank 1: one raw get of size bytes into dst */
static void
raw_get(raw_t *x, void *dst, size_t size)
{
    ucp_request_param_t p;
    memset(&p, 0, sizeof p);
    if (raw_wait(x->w, ucp_get_nbx(x->ep, dst, size, x->addr, x->rk, &p)) != UCS_OK)
        DIE_IF(PXS_ERR_PEER, "raw ucp_get_nbx");
}

/* rank 0 progresses the raw worker until rank 1 closed (tcp needs it) */
static void
raw_close(raw_t *x, int rank)
{
    if (rank == 1) {
        ucp_rkey_destroy(x->rk);
        ucp_request_param_t cpar;
        memset(&cpar, 0, sizeof cpar);
        cpar.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        cpar.flags = UCP_EP_CLOSE_FLAG_FORCE;
        (void)raw_wait(x->w, ucp_ep_close_nbx(x->ep, &cpar)); /* forced: may report */
    }
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    for (int done = 0; !done;) {
        ucp_worker_progress(x->w);
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    }
    ucp_mem_unmap(x->ctx, x->mh);
    ucp_worker_destroy(x->w);
    ucp_cleanup(x->ctx);
}

/* resolve: rank 1 resolves rank 0's kept object and gets the same bytes
 * raw, interleaved (one of each per iteration, 5 warm-up), into the same destination buffer, so
 * both see the same load. Owner (rank 0), --owner poll (default): polls
 * pxs_store_progress and the raw worker until rank 1 is done, the same
 * progress for both (over tcp both need it); --owner idle: sits in
 * MPI_Barrier (only the store's progress thread, or the node-local path,
 * serves it) and the raw get is not measured. GB/s from the median time of
 * one operation. */
static void
bench_resolve(int rank, int iters, int idle)
{
    static const size_t sizes[2] = {64 << 10, 1 << 20};
    pxs_store_opts_t so;
    DIE_IF(pxs_store_opts_init(&so), "store_opts_init");
    so.connector = PXS_CONN_UCX;
    so.arena_bytes = 8 << 20;
    pxs_store_t *st;
    DIE_IF(pxs_store_create(MPI_COMM_WORLD, &so, &st), "store_create");
    for (int k = 0; k < 2; k++) {
        size_t size = sizes[k];
        unsigned char *b = calloc(1, size);
        pxs_proxy_t p;
        if (rank == 0) {
            pxs_put_opts_t po;
            DIE_IF(pxs_put_opts_init(&po), "put_opts_init");
            po.resolves = 0;
            DIE_IF(pxs_store_put(st, b, size, &po, &p), "put");
        }
        MPI_Bcast(p.bytes, PXS_PROXY_SIZE, MPI_BYTE, 0, MPI_COMM_WORLD);
        raw_t x;
        if (!idle)
            raw_open(&x, rank, size);
        double ours = 0, raw = 0;
        double *t_ours = calloc((size_t)iters, sizeof(double));
        double *t_raw = calloc((size_t)iters, sizeof(double));
        if (!t_ours || !t_raw)
            DIE_IF(PXS_ERR_NOMEM, "timings");
        if (rank == 1) {
            for (int it = -5; it < iters; it++) {
                double t = app_now();
                size_t len = 0;
                DIE_IF(pxs_store_resolve(st, &p, b, size, &len), "resolve");
                double t1 = app_now();
                if (!idle)
                    raw_get(&x, b, size);
                double t2 = app_now();
                if (it >= 0) {
                    t_ours[it] = t1 - t;
                    t_raw[it] = t2 - t1;
                }
            }
            if (!idle && b[size - 1] != 7)
                DIE_IF(PXS_ERR_CORRUPT, "raw get");
        }
        if (idle) {
            MPI_Barrier(MPI_COMM_WORLD);
        } else {
            MPI_Request req;
            MPI_Ibarrier(MPI_COMM_WORLD, &req);
            for (int done = 0; !done;) {
                ucp_worker_progress(x.w);
                DIE_IF(pxs_store_progress(st), "progress");
                MPI_Test(&req, &done, MPI_STATUS_IGNORE);
            }
            raw_close(&x, rank);
        }
        if (rank == 1) {
            /* medians: one preemption of a loaded machine would otherwise
             * dominate a mean */
            ours = app_median(t_ours, iters);
            raw = app_median(t_raw, iters);
            double g_ours = (double)size / ours / 1e9;
            if (idle) {
                printf("pxs-bench-xjob resolve %7zu B: ours %.2f GB/s (owner idle in MPI_Barrier, "
                       "%.1f us per resolve)\n",
                       size, g_ours, ours * 1e6);
            } else {
                double g_raw = (double)size / raw / 1e9;
                printf("pxs-bench-xjob resolve %7zu B: ours %.2f GB/s / raw ucp_get_nbx %.2f GB/s = "
                       "%.2f\n",
                       size, g_ours, g_raw, g_ours / g_raw);
            }
            fflush(stdout);
        }
        if (rank == 0)
            DIE_IF(pxs_store_drop(st, &p), "drop");
        MPI_Barrier(MPI_COMM_WORLD);
        free(t_ours);
        free(t_raw);
        free(b);
    }
    DIE_IF(pxs_store_destroy(st), "store_destroy");
}

static pxs_store_t *
make_store(void)
{
    pxs_store_opts_t so;
    DIE_IF(pxs_store_opts_init(&so), "store_opts_init");
    so.connector = PXS_CONN_UCX;
    so.arena_bytes = 64 << 20;
    pxs_store_t *st;
    DIE_IF(pxs_store_create(MPI_COMM_WORLD, &so, &st), "store_create");
    return st;
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *v;
    uint64_t n = 2000;
    size_t csize = 64 << 10;
    if ((v = app_opt(argc, argv, "--events")))
        n = strtoull(v, NULL, 10);
    if ((v = app_opt(argc, argv, "--size")))
        csize = app_parse_size(v);
    const char *mode = argc > 1 ? argv[1] : "";
    uint32_t topic = 1;
    pxs_subscription_t sub = {.topic = 1};
    if (!strcmp(mode, "export") && argc > 2) {
        pxs_store_t *st = make_store();
        pxs_bus_opts_t bo;
        DIE_IF(pxs_bus_opts_init(&bo), "bus_opts_init");
        bo.publish = &topic;
        bo.n_publish = rank == 0;
        bo.export_wait = 1;
        bo.send_timeout = 120;
        pxs_bus_t *bus;
        DIE_IF(pxs_bus_create(MPI_COMM_WORLD, &bo, &bus), "bus_create");
        DIE_IF(pxs_export(bus, st, argv[2]), "export");
        pxs_publisher_t *pub;
        DIE_IF(pxs_bus_publisher(bus, &pub), "publisher");
        if (rank == 0)
            produce(st, pub, n, csize);
        for (int k = 0; k < 6000; k++) { /* until the consumer resolved all */
            size_t used = 0, cap = 0;
            DIE_IF(pxs_store_used(st, &used, &cap), "used");
            if (used == 0)
                break;
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        DIE_IF(pxs_bus_destroy(bus), "bus_destroy");
        DIE_IF(pxs_store_destroy(st), "store_destroy");
    } else if (!strcmp(mode, "attach") && argc > 2) {
        double t0 = app_now();
        pxs_bus_t *bus;
        pxs_store_t *st;
        DIE_IF(pxs_attach(MPI_COMM_WORLD, argv[2], &sub, rank == 0, 120.0, &bus, &st), "attach");
        double t_att = app_now() - t0;
        pxs_subscriber_t *s;
        DIE_IF(pxs_bus_subscriber(bus, &s), "subscriber");
        double tf = 0, te = 0;
        uint64_t got = rank == 0 ? consume(st, s, csize, &tf, &te) : 0;
        if (rank == 0) {
            printf("pxs-bench-xjob attach: attach %.3f s, contact file -> first event %.3f s\n",
                   t_att, tf - t0);
            report("cross-job", got, csize, tf, te);
        }
        DIE_IF(pxs_bus_destroy(bus), "bus_destroy");
        DIE_IF(pxs_store_destroy(st), "store_destroy");
    } else if (!strcmp(mode, "local") && size >= 2) {
        pxs_store_t *st = make_store();
        pxs_bus_opts_t bo;
        DIE_IF(pxs_bus_opts_init(&bo), "bus_opts_init");
        if (rank == 0) {
            bo.publish = &topic;
            bo.n_publish = 1;
        } else if (rank == 1) {
            bo.subscribe = &sub;
            bo.n_subscribe = 1;
        }
        bo.send_timeout = 120;
        pxs_bus_t *bus;
        DIE_IF(pxs_bus_create(MPI_COMM_WORLD, &bo, &bus), "bus_create");
        pxs_publisher_t *pub;
        pxs_subscriber_t *s;
        DIE_IF(pxs_bus_publisher(bus, &pub), "publisher");
        DIE_IF(pxs_bus_subscriber(bus, &s), "subscriber");
        if (rank == 0) {
            produce(st, pub, n, csize);
        } else if (rank == 1) {
            double tf = 0, te = 0;
            uint64_t got = consume(st, s, csize, &tf, &te);
            report("one-job", got, csize, tf, te);
        }
        DIE_IF(pxs_bus_destroy(bus), "bus_destroy");
        DIE_IF(pxs_store_destroy(st), "store_destroy");
    } else if (!strcmp(mode, "resolve") && size == 2) {
        int iters = 200;
        if ((v = app_opt(argc, argv, "--iters")))
            iters = atoi(v);
        const char *ow = app_opt(argc, argv, "--owner");
        bench_resolve(rank, iters < 1 ? 1 : iters, ow && !strcmp(ow, "idle"));
    } else if (rank == 0) {
        fprintf(stderr, "usage: pxs-bench-xjob export FILE | attach FILE | local (-n 2) | resolve (-n 2) "
                        "[--events N] [--size S]\n");
    }
    MPI_Finalize();
    return 0;
}
#else
#include <stdio.h>
int
main(void)
{
    fprintf(stderr, "pxs-bench-xjob: built without UCX\n");
    return 2;
}
#endif
