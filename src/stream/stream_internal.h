/* Stream layer internals (not installed). */
#ifndef PXSI_STREAM_INTERNAL_H
#define PXSI_STREAM_INTERNAL_H

#include "proxystream/stream.h"

#define PXSI_PRODUCER_MAGIC 0x50727064u /* "Prod" */
#define PXSI_CONSUMER_MAGIC 0x436f6e73u /* "Cons" */

/* Per-topic state of a producer. */
typedef struct pxsi_ptopic {
    uint32_t topic;
    int closed;
    int used; /* listed in opts or published on at least once */
    uint64_t next_seq; /* stamped into proxies (informational) */
} pxsi_ptopic_t;

struct pxs_producer {
    uint32_t magic;
    pxs_store_t *store;
    pxs_publisher_t *pub;
    pxs_producer_opts_t opts; /* topics pointer not used after create */
    pxsi_ptopic_t *topics;
    size_t n_topics, cap_topics;
    int fixed_topics;         /* opts listed the topics: no others allowed */
    uint32_t unflushed;       /* sends since the last flush */
    double first_unflushed_t; /* time of the oldest unflushed send */
    uint64_t sent, bytes, forwarded;
};

struct pxs_consumer {
    uint32_t magic;
    pxs_store_t *store;
    pxs_subscriber_t *sub;
    pxs_consumer_opts_t opts;
    int ended;
    uint64_t delivered, dropped, resolved_bytes;
};

/* Tests only: poison a consumer's magic and release what it holds without
 * freeing the struct, so "use after destroy" can be tested on memory that is
 * still legally readable; pxsi_consumer_free() then frees it. */
void pxsi_consumer_poison(pxs_consumer_t *cons);
void pxsi_consumer_free(pxs_consumer_t *cons);

#endif
