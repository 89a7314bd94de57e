/* What the stream layer (src/stream) may ask a publisher, defined at the end
 * of core.c. A separate header: the stream layer has its own structs of the
 * same names as the event plane's internals. Not installed. */
#ifndef PXSI_PUBSUB_STREAM_H
#define PXSI_PUBSUB_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "proxystream/pubsub.h"

/* Topic i (0-based; sorted, unique) the publisher declared, and their number
 * (*n_out; either output may be NULL; id_out untouched when i >= n).
 * PXS_ERR_INVALID (not a publisher), or, on an in-process bus whose
 * participants did not all join within send_timeout, PXS_ERR_TIMEDOUT. */
int pxsi_publisher_topic(pxs_publisher_t *pub, size_t i, uint32_t *id_out,
                         size_t *n_out);

/* Fan-out of a declared topic: plain subscribers + groups (a group counts
 * once: one member gets each event). PXS_ERR_NOT_FOUND if not declared. */
int pxsi_publisher_fanout(pxs_publisher_t *pub, uint32_t topic,
                          uint32_t *n_out);

/* This publisher's rank in its bus (the events' producer field). */
int pxsi_publisher_rank(pxs_publisher_t *pub, int *rank_out);

#endif
