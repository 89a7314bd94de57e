/* Logging and statistics (docs/DESIGN.md, section "Logging and
 * statistics"). np 3, one known scenario, exact counts:
 *
 * A. Rank 0 streams N objects of 100 B on topic 1 to rank 1 through a
 *    4-slot mailbox with send_timeout 0.3 s. Rank 1 does not read before
 *    an MPI message from rank 0, which rank 0 sends only after a send came
 *    back PXS_ERR_AGAIN: so at least one backpressure episode, and rank 1's
 *    first receive finds the mailbox full (depth high-water exactly 4).
 *    Then rank 1 resolves the first proxy again: PXS_ERR_STALE, counted.
 * B. Rank 0 streams M objects on topic 9 to the work-sharing group "w"
 *    (ranks 1 and 2): the per-member shares add up to M.
 *
 * argv[1]: "counts" (default) asserts the counters; "log" (run with
 * PXS_LOG=debug PXS_STATS=1) also captures this rank's stderr in a file and
 * checks the routing, END, backpressure, stale and stats lines; "json" (run
 * with PXS_STATS=json) checks that every stats line is one JSON object that
 * parses, and their number per handle. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pxs_test.h"

enum { T = 1, TG = 9, N = 12, M = 10, LEN = 100 };

static char logpath[512];
static char *logtext;

/* ------------------------------------------------------------ stderr capture */
static int saved_err = -1;

static void
capture_start(const char *mode, int rank)
{
    const char *dir = getenv("TMPDIR");
    snprintf(logpath, sizeof logpath, "%s/pxs_observe_%s_%ld_%d.err", dir ? dir : "/tmp", mode,
             (long)getpid(), rank);
    fflush(stderr);
    saved_err = dup(2);
    CHECK(saved_err >= 0);
    CHECK(freopen(logpath, "w", stderr) != NULL);
}

/* Put stderr back (failures must be seen) and read what was written. */
static void
capture_end(void)
{
    fflush(stderr);
    CHECK(dup2(saved_err, 2) >= 0);
    close(saved_err);
    FILE *f = fopen(logpath, "r");
    CHECK(f != NULL);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    CHECK(n >= 0);
    rewind(f);
    logtext = malloc((size_t)n + 1);
    CHECK(logtext != NULL);
    CHECK(fread(logtext, 1, (size_t)n, f) == (size_t)n);
    logtext[n] = '\0';
    fclose(f);
    unlink(logpath);
}

static void
need(const char *s)
{
    if (!strstr(logtext, s)) {
        fprintf(stderr, "[rank %d] stderr lacks \"%s\"; it was:\n%s\n", pxs_test_rank(), s,
                logtext);
        CHECK(!"expected line");
    }
}

static int
count(const char *s)
{
    int k = 0;
    for (const char *p = logtext; (p = strstr(p, s)) != NULL; p++)
        k++;
    return k;
}

/* ------------------------------------------------------------ a tiny JSON checker */
static const char *jvalue(const char *p);

static const char *
jws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static const char *
jstring(const char *p)
{
    if (*p != '"')
        return NULL;
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && !*++p)
            return NULL;
    return *p == '"' ? p + 1 : NULL;
}

static const char *
jnumber(const char *p)
{
    char *end = NULL;
    (void)strtod(p, &end);
    return end && end != p ? end : NULL;
}

