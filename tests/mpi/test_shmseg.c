/* Node segments (src/util/shmseg.h): every rank's segment is reachable
 * read-write from the ranks of its node and from nowhere else; PXS_SHM=0 (or
 * shm 0) gives no mapping at all; an impossible size fails on every rank
 * with PXS_ERR_NOMEM naming the failing rank; nothing stays in /dev/shm.
 * PXSI_SHMSEG_PEER_RO (the store's arena): peers map read-only, the owner
 * read-write; pxsi_shmseg_free_keep_own leaves only the own mapping. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pxs_test.h"
#include "util/shmseg.h"

/* segment files of this job left in /dev/shm: names "pxs.seg.<pid>.<nonce>.<n>"
 * where <pid> is a node leader's (a rank of this job); other jobs' segments
 * (tests running at the same time) do not count */
static long *g_pids;
static int g_npids;
static int
leftovers(void)
{
    int n = 0;
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "pxs.seg.", 8) != 0)
            continue;
        long pid = strtol(e->d_name + 8, NULL, 10);
        for (int i = 0; i < g_npids; i++)
            if (g_pids[i] == pid) {
                n++;
                break;
            }
    }
    if (d)
        closedir(d);
    return n;
}

/* The permissions ("rw-s", "r--s", ...) of the mapping holding p, from
 * /proc/self/maps; "none" if no mapping holds it. */
