/* Arena allocator shared by the store connectors (see store_int.h).
 *
 * Free space is implicit: the gaps between live blocks kept in address order
 * (doubly linked through per-slot prev/next). A free unlinks its block
 * (coalescing with both neighbours) and moves the search start (the rover)
 * back to the gap it opened when that gap lies below it: the next
 * allocations reuse the lowest gaps freed since (LIFO-like: those bytes were
 * just written by a put and read by resolvers, so they are cache- and
 * TLB-hot), then next-fit goes on from the block allocated last, so without
 * frees a stream walks the arena like a ring. Fragmentation is bounded by construction: there is at
 * most one gap per live block, and an object larger than any gap waits
 * (backpressure) until neighbours are freed; the arena never grows.
 * Worst-case search is O(live blocks), one step in the streaming case. */
#include <stdlib.h>

#include "store/store_int.h"

#define SUBSYS "store"

int
pxsi_arena_init(pxsi_arena_t *a, uint64_t cap, uint32_t nslots)
{
    memset(a, 0, sizeof *a);
    a->cap = cap & ~(uint64_t)(PXSI_ARENA_ALIGN - 1);
    a->nslots = nslots;
    a->head = PXSI_NONE;
    a->rover = PXSI_NONE;
    a->prev = calloc(nslots, sizeof *a->prev);
    a->next = calloc(nslots, sizeof *a->next);
    a->free_stack = calloc(nslots, sizeof *a->free_stack);
    a->off = calloc(nslots, sizeof *a->off);
    a->len = calloc(nslots, sizeof *a->len);
    a->lent = calloc(nslots, sizeof *a->lent);
    if (!a->prev || !a->next || !a->free_stack || !a->off || !a->len || !a->lent) {
        pxsi_arena_fini(a);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "arena tables for %u slots", nslots);
    }
    /* LIFO of free slots, lowest index on top: reused slots stay low, which
     * keeps the owner's reclaim scan (0 .. hwm) short. */
    for (uint32_t i = 0; i < nslots; i++)
        a->free_stack[i] = nslots - 1 - i;
    a->nfree = nslots;
    return PXS_OK;
}

void
pxsi_arena_fini(pxsi_arena_t *a)
{
    free(a->prev);
    free(a->next);
    free(a->free_stack);
    free(a->off);
    free(a->len);
    free(a->lent);
    memset(a, 0, sizeof *a);
}

/* Does the gap after block p (PXSI_NONE: before the head) hold need bytes?
 * Then take its start for a new block. */
static inline int
place(pxsi_arena_t *a, uint32_t p, uint64_t need, uint32_t *slot_out, uint64_t *off_out)
{
    uint64_t gs = p == PXSI_NONE ? 0 : a->off[p] + a->len[p];
    uint32_t n = p == PXSI_NONE ? a->head : a->next[p];
    uint64_t ge = n == PXSI_NONE ? a->cap : a->off[n];
    if (ge - gs < need)
        return 0;
    uint32_t s = a->free_stack[--a->nfree];
    a->off[s] = gs;
    a->len[s] = need;
    a->prev[s] = p;
    a->next[s] = n;
    if (p == PXSI_NONE)
        a->head = s;
    else
        a->next[p] = s;
    if (n != PXSI_NONE)
        a->prev[n] = s;
    a->rover = s;
    a->nlive++;
    a->used += need;
    a->since_reclaim += need;
    if (a->used > a->used_hwm)
        a->used_hwm = a->used;
    if (s + 1 > a->hwm)
        a->hwm = s + 1;
    *slot_out = s;
    *off_out = gs;
    return 1;
}

int
pxsi_arena_alloc(pxsi_arena_t *a, uint64_t size, uint32_t *slot_out, uint64_t *off_out)
{
    uint64_t need = pxsi_arena_need(size);
    if (a->nfree == 0 || need > a->cap - a->used)
        return PXS_ERR_AGAIN;
    uint32_t p = a->rover;
    for (uint32_t i = 0; i <= a->nlive; i++) {
        if (place(a, p, need, slot_out, off_out))
            return PXS_OK;
        p = p == PXSI_NONE ? a->head : a->next[p];
    }
    return PXS_ERR_AGAIN;
}

