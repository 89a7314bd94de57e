/* Forged proxies and bad arguments over real ranks: each gets its code, none
 * crashes or reads out of bounds (run under ASan in CI), and the genuine
 * object is unharmed afterwards. */
#include <stdlib.h>

#include "pxs_test.h"
#include "store/store_int.h"

static int rank, size;

static int
resolve_rc(pxs_store_t *st, const pxs_proxy_t *p)
{
    static unsigned char buf[1 << 16];
    size_t len = 0;
    int rc = pxs_store_resolve(st, p, buf, sizeof buf, &len);
    /* the same verdict through every entry point */
    pxs_view_t v;
    int rv = pxs_store_view(st, p, &v);
    if (rv == PXS_OK)
        (void)pxs_store_release(st, &v);
    CHECK(rv == rc);
    pxs_request_t *rq = NULL;
    int ra = pxs_store_resolve_start(st, p, buf, sizeof buf, &rq);
    if (ra == PXS_OK)
        ra = pxs_store_resolve_wait(rq, &len);
    CHECK(ra == rc);
    void *ab = NULL;
    int rl = pxs_store_resolve_alloc(st, p, &ab, &len);
    if (rl == PXS_OK)
        pxs_free(ab);
    CHECK(rl == rc);
    return rc;
}

static pxs_proxy_t
forge(const pxs_proxy_info_t *base, void (*edit)(pxs_proxy_info_t *, uint64_t), uint64_t arg)
{
    pxs_proxy_info_t pi = *base;
    edit(&pi, arg);
    pxs_proxy_t p;
    CHECK_OK(pxs_proxy_encode(&pi, &p));
    return p;
}
static void e_owner(pxs_proxy_info_t *p, uint64_t a) { p->owner = (uint32_t)a; }
static void e_offset(pxs_proxy_info_t *p, uint64_t a) { p->offset = a; }
static void e_size(pxs_proxy_info_t *p, uint64_t a) { p->size = a; }
static void e_gen(pxs_proxy_info_t *p, uint64_t a) { p->generation = a; }
static void e_kind(pxs_proxy_info_t *p, uint64_t a) { p->kind = (uint8_t)a; }
static void e_store(pxs_proxy_info_t *p, uint64_t a) { p->store_nonce = a; }
static void e_flags(pxs_proxy_info_t *p, uint64_t a) { p->flags = (uint16_t)a; }

/* A forged proxy (live generation, wrong size) must never touch the
 * budget: the owner reclaims in a tight loop while a holder hammers a
 * one-resolve object with the forgery; the genuine resolve must still work.
 * (It used to take a unit before comparing the descriptor and give it back
 * after: a reclaim in between saw the budget spent and killed the object.) */
static void
forged_vs_reclaim(pxs_store_t *st)
{
    if (size < 2)
        return;
    enum { N = 3000 };
    unsigned char data[256], buf[256];
    pxs_test_fill(data, sizeof data, 77);
    MPI_Barrier(MPI_COMM_WORLD); /* the free-slot checks above are done */
    pxs_proxy_t g;
    if (rank == 0)
        CHECK_OK(pxs_store_put(st, data, sizeof data, NULL, &g)); /* budget 1 */
    MPI_Bcast(&g, 64, MPI_BYTE, 0, MPI_COMM_WORLD);
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(g.bytes, 64, &pi));
    pxs_proxy_t f = forge(&pi, e_size, 128);
    size_t len = 0;
    if (rank == 0) {
        MPI_Request rq;
        int flag = 0;
        MPI_Irecv(NULL, 0, MPI_BYTE, 1, 9, MPI_COMM_WORLD, &rq);
        while (!flag) {
            CHECK_OK(pxs_store_progress(st));
            MPI_Test(&rq, &flag, MPI_STATUS_IGNORE);
        }
    } else if (rank == 1) {
        for (int i = 0; i < N; i++) {
            CHECK_RC(pxs_store_resolve(st, &f, buf, sizeof buf, &len), PXS_ERR_CORRUPT);
            if (i % 3 == 0)
                CHECK_RC(pxs_store_drop(st, &f), PXS_ERR_CORRUPT);
        }
        MPI_Send(NULL, 0, MPI_BYTE, 0, 9, MPI_COMM_WORLD);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) {
        CHECK_OK(pxs_store_resolve(st, &g, buf, sizeof buf, &len));
        CHECK(len == sizeof data && memcmp(buf, data, len) == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    /* ---- create: bad options give their code on every rank */
    pxs_store_opts_t so;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_opts_init(&so));
#ifndef PXS_HAVE_UCX
    so.connector = PXS_CONN_UCX; /* not built: NOTSUP */
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_NOTSUP);
#endif
    so.connector = pxs_test_connector();
    so.progress_thread = 2;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_INVALID);
    so.connector = PXS_CONN_HDF5;
