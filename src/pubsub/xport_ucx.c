/* UCX event transport: events across jobs (pxs_export of a bus, pxs_attach
 * with subscriptions; public: proxystream/attach.h). See docs/DESIGN.md,
 * section "Export and attach", subsection "Events across jobs".
 *
 * It borrows the UCX context, worker and endpoints of the UCX store the bus
 * is exported or attached with (connectors/ucx_int.h): one worker per
 * process and side, no thread of its own.
 *
 * ATTACHED MAILBOX (one per attaching rank with subscriptions; ucp_mem_map,
 * remote read/write: it holds nothing but these words and records):
 *     0  u64 tail ticket  (exporting producers: fetch-add +n)
 *     8  i64 credits      (producers: fetch-add -k; the owner gives back
 *                          with fetch-add +k through an endpoint to itself)
 *    16  u64 detach acks  (exporting ranks: fetch-add +1 once they stopped
 *                          routing here; the owner reads with fetch-add 0)
 *    24  i64 group credits (prefetch: group events in flight here; taken
 *                          like credits, given back by the owner when it
 *                          is done with one: docs/DESIGN.md "Prefetch")
 *    64  u64 seq[S]       (slot i holds ticket t when seq[i] == t + 1;
 *                          written by producers' puts, read by the owner)
 *    64 + 8 S: records[S][PXSI_REC_SIZE]
 * One kind of access per word: the atomic words only ever see UCX atomics
 * (the owner's through its self endpoint), the sequence words only puts
 * (and the owner's loads). Append of n records (credits held): fetch-add
 * the tail, put the records (two puts at the wrap), flush the endpoint,
 * put the n sequence words, flush. The flush between records and sequence
 * words orders them; credits first, so a ticket's slot is always free.
 *
 * REGISTRATION AREA (one per exporting rank; ucp_mem_map, remote
 * read/write, nothing else in it):
 *     64  u64 claim[PXSI_XBUS_REGS]  (registrants only: compare-and-swap
 *                                     freed -> freed + 1 claims a free slot)
 *   1088  u64 freed[PXSI_XBUS_REGS]  (the owner only: plain release stores,
 *                                     occupancies over; registrants get it)
 *   4096  PXSI_XBUS_REGS slots of XR_SLOT_SIZE bytes (layout: XS_* below)
 * Slot s is free when claim[s] == freed[s]; its next occupant has the
 * generation freed[s] + 1, whose low 32 bits every state word carries
 * (XS_STATE_OF): the owner ignores a state word of another generation, so
 * a stale registrant (detached, refused, or dropped while alive) never acts
 * on a reused slot. The owner frees a slot (zeroes it, then freed[s]++) once
 * its occupant can write no more: after its XS_RET, or when UCX declared
 * its endpoint failed (peer error callback: a dead job).
 * A registrant puts its slot's body, flushes, then puts the state word
 * (XS_ON); at detach it puts XS_OFF. The exporting producer polls the state
 * words inside its own library calls (send, flush, close; and while it
 * waits for credits), checks the attach token of every registration
 * (refused and logged without printing the token when wrong), connects to
 * the registrant and routes to it; on XS_OFF it stops, acknowledges with a
 * fetch-add on the registrant's ack word and never writes there again. The
 * registrant then puts the group events unread in its mailbox into the
 * slot's second half (XS_RETN, XS_RECS) and the state XS_RET; the producer
 * hands them to another member of their group (orphans_push). */
#ifdef PXS_HAVE_UCX

#include <stdatomic.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucp/api/ucp.h>

#include "proxystream/attach.h"
#include "pubsub/pubsub_int.h"
#include "store/connectors/ucx_int.h"
#include "util/util.h"

#define SUBSYS "xbus"

#define XM_TAIL 0
#define XM_CRED 8
#define XM_ACK  16
#define XM_GCRED 24
#define XM_SEQ  64
#define XM_SIZE(S) ((size_t)XM_SEQ + (size_t)(S) * (8 + PXSI_REC_SIZE))

#define XR_CLAIM     64
#define XR_FREED     (XR_CLAIM + 8 * PXSI_XBUS_REGS)
#define XR_HDR       4096
#define XR_SLOT_SIZE 8192
#define XR_OFF_SLOT  UINT64_MAX /* freed[s] of a slot not offered (test hook) */
#define XS_BODY  4096 /* the registration body: bytes 0..XS_BODY of a slot */
#define XS_STATE 0  /* u64 XS_STATE_OF(XS_ON / XS_OFF / XS_RET, generation); 0 empty */
#define XS_TOKEN 8  /* u64 attach token */
#define XS_JOB   16 /* u64 attaching job id (random) */
#define XS_JRANK 24 /* u32 rank in the attaching job, u32 its size */
#define XS_SLOTS 32 /* u32 mailbox slots, u32 subscriptions */
#define XS_MBOX  40 /* u64 mailbox address */
#define XS_ALEN  48 /* u32 worker address length, u32 mailbox key length */
#define XS_SUBS  56 /* subscriptions: u32 topic, u8 group length, char[31] */
#define XS_SUB_SIZE 36
#define XS_VAR   (XS_SUBS + PXSI_XBUS_SUBS_MAX * XS_SUB_SIZE) /* address, key */
#define XS_RETN  XS_BODY        /* u64 group records given back at detach */
/* u64 group events of this producer the member is done with (the member's
 * puts; read by the producer when the member died) */
#define XS_DONE  (XS_BODY + 8)
#define XG_RING  32 /* group records kept per attached member (>= XS_RET_MAX) */
#define XS_RECS  (XS_BODY + 64) /* ... and the records */
#define XS_RET_MAX ((XR_SLOT_SIZE - XS_RECS) / PXSI_REC_SIZE)
#define XS_ON  0x4f4e4f4eu
#define XS_OFF 0x4f46464fu
#define XS_RET 0x52455452u /* detached, XS_RETN/XS_RECS written */
#define XS_STATE_OF(tag, gen) (((uint64_t)(tag) << 32) | (uint32_t)(gen))
#define XR_AREA ((size_t)XR_HDR + (size_t)PXSI_XBUS_REGS * XR_SLOT_SIZE)
_Static_assert(XS_VAR < XS_BODY && XS_RET_MAX >= 16, "registration slot layout");
_Static_assert(XR_FREED + 8 * PXSI_XBUS_REGS <= XR_HDR, "registration area header");

/* ================================================================ helpers */
static ucs_status_ptr_t
x_amo(ucp_ep_h ep, ucp_atomic_op_t op, const uint64_t *val, uint64_t *res, uint64_t raddr,
      ucp_rkey_h rk)
{
    ucp_request_param_t p;
    memset(&p, 0, sizeof p);
    p.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE | UCP_OP_ATTR_FIELD_REPLY_BUFFER;
    p.datatype = ucp_dt_make_contig(sizeof(uint64_t));
    p.reply_buffer = res;
    if (!ep) /* force-closed after a timeout */
        return UCS_STATUS_PTR(UCS_ERR_NOT_CONNECTED);
    return ucp_atomic_op_nbx(ep, op, val, 1, raddr, rk, &p);
}

static ucs_status_ptr_t
x_put(ucp_ep_h ep, const void *buf, size_t len, uint64_t raddr, ucp_rkey_h rk)
{
    ucp_request_param_t p;
    memset(&p, 0, sizeof p);
    if (!ep) /* force-closed after a timeout */
        return UCS_STATUS_PTR(UCS_ERR_NOT_CONNECTED);
    return ucp_put_nbx(ep, buf, len, raddr, rk, &p);
}

static ucs_status_ptr_t
x_get(ucp_ep_h ep, void *buf, size_t len, uint64_t raddr, ucp_rkey_h rk)
{
    ucp_request_param_t p;
    memset(&p, 0, sizeof p);
    if (!ep) /* force-closed after a timeout */
        return UCS_STATUS_PTR(UCS_ERR_NOT_CONNECTED);
    return ucp_get_nbx(ep, buf, len, raddr, rk, &p);
}

static ucs_status_ptr_t
x_flush(ucp_ep_h ep)
{
    ucp_request_param_t p;
    memset(&p, 0, sizeof p);
    if (!ep) /* force-closed after a timeout */
        return UCS_STATUS_PTR(UCS_ERR_NOT_CONNECTED);
    return ucp_ep_flush_nbx(ep, &p);
}

/* ================================================================ exporting side */
struct xreg {
    int slot;
    uint64_t job;
    uint32_t jrank, jsize, S;
    uint32_t n_subs;
    uint32_t topic[PXSI_XBUS_SUBS_MAX];
    char group[PXSI_XBUS_SUBS_MAX][PXS_GROUP_NAME_MAX + 1];
    ucp_ep_h ep;
    ucs_status_t err;
    ucp_rkey_h rk;
    uint64_t mbox;
    uint64_t *lseq;   /* [n_ptopics] next link seq */
    unsigned char *ended; /* [n_ptopics] END sent */
    int64_t held;     /* credits held */
    uint64_t buf[2];  /* atomic operand / result */
    uint64_t *seqbuf; /* [S] */
    /* the last XG_RING group events sent here (topic index, record): what
     * is delivered again if it dies (dead_member) */
    uint64_t gsent;
    int *ring_ti;
    unsigned char *ring;
};

struct xexp {
    pxs_bus_t *bus;
    struct pxsi_core *core;
    const pxsi_pub_ops_t *inner_ops;
    void *inner_state;
    int (*inner_destroy)(pxs_bus_t *bus);
    pxsi_ucx_parts_t up;
    void *store_st;
    ucp_mem_h mh;
    unsigned char *area; /* mmap'd pages, XR_AREA bytes */
    uint64_t token;
    uint32_t S; /* attach mailbox slots asked of registrants */
    uint32_t export_wait;
    unsigned char seen[PXSI_XBUS_REGS]; /* 0 new, 1 live, 2 over, 3 left: returns due */
    uint64_t freed[PXSI_XBUS_REGS];     /* occupancies over (published at XR_FREED) */
    uint64_t reused;                    /* slots freed for another registrant */
    struct xreg *regs[PXSI_XBUS_REGS];
    struct xreg *gone[PXSI_XBUS_REGS]; /* seen 3: its subscriptions, no endpoint */
    /* group events a detached member gave back, waiting for another member
     * (FIFO; at most XS_RET_MAX per registration) */
    struct xorph {
        int ti;
        char group[PXS_GROUP_NAME_MAX + 1];
        unsigned char rec[PXSI_REC_SIZE];
    } *orph;
    size_t n_orph, cap_orph;
    uint64_t returned, redelivered;
    uint64_t dead, dead_redo, dead_lost; /* members that died; their events again / lost */
    uint32_t rr;
    uint32_t mix_turn; /* mixed groups: local members' turn when odd */
    int hold; /* pxsi_xexp_fanout counted: accept nothing until the send */
    uint64_t refused, accepted, detached;
    unsigned char rec[PXSI_REC_SIZE];
};

static int
pt_find(const struct pxsi_core *c, uint32_t topic)
{
    int lo = 0, hi = c->n_ptopics;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (c->ptopics[mid].id < topic)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->n_ptopics && c->ptopics[lo].id == topic ? lo : -1;
}

/* the subscription index of reg r on topic, or -1 */
static int
reg_sub(const struct xreg *r, uint32_t topic)
{
    for (uint32_t i = 0; i < r->n_subs; i++)
        if (r->topic[i] == topic)
            return (int)i;
    return -1;
}

/* The local group of topic index ti named g (a group mixing members of
 * both jobs), or -1. */
static int
local_group(const struct pxsi_core *c, int ti, const char *g)
{
    const struct pxsi_ptopic *pt = &c->ptopics[ti];
    for (int gi = 0; gi < pt->n_groups; gi++)
        if (strcmp(pt->groups[gi].name, g) == 0)
            return gi;
    return -1;
}

