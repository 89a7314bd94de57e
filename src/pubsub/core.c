/* Transport-independent core of the event plane: declarations, routing,
 * publisher queues (batching, work-sharing groups, END), subscriber checks
 * and END accounting. The transports (mailbox.c, inproc.c) only move records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub/inline.h"
#include "pubsub/pubsub_int.h"
#include "pubsub/pubsub_stream.h"
#include "store/registry.h"
#include "util/util.h"

#define SUBSYS "pubsub"
#define DECL_MAGIC 0x50444331u /* "PDC1" */
/* work sharing: members probed per pass of a group flush (docs/DESIGN.md
 * "Scale model") */
#define PXSI_GROUP_PROBES 8

/* ---------------------------------------------------------------- records */
void
pxsi_rec_encode(unsigned char *rec, uint32_t topic, int32_t producer, uint64_t seq,
                uint64_t lseq, uint16_t flags, const pxs_proxy_t *proxy, const void *meta,
                uint16_t meta_len)
{
    pxsi_put_le32(rec + PXSI_REC_O_TOPIC, topic);
    pxsi_put_le32(rec + PXSI_REC_O_PROD, (uint32_t)producer);
    pxsi_put_le64(rec + PXSI_REC_O_SEQ, seq);
    pxsi_put_le64(rec + PXSI_REC_O_LSEQ, lseq);
    pxsi_put_le16(rec + PXSI_REC_O_FLAGS, flags);
    pxsi_put_le16(rec + PXSI_REC_O_MLEN, meta_len);
    pxsi_put_le32(rec + PXSI_REC_O_RSVD, 0);
    if (proxy)
        memcpy(rec + PXSI_REC_O_PROXY, proxy->bytes, PXS_PROXY_SIZE);
    else
        memset(rec + PXSI_REC_O_PROXY, 0, PXS_PROXY_SIZE);
    /* the whole field zeroed by fixed-size copies (plain vector stores),
     * then the metadata over it: a memset of the tail became a `rep stos`
     * (slow to start) on every record */
    static const unsigned char zero[64];
    _Static_assert(PXS_EVENT_META_MAX == 96, "metadata field: 64 + 32 bytes");
    memcpy(rec + PXSI_REC_O_META, zero, 64);
    memcpy(rec + PXSI_REC_O_META + 64, zero, 32);
    if (meta_len)
        memcpy(rec + PXSI_REC_O_META, meta, meta_len);
}

/* ---------------------------------------------------------------- declarations */
/* u32 magic, u32 slots, u32 n_pub, u32 n_sub, n_pub x u32 topic,
 * n_sub x (u32 topic, u8 group_len, group bytes) */
int
pxsi_decl_check(const pxs_bus_opts_t *o)
{
    if (o->n_publish && !o->publish)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "n_publish %zu with publish NULL", o->n_publish);
    if (o->n_subscribe && !o->subscribe)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "n_subscribe %zu with subscribe NULL",
                        o->n_subscribe);
    if (o->n_publish > 65536 || o->n_subscribe > 65536)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "too many topics declared");
    for (size_t i = 0; i < o->n_publish; i++)
        if (o->publish[i] == PXS_TOPIC_ALL)
            return pxsi_err(PXS_ERR_INVALID, SUBSYS, "PXS_TOPIC_ALL is not a topic");
    for (size_t i = 0; i < o->n_subscribe; i++) {
        const pxs_subscription_t *s = &o->subscribe[i];
        if (s->topic == PXS_TOPIC_ALL)
            return pxsi_err(PXS_ERR_INVALID, SUBSYS, "PXS_TOPIC_ALL is not a topic");
        size_t gl = s->group ? strlen(s->group) : 0;
        if (s->prefetch > PXSI_SLOTS_MAX)
            return pxsi_err(PXS_ERR_INVALID, SUBSYS, "topic %u: prefetch %u out of range 0..%u",
                            s->topic, s->prefetch, PXSI_SLOTS_MAX);
        if (gl > PXS_GROUP_NAME_MAX)
            return pxsi_err(PXS_ERR_INVALID, SUBSYS, "group name over %d characters",
                            PXS_GROUP_NAME_MAX);
        for (size_t j = 0; j < i; j++) {
            const pxs_subscription_t *t = &o->subscribe[j];
            if (t->topic != s->topic)
                continue;
            const char *a = s->group ? s->group : "", *b = t->group ? t->group : "";
            if (strcmp(a, b) != 0)
                return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                                "topic %u subscribed twice (plainly and/or in different groups)",
                                s->topic);
        }
    }
    return PXS_OK;
}

int
pxsi_decl_pack(const pxs_bus_opts_t *o, uint32_t slots, unsigned char **buf_out,
               size_t *len_out)
{
    size_t len = 16 + 4 * o->n_publish;
    for (size_t i = 0; i < o->n_subscribe; i++)
        len += 5 + (o->subscribe[i].group ? strlen(o->subscribe[i].group) : 0);
    unsigned char *b = malloc(len), *p = b;
    if (!b)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "declarations: %zu bytes", len);
    pxsi_put_le32(p, DECL_MAGIC);
    pxsi_put_le32(p + 4, slots);
    pxsi_put_le32(p + 8, (uint32_t)o->n_publish);
    pxsi_put_le32(p + 12, (uint32_t)o->n_subscribe);
    p += 16;
    for (size_t i = 0; i < o->n_publish; i++, p += 4)
        pxsi_put_le32(p, o->publish[i]);
    for (size_t i = 0; i < o->n_subscribe; i++) {
        size_t gl = o->subscribe[i].group ? strlen(o->subscribe[i].group) : 0;
        pxsi_put_le32(p, o->subscribe[i].topic);
        p[4] = (unsigned char)gl;
        if (gl)
            memcpy(p + 5, o->subscribe[i].group, gl);
        p += 5 + gl;
    }
    *buf_out = b;
    *len_out = len;
    return PXS_OK;
}

uint32_t
pxsi_decl_slots(const unsigned char *decl)
{
    return pxsi_get_le32(decl + 4);
}

