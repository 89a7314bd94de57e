/* Live stores of this process, so that other planes can give objects back
 * to their owner (the bus's destroy, for events it discards). Not installed.
 * See docs/DESIGN.md, section "Giving back discarded events". */
#ifndef PXSI_STORE_REGISTRY_H
#define PXSI_STORE_REGISTRY_H

#include "proxystream/proxy.h"
#include "proxystream/store.h"

/* store.c: at the end of a successful create / the start of destroy. */
void pxsi_store_register(pxs_store_t *s);
void pxsi_store_unregister(pxs_store_t *s);

/* Give up one claim (one unit of the resolve budget, as pxs_store_drop) on
 * the object `p` names, if its owner store is live in this process and this
 * process is the owner rank. PXS_OK, PXS_ERR_NOT_FOUND (no such live local
 * store: nothing done), or the drop's status. Thread-safe against create and
 * destroy of other stores. */
int pxsi_store_giveback(const pxs_proxy_t *p);

#endif
