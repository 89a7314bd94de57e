/* Object identity (docs/DESIGN.md, section "Object identity"): a proxy never
 * names the bytes of another store instance, and an old proxy never comes
 * back to life.
 *  - MPI_COMM_SELF stores: one per process, each proxy sent to the next
 *    process (whose store's first object sits in the same slot, offset and
 *    generation); two stores in one process, every pair of connectors.
 *  - split communicators: each half of MPI_COMM_WORLD has a store; a proxy
 *    forwarded to the other half is PXS_ERR_STALE there.
 *  - generation wrap: a slot started just below the last generation is
 *    retired after its last object; the next put uses another slot and the
 *    old proxy stays STALE (test hook pxsi_store_test_set_gen).
 *  - claim limit: with 2^23 claims counted on an object (test hook), every
 *    resolve/view (and RMA drop) backs out with PXS_ERR_BUSY, spending no
 *    budget.
 * Before proxy format 2 (per-process store id counter, 32-bit generations),
 * the first three resolved to the other store's object with PXS_OK. */
#include <inttypes.h>
#include <stdlib.h>

#include "pxs_test.h"
#include "store/store_int.h"

enum { LEN = 2000 };
static int rank, size;

static pxs_store_t *
make_store(MPI_Comm comm, int kind)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = kind == PXS_CONN_RMA ? pxs_test_connector() : kind;
    so.arena_bytes = 1 << 20;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(comm, &so, &st));
    CHECK(pxsi_store_nonce(st) != 0);
    return st;
}

static pxs_proxy_t
put_keep(pxs_store_t *st, uint64_t seed)
{
    unsigned char data[LEN];
    pxs_test_fill(data, sizeof data, seed);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 0;
    pxs_proxy_t p;
    CHECK_OK(pxs_store_put(st, data, sizeof data, &po, &p));
    return p;
}

static pxs_proxy_info_t
info_of(const pxs_proxy_t *p)
{
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(p->bytes, 64, &pi));
    return pi;
}

