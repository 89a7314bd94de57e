/* Streams, the part producer and consumer share: their option initialisers.
 * The producer is in producer.c, the consumer in consumer.c; both include
 * stream_internal.h. */
#include "stream/stream_internal.h"
#include "util/options.h"
#include "util/util.h"

#define SUBSYS "stream"

/* ------------------------------------------------------------- options */

/* Defaults come from the option table (src/util/options.c): fields it does
 * not list are 0. */
int
pxs_producer_opts_init_(pxs_producer_opts_t *opts, size_t size)
{
    return pxsi_opts_init_from_table(PXSI_OWN_PRODUCER, opts, size, SUBSYS,
                                     "pxs_producer_opts_init");
}

int
pxs_send_opts_init_(pxs_send_opts_t *opts, size_t size)
{
    return pxsi_opts_init_from_table(PXSI_OWN_SEND, opts, size, SUBSYS, "pxs_send_opts_init");
}

int
pxs_consumer_opts_init_(pxs_consumer_opts_t *opts, size_t size)
{
    return pxsi_opts_init_from_table(PXSI_OWN_CONSUMER, opts, size, SUBSYS,
                                     "pxs_consumer_opts_init");
}
