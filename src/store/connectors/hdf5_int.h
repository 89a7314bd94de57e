/* HDF5 connector internals shared with pxs-inspect's library side and the
 * store front end (pxs_store_open). See docs/DESIGN.md, section
 * "HDF5 connector". Not installed. */
#ifndef PXSI_HDF5_INT_H
#define PXSI_HDF5_INT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

/* One index record (the compound "index" dataset of a rank's file). */
typedef struct pxsi_h5_rec {
    uint64_t offset; /* byte offset in the data log */
    uint64_t size;
    uint64_t generation; /* = record index (the proxy's generation) */
    uint64_t seq;        /* from the put options (informational) */
    uint32_t crc;        /* CRC32C of the payload */
    uint32_t topic;      /* from the put options (informational) */
    uint16_t flags;      /* PXS_PROXY_F_* */
    uint8_t state;       /* PXSI_H5_* */
    uint8_t pad_;
} pxsi_h5_rec_t;

enum { PXSI_H5_UNWRITTEN = 0, PXSI_H5_LIVE = 1, PXSI_H5_DEAD = 2 };

/* "<dir>/pxs-<nonce hex>-r<rank>.h5", or the manifest for rank < 0. */
void pxsi_h5_file_name(char *buf, size_t cap, const char *dir, uint64_t nonce, int rank);
/* The manifest of the store at `path` (its directory, holding exactly one
 * store, or the manifest file): directory, nonce, rank count. Local. */
int pxsi_h5_manifest_read(const char *path, char *dir, size_t dircap, uint64_t *nonce, int *nranks);
/* Every store manifest at `path` (a manifest file; or a directory: the
 * manifests in it and in its immediate subdirectories), as "path\n" lines
 * in buf, and their number. PXS_ERR_NOT_FOUND when there is none. Local. */
int pxsi_h5_manifests(const char *path, char *buf, size_t cap, int *n);
/* Read-only connector state for a finished (or live) store: collective over
 * comm, agreed. */
int pxsi_h5_open(MPI_Comm comm, const char *path, uint64_t *nonce_out, int *nranks_out,
                 void **state_out);

/* Every record of one rank's file `fn` (read-only, local; for tools), in a
 * new buffer (free). A file shorter than HDF5 recorded (truncated) is read
 * through the recovery driver: *eoa > *eof then (its size and the recorded
 * size; both 0 for a whole file), and the records whose index block no
 * longer reads come back zero (PXSI_H5_UNWRITTEN), counted in *lost.
 * PXS_ERR_CORRUPT (with the path and HDF5's text) when nothing can be read. */
int pxsi_h5_index_read(const char *fn, pxsi_h5_rec_t **out, size_t *n, uint64_t *eof,
                       uint64_t *eoa, size_t *lost);

/* The process-wide HDF5 lock with HDF5's error printing off (enter), and
 * back (leave); pxsi_h5_fail: pxsi_err(code) with `what` and HDF5's error
 * text. For other HDF5 users of the library (the stream log). */
void pxsi_h5_enter(void **guard);
void pxsi_h5_leave(void *guard);
int pxsi_h5_fail(int code, const char *what);

#endif
