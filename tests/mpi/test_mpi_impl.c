/* The MPI library this process runs on (src/util/mpiimpl.c), used for log
 * lines and remedy texts only (docs/DESIGN.md, section "MPICH"): it must name
 * the implementation <mpi.h> belongs to, and the window remedy must fit it
 * (Open MPI: osc components; MPICH: no --mca, its network setup instead). */
#include <string.h>

#include "pxs_test.h"
#include "util/util.h"

int
main(int argc, char **argv)
{
    /* allowed before MPI_Init (MPI_Get_library_version) */
    const char *name = pxsi_mpi_impl_name();
    MPI_Init(&argc, &argv);
    const char *remedy = pxsi_mpi_window_remedy();
    printf("MPI library: %s\nremedy: %s\n", name, remedy);
#if defined(OMPI_MAJOR_VERSION)
    CHECK(pxsi_mpi_impl() == PXSI_MPI_OPENMPI);
    CHECK(strncmp(name, "Open MPI v", 10) == 0);
    CHECK(strstr(remedy, "--mca osc ucx") != NULL);
#elif defined(MPICH_VERSION)
    CHECK(pxsi_mpi_impl() == PXSI_MPI_MPICH);
    CHECK(strstr(name, "MPICH") != NULL || strstr(name, "Intel") != NULL);
    CHECK(strstr(name, MPICH_VERSION) != NULL ||
          strncmp(name, "MPICH", 5) != 0);
    CHECK(strstr(remedy, "--mca") == NULL);
    CHECK(strstr(remedy, "UCX_TLS") != NULL);
#else
    CHECK(pxsi_mpi_impl() == PXSI_MPI_OTHER);
#endif
    CHECK(name[0] != '\0' && strlen(name) < 64);
    MPI_Finalize();
    return 0;
}
