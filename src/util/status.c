/* Status codes, names, thread-local failure detail, pxs_free. */
#include <stdio.h>
#include <stdlib.h>

#include "util/util.h"

#define SUBSYS "pxs"

static _Thread_local char last_detail[512];

/* Both functions are generated from PXS_STATUS_LIST (include/proxystream/status.h). */
#define STATUS_TEXT(name, num, text)                                                               \
    case name:                                                                                     \
        return text;
#define STATUS_NAME(name, num, text)                                                               \
    case name:                                                                                     \
        return #name;

const char *
pxs_strerror(int code)
{
    switch (code) {
        PXS_STATUS_LIST(STATUS_TEXT)
    default:
        return "unknown status code";
    }
}

const char *
pxs_errname(int code)
{
    switch (code) {
        PXS_STATUS_LIST(STATUS_NAME)
    default:
        return "PXS_UNKNOWN";
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
        return pxsi_mpi_err(mrc, SUBSYS, "MPI_Allreduce (status agreement)");
    if (all < 0 && rc >= 0)
        return pxsi_err(all, SUBSYS, "a peer rank failed with %s", pxs_errname(all));
    return all < 0 ? all : rc;
}
