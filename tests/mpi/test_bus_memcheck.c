/* Bus creation fails together when one rank cannot hold its mailbox window
 * (issue 8, item 3): rank 1 lowers its RLIMIT_DATA to 32 MiB above what it
 * uses and asks for 1M mailbox slots (~192 MiB); before the fix the window
 * allocation failed on that rank only. Now every rank gets PXS_ERR_NOMEM
 * with the size and the limit in the detail (rank 0's names rank 1), and a
 * normal bus works afterwards (nobody was left inside a collective). */
#include <stdlib.h>
#include <sys/resource.h>

#include "pxs_test.h"

static unsigned long long
vm_data(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmData: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024ull;
}

static void
check_detail_has(int rank, const char *what)
{
    const char *d = pxs_last_error_detail();
    if (!d || !strstr(d, what)) {
        fprintf(stderr, "[rank %d] detail \"%s\" lacks \"%s\"\n", rank, d ? d : "(null)", what);
        CHECK(0);
    }
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    static uint32_t topic = 1;
    static pxs_subscription_t sub = {.topic = 1, .group = NULL};
    pxs_bus_opts_t o;
    CHECK_OK(pxs_bus_opts_init(&o));
    if (rank == 0) {
        o.publish = &topic;
        o.n_publish = 1;
        o.slots = 8;
    } else {
        o.subscribe = &sub;
        o.n_subscribe = 1;
        o.slots = 1u << 20;
    }
    struct rlimit saved, low;
    CHECK(getrlimit(RLIMIT_DATA, &saved) == 0);
    if (rank == 1) {
        unsigned long long used = vm_data();
        CHECK(used > 0);
        low = saved;
        low.rlim_cur = (rlim_t)(used + (32ull << 20));
        if (saved.rlim_max != RLIM_INFINITY && low.rlim_cur > saved.rlim_max)
            low.rlim_cur = saved.rlim_max;
        CHECK(setrlimit(RLIMIT_DATA, &low) == 0);
    }
    pxs_bus_t *bus = NULL;
    int rc = pxs_bus_create(MPI_COMM_WORLD, &o, &bus);
    if (rank == 1)
        CHECK(setrlimit(RLIMIT_DATA, &saved) == 0);
    CHECK_RC(rc, PXS_ERR_NOMEM);
    CHECK(bus == NULL);
    check_detail_has(rank, "mailbox window");
    check_detail_has(rank, "RLIMIT_DATA");
    if (rank != 1)
        check_detail_has(rank, "reported by rank 1");

    /* everybody is still in step */
    o.slots = 8;
    CHECK_OK(pxs_bus_create(MPI_COMM_WORLD, &o, &bus));
    CHECK_OK(pxs_bus_destroy(bus));
    if (rank == 0)
        printf("bus memcheck OK (%d ranks)\n", size);
    MPI_Finalize();
    return 0;
}
