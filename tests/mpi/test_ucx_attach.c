/* mpi.ucx.attach (driven by tests/tools/ucx_attach.sh): two separate
 * mpiexec runs. Modes:
 *   export D    put 8 kept objects per rank (64 KiB + rank, pattern), write
 *               their proxies to D/proxies, pxs_export to D/contact, record
 *               pids in D/pid.<rank>, then "compute" (sleep, no library
 *               call: the progress thread serves attachers) until D/done.
 *   attach D    pxs_attach D/contact; resolve every proxy (ranks split
 *               them), verify the bytes; put and reserve are refused;
 *               drop works; a
 *               view works; touch D/done.
 *   expect CODE FILE   pxs_attach FILE must fail with PXS_ERR_<CODE> on
 *               every rank (stale file, loose permissions, damage).
 *   killed D    attach, resolve one object, touch D/kill (the script kills
 *               the exporting ranks), then resolve until it fails: must be
 *               PXS_ERR_PEER within 30 s. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pxs_test_ucx.h"

#define NOBJ 8
static int rank, size;

static size_t
obj_len(int owner)
{
    return ((size_t)64 << 10) + (size_t)owner;
}

static void
do_export(const char *d)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_UCX;
    so.arena_bytes = 4 << 20;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 0; /* kept: attachers resolve them as often as they like */
    po.checksum = 1;
    size_t len = obj_len(rank);
    unsigned char *b = malloc(len);
    char mine[NOBJ][PXS_PROXY_TEXT_LEN];
    for (int i = 0; i < NOBJ; i++) {
        pxs_test_fill(b, len, (uint64_t)rank * 1000 + (uint64_t)i);
        pxs_proxy_t p;
        CHECK_OK(pxs_store_put(st, b, len, &po, &p));
        CHECK_OK(pxs_proxy_to_text(&p, mine[i], sizeof mine[i]));
    }
    free(b);
    char *all = malloc((size_t)size * sizeof mine);
    MPI_Gather(mine, (int)sizeof mine, MPI_CHAR, all, (int)sizeof mine,
               MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        char p[1024], t[1024];
        snprintf(p, sizeof p, "%s/proxies", d);
        snprintf(t, sizeof t, "%s/proxies.tmp", d);
        FILE *f = fopen(t, "w");
        CHECK(f != NULL);
        for (int r = 0; r < size; r++)
            for (int i = 0; i < NOBJ; i++)
                fprintf(f, "%d %d %s\n", r, i,
                        all + ((size_t)r * NOBJ + (size_t)i) *
                                  PXS_PROXY_TEXT_LEN);
        fclose(f);
        CHECK(rename(t, p) == 0);
    }
    free(all);
    char c[1024];
    snprintf(c, sizeof c, "%s/contact", d);
    CHECK_OK(pxs_export(NULL, st, c));
    if (rank == 0) {
        struct stat sb;
        CHECK(stat(c, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    }
    {
        char pn[64];
        snprintf(pn, sizeof pn, "pid.%d", rank);
        pxs_test_write_pid(d, pn);
    }
    /* compute: no library call while the attached job resolves */
    CHECK(pxs_test_wait_file(d, "done", 900, 100000, NULL, NULL));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_store_destroy(st));
    if (rank == 0)
        printf("export OK (%d ranks)\n", size);
}

static int
read_proxies(const char *d, int *owner, int *idx, pxs_proxy_t *px, int max)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/proxies", d);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    int n = 0;
    char text[256];
    while (n < max && fscanf(f, "%d %d %255s", &owner[n], &idx[n], text) == 3) {
        CHECK_OK(pxs_proxy_from_text(text, &px[n]));
        n++;
    }
    fclose(f);
    return n;
}

static pxs_store_t *
attach(const char *d)
{
    char c[1024];
    snprintf(c, sizeof c, "%s/contact", d);
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_attach(MPI_COMM_WORLD, c, NULL, 0, 60.0, NULL, &st));
    return st;
}

