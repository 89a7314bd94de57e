/* Status codes, names, thread-local failure detail, pxs_free. */
#include <stdio.h>
#include <stdlib.h>

#include "util/util.h"

static _Thread_local char last_detail[512];

const char *
pxs_strerror(int code)
{
    switch (code) {
    case PXS_OK: return "success";
    case PXS_END: return "end of stream: every producer closed";
    case PXS_TIMEOUT: return "nothing available before the timeout";
    case PXS_ERR_INVALID: return "invalid argument or handle";
    case PXS_ERR_NOMEM: return "out of memory";
    case PXS_ERR_AGAIN: return "resource full (mailbox or arena): try again later";
    case PXS_ERR_TIMEDOUT: return "blocking call gave up after its timeout";
    case PXS_ERR_STALE: return "stale proxy: the object is gone (evicted, reused, or of another store instance)";
    case PXS_ERR_CORRUPT: return "corrupt data: format or checksum check failed";
    case PXS_ERR_TOO_BIG: return "too big for a fixed capacity";
    case PXS_ERR_CLOSED: return "closed: topic or handle no longer accepts this";
    case PXS_ERR_MPI: return "MPI call failed (see pxs_last_error_detail)";
    case PXS_ERR_NOTSUP: return "not supported by this connector, transport or build";
    case PXS_ERR_BUSY: return "busy: outstanding operations still use the object";
    case PXS_ERR_NOT_FOUND: return "not found: unknown topic, group or key";
    case PXS_ERR_TRUNC: return "buffer too small for the result";
    case PXS_ERR_PEER: return "a peer process is gone or unreachable (see pxs_last_error_detail)"; /* [ucx] PXS_ERR_PEER */
    default: return "unknown status code";
    }
}

const char *
pxs_errname(int code)
{
    switch (code) {
    case PXS_OK: return "PXS_OK";
    case PXS_END: return "PXS_END";
    case PXS_TIMEOUT: return "PXS_TIMEOUT";
    case PXS_ERR_INVALID: return "PXS_ERR_INVALID";
    case PXS_ERR_NOMEM: return "PXS_ERR_NOMEM";
    case PXS_ERR_AGAIN: return "PXS_ERR_AGAIN";
    case PXS_ERR_TIMEDOUT: return "PXS_ERR_TIMEDOUT";
    case PXS_ERR_STALE: return "PXS_ERR_STALE";
    case PXS_ERR_CORRUPT: return "PXS_ERR_CORRUPT";
    case PXS_ERR_TOO_BIG: return "PXS_ERR_TOO_BIG";
    case PXS_ERR_CLOSED: return "PXS_ERR_CLOSED";
    case PXS_ERR_MPI: return "PXS_ERR_MPI";
    case PXS_ERR_NOTSUP: return "PXS_ERR_NOTSUP";
    case PXS_ERR_BUSY: return "PXS_ERR_BUSY";
    case PXS_ERR_NOT_FOUND: return "PXS_ERR_NOT_FOUND";
    case PXS_ERR_TRUNC: return "PXS_ERR_TRUNC";
    case PXS_ERR_PEER: return "PXS_ERR_PEER"; /* [ucx] PXS_ERR_PEER */
    default: return "PXS_UNKNOWN";
    }
}

const char *
pxs_last_error_detail(void)
{
    return last_detail;
}

void
pxs_free(void *ptr)
{
    free(ptr);
}

int
pxsi_err(int code, const char *subsys, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(last_detail, sizeof last_detail, "%s: ", subsys ? subsys : "pxs");
    if (n < 0 || (size_t)n >= sizeof last_detail)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(last_detail + n, sizeof last_detail - (size_t)n, fmt, ap);
    va_end(ap);
    PXSI_DEBUG(subsys ? subsys : "pxs", "%s -> %s", last_detail + n, pxs_errname(code));
    return code;
}

int
pxsi_mpi_err(int mpi_rc, const char *subsys, const char *what)
{
    if (mpi_rc == MPI_SUCCESS)
        return PXS_OK;
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(mpi_rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error %d", mpi_rc);
    else
        msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING] = '\0';
    return pxsi_err(PXS_ERR_MPI, subsys, "%s: %s", what, msg);
}

int
pxsi_agree(MPI_Comm comm, int rc)
{
    int all = rc;
    int mrc = MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MIN, comm);
    if (mrc != MPI_SUCCESS)
        return pxsi_mpi_err(mrc, "pxs", "MPI_Allreduce (status agreement)");
    if (all < 0 && rc >= 0)
        return pxsi_err(all, "pxs", "a peer rank failed with %s", pxs_errname(all));
    return all < 0 ? all : rc;
}
