/* UCX parts shared by the UCX store connector (connectors/ucx.c, which
 * owns the context, worker and endpoints) and the UCX event transport
 * (src/pubsub/xport_ucx.c, which borrows them from the store it is exported
 * or attached with). Not installed. Only with PXS_HAVE_UCX. */
#ifndef PXSI_UCX_INT_H
#define PXSI_UCX_INT_H

#ifdef PXS_HAVE_UCX
#include <mpi.h>
#include <stddef.h>
#include <ucp/api/ucp.h>

/* What a UCX store lends: its context and worker, and its endpoints (to
 * every rank of its job; for an attached store, to every rank of the
 * exporting job) with the first error each saw. Valid until the store is
 * destroyed. */
typedef struct pxsi_ucx_parts {
    ucp_context_h ctx;
    ucp_worker_h w;
    MPI_Comm comm;
    int rank; /* -1: attached store */
    int n;    /* endpoints */
    ucp_ep_h *ep;
    ucs_status_t *peer_err;
} pxsi_ucx_parts_t;
void pxsi_ucx_parts(void *st, pxsi_ucx_parts_t *out);

/* Hand a region (mh, and pages of len bytes from mmap; either may be NULL)
 * to the store: deregistered before its worker is destroyed, unmapped
 * after, so that a peer's late put or atomic (software-emulated over tcp,
 * where keys are not checked) never lands in unmapped memory. */
void pxsi_ucx_keep_region(void *st, ucp_mem_h mh, void *pages, size_t len);
/* ucp_mem_map of len bytes with protection prot: *addr NULL: UCX allocates
 * (same-node peers can map it) and *addr gets its address; else the
 * caller's memory at *addr is registered. PXS_OK, PXS_ERR_NOMEM,
 * PXS_ERR_NOTSUP. */
int pxsi_ucx_map(ucp_context_h ctx, size_t len, unsigned prot, ucp_mem_h *mh, void **addr);
/* An endpoint to a worker address in peer error mode (a dead peer is an
 * error, not a hang); the first error goes to *err_slot. PXS_OK or
 * PXS_ERR_PEER naming UCX's status. */
int pxsi_ucx_ep_open(ucp_worker_h w, const void *addr, ucs_status_t *err_slot, ucp_ep_h *ep);
/* Force-close an endpoint (waits for the close, progressing the worker). */
void pxsi_ucx_ep_close(ucp_worker_h w, ucp_ep_h ep);
/* Wait for n requests (NULL / error pointers: done at once), progressing
 * the worker and MPI (comm, may be MPI_COMM_NULL) with the back-off; frees
 * them; the first failure wins. timeout < 0: until UCX completes them (the
 * peer error mode ends waits on dead peers); on expiry the requests are
 * released and UCS_ERR_ENDPOINT_TIMEOUT returned (their buffers must stay
 * valid until the worker is destroyed: UCX may still complete them; prefer
 * pxsi_ucx_wait_ep). */
ucs_status_t pxsi_ucx_wait(ucp_worker_h w, MPI_Comm comm, ucs_status_ptr_t *rq, int n,
                           double timeout);
/* The same, for requests on one endpoint *ep, and safe on expiry: the
 * requests still in flight are cancelled (ucp_request_cancel), *ep is
 * force-closed (UCX discards its lanes, then completes its requests with
 * UCS_ERR_CANCELED) and set to NULL, and the worker is progressed until
 * every request has completed: when it returns, UCX writes into none of
 * their buffers any more. UCS_ERR_ENDPOINT_TIMEOUT then; the caller treats
 * the peer as failed (*ep NULL). */
ucs_status_t pxsi_ucx_wait_ep(ucp_worker_h w, MPI_Comm comm, ucs_status_ptr_t *rq, int n,
                              double timeout, ucp_ep_h *ep);
#endif
#endif
