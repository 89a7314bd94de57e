/* fortran/shim.c - the C side of the Fortran module `proxystream`
 * (fortran/proxystream.f90). Thin: every function converts what Fortran
 * hands over (MPI_Fint communicators, C descriptors of assumed-type,
 * assumed-rank arrays, absent optionals as NULL) and calls the public C API.
 * Nothing here stores, routes or validates proxies itself.
 *
 * Errors found here (a non-contiguous array, an unallocated buffer) return
 * PXS_ERR_INVALID with their own detail, which pxsf_last_error_detail()
 * returns until the library reports a newer failure. Design: docs/DESIGN.md,
 * section "Fortran and C++ bindings". */
#include <ISO_Fortran_binding.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxystream.h"

#define PXSF_API __attribute__((visibility("default")))

static _Thread_local char own_detail[256];
static _Thread_local char lib_then[512];
static _Thread_local int own_set;

static int
own_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(own_detail, sizeof own_detail, fmt, ap);
    va_end(ap);
    snprintf(lib_then, sizeof lib_then, "%s", pxs_last_error_detail());
    own_set = 1;
    return code;
}

/* The shim's detail while the library's detail is unchanged since, else the
 * library's. */
PXSF_API const char *
pxsf_last_error_detail(void)
{
    const char *lib = pxs_last_error_detail();
    if (own_set && strncmp(lib, lib_then, sizeof lib_then - 1) == 0)
        return own_detail;
    own_set = 0;
    return lib;
}

/* Bytes of a Fortran actual argument given as type(*), dimension(..):
 * contiguous arrays and scalars only (elem_len x number of elements). A NULL
 * descriptor (absent optional) is an empty buffer. */
static int
cfi_bytes(const CFI_cdesc_t *d, const char *what, void **p, size_t *n)
{
    *p = NULL;
    *n = 0;
    if (d == NULL)
        return PXS_OK;
    size_t len = d->elem_len;
    for (int r = 0; r < d->rank; r++) {
        CFI_index_t e = d->dim[r].extent;
        len *= e > 0 ? (size_t)e : 0;
    }
    if (d->base_addr == NULL) {
        if (len == 0)
            return PXS_OK;
        return own_err(PXS_ERR_INVALID, "fortran: %s is not allocated", what);
    }
    if (d->rank > 0 && len > 0 && !CFI_is_contiguous(d))
        return own_err(
            PXS_ERR_INVALID,
            "fortran: %s is not contiguous (pass a contiguous array, "
            "or copy the section into one)",
            what);
    *p = d->base_addr;
    *n = len;
    return PXS_OK;
}

/* ---------------------------------------------------------------- store */

PXSF_API int
pxsf_store_create(MPI_Fint comm, const int *connector,
                  const int64_t *arena_bytes, const double *put_timeout,
                  const int *shm, pxs_store_t **out)
{
    pxs_store_opts_t o;
    pxs_store_opts_init(&o);
    if (connector)
        o.connector = *connector;
    if (arena_bytes) /* a negative size wraps to huge: the library refuses it */
        o.arena_bytes = (size_t)*arena_bytes;
    if (put_timeout)
        o.put_timeout = *put_timeout;
    if (shm)
        o.shm = *shm;
    return pxs_store_create(MPI_Comm_f2c(comm), &o, out);
}

PXSF_API int
pxsf_store_put(pxs_store_t *store, CFI_cdesc_t *data, const int *resolves,
               const int *checksum, const double *timeout, pxs_proxy_t *out)
{
    void *p;
    size_t n;
    int rc = cfi_bytes(data, "store_put buffer", &p, &n);
    if (rc != PXS_OK)
        return rc;
    pxs_put_opts_t o;
    pxs_put_opts_init(&o);
    if (resolves)
        o.resolves = (uint32_t)*resolves;
    if (checksum)
        o.checksum = *checksum;
    if (timeout)
        o.timeout = *timeout;
    return pxs_store_put(store, p, n, &o, out);
}

PXSF_API int
pxsf_store_resolve(pxs_store_t *store, const pxs_proxy_t *proxy,
                   CFI_cdesc_t *buf, int64_t *len_out)
{
    void *p;
    size_t cap, len = 0;
    int rc = cfi_bytes(buf, "store_resolve buffer", &p, &cap);
    if (rc != PXS_OK)
        return rc;
    rc = pxs_store_resolve(store, proxy, p, cap, &len);
    if (len_out && (rc == PXS_OK || rc == PXS_ERR_TRUNC))
        *len_out = (int64_t)len;
    return rc;
}

/* ---------------------------------------------------------------- bus */

/* groups: nsub names of glen characters each, blank-padded (Fortran
 * character array); all blank = a plain subscription. NULL: all plain. */
