/* Node segments (util/shmseg.h): one POSIX shared-memory segment per rank,
 * mapped read-write by the ranks of its node. See docs/DESIGN.md, section
 * "Node segments".
 *
 * Create, every step agreed over comm before the next (so a failure on one
 * rank fails every rank, with the failing rank's detail):
 *   1. the path on or off (MIN over comm of each rank's wish);
 *   2. the node communicator (MPI_COMM_TYPE_SHARED) and the node's memory
 *      (pxsi_node_mem_fits);
 *   3. every node rank's comm rank and segment size (allgather on the node);
 *   4. the names' job-unique part: the node leader's pid and a random 64-bit
 *      value (broadcast on the node);
 *   5. each rank creates its segment (shm_open O_EXCL, ftruncate,
 *      posix_fallocate so a full /dev/shm is an error here and not a SIGBUS
 *      later, mmap read-write);
 *   6. each rank maps its node peers' segments read-write;
 *   7. the agreement after 6 is the point where every rank has finished
 *      mapping (or failed): each rank unlinks its own name. From here on a
 *      crash leaves nothing in /dev/shm.
 * The node communicator is freed before create returns. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxystream/status.h"
#include "util/options.h"
#include "util/shmseg.h"
#include "util/util.h"

#define SUBSYS "pxs"

struct pxsi_shmseg {
    int on;
    int size;          /* comm size */
    int nsize;         /* node size */
    int nrank;         /* this rank's node rank (-1: off) */
    int *comm_to_node; /* [size] node rank, -1 elsewhere */
    int *node_of;      /* [size] lowest comm rank of each rank's node (NULL: off) */
    void **base;       /* [nsize] mapping, NULL if none */
    size_t *len;       /* [nsize] */
};

/* keep: a node rank whose mapping stays (-1: none) */
static void
seg_unmap(pxsi_shmseg_t *s, int keep)
{
    for (int i = 0; s->base && i < s->nsize; i++)
        if (s->base[i] && i != keep)
            munmap(s->base[i], s->len[i]);
}

static void
seg_free(pxsi_shmseg_t *s, int keep_own)
{
    if (!s)
        return;
    seg_unmap(s, keep_own ? s->nrank : -1);
    free(s->comm_to_node);
    free(s->node_of);
    free(s->base);
    free(s->len);
    free(s);
}

void
pxsi_shmseg_free(pxsi_shmseg_t *s)
{
    seg_free(s, 0);
}

void
pxsi_shmseg_free_keep_own(pxsi_shmseg_t *s)
{
    seg_free(s, 1);
}

int
pxsi_shmseg_on(const pxsi_shmseg_t *s)
{
    return s && s->on;
}

void *
pxsi_shmseg_base(const pxsi_shmseg_t *s, int rank)
{
    if (!s || !s->on || rank < 0 || rank >= s->size)
        return NULL;
    int n = s->comm_to_node[rank];
    return n < 0 ? NULL : s->base[n];
}

int
pxsi_shmseg_node_of(const pxsi_shmseg_t *s, int rank)
{
    if (!s || !s->on || !s->node_of || rank < 0 || rank >= s->size)
        return -1;
    return s->node_of[rank];
}

size_t
pxsi_shmseg_size(const pxsi_shmseg_t *s, int rank)
{
    if (!pxsi_shmseg_base(s, rank))
        return 0;
    return s->len[s->comm_to_node[rank]];
}

static void
seg_name(char *buf, size_t n, long pid, unsigned long long nonce, int nrank)
{
    snprintf(buf, n, "/pxs.seg.%ld.%016llx.%d", pid, nonce, nrank);
}

