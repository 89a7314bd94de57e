/* One window-creation helper for every MPI window of the library (the
 * mailbox, the store): the creation's status agreed over the communicator,
 * and on failure one detail on every rank naming what failed, where, and the
 * one remedy text. See docs/DESIGN.md, section "Window creation and its
 * remedy". Internal. */
#ifndef PXSI_UTIL_WINDOW_H
#define PXSI_UTIL_WINDOW_H

#include <mpi.h>

/* The remedy text comes from pxsi_mpi_window_remedy() (src/util/mpiimpl.c):
 * it depends on the MPI library (docs/DESIGN.md, section "MPICH"). */

/* Agree the outcome of a window creation that returned mrc on this rank
 * (collective over comm: pxsi_agree). PXS_OK when every rank created it;
 * else the agreed code, and the detail on every rank (not only the failing
 * one) says "<what> failed on rank R (<MPI error>)" or "on a peer rank",
 * where (nodes: 1 one node, >1 several nodes, 0 unknown), the MPI library
 * and its remedy (pxsi_mpi_window_remedy). */
int pxsi_win_agree(MPI_Comm comm, int mrc, const char *subsys, const char *what,
                   int nodes);

/* MPI_Win_allocate over comm, MPI_ERRORS_RETURN on the new window, the
 * outcome agreed by pxsi_win_agree. On failure *win is MPI_WIN_NULL where
 * the call failed, but may hold a window on the ranks where it succeeded:
 * freeing it would be collective, so the caller leaks it (see
 * docs/DESIGN.md, section "Collective failure agreement"). */
int pxsi_win_allocate(MPI_Comm comm, MPI_Aint size, int disp_unit,
                      MPI_Info info, int nodes, const char *subsys,
                      const char *what, void *base_out, MPI_Win *win);

/* For debug lines: "osc <component> (<MPI library>[, OMPI_MCA_osc=...])";
 * the component from the window's info when the library names it there,
 * else "unknown". Local. */
void pxsi_win_osc(MPI_Win win, char *buf, size_t n);

#endif