static void
do_attach(const char *d)
{
    pxs_store_t *st = attach(d);
    int owner[256], idx[256];
    pxs_proxy_t px[256];
    int n = read_proxies(d, owner, idx, px, 256);
    CHECK(n >= NOBJ);
    unsigned char *b = malloc(obj_len(255));
    int verified = 0;
    for (int k = rank; k < n; k += size) {
        size_t len = 0;
        CHECK_OK(pxs_store_resolve(st, &px[k], b, obj_len(255), &len));
        CHECK(len == obj_len(owner[k]));
        CHECK(pxs_test_verify(b, len,
                              (uint64_t)owner[k] * 1000 + (uint64_t)idx[k]));
        verified++;
    }
    /* a view (a copy: another job's memory), a drop of a kept object */
    pxs_view_t v;
    CHECK_OK(pxs_store_view(st, &px[0], &v));
    CHECK(v.len == obj_len(owner[0]) &&
          pxs_test_verify(v.data, v.len,
                          (uint64_t)owner[0] * 1000 + (uint64_t)idx[0]));
    CHECK_OK(pxs_store_release(st, &v));
    CHECK_OK(pxs_store_drop(st, &px[0]));
    /* an attached store owns no arena */
    pxs_proxy_t p;
    CHECK_RC(pxs_store_put(st, b, 16, NULL, &p), PXS_ERR_INVALID);
    /* nor a reservation: refused at once with the put's error */
    pxs_reservation_t res;
    CHECK_RC(pxs_store_reserve(st, 4096, NULL, &res), PXS_ERR_INVALID);
    CHECK(strstr(pxs_last_error_detail(), "attached store") != NULL);
    CHECK(res.data == NULL && res.len == 0);
    free(b);
    int total = 0;
    MPI_Reduce(&verified, &total, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    CHECK_OK(pxs_store_destroy(st));
    if (rank == 0) {
        CHECK(total == n);
        pxs_test_touch(d, "done");
        printf("attach OK: %d objects verified across jobs\n", total);
    }
}

static void
do_expect(const char *code, const char *file)
{
    pxs_store_t *st = NULL;
    int rc = pxs_attach(MPI_COMM_WORLD, file, NULL, 0, 5.0, NULL, &st);
    char want[64];
    snprintf(want, sizeof want, "PXS_ERR_%s", code);
    if (strcmp(pxs_errname(rc), want) != 0) {
        char m[256];
        snprintf(m, sizeof m, "attach returned %s, expected %s",
                 pxs_errname(rc), want);
        pxs_test_fail(__FILE__, __LINE__, m);
    }
    CHECK(st == NULL);
    if (rank == 0)
        printf("expect OK: %s (%s)\n", want, pxs_last_error_detail());
}

static void
do_killed(const char *d)
{
    pxs_store_t *st = attach(d);
    int owner[256], idx[256];
    pxs_proxy_t px[256];
    int n = read_proxies(d, owner, idx, px, 256);
    unsigned char *b = malloc(obj_len(255));
    size_t len = 0;
    CHECK_OK(pxs_store_resolve(st, &px[n - 1], b, obj_len(255), &len));
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        pxs_test_touch(d, "kill");
    double t0 = MPI_Wtime();
    int rc = PXS_OK;
    while (rc == PXS_OK && MPI_Wtime() - t0 < 30) {
        rc = pxs_store_resolve(st, &px[n - 1], b, obj_len(255), &len);
        if (rc == PXS_OK)
            usleep(100000);
    }
    CHECK_RC(rc, PXS_ERR_PEER);
    printf("killed OK (rank %d): %s after %.1f s: %s\n", rank, pxs_errname(rc),
           MPI_Wtime() - t0, pxs_last_error_detail());
    fflush(stdout);
    free(b);
    /* the exporting job is gone: leave without the collective destroy's
     * UCX teardown of dead endpoints mattering */
    CHECK_OK(pxs_store_destroy(st));
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(argc >= 3);
    if (strcmp(argv[1], "export") == 0)
        do_export(argv[2]);
    else if (strcmp(argv[1], "attach") == 0)
        do_attach(argv[2]);
    else if (strcmp(argv[1], "expect") == 0 && argc >= 4)
        do_expect(argv[2], argv[3]);
    else if (strcmp(argv[1], "killed") == 0)
        do_killed(argv[2]);
    else
        CHECK(!"unknown mode");
    MPI_Finalize();
    return 0;
}