/* Step 5: this rank's own segment. */
static int
seg_create_own(pxsi_shmseg_t *s, int nrank, const char *name, size_t size, const char *sub,
               const char *what, int *created)
{
    if (size == 0)
        return PXS_OK;
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0)
        return pxsi_err(PXS_ERR_NOMEM, sub, "%s: shm_open(%s) failed: %s", what, name,
                        strerror(errno));
    *created = 1;
    int rc = PXS_OK, fe = 0;
    if (ftruncate(fd, (off_t)size) != 0) {
        rc = pxsi_err(PXS_ERR_NOMEM, sub, "%s: ftruncate(%s, %zu) failed: %s", what, name, size,
                      strerror(errno));
    } else if ((fe = posix_fallocate(fd, 0, (off_t)size)) != 0 && fe != EINVAL &&
               fe != EOPNOTSUPP) {
        rc = pxsi_err(PXS_ERR_NOMEM, sub, "%s: posix_fallocate(%s, %zu): %s", what, name, size,
                      strerror(fe));
    } else {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            rc = pxsi_err(PXS_ERR_NOMEM, sub, "%s: mmap of own segment (%zu B) failed: %s", what,
                          size, strerror(errno));
        } else {
            s->base[nrank] = p;
            s->len[nrank] = size;
        }
    }
    close(fd);
    return rc;
}

