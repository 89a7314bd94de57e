/* pxs-osc-probe: per-operation cost of the one-sided calls a remote resolve
 * makes (docs/DESIGN.md, section "Remote resolve in one epoch"), under
 * whatever osc component MPI picked (OMPI_MCA_osc / --mca osc), on plain
 * MPI_Win_allocate windows in one lock_all(MPI_MODE_NOCHECK) epoch, as the
 * store's control words and plain arena are.
 *
 *   mpirun -n 2 pxs-osc-probe [--iters N] [--size B] [--reps R]
 *
 * Rank 1 times the operations on rank 0, which waits in a barrier (as the
 * store benchmark's owner does). Each figure is the best of R batches of N,
 * in microseconds per operation (one line per operation: name, us). Times
 * only; nothing is asserted. MPI_Compare_and_swap is left out (osc/rdma of
 * Open MPI 4.1.4 crashes the target on it). */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_common.h"

enum {
    OP_FAO_SUM_FLUSH,
    OP_FAO_SUM,
    OP_FAO_NOOP_FLUSH,
    OP_FAO_REPLACE_FLUSH,
    OP_ACC_SUM_FLUSH,
    OP_GACC_NOOP_FLUSH,
    OP_GET24_FLUSH,
    OP_FLUSH_IDLE,
    OP_GET_BULK_FLUSH,
    OP_RESOLVE_SEQ,
    OP_N
};

static const char *const names[OP_N] = {
    "fetch_and_op-sum+flush", "fetch_and_op-sum",      "fetch_and_op-no_op+flush",
    "fetch_and_op-replace+flush", "accumulate-sum+flush", "get_accumulate-no_op+flush",
    "get-24B+flush",          "flush-idle",            "get-bulk+flush",
    "resolve-sequence"};

static MPI_Win cw, dw;
static uint64_t one = 1, minus1 = UINT64_MAX, res, d[3];
static unsigned char *buf;
static size_t bulk = 65536;

/* One operation as the store issues it (rank 0 is the target). */
static void
op(int k)
{
    switch (k) {
    case OP_FAO_SUM_FLUSH:
        MPI_Fetch_and_op(&one, &res, MPI_UINT64_T, 0, 0, MPI_SUM, cw);
        MPI_Win_flush(0, cw);
        break;
    case OP_FAO_SUM: /* flushed once after the batch */
        MPI_Fetch_and_op(&one, &res, MPI_UINT64_T, 0, 0, MPI_SUM, cw);
        break;
    case OP_FAO_NOOP_FLUSH:
        MPI_Fetch_and_op(NULL, &res, MPI_UINT64_T, 0, 0, MPI_NO_OP, cw);
        MPI_Win_flush(0, cw);
        break;
    case OP_FAO_REPLACE_FLUSH:
        MPI_Fetch_and_op(&one, &res, MPI_UINT64_T, 0, 1, MPI_REPLACE, cw);
        MPI_Win_flush(0, cw);
        break;
    case OP_ACC_SUM_FLUSH:
        MPI_Accumulate(&one, 1, MPI_UINT64_T, 0, 0, 1, MPI_UINT64_T, MPI_SUM, cw);
        MPI_Win_flush(0, cw);
        break;
    case OP_GACC_NOOP_FLUSH:
        MPI_Get_accumulate(NULL, 0, MPI_UINT64_T, d, 3, MPI_UINT64_T, 0, 2, 3, MPI_UINT64_T,
                           MPI_NO_OP, cw);
        MPI_Win_flush(0, cw);
        break;
    case OP_GET24_FLUSH:
        MPI_Get(d, 3, MPI_UINT64_T, 0, 2, 3, MPI_UINT64_T, cw);
        MPI_Win_flush(0, cw);
        break;
    case OP_FLUSH_IDLE:
        MPI_Win_flush(0, cw);
        break;
    case OP_GET_BULK_FLUSH:
        MPI_Get(buf, (int)bulk, MPI_BYTE, 0, 0, (int)bulk, MPI_BYTE, dw);
        MPI_Win_flush(0, dw);
        break;
    default: /* claim + descriptor + bulk, two flushes, release + flush */
        MPI_Fetch_and_op(&one, &res, MPI_UINT64_T, 0, 0, MPI_SUM, cw);
        MPI_Get(d, 3, MPI_UINT64_T, 0, 2, 3, MPI_UINT64_T, cw);
        MPI_Get(buf, (int)bulk, MPI_BYTE, 0, 0, (int)bulk, MPI_BYTE, dw);
        MPI_Win_flush(0, cw);
        MPI_Win_flush(0, dw);
        MPI_Fetch_and_op(&minus1, &res, MPI_UINT64_T, 0, 0, MPI_SUM, cw);
        MPI_Win_flush(0, cw);
        break;
    }
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long iters = 2000, reps = 5;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
        int ok = end && *end == '\0' && v > 0;
        if (!strcmp(argv[i], "--iters") && ok && v <= 10000000)
            iters = v;
        else if (!strcmp(argv[i], "--reps") && ok && v <= 1000)
            reps = v;
        else if (!strcmp(argv[i], "--size") && ok && v <= (1L << 30))
            bulk = (size_t)v;
        else {
            if (rank == 0)
                fprintf(stderr, "pxs-osc-probe: bad option %s (--iters N, --reps R, --size B)\n",
                        argv[i]);
            MPI_Finalize();
            return 2;
        }
        i++;
    }
    if (size != 2) {
        if (rank == 0)
            fprintf(stderr, "pxs-osc-probe: run on 2 ranks (got %d)\n", size);
        MPI_Finalize();
        return 2;
    }
    void *cbase = NULL, *dbase = NULL;
    if (MPI_Win_allocate(64, 8, MPI_INFO_NULL, MPI_COMM_WORLD, &cbase, &cw) != MPI_SUCCESS ||
        MPI_Win_allocate((MPI_Aint)bulk, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &dbase, &dw) !=
            MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 1);
    memset(cbase, 0, 64);
    memset(dbase, 1, bulk);
    if (posix_memalign((void **)&buf, 4096, bulk ? bulk : 1) != 0)
        MPI_Abort(MPI_COMM_WORLD, 1);
    memset(buf, 0, bulk);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, cw);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, dw);
    if (rank == 1) {
        printf("# pxs-osc-probe: us per operation, best of %ld batches of %ld, bulk %zu B\n",
               reps, iters, bulk);
        for (int k = 0; k < OP_N; k++) {
            double best = 1e30;
            for (long r = 0; r < reps; r++) {
                double t0 = MPI_Wtime();
                for (long i = 0; i < iters; i++)
                    op(k);
                if (k == OP_FAO_SUM)
                    MPI_Win_flush(0, cw);
                double t = (MPI_Wtime() - t0) / (double)iters * 1e6;
                if (t < best)
                    best = t;
            }
            printf("%-28s %10.3f\n", names[k], best);
            fflush(stdout);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_unlock_all(dw);
    MPI_Win_unlock_all(cw);
    MPI_Win_free(&dw);
    MPI_Win_free(&cw);
    free(buf);
    MPI_Finalize();
    return 0;
}
