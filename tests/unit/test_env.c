/* Environment readers: every bad value of issue 8 gives the default and one
 * warning on stderr (whatever PXS_LOG says) naming the variable and value. */
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "pubsub/pubsub_int.h"
#include "pxs_test.h"
#include "util/options.h"
#include "util/util.h"

static char captured[4096];

/* Run a reader with stderr redirected to a file; keep what it printed. */
#define CAPTURE(stmt)                                                          \
    do {                                                                       \
        fflush(stderr);                                                        \
        FILE *f_ = tmpfile();                                                  \
        CHECK(f_ != NULL);                                                     \
        int save_ = dup(2);                                                    \
        CHECK(dup2(fileno(f_), 2) >= 0);                                       \
        stmt;                                                                  \
        fflush(stderr);                                                        \
        CHECK(dup2(save_, 2) >= 0);                                            \
        close(save_);                                                          \
        rewind(f_);                                                            \
        size_t n_ = fread(captured, 1, sizeof captured - 1, f_);               \
        captured[n_] = '\0';                                                   \
        fclose(f_);                                                            \
    } while (0)

/* the warning names the variable and the value */
static void
check_warned(const char *name, const char *value)
{
    char want[256];
    snprintf(want, sizeof want, "%s=%s", name, value);
    if (!strstr(captured, want) || !strstr(captured, "using the default")) {
        fprintf(stderr, "expected a warning about %s, got: '%s'\n", want,
                captured);
        CHECK(0);
    }
}

static void
bad_size(const char *value)
{
    uint64_t v = 0;
    setenv("PXS_ARENA_BYTES", value, 1);
    pxsi_env_warned_reset();
    CAPTURE(v = pxsi_env_size("PXS_ARENA_BYTES", 12345));
    CHECK(v == 12345);
    check_warned("PXS_ARENA_BYTES", value);
}

static void
bad_uint(const char *name, const char *value, uint64_t min, uint64_t max)
{
    uint64_t v = 0;
    setenv(name, value, 1);
    pxsi_env_warned_reset();
    CAPTURE(v = pxsi_env_uint(name, 7, min, max));
    CHECK(v == 7);
    check_warned(name, value);
}

