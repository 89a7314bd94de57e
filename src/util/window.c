/* Window creation with agreement and the one remedy text (window.h). */
#include <stdio.h>

#include "util/util.h"
#include "util/window.h"

int
pxsi_win_agree(MPI_Comm comm, int mrc, const char *subsys, const char *what, int nodes)
{
    int rc = pxsi_agree(comm, pxsi_mpi_err(mrc, subsys, what));
    if (rc == PXS_OK)
        return PXS_OK;
    const char *where = nodes == 1 ? " (one node)" : nodes > 1 ? " (several nodes)" : "";
    if (mrc == MPI_SUCCESS)
        return pxsi_err(rc, subsys, "%s failed on a peer rank%s (%s): %s", what, where,
                        pxsi_mpi_impl_name(), pxsi_mpi_window_remedy());
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0, rank = -1;
    if (MPI_Error_string(mrc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error %d", mrc);
    else
        msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING] = '\0';
    (void)MPI_Comm_rank(comm, &rank);
    return pxsi_err(rc, subsys, "%s failed on rank %d (%s; %s)%s: %s", what, rank, msg,
                    pxsi_mpi_impl_name(), where, pxsi_mpi_window_remedy());
}

int
pxsi_win_allocate(MPI_Comm comm, MPI_Aint size, int disp_unit, MPI_Info info, int nodes,
                  const char *subsys, const char *what, void *base_out, MPI_Win *win)
{
    int mrc = MPI_Win_allocate(size, disp_unit, info, comm, base_out, win);
    if (mrc != MPI_SUCCESS)
        *win = MPI_WIN_NULL;
    else
        (void)MPI_Win_set_errhandler(*win, MPI_ERRORS_RETURN);
    return pxsi_win_agree(comm, mrc, subsys, what, nodes);
}
