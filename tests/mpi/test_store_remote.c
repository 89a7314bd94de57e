/* The remote resolve path (opts.shm = 0: MPI RMA even on one node) reads the
 * object's bytes in the same epoch as its claim, before it knows the claim
 * succeeded (docs/DESIGN.md, section "Remote resolve in one epoch"). Every
 * failure must leave the caller's buffer without anyone's bytes:
 *   - a proxy of an evicted object whose block now holds another object
 *     -> STALE, buffer zeroed (not the new object's bytes);
 *   - a forged offset pointing at another live object -> CORRUPT, zeroed;
 *   - a spent budget -> STALE, zeroed;
 * and genuine resolves into aligned and unaligned buffers return the bytes
 * (sync, view, async). Rank 0 owns, rank 1 resolves. */
#include <stdlib.h>

#include "pxs_test.h"

static int rank, size;

enum { OBJ = 96 << 10 }; /* >= 64 KiB: the head + page-aligned bulk split too */

static int
all_zero(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static pxs_proxy_t
bcast_put(pxs_store_t *st, const void *data, size_t len, int resolves)
{
    pxs_proxy_t p;
    memset(&p, 0, sizeof p);
    if (rank == 0) {
        pxs_put_opts_t po;
        CHECK_OK(pxs_put_opts_init(&po));
        po.resolves = resolves;
        CHECK_OK(pxs_store_put(st, data, len, &po, &p));
    }
    MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
    return p;
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.shm = 0;                       /* the MPI RMA path between all ranks */
    so.arena_bytes = (size_t)OBJ * 2; /* two objects: c must reuse a's block */
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    unsigned char *a = malloc(OBJ), *b = malloc(OBJ), *blk = NULL;
    CHECK(a && b && posix_memalign((void **)&blk, 4096, OBJ + 4096) == 0);
    pxs_test_fill(a, OBJ, 1);
    pxs_test_fill(b, OBJ, 2);
    size_t len = 0;

    /* genuine: sync into aligned and page + 16 buffers, view, async */
    pxs_proxy_t pa = bcast_put(st, a, OBJ, 0);
    if (rank == 1) {
        for (size_t off = 0; off <= 16; off += 16) {
            memset(blk, 0x11, OBJ + 4096);
            CHECK_OK(pxs_store_resolve(st, &pa, blk + off, OBJ, &len));
            CHECK(len == OBJ && memcmp(blk + off, a, OBJ) == 0);
            CHECK(off == 0 || blk[0] == 0x11);
            CHECK(blk[off + OBJ] == 0x11);
        }
        pxs_view_t v;
        CHECK_OK(pxs_store_view(st, &pa, &v));
        CHECK(v.len == OBJ && memcmp(v.data, a, OBJ) == 0);
        CHECK_OK(pxs_store_release(st, &v));
        pxs_request_t *rq = NULL;
        CHECK_OK(pxs_store_resolve_start(st, &pa, blk + 16, OBJ, &rq));
        CHECK_OK(pxs_store_resolve_wait(rq, &len));
        CHECK(len == OBJ && memcmp(blk + 16, a, OBJ) == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    /* forged offset: a's live generation, b's offset -> CORRUPT, and the
     * buffer does not hold b's bytes */
    pxs_proxy_t pb = bcast_put(st, b, OBJ, 0);
    pxs_proxy_info_t ia, ib;
    CHECK_OK(pxs_proxy_decode(pa.bytes, sizeof pa.bytes, &ia));
    CHECK_OK(pxs_proxy_decode(pb.bytes, sizeof pb.bytes, &ib));
    CHECK(ia.offset != ib.offset);
    if (rank == 1) {
        pxs_proxy_info_t f = ia;
        f.offset = ib.offset;
        pxs_proxy_t pf;
        CHECK_OK(pxs_proxy_encode(&f, &pf));
        memset(blk, 0x11, OBJ + 4096);
        CHECK_RC(pxs_store_resolve(st, &pf, blk + 16, OBJ, &len), PXS_ERR_CORRUPT);
        CHECK(all_zero(blk + 16, OBJ));
        CHECK_OK(pxs_store_resolve(st, &pa, blk, OBJ, &len)); /* a unharmed */
        CHECK(memcmp(blk, a, OBJ) == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    /* stale after reuse: evict a, put c into the freed block, resolve the
     * old proxy -> STALE and none of c's bytes */
    if (rank == 0)
        CHECK_OK(pxs_store_evict(st, &pa));
    MPI_Barrier(MPI_COMM_WORLD);
    unsigned char *c = malloc(OBJ);
    CHECK(c != NULL);
    pxs_test_fill(c, OBJ, 3);
    pxs_proxy_t pc = bcast_put(st, c, OBJ, 0);
    pxs_proxy_info_t ic;
    CHECK_OK(pxs_proxy_decode(pc.bytes, sizeof pc.bytes, &ic));
    if (rank == 1) {
        CHECK(ic.offset == ia.offset); /* c sits in a's old block */
        memset(blk, 0x11, OBJ + 4096);
        CHECK_RC(pxs_store_resolve(st, &pa, blk, OBJ, &len), PXS_ERR_STALE);
        CHECK(all_zero(blk, OBJ));
        CHECK(blk[OBJ] == 0x11);
        CHECK_OK(pxs_store_resolve(st, &pc, blk, OBJ, &len));
        CHECK(memcmp(blk, c, OBJ) == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    /* a spent budget: one resolve, the second is STALE with a zeroed buffer */
    if (rank == 0) {
        CHECK_OK(pxs_store_evict(st, &pb));
        CHECK_OK(pxs_store_evict(st, &pc));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    pxs_proxy_t p1 = bcast_put(st, b, OBJ, 1);
    if (rank == 1) {
        CHECK_OK(pxs_store_resolve(st, &p1, blk, OBJ, &len));
        CHECK(memcmp(blk, b, OBJ) == 0);
        memset(blk, 0x11, OBJ + 4096);
        CHECK_RC(pxs_store_resolve(st, &p1, blk, OBJ, &len), PXS_ERR_STALE);
        CHECK(all_zero(blk, OBJ));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    size_t used = 1, cap = 0;
    if (rank == 0) /* the spent object is reclaimed: no claim was leaked */
        CHECK_OK(pxs_store_used(st, &used, &cap));
    CHECK(rank != 0 || used == 0);
    CHECK_OK(pxs_store_destroy(st));
    free(a);
    free(b);
    free(c);
    free(blk);
    if (rank == 0)
        printf("store remote OK (%d ranks)\n", size);
    MPI_Finalize();
    return 0;
}