/* ---------------------------------------------------------------- helpers */
static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int
ptopic_find(const struct pxsi_core *c, uint32_t id)
{
    int lo = 0, hi = c->n_ptopics - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c->ptopics[mid].id == id)
            return mid;
        if (c->ptopics[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int
stopic_find(const struct pxsi_core *c, uint32_t id)
{
    int lo = 0, hi = c->n_stopics - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c->stopics[mid].id == id)
            return mid;
        if (c->stopics[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* The longest record run (an inline event: head + continuations) allowed
 * to target r: with P ranks that publish, every one holding at most
 * rmax - 1 credits of r's ring between its appends, P * (rmax - 1) + 1 <= C
 * leaves one that can complete its run (docs/DESIGN.md, "Inline chunks"). */
static uint32_t
target_rmax(const struct pxsi_core *c, int r)
{
    uint32_t hard = 1 + PXSI_INLINE_CONTS(PXSI_INLINE_HARD_MAX);
    uint32_t cap = c->xops->capacity(c->x, r);
    if (!cap)
        return 1;
    uint32_t p = c->n_publishers > 0 ? (uint32_t)c->n_publishers : 1;
    uint32_t m = (cap - 1) / p + 1;
    return m < hard ? m : hard;
}

static struct pxsi_queue *
queue_new(int target, struct pxsi_group *g, uint32_t cap, uint32_t rmax)
{
    struct pxsi_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->target = target;
    q->group = g;
    q->cap = cap;
    q->rmax = rmax;
    q->room = cap > rmax ? cap : rmax;
    q->recs = malloc((size_t)q->room * PXSI_REC_SIZE);
    q->tidx = malloc((size_t)q->room * sizeof *q->tidx);
    if (!q->recs || !q->tidx) {
        free(q->recs);
        free(q->tidx);
        free(q);
        return NULL;
    }
    return q;
}

static int
add_queue(struct pxsi_core *c, struct pxsi_queue *q)
{
    struct pxsi_queue **nq = realloc(c->queues, (size_t)(c->n_queues + 1) * sizeof *nq);
    if (!nq)
        return PXS_ERR_NOMEM;
    c->queues = nq;
    c->queues[c->n_queues++] = q;
    q->owner = c;
    return PXS_OK;
}

/* The direct queue of rank r (NULL: not a destination): O(log n_direct). */
static struct pxsi_queue *
direct_of(const struct pxsi_core *c, int r)
{
    int lo = 0, hi = c->n_direct - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c->direct[mid]->target == r)
            return c->direct[mid];
        if (c->direct[mid]->target < r)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* Create rank r's direct queue if it has none, keeping c->direct sorted
 * (creation only: O(n_direct) per insertion). */
static int
direct_queue(struct pxsi_core *c, int r)
{
    if (direct_of(c, r))
        return PXS_OK;
    uint32_t cap = c->batch;
    uint32_t tcap = c->xops->capacity(c->x, r);
    if (tcap && cap > tcap)
        cap = tcap;
    struct pxsi_queue *q = queue_new(r, NULL, cap, target_rmax(c, r));
    if (!q)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "publisher queues");
    struct pxsi_queue **nd = realloc(c->direct, (size_t)(c->n_direct + 1) * sizeof *nd);
    if (nd)
        c->direct = nd;
    if (!nd || add_queue(c, q) != PXS_OK) {
        free(q->recs);
        free(q->tidx);
        free(q);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "publisher queues");
    }
    int i = c->n_direct++;
    while (i > 0 && c->direct[i - 1]->target > r) {
        c->direct[i] = c->direct[i - 1];
        i--;
    }
    c->direct[i] = q;
    return PXS_OK;
}

/* The destination entry of rank r for published topic pt: O(log n_dests). */
static struct pxsi_dest *
dest_of(const struct pxsi_ptopic *pt, int r)
{
    int lo = 0, hi = pt->n_dests - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (pt->dests[mid].rank == r)
            return &pt->dests[mid];
        if (pt->dests[mid].rank < r)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* The link of producer p on subscribed topic st (NULL: not a declared
 * producer): O(log n_producers). */
struct pxsi_link *
pxsi_core_link(const struct pxsi_stopic *st, int p)
{
    int lo = 0, hi = st->n_producers - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (st->links[mid].producer == p)
            return &st->links[mid];
        if (st->links[mid].producer < p)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

static int
cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- group heap */
/* Work-sharing member choice (docs/DESIGN.md "Scale model"): a binary
 * max-heap on (free credits last seen, then least recently probed). The best
 * member is heap[0]; probing it re-keys it (its credits are refreshed, its
 * stamp becomes the newest) and sifts it: O(log n) per probe. A failed probe
 * leaves it at 0 credits with the newest stamp, so the next probe of the same
 * pass takes another member and a pass never probes a member twice. Equal
 * credits rotate (least recently probed first), as the former rotating start
 * did. */
static int
gbetter(const struct pxsi_group *g, int a, int b)
{
    return g->known[a] > g->known[b] || (g->known[a] == g->known[b] && g->stamp[a] < g->stamp[b]);
}

static void
gswap(struct pxsi_group *g, int i, int j)
{
    int a = g->heap[i], b = g->heap[j];
    g->heap[i] = b;
    g->heap[j] = a;
    g->hpos[b] = i;
    g->hpos[a] = j;
}

/* restore the heap around member mi after its key changed */
static void
gfix(struct pxsi_group *g, int mi)
{
    int i = g->hpos[mi];
    while (i > 0 && gbetter(g, g->heap[i], g->heap[(i - 1) / 2])) {
        gswap(g, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        int l = 2 * i + 1, r = l + 1, b = i;
        if (l < g->n && gbetter(g, g->heap[l], g->heap[b]))
            b = l;
        if (r < g->n && gbetter(g, g->heap[r], g->heap[b]))
            b = r;
        if (b == i)
            break;
        gswap(g, i, b);
        i = b;
    }
}

/* Append x to v unless it is the last element: ranks are pushed in
 * increasing order, so that is the only possible duplicate (creation stays
 * O(declarations), not O(subscribers^2)). */
static int
int_push(int **v, int *n, int x)
{
    if (*n && (*v)[*n - 1] == x)
        return PXS_OK;
    int *nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
    if (!nv)
        return PXS_ERR_NOMEM;
    nv[(*n)++] = x;
    *v = nv;
    return PXS_OK;
}

/* Bytes of routing state this rank keeps (pxs_bus_stats routing_bytes):
 * O(its topics x their destinations/producers), not O(ranks). */
static uint64_t
routing_bytes(const struct pxsi_core *c)
{
    uint64_t b = (uint64_t)c->n_ptopics * sizeof *c->ptopics +
                 (uint64_t)c->n_stopics * sizeof *c->stopics +
                 (uint64_t)c->n_direct * sizeof *c->direct +
                 (uint64_t)c->n_queues * 2 * sizeof *c->queues; /* queues, dirty */
    for (int i = 0; i < c->n_queues; i++)
        b += sizeof *c->queues[i] +
             (uint64_t)c->queues[i]->cap * (PXSI_REC_SIZE + sizeof *c->queues[i]->tidx);
    for (int ti = 0; ti < c->n_ptopics; ti++) {
        const struct pxsi_ptopic *pt = &c->ptopics[ti];
        b += (uint64_t)pt->n_plain * (sizeof *pt->plain + sizeof *pt->plainq) +
             (uint64_t)pt->n_dests * sizeof *pt->dests +
             (uint64_t)pt->n_groups * sizeof *pt->groups;
        for (int gi = 0; gi < pt->n_groups; gi++)
            b += (uint64_t)pt->groups[gi].n *
                 (sizeof(int) * 3 + sizeof(uint32_t) + sizeof(uint64_t) * 2);
    }
    for (int j = 0; j < c->n_stopics; j++)
        b += (uint64_t)c->stopics[j].n_producers * sizeof *c->stopics[j].links;
    return b;
}

/* ---------------------------------------------------------------- logging */
/* Append "r1,r2,..." (at most a line's worth) to buf. */
static void
ranks_str(char *buf, size_t n, const int *r, int k)
{
    size_t o = strlen(buf);
    for (int i = 0; i < k && o + 16 < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%d", i ? "," : "", r[i]);
    if (k && o + 16 >= n)
        snprintf(buf + o, n - o, ",...");
}

/* PXS_LOG=debug at bus creation: what this rank publishes and where each
 * topic's events go, what it subscribes and from how many producers. */
static void
log_routing(const struct pxsi_core *c)
{
    char line[900];
    PXSI_DEBUG(SUBSYS, "routing: rank %d of %d publishes %d topic(s), subscribes %d topic(s)",
               c->rank, c->size, c->n_ptopics, c->n_stopics);
    for (int ti = 0; ti < c->n_ptopics; ti++) {
        const struct pxsi_ptopic *pt = &c->ptopics[ti];
        line[0] = '\0';
        ranks_str(line, sizeof line, pt->plain, pt->n_plain);
        for (int gi = 0; gi < pt->n_groups; gi++) {
            size_t o = strlen(line);
            snprintf(line + o, sizeof line - o, "; group '%s' members ", pt->groups[gi].name);
            ranks_str(line, sizeof line, pt->groups[gi].members, pt->groups[gi].n);
        }
        PXSI_DEBUG(SUBSYS, "routing: publish topic %u -> %d plain subscriber(s) [%s], %d group(s)",
                   pt->id, pt->n_plain, line, pt->n_groups);
    }
    for (int j = 0; j < c->n_stopics; j++) {
        const struct pxsi_stopic *st = &c->stopics[j];
        line[0] = '\0';
        for (int k = 0; k < st->n_producers; k++) {
            size_t o = strlen(line);
            if (o + 16 < sizeof line)
                snprintf(line + o, sizeof line - o, "%s%d", k ? "," : "", st->links[k].producer);
        }
        PXSI_DEBUG(SUBSYS, "routing: subscribe topic %u%s <- %d producer(s) [%s]%s", st->id,
                   st->is_group ? " (group member)" : "", st->n_producers, line,
                   st->n_producers == 0 ? ": nobody publishes it, ended from the start" : "");
    }
}

/* At most one line per second per group: events sent to each member so far. */
static void
log_group(struct pxsi_group *g)
{
    double now = pxsi_now();
    if (now - g->log_t < 1.0)
        return;
    g->log_t = now;
    char line[600] = "";
    size_t o = 0;
    for (int i = 0; i < g->n && o + 40 < sizeof line; i++)
        o += (size_t)snprintf(line + o, sizeof line - o, "%s%d:%llu", i ? " " : "",
                              g->members[i], (unsigned long long)g->sent[i]);
    PXSI_DEBUG(SUBSYS, "group '%s' topic %u: events sent per member (rank:count) %s", g->name,
               g->topic, line);
}

/* ---------------------------------------------------------------- init */
int
pxsi_core_init(struct pxsi_core *c, int rank, int size, unsigned char *const *decls,
               const pxs_bus_opts_t *o, const pxsi_xport_ops_t *xops, void *x)
/* o: only batch and send_timeout are read; topics come from decls[rank] */
{
    memset(c, 0, sizeof *c);
    c->rank = rank;
    c->size = size;
    c->xops = xops;
    c->x = x;
    c->batch = o->batch;
    c->send_timeout = o->send_timeout;
    c->export_wait = o->export_wait;
    int rc = PXS_ERR_NOMEM;

    /* my own declarations (from the blob: the caller's arrays may be gone) */
    const unsigned char *md = decls[rank];
    uint32_t mnp = pxsi_get_le32(md + 8), mns = pxsi_get_le32(md + 12);
    uint32_t *ids = malloc((mnp + 1) * sizeof *ids);
    if (!ids)
        goto fail;
    for (uint32_t i = 0; i < mnp; i++)
        ids[i] = pxsi_get_le32(md + 16 + 4 * (size_t)i);
    qsort(ids, mnp, sizeof *ids, cmp_u32);
    c->ptopics = calloc((size_t)mnp + 1, sizeof *c->ptopics);
    if (!c->ptopics) {
        free(ids);
        goto fail;
    }
    for (uint32_t i = 0; i < mnp; i++)
        if (i == 0 || ids[i] != ids[i - 1])
            c->ptopics[c->n_ptopics++].id = ids[i];
    free(ids);

    /* my subscribed topics: sorted, unique (conflicts were rejected) */
    c->stopics = calloc((size_t)mns + 1, sizeof *c->stopics);
    if (!c->stopics)
        goto fail;
    const unsigned char *sp = md + 16 + 4 * (size_t)mnp;
    for (uint32_t i = 0; i < mns; i++) {
        uint32_t t = pxsi_get_le32(sp);
        int grp = sp[4] != 0;
        sp += 5 + sp[4];
        int dup = 0;
        for (int j = 0; j < c->n_stopics; j++)
            dup |= c->stopics[j].id == t;
        if (dup)
            continue;
        c->stopics[c->n_stopics].id = t;
        c->stopics[c->n_stopics].is_group = grp;
        c->n_stopics++;
    }
    qsort(c->stopics, (size_t)c->n_stopics, sizeof *c->stopics, cmp_u32); /* id is first */
    /* ranks that publish (the inline run bound, target_rmax) */
    for (int r = 0; r < size; r++)
        c->n_publishers += pxsi_get_le32(decls[r] + 8) != 0;

    /* walk everyone's declarations (O(all declarations) in time, once);
     * what is kept is O(this rank's topics x their producers/destinations) */
    for (int r = 0; r < size; r++) {
        const unsigned char *p = decls[r];
        uint32_t np = pxsi_get_le32(p + 8), ns = pxsi_get_le32(p + 12);
        p += 16;
        for (uint32_t i = 0; i < np; i++, p += 4) {
            int s = stopic_find(c, pxsi_get_le32(p));
            if (s < 0)
                continue;
            struct pxsi_stopic *st = &c->stopics[s];
            /* ranks come in increasing order: a duplicate is the last one */
            if (st->n_producers && st->links[st->n_producers - 1].producer == r)
                continue;
            struct pxsi_link *nl =
                realloc(st->links, (size_t)(st->n_producers + 1) * sizeof *nl);
            if (!nl)
                goto fail;
            st->links = nl;
            memset(&nl[st->n_producers], 0, sizeof *nl);
            nl[st->n_producers++].producer = r;
        }
        for (uint32_t i = 0; i < ns; i++) {
            uint32_t t = pxsi_get_le32(p);
            size_t gl = p[4];
            char name[PXS_GROUP_NAME_MAX + 1];
            memcpy(name, p + 5, gl);
            name[gl] = '\0';
            p += 5 + gl;
            int ti = ptopic_find(c, t);
            if (ti < 0)
                continue;
            struct pxsi_ptopic *pt = &c->ptopics[ti];
            if (gl == 0) {
                if (int_push(&pt->plain, &pt->n_plain, r) != PXS_OK)
                    goto fail;
                continue;
            }
            /* a group is keyed by (topic, name) */
            int gi;
            for (gi = 0; gi < pt->n_groups; gi++)
                if (strcmp(pt->groups[gi].name, name) == 0)
                    break;
            if (gi == pt->n_groups) {
                struct pxsi_group *ng =
                    realloc(pt->groups, (size_t)(pt->n_groups + 1) * sizeof *ng);
                if (!ng)
                    goto fail;
                pt->groups = ng;
                memset(&ng[gi], 0, sizeof ng[gi]);
                memcpy(ng[gi].name, name, gl + 1);
                pt->n_groups++;
            }
            if (int_push(&pt->groups[gi].members, &pt->groups[gi].n, r) != PXS_OK)
                goto fail;
        }
    }

    /* topics no one publishes are over from the start */
    for (int j = 0; j < c->n_stopics; j++)
        if (c->stopics[j].n_producers == 0)
            c->n_stopics_ended++;

    /* queues: a direct one per destination rank (plain subscribers, and every
     * group member for END), one per group */
    for (int ti = 0; ti < c->n_ptopics; ti++) {
        struct pxsi_ptopic *pt = &c->ptopics[ti];
        /* destinations of the topic (plain and group members), sorted, each
         * with its link sequence */
        int nd = pt->n_plain;
        for (int gi = 0; gi < pt->n_groups; gi++)
            nd += pt->groups[gi].n;
        int *dr = malloc((size_t)(nd ? nd : 1) * sizeof *dr);
        pt->dests = calloc((size_t)(nd ? nd : 1), sizeof *pt->dests);
        pt->plainq = calloc((size_t)(pt->n_plain ? pt->n_plain : 1), sizeof *pt->plainq);
        if (!dr || !pt->dests || !pt->plainq) {
            free(dr);
            goto fail;
        }
        nd = 0;
        for (int i = 0; i < pt->n_plain; i++)
            dr[nd++] = pt->plain[i];
        for (int gi = 0; gi < pt->n_groups; gi++)
            for (int i = 0; i < pt->groups[gi].n; i++)
                dr[nd++] = pt->groups[gi].members[i];
        qsort(dr, (size_t)nd, sizeof *dr, cmp_int);
        for (int i = 0; i < nd; i++)
            if (i == 0 || dr[i] != dr[i - 1])
                pt->dests[pt->n_dests++].rank = dr[i];
        free(dr);
        for (int i = 0; i < pt->n_plain; i++)
            if ((rc = direct_queue(c, pt->plain[i])) != PXS_OK)
                goto fail_rc;
        for (int gi = 0; gi < pt->n_groups; gi++) {
            struct pxsi_group *g = &pt->groups[gi];
            for (int i = 0; i < g->n; i++)
                if ((rc = direct_queue(c, g->members[i])) != PXS_OK)
                    goto fail_rc;
            uint32_t cap = c->batch, rmax = UINT32_MAX;
            for (int i = 0; i < g->n; i++) {
                uint32_t m = target_rmax(c, g->members[i]);
                rmax = m < rmax ? m : rmax;
            }
            g->q = queue_new(-1, g, cap, rmax);
            if (!g->q || add_queue(c, g->q) != PXS_OK) {
                rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "group queues");
                goto fail_rc;
            }
            g->known = malloc((size_t)g->n * sizeof *g->known);
            g->stamp = malloc((size_t)g->n * sizeof *g->stamp);
            g->heap = malloc((size_t)g->n * sizeof *g->heap);
            g->hpos = malloc((size_t)g->n * sizeof *g->hpos);
            g->sent = calloc((size_t)g->n, sizeof *g->sent);
            g->topic = pt->id;
            if (!g->known || !g->stamp || !g->heap || !g->hpos || !g->sent) {
                rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "group table");
                goto fail_rc;
            }
            /* first picks spread over producers: member rank % n is the
             * least recently probed, then the ones after it */
            uint32_t first = (uint32_t)rank % (uint32_t)g->n;
            for (int i = 0; i < g->n; i++) {
                g->known[i] = c->xops->capacity(c->x, g->members[i]);
                g->stamp[i] = ((uint32_t)i + (uint32_t)g->n - first) % (uint32_t)g->n;
                g->heap[i] = i;
                g->hpos[i] = i;
            }
            g->clock = (uint64_t)g->n;
            for (int i = 0; i < g->n; i++)
                gfix(g, i);
        }
        for (int i = 0; i < pt->n_plain; i++)
            pt->plainq[i] = direct_of(c, pt->plain[i]);
        pt->dest0 = pt->n_plain ? dest_of(pt, pt->plain[0]) : NULL;
    }
    c->dirty = calloc((size_t)(c->n_queues ? c->n_queues : 1), sizeof *c->dirty);
    if (!c->dirty)
        goto fail;
    c->st.routing_bytes = routing_bytes(c);
    if (PXSI_LOG_ON(PXSI_LOG_DEBUG))
        log_routing(c);
    return PXS_OK;

fail:
    rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "routing table");
fail_rc:
    pxsi_core_fini(c);
    return rc;
}

void
pxsi_core_fini(struct pxsi_core *c)
{
    for (int i = 0; i < c->n_queues; i++) {
        free(c->queues[i]->recs);
        free(c->queues[i]->tidx);
        free(c->queues[i]);
    }
    free(c->queues);
    free(c->dirty);
    for (int ti = 0; c->ptopics && ti < c->n_ptopics; ti++) {
        free(c->ptopics[ti].plain);
        free(c->ptopics[ti].plainq);
        free(c->ptopics[ti].dests);
        for (int gi = 0; gi < c->ptopics[ti].n_groups; gi++) {
            free(c->ptopics[ti].groups[gi].members);
            free(c->ptopics[ti].groups[gi].known);
            free(c->ptopics[ti].groups[gi].stamp);
            free(c->ptopics[ti].groups[gi].heap);
            free(c->ptopics[ti].groups[gi].hpos);
            free(c->ptopics[ti].groups[gi].sent);
        }
        free(c->ptopics[ti].groups);
    }
    free(c->ptopics);
    for (int j = 0; c->stopics && j < c->n_stopics; j++)
        free(c->stopics[j].links);
    free(c->stopics);
    free(c->direct);
    free(c->ibuf);
    free(c->irun);
    memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- broken bus */
/* See docs/DESIGN.md, section "Broken bus". */
int
pxsi_core_check(struct pxsi_core *c)
{
    int st = atomic_load_explicit(&c->broken, memory_order_acquire);
    if (PXSI_LIKELY(st == 0))
        return PXS_OK;
    return pxsi_err(PXS_ERR_MPI, SUBSYS, "rank %d: the bus is broken: %s", c->rank,
                    st == 2 ? c->broken_detail : "(a failure is being recorded)");
}

int
pxsi_core_break(struct pxsi_core *c)
{
    int expect = 0;
    if (atomic_compare_exchange_strong(&c->broken, &expect, 1)) {
        snprintf(c->broken_detail, sizeof c->broken_detail, "%s", pxs_last_error_detail());
        atomic_store_explicit(&c->broken, 2, memory_order_release);
        PXSI_DEBUG(SUBSYS, "bus broken on rank %d: %s", c->rank, c->broken_detail);
        if (c->xops->poison)
            c->xops->poison(c->x);
    }
    return PXS_ERR_MPI;
}

/* rc of a step that moved records: PXS_ERR_MPI breaks the bus */
static int
xrc(struct pxsi_core *c, int rc)
{
    return rc == PXS_ERR_MPI ? pxsi_core_break(c) : rc;
}

/* ---------------------------------------------------------------- publisher */
/* Append the first n records of q at target (credits held): stamp link
 * sequence numbers, hand them to the transport, drop them from the queue. */
static int
queue_append(struct pxsi_core *c, struct pxsi_queue *q, int target, uint32_t n)
{
    struct pxsi_dest *d = NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (i == 0 || q->tidx[i] != q->tidx[i - 1]) /* a run of one topic: one look-up */
            d = dest_of(&c->ptopics[q->tidx[i]], target);
        pxsi_put_le64(q->recs + (size_t)i * PXSI_REC_SIZE + PXSI_REC_O_LSEQ, d->lseq++);
    }
    int rc = c->xops->append(c->x, target, q->recs, n);
    PXSI_TRACE(SUBSYS, "append %u record(s) to rank %d: %s", n, target, pxs_errname(rc));
    if (rc != PXS_OK) {
        /* not appended: give the link sequence numbers back, so that a retry
         * does not leave a gap the subscriber would report as corrupt */
        for (uint32_t i = 0; i < n; i++)
            dest_of(&c->ptopics[q->tidx[i]], target)->lseq--;
        return rc;
    }
    c->st.appends++;
    c->st.records_appended += n;
    for (uint32_t i = 0; q->heads && i < n; i++)
        q->heads -= (pxsi_get_le16(q->recs + (size_t)i * PXSI_REC_SIZE + PXSI_REC_O_FLAGS) &
                     PXSI_REC_F_INLINE) != 0;
    q->n -= n;
    if (q->n) {
        memmove(q->recs, q->recs + (size_t)n * PXSI_REC_SIZE, (size_t)q->n * PXSI_REC_SIZE);
        memmove(q->tidx, q->tidx + n, (size_t)q->n * sizeof *q->tidx);
    }
    return PXS_OK;
}

/* Records of the run that starts with record rec: 1, or an inline head
 * and its continuations. */
static uint32_t
run_len(const unsigned char *rec)
{
    if (!(pxsi_get_le16(rec + PXSI_REC_O_FLAGS) & PXSI_REC_F_INLINE))
        return 1;
    return 1 + PXSI_INLINE_CONTS(pxsi_get_le32(rec + PXSI_REC_O_RSVD));
}

/* The longest prefix of q made of whole runs with at most max_rec records,
 * at most max_ev events and at most max_cont continuation records: its
 * records (return) and events (*ev_out). A run is never split. */
static uint32_t
queue_prefix(const struct pxsi_queue *q, uint32_t max_rec, uint32_t max_ev, uint32_t max_cont,
             uint32_t *ev_out)
{
    uint32_t n = 0, ev = 0, cont = 0;
    if (q->heads == 0) { /* one record per run: none to walk */
        n = q->n < max_rec ? q->n : max_rec;
        n = n < max_ev ? n : max_ev;
        if (ev_out)
            *ev_out = n;
        return n;
    }
    while (n < q->n && ev < max_ev) {
        uint32_t k = run_len(q->recs + (size_t)n * PXSI_REC_SIZE);
        if (n + k > max_rec || cont + (k - 1) > max_cont)
            break;
        n += k;
        cont += k - 1;
        ev++;
    }
    if (ev_out)
        *ev_out = ev;
    return n;
}

static uint32_t
cap_at(struct pxsi_core *c, int target)
{
    uint32_t cap = c->xops->capacity(c->x, target);
    return cap ? cap : UINT32_MAX;
}

/* Deliver everything queued in q, waiting for credits up to timeout. For a
 * group, records go to the first member (from a rotating start) that has
 * credits, so a slow member (full mailbox) gets less. */
static int
queue_flush_(struct pxsi_core *c, struct pxsi_queue *q, double timeout, double *t0);

/* A backpressure episode: from the first pause of a flush (every target
 * full) to the end of that flush (delivered, timed out or failed). */
static int
queue_flush(struct pxsi_core *c, struct pxsi_queue *q, double timeout)
{
    double t0 = -1.0;
    int rc = queue_flush_(c, q, timeout, &t0);
    if (PXSI_UNLIKELY(t0 >= 0)) {
        double d = pxsi_now() - t0;
        c->st.bp_waits++;
        c->st.bp_seconds += d;
        PXSI_DEBUG(SUBSYS, "backpressure end: %s after %.6f s (%u record(s) still queued)",
                   rc == PXS_OK ? "delivered" : pxs_errname(rc), d, q->n);
    }
    return rc;
}

static int
queue_flush_(struct pxsi_core *c, struct pxsi_queue *q, double timeout, double *t0)
{
    /* the transport's progress hook: this rank's own window needs progress
     * too (docs/DESIGN.md, section "Back-off rules") */
    pxsi_backoff_t b;
    pxsi_backoff_init_mpi(&b, timeout, c->xops->progress, c->x);
    int blocked = -1;
    while (q->n > 0) {
        int moved = 0, rc;
        uint32_t got = 0;
        if (q->target >= 0) {
            /* credits for whole runs only; what is taken beyond the runs
             * that fit stays held for the next attempt (docs/DESIGN.md,
             * "Inline chunks") */
            int t = q->target;
            uint32_t left, want = queue_prefix(q, cap_at(c, t), UINT32_MAX, UINT32_MAX, NULL);
            if (want > q->held) {
                rc = c->xops->take_credits(c->x, t, want - q->held, 0, &got, &left);
                if (rc != PXS_OK)
                    return rc;
                q->held += got;
            }
            uint32_t n = queue_prefix(q, q->held, UINT32_MAX, UINT32_MAX, NULL);
            if (n) {
                if ((rc = queue_append(c, q, t, n)) != PXS_OK)
                    return rc;
                q->held -= n;
                moved = 1;
            } else {
                blocked = t;
            }
        } else {
            /* work sharing: the member with the most free credits last seen
             * (ties: the least recently probed), from the group's heap in
             * O(log n). A member needs a group (prefetch) credit per event
             * as well as mailbox credits: one that holds `prefetch` events
             * (queued or being worked on) is skipped, so a slow member gets
             * fewer events (docs/DESIGN.md "Prefetch"). Touching a member
             * refreshes its figure. A pass probes at most
             * PXSI_GROUP_PROBES members (every member in turn over
             * successive passes when all are full), so a wait's work per
             * pause does not grow with the group. Under software atomics
             * (osc ucx/pt2pt) this also avoids blocking on a member that is
             * not inside MPI while others have room. */
            struct pxsi_group *g = q->group;
            int probes = g->n < PXSI_GROUP_PROBES ? g->n : PXSI_GROUP_PROBES;
            c->st.group_picks++;
            for (int a = 0; a < probes && q->n > 0 && !moved; a++) {
                int best = g->heap[0];
                int m = g->members[best];
                uint32_t left = 0;
                c->st.group_probes++;
                /* an inline head first gets its continuation credits (plain
                 * mailbox credits, held until used); then one group credit
                 * per event, taken with its head's mailbox credit, for the
                 * events whose continuations are held: every group credit
                 * taken is used at once (docs/DESIGN.md, "Inline chunks") */
                struct pxsi_queue *dq = direct_of(c, m); /* holds m's credits */
                uint32_t cont0 = run_len(q->recs) - 1;
                if (cont0 > dq->held) {
                    rc = c->xops->take_credits(c->x, m, cont0 - dq->held, 0, &got, &left);
                    if (rc != PXS_OK)
                        return rc;
                    dq->held += got;
                }
                uint32_t ev = 0, cap = cap_at(c, m);
                (void)queue_prefix(q, cap, UINT32_MAX, dq->held, &ev);
                got = 0;
                if (ev) {
                    rc = c->xops->take_credits(c->x, m, ev, 1, &got, &left);
                    if (rc != PXS_OK)
                        return rc;
                    g->known[best] = left;
                    dq->held += got;
                }
                /* probed: to the back of its credit class (O(log n)) */
                g->stamp[best] = g->clock++;
                gfix(g, best);
                uint32_t n = got ? queue_prefix(q, dq->held, got, UINT32_MAX, NULL) : 0;
                if (n) {
                    if ((rc = queue_append(c, q, m, n)) != PXS_OK)
                        return rc;
                    dq->held -= n;
                    g->sent[best] += got;
                    if (PXSI_LOG_ON(PXSI_LOG_DEBUG))
                        log_group(g);
                    moved = 1;
                } else {
                    blocked = m;
                }
            }
        }
        if (moved)
            continue;
        /* an episode starts when a flush that may wait finds no room (a
         * non-blocking attempt, timeout 0, is none), even if its deadline
         * has already passed */
        if (PXSI_UNLIKELY(*t0 < 0) && timeout != 0) {
            *t0 = pxsi_now();
            PXSI_DEBUG(SUBSYS,
                       "backpressure start: mailbox of rank %d%s full, %u record(s) queued, "
                       "waiting up to %g s",
                       blocked, q->target < 0 ? " (and every other member of its group)" : "",
                       q->n, timeout);
        }
        if (pxsi_backoff_expired(&b))
            return pxsi_err(PXS_ERR_AGAIN, SUBSYS,
                            "mailbox of rank %d (or its group) full for %g s", blocked,
                            timeout);
        pxsi_backoff_pause(&b);
    }
    return PXS_OK;
}

/* Flush every queue that holds records: the non-empty ones are listed in
 * c->dirty (a queue joins at its first push), so a flush costs O(queues with
 * records), not O(destinations) (docs/DESIGN.md "Scale model"). The list
 * keeps the queues still holding records (after an error). */
static int
flush_all(struct pxsi_core *c, double timeout)
{
    int rc = PXS_OK, j = 0;
    for (int i = 0; i < c->n_dirty; i++) {
        struct pxsi_queue *q = c->dirty[i];
        if (rc == PXS_OK && q->n > 0)
            rc = queue_flush(c, q, timeout);
        if (q->n > 0)
            c->dirty[j++] = q;
        else
            q->dirty = 0;
    }
    c->n_dirty = j;
    return rc;
}

void
pxsi_core_drain_nowait(struct pxsi_core *c)
{
    if (pxsi_core_check(c) == PXS_OK)
        (void)xrc(c, flush_all(c, 0.0));
}

static inline void
queue_dirty(struct pxsi_queue *q)
{
    if (!q->dirty) { /* listed for flush_all (room: one entry per queue) */
        q->dirty = 1;
        q->owner->dirty[q->owner->n_dirty++] = q;
    }
}

static void
queue_push(struct pxsi_queue *q, const unsigned char *rec, uint32_t k, uint32_t tidx)
{
    queue_dirty(q);
    memcpy(q->recs + (size_t)q->n * PXSI_REC_SIZE, rec, (size_t)k * PXSI_REC_SIZE);
    for (uint32_t i = 0; i < k; i++) {
        q->heads += (pxsi_get_le16(rec + (size_t)i * PXSI_REC_SIZE + PXSI_REC_O_FLAGS) &
                     PXSI_REC_F_INLINE) != 0;
        q->tidx[q->n++] = tidx;
    }
}

/* Encode an inline event's run (head + continuations) into recs. */
static void
inline_encode(unsigned char *recs, uint32_t topic, int32_t producer, uint64_t seq,
              const unsigned char *data, uint32_t len, const void *meta, uint16_t meta_len)
{
    pxsi_rec_encode(recs, topic, producer, seq, 0, PXSI_REC_F_INLINE, NULL, meta, meta_len);
    pxsi_put_le32(recs + PXSI_REC_O_RSVD, len);
    uint32_t h = len < PXSI_INLINE_HEAD ? len : PXSI_INLINE_HEAD;
    if (h)
        memcpy(recs + PXSI_REC_O_PROXY, data, h);
    uint32_t k = PXSI_INLINE_CONTS(len);
    for (uint32_t i = 1; i <= k; i++) {
        unsigned char *r = recs + (size_t)i * PXSI_REC_SIZE;
        memset(r, 0, PXSI_REC_SIZE);
        pxsi_put_le32(r + PXSI_REC_O_TOPIC, topic);
        pxsi_put_le32(r + PXSI_REC_O_PROD, (uint32_t)producer);
        pxsi_put_le64(r + PXSI_REC_O_SEQ, seq);
        pxsi_put_le16(r + PXSI_REC_O_FLAGS, PXSI_REC_F_CONT);
        pxsi_put_le32(r + PXSI_REC_O_RSVD, i);
        size_t off = PXSI_INLINE_HEAD + (size_t)(i - 1) * PXSI_INLINE_CONT;
        size_t n = len - off < PXSI_INLINE_CONT ? len - off : PXSI_INLINE_CONT;
        memcpy(r + PXSI_REC_O_PROXY, data + off, n);
    }
}

/* Does a run of k records fit every destination queue of topic ti? */
static int
run_fits(const struct pxsi_ptopic *pt, uint32_t k, int *bad_out)
{
    for (int i = 0; i < pt->n_plain; i++)
        if (k > pt->plainq[i]->rmax) {
            *bad_out = pt->plain[i];
            return 0;
        }
    for (int gi = 0; gi < pt->n_groups; gi++)
        if (k > pt->groups[gi].q->rmax) {
            *bad_out = pt->groups[gi].members[0];
            return 0;
        }
    return 1;
}

/* The unbatched single-destination case (batch 1, one plain subscriber,
 * nothing queued; the common shape of a 1 -> 1 stream and of a latency-bound
 * caller): the event's k records (1, or an inline run) go from the scratch
 * records to the target's ring without a pass through the queue
 * (docs/DESIGN.md "Event path cost"). Every outcome is the one core_publish's
 * queue path gives: credits for the whole run missing (ring full; what was
 * taken stays held, as queue_flush keeps it) or a transport failure leave
 * the event queued and accepted (a failure breaks the bus), so the caller
 * sees PXS_OK either way. */
static int
publish_direct(struct pxsi_core *c, struct pxsi_ptopic *pt, int ti, uint32_t topic,
               const pxs_proxy_t *proxy, const void *data, uint32_t len, uint32_t k,
               const void *meta, size_t meta_len, uint64_t *seq_out)
{
    struct pxsi_queue *q = pt->plainq[0];
    int t = q->target;
    struct pxsi_dest *d = pt->dest0;
    uint64_t seq = pt->next_seq++;
    int rc = PXS_OK, appended = 0;
    unsigned char *slot;
    if (proxy && q->held == 0 && c->xops->slot && (slot = c->xops->slot(c->x, t)) != NULL) {
        /* node ring, sole writer: the credit is taken with the slot look-up
         * and the record is encoded in its ring slot */
        pxsi_rec_encode(slot, topic, c->rank, seq, d->lseq, 0, proxy, meta, (uint16_t)meta_len);
        c->xops->commit(c->x, t);
        d->lseq++;
        c->st.appends++;
        c->st.records_appended++;
        c->st.events_sent++;
        PXSI_TRACE(SUBSYS, "send topic %u seq %llu (in place at rank %d)", topic,
                   (unsigned long long)seq, t);
        if (seq_out)
            *seq_out = seq;
        return PXS_OK;
    }
    if (q->held < k) {
        uint32_t got = 0, left = 0;
        rc = c->xops->take_credits(c->x, t, k - q->held, 0, &got, &left);
        if (rc == PXS_OK)
            q->held += got;
    }
    unsigned char *recs = c->srec;
    if (proxy) {
        pxsi_rec_encode(recs, topic, c->rank, seq, d->lseq, 0, proxy, meta, (uint16_t)meta_len);
    } else {
        recs = c->irun;
        inline_encode(recs, topic, c->rank, seq, data, len, meta, (uint16_t)meta_len);
        for (uint32_t i = 0; i < k; i++)
            pxsi_put_le64(recs + (size_t)i * PXSI_REC_SIZE + PXSI_REC_O_LSEQ, d->lseq + i);
    }
    if (rc == PXS_OK && q->held >= k) {
        rc = c->xops->append(c->x, t, recs, k);
        PXSI_TRACE(SUBSYS, "append %u record(s) to rank %d: %s", k, t, pxs_errname(rc));
        if (rc == PXS_OK) {
            appended = 1;
            q->held -= k;
            d->lseq += k;
            c->st.appends++;
            c->st.records_appended += k;
        }
    }
    if (!appended) {
        /* not appended: queued (link seqs stamped again at its append);
         * credits taken stay held for it */
        queue_push(q, recs, k, (uint32_t)ti);
        if (rc != PXS_OK)
            (void)xrc(c, rc);
    }
    c->st.events_sent++;
    PXSI_TRACE(SUBSYS, "send topic %u seq %llu%s", topic, (unsigned long long)seq,
               proxy ? "" : " (inline)");
    if (seq_out)
        *seq_out = seq;
    return PXS_OK;
}

/* The queue path of core_publish for a proxy event to one plain subscriber
 * (batched, or records already queued): the same steps (room first, then
 * the record, then one non-blocking flush of a full queue), with the record
 * encoded at the queue's tail (no scratch record, no copy) and no loops
 * over destinations (docs/DESIGN.md "Event path cost"). */
static int
publish_queued1(struct pxsi_core *c, struct pxsi_ptopic *pt, int ti, uint32_t topic,
                const pxs_proxy_t *proxy, const void *meta, size_t meta_len, uint64_t *seq_out)
{
    struct pxsi_queue *q = pt->plainq[0];
    int rc;
    if ((q->n >= q->cap || q->n + 1 > q->room) &&
        (rc = queue_flush(c, q, c->send_timeout)) != PXS_OK)
        return xrc(c, rc);
    uint64_t seq = pt->next_seq++;
    queue_dirty(q);
    pxsi_rec_encode(q->recs + (size_t)q->n * PXSI_REC_SIZE, topic, c->rank, seq, 0, 0, proxy,
                    meta, (uint16_t)meta_len);
    q->tidx[q->n++] = (uint32_t)ti;
    /* accepted now: a failure of the automatic flush breaks the bus (see
     * core_publish) */
    if (q->n >= q->cap && (rc = queue_flush(c, q, 0.0)) != PXS_OK && rc != PXS_ERR_AGAIN)
        (void)xrc(c, rc);
    c->st.events_sent++;
    PXSI_TRACE(SUBSYS, "send topic %u seq %llu", topic, (unsigned long long)seq);
    if (seq_out)
        *seq_out = seq;
    return PXS_OK;
}

/* Publish one event: a proxy (data NULL) or an inline payload of len bytes. */
static int
core_publish(struct pxsi_core *c, uint32_t topic, const pxs_proxy_t *proxy, const void *data,
             uint32_t len, const void *meta, size_t meta_len, uint64_t *seq_out)
{
    int rc = pxsi_core_check(c);
    if (rc != PXS_OK)
        return rc;
    /* the topic sent last first (one compare for a caller that sends on
     * one topic), else the O(log n) search */
    int ti = c->pt_last;
    if (ti >= c->n_ptopics || c->ptopics[ti].id != topic) {
        if ((ti = ptopic_find(c, topic)) < 0)
            return pxsi_err(PXS_ERR_NOT_FOUND, SUBSYS, "topic %u was not declared as published",
                            topic);
        c->pt_last = ti;
    }
    struct pxsi_ptopic *pt = &c->ptopics[ti];
    if (pt->closed != PXSI_TOPIC_OPEN)
        return pxsi_err(PXS_ERR_CLOSED, SUBSYS, "topic %u is closed", topic);
    uint32_t k = 1;
    int bad = -1;
    if (!proxy) {
        if (len > PXSI_INLINE_HARD_MAX)
            return pxsi_err(PXS_ERR_TOO_BIG, SUBSYS, "inline payload of %u B (at most %u)", len,
                            PXSI_INLINE_HARD_MAX);
        k = 1 + PXSI_INLINE_CONTS(len);
        if (!run_fits(pt, k, &bad))
            return pxsi_err(PXS_ERR_TOO_BIG, SUBSYS,
                            "inline payload of %u B needs %u records, more than the bound at "
                            "rank %d (docs/DESIGN.md, \"Inline chunks\")",
                            len, k, bad);
        if (!c->irun && !(c->irun = malloc((size_t)(1 + PXSI_INLINE_CONTS(PXSI_INLINE_HARD_MAX)) *
                                           PXSI_REC_SIZE)))
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "inline record run");
    }
    if (pt->n_plain == 1 && pt->n_groups == 0 && pt->plainq[0]->n == 0 &&
        pt->plainq[0]->cap == 1)
        return publish_direct(c, pt, ti, topic, proxy, data, len, k, meta, meta_len, seq_out);
    if (proxy && pt->n_plain == 1 && pt->n_groups == 0)
        return publish_queued1(c, pt, ti, topic, proxy, meta, meta_len, seq_out);
    /* make room first, so that AGAIN (or MPI) means "this event was not
     * accepted" */
    for (int i = 0; i < pt->n_plain; i++) {
        struct pxsi_queue *q = pt->plainq[i];
        if ((q->n >= q->cap || q->n + k > q->room) &&
            (rc = queue_flush(c, q, c->send_timeout)) != PXS_OK)
            return xrc(c, rc);
    }
    for (int gi = 0; gi < pt->n_groups; gi++) {
        struct pxsi_queue *q = pt->groups[gi].q;
        if (pt->groups[gi].skip) /* an attached member takes it (xport_ucx.c) */
            continue;
        if ((q->n >= q->cap || q->n + k > q->room) &&
            (rc = queue_flush(c, q, c->send_timeout)) != PXS_OK)
            return xrc(c, rc);
    }
    uint64_t seq = pt->next_seq++;
    const unsigned char *recs = c->srec;
    if (proxy) {
        pxsi_rec_encode(c->srec, topic, c->rank, seq, 0, 0, proxy, meta, (uint16_t)meta_len);
    } else {
        inline_encode(c->irun, topic, c->rank, seq, data, len, meta, (uint16_t)meta_len);
        recs = c->irun;
    }
    for (int i = 0; i < pt->n_plain; i++)
        queue_push(pt->plainq[i], recs, k, (uint32_t)ti);
    for (int gi = 0; gi < pt->n_groups; gi++)
        if (!pt->groups[gi].skip)
            queue_push(pt->groups[gi].q, recs, k, (uint32_t)ti);
    /* automatic flush of full queues: one non-blocking attempt; what does not
     * fit stays queued (accepted) and the next send waits for room. The event
     * is accepted now: a failure here breaks the bus (the next call reports
     * it) but does not turn this send into an error, so a caller never
     * retries (duplicates) or frees (STALE) an event that was queued. */
    for (int i = 0; i < pt->n_plain; i++) {
        struct pxsi_queue *q = pt->plainq[i];
        if (q->n >= q->cap && (rc = queue_flush(c, q, 0.0)) != PXS_OK && rc != PXS_ERR_AGAIN) {
            (void)xrc(c, rc);
            break;
        }
    }
    for (int gi = 0; gi < pt->n_groups && pxsi_core_check(c) == PXS_OK; gi++) {
        struct pxsi_queue *q = pt->groups[gi].q;
        if (!pt->groups[gi].skip && q->n >= q->cap && (rc = queue_flush(c, q, 0.0)) != PXS_OK &&
            rc != PXS_ERR_AGAIN) {
            (void)xrc(c, rc);
            break;
        }
    }
    c->st.events_sent++;
    PXSI_TRACE(SUBSYS, "send topic %u seq %llu%s", topic, (unsigned long long)seq,
               proxy ? "" : " (inline)");
    if (seq_out)
        *seq_out = seq;
    return PXS_OK;
}

static int
core_send(void *state, uint32_t topic, const pxs_proxy_t *proxy, const void *meta,
          size_t meta_len, uint64_t *seq_out)
{
    return core_publish(state, topic, proxy, NULL, 0, meta, meta_len, seq_out);
}

static int
core_send_inline(void *state, uint32_t topic, const void *data, uint32_t len, const void *meta,
                 size_t meta_len, uint64_t *seq_out)
{
    return core_publish(state, topic, NULL, data, len, meta, meta_len, seq_out);
}

static int
core_flush(void *state)
{
    struct pxsi_core *c = state;
    int rc = pxsi_core_check(c);
    return rc != PXS_OK ? rc : xrc(c, flush_all(c, c->send_timeout));
}

static int
core_close_topic(void *state, uint32_t topic)
{
    struct pxsi_core *c = state;
    int rc = pxsi_core_check(c);
    if (rc != PXS_OK)
        return rc;
    int ti = ptopic_find(c, topic);
    if (ti < 0)
        return pxsi_err(PXS_ERR_NOT_FOUND, SUBSYS, "topic %u was not declared as published",
                        topic);
    struct pxsi_ptopic *pt = &c->ptopics[ti];
    /* CLOSING: END queued (a close that returned AGAIN; a retry or a flush
     * delivers it); CLOSED: END delivered */
    if (pt->closed == PXSI_TOPIC_CLOSED)
        return pxsi_err(PXS_ERR_CLOSED, SUBSYS, "topic %u is already closed", topic);
    if (pt->closed == PXSI_TOPIC_OPEN) {
        /* everything queued first: END must follow the topic's last event at
         * every destination, including group members that get events through
         * the group queue and END through their direct queue. AGAIN here:
         * the topic is not closed. */
        if ((rc = flush_all(c, c->send_timeout)) != PXS_OK)
            return xrc(c, rc);
        pt->closed = PXSI_TOPIC_CLOSING;
        pxsi_rec_encode(c->srec, topic, c->rank, pt->next_seq, 0, PXSI_REC_F_END, NULL, NULL,
                        0);
        uint64_t nend = (uint64_t)pt->n_plain;
        for (int i = 0; i < pt->n_plain; i++)
            queue_push(pt->plainq[i], c->srec, 1, (uint32_t)ti);
        for (int gi = 0; gi < pt->n_groups; gi++)
            for (int k = 0; k < pt->groups[gi].n; k++) {
                struct pxsi_queue *q = direct_of(c, pt->groups[gi].members[k]);
                int dup = 0; /* a member that is also a plain subscriber was handled */
                for (int i = 0; i < pt->n_plain; i++)
                    dup |= pt->plain[i] == pt->groups[gi].members[k];
                if (!dup) {
                    queue_push(q, c->srec, 1, (uint32_t)ti);
                    nend++;
                }
            }
        c->st.ends_sent += nend;
        PXSI_DEBUG(SUBSYS, "END of topic %u (after %llu event(s)) queued for %llu destination(s)",
                   topic, (unsigned long long)pt->next_seq, (unsigned long long)nend);
    }
    /* AGAIN here: END stays queued; sends on the topic already get CLOSED */
    if ((rc = flush_all(c, c->send_timeout)) != PXS_OK) {
        PXSI_DEBUG(SUBSYS, "END of topic %u not delivered yet (%s): it stays queued", topic,
                   pxs_errname(rc));
        return xrc(c, rc);
    }
    pt->closed = PXSI_TOPIC_CLOSED;
    PXSI_DEBUG(SUBSYS, "END of topic %u sent (delivered)", topic);
    return PXS_OK;
}

#ifdef PXS_HAVE_UCX
int
pxsi_core_group_requeue(struct pxsi_core *c, int ti, int gi, const unsigned char *rec)
{
    int rc = pxsi_core_check(c);
    if (rc != PXS_OK)
        return rc;
    struct pxsi_queue *q = c->ptopics[ti].groups[gi].q;
    if (q->n >= q->room && (rc = queue_flush(c, q, c->send_timeout)) != PXS_OK)
        return xrc(c, rc);
    queue_push(q, rec, 1, (uint32_t)ti);
    return PXS_OK;
}
#endif

const pxsi_pub_ops_t pxsi_core_pub_ops = {
    .send = core_send,
    .flush = core_flush,
    .close_topic = core_close_topic,
    .send_inline = core_send_inline,
};

/* ---------------------------------------------------------------- subscriber */
static int
corrupt(const struct pxsi_core *c, const char *why, uint32_t topic, int32_t prod, uint64_t a,
        uint64_t b)
{
    return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                    "rank %d: bad event record (%s): topic %u producer %d (%llu vs %llu)",
                    c->rank, why, topic, (int)prod, (unsigned long long)a,
                    (unsigned long long)b);
}

/* A bad record in core_recv: its ring slot (peek) is done with. */
static int
recv_bad(struct pxsi_core *c, int peeked, const char *why, uint32_t topic, int32_t prod,
         uint64_t a, uint64_t b)
{
    if (peeked)
        c->xops->peek_done(c->x);
    return corrupt(c, why, topic, prod, a, b);
}

/* An inline head passed the record checks: read its continuation records
 * (appended in the same run, so they are there or about to be visible),
 * check each against the head, reassemble the payload and keep it in this
 * process's inline table; proxy_out names it (docs/DESIGN.md, "Inline
 * chunks"). Any mismatch is PXS_ERR_CORRUPT. */
#define PXSI_INLINE_RUN_WAIT 10.0 /* s: a run's last sequence words landing */
static int
inline_gather(struct pxsi_core *c, const unsigned char *head, pxs_proxy_t *proxy_out)
{
    uint32_t topic = pxsi_get_le32(head + PXSI_REC_O_TOPIC);
    int32_t prod = (int32_t)pxsi_get_le32(head + PXSI_REC_O_PROD);
    uint64_t seq = pxsi_get_le64(head + PXSI_REC_O_SEQ);
    uint64_t lseq = pxsi_get_le64(head + PXSI_REC_O_LSEQ);
    uint32_t len = pxsi_get_le32(head + PXSI_REC_O_RSVD);
    if (!c->ibuf && !(c->ibuf = malloc(PXSI_INLINE_HARD_MAX)))
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "inline reassembly buffer");
    uint32_t h = len < PXSI_INLINE_HEAD ? len : PXSI_INLINE_HEAD;
    memcpy(c->ibuf, head + PXSI_REC_O_PROXY, h);
    uint32_t k = PXSI_INLINE_CONTS(len);
    unsigned char rec[PXSI_REC_SIZE];
    for (uint32_t i = 1; i <= k; i++) {
        int rc = c->xops->inbox_next(c->x, rec, PXSI_INLINE_RUN_WAIT);
        if (rc == PXS_TIMEOUT)
            return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                            "rank %d: inline event topic %u producer %d seq %llu: continuation "
                            "%u of %u missing after %g s",
                            c->rank, topic, (int)prod, (unsigned long long)seq, i, k,
                            PXSI_INLINE_RUN_WAIT);
        if (rc != PXS_OK)
            return xrc(c, rc);
        const char *why = NULL;
        if (pxsi_get_le16(rec + PXSI_REC_O_FLAGS) != PXSI_REC_F_CONT)
            why = "not a continuation record";
        else if (pxsi_get_le32(rec + PXSI_REC_O_TOPIC) != topic ||
                 pxsi_get_le32(rec + PXSI_REC_O_PROD) != (uint32_t)prod ||
                 pxsi_get_le64(rec + PXSI_REC_O_SEQ) != seq)
            why = "continuation of another event";
        else if (pxsi_get_le32(rec + PXSI_REC_O_RSVD) != i)
            why = "continuation index";
        else if (pxsi_get_le64(rec + PXSI_REC_O_LSEQ) != lseq + i)
            why = "continuation link sequence";
        else if (pxsi_get_le16(rec + PXSI_REC_O_MLEN) != 0)
            why = "continuation metadata length";
        if (why)
            return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                            "rank %d: bad inline record run (%s): topic %u producer %d seq %llu, "
                            "record %u of %u",
                            c->rank, why, topic, (int)prod, (unsigned long long)seq, i, k);
        size_t off = PXSI_INLINE_HEAD + (size_t)(i - 1) * PXSI_INLINE_CONT;
        size_t n = len - off < PXSI_INLINE_CONT ? len - off : PXSI_INLINE_CONT;
        memcpy(c->ibuf + off, rec + PXSI_REC_O_PROXY, n);
    }
    return pxsi_inline_put(c->ibuf, len, topic, prod, seq, proxy_out);
}

