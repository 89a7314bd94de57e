/* Node segments: one POSIX shared-memory segment per rank, mapped
 * read-write by the ranks of the same node (MPI_COMM_TYPE_SHARED). A
 * node-local fast path built on it works whatever one-sided component MPI
 * picked, because no MPI call touches the memory. See docs/DESIGN.md,
 * section "Node segments". Internal.
 *
 * Lifetime: the segment names (/dev/shm/pxs.seg.<pid>.<random>.<node rank>)
 * are unlinked before pxsi_shmseg_create returns on any rank, so after a
 * successful create nothing is left in /dev/shm even if every process is
 * killed: the memory goes away with the last mapping. */
#ifndef PXSI_UTIL_SHMSEG_H
#define PXSI_UTIL_SHMSEG_H

#include <mpi.h>
#include <stddef.h>

typedef struct pxsi_shmseg pxsi_shmseg_t;

/* Collective over comm. Every rank creates its own segment of `size` bytes
 * (0: none; its base is then NULL on every rank), zero-filled, and maps the
 * segments of the other ranks of its node read-write. `shm`: 1 on, 0 off,
 * -1 the PXS_SHM option; the path is on only if every rank of comm wants it
 * (MIN over comm). When off, *seg_out is a segment without any mapping
 * (pxsi_shmseg_on() is 0, every base NULL): callers then use no node-local
 * path at all. `subsys`/`what` name the user of the segment in details.
 * The node's memory is checked first (pxsi_node_mem_fits).
 * Every step is agreed: the same status on every rank, and on failure every
 * rank's detail names the step, the rank where it failed and why.
 * Returns PXS_OK, PXS_ERR_NOMEM (tables, shm_open, ftruncate/fallocate, mmap,
 * the memory check), PXS_ERR_NOTSUP (no randomness for the segment names),
 * PXS_ERR_MPI (a collective failed). On failure *seg_out is NULL and nothing
 * is left mapped or named. */
int pxsi_shmseg_create(MPI_Comm comm, size_t size, int shm, const char *subsys, const char *what,
                       pxsi_shmseg_t **seg_out);

/* Flags of pxsi_shmseg_create_ex. PEER_RO: the node peers map this
 * segment read-only (PROT_READ, shm_open O_RDONLY); only its creator
 * writes it (the store's arena: a peer's stray write faults instead of
 * corrupting another rank's data). */
enum { PXSI_SHMSEG_PEER_RO = 1u };

/* pxsi_shmseg_create with flags (PXSI_SHMSEG_*; the same on every rank).
 * Same statuses and guarantees. */
int pxsi_shmseg_create_ex(MPI_Comm comm, size_t size, int shm, unsigned flags, const char *subsys,
                          const char *what, pxsi_shmseg_t **seg_out);

/* 1 when the node-local path is on (agreed at create). Local. */
int pxsi_shmseg_on(const pxsi_shmseg_t *s);

/* The base of comm rank `rank`'s segment as mapped here, or NULL (not on
 * this node, size 0, path off, rank out of range). This rank's own
 * included. Local, O(1). */
void *pxsi_shmseg_base(const pxsi_shmseg_t *s, int rank);

/* The node of comm rank `rank`, named by the lowest comm rank on it (the
 * same value on every rank), or -1 (path off, rank out of range). Two ranks
 * share a node iff their values are equal. Local, O(1). */
int pxsi_shmseg_node_of(const pxsi_shmseg_t *s, int rank);

/* The size of comm rank `rank`'s segment (0 where base is NULL). Local. */
size_t pxsi_shmseg_size(const pxsi_shmseg_t *s, int rank);

/* Unmap everything (local; the names are gone already). The caller makes
 * sure no peer still uses this rank's segment (e.g. a barrier): a peer's
 * mapping stays valid after this rank unmaps, so a late access is harmless
 * to the peer but its writes are lost. NULL is a no-op. */
void pxsi_shmseg_free(pxsi_shmseg_t *s);

/* pxsi_shmseg_free, but this rank's own segment stays mapped (leaked): for
 * memory that an MPI window which could not be freed (it exists on only
 * some ranks) still covers. NULL is a no-op. */
void pxsi_shmseg_free_keep_own(pxsi_shmseg_t *s);

#endif
