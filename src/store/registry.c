/* Registry of the live stores of this process (see registry.h).
 *
 * A discarded event (pxs_bus_destroy drops what pxs_producer_destroy could
 * not deliver) holds one unit of its object's resolve budget; without a
 * give-back the object stays in the owner's arena until the store is
 * destroyed. The bus does not know the store, so the proxy is matched
 * against the live stores here. Only the owner rank gives back (a local
 * operation there): a copy of a proxy forwarded by another rank is left to
 * its owner. */
#include <pthread.h>
#include <stdlib.h>

#include "store/registry.h"
#include "store/store_int.h"

#define SUBSYS "store"

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pxs_store_t **reg;
static size_t reg_n, reg_cap;

void
pxsi_store_register(pxs_store_t *s)
{
    pthread_mutex_lock(&reg_mu);
    if (reg_n == reg_cap) {
        size_t cap = reg_cap ? 2 * reg_cap : 8;
        pxs_store_t **nr = realloc(reg, cap * sizeof *nr);
        if (nr) {
            reg = nr;
            reg_cap = cap;
        }
    }
    if (reg_n < reg_cap)
        reg[reg_n++] = s;
    else /* only the give-back is lost: its objects wait for store destroy */
        PXSI_WARN(SUBSYS, "store registry: out of memory");
    pthread_mutex_unlock(&reg_mu);
}

void
pxsi_store_unregister(pxs_store_t *s)
{
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < reg_n; i++)
        if (reg[i] == s) {
            reg[i] = reg[--reg_n];
            break;
        }
    if (reg_n == 0) {
        free(reg);
        reg = NULL;
        reg_cap = 0;
    }
    pthread_mutex_unlock(&reg_mu);
}

/* Is `s` the owner store of the object `pi` describes, on its owner rank?
 * The one place that decides which store instance a proxy belongs to here
 * (store identity: connector kind and the instance's random nonce). */
static int
owns(const pxs_store_t *s, const pxs_proxy_info_t *pi)
{
    return s->kind == pi->kind && s->nonce == pi->store_nonce &&
           (uint32_t)s->rank == pi->owner;
}

int
pxsi_store_giveback(const pxs_proxy_t *p)
{
    pxs_proxy_info_t pi;
    if (pxs_proxy_decode(p->bytes, PXS_PROXY_SIZE, &pi) != PXS_OK)
        return PXS_ERR_NOT_FOUND;
    int rc = PXS_ERR_NOT_FOUND;
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < reg_n; i++)
        if (owns(reg[i], &pi)) {
            rc = pxs_store_drop(reg[i], p);
            break;
        }
    pthread_mutex_unlock(&reg_mu);
    /* STALE: reclaimed already (budget spent, evicted): nothing to give */
    if (rc < 0 && rc != PXS_ERR_NOT_FOUND && rc != PXS_ERR_STALE)
        PXSI_DEBUG(SUBSYS, "give-back of a discarded event's object: %s",
                   pxs_errname(rc));
    return rc;
}
