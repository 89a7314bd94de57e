/* Collective failure with a reason, and the memory check that runs before a
 * collective window creation (store arena, bus mailbox).
 *
 * Why the check exists: a window creation that fails on one rank does not
 * fail on the others. Open MPI's osc sm allocates the node's backing file in
 * /dev/shm on one rank (posix_fallocate) and the others wait for it inside
 * MPI_Win_allocate_shared / MPI_Win_allocate, while the failing rank moves
 * on to the next agreement: a deadlock. So sizes are checked against what
 * the node can give BEFORE any window call, the result is agreed, and an
 * impossible size fails on every rank with PXS_ERR_NOMEM and a detail naming
 * the size and the limit. See docs/DESIGN.md, section "Store: collectives
 * fail together". */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "proxystream/status.h"
#include "util/options.h"
#include "util/util.h"

#define SUBSYS "pxs"

int
pxsi_agree_why(MPI_Comm comm, int rc)
{
    int me = 0;
    if (MPI_Comm_rank(comm, &me) != MPI_SUCCESS)
        return pxsi_err(PXS_ERR_MPI, SUBSYS, "agreement: invalid communicator");
    struct {
        int rc, rank;
    } in = {rc, me}, all = {rc, me};
    int mrc = MPI_Allreduce(&in, &all, 1, MPI_2INT, MPI_MINLOC, comm);
    if (mrc != MPI_SUCCESS)
        return pxsi_mpi_err(mrc, SUBSYS, "MPI_Allreduce (status agreement)");
    if (all.rc >= 0)
        return rc;
    /* every rank knows that rank all.rank speaks: one broadcast of its line */
    char why[384];
    memset(why, 0, sizeof why);
    if (me == all.rank)
        snprintf(why, sizeof why, "%s", pxs_last_error_detail());
    mrc = MPI_Bcast(why, (int)sizeof why, MPI_CHAR, all.rank, comm);
    if (me == all.rank)
        return rc;
    if (mrc != MPI_SUCCESS)
        return pxsi_err(all.rc, SUBSYS, "rank %d failed with %s", all.rank, pxs_errname(all.rc));
    why[sizeof why - 1] = 0;
    /* keep the speaker's subsystem: "store.rma: ..." stays that */
    char sub[32] = SUBSYS;
    const char *text = why, *colon = strstr(why, ": ");
    if (colon && (size_t)(colon - why) < sizeof sub && !memchr(why, ' ', (size_t)(colon - why))) {
        memcpy(sub, why, (size_t)(colon - why));
        sub[colon - why] = 0;
        text = colon + 2;
    }
    return pxsi_err(all.rc, sub, "%s (reported by rank %d)", text, all.rank);
}

/* "32 GiB", "11.7 GiB", "4096 B" */
static void
fmt_bytes(char *b, size_t n, uint64_t v)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double x = (double)v;
    int i = 0;
    while (x >= 1024.0 && i < 6) {
        x /= 1024.0;
        i++;
    }
    if (i == 0)
        snprintf(b, n, "%llu B", (unsigned long long)v);
    else if (x == (double)(uint64_t)x)
        snprintf(b, n, "%.0f %s", x, unit[i]);
    else
        snprintf(b, n, "%.1f %s", x, unit[i]);
}

static uint64_t
add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Available memory: MemAvailable, else physical memory; 0 = unknown. */
static uint64_t
mem_available(const char **what)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kb = 0;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                fclose(f);
                *what = "available memory (MemAvailable)";
                return (uint64_t)kb * 1024u;
            }
        }
        fclose(f);
    }
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    *what = "physical memory";
    return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
}

/* This process's data segment as RLIMIT_DATA counts it (VmData); 0 unknown. */
static uint64_t
vm_data(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    uint64_t v = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmData: %llu kB", &kb) == 1) {
            v = (uint64_t)kb * 1024u;
            break;
        }
    }
    fclose(f);
    return v;
}

/* The local verdict. all[2q], all[2q+1]: shared bytes and private bytes of
 * node rank q. */
