/* Window creation across nodes: osc/rdma and osc/sm cannot create a window
 * spanning TCP nodes. pxs_bus_create must then return PXS_ERR_MPI on every
 * rank (no abort, no hang) with the remedy in the detail; with osc ucx or
 * pt2pt, or on one node, it must succeed and deliver an event. */
#include "test_events_common.h"

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size, nsize;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &nsize);
    MPI_Comm_free(&node);
    int multi = nsize < size;
    const char *osc = getenv("OMPI_MCA_osc");
    int must_fail = multi && osc && (strstr(osc, "rdma") || strcmp(osc, "sm") == 0);

    uint32_t t = 1;
    pxs_subscription_t s = {.topic = 1, .group = NULL};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    if (rank == 0) {
        o.publish = &t;
        o.n_publish = 1;
    } else {
        o.subscribe = &s;
        o.n_subscribe = 1;
    }
    pxs_bus_t *bus = NULL;
    int rc = pxs_bus_create(MPI_COMM_WORLD, &o, &bus);
    if (rank == 0)
        printf("multi-node %d osc %s: pxs_bus_create -> %s (%s)\n", multi, osc ? osc : "(default)",
               pxs_errname(rc), rc < 0 ? pxs_last_error_detail() : "");
    if (must_fail || rc == PXS_ERR_MPI) {
        CHECK(multi);
        CHECK_RC(rc, PXS_ERR_MPI);
        CHECK(bus == NULL);
        CHECK(strstr(pxs_last_error_detail(), "--mca osc ucx") != NULL);
        /* MPI still usable afterwards */
        int x = 1, y = 0;
        MPI_Allreduce(&x, &y, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        CHECK(y == size);
    } else {
        CHECK_OK(rc);
        pxs_publisher_t *pub;
        pxs_subscriber_t *sub;
        CHECK_OK(pxs_bus_publisher(bus, &pub));
        CHECK_OK(pxs_bus_subscriber(bus, &sub));
        pxs_event_t ev;
        pxs_proxy_t px;
        unsigned char meta[PXS_EVENT_META_MAX];
        if (rank == 0) {
            size_t len = ev_fill(0, 1, 0, &px, meta);
            CHECK_OK(pxs_publisher_send(pub, 1, &px, meta, len, NULL));
            CHECK_OK(pxs_publisher_close_topic(pub, 1));
        } else {
            CHECK_OK(pxs_subscriber_recv(sub, &ev, 30));
            CHECK(ev_check(&ev, 0));
            CHECK_RC(pxs_subscriber_recv(sub, &ev, 30), PXS_END);
        }
        CHECK_OK(pxs_bus_destroy(bus));
    }
    MPI_Finalize();
    return 0;
}