/* Step 6: the peers' segments, read-write (read-only with PEER_RO). */
static int
seg_map_peers(pxsi_shmseg_t *s, int nrank, long pid, unsigned long long nonce, const uint64_t *info,
              unsigned flags, const char *sub, const char *what)
{
    int ro = (flags & PXSI_SHMSEG_PEER_RO) != 0;
    for (int q = 0; q < s->nsize; q++) {
        size_t len = (size_t)info[2 * q + 1];
        if (q == nrank || len == 0)
            continue;
        char pn[96];
        seg_name(pn, sizeof pn, pid, nonce, q);
        int fd = shm_open(pn, ro ? O_RDONLY : O_RDWR, 0);
        if (fd < 0)
            return pxsi_err(PXS_ERR_NOMEM, sub, "%s: shm_open(%s) of a peer's segment failed: %s",
                            what, pn, strerror(errno));
        void *p = mmap(NULL, len, ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
            return pxsi_err(PXS_ERR_NOMEM, sub, "%s: mmap of a peer's segment (%zu B) failed: %s",
                            what, len, strerror(errno));
        s->base[q] = p;
        s->len[q] = len;
    }
    return PXS_OK;
}

int
pxsi_shmseg_create(MPI_Comm comm, size_t size, int shm, const char *sub, const char *what,
                   pxsi_shmseg_t **seg_out)
{
    return pxsi_shmseg_create_ex(comm, size, shm, 0, sub, what, seg_out);
}

int
pxsi_shmseg_create_ex(MPI_Comm comm, size_t size, int shm, unsigned flags, const char *sub,
                      const char *what, pxsi_shmseg_t **seg_out)
{
    if (!sub)
        sub = SUBSYS;
    if (!what)
        what = "node segment";
    int lrc = seg_out ? PXS_OK : pxsi_err(PXS_ERR_INVALID, sub, "%s: seg_out is NULL", what);
    if (seg_out)
        *seg_out = NULL;
    int me = 0, size_c = 0;
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &size_c);
    /* step 1: on only if every rank wants it */
    int want = shm < 0 ? (int)pxsi_opt_bool(PXSI_OPT_SHM) : shm != 0;
    int mrc = MPI_Allreduce(MPI_IN_PLACE, &want, 1, MPI_INT, MPI_MIN, comm);
    int rc = pxsi_agree_why(comm, lrc ? lrc : pxsi_mpi_err(mrc, sub, "MPI_Allreduce (shm)"));
    if (rc)
        return rc;
    pxsi_shmseg_t *s = calloc(1, sizeof *s);
    if (s) {
        s->size = size_c;
        s->on = want;
        s->nrank = -1;
        s->comm_to_node = malloc((size_t)size_c * sizeof *s->comm_to_node);
    }
    lrc = s && s->comm_to_node ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, sub, "%s: tables", what);
    if ((rc = pxsi_agree_why(comm, lrc)) != PXS_OK) {
        pxsi_shmseg_free(s);
        return rc;
    }
    for (int r = 0; r < size_c; r++)
        s->comm_to_node[r] = -1;
    if (!want) {
        *seg_out = s;
        return PXS_OK;
    }

    /* step 2 */
    MPI_Comm node = MPI_COMM_NULL;
    mrc = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, me, MPI_INFO_NULL, &node);
    if (mrc != MPI_SUCCESS)
        node = MPI_COMM_NULL;
    if ((rc = pxsi_agree_why(comm, pxsi_mpi_err(mrc, sub, "MPI_Comm_split_type"))) != PXS_OK) {
        pxsi_shmseg_free(s); /* a node comm on some ranks only: leaked */
        return rc;
    }
    int nrank = 0;
    MPI_Comm_rank(node, &nrank);
    s->nrank = nrank;
    MPI_Comm_size(node, &s->nsize);
    rc = pxsi_node_mem_fits(comm, node, sub, (uint64_t)size, 0, 1, what,
                            "PXS_SHM=0 turns the node-local path off");

    /* step 3: (comm rank, size) of every node rank */
    uint64_t *info = NULL;
    if (rc == PXS_OK) {
        s->base = calloc((size_t)s->nsize, sizeof *s->base);
        s->len = calloc((size_t)s->nsize, sizeof *s->len);
        info = malloc(2 * (size_t)s->nsize * sizeof *info);
        s->node_of = malloc((size_t)size_c * sizeof *s->node_of);
        lrc = s->base && s->len && info && s->node_of
                  ? PXS_OK
                  : pxsi_err(PXS_ERR_NOMEM, sub, "%s: tables", what);
        if (lrc == PXS_OK) {
            uint64_t mine[2] = {(uint64_t)me, (uint64_t)size};
            lrc = pxsi_mpi_err(MPI_Allgather(mine, 2, MPI_UINT64_T, info, 2, MPI_UINT64_T, node),
                               sub, "MPI_Allgather (node segment sizes)");
        }
        rc = pxsi_agree_why(comm, lrc);
    }
    /* every rank's node, named by its lowest comm rank (node rank 0: the
     * split keeps comm order) */
    if (rc == PXS_OK) {
        int leader = (int)info[0];
        rc = pxsi_agree_why(
            comm, pxsi_mpi_err(MPI_Allgather(&leader, 1, MPI_INT, s->node_of, 1, MPI_INT, comm),
                               sub, "MPI_Allgather (nodes)"));
    }
    if (rc == PXS_OK) {
        for (int q = 0; q < s->nsize; q++)
            s->comm_to_node[info[2 * q]] = q;
    }
    /* step 4: the names' job-unique part, from the node leader */
    long long hdr[3] = {PXS_OK, (long long)getpid(), 0};
    if (rc == PXS_OK) {
        if (nrank == 0) {
            uint64_t nonce = 0;
            hdr[0] = pxsi_random_u64(&nonce);
            hdr[2] = (long long)nonce;
        }
        lrc = pxsi_mpi_err(MPI_Bcast(hdr, 3, MPI_LONG_LONG, 0, node), sub,
                           "MPI_Bcast (segment names)");
        if (lrc == PXS_OK && hdr[0] != PXS_OK)
            lrc = pxsi_err((int)hdr[0], sub, "%s: no source of randomness for the segment names",
                           what);
        rc = pxsi_agree_why(comm, lrc);
    }
    /* step 5 */
    char name[96];
    seg_name(name, sizeof name, (long)hdr[1], (unsigned long long)hdr[2], nrank);
    int created = 0;
    if (rc == PXS_OK)
        rc = pxsi_agree_why(comm, seg_create_own(s, nrank, name, size, sub, what, &created));
    /* step 6 */
    if (rc == PXS_OK)
        rc = pxsi_agree_why(comm, seg_map_peers(s, nrank, (long)hdr[1], (unsigned long long)hdr[2],
                                                info, flags, sub, what));
    /* step 7: every rank is past its mapping (the agreement above), or the
     * create failed before anyone mapped: the name is not needed any more */
    if (created)
        shm_unlink(name);
    free(info);
    MPI_Comm_free(&node); /* every rank has it: agreed in step 2 */
    if (rc != PXS_OK) {
        pxsi_shmseg_free(s);
        return rc;
    }
    PXSI_DEBUG(sub, "%s: %zu B here, %d rank(s) on this node mapped %s", what, size, s->nsize,
               (flags & PXSI_SHMSEG_PEER_RO) ? "read-only by peers" : "read-write");
    *seg_out = s;
    return PXS_OK;
}