static const char *
jvalue(const char *p)
{
    p = jws(p);
    if (*p == '"')
        return jstring(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = jws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                if (!(p = jstring(jws(p))))
                    return NULL;
                p = jws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if (!(p = jvalue(p)))
                return NULL;
            p = jws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    return jnumber(p);
}

/* Every line that starts with '{' is one JSON object and nothing else. */
static int
json_lines(void)
{
    int k = 0;
    for (char *line = strtok(logtext, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != '{')
            continue;
        const char *end = jvalue(line);
        if (!end || *jws(end) != '\0') {
            fprintf(stderr, "[rank %d] not a JSON object: %s\n", pxs_test_rank(), line);
            CHECK(!"JSON line parses");
        }
        k++;
    }
    return k;
}

/* ------------------------------------------------------------ scenario */
int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 3);
    const char *mode = argc > 1 ? argv[1] : "counts";
    int logmode = !strcmp(mode, "log"), jsonmode = !strcmp(mode, "json");
    if (logmode || jsonmode)
        capture_start(mode, rank);

    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = 1 << 20;
    pxs_store_t *store;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &store));
    unsigned char buf[LEN];

    /* ---- A: backpressure, END, depth, stale */
    uint32_t pubs[1] = {T};
    pxs_subscription_t subs[1] = {{.topic = T}};
    pxs_bus_opts_t bo;
    CHECK_OK(pxs_bus_opts_init(&bo));
    bo.slots = 4;
    bo.batch = 1;
    bo.send_timeout = 0.3;
    if (rank == 0) {
        bo.publish = pubs;
        bo.n_publish = 1;
    } else if (rank == 1) {
        bo.subscribe = subs;
        bo.n_subscribe = 1;
    }
    pxs_bus_t *bus;
    pxs_publisher_t *pub;
    pxs_subscriber_t *sub;
    pxs_test_bus(&bo, &bus, &pub, &sub);
    uint64_t again = 0;
    if (rank == 0) {
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, NULL, &prod));
        int told = 0;
        for (uint32_t i = 0; i < N;) {
            pxs_test_fill(buf, sizeof buf, i);
            int rc = pxs_producer_send(prod, T, buf, sizeof buf, NULL, NULL);
            if (rc == PXS_ERR_AGAIN) {
                again++;
                if (!told) { /* rank 1 reads from now on */
                    told = 1;
                    CHECK(MPI_Send(&i, 1, MPI_UINT32_T, 1, 5, MPI_COMM_WORLD) == MPI_SUCCESS);
                }
                continue;
            }
            CHECK_OK(rc);
            i++;
        }
        CHECK(told && again >= 1);
        pxs_producer_stats_t ps;
        CHECK_OK(pxs_producer_stats_init(&ps));
        CHECK_OK(pxs_producer_stats2(prod, &ps));
        CHECK(ps.sent == N && ps.bytes == (uint64_t)N * LEN && ps.forwarded == 0);
        CHECK(ps.failed == again && ps.topics == 1 && ps.topics_closed == 0);
        uint64_t s1 = 0, b1 = 0, f1 = 7;
        CHECK_OK(pxs_producer_stats(prod, &s1, &b1, &f1)); /* the old call agrees */
        CHECK(s1 == N && b1 == (uint64_t)N * LEN && f1 == 0);
        CHECK_OK(pxs_producer_destroy(prod)); /* END */
    } else if (rank == 1) {
        uint32_t first_again = 0;
        CHECK(MPI_Recv(&first_again, 1, MPI_UINT32_T, 0, 5, MPI_COMM_WORLD, MPI_STATUS_IGNORE) ==
              MPI_SUCCESS);
        CHECK(first_again >= 4); /* the mailbox took 4 before any wait */
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        pxs_event_t ev, first;
        void *data;
        size_t len;
        int rc;
        uint32_t got = 0;
        while ((rc = pxs_consumer_next_object(cons, &ev, &data, &len, 60.0)) == PXS_OK) {
            CHECK(ev.seq == got && len == LEN && pxs_test_verify(data, len, got));
            if (got == 0)
                first = ev;
            pxs_free(data);
            got++;
        }
        CHECK_RC(rc, PXS_END);
        CHECK(got == N);
        pxs_consumer_stats_t cs;
        CHECK_OK(pxs_consumer_stats_init(&cs));
        CHECK_OK(pxs_consumer_stats2(cons, &cs));
        CHECK(cs.delivered == N && cs.dropped == 0 && cs.resolves == N);
        CHECK(cs.resolved_bytes == (uint64_t)N * LEN && cs.ended == 1 && cs.topics_ended == 1);
        /* resolved once (budget 1): a second resolve is STALE, and counted */
        unsigned char again_buf[LEN];
        size_t alen = 0;
        CHECK_RC(pxs_store_resolve(store, &first.proxy, again_buf, sizeof again_buf, &alen),
                 PXS_ERR_STALE);
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    /* bus counters after the stream, before destroy */
    pxs_bus_stats_t bs;
    CHECK_OK(pxs_bus_stats_init(&bs));
    CHECK_OK(pxs_bus_stats(bus, &bs));
    CHECK(bs.struct_size == sizeof bs && bs.rank == rank && bs.broken == 0);
    if (rank == 0) {
        CHECK(bs.events_sent == N && bs.records_appended == N + 1 && bs.ends_sent == 1);
        CHECK(bs.appends >= 1 && bs.appends <= N + 1);
        CHECK(bs.topics_published == 1 && bs.topics_closed == 1);
        CHECK(bs.backpressure_waits >= 1 && bs.backpressure_seconds > 0.0);
        CHECK(bs.events_received == 0 && bs.mailbox_slots == 0 && bs.n_groups == 0);
    } else if (rank == 1) {
        CHECK(bs.events_received == N && bs.ends_received == 1);
        CHECK(bs.topics_subscribed == 1 && bs.topics_ended == 1);
        CHECK(bs.mailbox_slots == 4 && bs.depth_hwm == 4 && bs.depth_now == 0);
        CHECK(bs.events_sent == 0 && bs.backpressure_waits == 0);
    } else {
        CHECK(bs.events_sent == 0 && bs.events_received == 0 && bs.mailbox_slots == 0);
    }
    /* the sized-struct rule: a caller's older, smaller struct gets only
     * what fits; struct_size 0 is refused */
    {
        pxs_bus_stats_t small;
        memset(&small, 0xAB, sizeof small);
        small.struct_size = offsetof(pxs_bus_stats_t, events_received);
        CHECK_OK(pxs_bus_stats(bus, &small));
        CHECK(small.events_sent == bs.events_sent);
        unsigned char sentinel[sizeof small.events_received];
        memset(sentinel, 0xAB, sizeof sentinel);
        CHECK(!memcmp(&small.events_received, sentinel, sizeof sentinel));
        small.struct_size = 0;
        CHECK_RC(pxs_bus_stats(bus, &small), PXS_ERR_INVALID);
        CHECK_RC(pxs_bus_stats(bus, NULL), PXS_ERR_INVALID);
        CHECK_RC(pxs_bus_stats(NULL, &bs), PXS_ERR_INVALID);
    }
    pxs_store_stats_t ss;
    CHECK_OK(pxs_store_stats_init(&ss));
    CHECK_OK(pxs_store_stats(store, &ss));
    CHECK(ss.rank == rank && ss.connector == PXS_CONN_RMA && ss.arena_bytes == (1u << 20));
    CHECK(ss.spill_objects == 0 && ss.spill_bytes == 0 && ss.unspill_bytes == 0);
    CHECK(ss.arena_used <= ss.arena_hwm && ss.arena_hwm <= ss.arena_bytes);
    CHECK(ss.largest_free <= ss.arena_bytes);
    if (rank == 0) {
        /* every attempt put its object; the ones not accepted were evicted */
        CHECK(ss.puts == N + again && ss.bytes_put == (N + again) * LEN);
        CHECK(ss.arena_hwm >= 4 * 128); /* 4 objects of 100 B (128 B blocks) at once */
        CHECK(ss.resolves == 0 && ss.stale == 0 && ss.corrupt == 0);
    } else if (rank == 1) {
        CHECK(ss.puts == 0 && ss.resolves == N && ss.bytes_resolved == (uint64_t)N * LEN);
        CHECK(ss.resolves_self + ss.resolves_shm + ss.resolves_rma == N);
        CHECK(ss.stale == 1 && ss.corrupt == 0);
    }
    CHECK_OK(pxs_bus_destroy(bus));

    /* ---- B: group member shares */
    uint32_t gpubs[1] = {TG};
    pxs_subscription_t gsubs[1] = {{.topic = TG, .group = "w"}};
    CHECK_OK(pxs_bus_opts_init(&bo));
    if (rank == 0) {
        bo.publish = gpubs;
        bo.n_publish = 1;
    } else {
        bo.subscribe = gsubs;
        bo.n_subscribe = 1;
    }
    pxs_test_bus(&bo, &bus, &pub, &sub);
    uint64_t recvd = 0;
    if (rank == 0) {
        pxs_producer_t *prod;
        CHECK_OK(pxs_producer_create(store, pub, NULL, &prod));
        pxs_test_send_chunks(prod, TG, M, buf, sizeof buf);
        CHECK_OK(pxs_producer_destroy(prod));
    } else {
        pxs_consumer_t *cons;
        CHECK_OK(pxs_consumer_create(store, sub, NULL, &cons));
        pxs_event_t ev;
        void *data;
        size_t len;
        int rc;
        while ((rc = pxs_consumer_next_object(cons, &ev, &data, &len, 60.0)) == PXS_OK) {
            CHECK(len == LEN && pxs_test_verify(data, len, ev.seq));
            pxs_free(data);
            recvd++;
        }
        CHECK_RC(rc, PXS_END);
        CHECK_OK(pxs_consumer_destroy(cons));
    }
    CHECK_OK(pxs_bus_stats_init(&bs));
    CHECK_OK(pxs_bus_stats(bus, &bs));
    uint64_t total = 0;
    CHECK(MPI_Allreduce(&bs.events_received, &total, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD) ==
          MPI_SUCCESS);
    CHECK(total == M);
    if (rank == 0) {
        CHECK(bs.n_groups == 1 && bs.group_topic[0] == TG && bs.group_members[0] == 2);
        CHECK((bs.group_rank[0][0] == 1 && bs.group_rank[0][1] == 2) ||
              (bs.group_rank[0][0] == 2 && bs.group_rank[0][1] == 1));
        CHECK(bs.group_sent[0][0] + bs.group_sent[0][1] == M);
        CHECK(bs.events_sent == M && bs.ends_sent == 2); /* END to every member */
    } else {
        CHECK(bs.events_received == recvd && bs.ends_received == 1 && bs.topics_ended == 1);
        CHECK(bs.depth_hwm >= 1 && bs.depth_hwm <= 1024);
    }
    CHECK_OK(pxs_bus_destroy(bus));
    CHECK_OK(pxs_store_destroy(store));

    /* ---- what the run said on stderr */
    if (logmode) {
        capture_end();
        if (rank == 0) {
            need("debug pubsub: routing: rank 0 of 3 publishes 1 topic(s)");
            need("routing: publish topic 1 -> 1 plain subscriber(s) [1]");
            need("routing: publish topic 9 -> 0 plain subscriber(s) [; group 'w' members 1,2]");
            need("debug mailbox: mailbox window: MPI_Win_allocate");
            need("osc ");
            need("debug store.rma: store ");
            need(", mode ");
            need("backpressure start: mailbox of rank 1 full");
            need("backpressure end: ");
            need("END of topic 1 (after 12 event(s)) queued for 1 destination(s)");
            need("END of topic 1 sent (delivered)");
            need("group 'w' topic 9: events sent per member");
            need("stats producer: sent=12 bytes=1200 forwarded=0");
            need("stats bus: bus_rank=0 sent=12 recv=0 records=13");
            need("stats store: store_rank=0 connector=");
        } else if (rank == 1) {
            need("routing: subscribe topic 1 <- 1 producer(s) [0]");
            need("routing: subscribe topic 9 (group member) <- 1 producer(s) [0]");
            need("END received: topic 1 from producer 0 (1 of 1 producer(s) ended)");
            need("topic 1 ended (1 of 1 subscribed topic(s) ended)");
            need("resolve: PXS_ERR_STALE proxy: owner 0 slot ");
            need("stats consumer: delivered=12 dropped=0 resolves=12 resolved_bytes=1200");
            need("stats bus: bus_rank=1 sent=0 recv=12 ");
            need(" slots=4 depth=0 depth_hwm=4 ");
            need("stale=1");
        }
        /* one line per handle: two buses, one store */
        char pre[64];
        snprintf(pre, sizeof pre, "pxs[%d] stats bus: ", rank);
        CHECK(count(pre) == 2);
        snprintf(pre, sizeof pre, "pxs[%d] stats store: ", rank);
        CHECK(count(pre) == 1);
        free(logtext);
    } else if (jsonmode) {
        capture_end();
        int nbus = count("\"handle\":\"bus\""), nstore = count("\"handle\":\"store\"");
        int nprod = count("\"handle\":\"producer\""), ncons = count("\"handle\":\"consumer\"");
        char key[64];
        snprintf(key, sizeof key, "{\"rank\":%d,\"handle\":", rank);
        int mine = count(key);
        CHECK(nbus == 2 && nstore == 1);
        CHECK(nprod == (rank == 0 ? 2 : 0));
        CHECK(ncons == (rank == 1 ? 2 : rank == 2 ? 1 : 0));
        CHECK(mine == nbus + nstore + nprod + ncons);
        if (rank == 0)
            CHECK(strstr(logtext, "\"group0_sent\":[") != NULL);
        CHECK(json_lines() == mine); /* strtok: logtext is cut up from here on */
        free(logtext);
    }
    MPI_Finalize();
    return 0;
}
