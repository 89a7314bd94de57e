/* The one wait primitive (pxsi_backoff_*): deadlines from a timeout (0 is a
 * poll that is expired after its first look, < 0 never expires), the step
 * cap of waits that need MPI progress (naps stop growing at 64 us), and when
 * the progress hook runs: not during the first PXSI_BACKOFF_PROGRESS_FIRST
 * pauses (a reply about to land does not wait behind an MPI call), every
 * PXSI_BACKOFF_PROGRESS_EVERY-th pause after that, every pause from
 * PXSI_BACKOFF_YIELD on. No timing is asserted. */
#include "pxs_test.h"
#include "util/util.h"

static int hook_calls;
static uint32_t hook_iter[512];

static void
hook(void *arg)
{
    pxsi_backoff_t *b = arg;
    if (hook_calls < 512)
        hook_iter[hook_calls] = b->iter;
    hook_calls++;
}

int
main(void)
{
    pxsi_backoff_t b;

    /* timeout 0: a poll, expired at once, nothing left */
    pxsi_backoff_init(&b, 0.0);
    CHECK(pxsi_backoff_expired(&b));
    CHECK(pxsi_backoff_left(&b) == 0.0);
    /* timeout < 0: forever */
    pxsi_backoff_init(&b, PXS_WAIT_FOREVER);
    CHECK(!pxsi_backoff_expired(&b));
    CHECK(pxsi_backoff_left(&b) < 0);
    /* a long timeout: not expired, and what is left never exceeds it */
    pxsi_backoff_init(&b, 1000.0);
    CHECK(!pxsi_backoff_expired(&b));
    CHECK(pxsi_backoff_left(&b) > 0 && pxsi_backoff_left(&b) <= 1000.0);

    /* a plain wait: no cap, no hook */
    pxsi_backoff_init(&b, PXS_WAIT_FOREVER);
    for (int i = 0; i < 140; i++)
        pxsi_backoff_pause(&b);
    CHECK(b.iter == 140);

    /* a wait that needs MPI progress: the hook and the step cap */
    pxsi_backoff_init_mpi(&b, PXS_WAIT_FOREVER, hook, &b);
    for (int i = 1; i <= 300; i++) {
        int before = hook_calls;
        pxsi_backoff_pause(&b);
        uint32_t it = b.iter;
        int called = hook_calls > before;
        if (it < PXSI_BACKOFF_PROGRESS_FIRST)
            CHECK(!called); /* not at once */
        else if (it >= PXSI_BACKOFF_YIELD)
            CHECK(called); /* every pause past the spin phase */
        else
            CHECK(called == (it % PXSI_BACKOFF_PROGRESS_EVERY == 0));
    }
    CHECK(b.iter == PXSI_BACKOFF_MPI_MAX_STEP); /* naps capped at 2^6 us */
    CHECK(PXSI_BACKOFF_MPI_MAX_STEP == 134u);
    CHECK(hook_calls > 0 && hook_iter[0] == PXSI_BACKOFF_PROGRESS_FIRST);

    /* the older form used by the store: same cap */
    pxsi_backoff_init(&b, PXS_WAIT_FOREVER);
    for (int i = 0; i < 200; i++)
        pxsi_backoff_pause_mpi(&b, MPI_COMM_NULL);
    CHECK(b.iter == PXSI_BACKOFF_MPI_MAX_STEP);

    printf("backoff: ok (%d hook calls)\n", hook_calls);
    return 0;
}
