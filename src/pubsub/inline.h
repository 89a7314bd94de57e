/* Inline chunks: payloads that travelled inside their event (docs/DESIGN.md,
 * section "Inline chunks"). The subscriber core reassembles them and keeps
 * each in this process's bounded table of received inline payloads; the
 * event's proxy (connector kind PXS_CONN_INLINE) names the table entry.
 * pxs_store_resolve/resolve_alloc/view/drop/evict of such a proxy are
 * answered here (store.c checks pxsi_inline_is first), whatever store is
 * passed. Not installed. */
#ifndef PXSI_INLINE_H
#define PXSI_INLINE_H

#include <stddef.h>
#include <stdint.h>

#include "proxystream/proxy.h"
#include "proxystream/store.h"

/* Hard bound of an inline payload (PXS_INLINE_MAX's maximum; a record run
 * claiming more is PXS_ERR_CORRUPT). */
#define PXSI_INLINE_HARD_MAX (16u * 1024u)
/* Bounds of the table of received inline payloads, per process: entries and
 * bytes; beyond them the oldest entry is dropped (its proxy then resolves to
 * PXS_ERR_STALE with a detail saying so). */
#define PXSI_INLINE_HOLD_ENTRIES 4096u
#define PXSI_INLINE_HOLD_BYTES   (16u * 1024u * 1024u)

/* 1 when the proxy's kind byte says PXS_CONN_INLINE (no other check).
 * Inline: every store call asks it first. */
static inline int
pxsi_inline_is(const pxs_proxy_t *p)
{
    return p && p->bytes[0] == PXS_PROXY_VERSION && p->bytes[1] == PXS_CONN_INLINE;
}
/* Keep a received payload; proxy_out names it (kind PXS_CONN_INLINE, this
 * process's table nonce, entry id in the offset field, payload CRC32C).
 * PXS_OK, PXS_ERR_NOMEM, PXS_ERR_NOTSUP (no randomness for the nonce). */
int pxsi_inline_put(const void *data, uint32_t len, uint32_t topic, int32_t producer, uint64_t seq,
                    pxs_proxy_t *proxy_out);
/* The proxy pxs_producer_send hands its caller for an inline send: nonce 0,
 * names no entry anywhere (resolves to PXS_ERR_STALE with a detail). */
int pxsi_inline_sender_proxy(const void *data, uint32_t len, uint32_t topic, int32_t producer,
                             uint64_t seq, pxs_proxy_t *proxy_out);
/* Copy without consuming (forwarding): PXS_OK, PXS_ERR_STALE, PXS_ERR_CORRUPT,
 * PXS_ERR_TRUNC (len_out set). */
int pxsi_inline_copy(const pxs_proxy_t *p, void *buf, size_t cap, size_t *len_out);
/* The store entry points for an inline proxy. resolve, resolve_alloc and
 * view consume the entry (one resolve per received event); drop and evict
 * discard it. Status codes as the pxs_store_* calls they serve: PXS_OK,
 * PXS_ERR_INVALID, PXS_ERR_CORRUPT, PXS_ERR_STALE, PXS_ERR_TRUNC,
 * PXS_ERR_NOMEM. */
int pxsi_inline_resolve(const pxs_proxy_t *p, void *buf, size_t cap, size_t *len_out);
int pxsi_inline_resolve_alloc(const pxs_proxy_t *p, void **buf_out, size_t *len_out);
int pxsi_inline_view(const pxs_proxy_t *p, pxs_view_t *view_out);
int pxsi_inline_is_view(const pxs_view_t *v);
int pxsi_inline_release(pxs_view_t *v);
int pxsi_inline_drop(const pxs_proxy_t *p);
/* Entries held now (tests, stats). */
uint32_t pxsi_inline_held(void);

#endif