/* A group event appended at r: keep a copy (its last XG_RING ones). */
static void
ring_keep(struct xreg *r, int ti, const unsigned char *rec)
{
    if (!r->ring && (!(r->ring = malloc((size_t)XG_RING * PXSI_REC_SIZE)) ||
                     !(r->ring_ti = malloc(XG_RING * sizeof *r->ring_ti)))) {
        free(r->ring);
        r->ring = NULL;
        r->gsent++; /* counted: lost if it dies */
        return;
    }
    uint32_t k = (uint32_t)(r->gsent % XG_RING);
    memcpy(r->ring + (size_t)k * PXSI_REC_SIZE, rec, PXSI_REC_SIZE);
    r->ring_ti[k] = ti;
    r->gsent++;
}

static void
reg_free(struct xexp *x, struct xreg *r)
{
    if (!r)
        return;
    if (r->rk)
        ucp_rkey_destroy(r->rk);
    pxsi_ucx_ep_close(x->up.w, r->ep);
    free(r->lseq);
    free(r->ended);
    free(r->seqbuf);
    free(r->ring_ti);
    free(r->ring);
    free(r);
}

/* Slot s's occupant can write no more: zero the slot, then publish it free
 * for the next registrant (generation freed + 1). */
static void
slot_free(struct xexp *x, int s)
{
    memset(x->area + XR_HDR + (size_t)s * XR_SLOT_SIZE, 0, XR_SLOT_SIZE);
    x->freed[s]++;
    __atomic_store_n((uint64_t *)(void *)(x->area + XR_FREED + 8 * (size_t)s), x->freed[s],
                     __ATOMIC_RELEASE);
    x->seen[s] = 0;
    x->reused++;
}

static void dead_member(struct xexp *x, struct xreg *r);

/* Drop a registration (detached, dead, refused later): never written again.
 * A dead one (UCX declared its endpoint failed) frees its slot now; a live
 * one keeps it until its XS_RET (it may still write there). */
static void
reg_drop(struct xexp *x, int s, const char *why)
{
    struct xreg *r = x->regs[s];
    for (int k = 0; r && r->err == UCS_OK && k < 4; k++)
        ucp_worker_progress(x->up.w); /* an operation failed: the error callback */
    int dead = r && r->err != UCS_OK;
    if (r)
        PXSI_DEBUG(SUBSYS, "rank %d: registration %d (job %016llx rank %u) dropped%s: %s",
                   x->core->rank, s, (unsigned long long)r->job, r->jrank,
                   dead ? " (peer failed)" : "", why);
    if (r)
        dead_member(x, r);
    reg_free(x, r);
    x->regs[s] = NULL;
    x->seen[s] = 2;
    if (dead)
        slot_free(x, s);
}

static int
ucs_peer(struct xreg *r, ucs_status_t st, const char *what)
{
    return pxsi_err(PXS_ERR_PEER, SUBSYS, "%s: attached job %016llx rank %u: UCX: %s", what,
                    (unsigned long long)r->job, r->jrank,
                    ucs_status_string(r->err != UCS_OK ? r->err : st));
}

static double
op_timeout(const struct xexp *x)
{
    double t = x->core->send_timeout;
    return t < 0 || t > 10.0 ? 10.0 : (t < 1.0 ? 1.0 : t);
}

/* Wait for n requests on r's own endpoint. On expiry the endpoint is
 * force-closed and every request collected (pxsi_ucx_wait_ep): UCX writes
 * into r's words no more, and r counts as failed (reg_drop frees it). */
static ucs_status_t
reg_wait(struct xexp *x, struct xreg *r, ucs_status_ptr_t *rq, int n, double timeout)
{
    ucs_status_t st = pxsi_ucx_wait_ep(x->up.w, MPI_COMM_NULL, rq, n, timeout, &r->ep);
    if (!r->ep && r->err == UCS_OK)
        r->err = st != UCS_OK ? st : UCS_ERR_ENDPOINT_TIMEOUT;
    return st;
}

/* Append n records at r (credits held). */
static int
reg_append(struct xexp *x, struct xreg *r, unsigned char *recs, uint32_t n)
{
    ucs_status_ptr_t rq[2];
    uint64_t add = n;
    rq[0] = x_amo(r->ep, UCP_ATOMIC_OP_ADD, &add, &r->buf[1], r->mbox + XM_TAIL, r->rk);
    ucs_status_t st = reg_wait(x, r, rq, 1, op_timeout(x));
    if (st != UCS_OK)
        return ucs_peer(r, st, "tail ticket");
    uint64_t t0 = r->buf[1];
    uint32_t i0 = (uint32_t)(t0 % r->S), first = n < r->S - i0 ? n : r->S - i0;
    uint64_t ro = r->mbox + XM_SEQ + 8 * (uint64_t)r->S;
    rq[0] = x_put(r->ep, recs, (size_t)first * PXSI_REC_SIZE, ro + (uint64_t)i0 * PXSI_REC_SIZE,
                  r->rk);
    rq[1] = n > first ? x_put(r->ep, recs + (size_t)first * PXSI_REC_SIZE,
                              (size_t)(n - first) * PXSI_REC_SIZE, ro, r->rk)
                      : NULL;
    st = reg_wait(x, r, rq, 2, op_timeout(x));
    if (st == UCS_OK) {
        rq[0] = x_flush(r->ep);
        st = reg_wait(x, r, rq, 1, op_timeout(x));
    }
    if (st != UCS_OK)
        return ucs_peer(r, st, "record put");
    atomic_thread_fence(memory_order_release);
    for (uint32_t j = 0; j < n; j++)
        r->seqbuf[j] = t0 + j + 1;
    rq[0] = x_put(r->ep, r->seqbuf, 8 * (size_t)first, r->mbox + XM_SEQ + 8 * (uint64_t)i0, r->rk);
    rq[1] = n > first ? x_put(r->ep, r->seqbuf + first, 8 * (size_t)(n - first), r->mbox + XM_SEQ,
                              r->rk)
                      : NULL;
    st = reg_wait(x, r, rq, 2, op_timeout(x));
    if (st == UCS_OK) {
        rq[0] = x_flush(r->ep);
        st = reg_wait(x, r, rq, 1, op_timeout(x));
    }
    if (st != UCS_OK)
        return ucs_peer(r, st, "sequence words");
    return PXS_OK;
}

static int
reg_give_group(struct xexp *x, struct xreg *r)
{
    r->buf[0] = 1;
    ucs_status_ptr_t rq =
        x_amo(r->ep, UCP_ATOMIC_OP_ADD, &r->buf[0], &r->buf[1], r->mbox + XM_GCRED, r->rk);
    ucs_status_t st = reg_wait(x, r, &rq, 1, op_timeout(x));
    return st == UCS_OK ? PXS_OK : ucs_peer(r, st, "group credits (give back)");
}

/* Take up to want credits at r (no waiting for room): r->held grows. */
static int
reg_take(struct xexp *x, struct xreg *r, uint32_t want)
{
    uint64_t neg = (uint64_t)(-(int64_t)want);
    ucs_status_ptr_t rq =
        x_amo(r->ep, UCP_ATOMIC_OP_ADD, &neg, &r->buf[1], r->mbox + XM_CRED, r->rk);
    ucs_status_t st = reg_wait(x, r, &rq, 1, op_timeout(x));
    if (st != UCS_OK)
        return ucs_peer(r, st, "credits");
    int64_t old = (int64_t)r->buf[1];
    if (old >= (int64_t)want) {
        r->held += want;
        return PXS_OK;
    }
    int64_t avail = old > 0 ? old : 0;
    r->buf[0] = (uint64_t)((int64_t)want - avail);
    rq = x_amo(r->ep, UCP_ATOMIC_OP_ADD, &r->buf[0], &r->buf[1], r->mbox + XM_CRED, r->rk);
    st = reg_wait(x, r, &rq, 1, op_timeout(x));
    if (st != UCS_OK)
        return ucs_peer(r, st, "credits (give back)");
    r->held += avail;
    return PXS_OK;
}

/* One group (prefetch) credit at r: 1 taken, 0 none free (given back). */
static int
reg_take_group(struct xexp *x, struct xreg *r, int *got)
{
    uint64_t neg = (uint64_t)(int64_t)-1;
    *got = 0;
    ucs_status_ptr_t rq =
        x_amo(r->ep, UCP_ATOMIC_OP_ADD, &neg, &r->buf[1], r->mbox + XM_GCRED, r->rk);
    ucs_status_t st = reg_wait(x, r, &rq, 1, op_timeout(x));
    if (st != UCS_OK)
        return ucs_peer(r, st, "group credits");
    if ((int64_t)r->buf[1] >= 1) {
        *got = 1;
        return PXS_OK;
    }
    return reg_give_group(x, r);
}

/* END of topic index ti to r (one credit, waiting up to the op timeout). */
static int
reg_end(struct xexp *x, struct xreg *r, int ti)
{
    if (r->ended[ti])
        return PXS_OK;
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, op_timeout(x));
    while (r->held == 0) {
        int rc = reg_take(x, r, 1);
        if (rc != PXS_OK)
            return rc;
        if (r->held)
            break;
        if (pxsi_backoff_expired(&b))
            return pxsi_err(PXS_ERR_AGAIN, SUBSYS, "END: mailbox of job %016llx rank %u full",
                            (unsigned long long)r->job, r->jrank);
        if (!ucp_worker_progress(x->up.w))
            pxsi_backoff_pause(&b);
    }
    const struct pxsi_ptopic *pt = &x->core->ptopics[ti];
    pxsi_rec_encode(x->rec, pt->id, x->core->rank, pt->next_seq, r->lseq[ti]++, PXSI_REC_F_END,
                    NULL, NULL, 0);
    r->held--;
    r->ended[ti] = 1;
    return reg_append(x, r, x->rec, 1);
}

/* Check and connect a new registration in slot s (state XS_ON seen). */
static int
reg_accept(struct xexp *x, int s)
{
    const unsigned char *b = x->area + XR_HDR + (size_t)s * XR_SLOT_SIZE;
    uint64_t tok, job, mbox;
    uint32_t jrank, jsize, S, ns, alen, klen;
    memcpy(&tok, b + XS_TOKEN, 8);
    memcpy(&job, b + XS_JOB, 8);
    memcpy(&jrank, b + XS_JRANK, 4);
    memcpy(&jsize, b + XS_JRANK + 4, 4);
    memcpy(&S, b + XS_SLOTS, 4);
    memcpy(&ns, b + XS_SLOTS + 4, 4);
    memcpy(&mbox, b + XS_MBOX, 8);
    memcpy(&alen, b + XS_ALEN, 4);
    memcpy(&klen, b + XS_ALEN + 4, 4);
    const char *why = NULL;
    if (tok != x->token)
        why = "wrong attach token";
    else if (S != x->S)
        why = "mailbox size differs from the export's (would write outside it)";
    else if (ns > PXSI_XBUS_SUBS_MAX || alen == 0 || klen == 0 ||
             (size_t)alen + klen > XS_BODY - XS_VAR || jsize == 0 || jrank >= jsize)
        why = "malformed registration";
    if (why) {
        x->refused++;
        PXSI_WARN(SUBSYS,
                  "rank %d: registration %d from attaching job %016llx rank %u refused: %s",
                  x->core->rank, s, (unsigned long long)job, jrank, why);
        return PXS_ERR_INVALID;
    }
    struct xreg *r = calloc(1, sizeof *r);
    int n = x->core->n_ptopics;
    if (!r || !(r->lseq = calloc((size_t)n + 1, sizeof *r->lseq)) ||
        !(r->ended = calloc((size_t)n + 1, 1)) || !(r->seqbuf = malloc(8 * (size_t)S))) {
        reg_free(x, r);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "registration");
    }
    r->slot = s;
    r->job = job;
    r->jrank = jrank;
    r->jsize = jsize;
    r->S = S;
    r->n_subs = ns;
    r->mbox = mbox;
    for (uint32_t i = 0; i < ns; i++) {
        const unsigned char *q = b + XS_SUBS + (size_t)i * XS_SUB_SIZE;
        memcpy(&r->topic[i], q, 4);
        size_t gl = q[4] > PXS_GROUP_NAME_MAX ? PXS_GROUP_NAME_MAX : q[4];
        memcpy(r->group[i], q + 5, gl);
        r->group[i][gl] = '\0';
    }
    int rc = pxsi_ucx_ep_open(x->up.w, b + XS_VAR, &r->err, &r->ep);
    if (rc == PXS_OK) {
        ucs_status_t st = ucp_ep_rkey_unpack(r->ep, b + XS_VAR + alen, &r->rk);
        if (st != UCS_OK) {
            r->rk = NULL;
            rc = pxsi_err(PXS_ERR_PEER, SUBSYS, "mailbox key: UCX: %s", ucs_status_string(st));
        }
    }
    if (rc != PXS_OK) {
        PXSI_WARN(SUBSYS, "rank %d: registration %d (job %016llx rank %u): %s", x->core->rank, s,
                  (unsigned long long)job, jrank, pxs_last_error_detail());
        reg_free(x, r);
        return rc;
    }
    x->regs[s] = r;
    x->accepted++;
    PXSI_DEBUG(SUBSYS, "rank %d: attached job %016llx rank %u/%u registered (slot %d, %u subs)",
               x->core->rank, (unsigned long long)job, jrank, jsize, s, ns);
    /* topics already closed: END at once (the mailbox is empty) */
    for (uint32_t i = 0; i < ns; i++) {
        int ti = pt_find(x->core, r->topic[i]);
        if (ti >= 0 && x->core->ptopics[ti].closed == PXSI_TOPIC_CLOSED &&
            reg_end(x, r, ti) != PXS_OK)
            return PXS_ERR_PEER;
    }
    return PXS_OK;
}