static int
core_recv(void *state, pxs_event_t *ev_out, double timeout)
{
    struct pxsi_core *c = state;
    int rc = pxsi_core_check(c);
    if (rc != PXS_OK)
        return rc;
    /* the group event returned last time is done with: its prefetch credit
     * goes back now (docs/DESIGN.md "Prefetch") */
    if (c->gowed) {
        if ((rc = c->xops->give_group(c->x, c->gowed)) != PXS_OK)
            return xrc(c, rc);
        c->gowed = 0;
    }
    double deadline = timeout > 0 ? pxsi_now() + timeout : timeout;
    for (;;) {
        if (c->n_stopics_ended == c->n_stopics) {
            memset(ev_out, 0, sizeof *ev_out);
            ev_out->topic = PXS_TOPIC_ALL;
            ev_out->producer = -1;
            return PXS_END;
        }
        double left = timeout;
        if (timeout > 0) {
            left = deadline - pxsi_now();
            if (left < 0)
                left = 0;
        }
        /* a plain node-ring record is read in its ring slot (peek: no
         * copy); anything else (inline, END) is copied out first, as
         * inbox_next does (docs/DESIGN.md "Event path cost") */
        const unsigned char *r = c->xops->peek ? c->xops->peek(c->x) : NULL;
        if (!r && c->xops->wait && timeout != 0) {
            /* nothing yet: wait for a record without taking it, then look
             * again, so that a record that lands in the node ring while
             * this rank waits is read in its slot too (a ping-pong's every
             * receive); a record of the MPI ring, or one whose turn is not
             * yet, goes through inbox_next below */
            if ((rc = c->xops->wait(c->x, left)) != PXS_OK)
                return xrc(c, rc);
            r = c->xops->peek(c->x);
        }
        int peeked = r != NULL;
        if (peeked && (pxsi_get_le16(r + PXSI_REC_O_FLAGS) & (PXSI_REC_F_INLINE | PXSI_REC_F_END))) {
            memcpy(c->rrec, r, PXSI_REC_SIZE);
            c->xops->peek_done(c->x);
            peeked = 0;
            r = c->rrec;
        } else if (!peeked) {
            r = c->rrec;
            rc = c->xops->inbox_next(c->x, c->rrec, left);
            if (rc != PXS_OK)
                return xrc(c, rc);
        }
        uint32_t topic = pxsi_get_le32(r + PXSI_REC_O_TOPIC);
        int32_t prod = (int32_t)pxsi_get_le32(r + PXSI_REC_O_PROD);
        uint64_t seq = pxsi_get_le64(r + PXSI_REC_O_SEQ);
        uint64_t lseq = pxsi_get_le64(r + PXSI_REC_O_LSEQ);
        uint16_t flags = pxsi_get_le16(r + PXSI_REC_O_FLAGS);
        uint16_t mlen = pxsi_get_le16(r + PXSI_REC_O_MLEN);
        /* the topic and link received on last first, else the O(log n)
         * searches (same answers) */
        int si = c->st_last;
        if (si >= c->n_stopics || c->stopics[si].id != topic) {
            if ((si = stopic_find(c, topic)) < 0)
                return recv_bad(c, peeked, "topic not subscribed", topic, prod, 0, 0);
            c->st_last = si;
        }
        struct pxsi_stopic *st = &c->stopics[si];
        struct pxsi_link *l = NULL;
        if (st->link_last < st->n_producers && st->links[st->link_last].producer == prod)
            l = &st->links[st->link_last];
        else if (prod >= 0 && prod < c->size && (l = pxsi_core_link(st, prod)) != NULL)
            st->link_last = (int)(l - st->links);
        if (!l)
            return recv_bad(c, peeked, "producer not a declared publisher", topic, prod, 0, 0);
        uint32_t rsvd = pxsi_get_le32(r + PXSI_REC_O_RSVD);
        if (peeked && (flags & (PXSI_REC_F_INLINE | PXSI_REC_F_END)))
            return recv_bad(c, peeked, "record changed while read", topic, prod, flags, 0);
        if (flags & ~PXSI_REC_F_MASK)
            return recv_bad(c, peeked, "unknown flags", topic, prod, flags, 0);
        if (flags & PXSI_REC_F_CONT)
            return recv_bad(c, peeked, "inline continuation record without its head", topic, prod, seq,
                           rsvd);
        if ((flags & PXSI_REC_F_END) && (flags & PXSI_REC_F_INLINE))
            return recv_bad(c, peeked, "END flagged inline", topic, prod, flags, 0);
        if (!(flags & PXSI_REC_F_INLINE) && rsvd != 0)
            return recv_bad(c, peeked, "reserved field not 0", topic, prod, rsvd, 0);
        if ((flags & PXSI_REC_F_INLINE) && rsvd > PXSI_INLINE_HARD_MAX)
            return recv_bad(c, peeked, "inline payload length", topic, prod, rsvd, PXSI_INLINE_HARD_MAX);
        if (mlen > PXS_EVENT_META_MAX)
            return recv_bad(c, peeked, "metadata length", topic, prod, mlen, PXS_EVENT_META_MAX);
        if (l->ended)
            return recv_bad(c, peeked, "record after END", topic, prod, seq, 0);
        if (c->join_late && l->lseq_next == 0 && lseq == 0)
            l->seq_next = seq; /* attached job: the stream starts where it registered */
        if (lseq != l->lseq_next)
            return recv_bad(c, peeked, "link sequence gap", topic, prod, lseq, l->lseq_next);
        /* a group link's events increase, except in an attached job: there
         * events a detached member gave back come again, older than the
         * ones already routed here (docs/DESIGN.md "Events across jobs");
         * the link sequence still shows any loss */
        if (st->is_group ? seq < l->seq_next && !c->join_late && !c->group_redo
                         : seq != l->seq_next)
            return recv_bad(c, peeked, "sequence gap", topic, prod, seq, l->seq_next);
        if (flags & PXSI_REC_F_INLINE) {
            if ((rc = inline_gather(c, r, &ev_out->proxy)) != PXS_OK)
                return rc;
            l->lseq_next += PXSI_INLINE_CONTS(rsvd);
        }
        l->lseq_next++;
        if (seq + 1 > l->seq_next || !st->is_group)
            l->seq_next = seq + 1;
        if (flags & PXSI_REC_F_END) {
            l->ended = 1;
            c->st.ends_received++;
            PXSI_DEBUG(SUBSYS, "END received: topic %u from producer %d (%d of %d producer(s) ended)",
                       topic, (int)prod, st->n_ended + 1, st->n_producers);
            if (++st->n_ended < st->n_producers)
                continue; /* one producer of several: keep going */
            c->n_stopics_ended++;
            PXSI_DEBUG(SUBSYS, "topic %u ended (%d of %d subscribed topic(s) ended)", topic,
                       c->n_stopics_ended, c->n_stopics);
            memset(ev_out, 0, sizeof *ev_out);
            ev_out->topic = topic;
            ev_out->producer = prod;
            ev_out->seq = seq;
            return PXS_END;
        }
        if (!(flags & PXSI_REC_F_INLINE))
            memcpy(ev_out->proxy.bytes, r + PXSI_REC_O_PROXY, PXS_PROXY_SIZE);
        ev_out->topic = topic;
        ev_out->producer = prod;
        ev_out->seq = seq;
        ev_out->meta_len = mlen;
        ev_out->reserved_ = 0;
        memcpy(ev_out->meta, r + PXSI_REC_O_META, PXS_EVENT_META_MAX);
        if (peeked)
            c->xops->peek_done(c->x); /* read: the slot may go back */
        if (st->is_group)
            c->gowed++; /* in flight until the next call */
        c->st.events_received++;
        PXSI_TRACE(SUBSYS, "recv topic %u from producer %d seq %llu", topic, (int)prod,
                   (unsigned long long)seq);
        return PXS_OK;
    }
}

