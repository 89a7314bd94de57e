/* Reserved puts for other parts of the library (the stream producer):
 * docs/DESIGN.md, section "Reserved puts". */
#ifndef PXSI_STORE_RESERVE_H
#define PXSI_STORE_RESERVE_H

#include "proxystream/store.h"

#define PXSI_RESV_MAGIC 0x50585356u /* "PXSV": pxs_reservation_t live */
#define PXSI_RESV_DEAD  0x50585364u /* ended (committed or cancelled) */

/* Commit a reservation with these put options instead of reserve's (NULL:
 * reserve's), for the stream producer, which knows the topic, seq and
 * budget only at send. keep_buf != NULL: a private buffer is not freed but
 * handed back in *keep_buf (free()), for a caller that still reads it
 * (NULL when it was an arena block). data_out/len_out (may be NULL): on
 * PXS_OK the bytes the proxy names, from the store's record (the caller
 * may have changed res->data/res->len: those are never trusted); the arena
 * block stays readable until this thread's next store call that may
 * reclaim. Same checks and outcomes as commit. */
int pxsi_store_commit_opts(pxs_store_t *store, pxs_reservation_t *res, const pxs_put_opts_t *po,
                           pxs_proxy_t *proxy_out, void **keep_buf, const void **data_out,
                           size_t *len_out);

#endif
