/* mpi.ucx.xgroup (driven by tests/tools/ucx_xgroup.sh): work-sharing groups
 * across jobs (docs/DESIGN.md, "Events across jobs"). Exporting job: rank 0
 * publishes topic 5 (export_wait 1); rank 1 is a local member of group "w"
 * on 5 (prefetch 1). Event i names a kept object of 4 KiB + i % 512 bytes
 * derived from i; meta = i. Every member verifies the bytes it resolves and
 * writes each index it is done with to D/got.<tag>.<rank> (one per line);
 * the script checks that the files together hold 0 .. N-1 exactly once.
 * Modes:
 *   gexport D N     send N events, close, flush until D/done. Rank 1 (local
 *                   member) touches D/local1 at its first event.
 *   gexport D N die (export_wait 0) wait for D/attached, send N/2 events,
 *                   flush until D/killed (the script kills
 *                   the attached member and waits for the producer's log
 *                   line about it), send the rest, close.
 *   mixed D         attach (group "w", prefetch 1); rank 0 holds its first
 *                   event (no recv) until D/local1: both jobs get events
 *                   whatever the timing. Until END.
 *   die D           attach (1 rank, group "w", prefetch 3); done with two
 *                   events, then touch D/kill while holding the third: the
 *                   script kills it (kill -9).
 *   serve D         send an event every 20 ms until D/done, then close.
 *   cycle D K       K times: attach (topic 5 plainly), two events verified,
 *                   detach (more cycles than the exporter offers slots, with
 *                   PXS_TEST_XBUS_REGS there); then touch D/done. With
 *                   PXS_TEST_XBUS_STALE=1 the library writes a stale XS_OFF
 *                   (previous generation) into its reused slots after the
 *                   first event: the second must still come.
 *   hold D          attach (topic 5 plainly), touch D/held, read until
 *                   D/release, detach.
 *   full D          attach while every slot is held: PXS_ERR_AGAIN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxystream/attach.h"
#include "pxs_test_ucx.h"

static int rank, size;
static const uint32_t topic = 5;

static size_t
obj_len(uint64_t i)
{
    return (size_t)4096 + (size_t)(i % 512);
}

static FILE *
got_file(const char *d, const char *tag)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/got.%s.%d", d, tag, rank);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    return f;
}

static void
got_write(FILE *f, uint64_t i)
{
    fprintf(f, "%llu\n", (unsigned long long)i);
    fflush(f);
}

/* one event's bytes and meta checked; its index */
static uint64_t
check_event(pxs_store_t *st, const pxs_event_t *ev, unsigned char *b)
{
    uint64_t i;
    CHECK(ev->topic == topic && ev->meta_len == sizeof i && ev->producer == 0);
    memcpy(&i, ev->meta, sizeof i);
    CHECK(ev->seq == i);
    size_t len = 0;
    CHECK_OK(pxs_store_resolve(st, &ev->proxy, b, obj_len(511), &len));
    CHECK(len == obj_len(i) && pxs_test_verify(b, len, i));
    return i;
}

static void
do_export(const char *d, uint64_t n, int die, int serve)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_UCX;
    so.arena_bytes = 16 << 20;
    pxs_store_t *st;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    pxs_subscription_t lsub = {.topic = topic, .group = "w", .prefetch = 1};
    if (rank == 0) {
        bo.publish = &topic;
        bo.n_publish = 1;
    } else if (rank == 1) {
        bo.subscribe = &lsub;
        bo.n_subscribe = 1;
    }
    /* die: export_wait 0 (a dead job would hold the stream): the producer
     * waits for D/attached before its first send instead */
    bo.export_wait = serve || die ? 0 : 1;
    bo.send_timeout = 60;
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&bo, &bus, &pub, &sub);
    char c[1024];
    snprintf(c, sizeof c, "%s/contact", d);
    CHECK_OK(pxs_export(bus, st, c));
    unsigned char *b = malloc(obj_len(511));
    CHECK(b != NULL);
    if (rank == 0) {
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = 0; /* kept: any number of members resolve it */
        uint64_t lim = serve ? 100000 : n;
        if (die)
            (void)pxs_test_wait_file(d, "attached", 2400, 50000, NULL, NULL);
        for (uint64_t i = 0; i < lim; i++) {
            if (serve && pxs_test_exists(d, "done"))
                break;
            if (die && i == n / 2) {
                /* the flushes notice the death */
                CHECK(pxs_test_wait_file(d, "killed", 2400, 50000,
                                         pxs_test_poll_publisher, pub));
            }
            size_t len = obj_len(i);
            pxs_test_fill(b, len, i);
            pxs_proxy_t p;
            CHECK_OK(pxs_store_put(st, b, len, &po, &p));
            CHECK_OK(pxs_publisher_send(pub, topic, &p, &i, sizeof i, NULL));
            if (serve)
                usleep(20000);
        }
        CHECK_OK(pxs_publisher_close_topic(pub, topic));
        /* the flushes pick detach acknowledgements up */
        CHECK(pxs_test_wait_file(d, "done", 2400, 50000, pxs_test_poll_publisher, pub));
        printf("export OK%s\n", die ? " (a member died)" : serve ? " (serve)" : "");
    } else if (rank == 1) {
        FILE *f = got_file(d, "L");
        pxs_event_t ev;
        int rc;
        uint64_t got = 0;
        while ((rc = pxs_subscriber_recv(sub, &ev, 120.0)) == PXS_OK ||
               (rc == PXS_END && ev.topic != PXS_TOPIC_ALL)) {
            if (rc != PXS_OK)
                continue;
            got_write(f, check_event(st, &ev, b));
            if (got++ == 0)
                pxs_test_touch(d, "local1");
        }
        CHECK_RC(rc, PXS_END);
        fclose(f);
        printf("local member: %llu event(s)\n", (unsigned long long)got);
    }
    fflush(stdout);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(st));
    free(b);
}