const pxsi_sub_ops_t pxsi_core_sub_ops = {
    .recv = core_recv,
};

/* ---------------------------------------------------------------- stream accessors */
/* For the stream layer (src/stream): what the publisher declared, and the
 * fan-out of a topic. Both transports keep a struct pxsi_core as publisher
 * state: the mailbox directly, the in-process bus once every participant has
 * joined (pxsi_inproc_pub_core waits for that, up to send_timeout). */
static int
pub_core(pxs_publisher_t *pub, struct pxsi_core **out)
{
    if (!pub || pub->magic != PXSI_MAGIC_PUB)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "not a publisher handle");
    if (pub->ops == &pxsi_core_pub_ops) {
        *out = pub->state;
        return PXS_OK;
    }
#ifdef PXS_HAVE_UCX
    if (pub->ops == &pxsi_xexp_pub_ops) { /* an exported bus (xport_ucx.c) */
        *out = pxsi_xexp_core(pub->state);
        return PXS_OK;
    }
#endif
    return pxsi_inproc_pub_core(pub, out);
}

int
pxsi_publisher_topic(pxs_publisher_t *pub, size_t i, uint32_t *id_out, size_t *n_out)
{
    struct pxsi_core *c;
    int rc = pub_core(pub, &c);
    if (rc != PXS_OK)
        return rc;
    if (n_out)
        *n_out = (size_t)c->n_ptopics;
    if (i < (size_t)c->n_ptopics && id_out)
        *id_out = c->ptopics[i].id;
    return PXS_OK;
}