int
main(void)
{
    unsetenv("PXS_LOG"); /* warnings must not depend on PXS_LOG */

    /* sizes */
    bad_size("abc");
    bad_size("16E");
    bad_size("99999999999999999999");
    bad_size("64M junk");
    bad_size("-5");
    bad_size(" 64M");
    bad_size("17179869184G"); /* 2^34 GiB = 2^64: overflows */
    setenv("PXS_ARENA_BYTES", "64M", 1);
    CHECK(pxsi_env_size("PXS_ARENA_BYTES", 1) == (uint64_t)64 << 20);
    setenv("PXS_ARENA_BYTES", "2GiB", 1);
    CHECK(pxsi_env_size("PXS_ARENA_BYTES", 1) == (uint64_t)2 << 30);
    setenv("PXS_ARENA_BYTES", "4096", 1);
    CHECK(pxsi_env_size("PXS_ARENA_BYTES", 1) == 4096);

    /* bounded integers */
    bad_uint("PXS_MAILBOX_SLOTS", "4294967296", 1, PXSI_SLOTS_MAX);
    bad_uint("PXS_MAILBOX_SLOTS", "0", 1, PXSI_SLOTS_MAX);
    bad_uint("PXS_BATCH", "-5", 1, PXSI_BATCH_MAX);
    bad_uint("PXS_BATCH", "4097", 1, PXSI_BATCH_MAX);
    bad_uint("PXS_BATCH", "8k", 1, PXSI_BATCH_MAX);
    setenv("PXS_BATCH", "32", 1);
    CHECK(pxsi_env_uint("PXS_BATCH", 1, 1, PXSI_BATCH_MAX) == 32);

    /* the bus options see the default, not a truncated 0 / 2^32 - 5 */
    setenv("PXS_MAILBOX_SLOTS", "4294967296", 1);
    setenv("PXS_BATCH", "-5", 1);
    pxs_bus_opts_t bo;
    CAPTURE(CHECK_OK(pxs_bus_opts_init(&bo)));
    CHECK(bo.slots == 1024 && bo.batch == 1);
    unsetenv("PXS_MAILBOX_SLOTS");
    unsetenv("PXS_BATCH");

    /* doubles */
    const char *bad_d[] = {"nan",   "NaN", "inf", "-inf",
                           "1e999", "abc", "5s",  " 5"};
    for (size_t i = 0; i < sizeof bad_d / sizeof *bad_d; i++) {
        double d = 0;
        setenv("PXS_PUT_TIMEOUT", bad_d[i], 1);
        pxsi_env_warned_reset();
        CAPTURE(d = pxsi_env_double("PXS_PUT_TIMEOUT", 30.0));
        CHECK(d == 30.0);
        check_warned("PXS_PUT_TIMEOUT", bad_d[i]);
    }
    setenv("PXS_PUT_TIMEOUT", "-1", 1);
    CHECK(pxsi_env_double("PXS_PUT_TIMEOUT", 30.0) == -1.0);
    setenv("PXS_PUT_TIMEOUT", "0.25", 1);
    CHECK(pxsi_env_double("PXS_PUT_TIMEOUT", 30.0) == 0.25);

    /* booleans */
    setenv("PXS_SHM", "maybe", 1);
    pxsi_env_warned_reset();
    int b = -1;
    CAPTURE(b = pxsi_env_bool("PXS_SHM", 1));
    CHECK(b == 1);
    check_warned("PXS_SHM", "maybe");

    /* once per variable: the second bad read is silent */
    setenv("PXS_BATCH", "-5", 1);
    pxsi_env_warned_reset();
    CAPTURE((void)pxsi_env_uint("PXS_BATCH", 1, 1, 9));
    CHECK(strstr(captured, "PXS_BATCH=-5") != NULL);
    CAPTURE((void)pxsi_env_uint("PXS_BATCH", 1, 1, 9));
    CHECK(captured[0] == '\0');

    /* the option table: bounds of sizes (PXS_ARENA_BYTES=0 is out of range),
     * enums (an unknown PXS_LOG level), and every row is well formed */
    setenv("PXS_ARENA_BYTES", "0", 1);
    pxsi_env_warned_reset();
    uint64_t ab = 0;
    CAPTURE(ab = pxsi_opt_uint(PXSI_OPT_ARENA_BYTES));
    CHECK(ab == (uint64_t)64 << 20);
    check_warned("PXS_ARENA_BYTES", "0");
    unsetenv("PXS_ARENA_BYTES");
    setenv("PXS_PREFETCH", "0", 1);
    pxsi_env_warned_reset();
    uint64_t pf = 0;
    CAPTURE(pf = pxsi_opt_uint(PXSI_OPT_PREFETCH));
    CHECK(pf == PXS_PREFETCH_DEFAULT);
    check_warned("PXS_PREFETCH", "0");
    unsetenv("PXS_PREFETCH");
    setenv("PXS_LOG", "loud", 1);
    pxsi_env_warned_reset();
    int lv = -1;
    CAPTURE(lv = pxsi_opt_enum(PXSI_OPT_LOG));
    CHECK(lv == 0);
    check_warned("PXS_LOG", "loud");
    setenv("PXS_LOG", "Debug", 1);
    CHECK(pxsi_opt_enum(PXSI_OPT_LOG) == 4);
    unsetenv("PXS_LOG");
    size_t nrows = 0;
    const pxsi_option_t *rows = pxsi_options(&nrows);
    CHECK(nrows == PXSI_OPT_N_);
    for (size_t i = 0; i < nrows; i++) {
        CHECK(rows[i].doc && rows[i].doc[0]);
        CHECK(!rows[i].env || strncmp(rows[i].env, "PXS_", 4) == 0);
        CHECK((rows[i].env == NULL) == (rows[i].type == PXSI_OPT_FIELD));
        if (rows[i].owner != PXSI_OWN_NONE && rows[i].init != PXSI_INIT_NONE)
            CHECK(rows[i].fsize > 0);
    }

    /* every opts_init goes through the table: environment values at init
     * (bus), fixed defaults and the PXS_TIMEOUT_DEFAULT sentinel */
    setenv("PXS_SEND_TIMEOUT", "2.5", 1);
    setenv("PXS_BATCH", "7", 1);
    CHECK_OK(pxs_bus_opts_init(&bo));
    CHECK(bo.send_timeout == 2.5 && bo.batch == 7 && bo.slots == 1024);
    CHECK(bo.struct_size == sizeof bo && bo.publish == NULL);
    unsetenv("PXS_SEND_TIMEOUT");
    unsetenv("PXS_BATCH");
    pxs_producer_opts_t po;
    CHECK_OK(pxs_producer_opts_init(&po));
    CHECK(po.put_timeout == PXS_TIMEOUT_DEFAULT && po.close_on_destroy == 1 && po.batch == 0);
    pxs_send_opts_t so;
    CHECK_OK(pxs_send_opts_init(&so));
    CHECK(so.checksum == -1 && so.resolves == 0);
    pxs_consumer_opts_t co;
    CHECK_OK(pxs_consumer_opts_init(&co));
    CHECK(co.drop_policy == PXS_DROP_EVICT && co.filter == NULL);
    pxs_put_opts_t puo;
    CHECK_OK(pxs_put_opts_init(&puo));
    CHECK(puo.timeout == PXS_TIMEOUT_DEFAULT && puo.resolves == 1);
    pxs_store_opts_t sto;
    CHECK_OK(pxs_store_opts_init(&sto));
    CHECK(sto.put_timeout == PXS_TIMEOUT_DEFAULT && sto.shm == -1);
    CHECK(pxs_producer_opts_init_(NULL, sizeof po) == PXS_ERR_INVALID);
    CHECK(pxs_consumer_opts_init_(&co, 0) == PXS_ERR_INVALID);

    printf("env: ok\n");
    return 0;
}
