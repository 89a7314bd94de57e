/** @file proxystream/log.h
 *  Stream log and replay (HDF5 builds; see docs/DESIGN.md, section
 *  "HDF5 connector", "Stream log and replay").
 *
 *  A producer created with pxs_producer_opts_t.log_path appends every event
 *  it publishes (topic, producer, seq, metadata, proxy) and an END record
 *  for every topic it closes to its own HDF5 file in that directory
 *  (pxs-log-p<producer>-<random>.h5, SWMR). A replay subscriber reads such
 *  a directory later (or while the producers still run) and is one more
 *  implementation of the subscriber interface: a consumer created on it
 *  (pxs_consumer_create) with a store from pxs_store_open reads the
 *  recorded stream, in order per (producer, topic), with PXS_END once every
 *  logged producer closed every subscribed topic it logged. The proxies are
 *  the ones published: they resolve in a later job when the producers'
 *  store was an HDF5 store (pxs_store_open on its directory); with
 *  log_bytes = 1 the log names durable copies, opened with
 *  pxs_store_open(log_path). */
#ifndef PROXYSTREAM_LOG_H
#define PROXYSTREAM_LOG_H

#include "proxystream/common.h"
#include "proxystream/pubsub.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Open a replay subscriber on the stream log in directory `path`, for the
 *  topics in subs[0..n) (a group name is accepted and ignored: the replay
 *  reader gets every event of its topics; PXS_TOPIC_ALL = every topic).
 *  Local. Close with pxs_log_subscriber_close after the consumers on it are
 *  destroyed.
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_NOT_FOUND (no log file in path),
 *  PXS_ERR_CORRUPT (a file that is not a stream log), PXS_ERR_IO,
 *  PXS_ERR_NOMEM, PXS_ERR_NOTSUP (no HDF5 in this build). */
PXS_API PXS_NODISCARD int pxs_log_subscriber_open(const char *path, const pxs_subscription_t *subs,
                                                  size_t n, pxs_subscriber_t **sub_out);
/** Close a replay subscriber. NULL: no-op. */
PXS_API int pxs_log_subscriber_close(pxs_subscriber_t *sub);

#ifdef __cplusplus
}
#endif
#endif
