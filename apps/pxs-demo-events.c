/* pxs-demo-events: a few ranks publish events with metadata on the MPI
 * mailbox bus; the others print what they received and "verified N/N".
 *   mpirun -n 4 pxs-demo-events [--events N]
 * Even ranks publish topic 1, odd ranks subscribe (rank 1 also takes topic 2
 * from rank 0). Exit status 1 on any mismatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "app_common.h"
#include "proxystream.h"

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *e = app_opt(argc, argv, "--events");
    int n = e ? atoi(e) : 5;
    int npub = (size + 1) / 2;
    uint32_t pubs[2] = {1, 2};
    pxs_subscription_t subs[2] = {{.topic = 1, .group = NULL}, {.topic = 2, .group = NULL}};
    pxs_bus_opts_t o;
    if (pxs_bus_opts_init(&o) != PXS_OK)
        MPI_Abort(MPI_COMM_WORLD, 1);
    if (rank % 2 == 0) {
        o.publish = pubs;
        o.n_publish = rank == 0 ? 2 : 1;
    } else {
        o.subscribe = subs;
        o.n_subscribe = rank == 1 ? 2 : 1;
    }
    pxs_bus_t *bus;
    int rc = pxs_bus_create(MPI_COMM_WORLD, &o, &bus);
    if (rc != PXS_OK) {
        fprintf(stderr, "[%d] pxs_bus_create: %s (%s)\n", rank, pxs_errname(rc),
                pxs_last_error_detail());
        MPI_Finalize();
        return 1;
    }
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    if (pxs_bus_publisher(bus, &pub) != PXS_OK || pxs_bus_subscriber(bus, &sub) != PXS_OK)
        MPI_Abort(MPI_COMM_WORLD, 1);
    int bad = 0;
    if (rank % 2 == 0) {
        for (int i = 0; i < n; i++)
            for (uint32_t t = 1; t <= (rank == 0 ? 2u : 1u); t++) {
                pxs_proxy_info_t info = {0};
                info.kind = PXS_CONN_RMA;
                info.owner = (uint32_t)rank;
                info.topic = t;
                info.seq = (uint64_t)i;
                info.size = 1000u * (uint64_t)(i + 1);
                pxs_proxy_t px;
                char meta[PXS_EVENT_META_MAX];
                int len = snprintf(meta, sizeof meta, "rank %d topic %u chunk %d", rank, t, i);
                if (pxs_proxy_encode(&info, &px) != PXS_OK ||
                    pxs_publisher_send(pub, t, &px, meta, (size_t)len + 1, NULL) != PXS_OK)
                    bad++;
            }
        if (pxs_publisher_close_topic(pub, 1) != PXS_OK ||
            (rank == 0 && pxs_publisher_close_topic(pub, 2) != PXS_OK))
            bad++;
    } else {
        int expect = n * npub + (rank == 1 ? n : 0), ok = 0, got = 0;
        pxs_event_t ev;
        while ((rc = pxs_subscriber_recv(sub, &ev, 30)) == PXS_OK || rc == PXS_END) {
            if (rc == PXS_END) {
                if (ev.topic == PXS_TOPIC_ALL)
                    break;
                printf("[%d] end of topic %u\n", rank, ev.topic);
                continue;
            }
            got++;
            pxs_proxy_info_t info;
            char want[PXS_EVENT_META_MAX];
            snprintf(want, sizeof want, "rank %d topic %u chunk %d", ev.producer, ev.topic,
                     (int)ev.seq);
            if (pxs_proxy_decode(ev.proxy.bytes, PXS_PROXY_SIZE, &info) == PXS_OK &&
                info.owner == (uint32_t)ev.producer && info.seq == ev.seq &&
                ev.meta_len == strlen(want) + 1 && memcmp(ev.meta, want, ev.meta_len) == 0)
                ok++;
            printf("[%d] got topic %u from %d seq %llu: \"%s\" (%llu bytes at rank %u)\n", rank,
                   ev.topic, ev.producer, (unsigned long long)ev.seq, (const char *)ev.meta,
                   (unsigned long long)info.size, info.owner);
        }
        if (rc < 0) {
            fprintf(stderr, "[%d] recv: %s (%s)\n", rank, pxs_errname(rc),
                    pxs_last_error_detail());
            bad++;
        }
        printf("[%d] verified %d/%d\n", rank, ok, expect);
        bad += ok != expect || got != expect;
    }
    (void)pxs_bus_destroy(bus);
    int all = 0;
    MPI_Allreduce(&bad, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return all != 0;
}