/* Detach seen: stop, acknowledge (best effort), forget. */
static void
reg_detach(struct xexp *x, int s)
{
    struct xreg *r = x->regs[s];
    if (r) {
        uint64_t one = 1;
        ucs_status_ptr_t rq =
            x_amo(r->ep, UCP_ATOMIC_OP_ADD, &one, &r->buf[1], r->mbox + XM_ACK, r->rk);
        ucs_status_t st = reg_wait(x, r, &rq, 1, 2.0);
        PXSI_DEBUG(SUBSYS, "rank %d: detach of job %016llx rank %u acknowledged: UCX: %s",
                   x->core->rank, (unsigned long long)r->job, r->jrank, ucs_status_string(st));
    }
    x->detached++;
    /* its subscriptions stay until it gives back its unread group events
     * (state XS_RET); never written again. The endpoint stays open until
     * then too: closing it (forced) breaks the registrant's puts of XS_RET
     * to us, which UCX may route over the same connection. */
    x->gone[s] = r;
    x->regs[s] = NULL;
    x->seen[s] = 3;
}

/* Queue a group event of topic index ti, group g, for another member. */
static int
orph_add(struct xexp *x, int ti, const char *g, const unsigned char *rec)
{
    if (x->n_orph == x->cap_orph) {
        size_t cap = x->cap_orph ? 2 * x->cap_orph : 16;
        struct xorph *o = realloc(x->orph, cap * sizeof *o);
        if (!o)
            return PXS_ERR_NOMEM;
        x->orph = o;
        x->cap_orph = cap;
    }
    struct xorph *o = &x->orph[x->n_orph++];
    o->ti = ti;
    snprintf(o->group, sizeof o->group, "%s", g);
    memcpy(o->rec, rec, PXSI_REC_SIZE);
    return PXS_OK;
}

/* An attached member died (UCX declared its endpoint failed; it never
 * detached): the group events this producer sent it and it had not said
 * it was done with (the count it puts into XS_DONE of its slot here) go to
 * another member of their group, in either job. At least once: an event
 * whose done count was still in flight at the death comes again. */
static void
dead_member(struct xexp *x, struct xreg *r)
{
    if (r->err == UCS_OK)
        return;
    x->dead++;
    uint64_t done =
        __atomic_load_n((const uint64_t *)(const void *)(x->area + XR_HDR +
                                                         (size_t)r->slot * XR_SLOT_SIZE + XS_DONE),
                        __ATOMIC_ACQUIRE);
    if (done > r->gsent)
        done = r->gsent; /* not ours to believe */
    uint64_t owe = r->gsent - done, keep = r->ring ? owe : 0, lost = 0, redo = 0;
    if (keep > XG_RING)
        keep = XG_RING;
    lost = owe - keep;
    for (uint64_t j = r->gsent - keep; j < r->gsent; j++) {
        uint32_t k = (uint32_t)(j % XG_RING);
        int ti = r->ring_ti[k], sub = reg_sub(r, x->core->ptopics[ti].id);
        if (sub < 0 || !r->group[sub][0] ||
            orph_add(x, ti, r->group[sub], r->ring + (size_t)k * PXSI_REC_SIZE) != PXS_OK)
            lost++;
        else
            redo++;
    }
    x->dead_redo += redo;
    x->dead_lost += lost;
    if (owe)
        PXSI_WARN(SUBSYS,
                  "rank %d: attached job %016llx rank %u died (UCX: %s) with %llu group "
                  "event(s) of ours not done: %llu delivered again to other members, %llu lost",
                  x->core->rank, (unsigned long long)r->job, r->jrank, ucs_status_string(r->err),
                  (unsigned long long)owe, (unsigned long long)redo, (unsigned long long)lost);
    else
        PXSI_DEBUG(SUBSYS,
                   "rank %d: attached job %016llx rank %u died (UCX: %s), nothing of "
                   "ours undone",
                   x->core->rank, (unsigned long long)r->job, r->jrank, ucs_status_string(r->err));
}

/* A detached registrant's unread group events (state XS_RET): checked, then
 * queued for another member of their group. */
static void
reg_returns(struct xexp *x, int s)
{
    struct xreg *r = x->gone[s];
    const unsigned char *b = x->area + XR_HDR + (size_t)s * XR_SLOT_SIZE;
    uint64_t n;
    memcpy(&n, b + XS_RETN, 8);
    if (n > XS_RET_MAX) {
        PXSI_WARN(SUBSYS, "rank %d: registration %d gives back %llu records (at most %d): "
                  "ignored", x->core->rank, s, (unsigned long long)n, (int)XS_RET_MAX);
        n = 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *rec = b + XS_RECS + (size_t)i * PXSI_REC_SIZE;
        uint32_t topic = pxsi_get_le32(rec + PXSI_REC_O_TOPIC);
        int ti = pt_find(x->core, topic), k = r ? reg_sub(r, topic) : -1;
        if ((int32_t)pxsi_get_le32(rec + PXSI_REC_O_PROD) != x->core->rank ||
            pxsi_get_le16(rec + PXSI_REC_O_FLAGS) != 0 || ti < 0 || k < 0 || !r->group[k][0]) {
            PXSI_WARN(SUBSYS, "rank %d: registration %d gives back a record that is not one of "
                      "our group events to it (topic %u): ignored", x->core->rank, s, topic);
            continue;
        }
        if (orph_add(x, ti, r->group[k], rec) != PXS_OK) {
            PXSI_WARN(SUBSYS,
                      "rank %d: out of memory: %llu group event(s) given back by "
                      "a detached member are lost",
                      x->core->rank, (unsigned long long)(n - i));
            break;
        }
        x->returned++;
    }
    PXSI_DEBUG(SUBSYS, "rank %d: registration %d left, gave back %llu group event(s)",
               x->core->rank, s, (unsigned long long)n);
    reg_free(x, r);
    x->gone[s] = NULL;
    slot_free(x, s);
}

/* Slot s's state tag (XS_ON, XS_OFF, XS_RET), or 0: empty, or a state word
 * of another generation (a stale registrant). */
static uint32_t
slot_state(const struct xexp *x, int s)
{
    uint64_t w = __atomic_load_n(
        (const uint64_t *)(const void *)(x->area + XR_HDR + (size_t)s * XR_SLOT_SIZE),
        __ATOMIC_ACQUIRE);
    return (uint32_t)w == (uint32_t)(x->freed[s] + 1) ? (uint32_t)(w >> 32) : 0;
}

/* Pick registrations up (inside the producer's own calls). */
static void
xexp_poll(struct xexp *x)
{
    ucp_worker_progress(x->up.w); /* puts into the area need it over tcp */
    for (int s = 0; s < PXSI_XBUS_REGS; s++) {
        if (x->freed[s] == XR_OFF_SLOT)
            continue;
        uint32_t v = slot_state(x, s);
        if (x->seen[s] == 2) { /* refused, or dropped alive: free at its XS_RET */
            if (v == XS_RET)
                slot_free(x, s);
            continue;
        }
        if (v == XS_ON && x->seen[s] == 0 && !x->hold) {
            if (reg_accept(x, s) == PXS_OK)
                x->seen[s] = 1;
            else
                reg_drop(x, s, "refused");
        } else if ((v == XS_OFF || v == XS_RET) && x->seen[s] <= 1) {
            reg_detach(x, s);
        }
        if (v == XS_RET && x->seen[s] == 3) {
            reg_returns(x, s);
            continue;
        }
        /* UCX declared its endpoint failed and it did not (finish to)
         * detach: a dead job */
        if (x->seen[s] == 1 && x->regs[s] && x->regs[s]->err != UCS_OK) {
            reg_drop(x, s, ucs_status_string(x->regs[s]->err));
        } else if (x->seen[s] == 3 && x->gone[s] && x->gone[s]->err != UCS_OK) {
            /* v may predate the error: reg_detach's acknowledgement above
             * progressed the worker, meanwhile the registrant put XS_RET
             * (which lands before its endpoint can fail) and exited */
            if (slot_state(x, s) == XS_RET) {
                reg_returns(x, s);
                continue;
            }
            PXSI_DEBUG(SUBSYS,
                       "rank %d: registration %d died after its detach was "
                       "acknowledged, before it gave anything back",
                       x->core->rank, s);
            dead_member(x, x->gone[s]);
            reg_free(x, x->gone[s]);
            x->gone[s] = NULL;
            slot_free(x, s);
        }
    }
}

/* Hand given-back group events (of topic index ti, or all: -1) to other
 * members of their group, as credits allow; with b, wait up to it. Not
 * called while pick() holds credits. Returns how many of them still wait. */
static size_t
orphans_push(struct xexp *x, int ti, pxsi_backoff_t *b)
{
    for (;;) {
        size_t keep = 0, left = 0;
        for (size_t i = 0; i < x->n_orph; i++) {
            struct xorph *o = &x->orph[i];
            int sent = 0;
            if (ti < 0 || o->ti == ti) {
                uint32_t topic = x->core->ptopics[o->ti].id;
                for (uint32_t j = 0; j < PXSI_XBUS_REGS && !sent; j++) {
                    int t = (int)((x->rr + j) % PXSI_XBUS_REGS);
                    struct xreg *m = x->regs[t];
                    int kk, gc = 0;
                    if (!m || (kk = reg_sub(m, topic)) < 0 || strcmp(m->group[kk], o->group) != 0)
                        continue;
                    if (reg_take_group(x, m, &gc) != PXS_OK) {
                        reg_drop(x, t, pxs_last_error_detail());
                        continue;
                    }
                    if (!gc)
                        continue;
                    if (m->held == 0 && reg_take(x, m, 1) != PXS_OK) {
                        reg_drop(x, t, pxs_last_error_detail());
                        continue;
                    }
                    if (!m->held) {
                        if (reg_give_group(x, m) != PXS_OK)
                            reg_drop(x, t, pxs_last_error_detail());
                        continue;
                    }
                    pxsi_put_le64(o->rec + PXSI_REC_O_LSEQ, m->lseq[o->ti]++);
                    m->held--;
                    x->rr = (uint32_t)t + 1;
                    if (reg_append(x, m, o->rec, 1) != PXS_OK) {
                        reg_drop(x, t, pxs_last_error_detail()); /* gone: try another */
                        continue;
                    }
                    ring_keep(m, o->ti, o->rec);
                    sent = 1;
                    x->redelivered++;
                }
                /* a group mixing members of both jobs: a local member */
                int gi = sent ? -1 : local_group(x->core, o->ti, o->group);
                if (gi >= 0 && pxsi_core_group_requeue(x->core, o->ti, gi, o->rec) == PXS_OK) {
                    sent = 1;
                    x->redelivered++;
                }
                left += !sent;
            }
            if (!sent)
                x->orph[keep++] = *o;
        }
        x->n_orph = keep;
        if (!left || !b || pxsi_backoff_expired(b))
            return left;
        if (!ucp_worker_progress(x->up.w))
            pxsi_backoff_pause(b);
        xexp_poll(x);
    }
}

