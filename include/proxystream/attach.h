/** @file proxystream/attach.h
 *  Across jobs: a running job exports its UCX store through a contact file;
 *  a separate job (another mpirun, started later, on other nodes) attaches
 *  to it and resolves the exporting job's proxies from its memory. No
 *  broker, daemon or server process. See docs/DESIGN.md, section "Export
 *  and attach".
 *
 *  Built with the UCX connector only (else PXS_ERR_NOTSUP). The store (the
 *  data plane) and, optionally, a bus's events: the attaching job's
 *  subscriptions are registered with the exporting producers (docs/DESIGN.md,
 *  subsection "Events across jobs"). */
#ifndef PROXYSTREAM_ATTACH_H
#define PROXYSTREAM_ATTACH_H

#include <mpi.h>

#include "proxystream/common.h"
#include "proxystream/pubsub.h"
#include "proxystream/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Export `store` (a PXS_CONN_UCX store) and, if `bus` is not NULL, that
 *  bus's published topics (an MPI bus over the same ranks in the same
 *  order, exported once) to `contact_path`. Collective over the store's
 *  communicator. An exported bus's producers pick attaching jobs'
 *  registrations up inside their own calls (send, flush, close) and route
 *  to them from then on; opts.export_wait makes sends wait while fewer
 *  attaching jobs are registered. Destroy the bus before the store. Rank 0 writes the file atomically (a
 *  temporary name in the same directory, then rename), mode 0600 whatever
 *  the umask: every rank's network worker address, the store's remote keys
 *  (the arena read-only), the store nonce, a random attach token, the
 *  creation time, host and process id. The store must stay alive (and its
 *  ranks running) while attached jobs use it; its progress thread serves
 *  them.
 *  @return PXS_OK, PXS_ERR_INVALID (not an MPI bus, exported already, other
 *  ranks than the store's), PXS_ERR_NOTSUP (not a UCX store), PXS_ERR_NOMEM,
 *  PXS_ERR_MPI (file I/O failures are PXS_ERR_INVALID naming the path and
 *  errno text). */
PXS_API PXS_NODISCARD int pxs_export(pxs_bus_t *bus, pxs_store_t *store,
                                     const char *contact_path);

/** Attach to an exported store and, with bus_out, to its exported bus
 *  with the subscriptions subs[0 .. n_subs) of this rank (plain or group;
 *  at most 16; a group may have members in both jobs: each event goes to
 *  one member of either job). The bus receives only (its publisher has no topics);
 *  recv ends with PXS_ERR_PEER if an exporting rank dies; pxs_bus_destroy
 *  (collective over comm, before pxs_store_destroy) detaches. Collective
 *  over `comm` (the attaching job's). Waits up to `timeout` s (< 0: forever) for the contact file,
 *  refuses a file that another user owns or that group or others can write
 *  (PXS_ERR_INVALID, as ssh refuses loose key files) or that is damaged
 *  (PXS_ERR_CORRUPT), connects to every exporting rank and checks that it
 *  still serves the store instance the file names: a file of a run that is
 *  gone gives PXS_ERR_PEER ("stale or the exporting job is gone"), one
 *  whose store was replaced PXS_ERR_STALE. *store_out is a store handle
 *  that resolves, views and drops the exporting job's proxies
 *  (pxs_store_resolve pulls the bytes from its memory); it owns no arena:
 *  put is PXS_ERR_INVALID. If the exporting job dies later, operations on
 *  it end with PXS_ERR_PEER. Destroy with pxs_store_destroy (collective
 *  over comm). pxs_store_rank of an attached store is -1 (it owns nothing).
 *  @return PXS_OK, PXS_ERR_TIMEDOUT (no file within the timeout),
 *  PXS_ERR_INVALID, PXS_ERR_CORRUPT, PXS_ERR_PEER, PXS_ERR_STALE,
 *  PXS_ERR_NOTSUP (a build without UCX), PXS_ERR_NOMEM, PXS_ERR_AGAIN
 *  (every registration slot of an exporting rank stayed in use for the
 *  timeout: 128 attaching ranks attached at once; slots of jobs that
 *  detached or died are reused). */
PXS_API PXS_NODISCARD int pxs_attach(MPI_Comm comm, const char *contact_path,
                                     const pxs_subscription_t *subs,
                                     size_t n_subs, double timeout,
                                     pxs_bus_t **bus_out,
                                     pxs_store_t **store_out);

#ifdef __cplusplus
}
#endif
#endif
