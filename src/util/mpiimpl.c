/* Which MPI library this process runs on, from MPI_Get_library_version: for
 * log lines and remedy texts only. No behaviour depends on it (docs/DESIGN.md,
 * section "MPICH"). */
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

static pthread_once_t impl_once = PTHREAD_ONCE_INIT;
static int impl_kind = PXSI_MPI_OTHER;
static char impl_name[64] = "an unknown MPI";

static void
first_line(const char *s, char *out, size_t cap)
{
    size_t n = strcspn(s, "\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

static void
impl_init(void)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    /* allowed before MPI_Init and after MPI_Finalize */
    if (MPI_Get_library_version(v, &len) != MPI_SUCCESS)
        return;
    v[len < (int)sizeof v ? (len > 0 ? len : 0) : (int)sizeof v - 1] = '\0';
    const char *p;
    if ((p = strstr(v, "Open MPI")) != NULL) {
        /* "Open MPI v4.1.4, package: ..." */
        impl_kind = PXSI_MPI_OPENMPI;
        char tmp[64];
        first_line(p, tmp, sizeof tmp);
        tmp[strcspn(tmp, ",")] = '\0';
        snprintf(impl_name, sizeof impl_name, "%s", tmp);
    } else if (strstr(v, "MPICH") || strstr(v, "Intel(R) MPI") ||
               strstr(v, "MVAPICH")) {
        /* "MPICH Version:\t4.0.2\n..."; Intel MPI and MVAPICH derive from it */
        impl_kind = PXSI_MPI_MPICH;
        const char *ver = strstr(v, "Version:");
        char tmp[32] = "";
        if (ver && strncmp(v, "MPICH", 5) == 0) {
            ver += strlen("Version:");
            ver += strspn(ver, " \t");
            first_line(ver, tmp, sizeof tmp);
            snprintf(impl_name, sizeof impl_name, "MPICH %s", tmp);
        } else {
            first_line(v, impl_name, sizeof impl_name);
        }
    } else {
        first_line(v, impl_name, sizeof impl_name);
    }
}

int
pxsi_mpi_impl(void)
{
    pthread_once(&impl_once, impl_init);
    return impl_kind;
}

const char *
pxsi_mpi_impl_name(void)
{
    pthread_once(&impl_once, impl_init);
    return impl_name;
}

const char *
pxsi_mpi_window_remedy(void)
{
    if (pxsi_mpi_impl() == PXSI_MPI_OPENMPI)
        return "windows across nodes need osc ucx or pt2pt (osc rdma and sm cannot "
               "create one across TCP nodes; Debian's openmpi-mca-params.conf excludes "
               "ucx and pt2pt): run with --mca osc ucx or --mca osc pt2pt "
               "(OMPI_MCA_osc=ucx), or --mca osc sm,ucx / sm,pt2pt";
    /* MPICH creates windows over any of its networks; a failure is the
     * library's setup or memory (UCX_TLS, MPIR_CVAR_* or the node's limits) */
    return "check the MPI library's network setup (for MPICH with UCX: "
           "UCX_TLS, e.g. "
           "UCX_TLS=tcp,self or sm,self) and the memory limits of the node";
}
