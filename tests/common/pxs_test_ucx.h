/* Helpers of the UCX tests. The cross-job ones (tests/tools/ucx_*.sh run two
 * or more mpiexec jobs that meet through marker files in a directory D):
 * touch and look for D/name, wait for it while polling, record a pid. The
 * progress-thread-off ones: the store they create and the owner's serving
 * loop. Failures abort the job as in pxs_test.h. */
#ifndef PXS_TEST_UCX_H
#define PXS_TEST_UCX_H

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pxs_test.h"

/* Create D/name (empty). */
static inline void
pxs_test_touch(const char *d, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", d, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    fclose(f);
}

/* Does D/name exist? */
static inline int
pxs_test_exists(const char *d, const char *name)
{
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", d, name);
    return stat(p, &sb) == 0;
}

/* Look for D/name up to `tries` times, `us` microseconds apart; before each
 * pause poll(arg) runs when set and must return PXS_OK (a flush that picks
 * registrations up, for instance). Returns whether D/name exists at the end. */
static inline int
pxs_test_wait_file(const char *d, const char *name, int tries, unsigned us,
                   int (*poll)(void *), void *arg)
{
    for (int k = 0; k < tries && !pxs_test_exists(d, name); k++) {
        if (poll)
            CHECK_OK(poll(arg));
        usleep(us);
    }
    return pxs_test_exists(d, name);
}

/* Pollers for pxs_test_wait_file. */
static inline int
pxs_test_poll_publisher(void *pub)
{
    return pxs_publisher_flush((pxs_publisher_t *)pub);
}
static inline int
pxs_test_poll_producer(void *prod)
{
    return pxs_producer_flush((pxs_producer_t *)prod);
}

/* Write this process's pid to D/name ("<pid>\n"), for the driving script. */
static inline void
pxs_test_write_pid(const char *d, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", d, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
}

/* A UCX store on MPI_COMM_WORLD (collective) with its progress thread off
 * and a 4 MiB arena. */
static inline pxs_store_t *
pxs_test_ucx_store_nothread(void)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_UCX;
    so.arena_bytes = 4 << 20;
    so.progress_thread = 0;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    return st;
}

/* Without a progress thread an owner serves its peers from inside library
 * calls: poll pxs_store_progress until every rank has arrived at a
 * non-blocking barrier (a plain MPI collective would wait forever while a
 * peer still needs this rank; docs/DESIGN.md, section "UCX connector"). */
static inline void
pxs_test_serve_until_all_done(pxs_store_t *st)
{
    MPI_Request r;
    int flag = 0;
    MPI_Ibarrier(MPI_COMM_WORLD, &r);
    while (!flag) {
        CHECK_OK(pxs_store_progress(st));
        MPI_Test(&r, &flag, MPI_STATUS_IGNORE);
    }
}

#endif