/* The last error detail names both store instances. */
static void
check_names_both(uint64_t proxy_nonce, uint64_t store_nonce)
{
    char a[32], b[32];
    snprintf(a, sizeof a, "0x%016" PRIx64, proxy_nonce);
    snprintf(b, sizeof b, "0x%016" PRIx64, store_nonce);
    const char *d = pxs_last_error_detail();
    if (!strstr(d, a) || !strstr(d, b)) {
        fprintf(stderr, "[rank %d] detail \"%s\" does not name %s and %s\n", rank, d, a, b);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* `foreign` (of another instance) is STALE on st through every entry point,
 * each naming both instances; nothing is written to the buffer. */
static void
check_foreign(pxs_store_t *st, const pxs_proxy_t *foreign)
{
    uint64_t pn = info_of(foreign).store_nonce, sn = pxsi_store_nonce(st);
    CHECK(pn != sn);
    unsigned char buf[LEN];
    memset(buf, 0xee, sizeof buf);
    size_t len = 12345;
    CHECK_RC(pxs_store_resolve(st, foreign, buf, sizeof buf, &len), PXS_ERR_STALE);
    check_names_both(pn, sn);
    CHECK(len == 12345 && buf[0] == 0xee && buf[LEN - 1] == 0xee);
    pxs_view_t v;
    CHECK_RC(pxs_store_view(st, foreign, &v), PXS_ERR_STALE);
    check_names_both(pn, sn);
    pxs_request_t *rq = NULL;
    CHECK_RC(pxs_store_resolve_start(st, foreign, buf, sizeof buf, &rq), PXS_ERR_STALE);
    check_names_both(pn, sn);
    void *ab = NULL;
    CHECK_RC(pxs_store_resolve_alloc(st, foreign, &ab, &len), PXS_ERR_STALE);
    CHECK(ab == NULL);
    CHECK_RC(pxs_store_drop(st, foreign), PXS_ERR_STALE);
    CHECK_RC(pxs_store_evict(st, foreign), PXS_ERR_STALE);
    check_names_both(pn, sn);
    CHECK(buf[0] == 0xee && buf[LEN - 1] == 0xee);
}

static void
check_own(pxs_store_t *st, const pxs_proxy_t *p, uint64_t seed)
{
    unsigned char buf[LEN];
    size_t len = 0;
    CHECK_OK(pxs_store_resolve(st, p, buf, sizeof buf, &len));
    CHECK(len == LEN && pxs_test_verify(buf, len, seed));
}

/* Same slot, offset, generation, owner, size: only the nonce tells them
 * apart (the old format's collision). */
static void
check_twins(const pxs_proxy_t *a, const pxs_proxy_t *b)
{
    pxs_proxy_info_t x = info_of(a), y = info_of(b);
    CHECK(x.owner == y.owner && x.offset == y.offset && x.size == y.size &&
          x.generation == y.generation && x.flags == y.flags);
    CHECK(x.store_nonce != y.store_nonce);
}

/* ---- one MPI_COMM_SELF store per process, proxies passed around a ring */
static void
self_ring(int kind)
{
    pxs_store_t *st = make_store(MPI_COMM_SELF, kind);
    uint64_t seed = 1000 + (uint64_t)rank;
    pxs_proxy_t mine = put_keep(st, seed), theirs;
    int next = (rank + 1) % size, prev = (rank + size - 1) % size;
    MPI_Sendrecv(&mine, 64, MPI_BYTE, next, 1, &theirs, 64, MPI_BYTE, prev, 1, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    if (size > 1) {
        check_twins(&mine, &theirs);
        check_foreign(st, &theirs);
    }
    check_own(st, &mine, seed);
    CHECK_OK(pxs_store_evict(st, &mine));
    CHECK_OK(pxs_store_destroy(st));
}

/* ---- two stores in one process, every pair of connectors */
static void
self_pair(int ka, int kb)
{
    pxs_store_t *a = make_store(MPI_COMM_SELF, ka), *b = make_store(MPI_COMM_SELF, kb);
    CHECK(pxsi_store_nonce(a) != pxsi_store_nonce(b));
    pxs_proxy_t pa = put_keep(a, 1), pb = put_keep(b, 2);
    if (ka == kb)
        check_twins(&pa, &pb);
    check_foreign(a, &pb);
    check_foreign(b, &pa);
    check_own(a, &pa, 1);
    check_own(b, &pb, 2);
    CHECK_OK(pxs_store_destroy(a));
    CHECK_OK(pxs_store_destroy(b));
}

/* ---- split communicators: each half has a store; forwarded proxies */
static void
split_halves(void)
{
    if (size < 2)
        return;
    int half = size / 2, color = rank < half ? 0 : 1;
    MPI_Comm hc;
    CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, rank, &hc) == MPI_SUCCESS);
    int hrank;
    MPI_Comm_rank(hc, &hrank);
    pxs_store_t *st = make_store(hc, PXS_CONN_RMA);
    uint64_t seed = 77 + (uint64_t)color;
    pxs_proxy_t mine, theirs;
    memset(&mine, 0, sizeof mine);
    memset(&theirs, 0, sizeof theirs);
    if (hrank == 0) {
        mine = put_keep(st, seed); /* the half's first object */
        int peer = color == 0 ? half : 0;
        MPI_Sendrecv(&mine, 64, MPI_BYTE, peer, 2, &theirs, 64, MPI_BYTE, peer, 2,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        check_twins(&mine, &theirs);
    }
    MPI_Bcast(&mine, 64, MPI_BYTE, 0, hc);
    MPI_Bcast(&theirs, 64, MPI_BYTE, 0, hc);
    /* every rank of the half, the owner's and the peers' paths */
    check_foreign(st, &theirs);
    check_own(st, &mine, seed);
    MPI_Barrier(hc);
    if (hrank == 0)
        CHECK_OK(pxs_store_evict(st, &mine));
    CHECK_OK(pxs_store_destroy(st));
    MPI_Comm_free(&hc);
}

/* ---- generation wrap: the slot is retired, the old proxy stays STALE.
 * Owner: rank 0 of comm. */
static void
wrap(pxs_store_t *st, MPI_Comm comm)
{
    int r;
    MPI_Comm_rank(comm, &r);
    const uint64_t last_live = (1ull << 40) - 3; /* the last odd gen a slot gets */
    int rc = PXS_OK;
    pxs_proxy_t old;
    memset(&old, 0, sizeof old);
    uint32_t slot = 0;
    if (r == 0) {
        pxs_proxy_t a = put_keep(st, 5);
        slot = (uint32_t)(info_of(&a).generation >> 40);
        CHECK_RC(pxsi_store_test_set_gen(st, slot, 0), PXS_ERR_INVALID); /* in use */
        CHECK_OK(pxs_store_evict(st, &a));
        CHECK_RC(pxsi_store_test_set_gen(st, slot, last_live), PXS_ERR_INVALID); /* odd */
        CHECK_RC(pxsi_store_test_set_gen(st, slot, last_live + 1), PXS_ERR_INVALID);
        rc = pxsi_store_test_set_gen(st, slot, last_live - 1);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
    if (rc == PXS_ERR_NOTSUP) {
        if (r == 0)
            printf("wrap: test hooks not built, skipped\n");
        return;
    }
    CHECK_OK(rc);
    if (r == 0) {
        old = put_keep(st, 6);
        pxs_proxy_info_t oi = info_of(&old);
        CHECK((uint32_t)(oi.generation >> 40) == slot); /* LIFO: the same slot */
        CHECK((oi.generation & ((1ull << 40) - 1)) == last_live);
    }
    MPI_Bcast(&old, 64, MPI_BYTE, 0, comm);
    check_own(st, &old, 6); /* the widest generation resolves from every rank */
    MPI_Barrier(comm);
    if (r == 0)
        CHECK_OK(pxs_store_evict(st, &old)); /* gen -> 2^40 - 2: retired */
    MPI_Barrier(comm);
    unsigned char buf[LEN];
    size_t len;
    CHECK_RC(pxs_store_resolve(st, &old, buf, sizeof buf, &len), PXS_ERR_STALE);
    /* forged successors of the old proxy in the retired slot */
    pxs_proxy_info_t fi = info_of(&old);
    pxs_proxy_t f;
    uint64_t gens[] = {last_live + 2, 1, 3, last_live - 2};
    for (size_t i = 0; i < sizeof gens / sizeof gens[0]; i++) {
        fi.generation = ((uint64_t)slot << 40) | gens[i];
        CHECK_OK(pxs_proxy_encode(&fi, &f));
        CHECK_RC(pxs_store_resolve(st, &f, buf, sizeof buf, &len), PXS_ERR_STALE);
    }
    /* the slot is never handed out again */
    pxs_proxy_t next;
    memset(&next, 0, sizeof next);
    for (int i = 0; i < 20; i++) {
        if (r == 0) {
            next = put_keep(st, 100 + (uint64_t)i);
            CHECK((uint32_t)(info_of(&next).generation >> 40) != slot);
        }
        MPI_Bcast(&next, 64, MPI_BYTE, 0, comm);
        check_own(st, &next, 100 + (uint64_t)i);
        CHECK_RC(pxs_store_resolve(st, &old, buf, sizeof buf, &len), PXS_ERR_STALE);
        MPI_Barrier(comm);
        if (r == 0)
            CHECK_OK(pxs_store_evict(st, &next));
        MPI_Barrier(comm);
    }
    if (r == 0) {
        size_t used = 1;
        CHECK_OK(pxs_store_used(st, &used, NULL));
        CHECK(used == 0); /* the retired slot's block was given back */
        /* a free slot that is not retired still takes the hook */
        pxs_proxy_t c = put_keep(st, 9);
        uint32_t cs = (uint32_t)(info_of(&c).generation >> 40);
        CHECK_OK(pxs_store_evict(st, &c));
        CHECK_OK(pxsi_store_test_set_gen(st, cs, 1000));
        CHECK_RC(pxsi_store_test_set_gen(st, slot, 1000), PXS_ERR_INVALID); /* retired */
        c = put_keep(st, 10);
        CHECK((info_of(&c).generation & ((1ull << 40) - 1)) == 1001);
        check_own(st, &c, 10);
        CHECK_OK(pxs_store_evict(st, &c));
    }
    MPI_Barrier(comm);
}

/* ---- the claim count is capped below the 24 bits it has in the RMA word:
 * with 2^23 claims counted, every resolve, view and drop backs out with
 * PXS_ERR_BUSY and spends no budget; the generation is intact after. */
static void
inflight_limit(pxs_store_t *st, MPI_Comm comm, int drop_claims)
{
    int r, n;
    MPI_Comm_rank(comm, &r);
    MPI_Comm_size(comm, &n);
    const int64_t limit = (int64_t)1 << 23;
    unsigned char data[LEN], buf[LEN];
    pxs_test_fill(data, sizeof data, 55);
    pxs_proxy_t p;
    memset(&p, 0, sizeof p);
    uint32_t slot = 0;
    int rc = PXS_OK;
    if (r == 0) {
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = (uint32_t)n; /* one resolve per rank, no more */
        CHECK_OK(pxs_store_put(st, data, sizeof data, &po, &p));
        slot = (uint32_t)(info_of(&p).generation >> 40);
        rc = pxsi_store_test_add_claims(st, slot, limit);
        if (rc == PXS_OK)
            CHECK_RC(pxsi_store_test_add_claims(st, slot, limit << 1), PXS_ERR_INVALID);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
    MPI_Bcast(&p, 64, MPI_BYTE, 0, comm);
    if (rc == PXS_ERR_NOTSUP) {
        if (r == 0)
            printf("inflight limit: test hooks not built, skipped\n");
        return;
    }
    CHECK_OK(rc);
    size_t len = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_RC(pxs_store_resolve(st, &p, buf, sizeof buf, &len), PXS_ERR_BUSY);
        CHECK(strstr(pxs_last_error_detail(), "claims in flight") != NULL);
        pxs_view_t v;
        CHECK_RC(pxs_store_view(st, &p, &v), PXS_ERR_BUSY);
        if (drop_claims) /* RMA: a drop is a claim; local: a count under its lock */
            CHECK_RC(pxs_store_drop(st, &p), PXS_ERR_BUSY);
    }
    MPI_Barrier(comm);
    if (r == 0)
        CHECK_OK(pxsi_store_test_add_claims(st, slot, -limit));
    MPI_Barrier(comm);
    CHECK_OK(pxs_store_resolve(st, &p, buf, sizeof buf, &len)); /* budget untouched */
    CHECK(len == LEN && pxs_test_verify(buf, len, 55));
    MPI_Barrier(comm);
    CHECK_RC(pxs_store_resolve(st, &p, buf, sizeof buf, &len), PXS_ERR_STALE); /* spent */
    MPI_Barrier(comm);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    /* Open MPI 4.1's osc/rdma creates no window on MPI_COMM_SELF here (no
     * RMA-capable btl for a self-only communicator): RMA stores on
     * MPI_COMM_SELF are covered under osc sm and ucx. */
    const char *osc = getenv("OMPI_MCA_osc");
    int self_rma = !(osc && strcmp(osc, "rdma") == 0);
    if (self_rma)
        self_ring(PXS_CONN_RMA);
    self_ring(PXS_CONN_LOCAL);
    if (self_rma)
        self_pair(PXS_CONN_RMA, PXS_CONN_RMA);
    self_pair(PXS_CONN_LOCAL, PXS_CONN_LOCAL);
    if (self_rma)
        self_pair(PXS_CONN_RMA, PXS_CONN_LOCAL);
    split_halves();

    pxs_store_t *st = make_store(MPI_COMM_WORLD, PXS_CONN_RMA);
    wrap(st, MPI_COMM_WORLD);
    inflight_limit(st, MPI_COMM_WORLD, 1);
    CHECK_OK(pxs_store_destroy(st));
    st = make_store(MPI_COMM_SELF, PXS_CONN_LOCAL);
    wrap(st, MPI_COMM_SELF);
    inflight_limit(st, MPI_COMM_SELF, 0);
    CHECK_OK(pxs_store_destroy(st));

    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        printf("store identity OK (%d ranks)\n", size);
    MPI_Finalize();
    return 0;
}
