/* Shared helpers for the event-plane MPI tests. */
#ifndef TEST_EVENTS_COMMON_H
#define TEST_EVENTS_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "pxs_test.h"

/* Event i of producer p: metadata = 8-byte index + pattern (length varies),
 * proxy = a valid proxy whose fields derive from (p, topic, i) (publishers
 * refuse proxies that do not validate). Returns meta_len. */
static inline size_t
ev_fill(int p, uint32_t topic, uint64_t i, pxs_proxy_t *proxy, unsigned char *meta)
{
    uint64_t seed = ((uint64_t)p << 40) ^ ((uint64_t)topic << 32) ^ i;
    pxs_proxy_info_t info;
    memset(&info, 0, sizeof info);
    info.kind = PXS_CONN_RMA;
    info.owner = (uint32_t)p;
    info.topic = topic;
    info.offset = seed * 64;
    info.size = 1 + i % 4093;
    info.generation = 1 + 2 * i;
    info.seq = i;
    info.payload_crc = (uint32_t)(seed * 2654435761u);
    info.flags = PXS_PROXY_F_PAYLOAD_CRC;
    if (pxs_proxy_encode(&info, proxy) != PXS_OK)
        memset(proxy, 0, sizeof *proxy);
    size_t len = 8 + (size_t)(i % 89);
    for (int k = 0; k < 8; k++)
        meta[k] = (unsigned char)(i >> (8 * k));
    pxs_test_fill(meta + 8, len - 8, seed);
    return len;
}

/* Publish events 0 .. n-1 of producer 0 (ev_fill) on topic, then END. */
static inline void
ev_publish_all(pxs_publisher_t *pub, uint32_t topic, int n)
{
    pxs_proxy_t px;
    unsigned char meta[PXS_EVENT_META_MAX];
    for (int i = 0; i < n; i++) {
        size_t len = ev_fill(0, topic, (uint64_t)i, &px, meta);
        CHECK_OK(pxs_publisher_send(pub, topic, &px, meta, len, NULL));
    }
    CHECK_OK(pxs_publisher_close_topic(pub, topic));
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
 * microseconds and targets must be inside MPI: tests scale event counts.
 * MPICH (4.0, ch4:ucx) is like osc/pt2pt here: every RMA operation needs the
 * target inside MPI (docs/DESIGN.md, section "MPICH"). */
static inline int
ev_slow_osc(void)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (MPI_Get_library_version(v, &len) == MPI_SUCCESS && len > 0 && strstr(v, "MPICH"))
        return 1;
    const char *o = getenv("OMPI_MCA_osc");
    return o && (strstr(o, "ucx") || strstr(o, "pt2pt"));
}

#endif
