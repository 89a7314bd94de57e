/* Shared helpers for the event-plane MPI tests. */
#ifndef TEST_EVENTS_COMMON_H
#define TEST_EVENTS_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "pxs_test.h"

/* Event i of producer p: metadata = 8-byte index + pattern (length varies),
 * proxy = pattern. Returns meta_len. */
static inline size_t
ev_fill(int p, uint32_t topic, uint64_t i, pxs_proxy_t *proxy, unsigned char *meta)
{
    uint64_t seed = ((uint64_t)p << 40) ^ ((uint64_t)topic << 32) ^ i;
    pxs_test_fill(proxy->bytes, sizeof proxy->bytes, seed + 7);
    size_t len = 8 + (size_t)(i % 89);
    for (int k = 0; k < 8; k++)
        meta[k] = (unsigned char)(i >> (8 * k));
    pxs_test_fill(meta + 8, len - 8, seed);
    return len;
}

static inline int
ev_check(const pxs_event_t *ev, uint64_t i)
{
    pxs_proxy_t px;
    unsigned char meta[PXS_EVENT_META_MAX];
    size_t len = ev_fill(ev->producer, ev->topic, i, &px, meta);
    return ev->meta_len == len && memcmp(ev->meta, meta, len) == 0 &&
           memcmp(ev->proxy.bytes, px.bytes, sizeof px.bytes) == 0;
}

/* Under software-atomic osc components (ucx, pt2pt) every append costs
 * microseconds and targets must be inside MPI: tests scale event counts. */
static inline int
ev_slow_osc(void)
{
    const char *o = getenv("OMPI_MCA_osc");
    return o && (strstr(o, "ucx") || strstr(o, "pt2pt"));
}

#endif