/* Attaching jobs complete here (every rank of the job registered). */
static uint32_t
jobs_attached(const struct xexp *x)
{
    uint32_t n = 0;
    for (int s = 0; s < PXSI_XBUS_REGS; s++) {
        const struct xreg *r = x->regs[s];
        if (!r || r->jrank != 0)
            continue;
        uint32_t have = 0;
        for (int t = 0; t < PXSI_XBUS_REGS; t++)
            have += x->regs[t] && x->regs[t]->job == r->job;
        n += have >= r->jsize;
    }
    return n;
}

/* The event was not accepted: give back the group credits pick() took
 * (mailbox credits stay held for the next send). */
static void
unpick(struct xexp *x, const unsigned char *chosen)
{
    for (int s = 0; s < PXSI_XBUS_REGS; s++)
        if (chosen[s] == 2 && x->regs[s] && reg_give_group(x, x->regs[s]) != PXS_OK)
            reg_drop(x, s, pxs_last_error_detail());
}

/* Destinations of one event on topic ti: every registration subscribing
 * plainly, one member per attached group (rotating, with credits). Credits
 * are taken before the event is handed to the core, so PXS_ERR_AGAIN still
 * means "not accepted". chosen[s] = 1 for each destination. */
static int
pick(struct xexp *x, int ti, unsigned char *chosen, pxsi_backoff_t *b)
{
    uint32_t topic = x->core->ptopics[ti].id;
    memset(chosen, 0, PXSI_XBUS_REGS);
    for (;;) {
        int missing = 0;
        /* plain */
        for (int s = 0; s < PXSI_XBUS_REGS; s++) {
            struct xreg *r = x->regs[s];
            int k;
            if (!r || chosen[s] || (k = reg_sub(r, topic)) < 0 || r->group[k][0])
                continue;
            if (r->held == 0 && reg_take(x, r, r->S / 8 ? r->S / 8 : 1) != PXS_OK) {
                reg_drop(x, s, pxs_last_error_detail());
                continue;
            }
            if (r->held)
                chosen[s] = 1;
            else
                missing = 1;
        }
        /* groups: each distinct name once */
        for (int s = 0; s < PXSI_XBUS_REGS; s++) {
            struct xreg *r = x->regs[s];
            int k;
            if (!r || (k = reg_sub(r, topic)) < 0 || !r->group[k][0])
                continue;
            const char *g = r->group[k];
            int first = 1, done = 0, lg = local_group(x->core, ti, g);
            for (int t = 0; t < s && first; t++) {
                int kk;
                first = !(x->regs[t] && (kk = reg_sub(x->regs[t], topic)) >= 0 &&
                          strcmp(x->regs[t]->group[kk], g) == 0);
            }
            if (!first)
                continue;
            /* a group mixing members of both jobs: every other event goes
             * to the local members first when their queue is empty (the
             * last one taken), else to an attached member with room */
            if (lg >= 0 && (x->mix_turn++ & 1) && x->core->ptopics[ti].groups[lg].q->n == 0)
                continue;
            for (int t = 0; t < PXSI_XBUS_REGS && !done; t++) {
                int kk;
                if (chosen[t] && x->regs[t] && (kk = reg_sub(x->regs[t], topic)) >= 0 &&
                    strcmp(x->regs[t]->group[kk], g) == 0)
                    done = 1;
            }
            for (uint32_t i = 0; i < PXSI_XBUS_REGS && !done; i++) {
                int t = (int)((x->rr + i) % PXSI_XBUS_REGS);
                struct xreg *m = x->regs[t];
                int kk;
                if (!m || (kk = reg_sub(m, topic)) < 0 || strcmp(m->group[kk], g) != 0)
                    continue;
                int gc = 0;
                if (reg_take_group(x, m, &gc) != PXS_OK) {
                    reg_drop(x, t, pxs_last_error_detail());
                    continue;
                }
                if (!gc)
                    continue; /* at its prefetch */
                if (m->held == 0 && reg_take(x, m, 1) != PXS_OK) {
                    reg_drop(x, t, pxs_last_error_detail());
                    continue;
                }
                if (m->held) {
                    chosen[t] = 2; /* its group credit is held */
                    done = 1;
                    x->rr = (uint32_t)t + 1;
                } else if (reg_give_group(x, m) != PXS_OK) {
                    reg_drop(x, t, pxs_last_error_detail());
                }
            }
            /* a group mixing members of both jobs: no attached member has
             * room, so a local one takes it (the core waits for it) */
            if (!done && lg < 0)
                missing = 1;
        }
        /* the members waited for may have left meanwhile (xexp_poll below):
         * with export_wait, an event goes nowhere only if no job is owed */
        if (!missing && x->export_wait && jobs_attached(x) < x->export_wait)
            missing = 1;
        if (!missing)
            return PXS_OK;
        if (pxsi_backoff_expired(b)) {
            int rc = pxsi_err(PXS_ERR_AGAIN, SUBSYS,
                              "topic %u: an attached job's mailbox stayed full (send_timeout)",
                              topic);
            unpick(x, chosen);
            return rc;
        }
        if (!ucp_worker_progress(x->up.w))
            pxsi_backoff_pause(b);
        /* what was chosen keeps its credits; a registration dropped
         * meanwhile is skipped at the send */
        xexp_poll(x);
    }
}

/* export_wait: wait (b) while fewer attaching jobs have every rank registered */
static int
wait_jobs(struct xexp *x, pxsi_backoff_t *b)
{
    uint32_t have;
    while ((have = jobs_attached(x)) < x->export_wait) {
        if (pxsi_backoff_expired(b))
            return pxsi_err(PXS_ERR_AGAIN, SUBSYS,
                            "export_wait: %u of %u attaching job(s) registered within "
                            "send_timeout",
                            have, x->export_wait);
        if (!ucp_worker_progress(x->up.w))
            pxsi_backoff_pause(b);
        xexp_poll(x);
    }
    return PXS_OK;
}

uint32_t
pxsi_xexp_fanout(void *state, int ti)
{
    struct xexp *x = state;
    xexp_poll(x);
    if (x->export_wait && x->core->ptopics[ti].closed == PXSI_TOPIC_OPEN) {
        /* count the jobs the send will wait for (its error, if none comes) */
        pxsi_backoff_t b;
        pxsi_backoff_init(&b, x->core->send_timeout);
        (void)wait_jobs(x, &b);
    }
    uint32_t topic = x->core->ptopics[ti].id, n = 0;
    for (int s = 0; s < PXSI_XBUS_REGS; s++) {
        const struct xreg *r = x->regs[s];
        int k, first = 1;
        if (!r || (k = reg_sub(r, topic)) < 0)
            continue;
        for (int t = 0; t < s && r->group[k][0] && first; t++) { /* a group once */
            int kk;
            first = !(x->regs[t] && (kk = reg_sub(x->regs[t], topic)) >= 0 &&
                      strcmp(x->regs[t]->group[kk], r->group[k]) == 0);
        }
        if (r->group[k][0] && local_group(x->core, ti, r->group[k]) >= 0)
            first = 0; /* mixed: the core counts the group once */
        n += first;
    }
    x->hold = 1;
    return n;
}

static int xexp_send_(struct xexp *x, uint32_t topic, const pxs_proxy_t *proxy,
                      const void *meta, size_t meta_len, uint64_t *seq_out);

static int
xexp_send(void *state, uint32_t topic, const pxs_proxy_t *proxy, const void *meta,
          size_t meta_len, uint64_t *seq_out)
{
    struct xexp *x = state;
    int rc = xexp_send_(x, topic, proxy, meta, meta_len, seq_out);
    x->hold = 0;
    return rc;
}

static int
xexp_send_(struct xexp *x, uint32_t topic, const pxs_proxy_t *proxy, const void *meta,
           size_t meta_len, uint64_t *seq_out)
{
    struct pxsi_core *c = x->core;
    xexp_poll(x);
    int ti = pt_find(c, topic);
    if (ti < 0 || c->ptopics[ti].closed != PXSI_TOPIC_OPEN || pxsi_core_check(c) != PXS_OK)
        return x->inner_ops->send(x->inner_state, topic, proxy, meta, meta_len, seq_out);
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, c->send_timeout);
    if (x->export_wait) { /* every send: an attached job may have left */
        uint32_t have = jobs_attached(x);
        if (have < x->export_wait && x->hold) /* counted for the budget: no new one */
            return pxsi_err(PXS_ERR_AGAIN, SUBSYS,
                            "export_wait: an attaching job left between the budget count and "
                            "the send (%u of %u attached); send again",
                            have, x->export_wait);
        int rc = wait_jobs(x, &b);
        if (rc != PXS_OK)
            return rc;
    }
    if (x->n_orph) /* given-back group events first, as credits allow */
        (void)orphans_push(x, -1, NULL);
    /* a local group's event left queued (its members were busy) goes out
     * now if it can: sends that go to attached members do not flush it */
    for (int gi = 0, done = 0; gi < c->ptopics[ti].n_groups && !done; gi++) {
        if (!c->ptopics[ti].groups[gi].q->n)
            continue;
        for (int s = 0; s < PXSI_XBUS_REGS && !done; s++) { /* mixed now? */
            int k;
            if (x->regs[s] && (k = reg_sub(x->regs[s], topic)) >= 0 &&
                strcmp(x->regs[s]->group[k], c->ptopics[ti].groups[gi].name) == 0) {
                pxsi_core_drain_nowait(c);
                done = 1;
            }
        }
    }
    unsigned char chosen[PXSI_XBUS_REGS];
    int rc = pick(x, ti, chosen, &b);
    if (rc != PXS_OK)
        return rc;
    /* a mixed group whose attached member took the event: not to a local one */
    struct pxsi_ptopic *pt = &c->ptopics[ti];
    for (int s = 0; s < PXSI_XBUS_REGS; s++) {
        int k, gi;
        if (chosen[s] == 2 && x->regs[s] && (k = reg_sub(x->regs[s], topic)) >= 0 &&
            (gi = local_group(c, ti, x->regs[s]->group[k])) >= 0)
            pt->groups[gi].skip = 1;
    }
    uint64_t seq = 0;
    rc = x->inner_ops->send(x->inner_state, topic, proxy, meta, meta_len, &seq);
    for (int gi = 0; gi < pt->n_groups; gi++)
        pt->groups[gi].skip = 0;
    if (rc != PXS_OK) {
        int keep = rc;
        unpick(x, chosen);
        return keep;
    }
    if (seq_out)
        *seq_out = seq;
    for (int s = 0; s < PXSI_XBUS_REGS; s++) {
        struct xreg *r = x->regs[s];
        if (!chosen[s] || !r)
            continue;
        pxsi_rec_encode(x->rec, topic, c->rank, seq, r->lseq[ti]++, 0, proxy, meta,
                        (uint16_t)meta_len);
        r->held--;
        if (chosen[s] == 2)
            ring_keep(r, ti, x->rec);
        /* accepted: a failure here loses the attached job, not the event's
         * local delivery */
        if (reg_append(x, r, x->rec, 1) != PXS_OK)
            reg_drop(x, s, pxs_last_error_detail());
    }
    return PXS_OK;
}

