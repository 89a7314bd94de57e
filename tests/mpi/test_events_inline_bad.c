/* Malformed inline record runs (docs/DESIGN.md, section "Inline chunks"),
 * injected through the test hook into rank 1's mailbox: each is
 * PXS_ERR_CORRUPT with its reason, never a crash or a hang (a run whose
 * continuation never comes ends after the bounded wait); a real inline
 * event afterwards is delivered and resolves to its bytes. 2 ranks: 0
 * publishes topic 3, 1 subscribes. */
#include "test_events_common.h"

#include "pubsub/pubsub_int.h"
#include "util/util.h"

static void
head(unsigned char *rec, uint32_t len, uint64_t seq, uint64_t lseq)
{
    pxsi_rec_encode(rec, 3, 0, seq, lseq, PXSI_REC_F_INLINE, NULL, NULL, 0);
    pxsi_put_le32(rec + PXSI_REC_O_RSVD, len);
}

static void
cont(unsigned char *rec, uint64_t seq, uint64_t lseq, uint32_t index)
{
    pxsi_rec_encode(rec, 3, 0, seq, lseq, PXSI_REC_F_CONT, NULL, NULL, 0);
    pxsi_put_le32(rec + PXSI_REC_O_RSVD, index);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 2);
    static uint32_t t3 = 3;
    static pxs_subscription_t s1 = {.topic = 3, .group = NULL};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    o.slots = 64;
    if (rank == 0) {
        o.publish = &t3;
        o.n_publish = 1;
    } else {
        o.subscribe = &s1;
        o.n_subscribe = 1;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&o, &bus, &pub, &sub);

    static const char *const why[] = {
        "without its head",   "not a continuation record",  "continuation of another event",
        "continuation index", "continuation link sequence", "inline payload length",
        "END flagged inline", "reserved field not 0",       "missing after"};
    const int nbad = (int)(sizeof why / sizeof why[0]);
    unsigned char rec[PXSI_REC_SIZE];
    if (rank == 0) {
        cont(rec, 0, 0, 1); /* a continuation where a head is due */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        head(rec, 300, 0, 0); /* 300 B: 2 continuations; a plain record instead */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        pxsi_rec_encode(rec, 3, 0, 0, 1, 0, NULL, NULL, 0);
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        head(rec, 300, 0, 0); /* continuation of seq 5 */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        cont(rec, 5, 1, 1);
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        head(rec, 300, 0, 0); /* index 2 first */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        cont(rec, 0, 1, 2);
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        head(rec, 300, 0, 0); /* link sequence gap inside the run */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        cont(rec, 0, 7, 1);
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        head(rec, 20000, 0, 0); /* over the hard bound */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        head(rec, 10, 0, 0); /* END and INLINE */
        pxsi_put_le16(rec + PXSI_REC_O_FLAGS, PXSI_REC_F_INLINE | PXSI_REC_F_END);
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        pxsi_rec_encode(rec, 3, 0, 0, 0, 0, NULL, NULL, 0); /* reserved != 0 */
        pxsi_put_le32(rec + PXSI_REC_O_RSVD, 5);
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        head(rec, 300, 0, 0); /* first continuation, the second never comes */
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
        cont(rec, 0, 1, 1);
        CHECK_OK(pxsi_bus_test_inject(bus, 1, rec));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    pxs_event_t ev;
    if (rank == 1) {
        for (int i = 0; i < nbad; i++) {
            CHECK_RC(pxs_subscriber_recv(sub, &ev, 30), PXS_ERR_CORRUPT);
            if (!strstr(pxs_last_error_detail(), why[i])) {
                fprintf(stderr, "case %d: detail \"%s\" does not say \"%s\"\n", i,
                        pxs_last_error_detail(), why[i]);
                CHECK(0);
            }
        }
        CHECK_RC(pxs_subscriber_recv(sub, &ev, 0), PXS_TIMEOUT);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    /* a real inline event (300 B, 3 records) after all that */
    pxs_store_t *store = NULL;
    pxs_producer_t *prod = NULL;
    unsigned char buf[300];
    if (rank == 0) {
        pxs_store_opts_t so;
        CHECK_OK(pxs_store_opts_init(&so));
        so.connector = PXS_CONN_LOCAL;
        so.arena_bytes = 1 << 16;
        CHECK_OK(pxs_store_create(MPI_COMM_SELF, &so, &store));
        pxs_producer_opts_t po;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.inline_max = 1024;
        CHECK_OK(pxs_producer_create(store, pub, &po, &prod));
        pxs_test_fill(buf, sizeof buf, 42);
        CHECK_OK(pxs_producer_send(prod, 3, buf, sizeof buf, NULL, NULL));
        CHECK_OK(pxs_producer_destroy(prod)); /* flush + END */
        CHECK_OK(pxs_store_destroy(store));
    } else {
        CHECK_OK(pxs_subscriber_recv(sub, &ev, 30));
        pxs_proxy_info_t pi;
        CHECK_OK(pxs_proxy_decode(ev.proxy.bytes, PXS_PROXY_SIZE, &pi));
        CHECK(pi.kind == PXS_CONN_INLINE && pi.size == sizeof buf && ev.seq == 0);
        size_t len = 0;
        CHECK_OK(pxs_store_resolve(NULL, &ev.proxy, buf, sizeof buf, &len));
        CHECK(len == sizeof buf && pxs_test_verify(buf, len, 42));
        CHECK_RC(pxs_subscriber_recv(sub, &ev, 30), PXS_END);
    }
    CHECK_OK(pxs_bus_destroy(bus));
    MPI_Finalize();
    if (rank == 0)
        printf("events.inline_bad: ok\n");
    return 0;
}
