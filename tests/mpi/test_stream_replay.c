/* Stream log and replay (docs/DESIGN.md, section "Stream log and replay"),
 * driven by tests/tools/hdf5-jobs.sh (scenario replay):
 *   live STORE LOG    NP 4: ranks 0-2 produce topics 1 and 2 into an HDF5
 *                     store with log_path = LOG (rank 2 closes topic 2
 *                     early, after 5 events); rank 3 consumes live
 *   liverma - LOG     the same with an RMA store and log_bytes = 1: the log
 *                     keeps durable copies (one HDF5 store per producer
 *                     under LOG)
 *                     Every fourth chunk goes through pxs_producer_reserve/
 *                     send_reserved with res->data moved to a decoy and
 *                     res->len grown by 64 MiB before the send: the proxy,
 *                     the log's durable copy and the counts follow the
 *                     store's record, never the caller's fields
 *   replay STORE LOG  a later job, one rank: pxs_store_open(STORE) and
 *                     pxs_log_subscriber_open(LOG); a consumer on them reads
 *                     the whole stream: order per (producer, topic), every
 *                     payload and metadata verified, END once every
 *                     producer closed; a topic-1-only replay; bad paths.
 *                     After liverma: STORE = LOG (pxs_store_open of the log
 *                     directory opens every producer's copy store) */
#include <stdlib.h>

#include "pxs_test.h"

enum { NPROD = 3, NEV = 20, EARLY = 5 };
static int rank;

static uint64_t
seed(int p, uint32_t t, uint64_t i)
{
    return (uint64_t)p * 10000u + t * 1000u + i;
}

static size_t
len_of(uint64_t i)
{
    return 1000 + (size_t)i * 37;
}

static int
expected(int p, uint32_t t)
{
    return p == 2 && t == 2 ? EARLY : NEV;
}

/* Read a stream to its END and check it; returns the number of events. */
static int
drain(pxs_consumer_t *c, int want_t1, int want_t2)
{
    uint64_t next[NPROD][3] = {{0}};
    int n = 0;
    for (;;) {
        pxs_event_t ev;
        void *data = NULL;
        size_t len = 0;
        int rc = pxs_consumer_next_object(c, &ev, &data, &len, 60.0);
        if (rc == PXS_END)
            break;
        CHECK_RC(rc, PXS_OK);
        CHECK(ev.producer >= 0 && ev.producer < NPROD);
        CHECK((ev.topic == 1 && want_t1) || (ev.topic == 2 && want_t2));
        CHECK(ev.seq == next[ev.producer][ev.topic]);
        next[ev.producer][ev.topic]++;
        CHECK(len == len_of(ev.seq) &&
              pxs_test_verify(data, len, seed(ev.producer, ev.topic, ev.seq)));
        char meta[64];
        snprintf(meta, sizeof meta, "p%d t%u i%llu", ev.producer, ev.topic,
                 (unsigned long long)ev.seq);
        CHECK(ev.meta_len == strlen(meta) + 1 && memcmp(ev.meta, meta, ev.meta_len) == 0);
        pxs_free(data);
        n++;
    }
    for (int p = 0; p < NPROD; p++) {
        CHECK(next[p][1] == (uint64_t)(want_t1 ? expected(p, 1) : 0));
        CHECK(next[p][2] == (uint64_t)(want_t2 ? expected(p, 2) : 0));
    }
    pxs_event_t ev;
    CHECK_RC(pxs_consumer_next(c, &ev, 0), PXS_END); /* and forever after */
    return n;
}