static int
xexp_flush(void *state)
{
    struct xexp *x = state;
    x->hold = 0;
    xexp_poll(x);
    if (x->n_orph)
        (void)orphans_push(x, -1, NULL);
    return x->inner_ops->flush(x->inner_state);
}

static int
xexp_close(void *state, uint32_t topic)
{
    struct xexp *x = state;
    x->hold = 0;
    xexp_poll(x);
    int ti = pt_find(x->core, topic);
    if (ti >= 0 && x->n_orph) { /* given-back group events go before END */
        pxsi_backoff_t b;
        pxsi_backoff_init(&b, x->core->send_timeout);
        size_t left = orphans_push(x, ti, &b);
        if (left)
            return pxsi_err(PXS_ERR_AGAIN, SUBSYS,
                            "close of topic %u: %zu group event(s) given back by a detached "
                            "member wait for another member of their group (attach one, then "
                            "close again)",
                            topic, left);
    }
    int rc = x->inner_ops->close_topic(x->inner_state, topic);
    if (rc != PXS_OK || ti < 0)
        return rc;
    for (int s = 0; s < PXSI_XBUS_REGS; s++)
        if (x->regs[s] && reg_sub(x->regs[s], topic) >= 0 &&
            reg_end(x, x->regs[s], ti) != PXS_OK)
            reg_drop(x, s, pxs_last_error_detail());
    return PXS_OK;
}

const pxsi_pub_ops_t pxsi_xexp_pub_ops = {
    .send = xexp_send,
    .flush = xexp_flush,
    .close_topic = xexp_close,
};

struct pxsi_core *
pxsi_xexp_core(void *state)
{
    return ((struct xexp *)state)->core;
}

static int
xexp_destroy(pxs_bus_t *bus)
{
    struct xexp *x = bus->pub.state;
    bus->pub.ops = x->inner_ops;
    bus->pub.state = x->inner_state;
    bus->destroy = x->inner_destroy;
    PXSI_DEBUG(SUBSYS,
               "rank %d: export over: %llu registration(s) accepted, %llu refused, %llu "
               "detached, %llu died, %llu slot(s) reused; %llu group event(s) given back, "
               "%llu of dead members' undone, %llu delivered again, %llu lost",
               x->core->rank, (unsigned long long)x->accepted, (unsigned long long)x->refused,
               (unsigned long long)x->detached, (unsigned long long)x->dead,
               (unsigned long long)x->reused, (unsigned long long)x->returned,
               (unsigned long long)x->dead_redo, (unsigned long long)x->redelivered,
               (unsigned long long)x->dead_lost);
    if (x->n_orph)
        PXSI_WARN(SUBSYS, "rank %d: %zu group event(s) given back by detached members were "
                  "never delivered (no other member attached before the bus was destroyed)",
                  x->core->rank, x->n_orph);
    for (int s = 0; s < PXSI_XBUS_REGS; s++) {
        reg_free(x, x->regs[s]);
        reg_free(x, x->gone[s]);
    }
    free(x->orph);
    /* attaching jobs may still write the area (detach, late registrations):
     * the store frees it after its worker */
    pxsi_ucx_keep_region(x->store_st, x->mh, x->area, XR_AREA);
    free(x);
    return bus->destroy(bus);
}

int
pxsi_xbus_export(pxs_bus_t *bus, void *store_st, uint64_t token, uint32_t attach_slots,
                 unsigned char **blob_out, size_t *len_out)
{
    if (!bus || bus->magic != PXSI_MAGIC_BUS || bus->pub.ops != &pxsi_core_pub_ops)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "pxs_export: not an MPI bus, or exported already");
    struct xexp *x = calloc(1, sizeof *x);
    if (!x)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "export state");
    x->bus = bus;
    x->core = bus->pub.state;
    x->inner_ops = bus->pub.ops;
    x->inner_state = bus->pub.state;
    x->inner_destroy = bus->destroy;
    x->token = token;
    x->S = attach_slots;
    x->export_wait = x->core->export_wait;
    /* local group members may get given-back events out of order */
    x->core->group_redo = 1;
    pxsi_ucx_parts(store_st, &x->up);
    x->store_st = store_st;
    void *a = mmap(NULL, XR_AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) {
        free(x);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "registration area of %zu B", (size_t)XR_AREA);
    }
    x->area = a;
    int rc = pxsi_ucx_map(x->up.ctx, XR_AREA,
                          UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE |
                              UCP_MEM_MAP_PROT_REMOTE_READ | UCP_MEM_MAP_PROT_REMOTE_WRITE,
                          &x->mh, &a);
    void *key = NULL;
    size_t klen = 0;
    if (rc == PXS_OK) {
        x->area = a;
        memset(x->area, 0, XR_AREA);
#ifdef PXS_TEST_HOOKS
        /* test hook (tests/tools/ucx_xgroup.sh): offer only the first n
         * registration slots, so a test reuses them within a few attaches */
        uint64_t nregs = pxsi_env_uint("PXS_TEST_XBUS_REGS", PXSI_XBUS_REGS, 1, PXSI_XBUS_REGS);
        for (uint64_t k = nregs; k < PXSI_XBUS_REGS; k++) {
            x->freed[k] = XR_OFF_SLOT;
            memcpy(x->area + XR_FREED + 8 * (size_t)k, &x->freed[k], 8);
        }
#endif
        ucs_status_t st = ucp_rkey_pack(x->up.ctx, x->mh, &key, &klen);
        if (st != UCS_OK)
            rc = pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "ucp_rkey_pack: UCX: %s",
                          ucs_status_string(st));
    }
    /* blob: u32 topics, u32 local groups, u64 area address, u64 key length,
     * topics, groups (u32 topic, u8 len, name), key */
    const struct pxsi_core *c = x->core;
    uint32_t ng = 0;
    size_t len = 24 + 4 * (size_t)c->n_ptopics + klen;
    for (int ti = 0; ti < c->n_ptopics; ti++)
        for (int gi = 0; gi < c->ptopics[ti].n_groups; gi++, ng++)
            len += 5 + strlen(c->ptopics[ti].groups[gi].name);
    unsigned char *b = rc == PXS_OK ? malloc(len) : NULL;
    if (rc == PXS_OK && !b)
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "export entry");
    if (rc == PXS_OK) {
        uint32_t nt = (uint32_t)c->n_ptopics;
        uint64_t aa = (uint64_t)(uintptr_t)x->area, kl = klen;
        memcpy(b, &nt, 4);
        memcpy(b + 4, &ng, 4);
        memcpy(b + 8, &aa, 8);
        memcpy(b + 16, &kl, 8);
        size_t at = 24;
        for (int ti = 0; ti < c->n_ptopics; ti++, at += 4)
            memcpy(b + at, &c->ptopics[ti].id, 4);
        for (int ti = 0; ti < c->n_ptopics; ti++)
            for (int gi = 0; gi < c->ptopics[ti].n_groups; gi++) {
                size_t gl = strlen(c->ptopics[ti].groups[gi].name);
                memcpy(b + at, &c->ptopics[ti].id, 4);
                b[at + 4] = (unsigned char)gl;
                memcpy(b + at + 5, c->ptopics[ti].groups[gi].name, gl);
                at += 5 + gl;
            }
        memcpy(b + at, key, klen);
    }
    if (key)
        ucp_rkey_buffer_release(key);
    if (rc != PXS_OK) {
        free(b);
        if (x->mh)
            ucp_mem_unmap(x->up.ctx, x->mh);
        munmap(x->area, XR_AREA);
        free(x);
        return rc;
    }
    bus->pub.ops = &pxsi_xexp_pub_ops;
    bus->pub.state = x;
    bus->destroy = xexp_destroy;
    *blob_out = b;
    *len_out = len;
    return PXS_OK;
}

/* An export that failed on another rank: undo this rank's wrapping. */
void
pxsi_xbus_unexport(pxs_bus_t *bus)
{
    if (!bus || bus->pub.ops != &pxsi_xexp_pub_ops)
        return;
    struct xexp *x = bus->pub.state;
    bus->pub.ops = x->inner_ops;
    bus->pub.state = x->inner_state;
    bus->destroy = x->inner_destroy;
    x->core->group_redo = 0;
    /* its key went to no one, but keep the rule */
    pxsi_ucx_keep_region(x->store_st, x->mh, x->area, XR_AREA);
    free(x);
}

/* ================================================================ attaching side */
struct xatt {
    struct pxsi_core core;
    struct pxs_bus bus;
    MPI_Comm comm; /* our duplicate (attaching job) */
    int arank, asize, E;
    pxsi_ucx_parts_t up; /* endpoints to the exporting ranks */
    void *store_st;
    uint32_t S;
    ucp_mem_h mh;
    unsigned char *mb;
    void *mpages; /* mmap'd mailbox pages */
    size_t mlen;
    ucp_rkey_h self_rk;
    ucp_ep_h self_ep;
    ucs_status_t self_err;
    uint64_t head;
    int64_t pending, credit_batch;
    int *slot;           /* [E] registration slot there, -1 none */
    uint32_t *gen;       /* [E] its generation (low 32 bits, in the state words) */
    uint64_t *done;      /* [E] group events of each exporting rank done with (put to
                            XS_DONE there: what is delivered again if we die) */
    int last_prod;       /* producer of the record read last */
    int stale_done;      /* test hook PXS_TEST_XBUS_STALE done */
    ucp_rkey_h *area_rk; /* [E] */
    uint64_t *area;      /* [E] */
    uint64_t live_buf;
    ucs_status_ptr_t live_rq;
    int live_at;
    double live_t;
    uint64_t buf[2];
    unsigned char *body;  /* registration body scratch */
    uint64_t state_word;  /* XS_ON / XS_OFF operand */
    /* a wait expired: UCX may still complete a released request into this
     * struct's words (or a give-back's buffers): they are never freed */
    int late;
};

/* pxsi_ucx_wait on our endpoints (shared with the store: not force-closed
 * here). On expiry the requests are released while UCX may still complete
 * them into their buffers, which are ours: remembered (late), so that
 * xatt_free keeps this struct instead of freeing it. */
static ucs_status_t
xatt_wait(struct xatt *a, MPI_Comm comm, ucs_status_ptr_t *rq, int n, double timeout)
{
    ucs_status_t st = pxsi_ucx_wait(a->up.w, comm, rq, n, timeout);
    if (st == UCS_ERR_ENDPOINT_TIMEOUT)
        a->late = 1;
    return st;
}

static int
xatt_self_add(struct xatt *a, uint64_t off, uint64_t v, uint64_t *old_out)
{
    a->buf[0] = v;
    ucs_status_ptr_t rq = x_amo(a->self_ep, UCP_ATOMIC_OP_ADD, &a->buf[0], &a->buf[1],
                                (uint64_t)(uintptr_t)a->mb + off, a->self_rk);
    ucs_status_t st = xatt_wait(a, MPI_COMM_NULL, &rq, 1, 10.0);
    if (st != UCS_OK)
        return pxsi_err(PXS_ERR_PEER, SUBSYS, "own mailbox word: UCX: %s",
                        ucs_status_string(st));
    if (old_out)
        *old_out = a->buf[1];
    return PXS_OK;
}

static int
xatt_give_back(struct xatt *a)
{
    if (a->pending == 0)
        return PXS_OK;
    /* our reads of the consumed slots happen before producers reuse them */
    atomic_thread_fence(memory_order_release);
    int rc = xatt_self_add(a, XM_CRED, (uint64_t)a->pending, NULL);
    if (rc == PXS_OK)
        a->pending = 0;
    return rc;
}

