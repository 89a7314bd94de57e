/* A tiny outside program built against the installed proxystream: proxy
 * round trip plus an MPI mailbox event from every rank to rank 0. */
#include <proxystream.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size, bad = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    pxs_proxy_info_t in;
    memset(&in, 0, sizeof in);
    in.kind = PXS_CONN_RMA;
    in.owner = (uint32_t)rank;
    in.size = 123;
    pxs_proxy_t p;
    char text[PXS_PROXY_TEXT_LEN];
    if (pxs_proxy_encode(&in, &p) != PXS_OK || pxs_proxy_to_text(&p, text, sizeof text) != PXS_OK)
        bad = 1;

    uint32_t topic = 1;
    pxs_subscription_t sub = {.topic = topic, .group = NULL};
    pxs_bus_opts_t o;
    pxs_bus_opts_init(&o);
    o.publish = &topic;
    o.n_publish = 1;
    if (rank == 0) {
        o.subscribe = &sub;
        o.n_subscribe = 1;
    }
    pxs_bus_t *bus = NULL;
    pxs_publisher_t *pub = NULL;
    pxs_subscriber_t *s = NULL;
    int rc = pxs_bus_create(MPI_COMM_WORLD, &o, &bus);
    if (rc != PXS_OK) {
        fprintf(stderr, "bus_create: %s (%s)\n", pxs_strerror(rc), pxs_last_error_detail());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (pxs_bus_publisher(bus, &pub) || pxs_bus_subscriber(bus, &s))
        bad = 1;
    if (pxs_publisher_send(pub, topic, &p, "hi", 2, NULL) || pxs_publisher_close_topic(pub, topic))
        bad = 1;
    if (rank == 0) {
        int got = 0;
        pxs_event_t ev;
        for (;;) {
            rc = pxs_subscriber_recv(s, &ev, 10.0);
            if (rc == PXS_OK && ev.meta_len == 2 && memcmp(ev.meta, "hi", 2) == 0)
                got++;
            else if (rc == PXS_END && ev.topic == PXS_TOPIC_ALL)
                break;
            else if (rc != PXS_END) {
                bad = 1;
                break;
            }
        }
        if (got != size)
            bad = 1;
        printf("consumer: %d/%d events, %s\n", got, size, bad ? "FAIL" : "ok");
    }
    if (pxs_bus_destroy(bus) != PXS_OK)
        bad = 1;
    int anybad = 0;
    MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return anybad;
}