static void
perms_of(const void *p, char out[8])
{
    strcpy(out, "none");
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    uintptr_t a = (uintptr_t)p;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo = 0, hi = 0;
        char pr[8] = {0};
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, pr) == 3 && a >= lo && a < hi) {
            snprintf(out, 8, "%s", pr);
            break;
        }
    }
    if (f)
        fclose(f);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int me, np;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &np);
    long mypid = (long)getpid();
    g_pids = malloc((size_t)np * sizeof *g_pids);
    g_npids = np;
    MPI_Allgather(&mypid, 1, MPI_LONG, g_pids, 1, MPI_LONG, MPI_COMM_WORLD);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, me, MPI_INFO_NULL, &node);
    /* which world ranks share my node */
    int *color = malloc((size_t)np * sizeof *color);
    char host[MPI_MAX_PROCESSOR_NAME] = {0};
    int hl = 0, nsz = 0;
    MPI_Comm_size(node, &nsz);
    int nleader = me;
    MPI_Bcast(&nleader, 1, MPI_INT, 0, node);
    MPI_Allgather(&nleader, 1, MPI_INT, color, 1, MPI_INT, MPI_COMM_WORLD);
    (void)host;
    (void)hl;
    const char *env = getenv("PXS_SHM");
    int off_env = env && strcmp(env, "0") == 0;

    /* sizes differ per rank; rank 1 has none */
    size_t mysz = me == 1 ? 0 : 4096 * (size_t)(me + 1);
    pxsi_shmseg_t *s = NULL;
    CHECK_OK(pxsi_shmseg_create(MPI_COMM_WORLD, mysz, -1, "test", "test segment", &s));
    CHECK(s);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(leftovers() == 0 || !pxsi_shmseg_on(s)); /* names unlinked at create */
    if (off_env) {
        CHECK(!pxsi_shmseg_on(s));
        for (int r = 0; r < np; r++)
            CHECK(pxsi_shmseg_base(s, r) == NULL && pxsi_shmseg_size(s, r) == 0 &&
                  pxsi_shmseg_node_of(s, r) == -1);
    } else {
        CHECK(pxsi_shmseg_on(s));
        for (int r = 0; r < np; r++) {
            size_t want = r == 1 ? 0 : 4096 * (size_t)(r + 1);
            int same = color[r] == color[me];
            unsigned char *b = pxsi_shmseg_base(s, r);
            CHECK((b != NULL) == (same && want > 0));
            CHECK(pxsi_shmseg_size(s, r) == (b ? want : 0));
            CHECK(pxsi_shmseg_node_of(s, r) == color[r]);
            if (b)
                for (size_t i = 0; i < want; i++)
                    CHECK(b[i] == 0); /* zero-filled */
        }
        MPI_Barrier(MPI_COMM_WORLD); /* every look above before any write below */
        /* every rank writes its rank into byte `me` of each same-node
         * segment (read-write for peers), then checks its own segment */
        for (int r = 0; r < np; r++) {
            unsigned char *b = pxsi_shmseg_base(s, r);
            if (b)
                __atomic_store_n(&b[16 + me], (unsigned char)(me + 1), __ATOMIC_RELEASE);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        unsigned char *mine = pxsi_shmseg_base(s, me);
        for (int r = 0; mine && r < np; r++)
            CHECK(__atomic_load_n(&mine[16 + r], __ATOMIC_ACQUIRE) ==
                  (color[r] == color[me] ? (unsigned char)(r + 1) : 0));
        CHECK(pxsi_shmseg_base(s, -1) == NULL && pxsi_shmseg_base(s, np) == NULL);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    pxsi_shmseg_free(s);

    /* peers read-only (the store's arena): the owner writes, same-node
     * peers read it through a PROT_READ mapping */
    if (!off_env) {
        CHECK_OK(pxsi_shmseg_create_ex(MPI_COMM_WORLD, 8192, 1, PXSI_SHMSEG_PEER_RO, "test",
                                       "ro segment", &s));
        unsigned char *mine = pxsi_shmseg_base(s, me);
        CHECK(mine);
        char pr[8];
        perms_of(mine, pr);
        CHECK(strncmp(pr, "rw", 2) == 0);
        __atomic_store_n(&mine[100], (unsigned char)(me + 1), __ATOMIC_RELEASE);
        MPI_Barrier(MPI_COMM_WORLD);
        for (int r = 0; r < np; r++) {
            unsigned char *b = pxsi_shmseg_base(s, r);
            CHECK((b != NULL) == (color[r] == color[me]));
            if (!b || r == me)
                continue;
            perms_of(b, pr);
            CHECK(strncmp(pr, "r-", 2) == 0); /* a stray write would fault */
            CHECK(__atomic_load_n(&b[100], __ATOMIC_ACQUIRE) == (unsigned char)(r + 1));
        }
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK(leftovers() == 0);
        /* keep_own: the own mapping stays (a window may still cover it),
         * the peers' go */
        unsigned char *peer = NULL;
        for (int r = 0; r < np && !peer; r++)
            if (r != me)
                peer = pxsi_shmseg_base(s, r);
        pxsi_shmseg_free_keep_own(s);
        perms_of(mine, pr);
        CHECK(strncmp(pr, "rw", 2) == 0 && mine[100] == (unsigned char)(me + 1));
        if (peer) {
            perms_of(peer, pr);
            CHECK(strncmp(pr, "r--s", 4) != 0); /* unmapped */
        }
        munmap(mine, 8192);
        MPI_Barrier(MPI_COMM_WORLD);
    }

    /* explicitly off: no mapping even if PXS_SHM allows it */
    CHECK_OK(pxsi_shmseg_create(MPI_COMM_WORLD, 4096, 0, "test", "test segment", &s));
    CHECK(!pxsi_shmseg_on(s) && pxsi_shmseg_base(s, me) == NULL);
    pxsi_shmseg_free(s);

    /* an impossible size on the last rank: every rank fails together, and
     * the detail names the segment (and, where the memory check or the
     * creation failed, the rank) */
    if (!off_env) {
        size_t big = me == np - 1 ? ((size_t)1 << 62) : 4096;
        s = (pxsi_shmseg_t *)1;
        CHECK_RC(pxsi_shmseg_create(MPI_COMM_WORLD, big, 1, "test", "test segment", &s),
                 PXS_ERR_NOMEM);
        CHECK(s == NULL);
        CHECK(strstr(pxs_last_error_detail(), "test segment") != NULL);
        if (me != np - 1)
            CHECK(strstr(pxs_last_error_detail(), "rank") != NULL);
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK(leftovers() == 0);
    }
    /* a bad argument is agreed too */
    CHECK_RC(pxsi_shmseg_create(MPI_COMM_WORLD, 4096, 1, "test", "test segment", NULL),
             PXS_ERR_INVALID);
    free(color);
    free(g_pids);
    MPI_Comm_free(&node);
    MPI_Finalize();
    return 0;
}
