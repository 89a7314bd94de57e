/* mpi.ucx.xbus (driven by tests/tools/ucx_xbus.sh): events across jobs
 * (pxs_export of a bus, pxs_attach with subscriptions), two or more
 * separate mpiexec runs. Exporting job: rank 0 publishes topics 7 and 9,
 * rank 1 subscribes to 7 locally (local delivery goes on as before). Each
 * event i names a kept object of 4 KiB + i whose bytes derive from i;
 * meta = i. Attaching job: rank 0 subscribes to 7 plainly and to 9 in group
 * "w", the other ranks to 9 in group "w" (one member gets each event).
 * Modes:
 *   export D N   export_wait 1; send N/2 events on 7 and 9, wait for
 *                D/second (a second job attached), send the rest, close
 *                both topics, keep polling (flush) until D/done. Local
 *                subscriber checks all N events and END.
 *   first D N    attach, receive events 0 .. N/2-1 (verified, in order on
 *                7; every one exactly once on 9 across ranks), detach.
 *   second D N   attach, touch D/second, receive N/2 .. N-1 and END on both
 *                topics (verified), touch D/done.
 *   serve D      no export_wait; send an event on 7 and 9 every 20 ms until
 *                D/done (then close); pids in D/pid.<rank>.
 *   refused D    attach (the test hook makes the registration wrong: env
 *                PXS_TEST_XBUS_BAD_TOKEN or PXS_TEST_XBUS_BIG_MAILBOX):
 *                no event arrives within 3 s (PXS_TIMEOUT).
 *   tail D       attach, receive 5 events on 7 (verified), touch D/done,
 *                then END.
 *   bexport D N / battach D N   budgets across jobs (do_bexport below).
 *   killed D     attach, receive one event, touch D/kill (the script kills
 *                the exporting ranks), then receive until it fails: must be
 *                PXS_ERR_PEER within 60 s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxystream/attach.h"
#include "pxs_test_ucx.h"

static int rank, size;

static size_t
obj_len(uint64_t i)
{
    return (size_t)4096 + (size_t)(i % 512);
}

static const uint32_t topics[2] = {7, 9};

struct exp {
    pxs_store_t *st;
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    unsigned char *b;
    uint64_t got; /* rank 1: local events on 7 */
};