static int
check_fits(const char *sub, int nsize, int nrank, const uint64_t *all, int maps_peers,
           const char *what, const char *knob)
{
    uint64_t shared = 0, total = 0, amin = UINT64_MAX, amax = 0;
    for (int q = 0; q < nsize; q++) {
        shared = add_sat(shared, all[2 * q]);
        total = add_sat(total, add_sat(all[2 * q], all[2 * q + 1]));
        amin = all[2 * q] < amin ? all[2 * q] : amin;
        amax = all[2 * q] > amax ? all[2 * q] : amax;
    }
    uint64_t mine = add_sat(all[2 * nrank], all[2 * nrank + 1]);
    char need[192], a[32], b[32], lim[32], left[32];
    fmt_bytes(a, sizeof a, amax);
    fmt_bytes(b, sizeof b, shared);
    if (amin == amax)
        snprintf(need, sizeof need, "%s of %s x %d rank%s on this node (%s)", what, a, nsize,
                 nsize == 1 ? "" : "s", b);
    else
        snprintf(need, sizeof need, "node total of %s for the %ss of %d ranks (largest %s)", b,
                 what, nsize, a);
    /* /dev/shm: shared-memory windows (osc sm backing files, our POSIX
     * segments) are files there; checked whatever the shm setting, since
     * Open MPI backs even MPI_Win_allocate windows on one node with them */
    struct statvfs vfs;
    if (statvfs("/dev/shm", &vfs) == 0) {
        uint64_t fr = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
        if (shared > fr) {
            fmt_bytes(lim, sizeof lim, fr);
            return pxsi_err(PXS_ERR_NOMEM, sub, "%s exceeds /dev/shm free space %s: choose a smaller %s (%s)",
                            need, lim, what, knob);
        }
    }
    const char *mw = "memory";
    uint64_t avail = mem_available(&mw);
    if (avail && total > avail) {
        fmt_bytes(lim, sizeof lim, avail);
        fmt_bytes(b, sizeof b, total);
        return pxsi_err(PXS_ERR_NOMEM, sub,
                        "%s, with its tables %s, exceeds %s %s: choose a smaller %s (%s)", need, b,
                        mw, lim, what, knob);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        /* this process maps its own part, and with shared memory every
         * same-node peer's too */
        uint64_t want = maps_peers ? total : mine, used = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long long pages = 0;
        if (f) {
            if (fscanf(f, "%llu", &pages) == 1)
                used = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
            fclose(f);
        }
        uint64_t cur = (uint64_t)rl.rlim_cur, rest = cur > used ? cur - used : 0;
        if (want > rest) {
            fmt_bytes(lim, sizeof lim, cur);
            fmt_bytes(left, sizeof left, rest);
            fmt_bytes(b, sizeof b, want);
            return pxsi_err(PXS_ERR_NOMEM, sub,
                            "%s: this rank maps %s, beyond its address-space limit (RLIMIT_AS, "
                            "ulimit -v) %s with %s left: choose a smaller %s (%s)",
                            need, b, lim, left, what, knob);
        }
    }
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        uint64_t cur = (uint64_t)rl.rlim_cur, used = vm_data(), rest = cur > used ? cur - used : 0;
        if (mine > rest) {
            fmt_bytes(lim, sizeof lim, cur);
            fmt_bytes(left, sizeof left, rest);
            fmt_bytes(b, sizeof b, mine);
            return pxsi_err(PXS_ERR_NOMEM, sub,
                            "%s: this rank's %s exceeds its data-size limit (RLIMIT_DATA, "
                            "ulimit -d) %s with %s left: choose a smaller %s (%s)",
                            need, b, lim, left, what, knob);
        }
    }
    if (all[2 * nrank] > (uint64_t)PTRDIFF_MAX)
        return pxsi_err(PXS_ERR_NOMEM, sub, "%s: beyond the address space", need);
    return PXS_OK;
}

int
pxsi_node_mem_fits(MPI_Comm comm, MPI_Comm node, const char *sub, uint64_t shared,
                   uint64_t priv, int maps_peers, const char *what, const char *knob)
{
    MPI_Comm own = MPI_COMM_NULL;
    int rc = PXS_OK;
    if (node == MPI_COMM_NULL) {
        int me = 0;
        MPI_Comm_rank(comm, &me);
        int mrc = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, me, MPI_INFO_NULL, &own);
        if (mrc != MPI_SUCCESS)
            own = MPI_COMM_NULL;
        rc = pxsi_agree(comm, pxsi_mpi_err(mrc, sub, "MPI_Comm_split_type (memory check)"));
        if (rc)
            return rc; /* a node communicator on some ranks only: leaked */
        node = own;
    }
    int nsize = 1, nrank = 0;
    MPI_Comm_size(node, &nsize);
    MPI_Comm_rank(node, &nrank);
    uint64_t mine[2] = {shared, priv};
    uint64_t *all = malloc(2 * (size_t)nsize * sizeof *all);
    rc = pxsi_agree(comm, all ? PXS_OK : pxsi_err(PXS_ERR_NOMEM, sub, "memory check table"));
    if (rc == PXS_OK) {
        int mrc = MPI_Allgather(mine, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, node);
        rc = pxsi_agree(comm, pxsi_mpi_err(mrc, sub, "MPI_Allgather (memory check)"));
    }
    if (rc == PXS_OK) {
        int lrc = pxsi_opt_bool(PXSI_OPT_MEMORY_CHECK)
                      ? check_fits(sub, nsize, nrank, all, maps_peers, what, knob)
                      : PXS_OK;
        rc = pxsi_agree_why(comm, lrc);
    }
    free(all);
    if (own != MPI_COMM_NULL)
        MPI_Comm_free(&own); /* every rank has it: agreed above */
    return rc;
}
