/* Lent chunks through a stream (docs/DESIGN.md, section "Lent buffers"):
 * rank 0 sends with pxs_producer_send_ref from two buffers it reuses in
 * turn, waiting with pxs_producer_ref_wait before it overwrites one; ranks 1
 * and 2 (plain subscribers: budget 2) resolve every chunk and check its
 * bytes, so a buffer reused too early would show as wrong bytes. Sizes
 * 4 KiB and 1 MiB alternate. Where the store cannot lend, send_ref copies
 * (lent_out 0) and the same checks hold. Bad input: proxy_out NULL, len 0,
 * data NULL, ref_wait on a bad producer: PXS_ERR_INVALID. */
#include <stdlib.h>

#include "pxs_test.h"

enum { T1 = 41, N = 24 };

static size_t
size_of(uint32_t i)
{
    return i % 2 ? (size_t)1 << 20 : 4096;
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
    so.connector = PXS_CONN_RMA;
    so.arena_bytes = 8u << 20;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &store));

    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus_one_to_all(NULL, &(pxs_subscription_t){.topic = T1}, &bus, &pub, &sub);

    if (rank == 0) {
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, NULL, &prod));
        unsigned char *buf[2];
        for (int k = 0; k < 2; k++)
            CHECK(posix_memalign((void **)&buf[k], 4096, (size_t)1 << 20) == 0);
        pxs_proxy_t px[N];
        int lent[N];
        /* bad input */
        CHECK_RC(pxs_producer_send_ref(prod, T1, buf[0], 10, NULL, NULL, &lent[0]),
                 PXS_ERR_INVALID);
        CHECK(strstr(pxs_last_error_detail(), "proxy_out"));
        CHECK_RC(pxs_producer_send_ref(prod, T1, buf[0], 0, NULL, &px[0], &lent[0]),
                 PXS_ERR_INVALID);
        CHECK_RC(pxs_producer_send_ref(prod, T1, NULL, 10, NULL, &px[0], &lent[0]),
                 PXS_ERR_INVALID);
        CHECK(lent[0] == 0);
        CHECK_RC(pxs_producer_ref_wait(NULL, &px[0], 0), PXS_ERR_INVALID);
        int nlent = 0;
        for (uint32_t i = 0; i < N; i++) {
            unsigned char *b = buf[i % 2];
            if (i >= 2 && lent[i - 2])
                CHECK_OK(pxs_producer_ref_wait(prod, &px[i - 2], 60));
            pxs_test_fill(b, size_of(i), i);
            pxs_send_opts_t sop;
            CHECK_OK(pxs_send_opts_init(&sop));
            sop.meta = &i;
            sop.meta_len = sizeof i;
            CHECK_OK(pxs_producer_send_ref(prod, T1, b, size_of(i), &sop, &px[i], &lent[i]));
            nlent += lent[i];
        }
        for (uint32_t i = N - 2; i < N; i++)
            if (lent[i])
                CHECK_OK(pxs_producer_ref_wait(prod, &px[i], 60));
        CHECK(nlent == 0 || nlent == N); /* the store lends or it does not */
        printf("stream ref: %d of %d chunks lent\n", nlent, N);
        CHECK_OK(pxs_producer_destroy(prod)); /* END */
        free(buf[0]);
        free(buf[1]);
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
            size_t len = 0;
            CHECK_OK(pxs_consumer_resolve(cons, &ev, r, (size_t)1 << 20, &len));
            CHECK(len == size_of(idx) && pxs_test_verify(r, len, idx));
            got++;
        }
        CHECK(got == N);
        free(r);
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(store));
    MPI_Finalize();
    return 0;
}