int
pxsi_publisher_rank(pxs_publisher_t *pub, int *rank_out)
{
    struct pxsi_core *c;
    int rc = pub_core(pub, &c);
    if (rc != PXS_OK)
        return rc;
    *rank_out = c->rank;
    return PXS_OK;
}

int
pxsi_publisher_inline_fits(pxs_publisher_t *pub, uint32_t topic, size_t len, int *ok_out)
{
    struct pxsi_core *c;
    int rc = pub_core(pub, &c);
    if (rc != PXS_OK)
        return rc;
    int ti = ptopic_find(c, topic);
    if (ti < 0)
        return pxsi_err(PXS_ERR_NOT_FOUND, SUBSYS, "topic %u was not declared as published",
                        topic);
    int bad;
    *ok_out = len <= PXSI_INLINE_HARD_MAX &&
              run_fits(&c->ptopics[ti], 1 + PXSI_INLINE_CONTS((uint32_t)len), &bad);
    return PXS_OK;
}

int
pxsi_publisher_fanout(pxs_publisher_t *pub, uint32_t topic, uint32_t *n_out, int *fixed_out)
{
    struct pxsi_core *c;
    int rc = pub_core(pub, &c);
    if (rc != PXS_OK)
        return rc;
    int ti = ptopic_find(c, topic);
    if (ti < 0)
        return pxsi_err(PXS_ERR_NOT_FOUND, SUBSYS, "topic %u was not declared as published",
                        topic);
    *n_out = (uint32_t)c->ptopics[ti].n_plain + (uint32_t)c->ptopics[ti].n_groups;
    *fixed_out = 1;
#ifdef PXS_HAVE_UCX
    if (pub->ops == &pxsi_xexp_pub_ops) {
        *n_out += pxsi_xexp_fanout(pub->state, ti);
        *fixed_out = 0;
    }
#endif
    return PXS_OK;
}

