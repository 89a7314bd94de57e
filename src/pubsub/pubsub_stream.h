/* What the stream layer (src/stream) may ask a publisher, defined at the end
 * of core.c, and the close state of a topic that both share. A separate
 * header so the stream layer does not see the event plane's internals. Not
 * installed. */
#ifndef PXSI_PUBSUB_STREAM_H
#define PXSI_PUBSUB_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "proxystream/pubsub.h"

/* Close state of a published topic, one representation for the publisher
 * (struct pxsi_ptopic in pubsub/pubsub_int.h) and the producer
 * (pxsi_prod_topic_t in stream/stream_internal.h).
 * CLOSING: close was asked but END is not delivered yet (the close returned
 * an error, typically PXS_ERR_AGAIN under backpressure, after END was queued
 * or before): sends already get PXS_ERR_CLOSED; a retry of the close (or, in
 * the publisher, a flush) queues END if it is not queued yet and delivers it.
 * CLOSED: END delivered. */
typedef enum pxsi_topic_state {
    PXSI_TOPIC_OPEN = 0,
    PXSI_TOPIC_CLOSING = 1,
    PXSI_TOPIC_CLOSED = 2
} pxsi_topic_state_t;

/* Topic i (0-based; sorted, unique) the publisher declared, and their number
 * (*n_out; either output may be NULL; id_out untouched when i >= n).
 * PXS_ERR_INVALID (not a publisher), or, on an in-process bus whose
 * participants did not all join within send_timeout, PXS_ERR_TIMEDOUT. */
int pxsi_publisher_topic(pxs_publisher_t *pub, size_t i, uint32_t *id_out,
                         size_t *n_out);

/* Fan-out of a declared topic: plain subscribers + groups (a group counts
 * once: one member gets each event). PXS_ERR_NOT_FOUND if not declared.
 * *fixed_out: 1 when it is the same for every event; 0 on an exported bus,
 * where it also counts the attached plain subscribers and groups of the
 * topic now, and the next send routes to no registration picked up after
 * this call (docs/DESIGN.md "Events across jobs", Budgets). */
int pxsi_publisher_fanout(pxs_publisher_t *pub, uint32_t topic,
                          uint32_t *n_out, int *fixed_out);

/* This publisher's rank in its bus (the events' producer field). */
int pxsi_publisher_rank(pxs_publisher_t *pub, int *rank_out);

/* Inline events (docs/DESIGN.md, section "Inline chunks"). fits: *ok_out
 * = 1 when an inline event of len payload bytes may go to every destination
 * of the topic (its record run is within each one's bound). send: publish
 * an inline event; PXS_ERR_TOO_BIG when it does not fit, else as
 * pxs_publisher_send. */
int pxsi_publisher_inline_fits(pxs_publisher_t *pub, uint32_t topic, size_t len, int *ok_out);
int pxsi_publisher_send_inline(pxs_publisher_t *pub, uint32_t topic, const void *data,
                               size_t len, const void *meta, size_t meta_len,
                               uint64_t *seq_out);
/* pxs_publisher_send of a proxy the caller's store made in this call (not
 * inline) with metadata the caller checked (meta_len <= PXS_EVENT_META_MAX,
 * meta not NULL when meta_len > 0): no second validation of the proxy (the
 * producer's per-chunk path, docs/DESIGN.md "Event path cost"). */
int pxsi_publisher_send_trusted(pxs_publisher_t *pub, uint32_t topic, const pxs_proxy_t *proxy,
                                const void *meta, size_t meta_len, uint64_t *seq_out);

#endif
