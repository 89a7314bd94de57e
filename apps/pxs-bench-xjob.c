/* pxs-bench-xjob: a stream across jobs (pxs_export of a bus + pxs_attach)
 * against the same stream inside one job, and the attach time. UCX builds.
 *
 *   mpirun -n 1 pxs-bench-xjob export FILE [--events N] [--size S] &
 *   mpirun -n 1 pxs-bench-xjob attach FILE [--events N] [--size S]
 *   mpirun -n 2 pxs-bench-xjob local [--events N] [--size S]
 *
 * 1 -> 1: the producer puts each chunk into a UCX store (one resolve) and
 * sends its proxy on topic 1; the consumer resolves every chunk into its
 * buffer and checks its first word. export/attach: two jobs (the exporter
 * waits for the attaching job: export_wait 1); local: ranks 0 -> 1 of one
 * job, the same store connector and bus. Reported by the consumer:
 *   attach      s from pxs_attach's call to its return (contact file there)
 *   first-event s from pxs_attach's call to the first event received
 *   stream      chunks/s and MB/s from the first event to END
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
    } else if (rank == 0) {
        fprintf(stderr, "usage: pxs-bench-xjob export FILE | attach FILE | local (-n 2) "
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