/* Bus destroy: the events still queued are discarded; give their objects
 * back to their owner's store if it is a live store of this process (one
 * budget unit per discarded copy, see pxsi_store_giveback). */
void
pxsi_core_giveback(struct pxsi_core *c)
{
    for (int i = 0; i < c->n_queues; i++) {
        struct pxsi_queue *q = c->queues[i];
        for (uint32_t k = 0; k < q->n; k++) {
            const unsigned char *r = q->recs + (size_t)k * PXSI_REC_SIZE;
            /* END and inline records name no stored object */
            if (pxsi_get_le16(r + PXSI_REC_O_FLAGS) &
                (PXSI_REC_F_END | PXSI_REC_F_INLINE | PXSI_REC_F_CONT))
                continue;
            pxs_proxy_t p;
            memcpy(p.bytes, r + PXSI_REC_O_PROXY, PXS_PROXY_SIZE);
            (void)pxsi_store_giveback(&p);
        }
    }
}

/* ---------------------------------------------------------------- stats */
void
pxsi_core_stats(const struct pxsi_core *c, pxs_bus_stats_t *out)
{
    out->broken = atomic_load_explicit(&c->broken, memory_order_acquire) != 0;
    out->events_sent = c->st.events_sent;
    out->records_appended = c->st.records_appended;
    out->appends = c->st.appends;
    out->ends_sent = c->st.ends_sent;
    out->backpressure_waits = c->st.bp_waits;
    out->backpressure_seconds = c->st.bp_seconds;
    out->events_received = c->st.events_received;
    out->ends_received = c->st.ends_received;
    out->depth_hwm = c->st.depth_hwm;
    out->rma_atomics = c->st.atomics;
    out->rma_flushes = c->st.flushes;
    out->rma_bytes = c->st.bytes_put;
    out->group_picks = c->st.group_picks;
    out->group_probes = c->st.group_probes;
    out->sub_rma_atomics = c->st.sub_atomics;
    out->routing_bytes = c->st.routing_bytes;
    out->topics_published = (uint32_t)c->n_ptopics;
    out->topics_subscribed = (uint32_t)c->n_stopics;
    out->topics_ended = (uint32_t)c->n_stopics_ended;
    out->topics_closed = 0;
    out->n_groups = 0;
    for (int ti = 0; ti < c->n_ptopics; ti++) {
        const struct pxsi_ptopic *pt = &c->ptopics[ti];
        out->topics_closed += pt->closed != PXSI_TOPIC_OPEN;
        for (int gi = 0; gi < pt->n_groups && out->n_groups < PXS_STATS_GROUPS_MAX; gi++) {
            const struct pxsi_group *g = &pt->groups[gi];
            uint32_t k = out->n_groups++;
            out->group_topic[k] = pt->id;
            out->group_members[k] = (uint32_t)g->n;
            for (int i = 0; i < g->n && i < PXS_STATS_MEMBERS_MAX; i++) {
                out->group_rank[k][i] = g->members[i];
                out->group_sent[k][i] = g->sent[i];
            }
        }
    }
}