#ifdef PXS_HAVE_HDF5
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_INVALID); /* no opts.path */
#else
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_NOTSUP);
    CHECK_RC(pxs_store_open(MPI_COMM_WORLD, "/tmp", &st), PXS_ERR_NOTSUP);
    pxs_subscriber_t *lsub = NULL;
    CHECK_RC(pxs_log_subscriber_open("/tmp", NULL, 0, &lsub), PXS_ERR_NOTSUP);
#endif
    so.connector = 99;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_INVALID);
    CHECK_OK(pxs_store_opts_init(&so));
    so.shm = 7;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_INVALID);
    CHECK_OK(pxs_store_opts_init(&so));
    so.arena_bytes = 10;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_INVALID);
    CHECK_OK(pxs_store_opts_init(&so));
    so.struct_size = 0;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, NULL, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_create(MPI_COMM_NULL, NULL, &st), PXS_ERR_INVALID);
    if (size > 1) {
        CHECK_OK(pxs_store_opts_init(&so));
        so.connector = PXS_CONN_LOCAL;
        CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_INVALID);
    }
    CHECK(st == NULL);

    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = pxs_test_connector();
    so.arena_bytes = 1 << 20;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    pxs_store_t *other = NULL; /* a second store: its proxies are foreign here */
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &other));

    /* rank 0's genuine object, kept until evicted */
    pxs_proxy_t good, foreign;
    unsigned char data[3000];
    pxs_test_fill(data, sizeof data, 31);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 0;
    if (rank == 0) {
        CHECK_OK(pxs_store_put(st, data, sizeof data, &po, &good));
        CHECK_OK(pxs_store_put(other, data, sizeof data, &po, &foreign));
    }
    MPI_Bcast(&good, 64, MPI_BYTE, 0, MPI_COMM_WORLD);
    MPI_Bcast(&foreign, 64, MPI_BYTE, 0, MPI_COMM_WORLD);
    pxs_proxy_info_t gi;
    CHECK_OK(pxs_proxy_decode(good.bytes, 64, &gi));
    CHECK(resolve_rc(st, &good) == PXS_OK);

    /* random bytes */
    srand(1234 + (unsigned)rank);
    for (int i = 0; i < 300; i++) {
        pxs_proxy_t p;
        for (int k = 0; k < 64; k++)
            p.bytes[k] = (unsigned char)rand();
        if (i % 2)
            p.bytes[0] = PXS_PROXY_VERSION;
        CHECK_RC(resolve_rc(st, &p), PXS_ERR_CORRUPT);
    }
    /* every single bit flip, each right after the genuine proxy resolved
     * (the store remembers the last proxy it decoded: a proxy that differs
     * from it in one bit must be decoded and refused, store.c check_proxy) */
    for (int bit = 0; bit < 512; bit++) {
        pxs_proxy_t p = good;
        p.bytes[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        size_t len;
        unsigned char buf[3000];
        CHECK_OK(pxs_store_resolve(st, &good, buf, sizeof buf, &len));
        CHECK(len == sizeof data && memcmp(buf, data, len) == 0);
        CHECK_RC(pxs_store_resolve(st, &p, buf, sizeof buf, &len), PXS_ERR_CORRUPT);
        CHECK_RC(pxs_store_resolve(st, &p, buf, sizeof buf, &len), PXS_ERR_CORRUPT);
        CHECK_RC(pxs_store_evict(st, &p), PXS_ERR_CORRUPT);
        CHECK_RC(pxs_store_drop(st, &p), PXS_ERR_CORRUPT);
    }
    /* well-formed but lying proxies (checksum recomputed) */
    uint64_t slot = gi.generation >> 40, gen = gi.generation & ((1ull << 40) - 1);
    pxs_proxy_t f;
    f = forge(&gi, e_owner, (uint64_t)size);
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_owner, 0xffffffffu);
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    if (size > 1) { /* an owner that has nothing in that slot */
        f = forge(&gi, e_owner, (uint64_t)size - 1);
        CHECK_RC(resolve_rc(st, &f), PXS_ERR_STALE);
    }
    f = forge(&gi, e_offset, 1 << 20); /* at the end, size 3000 */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_offset, UINT64_MAX - 63); /* offset + size overflows */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_offset, gi.offset + 1); /* misaligned */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_offset, gi.offset + 4096); /* in the arena, not the object */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_size, (1 << 20) + 1);
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_size, UINT64_MAX);
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_size, 100); /* smaller than the object */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_size, 4000); /* larger, within the arena */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_gen, (slot << 40) | (gen + 2)); /* a future generation */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_STALE);
    f = forge(&gi, e_gen, (slot << 40) | (gen + 1)); /* even: never live */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_STALE);
    f = forge(&gi, e_gen, (slot << 40) | (gen + (1ull << 32))); /* same low 32 bits */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_STALE);
    f = forge(&gi, e_gen, ((slot + 1) << 40) | gen); /* another (free) slot */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_STALE);
    f = forge(&gi, e_gen, ((uint64_t)0xffffff << 40) | gen); /* slot beyond the table */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_kind, PXS_CONN_LOCAL);
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    /* the other collective connector's kind */
    f = forge(&gi, e_kind, pxs_test_connector() == PXS_CONN_UCX ? PXS_CONN_RMA : PXS_CONN_UCX);
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    /* another store instance's nonce: STALE, and no connector runs */
    f = forge(&gi, e_store, gi.store_nonce + 100);
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_STALE);
    CHECK(strstr(pxs_last_error_detail(), "store instance") != NULL);
    f = forge(&gi, e_store, gi.store_nonce ^ 0xffffffff00000000ull); /* low 32 bits equal */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_STALE);
    f = forge(&gi, e_store, 0); /* no store ever issues nonce 0 */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    f = forge(&gi, e_flags, 0); /* drops KEEP: does not match the object */
    CHECK_RC(resolve_rc(st, &f), PXS_ERR_CORRUPT);
    CHECK_RC(resolve_rc(st, &foreign), PXS_ERR_STALE); /* another store's proxy */
    /* a proxy remembered by one store handle is still foreign to another */
    CHECK_RC(resolve_rc(other, &foreign), PXS_OK);
    CHECK_RC(resolve_rc(st, &foreign), PXS_ERR_STALE);
    CHECK_RC(resolve_rc(other, &good), PXS_ERR_STALE);
    CHECK_RC(pxs_store_evict(st, &foreign), PXS_ERR_STALE);
    CHECK_RC(pxs_store_drop(st, &foreign), PXS_ERR_STALE);
    f = forge(&gi, e_size, 100);
    CHECK_RC(pxs_store_drop(st, &f), PXS_ERR_CORRUPT);
    CHECK_RC(pxs_store_evict(st, &f), PXS_ERR_CORRUPT);

    forged_vs_reclaim(st);

    /* ---- bad arguments */
    unsigned char buf[3000];
    size_t len = 0;
    uint32_t junk[32];
    memset(junk, 0x11, sizeof junk);
    pxs_store_t *fake = (pxs_store_t *)junk;
    CHECK_RC(pxs_store_resolve(NULL, &good, buf, sizeof buf, &len), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_resolve(fake, &good, buf, sizeof buf, &len), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_put(fake, buf, 1, NULL, &f), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_destroy(fake), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_progress(fake), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_used(fake, &len, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_rank(fake), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_resolve(st, NULL, buf, sizeof buf, &len), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_resolve(st, &good, NULL, 10, &len), PXS_ERR_INVALID);
    len = 0;
    CHECK_RC(pxs_store_resolve(st, &good, buf, 100, &len), PXS_ERR_TRUNC);
    CHECK(len == sizeof data);
    CHECK_RC(pxs_store_resolve_alloc(st, &good, NULL, &len), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_view(st, &good, NULL), PXS_ERR_INVALID);
    pxs_view_t zv;
    memset(&zv, 0, sizeof zv);
    CHECK_RC(pxs_store_release(st, &zv), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_release(st, NULL), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_resolve_start(st, &good, buf, sizeof buf, NULL), PXS_ERR_INVALID);
    int done = 0;
    CHECK_RC(pxs_store_resolve_test(NULL, &done, &len), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_resolve_wait((pxs_request_t *)junk, &len), PXS_ERR_INVALID);
    {
        pxs_request_t *rq = NULL;
        CHECK_OK(pxs_store_resolve_start(st, &good, buf, 10, &rq)); /* TRUNC via wait */
        CHECK_RC(pxs_store_resolve_wait(rq, &len), PXS_ERR_TRUNC);
        CHECK(len == sizeof data);
    }
    CHECK_RC(pxs_store_put(st, NULL, 10, NULL, &f), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_put(st, buf, 10, NULL, NULL), PXS_ERR_INVALID);
    pxs_put_opts_t bad;
    CHECK_OK(pxs_put_opts_init(&bad));
    bad.checksum = 2;
    CHECK_RC(pxs_store_put(st, buf, 10, &bad, &f), PXS_ERR_INVALID);
    bad.checksum = 0;
    bad.struct_size = 0;
    CHECK_RC(pxs_store_put(st, buf, 10, &bad, &f), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_opts_init_(NULL, sizeof so), PXS_ERR_INVALID);
    CHECK_RC(pxs_put_opts_init_(&bad, 0), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_evict(st, NULL), PXS_ERR_INVALID);
    /* a request is not a store, nor the reverse */
    CHECK_RC(pxs_store_resolve_wait((pxs_request_t *)st, &len), PXS_ERR_INVALID);

    /* the genuine object survived all of it */
    memset(buf, 0, sizeof buf);
    CHECK_OK(pxs_store_resolve(st, &good, buf, sizeof buf, &len));
    CHECK(len == sizeof data && memcmp(buf, data, len) == 0);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        CHECK_OK(pxs_store_evict(st, &good));
        CHECK_OK(pxs_store_evict(other, &foreign));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RC(pxs_store_resolve(st, &good, buf, sizeof buf, &len), PXS_ERR_STALE);
    CHECK_OK(pxs_store_destroy(other));
    CHECK_OK(pxs_store_destroy(st));
    if (rank == 0)
        printf("store forged OK (%d ranks)\n", size);
    MPI_Finalize();
    return 0;
}
