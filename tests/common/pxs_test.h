/* Test helpers: a failed check prints rank, file:line, the status name and the
 * library's detail line, then aborts the job (tests may abort; the library
 * never does). Works in unit tests (no MPI_Init) and MPI tests. */
#ifndef PXS_TEST_H
#define PXS_TEST_H

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxystream.h"

static inline int
pxs_test_rank(void)
{
    int init = 0, fin = 0, r = -1;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin)
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

static inline void
pxs_test_fail(const char *file, int line, const char *what)
{
    int init = 0, fin = 0;
    fprintf(stderr, "[rank %d] %s:%d: FAILED: %s (detail: %s)\n", pxs_test_rank(),
            file, line, what, pxs_last_error_detail());
    fflush(stderr);
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin)
        MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

/* CHECK(cond) */
#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c))                                                              \
            pxs_test_fail(__FILE__, __LINE__, #c);                             \
    } while (0)

/* CHECK_RC(expr, expected_code): expr must return exactly that code. */
#define CHECK_RC(expr, want)                                                   \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != (want)) {                                                   \
            char m_[512];                                                      \
            snprintf(m_, sizeof m_, "%s returned %s (%d), expected %s", #expr, \
                     pxs_errname(rc_), rc_, pxs_errname(want));                \
            pxs_test_fail(__FILE__, __LINE__, m_);                             \
        }                                                                      \
    } while (0)

/* CHECK_OK(expr): expr must return PXS_OK. */
#define CHECK_OK(expr) CHECK_RC(expr, PXS_OK)

/* The store connector under test: PXS_TEST_CONNECTOR=ucx selects PXS_CONN_UCX
 * (the store tests registered with a ucx variant, label ucx-conn), anything
 * else the default PXS_CONN_RMA. Tests set opts.connector from it where
 * they mean "the collective connector". */
static inline int
pxs_test_connector(void)
{
    const char *c = getenv("PXS_TEST_CONNECTOR");
    return c && strcmp(c, "ucx") == 0 ? PXS_CONN_UCX : PXS_CONN_RMA;
}

/* Are same-node peers expected on the shared-memory path (PXSI_PATH_SHM)?
 * PXS_SHM=0 turns it off for every connector; the UCX connector maps a
 * peer's arena only through UCX's shared-memory transports, which a UCX_TLS
 * naming none of them (tcp, or fakenodes.sh's tcp,self) leaves out. */
static inline int
pxs_test_shm_expected(void)
{
    const char *s = getenv("PXS_SHM");
    if (s && strcmp(s, "0") == 0)
        return 0;
    if (pxs_test_connector() == PXS_CONN_UCX) {
        const char *t = getenv("UCX_TLS");
        return !t || strstr(t, "sm") || strstr(t, "posix") || strstr(t, "sysv") ||
               strstr(t, "all") || t[0] == '^';
    }
    return 1;
}

/* Create an MPI mailbox bus on MPI_COMM_WORLD (collective) and take its
 * publisher and subscriber; any failure aborts the test. */
static inline void
pxs_test_bus(const pxs_bus_opts_t *bo, pxs_bus_t **bus, pxs_publisher_t **pub,
             pxs_subscriber_t **sub)
{
    CHECK_OK(pxs_bus_create(MPI_COMM_WORLD, bo, bus));
    CHECK_OK(pxs_bus_publisher(*bus, pub));
    CHECK_OK(pxs_bus_subscriber(*bus, sub));
}

/* pxs_test_bus with rank 0 publishing s->topic and every other rank
 * subscribed as *s; base (NULL: pxs_bus_opts_init's defaults) gives the
 * other options. */
static inline void
pxs_test_bus_one_to_all(const pxs_bus_opts_t *base, const pxs_subscription_t *s,
                        pxs_bus_t **bus, pxs_publisher_t **pub, pxs_subscriber_t **sub)
{
    uint32_t topic = s->topic;
    pxs_bus_opts_t bo;
    if (base)
        bo = *base;
    else
        CHECK_OK(pxs_bus_opts_init(&bo));
    if (pxs_test_rank() == 0) {
        bo.publish = &topic;
        bo.n_publish = 1;
    } else {
        bo.subscribe = s;
        bo.n_subscribe = 1;
    }
    pxs_test_bus(&bo, bus, pub, sub);
}

/* Deterministic pattern for payload checks. */
static inline unsigned char
pxs_test_byte(uint64_t seed, uint64_t i)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (unsigned char)(x ^ (x >> 17));
}
static inline void
pxs_test_fill(void *buf, size_t len, uint64_t seed)
{
    unsigned char *p = (unsigned char *)buf;
    for (size_t i = 0; i < len; i++)
        p[i] = pxs_test_byte(seed, i);
}
static inline int
pxs_test_verify(const void *buf, size_t len, uint64_t seed)
{
    const unsigned char *p = (const unsigned char *)buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != pxs_test_byte(seed, i))
            return 0;
    return 1;
}

/* Send n chunks of len bytes on topic through prod, chunk i filled by
 * pxs_test_fill(buf, len, i) (buf: len bytes of scratch). */
static inline void
pxs_test_send_chunks(pxs_producer_t *prod, uint32_t topic, uint32_t n, void *buf, size_t len)
{
    for (uint32_t i = 0; i < n; i++) {
        pxs_test_fill(buf, len, i);
        CHECK_OK(pxs_producer_send(prod, topic, buf, len, NULL, NULL));
    }
}

/* After a barrier (every rank done with the objects): rank 0, the owner,
 * makes progress once and its arena must be empty (every object reclaimed). */
static inline void
pxs_test_check_reclaimed(pxs_store_t *store, int rank)
{
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        size_t used = 1, cap = 0;
        (void)pxs_store_progress(store);
        CHECK_OK(pxs_store_used(store, &used, &cap));
        CHECK(used == 0 && "rank 0's arena holds objects not reclaimed");
    }
}

#endif