PXSF_API int
pxsf_bus_create(MPI_Fint comm, const uint32_t *pub, int64_t npub,
                const uint32_t *sub, int64_t nsub, const char *groups,
                int64_t glen, const uint32_t *prefetch, const uint32_t *slots,
                const uint32_t *batch, const double *send_timeout,
                pxs_bus_t **out)
{
    pxs_bus_opts_t o;
    pxs_bus_opts_init(&o);
    if (slots)
        o.slots = *slots;
    if (batch)
        o.batch = *batch;
    if (send_timeout)
        o.send_timeout = *send_timeout;
    o.publish = npub > 0 ? pub : NULL;
    o.n_publish = npub > 0 ? (size_t)npub : 0;
    pxs_subscription_t *subs = NULL;
    char *names = NULL;
    if (nsub > 0) {
        size_t gl = glen > 0 ? (size_t)glen : 0;
        subs = calloc((size_t)nsub, sizeof *subs);
        names = calloc((size_t)nsub, gl + 1);
        if (subs && names) {
            for (int64_t i = 0; i < nsub; i++) {
                subs[i].topic = sub[i];
                subs[i].prefetch = prefetch ? prefetch[i] : 0;
                if (groups && gl > 0) {
                    char *nm = names + (size_t)i * (gl + 1);
                    size_t l = gl;
                    memcpy(nm, groups + (size_t)i * gl, gl);
                    while (l > 0 && nm[l - 1] == ' ')
                        l--;
                    nm[l] = '\0';
                    subs[i].group = l > 0 ? nm : NULL;
                }
            }
        }
        /* Out of memory here: a NULL subscription list with a count makes the
         * library refuse on every rank together (create is collective). */
        o.subscribe = subs && names ? subs : NULL;
        o.n_subscribe = (size_t)nsub;
    }
    int rc = pxs_bus_create(MPI_Comm_f2c(comm), &o, out);
    free(subs);
    free(names);
    return rc;
}

/* ---------------------------------------------------------------- stream */

PXSF_API int
pxsf_producer_create(pxs_store_t *store, pxs_publisher_t *pub,
                     const uint32_t *topics, int64_t ntopics,
                     const uint32_t *batch, const double *max_delay,
                     const uint32_t *resolves, const int *checksum,
                     const double *put_timeout, const int *close_on_destroy,
                     pxs_producer_t **out)
{
    pxs_producer_opts_t o;
    pxs_producer_opts_init(&o);
    o.topics = ntopics > 0 ? topics : NULL;
    o.n_topics = ntopics > 0 ? (size_t)ntopics : 0;
    if (batch)
        o.batch = *batch;
    if (max_delay)
        o.max_delay = *max_delay;
    if (resolves)
        o.resolves = *resolves;
    if (checksum)
        o.checksum = *checksum;
    if (put_timeout)
        o.put_timeout = *put_timeout;
    if (close_on_destroy)
        o.close_on_destroy = *close_on_destroy;
    return pxs_producer_create(store, pub, &o, out);
}

PXSF_API int
pxsf_producer_send(pxs_producer_t *prod, uint32_t topic, CFI_cdesc_t *data,
                   CFI_cdesc_t *meta, const uint32_t *resolves, const int *keep,
                   const int *checksum, pxs_proxy_t *proxy_out)
{
    void *p, *m;
    size_t n, mn;
    int rc = cfi_bytes(data, "producer_send buffer", &p, &n);
    if (rc == PXS_OK)
        rc = cfi_bytes(meta, "producer_send meta", &m, &mn);
    if (rc != PXS_OK)
        return rc;
    pxs_send_opts_t o;
    pxs_send_opts_init(&o);
    o.meta = m;
    o.meta_len = mn;
    if (resolves)
        o.resolves = *resolves;
    if (keep)
        o.keep = *keep;
    if (checksum)
        o.checksum = *checksum;
    return pxs_producer_send(prod, topic, p, n, &o, proxy_out);
}

PXSF_API int
pxsf_producer_send_proxy(pxs_producer_t *prod, uint32_t topic,
                         const pxs_proxy_t *proxy, CFI_cdesc_t *meta)
{
    void *m;
    size_t mn;
    int rc = cfi_bytes(meta, "send_proxy meta", &m, &mn);
    if (rc != PXS_OK)
        return rc;
    return pxs_producer_send_proxy(prod, topic, proxy, m, mn);
}

PXSF_API int
pxsf_consumer_resolve(pxs_consumer_t *cons, const pxs_event_t *ev,
                      CFI_cdesc_t *buf, int64_t *len_out)
{
    void *p;
    size_t cap, len = 0;
    int rc = cfi_bytes(buf, "consumer_resolve buffer", &p, &cap);
    if (rc != PXS_OK)
        return rc;
    rc = pxs_consumer_resolve(cons, ev, p, cap, &len);
    if (len_out && (rc == PXS_OK || rc == PXS_ERR_TRUNC))
        *len_out = (int64_t)len;
    return rc;
}