static void
exp_open(struct exp *e, const char *d, uint32_t export_wait)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_UCX;
    so.arena_bytes = 16 << 20;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &e->st));
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    /* rank 1: 7 plainly, 9 in the local group "loc" (the attaching jobs
     * here use another group; mixed groups: tests/mpi/test_xgroup.c) */
    pxs_subscription_t lsubs[2] = {{.topic = 7}, {.topic = 9, .group = "loc"}};
    if (rank == 0) {
        bo.publish = topics;
        bo.n_publish = 2;
    } else if (rank == 1) {
        bo.subscribe = lsubs;
        bo.n_subscribe = 2;
    }
    bo.export_wait = export_wait;
    bo.send_timeout = 60;
    CHECK_OK(pxs_bus_create(MPI_COMM_WORLD, &bo, &e->bus));
    CHECK_OK(pxs_bus_publisher(e->bus, &e->pub));
    CHECK_OK(pxs_bus_subscriber(e->bus, &e->sub));
    char c[1024];
    snprintf(c, sizeof c, "%s/contact", d);
    CHECK_OK(pxs_export(e->bus, e->st, c));
    if (rank == 0) {
        struct stat sb;
        CHECK(stat(c, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    }
    /* a bus is exported once */
    char c2[1024];
    snprintf(c2, sizeof c2, "%s/contact2", d);
    CHECK_RC(pxs_export(e->bus, e->st, c2), PXS_ERR_INVALID);
    char pn[64];
    snprintf(pn, sizeof pn, "pid.%d", rank);
    pxs_test_write_pid(d, pn);
    e->b = malloc(obj_len(511));
}

static void
exp_send(struct exp *e, uint64_t i)
{
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 0; /* kept: any number of jobs resolve it */
    size_t len = obj_len(i);
    pxs_test_fill(e->b, len, i);
    pxs_proxy_t p;
    CHECK_OK(pxs_store_put(e->st, e->b, len, &po, &p));
    for (int t = 0; t < 2; t++)
        CHECK_OK(pxs_publisher_send(e->pub, topics[t], &p, &i, sizeof i, NULL));
}

/* rank 1: local events on 7 and 9, all N in order, then END on both */
static void
exp_local(struct exp *e, uint64_t n)
{
    pxs_event_t ev;
    int rc;
    uint64_t got9 = 0;
    for (;;) {
        rc = pxs_subscriber_recv(e->sub, &ev, 60.0);
        if (rc == PXS_END && ev.topic != PXS_TOPIC_ALL)
            continue;
        if (rc != PXS_OK)
            break;
        uint64_t i;
        CHECK(ev.meta_len == sizeof i);
        memcpy(&i, ev.meta, sizeof i);
        CHECK(ev.seq == i);
        CHECK(i == (ev.topic == 7 ? e->got : got9));
        size_t len = 0;
        CHECK_OK(pxs_store_resolve(e->st, &ev.proxy, e->b, obj_len(511), &len));
        CHECK(len == obj_len(i) && pxs_test_verify(e->b, len, i));
        if (ev.topic == 7)
            e->got++;
        else
            got9++;
    }
    CHECK_RC(rc, PXS_END);
    CHECK(n == 0 || (e->got == n && got9 == n));
}

static void
exp_close(struct exp *e, const char *d)
{
    if (rank == 0) {
        for (int t = 0; t < 2; t++)
            CHECK_OK(pxs_publisher_close_topic(e->pub, topics[t]));
        /* keep picking registrations up (detach acknowledgements) */
        CHECK(pxs_test_wait_file(d, "done", 1200, 50000, pxs_test_poll_publisher,
                                 e->pub));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_bus_destroy(e->bus));
    CHECK_OK(pxs_store_destroy(e->st));
    free(e->b);
}

static void
do_export(const char *d, uint64_t n)
{
    struct exp e = {0};
    exp_open(&e, d, 1);
    if (rank == 0) {
        for (uint64_t i = 0; i < n / 2; i++)
            exp_send(&e, i);
        /* the flushes pick the detach up */
        CHECK(pxs_test_wait_file(d, "second", 1200, 50000, pxs_test_poll_publisher,
                                 e.pub));
        for (uint64_t i = n / 2; i < n; i++)
            exp_send(&e, i);
    } else if (rank == 1) {
        exp_local(&e, n);
    }
    exp_close(&e, d);
    if (rank == 0)
        printf("export OK: %llu events on 2 topics\n", (unsigned long long)n);
}

static void
do_serve(const char *d)
{
    struct exp e = {0};
    exp_open(&e, d, 0);
    if (rank == 0) {
        for (uint64_t i = 0; i < 6000 && !pxs_test_exists(d, "done"); i++) {
            exp_send(&e, i);
            usleep(20000);
        }
        CHECK(pxs_test_exists(d, "done"));
    } else if (rank == 1) {
        exp_local(&e, 0);
    }
    exp_close(&e, d);
    if (rank == 0)
        printf("serve OK\n");
}

struct att {
    pxs_store_t *st;
    pxs_bus_t *bus;
    pxs_subscriber_t *sub;
    unsigned char *b;
    uint64_t next7;    /* rank 0: next expected on 7 */
    uint64_t n7;       /* rank 0: events on 7 */
    uint64_t n9;       /* events on 9 here */
    uint64_t sum9;     /* sum of their indices */
    uint64_t last9;    /* previous index on 9 here (increasing) */
    int ended7, ended9;
    int peer_ok; /* PXS_ERR_PEER expected (killed mode) */
};

static void
att_open(struct att *a, const char *d)
{
    char c[1024];
    snprintf(c, sizeof c, "%s/contact", d);
    pxs_subscription_t subs[2] = {{.topic = 9, .group = "w"}, {.topic = 7}};
    size_t ns = rank == 0 ? 2 : 1;
    CHECK_OK(pxs_attach(MPI_COMM_WORLD, c, subs, ns, 60.0, &a->bus, &a->st));
    CHECK_OK(pxs_bus_subscriber(a->bus, &a->sub));
    a->b = malloc(obj_len(511));
    a->last9 = UINT64_MAX;
}

/* one recv; returns its status */
static int
att_recv(struct att *a, double timeout, uint64_t first)
{
    pxs_event_t ev;
    int rc = pxs_subscriber_recv(a->sub, &ev, timeout);
    if (rc == PXS_END) {
        if (ev.topic == 7)
            a->ended7 = 1;
        if (ev.topic == 9)
            a->ended9 = 1;
        if (ev.topic == PXS_TOPIC_ALL)
            a->ended7 = a->ended9 = 1;
        return rc;
    }
    if (rc != PXS_OK)
        return rc;
    uint64_t i;
    CHECK(ev.meta_len == sizeof i);
    memcpy(&i, ev.meta, sizeof i);
    CHECK(ev.seq == i);
    CHECK(ev.producer == 0);
    size_t len = 0;
    int rrc = pxs_store_resolve(a->st, &ev.proxy, a->b, obj_len(511), &len);
    if (rrc == PXS_ERR_PEER && a->peer_ok)
        return rrc; /* killed mode: the exporting job may be gone already */
    CHECK_OK(rrc);
    CHECK(len == obj_len(i) && pxs_test_verify(a->b, len, i));
    if (ev.topic == 7) {
        CHECK(rank == 0);
        if (a->next7 == 0 && i >= first)
            a->next7 = i; /* joined late: starts where it registered */
        CHECK(i == a->next7);
        a->next7++;
        a->n7++;
    } else {
        CHECK(ev.topic == 9);
        CHECK(a->last9 == UINT64_MAX || i > a->last9);
        a->last9 = i;
        a->n9++;
        a->sum9 += i;
    }
    return rc;
}

static void
att_close(struct att *a)
{
    CHECK_OK(pxs_bus_destroy(a->bus));
    CHECK_OK(pxs_store_destroy(a->st));
    free(a->b);
}

/* events lo .. hi-1 on both topics: 7 in order at rank 0, 9 once each */
static void
att_window(struct att *a, uint64_t lo, uint64_t hi, int want_end)
{
    a->next7 = lo;
    for (int k = 0;; k++) {
        int rc = att_recv(a, 0.05, lo);
        CHECK(rc == PXS_OK || rc == PXS_TIMEOUT || rc == PXS_END);
        uint64_t mine[2] = {a->n9, a->sum9}, tot[2];
        MPI_Allreduce(mine, tot, 2, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
        int d7 = rank != 0 || a->next7 == hi, d9 = tot[0] == hi - lo;
        int de = !want_end || (a->ended9 && (rank != 0 || a->ended7));
        int me = d7 && d9 && de, all = 0;
        MPI_Allreduce(&me, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
        if (all) {
            CHECK(tot[1] == (lo + hi - 1) * (hi - lo) / 2); /* each one once */
            break;
        }
        CHECK(k < 60 * 20 * 4); /* about a minute at most */
    }
}

static void
do_first(const char *d, uint64_t n)
{
    struct att a = {0};
    att_open(&a, d);
    att_window(&a, 0, n / 2, 0);
    att_close(&a);
    if (rank == 0)
        printf("first OK: events 0 .. %llu verified, detached\n",
               (unsigned long long)(n / 2 - 1));
}

static void
do_second(const char *d, uint64_t n)
{
    struct att a = {0};
    att_open(&a, d);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        pxs_test_touch(d, "second");
    att_window(&a, n / 2, n, 1);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        pxs_test_touch(d, "done");
    att_close(&a);
    if (rank == 0)
        printf("second OK: events %llu .. %llu verified, END on both topics\n",
               (unsigned long long)(n / 2), (unsigned long long)(n - 1));
}

static void
do_refused(const char *d)
{
    struct att a = {0};
    att_open(&a, d);
    int rc = att_recv(&a, 3.0, 0);
    CHECK_RC(rc, PXS_TIMEOUT);
    MPI_Barrier(MPI_COMM_WORLD);
    att_close(&a);
    if (rank == 0)
        printf("refused OK: no event reached a refused registration\n");
}

static void
do_tail(const char *d)
{
    struct att a = {0};
    att_open(&a, d);
    if (rank == 0) {
        while (a.n7 < 5)
            CHECK_OK(att_recv(&a, 30.0, 0));
        pxs_test_touch(d, "done");
    }
    /* drain until END on every topic (the exporter closes on done) */
    int rc;
    while ((rc = att_recv(&a, 60.0, 0)) == PXS_OK || (rc == PXS_END && !(a.ended9)))
        ;
    CHECK(rc == PXS_END);
    MPI_Barrier(MPI_COMM_WORLD);
    att_close(&a);
    if (rank == 0)
        printf("tail OK\n");
}

/* bad attach arguments: every rank gets the same clear error */
static void
do_errors(const char *d)
{
    char c[1024];
    snprintf(c, sizeof c, "%s/contact", d);
    pxs_bus_t *bus = NULL;
    pxs_store_t *st = NULL;
    pxs_subscription_t plain = {.topic = 7};
    CHECK_RC(pxs_attach(MPI_COMM_WORLD, c, &plain, 1, 30.0, NULL, &st), PXS_ERR_INVALID);
    pxs_subscription_t many[17];
    for (int i = 0; i < 17; i++)
        many[i] = (pxs_subscription_t){.topic = (uint32_t)(100 + i)};
    CHECK_RC(pxs_attach(MPI_COMM_WORLD, c, many, 17, 30.0, &bus, &st), PXS_ERR_INVALID);
    if (rank == 0)
        printf("errors: 17 subscriptions: %s\n", pxs_last_error_detail());
    /* an attached job does not publish */
    CHECK_OK(pxs_attach(MPI_COMM_WORLD, c, &plain, 1, 30.0, &bus, &st));
    pxs_publisher_t *pub = NULL;
    CHECK_OK(pxs_bus_publisher(bus, &pub));
    pxs_subscriber_t *sub = NULL;
    CHECK_OK(pxs_bus_subscriber(bus, &sub));
    pxs_event_t ev;
    CHECK_OK(pxs_subscriber_recv(sub, &ev, 30.0)); /* a real proxy */
    CHECK_RC(pxs_publisher_send(pub, 7, &ev.proxy, NULL, 0, NULL), PXS_ERR_NOT_FOUND);
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(st));
    if (rank == 0)
        printf("errors OK\n");
}

static void
do_killed(const char *d)
{
    struct att a = {0};
    att_open(&a, d);
    CHECK_OK(att_recv(&a, 30.0, 0));
    a.peer_ok = 1;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        pxs_test_touch(d, "kill");
    double t0 = MPI_Wtime();
    int rc = PXS_OK;
    while ((rc == PXS_OK || rc == PXS_TIMEOUT) && MPI_Wtime() - t0 < 60)
        rc = att_recv(&a, 1.0, 0);
    CHECK_RC(rc, PXS_ERR_PEER);
    printf("killed OK (rank %d): %s after %.1f s: %s\n", rank, pxs_errname(rc), MPI_Wtime() - t0,
           pxs_last_error_detail());
    fflush(stdout);
    att_close(&a);
}

/* Budgets across jobs (docs/DESIGN.md "Events across jobs", Budgets):
 * rank 0 sends N objects on topic 7 with pxs_producer's default budget;
 * rank 1 (local, plain on 7) and every rank of the attached job (plain on 7)
 * resolve each once: none may be reclaimed before (no PXS_ERR_STALE), and
 * all are reclaimed after (the arena empties). */
static void
do_bexport(const char *d, uint64_t n)
{
    struct exp e = {0};
    exp_open(&e, d, 1);
    if (rank == 0) {
        pxs_producer_opts_t po;
        CHECK_OK(pxs_producer_opts_init(&po));
        po.inline_max = 0; /* stored objects with a budget */
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(e.st, e.pub, &po, &prod));
        for (uint64_t i = 0; i < n; i++) {
            pxs_send_opts_t so;
            CHECK_OK(pxs_send_opts_init(&so));
            so.meta = &i;
            so.meta_len = sizeof i;
            size_t len = obj_len(i);
            pxs_test_fill(e.b, len, i);
            CHECK_OK(pxs_producer_send(prod, 7, e.b, len, &so, NULL));
        }
        CHECK_OK(pxs_producer_close_topic(prod, 7));
        CHECK_OK(pxs_producer_close_topic(prod, 9));
        CHECK(pxs_test_wait_file(d, "done", 1200, 50000, pxs_test_poll_producer, prod));
        size_t used = 1, cap = 0;
        for (int k = 0; k < 600 && used; k++) {
            CHECK_OK(pxs_store_progress(e.st));
            CHECK_OK(pxs_store_used(e.st, &used, &cap));
            if (used)
                usleep(50000);
        }
        CHECK(used == 0); /* every budget spent: 1 local + the attached subscribers */
        CHECK_OK(pxs_producer_destroy(prod));
        printf("bexport OK: %llu objects, each resolved by every destination, all reclaimed\n",
               (unsigned long long)n);
    } else if (rank == 1) {
        pxs_event_t ev;
        uint64_t got = 0;
        int rc;
        while ((rc = pxs_subscriber_recv(e.sub, &ev, 60.0)) == PXS_OK ||
               (rc == PXS_END && ev.topic != PXS_TOPIC_ALL)) {
            if (rc != PXS_OK)
                continue;
            size_t len = 0;
            CHECK(ev.topic == 7 && ev.meta_len == sizeof got && ev.seq == got);
            CHECK_OK(pxs_store_resolve(e.st, &ev.proxy, e.b, obj_len(511), &len));
            CHECK(len == obj_len(got) && pxs_test_verify(e.b, len, got));
            got++;
        }
        CHECK_RC(rc, PXS_END);
        CHECK(got == n);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_bus_destroy(e.bus));
    CHECK_OK(pxs_store_destroy(e.st));
    free(e.b);
}

static void
do_battach(const char *d, uint64_t n)
{
    char c[1024];
    snprintf(c, sizeof c, "%s/contact", d);
    pxs_subscription_t sub = {.topic = 7};
    pxs_bus_t *bus;
    pxs_store_t *st;
    pxs_subscriber_t *s;
    CHECK_OK(pxs_attach(MPI_COMM_WORLD, c, &sub, 1, 60.0, &bus, &st));
    CHECK_OK(pxs_bus_subscriber(bus, &s));
    unsigned char *b = malloc(obj_len(511));
    CHECK(b != NULL);
    pxs_event_t ev;
    uint64_t got = 0;
    int rc;
    while ((rc = pxs_subscriber_recv(s, &ev, 60.0)) == PXS_OK) {
        uint64_t i;
        size_t len = 0;
        CHECK(ev.topic == 7 && ev.meta_len == sizeof i);
        memcpy(&i, ev.meta, sizeof i);
        CHECK(i == got);
        CHECK_OK(pxs_store_resolve(st, &ev.proxy, b, obj_len(511), &len));
        CHECK(len == obj_len(i) && pxs_test_verify(b, len, i));
        got++;
    }
    CHECK_RC(rc, PXS_END);
    CHECK(got == n); /* export_wait 1: nothing was sent before we attached */
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        pxs_test_touch(d, "done");
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(st));
    free(b);
    if (rank == 0)
        printf("battach OK: %llu objects resolved on each rank\n", (unsigned long long)n);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(argc >= 3);
    uint64_t n = argc >= 4 ? strtoull(argv[3], NULL, 10) : 100;
    const char *m = argv[1], *d = argv[2];
    if (strcmp(m, "export") == 0)
        do_export(d, n);
    else if (strcmp(m, "first") == 0)
        do_first(d, n);
    else if (strcmp(m, "second") == 0)
        do_second(d, n);
    else if (strcmp(m, "serve") == 0)
        do_serve(d);
    else if (strcmp(m, "refused") == 0)
        do_refused(d);
    else if (strcmp(m, "tail") == 0)
        do_tail(d);
    else if (strcmp(m, "bexport") == 0)
        do_bexport(d, n);
    else if (strcmp(m, "battach") == 0)
        do_battach(d, n);
    else if (strcmp(m, "killed") == 0)
        do_killed(d);
    else if (strcmp(m, "errors") == 0)
        do_errors(d);
    else
        CHECK(!"unknown mode");
    MPI_Finalize();
    return 0;
}
