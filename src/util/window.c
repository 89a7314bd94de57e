/* Window creation with agreement and the one remedy text (window.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void
pxsi_win_osc(MPI_Win win, char *buf, size_t n)
{
    /* Open MPI names no component in a window's info; look for a key that
     * does (a later release, another library), else say "unknown" and what
     * the user asked for (OMPI_MCA_osc / MPIR_CVAR_CH4_...: not parsed) */
    char comp[128] = "unknown", keys_seen[160] = "";
    MPI_Info info = MPI_INFO_NULL;
    if (win != MPI_WIN_NULL && MPI_Win_get_info(win, &info) == MPI_SUCCESS &&
        info != MPI_INFO_NULL) {
        static const char *const keys[] = {"osc_component", "mpi_osc_component", "component",
                                           NULL};
        for (int i = 0; keys[i]; i++) {
            char v[100];
            int flag = 0;
            if (MPI_Info_get(info, keys[i], (int)sizeof v - 1, v, &flag) == MPI_SUCCESS && flag) {
                snprintf(comp, sizeof comp, "%s", v);
                break;
            }
        }
        /* else what the window's info says (the components differ in it) */
        int nkeys = 0;
        size_t pos = 0;
        if (!strcmp(comp, "unknown") && MPI_Info_get_nkeys(info, &nkeys) == MPI_SUCCESS)
            for (int i = 0; i < nkeys && pos + 40 < sizeof keys_seen; i++) {
                char key[MPI_MAX_INFO_KEY + 1], v[32];
                int flag = 0;
                if (MPI_Info_get_nthkey(info, i, key) != MPI_SUCCESS ||
                    MPI_Info_get(info, key, (int)sizeof v - 1, v, &flag) != MPI_SUCCESS || !flag)
                    continue;
                int k = snprintf(keys_seen + pos, sizeof keys_seen - pos, "%s%s=%s",
                                 pos ? "," : "", key, v);
                if (k > 0)
                    pos += (size_t)k < sizeof keys_seen - pos ? (size_t)k : 0;
            }
        MPI_Info_free(&info);
    }
    const char *asked = getenv("OMPI_MCA_osc");
    snprintf(buf, n, "osc %s (%s%s%s; window info: %s)", comp, pxsi_mpi_impl_name(),
             asked ? ", OMPI_MCA_osc=" : "", asked ? asked : "", keys_seen[0] ? keys_seen : "none");
}