int
pxsi_arena_alloc_lent(pxsi_arena_t *a, uint32_t *slot_out)
{
    if (a->nfree == 0)
        return PXS_ERR_AGAIN;
    uint32_t s = a->free_stack[--a->nfree];
    a->lent[s] = 1;
    a->off[s] = 0;
    a->len[s] = 0;
    a->nlive++;
    a->nlent++;
    if (s + 1 > a->hwm)
        a->hwm = s + 1;
    *slot_out = s;
    return PXS_OK;
}

static void
unlink_block(pxsi_arena_t *a, uint32_t s)
{
    if (a->lent[s]) {
        /* a lent buffer: no block in the address list */
        a->lent[s] = 0;
        a->nlent--;
        a->nlive--;
        return;
    }
    uint32_t p = a->prev[s], n = a->next[s];
    if (p == PXSI_NONE)
        a->head = n;
    else
        a->next[p] = n;
    if (n != PXSI_NONE)
        a->prev[n] = p;
    if (a->rover == s)
        a->rover = p;
    /* the next search starts at the lowest gap freed since the last
     * allocation: freed blocks are reused while hot, in address order,
     * before next-fit moves on into untouched arena */
    uint64_t at = p == PXSI_NONE ? 0 : a->off[p] + a->len[p];
    uint32_t r = a->rover;
    if (at < (r == PXSI_NONE ? 0 : a->off[r] + a->len[r]))
        a->rover = p;
    a->nlive--;
    a->used -= a->len[s];
    a->len[s] = 0;
}

void
pxsi_arena_free(pxsi_arena_t *a, uint32_t s)
{
    unlink_block(a, s);
    a->free_stack[a->nfree++] = s;
    if (a->nlive == 0) {
        a->rover = PXSI_NONE;
        a->hwm = 0; /* LIFO: the next slot handed out is the one just freed */
    }
}

void
pxsi_arena_retire(pxsi_arena_t *a, uint32_t s)
{
    unlink_block(a, s);
    a->nretired++;
    if (a->nlive == 0) {
        a->rover = PXSI_NONE;
        a->hwm = 0; /* alloc raises it again to the slot it hands out */
    }
}

void
pxsi_arena_gaps(const pxsi_arena_t *a, uint32_t *ngaps_out, uint64_t *largest_out)
{
    /* the gaps between consecutive live blocks, before the first and after
     * the last: O(live blocks); only for error details and tests */
    uint32_t ng = 0;
    uint64_t big = 0, at = 0;
    for (uint32_t b = a->head;; b = a->next[b]) {
        uint64_t end = b == PXSI_NONE ? a->cap : a->off[b];
        if (end > at) {
            ng++;
            if (end - at > big)
                big = end - at;
        }
        if (b == PXSI_NONE)
            break;
        at = a->off[b] + a->len[b];
    }
    if (ngaps_out)
        *ngaps_out = ng;
    if (largest_out)
        *largest_out = big;
}

int
pxsi_arena_full_detail(const pxsi_arena_t *a, int code, const char *subsys, uint64_t size,
                       double waited)
{
    uint32_t ng = 0;
    uint64_t big = 0;
    pxsi_arena_gaps(a, &ng, &big);
    if (a->nfree == 0)
        return pxsi_err(code, subsys,
                        "slot table full: %u objects live (max_objects %u) after %.3g s; "
                        "arena %llu of %llu B used",
                        a->nlive, a->nslots, waited, (unsigned long long)a->used,
                        (unsigned long long)a->cap);
    return pxsi_err(code, subsys,
                    "arena full: need %llu B, free %llu B in %u gap(s), largest free block "
                    "%llu B, %u objects live, capacity %llu B, after %.3g s (a put needs one "
                    "contiguous gap: see pxs_store_put)",
                    (unsigned long long)pxsi_arena_need(size),
                    (unsigned long long)(a->cap - a->used), ng, (unsigned long long)big,
                    a->nlive, (unsigned long long)a->cap, waited);
}

void *
pxsi_alloc_pages(size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, len ? len : 1) != 0)
        return NULL;
    return p;
}
