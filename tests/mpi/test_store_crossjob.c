/* Cross-job identity, driven by tests/tools/crossjob.sh (two mpiexec runs):
 *   write rma|local FILE   a store's first object; its proxy (text) to FILE
 *   read  rma|local FILE   a new store (another job) with its own first
 *                          object in the same slot, offset and generation;
 *                          FILE's proxy must be PXS_ERR_STALE on every rank,
 *                          naming both store instances, never PXS_OK
 *   v1 FILE                a version 1 text proxy: PXS_ERR_CORRUPT naming
 *                          the version
 * Before proxy format 2 the read step resolved to this job's object with
 * PXS_OK (store ids were per-process counters starting at 1). */
#include <inttypes.h>
#include <stdlib.h>

#include "pxs_test.h"
#include "store/store_int.h"

enum { LEN = 4000 };
static int rank;

static pxs_store_t *
make_store(const char *kind)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    int local = strcmp(kind, "local") == 0;
    so.connector = local ? PXS_CONN_LOCAL : PXS_CONN_RMA;
    so.arena_bytes = 1 << 20;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(local ? MPI_COMM_SELF : MPI_COMM_WORLD, &so, &st));
    return st;
}

static pxs_proxy_t
put_first(pxs_store_t *st, uint64_t seed)
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

static void
read_text(const char *file, char *text, size_t cap)
{
    memset(text, 0, cap);
    if (rank == 0) {
        FILE *f = fopen(file, "r");
        CHECK(f != NULL);
        size_t n = fread(text, 1, cap - 1, f);
        fclose(f);
        text[n] = '\0';
    }
    MPI_Bcast(text, (int)cap, MPI_CHAR, 0, MPI_COMM_WORLD);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    CHECK(argc >= 3);
    const char *mode = argv[1];
    char text[256];
    if (strcmp(mode, "v1") == 0) {
        read_text(argv[2], text, sizeof text);
        pxs_proxy_t p;
        CHECK_RC(pxs_proxy_from_text(text, &p), PXS_ERR_CORRUPT);
        CHECK(strstr(pxs_last_error_detail(), "version 1 is no longer accepted") != NULL);
        if (rank == 0)
            printf("crossjob v1: refused: %s\n", pxs_last_error_detail());
        MPI_Finalize();
        return 0;
    }
    CHECK(argc == 4);
    const char *kind = argv[2], *file = argv[3];
    pxs_store_t *st = make_store(kind);
    unsigned char buf[LEN];
    size_t len = 0;
    if (strcmp(mode, "write") == 0) {
        pxs_proxy_t p;
        memset(&p, 0, sizeof p);
        if (rank == 0) {
            p = put_first(st, 111);
            CHECK_OK(pxs_proxy_to_text(&p, text, sizeof text));
            FILE *f = fopen(file, "w");
            CHECK(f != NULL);
            fprintf(f, "%s\n", text);
            CHECK(fclose(f) == 0);
            printf("crossjob write: %s\n", text);
        }
        if (strcmp(kind, "local") != 0) {
            MPI_Bcast(&p, 64, MPI_BYTE, 0, MPI_COMM_WORLD);
            CHECK_OK(pxs_store_resolve(st, &p, buf, sizeof buf, &len));
            CHECK(len == LEN && pxs_test_verify(buf, len, 111));
            MPI_Barrier(MPI_COMM_WORLD);
        }
        if (rank == 0)
            CHECK_OK(pxs_store_evict(st, &p));
    } else {
        CHECK(strcmp(mode, "read") == 0);
        int local = strcmp(kind, "local") == 0;
        pxs_proxy_t mine, old;
        memset(&mine, 0, sizeof mine);
        if (rank == 0)
            mine = put_first(st, 222); /* this job's first object */
        if (!local)
            MPI_Bcast(&mine, 64, MPI_BYTE, 0, MPI_COMM_WORLD);
        read_text(file, text, sizeof text);
        CHECK_OK(pxs_proxy_from_text(text, &old));
        pxs_proxy_info_t oi, mi;
        CHECK_OK(pxs_proxy_decode(old.bytes, 64, &oi));
        CHECK_OK(pxs_proxy_decode(mine.bytes, 64, &mi));
        /* the old format's collision: everything but the instance agrees */
        CHECK(oi.owner == mi.owner && oi.offset == mi.offset && oi.size == mi.size &&
              oi.generation == mi.generation && oi.kind == mi.kind);
        CHECK(oi.store_nonce != mi.store_nonce && mi.store_nonce == pxsi_store_nonce(st));
        if (!local || rank == 0) {
            memset(buf, 0xee, sizeof buf);
            CHECK_RC(pxs_store_resolve(st, &old, buf, sizeof buf, &len), PXS_ERR_STALE);
            char a[32], b[32];
            snprintf(a, sizeof a, "0x%016" PRIx64, oi.store_nonce);
            snprintf(b, sizeof b, "0x%016" PRIx64, mi.store_nonce);
            CHECK(strstr(pxs_last_error_detail(), a) && strstr(pxs_last_error_detail(), b));
            CHECK(buf[0] == 0xee && buf[LEN - 1] == 0xee);
            pxs_view_t v;
            CHECK_RC(pxs_store_view(st, &old, &v), PXS_ERR_STALE);
            CHECK_RC(pxs_store_drop(st, &old), PXS_ERR_STALE);
            CHECK_OK(pxs_store_resolve(st, &mine, buf, sizeof buf, &len));
            CHECK(len == LEN && pxs_test_verify(buf, len, 222));
            if (rank == 0)
                printf("crossjob read: STALE as expected: %s\n", pxs_last_error_detail());
        }
        if (!local)
            MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0)
            CHECK_OK(pxs_store_evict(st, &mine));
    }
    CHECK_OK(pxs_store_destroy(st));
    MPI_Finalize();
    return 0;
}
