/* Reserved chunks through a stream (docs/DESIGN.md, section "Reserved
 * puts"): rank 0 reserves each chunk in its arena (pxs_producer_reserve),
 * fills it in place and sends it with pxs_producer_send_reserved; rank 1
 * views every chunk in place (pxs_store_view), rank 2 resolves it; both
 * check every byte and the order. Sizes 100 B (never inline), 4 KiB and
 * 1 MiB in turn, in an 8 MiB arena, bus batch 32 (backpressure with events
 * still coalesced: reserve delivers them first). Bad input: a
 * NULL, zeroed or already sent reservation -> PXS_ERR_INVALID; an undeclared
 * topic, a closed one and metadata over PXS_EVENT_META_MAX fail and cancel
 * the reservation (the arena is empty at the end). A caller that changed
 * res->data/res->len before sending: what is sent (and counted) is the
 * store's record of the reservation, never the caller's fields. */
#include <stdlib.h>

#include "pxs_test.h"

enum { T1 = 43, T2 = 44, N = 60 };

static size_t
size_of(uint32_t i)
{
    return i % 3 == 0 ? 100 : i % 3 == 1 ? 4096 : (size_t)1 << 20;
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 3);

    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = 8u << 20;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &store));

    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    /* batch 32: the producer holds coalesced events while the arena fills;
     * reserve must deliver them before it waits for space (else each full
     * arena costs the whole put timeout) */
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.batch = 32;
    pxs_test_bus_one_to_all(&bo, &(pxs_subscription_t){.topic = T1}, &bus, &pub, &sub);

    if (rank == 0) {
        pxs_producer_t *prod;
        pxs_producer_opts_t popt;
        CHECK_OK(pxs_producer_opts_init(&popt));
        popt.checksum = 1;
        CHECK_OK(pxs_producer_create(store, pub, &popt, &prod));
        pxs_reservation_t res, zero;
        memset(&zero, 0, sizeof zero);
        pxs_proxy_t px;
        /* bad input */
        CHECK_RC(pxs_producer_send_reserved(prod, T1, NULL, NULL, &px), PXS_ERR_INVALID);
        CHECK_RC(pxs_producer_send_reserved(prod, T1, &zero, NULL, &px), PXS_ERR_INVALID);
        CHECK_RC(pxs_producer_reserve(NULL, 10, &res), PXS_ERR_INVALID);
        CHECK_RC(pxs_producer_reserve(prod, 0, &res), PXS_ERR_INVALID);
        /* an undeclared topic: not sent, reservation cancelled */
        CHECK_OK(pxs_producer_reserve(prod, 5000, &res));
        CHECK_RC(pxs_producer_send_reserved(prod, T2, &res, NULL, &px), PXS_ERR_NOT_FOUND);
        CHECK(strstr(pxs_last_error_detail(), "reservation cancelled"));
        CHECK_RC(pxs_store_cancel(store, &res), PXS_ERR_INVALID); /* consumed */
        /* metadata too big: PXS_ERR_TOO_BIG, reservation cancelled */
        static unsigned char bigmeta[PXS_EVENT_META_MAX + 1];
        pxs_send_opts_t bso;
        CHECK_OK(pxs_send_opts_init(&bso));
        bso.meta = bigmeta;
        bso.meta_len = sizeof bigmeta;
        CHECK_OK(pxs_producer_reserve(prod, 70000, &res));
        CHECK_RC(pxs_producer_send_reserved(prod, T1, &res, &bso, &px), PXS_ERR_TOO_BIG);
        CHECK(strstr(pxs_last_error_detail(), "reservation cancelled"));
        CHECK_RC(pxs_store_cancel(store, &res), PXS_ERR_INVALID); /* consumed */
        size_t used = 1, cap = 0;
        CHECK_OK(pxs_store_used(store, &used, &cap));
        CHECK(used == 0);
        uint64_t total = 0;
        static unsigned char decoy[64];
        for (uint32_t i = 0; i < N; i++) {
            CHECK_OK(pxs_producer_reserve(prod, size_of(i), &res));
            CHECK(res.len == size_of(i));
            pxs_test_fill(res.data, res.len, i);
            total += size_of(i);
            if (i == 4 || i == 5) {
                /* a careless caller: len grown past the block, data moved
                 * to another buffer; the record's bytes are sent */
                res.len += (size_t)1 << 30;
                res.data = decoy;
            }
            pxs_send_opts_t sop;
            CHECK_OK(pxs_send_opts_init(&sop));
            sop.meta = &i;
            sop.meta_len = sizeof i;
            pxs_reservation_t copy = res;
            CHECK_OK(pxs_producer_send_reserved(prod, T1, &res, &sop, &px));
            /* sent once: the same reservation (or a copy) again is refused */
            CHECK_RC(pxs_producer_send_reserved(prod, T1, &copy, &sop, &px), PXS_ERR_INVALID);
        }
        CHECK_OK(pxs_producer_close_topic(prod, T1));
        CHECK_OK(pxs_producer_reserve(prod, 4096, &res));
        CHECK_RC(pxs_producer_send_reserved(prod, T1, &res, NULL, &px), PXS_ERR_CLOSED);
        CHECK_RC(pxs_store_cancel(store, &res), PXS_ERR_INVALID); /* consumed */
        pxs_producer_stats_t ps;
        CHECK_OK(pxs_producer_stats_init(&ps));
        CHECK_OK(pxs_producer_stats2(prod, &ps));
        CHECK(ps.sent == N && ps.bytes == total);
        CHECK_OK(pxs_producer_destroy(prod));
    } else {
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        unsigned char *r = malloc((size_t)1 << 20);
        uint32_t got = 0;
        for (;;) {
            pxs_event_t ev;
            int rc = pxs_consumer_next(cons, &ev, 60.0);
            if (rc == PXS_END)
                break;
            CHECK_RC(rc, PXS_OK);
            uint32_t idx;
            memcpy(&idx, ev.meta, sizeof idx);
            CHECK(idx == got);
            if (rank == 1) {
                pxs_view_t v;
                CHECK_OK(pxs_store_view(store, &ev.proxy, &v));
                CHECK(v.len == size_of(idx) && pxs_test_verify(v.data, v.len, idx));
                CHECK_OK(pxs_store_release(store, &v));
            } else {
                size_t len = 0;
                CHECK_OK(pxs_consumer_resolve(cons, &ev, r, (size_t)1 << 20, &len));
                CHECK(len == size_of(idx) && pxs_test_verify(r, len, idx));
            }
            got++;
        }
        CHECK(got == N);
        free(r);
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    pxs_test_check_reclaimed(store, rank);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(store));
    MPI_Finalize();
    return 0;
}