/* Is every exporting rank still there? A small get now and then (peer error
 * mode: a dead peer completes it with an error); PXS_ERR_PEER naming it. */
static int
xatt_live(struct xatt *a)
{
    for (int i = 0; i < a->E; i++)
        if (a->up.peer_err[i] != UCS_OK)
            return pxsi_err(PXS_ERR_PEER, SUBSYS,
                            "exporting rank %d is gone (UCX: %s); its events end here", i,
                            ucs_status_string(a->up.peer_err[i]));
    if (a->live_rq) {
        ucs_status_t st = UCS_PTR_IS_ERR(a->live_rq) ? UCS_PTR_STATUS(a->live_rq)
                                                     : ucp_request_check_status(a->live_rq);
        if (st == UCS_INPROGRESS) {
            if (pxsi_now() - a->live_t > 30.0) {
                st = UCS_ERR_ENDPOINT_TIMEOUT;
                a->late = 1; /* released below while in flight */
            } else
                return PXS_OK;
        }
        if (!UCS_PTR_IS_ERR(a->live_rq))
            ucp_request_free(a->live_rq);
        a->live_rq = NULL;
        if (st != UCS_OK)
            return pxsi_err(PXS_ERR_PEER, SUBSYS,
                            "exporting rank %d does not answer (UCX: %s); its events end here",
                            a->live_at, ucs_status_string(st));
    }
    if (pxsi_now() - a->live_t < 0.5)
        return PXS_OK;
    a->live_at = (a->live_at + 1) % a->E;
    a->live_t = pxsi_now();
    a->live_rq = x_get(a->up.ep[a->live_at], &a->live_buf, 8, a->area[a->live_at],
                       a->area_rk[a->live_at]);
    if (a->live_rq == NULL)
        return PXS_OK;
    return PXS_OK;
}

#ifdef PXS_TEST_HOOKS
/* Test hook (PXS_TEST_XBUS_STALE, tests/tools/ucx_xgroup.sh): once, after
 * the first record, write what a stale registrant of the previous
 * generation would (XS_OFF) into each of our reused slots: the producer
 * must ignore it (we keep getting events). */
static void
xatt_test_stale(struct xatt *a)
{
    a->stale_done = 1;
    if (!pxsi_env_bool("PXS_TEST_XBUS_STALE", 0))
        return;
    for (int i = 0; i < a->E; i++) {
        if (a->slot[i] < 0 || a->gen[i] < 2)
            continue;
        a->state_word = XS_STATE_OF(XS_OFF, a->gen[i] - 1);
        uint64_t at = a->area[i] + XR_HDR + (uint64_t)a->slot[i] * XR_SLOT_SIZE + XS_STATE;
        ucs_status_ptr_t rq[2] = {x_put(a->up.ep[i], &a->state_word, 8, at, a->area_rk[i]),
                                  x_flush(a->up.ep[i])};
        (void)xatt_wait(a, MPI_COMM_NULL, rq, 2, 5.0);
        PXSI_DEBUG(SUBSYS, "test hook: stale XS_OFF of generation %u put into slot %d at "
                   "exporting rank %d", a->gen[i] - 1, a->slot[i], i);
    }
}
#endif

static int
xatt_inbox_next(void *xv, unsigned char *rec_out, double timeout)
{
    struct xatt *a = xv;
    if (a->S == 0)
        return timeout == 0 ? PXS_TIMEOUT : pxsi_err(PXS_ERR_INVALID, SUBSYS,
                                                     "this rank subscribed to nothing");
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, timeout);
    const uint64_t *seq = (const uint64_t *)(const void *)(a->mb + XM_SEQ);
    for (;;) {
        uint32_t i = (uint32_t)(a->head % a->S);
        if (__atomic_load_n(&seq[i], __ATOMIC_ACQUIRE) == a->head + 1) {
            memcpy(rec_out, a->mb + XM_SEQ + 8 * (size_t)a->S + (size_t)i * PXSI_REC_SIZE,
                   PXSI_REC_SIZE);
            a->last_prod = (int32_t)pxsi_get_le32(rec_out + PXSI_REC_O_PROD);
            a->head++;
#ifdef PXS_TEST_HOOKS
            if (!a->stale_done)
                xatt_test_stale(a);
#endif
            if (++a->pending >= a->credit_batch)
                return xatt_give_back(a);
            return PXS_OK;
        }
        int rc = xatt_give_back(a); /* waiting: producers may need room */
        if (rc == PXS_OK)
            rc = xatt_live(a);
        if (rc != PXS_OK)
            return rc;
        if (pxsi_backoff_expired(&b))
            return PXS_TIMEOUT;
        if (!ucp_worker_progress(a->up.w))
            pxsi_backoff_pause_mpi(&b, a->comm);
    }
}

static int
xatt_no_send(void *xv, int target, uint32_t want, int group, uint32_t *got, uint32_t *left)
{
    (void)xv;
    (void)target;
    (void)want;
    (void)group;
    *got = *left = 0;
    return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "an attached job does not publish");
}
/* Done with n group events (the one read last): tell its producer first
 * (XS_DONE in our slot there, what it delivers again if we die), then give
 * the group credits back. */
static int
xatt_give_group(void *xv, uint32_t n)
{
    struct xatt *a = xv;
    if (!a->S)
        return PXS_OK;
    int p = a->last_prod;
    if (p >= 0 && p < a->E && a->slot[p] >= 0) {
        a->done[p] += n;
        uint64_t at = a->area[p] + XR_HDR + (uint64_t)a->slot[p] * XR_SLOT_SIZE + XS_DONE;
        ucs_status_ptr_t rq = x_put(a->up.ep[p], &a->done[p], 8, at, a->area_rk[p]);
        ucs_status_t st = xatt_wait(a, MPI_COMM_NULL, &rq, 1, 10.0);
        if (st != UCS_OK)
            return pxsi_err(PXS_ERR_PEER, SUBSYS, "exporting rank %d (group event done): UCX: %s",
                            p, ucs_status_string(st));
    }
    return xatt_self_add(a, XM_GCRED, n, NULL);
}
static int
xatt_append(void *xv, int target, unsigned char *recs, uint32_t n)
{
    (void)xv;
    (void)target;
    (void)recs;
    (void)n;
    return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "an attached job does not publish");
}
static void
xatt_progress(void *xv)
{
    ucp_worker_progress(((struct xatt *)xv)->up.w);
}
static uint32_t
xatt_capacity(void *xv, int target)
{
    (void)target;
    return ((struct xatt *)xv)->S;
}
static uint32_t
xatt_depth(void *xv)
{
    (void)xv;
    return 0;
}

static const pxsi_xport_ops_t xatt_ops = {
    .take_credits = xatt_no_send,
    .give_group = xatt_give_group,
    .poison = NULL,
    .append = xatt_append,
    .progress = xatt_progress,
    .inbox_next = xatt_inbox_next,
    .capacity = xatt_capacity,
    .depth = xatt_depth,
};

static void
xatt_stats(pxs_bus_t *bus, pxs_bus_stats_t *out)
{
    struct xatt *a = bus->backend;
    pxsi_core_stats(&a->core, out);
}

/* Detach: XS_OFF into each of our registration slots; then wait (bounded)
 * for the exporting ranks that may still write here to acknowledge, so no
 * write lands in unmapped memory; a mailbox not acknowledged is left
 * mapped (freed with the worker's context). */
static void
xatt_free(struct xatt *a, int unmap)
{
    if (a->live_rq && !UCS_PTR_IS_ERR(a->live_rq))
        (void)xatt_wait(a, MPI_COMM_NULL, &a->live_rq, 1, 2.0);
    for (int i = 0; a->area_rk && i < a->E; i++)
        if (a->area_rk[i])
            ucp_rkey_destroy(a->area_rk[i]);
    if (a->self_rk)
        ucp_rkey_destroy(a->self_rk);
    pxsi_ucx_ep_close(a->up.w, a->self_ep);
    if (unmap) {
        if (a->mh)
            ucp_mem_unmap(a->up.ctx, a->mh);
        if (a->mpages)
            munmap(a->mpages, a->mlen);
    } else if (a->mh || a->mpages) {
        pxsi_ucx_keep_region(a->store_st, a->mh, a->mpages, a->mlen);
    }
    pxsi_core_fini(&a->core);
    free(a->slot);
    free(a->gen);
    free(a->done);
    free(a->area_rk);
    free(a->area);
    if (a->comm != MPI_COMM_NULL)
        MPI_Comm_free(&a->comm);
    if (a->late) { /* a released request may still land in a or body */
        PXSI_DEBUG(SUBSYS, "a UCX wait expired: %zu B kept for late completions",
                   sizeof *a + (size_t)XR_SLOT_SIZE);
        return;
    }
    free(a->body);
    free(a);
}

/* Detach, after the exporting ranks told stopped routing here: the group
 * events still unread in our mailbox go back to their producers (into our
 * registration slot there, then state XS_RET), which hand them to another
 * member of the group. Plain events unread here are dropped (the
 * subscriber left). Every told rank gets XS_RET, with 0 records or more. */
static void
xatt_give_back_group(struct xatt *a, const unsigned char *told, int acked)
{
    unsigned char *ret = NULL;
    uint64_t *n = calloc((size_t)a->E, sizeof *n);
    if (told && n && a->S && acked)
        ret = malloc((size_t)a->E * XS_RET_MAX * PXSI_REC_SIZE);
    if (ret) {
        const uint64_t *seq = (const uint64_t *)(const void *)(a->mb + XM_SEQ);
        for (uint64_t h = a->head;; h++) {
            uint32_t i = (uint32_t)(h % a->S);
            if (__atomic_load_n(&seq[i], __ATOMIC_ACQUIRE) != h + 1)
                break;
            const unsigned char *rec = a->mb + XM_SEQ + 8 * (size_t)a->S + (size_t)i * PXSI_REC_SIZE;
            uint32_t topic = pxsi_get_le32(rec + PXSI_REC_O_TOPIC);
            int32_t prod = (int32_t)pxsi_get_le32(rec + PXSI_REC_O_PROD);
            int grp = 0;
            for (int j = 0; j < a->core.n_stopics; j++)
                if (a->core.stopics[j].id == topic)
                    grp = a->core.stopics[j].is_group;
            if (!grp || pxsi_get_le16(rec + PXSI_REC_O_FLAGS) != 0 || prod < 0 || prod >= a->E)
                continue;
            if (!told[prod] || n[prod] >= XS_RET_MAX) {
                PXSI_WARN(SUBSYS, "detach: a group event of topic %u from exporting rank %d "
                          "cannot be given back; it is lost", topic, (int)prod);
                continue;
            }
            memcpy(ret + ((size_t)prod * XS_RET_MAX + n[prod]++) * PXSI_REC_SIZE, rec,
                   PXSI_REC_SIZE);
        }
    } else if (told && a->S) {
        for (int i = 0; i < a->E; i++)
            if (told[i])
                PXSI_WARN(SUBSYS, "detach: %s: group events unread here are not given back "
                          "to exporting rank %d", acked ? "out of memory" :
                          "not every exporting rank acknowledged", i);
    }
    for (int i = 0; told && i < a->E; i++) {
        if (!told[i])
            continue;
        uint64_t at = a->area[i] + XR_HDR + (uint64_t)a->slot[i] * XR_SLOT_SIZE;
        uint64_t cnt = n && ret ? n[i] : 0;
        ucs_status_ptr_t rq[4] = {NULL, NULL, NULL, NULL};
        ucs_status_t st = UCS_OK;
        if (cnt) {
            rq[0] = x_put(a->up.ep[i], ret + (size_t)i * XS_RET_MAX * PXSI_REC_SIZE,
                          (size_t)cnt * PXSI_REC_SIZE, at + XS_RECS, a->area_rk[i]);
            rq[1] = x_put(a->up.ep[i], &n[i], 8, at + XS_RETN, a->area_rk[i]);
            rq[2] = x_flush(a->up.ep[i]);
            st = xatt_wait(a, MPI_COMM_NULL, rq, 3, 5.0);
        }
        if (st == UCS_OK) {
            a->state_word = XS_STATE_OF(XS_RET, a->gen[i]);
            rq[0] = x_put(a->up.ep[i], &a->state_word, 8, at + XS_STATE, a->area_rk[i]);
            rq[1] = x_flush(a->up.ep[i]);
            st = xatt_wait(a, MPI_COMM_NULL, rq, 2, 5.0);
        }
        if (st != UCS_OK && cnt)
            PXSI_WARN(SUBSYS, "detach: %llu group event(s) could not be given back to "
                      "exporting rank %d (UCX: %s); they are lost",
                      (unsigned long long)cnt, i, ucs_status_string(st));
        else if (cnt)
            PXSI_DEBUG(SUBSYS, "detach: %llu unread group event(s) given back to exporting "
                       "rank %d", (unsigned long long)cnt, i);
    }
    if (a->late)
        return; /* ret and n may be the buffers of released puts: kept */
    free(ret);
    free(n);
}

