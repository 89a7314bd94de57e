/* unit.status: every code has a name and a message; options and env parsing. */
#include "pxs_test.h"
#include "util/util.h"

int
main(void)
{
    int codes[] = {PXS_OK, PXS_END, PXS_TIMEOUT, PXS_ERR_INVALID, PXS_ERR_NOMEM,
                   PXS_ERR_AGAIN, PXS_ERR_TIMEDOUT, PXS_ERR_STALE, PXS_ERR_CORRUPT,
                   PXS_ERR_TOO_BIG, PXS_ERR_CLOSED, PXS_ERR_MPI, PXS_ERR_NOTSUP,
                   PXS_ERR_BUSY, PXS_ERR_NOT_FOUND, PXS_ERR_TRUNC, PXS_ERR_IO,
                   PXS_ERR_PEER};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(strcmp(pxs_errname(codes[i]), "PXS_UNKNOWN") != 0);
        CHECK(strcmp(pxs_strerror(codes[i]), "unknown status code") != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(pxs_errname(codes[i]), pxs_errname(codes[j])) != 0);
    }
    CHECK(strcmp(pxs_errname(12345), "PXS_UNKNOWN") == 0);
    CHECK(strcmp(pxs_strerror(-999), "unknown status code") == 0);
    /* codes are wire-stable numbers */
    CHECK(PXS_ERR_INVALID == -1 && PXS_ERR_MPI == -9 && PXS_ERR_TRUNC == -13 &&
          PXS_ERR_IO == -15);
    CHECK(PXS_END == 1 && PXS_TIMEOUT == 2);
    CHECK(PXS_ERR_PEER == -16); /* -14 stays reserved; -15 is PXS_ERR_IO */

    /* detail line: set by the failing call, kept until the next failure */
    CHECK(pxsi_err(PXS_ERR_STALE, "t", "x=%d", 5) == PXS_ERR_STALE);
    CHECK(strstr(pxs_last_error_detail(), "x=5") != NULL);

    /* env parsing */
    setenv("PXS_T_SIZE", "64M", 1);
    CHECK(pxsi_env_size("PXS_T_SIZE", 1) == 64ull << 20);
    setenv("PXS_T_SIZE", "2GiB", 1);
    CHECK(pxsi_env_size("PXS_T_SIZE", 1) == 2ull << 30);
    setenv("PXS_T_SIZE", "12x", 1);
    CHECK(pxsi_env_size("PXS_T_SIZE", 7) == 7);
    CHECK(pxsi_env_size("PXS_T_UNSET", 9) == 9);
    setenv("PXS_T_BOOL", "off", 1);
    CHECK(pxsi_env_bool("PXS_T_BOOL", 1) == 0);
    setenv("PXS_T_DBL", "2.5", 1);
    CHECK(pxsi_env_double("PXS_T_DBL", 0) == 2.5);

    /* options: struct_size 0 is invalid; a shorter (older) struct keeps defaults */
    struct o { size_t struct_size; int a; int b; } dst = {sizeof dst, 1, 2}, src = {0, 5, 6};
    CHECK(pxsi_opts_take(&dst, sizeof dst, &src) == PXS_ERR_INVALID);
    src.struct_size = offsetof(struct o, b);
    CHECK_OK(pxsi_opts_take(&dst, sizeof dst, &src));
    CHECK(dst.a == 5 && dst.b == 2 && dst.struct_size == sizeof dst);
    CHECK_OK(pxsi_opts_take(&dst, sizeof dst, NULL));

    /* back-off: timeout 0 expires at once; a short wait ends */
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, 0);
    CHECK(pxsi_backoff_expired(&b));
    pxsi_backoff_init(&b, 0.05);
    double t0 = pxsi_now();
    while (!pxsi_backoff_expired(&b))
        pxsi_backoff_pause(&b);
    CHECK(pxsi_now() - t0 >= 0.05); /* not before its deadline (no upper bound: load) */
    printf("unit.status: all checks passed\n");
    return 0;
}