static void
do_live(const char *store_dir, const char *log_dir, int rma)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    if (!rma) {
        so.connector = PXS_CONN_HDF5;
        so.path = store_dir;
    }
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    uint32_t topics[] = {1, 2};
    pxs_subscription_t subs[] = {{.topic = 1, .group = NULL}, {.topic = 2, .group = NULL}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    if (rank < NPROD) {
        bo.publish = topics;
        bo.n_publish = 2;
    } else {
        bo.subscribe = subs;
        bo.n_subscribe = 2;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&bo, &bus, &pub, &sub);
    if (rank < NPROD) {
        pxs_producer_opts_t po;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.log_path = log_dir;
        po.log_bytes = rma; /* RMA objects die with the job: log copies */
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(st, pub, &po, &prod));
        for (uint64_t i = 0; i < NEV; i++) {
            for (uint32_t t = 1; t <= 2; t++) {
                if (i >= (uint64_t)expected(rank, t))
                    continue;
                size_t len = len_of(i);
                char meta[64];
                snprintf(meta, sizeof meta, "p%d t%u i%llu", rank, t, (unsigned long long)i);
                pxs_send_opts_t sendo;
                CHECK_OK(pxs_send_opts_init(&sendo));
                sendo.meta = meta;
                sendo.meta_len = strlen(meta) + 1;
                if (i % 4 == 3) {
                    static unsigned char decoy[256];
                    pxs_reservation_t res;
                    CHECK_OK(pxs_producer_reserve(prod, len, &res));
                    pxs_test_fill(res.data, len, seed(rank, t, i));
                    res.data = decoy;
                    res.len += (size_t)64 << 20;
                    CHECK_OK(pxs_producer_send_reserved(prod, t, &res, &sendo, NULL));
                } else {
                    unsigned char *b = malloc(len);
                    pxs_test_fill(b, len, seed(rank, t, i));
                    CHECK_OK(pxs_producer_send(prod, t, b, len, &sendo, NULL));
                    free(b);
                }
                if (rank == 2 && t == 2 && i + 1 == EARLY)
                    CHECK_OK(pxs_producer_close_topic(prod, 2));
            }
        }
        CHECK_OK(pxs_producer_destroy(prod));
    } else {
        pxs_consumer_t *c;
        CHECK_OK(pxs_consumer_create(st, sub, NULL, &c));
        CHECK(drain(c, 1, 1) == NPROD * NEV * 2 - (NEV - EARLY));
        CHECK_OK(pxs_consumer_destroy(c));
    }
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(st));
}

static void
do_replay(const char *store_dir, const char *log_dir)
{
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_open(MPI_COMM_SELF, store_dir, &st));
    pxs_subscription_t subs[] = {{.topic = 1, .group = NULL}, {.topic = 2, .group = NULL}};
    pxs_subscriber_t *sub = NULL;
    CHECK_OK(pxs_log_subscriber_open(log_dir, subs, 2, &sub));
    pxs_consumer_t *c;
    CHECK_OK(pxs_consumer_create(st, sub, NULL, &c));
    CHECK(drain(c, 1, 1) == NPROD * NEV * 2 - (NEV - EARLY));
    CHECK_OK(pxs_consumer_destroy(c));
    CHECK_OK(pxs_log_subscriber_close(sub));

    /* topic 1 only */
    CHECK_OK(pxs_log_subscriber_open(log_dir, subs, 1, &sub));
    CHECK_OK(pxs_consumer_create(st, sub, NULL, &c));
    CHECK(drain(c, 1, 0) == NPROD * NEV);
    CHECK_OK(pxs_consumer_destroy(c));
    CHECK_OK(pxs_log_subscriber_close(sub));

    /* bad input */
    if (strcmp(store_dir, log_dir) != 0)
        CHECK_RC(pxs_log_subscriber_open(store_dir, subs, 2, &sub), PXS_ERR_NOT_FOUND);
    CHECK_RC(pxs_log_subscriber_open("/nonexistent/pxs-log", subs, 2, &sub), PXS_ERR_IO);
    CHECK_RC(pxs_log_subscriber_open(NULL, subs, 2, &sub), PXS_ERR_INVALID);
    CHECK_RC(pxs_log_subscriber_close((pxs_subscriber_t *)st), PXS_ERR_INVALID);
    CHECK_OK(pxs_store_destroy(st));
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    CHECK(argc == 4);
    if (strcmp(argv[1], "live") == 0)
        do_live(argv[2], argv[3], 0);
    else if (strcmp(argv[1], "liverma") == 0)
        do_live(argv[2], argv[3], 1);
    else if (strcmp(argv[1], "replay") == 0)
        do_replay(argv[2], argv[3]);
    else
        CHECK(!"mode");
    if (rank == 0)
        printf("replay %s: OK\n", argv[1]);
    MPI_Finalize();
    return 0;
}
