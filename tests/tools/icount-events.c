/* icount-events: instructions per event on the event path, for callgrind
 * (repeatable on a loaded machine, unlike timings). One rank publishes to and
 * subscribes to itself through the node ring, so no wait is counted: only the
 * CPU work of each call. Each phase is a function of its own, counted with
 *   valgrind --tool=callgrind --collect-atstart=no \
 *     --toggle-collect=phase_send --toggle-collect=phase_recv \
 *     --toggle-collect=phase_stream ./icount-events N
 * and callgrind_annotate --inclusive=yes (tests/tools/icount-events.sh does
 * all of it and divides by N):
 *   phase_send    N x pxs_publisher_send, batch 1 (each send appends); with
 *                 a second argument B > 1, batch B (a flush at the end) and
 *                 no stream phase
 *   phase_recv    N x pxs_subscriber_recv of those events (timeout -1)
 *   phase_stream  N x (pxs_producer_send of 1 KiB, pxs_consumer_next,
 *                 pxs_consumer_resolve): the stream-1to1 chunk path (inline
 *                 when PXS_INLINE_MAX >= 1024, else through the store) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxystream/pubsub.h"
#include "proxystream/status.h"
#include "proxystream/store.h"
#include "proxystream/stream.h"

#define CHECK(x)                                                                               \
    do {                                                                                       \
        int rc_ = (x);                                                                         \
        if (rc_ < 0) {                                                                         \
            fprintf(stderr, "%s: %s (%s)\n", #x, pxs_errname(rc_), pxs_last_error_detail()); \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                      \
        }                                                                                      \
    } while (0)

static pxs_publisher_t *pub;
static pxs_subscriber_t *sub;
static pxs_proxy_t px;
static unsigned char meta[64];
static int batch = 1;

__attribute__((noinline)) static void
do_send(int n)
{
    for (int i = 0; i < n; i++)
        CHECK(pxs_publisher_send(pub, 1, &px, meta, sizeof meta, NULL));
    if (batch > 1)
        CHECK(pxs_publisher_flush(pub));
}

__attribute__((noinline)) static void
do_recv(int n)
{
    pxs_event_t ev;
    for (int i = 0; i < n; i++)
        CHECK(pxs_subscriber_recv(sub, &ev, -1));
}

__attribute__((noinline)) static void
do_stream(int n, pxs_producer_t *prod, pxs_consumer_t *cons, unsigned char *buf)
{
    pxs_event_t ev;
    unsigned char out[1024];
    for (int i = 0; i < n; i++) {
        CHECK(pxs_producer_send(prod, 2, buf, 1024, NULL, NULL));
        CHECK(pxs_consumer_next(cons, &ev, -1));
        size_t len;
        CHECK(pxs_consumer_resolve(cons, &ev, out, sizeof out, &len));
    }
}

/* the counted phases (the warm-up calls do_* directly) */
__attribute__((noinline)) void phase_send(int n);
__attribute__((noinline)) void phase_recv(int n);
__attribute__((noinline)) void phase_stream(int n, pxs_producer_t *p, pxs_consumer_t *c,
                                            unsigned char *buf);
void
phase_send(int n)
{
    do_send(n);
}
void
phase_recv(int n)
{
    do_recv(n);
}
void
phase_stream(int n, pxs_producer_t *p, pxs_consumer_t *c, unsigned char *buf)
{
    do_stream(n, p, c, buf);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int n = argc > 1 ? atoi(argv[1]) : 500;
    if (n < 1 || n > 1000)
        n = 500;
    batch = argc > 2 ? atoi(argv[2]) : 1;
    if (batch < 1 || batch > 1024)
        batch = 1;
    uint32_t topics[2] = {1, 2};
    pxs_subscription_t s[2];
    memset(s, 0, sizeof s);
    s[0].topic = 1;
    s[1].topic = 2;
    pxs_bus_opts_t o;
    CHECK(pxs_bus_opts_init(&o));
    o.publish = topics;
    o.n_publish = 2;
    o.subscribe = s;
    o.n_subscribe = 2;
    o.batch = (uint32_t)batch;
    o.slots = 1024;
    pxs_bus_t *b;
    CHECK(pxs_bus_create(MPI_COMM_WORLD, &o, &b));
    CHECK(pxs_bus_publisher(b, &pub));
    CHECK(pxs_bus_subscriber(b, &sub));
    pxs_proxy_info_t pi;
    memset(&pi, 0, sizeof pi);
    pi.kind = PXS_CONN_RMA;
    pi.size = 1;
    CHECK(pxs_proxy_encode(&pi, &px));
    pxs_store_opts_t so;
    CHECK(pxs_store_opts_init(&so));
    pxs_store_t *st;
    CHECK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    pxs_producer_t *prod;
    pxs_consumer_t *cons;
    CHECK(pxs_producer_create(st, pub, NULL, &prod));
    CHECK(pxs_consumer_create(st, sub, NULL, &cons));
    unsigned char *buf = malloc(1024);
    memset(buf, 0x5a, 1024);
    /* warm-up: first-touch, lazy set-up */
    do_send(8);
    do_recv(8);
    if (batch == 1)
        do_stream(8, prod, cons, buf);
    phase_send(n);
    phase_recv(n);
    if (batch == 1)
        phase_stream(n, prod, cons, buf);
    free(buf);
    CHECK(pxs_producer_destroy(prod));
    CHECK(pxs_consumer_destroy(cons));
    CHECK(pxs_bus_destroy(b));
    CHECK(pxs_store_destroy(st));
    MPI_Finalize();
    return 0;
}