static void
attach(const char *d, const pxs_subscription_t *s, pxs_bus_t **bus, pxs_store_t **st,
       pxs_subscriber_t **sub)
{
    char c[1024];
    snprintf(c, sizeof c, "%s/contact", d);
    CHECK_OK(pxs_attach(MPI_COMM_WORLD, c, s, 1, 120.0, bus, st));
    CHECK_OK(pxs_bus_subscriber(*bus, sub));
}

static void
do_mixed(const char *d)
{
    pxs_subscription_t s = {.topic = topic, .group = "w", .prefetch = 1};
    pxs_bus_t *bus;
    pxs_store_t *st;
    pxs_subscriber_t *sub;
    attach(d, &s, &bus, &st, &sub);
    unsigned char *b = malloc(obj_len(511));
    CHECK(b != NULL);
    FILE *f = got_file(d, "A");
    pxs_event_t ev;
    int rc;
    uint64_t got = 0;
    while ((rc = pxs_subscriber_recv(sub, &ev, 120.0)) == PXS_OK) {
        got_write(f, check_event(st, &ev, b));
        if (got++ == 0) /* hold it: the local member gets one of the next ones */
            (void)pxs_test_wait_file(d, "local1", 2400, 50000, NULL, NULL);
    }
    CHECK_RC(rc, PXS_END);
    fclose(f);
    printf("attached member %d: %llu event(s)\n", rank, (unsigned long long)got);
    fflush(stdout);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(st));
    free(b);
}

static void
do_die(const char *d)
{
    pxs_subscription_t s = {.topic = topic, .group = "w", .prefetch = 3};
    pxs_bus_t *bus;
    pxs_store_t *st;
    pxs_subscriber_t *sub;
    attach(d, &s, &bus, &st, &sub);
    pxs_test_touch(d, "attached");
    unsigned char *b = malloc(obj_len(511));
    CHECK(b != NULL);
    FILE *f = got_file(d, "K");
    pxs_event_t ev;
    for (int k = 0; k < 3; k++) {
        CHECK_OK(pxs_subscriber_recv(sub, &ev, 120.0));
        uint64_t i = check_event(st, &ev, b);
        if (k < 2)
            got_write(f, i); /* done with it (the next recv says so) */
    }
    fclose(f);
    pxs_test_write_pid(d, "pid.K");
    pxs_test_touch(d, "kill"); /* holding the third: killed here */
    for (;;)
        pause();
}

static void
do_cycle(const char *d, uint64_t k)
{
    pxs_subscription_t s = {.topic = topic};
    unsigned char *b = malloc(obj_len(511));
    CHECK(b != NULL);
    for (uint64_t c = 0; c < k; c++) {
        pxs_bus_t *bus;
        pxs_store_t *st;
        pxs_subscriber_t *sub;
        attach(d, &s, &bus, &st, &sub);
        pxs_event_t ev;
        for (int e = 0; e < 2; e++) { /* the second after a stale write (hook) */
            CHECK_OK(pxs_subscriber_recv(sub, &ev, 120.0));
            (void)check_event(st, &ev, b);
        }
        CHECK_OK(pxs_bus_destroy(bus));
        CHECK_OK(pxs_store_destroy(st));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        pxs_test_touch(d, "done");
        printf("cycle OK: %llu attach/detach cycles\n", (unsigned long long)k);
    }
    free(b);
}

/* hold: attached (both slots of the exporter taken) until D/release */
static void
do_hold(const char *d)
{
    pxs_subscription_t s = {.topic = topic};
    pxs_bus_t *bus;
    pxs_store_t *st;
    pxs_subscriber_t *sub;
    attach(d, &s, &bus, &st, &sub);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        pxs_test_touch(d, "held");
    pxs_event_t ev;
    while (!pxs_test_exists(d, "release")) { /* keep reading: the producer is not held up */
        int rc = pxs_subscriber_recv(sub, &ev, 0.05);
        CHECK(rc == PXS_OK || rc == PXS_TIMEOUT);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(st));
}

/* full: every slot in use: PXS_ERR_AGAIN on every rank within the timeout */
static void
do_full(const char *d)
{
    char c[1024];
    snprintf(c, sizeof c, "%s/contact", d);
    pxs_subscription_t s = {.topic = topic};
    pxs_bus_t *bus = NULL;
    pxs_store_t *st = NULL;
    CHECK_RC(pxs_attach(MPI_COMM_WORLD, c, &s, 1, 3.0, &bus, &st), PXS_ERR_AGAIN);
    CHECK(bus == NULL && st == NULL);
    if (rank == 0)
        printf("full OK: %s\n", pxs_last_error_detail());
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(argc >= 3);
    const char *m = argv[1], *d = argv[2];
    uint64_t n = argc >= 4 ? strtoull(argv[3], NULL, 10) : 100;
    int die = argc >= 5 && strcmp(argv[4], "die") == 0;
    if (strcmp(m, "gexport") == 0)
        do_export(d, n, die, 0);
    else if (strcmp(m, "serve") == 0)
        do_export(d, 0, 0, 1);
    else if (strcmp(m, "mixed") == 0)
        do_mixed(d);
    else if (strcmp(m, "die") == 0)
        do_die(d);
    else if (strcmp(m, "cycle") == 0)
        do_cycle(d, n);
    else if (strcmp(m, "hold") == 0)
        do_hold(d);
    else if (strcmp(m, "full") == 0)
        do_full(d);
    else
        CHECK(!"unknown mode");
    MPI_Finalize();
    return 0;
}
