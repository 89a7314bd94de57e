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

/** The status list, one X(name, number, description) per code: it generates
 *  the enum below and, inside the library, pxs_strerror and pxs_errname. The
 *  README's status table is checked against it (test unit.readme.status). To
 *  add a code see CONTRIBUTING.md, "Adding a status code".
 *  -14 is reserved (was "internal error" before any release; not reused). */
#define PXS_STATUS_LIST(X)                                                                         \
    /* success and documented non-failures */                                                      \
    X(PXS_OK, 0, "success")                                                                        \
    /* end of stream: every producer closed (not a failure) */                                     \
    X(PXS_END, 1, "end of stream: every producer closed")                                          \
    /* a poll or bounded wait found nothing (not a failure) */                                     \
    X(PXS_TIMEOUT, 2, "nothing available before the timeout")                                      \
    /* invalid argument, stale or foreign handle */                                                \
    X(PXS_ERR_INVALID, -1, "invalid argument or handle")                                           \
    /* allocation failed */                                                                        \
    X(PXS_ERR_NOMEM, -2, "out of memory")                                                          \
    /* full (mailbox, arena): retry later */                                                       \
    X(PXS_ERR_AGAIN, -3, "resource full (mailbox or arena): try again later")                      \
    /* a blocking call gave up waiting for peers (e.g. participants of an in-process hub);         \
     * a full mailbox or arena gives PXS_ERR_AGAIN instead */                                      \
    X(PXS_ERR_TIMEDOUT, -4, "blocking call gave up after its timeout")                             \
    /* proxy refers to an object that was evicted/reused, or to another store instance */          \
    X(PXS_ERR_STALE, -5,                                                                           \
      "stale proxy: the object is gone (evicted, reused, or of another store instance)")           \
    /* checksum or format check failed */                                                          \
    X(PXS_ERR_CORRUPT, -6, "corrupt data: format or checksum check failed")                        \
    /* payload/metadata over a fixed capacity */                                                   \
    X(PXS_ERR_TOO_BIG, -7, "too big for a fixed capacity")                                         \
    /* topic or handle already closed */                                                           \
    X(PXS_ERR_CLOSED, -8, "closed: topic or handle no longer accepts this")                        \
    /* an MPI call failed; detail has MPI's text */                                                \
    X(PXS_ERR_MPI, -9, "MPI call failed (see pxs_last_error_detail)")                              \
    /* not supported by this connector/transport/build */                                          \
    X(PXS_ERR_NOTSUP, -10, "not supported by this connector, transport or build")                  \
    /* object in use (destroy while outstanding work) */                                           \
    X(PXS_ERR_BUSY, -11, "busy: outstanding operations still use the object")                      \
    /* unknown topic, group or key */                                                              \
    X(PXS_ERR_NOT_FOUND, -12, "not found: unknown topic, group or key")                            \
    /* caller's buffer too small (needed size returned) */                                         \
    X(PXS_ERR_TRUNC, -13, "buffer too small for the result")                                       \
    /* -14 is reserved. File system or HDF5 I/O failed (missing or unusable directory, no          \
     * permission, disk full, file gone); the detail has the path and the system's or HDF5's text */ \
    X(PXS_ERR_IO, -15, "file system or HDF5 I/O failed (see pxs_last_error_detail)")              \
    /* a peer process is gone or unreachable (UCX: the detail names the rank and UCX's status) */ \
    X(PXS_ERR_PEER, -16, "a peer process is gone or unreachable (see pxs_last_error_detail)")

#define PXS_STATUS_ENUM_ITEM_(name, num, text) name = (num),
/** The status codes, generated from PXS_STATUS_LIST (explicit numbers). */
enum pxs_status { PXS_STATUS_LIST(PXS_STATUS_ENUM_ITEM_) };
#undef PXS_STATUS_ENUM_ITEM_

/** Short English description of any status code (static string, never NULL). */
PXS_API const char *pxs_strerror(int code);
/** Symbolic name, e.g. "PXS_ERR_STALE" (static string, never NULL). */
PXS_API const char *pxs_errname(int code);
/** One line describing the calling thread's most recent failure (thread-local;
 *  kept until that thread's next failure). Never NULL; "" if none. */
PXS_API const char *pxs_last_error_detail(void);

/** Interrupt hook of the calling thread (for language bindings: Python's
 *  Ctrl-C). While a hook is set, every backpressure wait the library makes
 *  on this thread (arena full in pxs_store_put / pxs_producer_send, mailbox
 *  full in send / flush / close_topic, consumer and subscriber waits) calls
 *  `fn(arg)` about every 50 ms; when it returns non-zero the wait ends at
 *  once as if its timeout had passed, and so does every later wait on this
 *  thread until the hook is set again: the call returns what its timeout
 *  gives (PXS_ERR_AGAIN for put and send: nothing stored, nothing accepted;
 *  PXS_TIMEOUT for a receive). Set it around one blocking, non-collective
 *  call and remove it after (a collective call must not end on one rank
 *  only). fn NULL removes the hook (the default: waits end only by their
 *  timeout, as without this call). The hook must not call the library.
 *  Thread-local, never fails.
 *  @return PXS_OK. */
PXS_API int pxs_interrupt_hook(int (*fn)(void *arg), void *arg);

/** Free memory the library returned through an `_out` pointer and documented
 *  as "free with pxs_free" (e.g. pxs_store_resolve_alloc). NULL is a no-op. */
PXS_API void pxs_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
