/** @file proxystream/status.h
 *  Status codes: 0 is success, negative values are failures, positive values
 *  are documented non-failures a loop needs (test `rc < 0` for errors).
 *  Codes are explicit numbers and are never renumbered or reused. */
#ifndef PROXYSTREAM_STATUS_H
#define PROXYSTREAM_STATUS_H

#include "proxystream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pxs_status {
    PXS_OK = 0,
    PXS_END = 1,     /**< end of stream: every producer closed (not a failure) */
    PXS_TIMEOUT = 2, /**< a poll or bounded wait found nothing (not a failure) */

    PXS_ERR_INVALID = -1,   /**< invalid argument, stale or foreign handle */
    PXS_ERR_NOMEM = -2,     /**< allocation failed */
    PXS_ERR_AGAIN = -3,     /**< full (mailbox, arena): retry later */
    PXS_ERR_TIMEDOUT = -4,  /**< a blocking call gave up waiting for peers (e.g.
                                 participants of an in-process hub); a full
                                 mailbox or arena gives PXS_ERR_AGAIN instead */
    PXS_ERR_STALE = -5,     /**< proxy refers to an object that was evicted/reused,
                                 or to another store instance (store, job, run) */
    PXS_ERR_CORRUPT = -6,   /**< checksum or format check failed */
    PXS_ERR_TOO_BIG = -7,   /**< payload/metadata over a fixed capacity */
    PXS_ERR_CLOSED = -8,    /**< topic or handle already closed */
    PXS_ERR_MPI = -9,       /**< an MPI call failed; detail has MPI's text */
    PXS_ERR_NOTSUP = -10,   /**< not supported by this connector/transport/build */
    PXS_ERR_BUSY = -11,     /**< object in use (destroy while outstanding work) */
    PXS_ERR_NOT_FOUND = -12,/**< unknown topic, group or key */
    PXS_ERR_TRUNC = -13,    /**< caller's buffer too small (needed size returned) */
    /* -14 is reserved (was "internal error" before any release; not reused) */
    PXS_ERR_PEER = -15      /**< a peer process is gone or unreachable (UCX: detail names the rank and UCX's status text) */ /* [ucx] PXS_ERR_PEER */
};

/** Short English description of any status code (static string, never NULL). */
PXS_API const char *pxs_strerror(int code);
/** Symbolic name, e.g. "PXS_ERR_STALE" (static string, never NULL). */
PXS_API const char *pxs_errname(int code);
/** One line describing the calling thread's most recent failure (thread-local;
 *  kept until that thread's next failure). Never NULL; "" if none. */
PXS_API const char *pxs_last_error_detail(void);

/** Free memory the library returned through an `_out` pointer and documented
 *  as "free with pxs_free" (e.g. pxs_store_resolve_alloc). NULL is a no-op. */
PXS_API void pxs_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
