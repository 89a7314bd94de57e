/* Stream layer internals (not installed). */
#ifndef PXSI_STREAM_INTERNAL_H
#define PXSI_STREAM_INTERNAL_H

#include "proxystream/stream.h"
#include "pubsub/pubsub_stream.h"

#define PXSI_PRODUCER_MAGIC 0x50727064u /* "Prod" */
#define PXSI_CONSUMER_MAGIC 0x436f6e73u /* "Cons" */

/* Per-topic state of a producer (the publisher's own per-topic state is
 * struct pxsi_ptopic in pubsub/pubsub_int.h). */
typedef struct pxsi_prod_topic {
    uint32_t topic;
    pxsi_topic_state_t closed; /* see pubsub/pubsub_stream.h */
    int used; /* listed in opts or published on at least once */
    uint64_t next_seq; /* stamped into proxies (informational) */
    uint32_t budget;   /* default resolve budget (fan-out); 0 = not known yet */
} pxsi_prod_topic_t;

struct pxs_producer {
    uint32_t magic;
    pxs_store_t *store;
    pxs_publisher_t *pub;
    pxs_producer_opts_t opts; /* topics pointer not used after create */
    /* Topic table: the listed topics, or (no list) the topics the publisher
     * accepted a send or close on; a topic it rejects (NOT_FOUND) is never
     * added, so bad input cannot grow the table (tests read n/cap). */
    pxsi_prod_topic_t *topics;
    size_t n_topics, cap_topics;
    pxsi_prod_topic_t scratch;    /* state of a topic not in the table yet */
    size_t n_closing;         /* topics in PXSI_TOPIC_CLOSING */
    int fixed_topics;         /* opts listed the topics: no others allowed */
    uint32_t unflushed;       /* sends since the last flush */
    double first_unflushed_t; /* time of the oldest unflushed send */
    uint64_t unflushed_bytes; /* payload bytes those sends name (producer.c,
                                 PXSI_PROD_FLUSH_BYTES) */
    uint64_t sent, bytes, forwarded, failed;
    struct pxsi_pubref *ref; /* this publisher's producers (stream.c) */
    struct pxsi_slog *log;   /* opts.log_path: the stream log (slog.c), else NULL */
    int log_rc;              /* first failure to append to the log (reported by destroy) */
    pxs_store_t *log_store;  /* log_bytes: a one-rank HDF5 store in the log directory
                                holding durable copies of non-HDF5 payloads */
    /* the defaults of pxs_send_opts_init / pxs_put_opts_init (fixed values),
     * made once at create: a send starts from copies, not from the options
     * table (per-chunk cost, docs/DESIGN.md "Event path cost") */
    pxs_send_opts_t so_default;
    pxs_put_opts_t po_default;
};

struct pxs_consumer {
    uint32_t magic;
    pxs_store_t *store;
    pxs_subscriber_t *sub;
    pxs_consumer_opts_t opts;
    int ended;
    uint64_t delivered, dropped, resolved_bytes, resolves, topics_ended;
};

/* Tests only: poison a consumer's magic and release what it holds without
 * freeing the struct, so "use after destroy" can be tested on memory that is
 * still legally readable; pxsi_consumer_free() then frees it. */
void pxsi_consumer_poison(pxs_consumer_t *cons);
void pxsi_consumer_free(pxs_consumer_t *cons);

#endif