static int
xatt_destroy(pxs_bus_t *bus)
{
    struct xatt *a = bus->backend;
    uint32_t want = 0;
    unsigned char *told = calloc((size_t)a->E, 1); /* [E] XS_OFF put there */
    for (int i = 0; i < a->E; i++) {
        if (a->slot[i] < 0)
            continue;
        int ended = 1; /* all our topics from rank i over: it writes no more */
        for (int j = 0; j < a->core.n_stopics; j++) {
            const struct pxsi_stopic *st = &a->core.stopics[j];
            const struct pxsi_link *l = pxsi_core_link(st, i);
            if (l && !l->ended)
                ended = 0;
        }
        if (ended)
            continue; /* it routes nothing here any more: nothing to tell */
        uint64_t at = a->area[i] + XR_HDR + (uint64_t)a->slot[i] * XR_SLOT_SIZE + XS_STATE;
        ucs_status_ptr_t rq[2];
        a->state_word = XS_STATE_OF(XS_OFF, a->gen[i]);
        rq[0] = x_put(a->up.ep[i], &a->state_word, 8, at, a->area_rk[i]);
        rq[1] = x_flush(a->up.ep[i]);
        ucs_status_t st = xatt_wait(a, MPI_COMM_NULL, rq, 2, 5.0);
        if (st == UCS_OK) {
            want++;
            if (told)
                told[i] = 1;
        }
    }
    /* acknowledgements, bounded: 2 x send_timeout at most 10 s */
    double bound = a->core.send_timeout < 0 || a->core.send_timeout > 5.0
                       ? 10.0
                       : 2 * a->core.send_timeout;
    int acked = want == 0;
    if (!acked && a->S) {
        pxsi_backoff_t b;
        pxsi_backoff_init(&b, bound);
        uint64_t got = 0;
        while (xatt_self_add(a, XM_ACK, 0, &got) == PXS_OK && got < want &&
               !pxsi_backoff_expired(&b) && xatt_live(a) == PXS_OK) {
            if (!ucp_worker_progress(a->up.w))
                pxsi_backoff_pause(&b);
        }
        acked = got >= want;
        PXSI_DEBUG(SUBSYS, "detach: %llu of %u acknowledgement(s) after %.2f s", (unsigned long long)got, want, bound - pxsi_backoff_left(&b));
        if (!acked)
            PXSI_DEBUG(SUBSYS, "detach: %llu of %u exporting rank(s) acknowledged; the "
                       "mailbox (%zu B) is freed with the store",
                       (unsigned long long)got, want, a->mlen);
    }
    xatt_give_back_group(a, told, acked);
    free(told);
    int mrc = MPI_Barrier(a->comm);
    pxsi_bus_stats_at_destroy(bus);
    xatt_free(a, acked || a->S == 0);
    return pxsi_mpi_err(mrc, SUBSYS, "MPI_Barrier (detach)");
}

/* One exporting rank's bus entry parsed. */
struct xent {
    uint32_t nt, ng;
    const unsigned char *topics, *groups, *key;
    uint64_t area, klen;
};

static int
parse_ent(const unsigned char *b, size_t len, struct xent *e, int i)
{
    if (len < 24)
        goto bad;
    memcpy(&e->nt, b, 4);
    memcpy(&e->ng, b + 4, 4);
    memcpy(&e->area, b + 8, 8);
    memcpy(&e->klen, b + 16, 8);
    if (e->nt > 65536 || e->ng > 65536 || 24 + 4 * (size_t)e->nt > len)
        goto bad;
    e->topics = b + 24;
    size_t at = 24 + 4 * (size_t)e->nt;
    e->groups = b + at;
    for (uint32_t g = 0; g < e->ng; g++) {
        if (at + 5 > len || b[at + 4] > PXS_GROUP_NAME_MAX)
            goto bad;
        at += 5 + b[at + 4];
    }
    if (at > len || len - at != e->klen || e->klen == 0)
        goto bad;
    e->key = b + at;
    return PXS_OK;
bad:
    return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "contact: rank %d's bus entry is malformed", i);
}

/* A free registration slot at exporting rank i: read its freed[] table,
 * compare-and-swap claim[s] from freed[s] to freed[s] + 1 (from a start
 * spread by job and rank), waiting up to timeout while none is free.
 * *s_out = -1: none within the timeout. */
static ucs_status_t
xatt_claim(struct xatt *a, int i, uint64_t job, double timeout, int *s_out)
{
    uint64_t *fr = (uint64_t *)(void *)(a->body + XS_BODY); /* scratch, 1 KiB */
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, timeout);
    *s_out = -1;
    uint32_t start = (uint32_t)((job ^ (job >> 32)) + 7u * (uint32_t)a->arank) % PXSI_XBUS_REGS;
    for (;;) {
        ucs_status_ptr_t rq =
            x_get(a->up.ep[i], fr, 8 * PXSI_XBUS_REGS, a->area[i] + XR_FREED, a->area_rk[i]);
        ucs_status_t st = xatt_wait(a, a->comm, &rq, 1, timeout);
        if (st != UCS_OK)
            return st;
        for (uint32_t k = 0; k < PXSI_XBUS_REGS; k++) {
            uint32_t s = (start + k) % PXSI_XBUS_REGS;
            if (fr[s] == XR_OFF_SLOT)
                continue;
            a->buf[0] = fr[s];     /* compare (UCX: "buffer") */
            a->buf[1] = fr[s] + 1; /* swap in; the old value out ("reply_buffer") */
            rq = x_amo(a->up.ep[i], UCP_ATOMIC_OP_CSWAP, &a->buf[0], &a->buf[1],
                       a->area[i] + XR_CLAIM + 8 * (uint64_t)s, a->area_rk[i]);
            if ((st = xatt_wait(a, a->comm, &rq, 1, timeout)) != UCS_OK)
                return st;
            if (a->buf[1] == fr[s]) {
                *s_out = (int)s;
                a->gen[i] = (uint32_t)(fr[s] + 1);
                return UCS_OK;
            }
        }
        if (pxsi_backoff_expired(&b))
            return UCS_OK;
        if (!ucp_worker_progress(a->up.w))
            pxsi_backoff_pause_mpi(&b, a->comm);
    }
}

/* Register this rank at exporting rank i (slot claim, body, state). */
static int
xatt_register(struct xatt *a, int i, uint64_t token, uint64_t job,
              const pxs_subscription_t *subs, size_t n_subs, double timeout)
{
    ucs_status_ptr_t rq[2];
    int s = -1;
    ucs_status_t st = xatt_claim(a, i, job, timeout, &s);
    if (st != UCS_OK)
        return pxsi_err(PXS_ERR_PEER, SUBSYS, "registration at exporting rank %d: UCX: %s", i,
                        ucs_status_string(st));
    if (s < 0)
        return pxsi_err(PXS_ERR_AGAIN, SUBSYS,
                        "exporting rank %d: all its registration slots (at most %d: one "
                        "per attaching rank attached now) stayed in use for %g s",
                        i, PXSI_XBUS_REGS, timeout);
    unsigned char *b = a->body;
    memset(b, 0, XR_SLOT_SIZE);
    ucp_address_t *wa = NULL;
    size_t alen = 0;
    void *key = NULL;
    size_t klen = 0;
    st = ucp_worker_get_address(a->up.w, &wa, &alen);
    if (st == UCS_OK)
        st = ucp_rkey_pack(a->up.ctx, a->mh, &key, &klen);
    int rc = st == UCS_OK ? PXS_OK
                          : pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "worker address / key: UCX: %s",
                                     ucs_status_string(st));
    if (rc == PXS_OK && alen + klen > XS_BODY - XS_VAR)
        rc = pxsi_err(PXS_ERR_NOTSUP, SUBSYS,
                      "worker address (%zu B) and key (%zu B) do not fit a registration slot",
                      alen, klen);
    if (rc == PXS_OK) {
        uint32_t v32[2];
        uint64_t mb = (uint64_t)(uintptr_t)a->mb;
        memcpy(b + XS_TOKEN, &token, 8);
        memcpy(b + XS_JOB, &job, 8);
        v32[0] = (uint32_t)a->arank;
        v32[1] = (uint32_t)a->asize;
        memcpy(b + XS_JRANK, v32, 8);
        v32[0] = a->S;
        v32[1] = (uint32_t)n_subs;
        memcpy(b + XS_SLOTS, v32, 8);
        memcpy(b + XS_MBOX, &mb, 8);
        v32[0] = (uint32_t)alen;
        v32[1] = (uint32_t)klen;
        memcpy(b + XS_ALEN, v32, 8);
        for (size_t k = 0; k < n_subs; k++) {
            unsigned char *q = b + XS_SUBS + k * XS_SUB_SIZE;
            size_t gl = subs[k].group ? strlen(subs[k].group) : 0;
            memcpy(q, &subs[k].topic, 4);
            q[4] = (unsigned char)gl;
            memcpy(q + 5, subs[k].group ? subs[k].group : "", gl);
        }
        memcpy(b + XS_VAR, wa, alen);
        memcpy(b + XS_VAR + alen, key, klen);
#ifdef PXS_TEST_HOOKS
        /* test hooks (tests/mpi/test_xbus.c): a wrong token, a mailbox
         * size that is not the export's */
        if (pxsi_env_bool("PXS_TEST_XBUS_BAD_TOKEN", 0)) {
            uint64_t bad = token ^ 0x5a5a5a5a5a5a5a5aull;
            memcpy(b + XS_TOKEN, &bad, 8);
        }
        if (pxsi_env_bool("PXS_TEST_XBUS_BIG_MAILBOX", 0)) {
            uint32_t big = a->S * 64;
            memcpy(b + XS_SLOTS, &big, 4);
        }
#endif
    }
    if (wa)
        ucp_worker_release_address(a->up.w, wa);
    if (key)
        ucp_rkey_buffer_release(key);
    if (rc != PXS_OK)
        return rc;
    uint64_t at = a->area[i] + XR_HDR + (uint64_t)s * XR_SLOT_SIZE;
    rq[0] = x_put(a->up.ep[i], b + 8, XS_BODY - 8, at + 8, a->area_rk[i]);
    rq[1] = x_flush(a->up.ep[i]);
    st = xatt_wait(a, a->comm, rq, 2, timeout);
    if (st == UCS_OK) {
        a->state_word = XS_STATE_OF(XS_ON, a->gen[i]);
        rq[0] = x_put(a->up.ep[i], &a->state_word, 8, at, a->area_rk[i]);
        rq[1] = x_flush(a->up.ep[i]);
        st = xatt_wait(a, a->comm, rq, 2, timeout);
    }
    if (st != UCS_OK)
        return pxsi_err(PXS_ERR_PEER, SUBSYS, "registration at exporting rank %d: UCX: %s", i,
                        ucs_status_string(st));
    a->slot[i] = s;
    return PXS_OK;
}

int
pxsi_xbus_attach(MPI_Comm comm, void *store_st, uint64_t token, uint32_t attach_slots, int E,
                 const unsigned char *const *ent, const size_t *elen,
                 const pxs_subscription_t *subs, size_t n_subs, double timeout,
                 pxs_bus_t **bus_out)
{
    /* comm: a duplicate this bus owns (freed on failure too) */
    struct xatt *a = calloc(1, sizeof *a);
    int rc = a ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "attached bus");
    if (a)
        a->comm = comm;
    struct xent *e = calloc((size_t)E, sizeof *e);
    unsigned char **decls = calloc((size_t)E + 1, sizeof *decls);
    unsigned char *mine = NULL, *all = NULL;
    int *lens = NULL, *displ = NULL;
    if (rc == PXS_OK && (!e || !decls))
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "attached bus tables");
    pxs_bus_opts_t o, in;
    if (rc == PXS_OK) {
        MPI_Comm_rank(comm, &a->arank);
        MPI_Comm_size(comm, &a->asize);
        a->E = E;
        pxsi_ucx_parts(store_st, &a->up);
        a->store_st = store_st;
        rc = pxs_bus_opts_init(&in); /* PXS_* environment defaults */
        in.subscribe = subs;
        in.n_subscribe = n_subs;
        if (rc == PXS_OK)
            rc = pxsi_bus_opts_resolve(&in, &o);
    }
    if (rc == PXS_OK && n_subs > PXSI_XBUS_SUBS_MAX)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_attach: %zu subscriptions (at most %d)",
                      n_subs, PXSI_XBUS_SUBS_MAX);
    for (int i = 0; rc == PXS_OK && i < E; i++)
        rc = parse_ent(ent[i], elen[i], &e[i], i);
    /* a group may mix members of both jobs: the exporting producers share
     * its events between their local members and ours (xexp pick) */
    rc = pxsi_agree_why(comm, rc);
    if (rc != PXS_OK)
        goto fail;
    /* declarations: the exporting ranks publish their topics; ours */
    for (int i = 0; rc == PXS_OK && i < E; i++) {
        uint32_t *tp = malloc(4 * ((size_t)e[i].nt + 1));
        if (!tp) {
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "declarations");
            break;
        }
        memcpy(tp, e[i].topics, 4 * (size_t)e[i].nt);
        pxs_bus_opts_t po;
        memset(&po, 0, sizeof po);
        po.publish = tp;
        po.n_publish = e[i].nt;
        size_t l = 0;
        rc = pxsi_decl_pack(&po, 0, &decls[i], &l);
        free(tp);
    }
    a->S = n_subs ? attach_slots : 0;
    size_t mlen = 0;
    if (rc == PXS_OK)
        rc = pxsi_decl_pack(&o, a->S, &mine, &mlen);
    rc = pxsi_agree(comm, rc);
    lens = calloc((size_t)a->asize, sizeof *lens);
    displ = calloc((size_t)a->asize, sizeof *displ);
    int il = (int)mlen;
    rc = pxsi_agree(comm, rc == PXS_OK && (!lens || !displ)
                              ? pxsi_err(PXS_ERR_NOMEM, SUBSYS, "declarations")
                              : rc);
    if (rc == PXS_OK)
        rc = pxsi_agree(comm, pxsi_mpi_err(MPI_Allgather(&il, 1, MPI_INT, lens, 1, MPI_INT,
                                                         comm),
                                           SUBSYS, "MPI_Allgather (declarations)"));
    size_t total = 0;
    if (rc == PXS_OK) {
        for (int r = 0; r < a->asize; r++) {
            displ[r] = (int)total;
            total += (size_t)lens[r];
        }
        all = malloc(total ? total : 1);
        rc = pxsi_agree(comm, all ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "declarations"));
    }
    if (rc == PXS_OK)
        rc = pxsi_agree(comm, pxsi_mpi_err(MPI_Allgatherv(mine, il, MPI_BYTE, all, lens, displ,
                                                          MPI_BYTE, comm),
                                           SUBSYS, "MPI_Allgatherv (declarations)"));
    if (rc != PXS_OK)
        goto fail;
    {
        unsigned char **d2 = realloc(decls, ((size_t)E + (size_t)a->asize) * sizeof *d2);
        rc = d2 ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "declarations");
        if (d2) {
            decls = d2;
            for (int r = 0; r < a->asize; r++)
                decls[E + r] = all + displ[r];
        }
    }
    rc = pxsi_agree(comm, rc);
    if (rc != PXS_OK)
        goto fail;
    rc = pxsi_core_init(&a->core, E + a->arank, E + a->asize, decls, &o, &xatt_ops, a);
    if (rc == PXS_OK)
        a->core.join_late = 1;
    /* mailbox, self endpoint, the exporting ranks' registration areas */
    a->slot = malloc((size_t)E * sizeof *a->slot);
    a->gen = calloc((size_t)E, sizeof *a->gen);
    a->done = calloc((size_t)E, sizeof *a->done);
    a->last_prod = -1;
    a->area_rk = calloc((size_t)E, sizeof *a->area_rk);
    a->area = calloc((size_t)E, sizeof *a->area);
    a->body = calloc(1, XR_SLOT_SIZE);
    if (rc == PXS_OK && (!a->slot || !a->gen || !a->done || !a->area_rk || !a->area || !a->body))
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "attached bus tables");
    for (int i = 0; a->slot && i < E; i++)
        a->slot[i] = -1;
    if (rc == PXS_OK && a->S) {
        /* our own pages, not UCX's: a mailbox whose detach no exporting
         * rank acknowledged is handed to the store, which frees it after
         * its worker (a late write lands there, harmlessly) */
        a->mlen = XM_SIZE(a->S);
        void *p = mmap(NULL, a->mlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            p = NULL;
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "mailbox of %zu B", a->mlen);
        } else {
            a->mpages = p;
        }
        if (rc == PXS_OK)
            rc = pxsi_ucx_map(a->up.ctx, a->mlen,
                          UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE |
                              UCP_MEM_MAP_PROT_REMOTE_READ | UCP_MEM_MAP_PROT_REMOTE_WRITE,
                          &a->mh, &p);
        if (rc == PXS_OK) {
            a->mb = p;
            memset(a->mb, 0, XM_SIZE(a->S));
            /* before anyone can reach it; group events in flight here at
             * most XS_RET_MAX: what a detach can give back (xatt_destroy) */
            int64_t cred = a->S, gcred = pxsi_bus_prefetch(&o);
            if (gcred > (int64_t)XS_RET_MAX)
                gcred = XS_RET_MAX;
            memcpy(a->mb + XM_CRED, &cred, 8);
            memcpy(a->mb + XM_GCRED, &gcred, 8);
            a->credit_batch = a->S / 8 ? (a->S / 8 > 64 ? 64 : a->S / 8) : 1;
            ucp_address_t *wa = NULL;
            size_t wl = 0;
            void *key = NULL;
            size_t kl = 0;
            ucs_status_t st = ucp_worker_get_address(a->up.w, &wa, &wl);
            if (st == UCS_OK) {
                rc = pxsi_ucx_ep_open(a->up.w, wa, &a->self_err, &a->self_ep);
                ucp_worker_release_address(a->up.w, wa);
            } else {
                rc = pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "ucp_worker_get_address: UCX: %s",
                              ucs_status_string(st));
            }
            if (rc == PXS_OK) {
                st = ucp_rkey_pack(a->up.ctx, a->mh, &key, &kl);
                if (st == UCS_OK)
                    st = ucp_ep_rkey_unpack(a->self_ep, key, &a->self_rk);
                if (key)
                    ucp_rkey_buffer_release(key);
                if (st != UCS_OK)
                    rc = pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "own mailbox key: UCX: %s",
                                  ucs_status_string(st));
            }
        }
    }
    for (int i = 0; rc == PXS_OK && i < E; i++) {
        a->area[i] = e[i].area;
        ucs_status_t st = ucp_ep_rkey_unpack(a->up.ep[i], e[i].key, &a->area_rk[i]);
        if (st != UCS_OK) {
            a->area_rk[i] = NULL;
            rc = pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "contact: rank %d's registration key: %s", i,
                          ucs_status_string(st));
        }
    }
    rc = pxsi_agree_why(comm, rc);
    if (rc != PXS_OK)
        goto fail;
    /* the job id: random, rank 0's */
    uint64_t job = 0;
    if (a->arank == 0)
        rc = pxsi_random_u64(&job);
    rc = pxsi_agree(comm, rc);
    if (rc == PXS_OK)
        rc = pxsi_agree(comm, pxsi_mpi_err(MPI_Bcast(&job, 1, MPI_UINT64_T, 0, comm), SUBSYS,
                                           "MPI_Bcast (job id)"));
    /* register (every rank at every exporting rank that publishes: producers
     * count complete jobs for export_wait; one that publishes nothing never
     * looks at its registration area) */
    for (int i = 0; rc == PXS_OK && i < E; i++)
        if (e[i].nt)
            rc = xatt_register(a, i, token, job, subs, n_subs, timeout);
    rc = pxsi_agree_why(comm, rc);
    if (rc != PXS_OK)
        goto fail;
    PXSI_DEBUG(SUBSYS, "attached as job %016llx rank %d/%d: %zu subscription(s), mailbox of %u "
               "slot(s), registered at %d exporting rank(s)",
               (unsigned long long)job, a->arank, a->asize, n_subs, a->S, E);
    for (int i = 0; i < E; i++)
        free(decls[i]);
    free(e);
    free(decls);
    free(all);
    free(mine);
    free(lens);
    free(displ);
    a->bus.magic = PXSI_MAGIC_BUS;
    a->bus.rank = a->arank;
    atomic_init(&a->bus.pub_in, 0);
    atomic_init(&a->bus.sub_in, 0);
    int level = MPI_THREAD_SINGLE;
    (void)MPI_Query_thread(&level);
    pxsi_bus_guard_init(&a->bus, level);
    a->bus.destroy = xatt_destroy;
    a->bus.stats = xatt_stats;
    a->bus.backend = a;
    a->bus.pub = (struct pxs_publisher){PXSI_MAGIC_PUB, &pxsi_core_pub_ops, &a->core};
    a->bus.sub = (struct pxs_subscriber){PXSI_MAGIC_SUB, &pxsi_core_sub_ops, &a->core, 0};
    *bus_out = &a->bus;
    return PXS_OK;
fail:
    if (e)
        for (int i = 0; decls && i < E; i++)
            free(decls[i]);
    free(e);
    free(decls);
    free(all);
    free(mine);
    free(lens);
    free(displ);
    if (a) {
        /* registrations made on some ranks: withdraw them */
        for (int i = 0; a->slot && i < E; i++)
            if (a->slot[i] >= 0) {
                a->state_word = XS_STATE_OF(XS_RET, a->gen[i]); /* nothing to give back */
                uint64_t at = a->area[i] + XR_HDR + (uint64_t)a->slot[i] * XR_SLOT_SIZE;
                ucs_status_ptr_t rq[2] = {x_put(a->up.ep[i], &a->state_word, 8, at,
                                                a->area_rk[i]),
                                          x_flush(a->up.ep[i])};
                (void)xatt_wait(a, MPI_COMM_NULL, rq, 2, 5.0);
            }
        xatt_free(a, 1);
    } else if (comm != MPI_COMM_NULL) {
        MPI_Comm_free(&comm);
    }
    return rc;
}

#else
typedef int pxsi_xport_ucx_not_built_; /* ISO C: no empty translation unit */
#endif /* PXS_HAVE_UCX */
