/* pxs-bench-hdf5: put and resolve throughput of the HDF5 connector next to a
 * raw write() / pread() of the same bytes to the same file system, measured
 * in the same run (HDF5 builds only).
 *
 *   mpirun -n 1 pxs-bench-hdf5 [--dir DIR] [--max-size 16M] [--mib 256]
 * [--json]
 *
 * Each rank writes its own file (as the connector does). For each size
 * (64 KiB, 1 MiB, 16 MiB, capped by --max-size), about --mib MiB per rank:
 *   put      pxs_store_put (durable = 0: every put flushed to the OS, no
 *            fsync) vs write() of the same buffers to a plain file (no fsync)
 *   resolve  pxs_store_resolve through pxs_store_open (a reader job's path,
 *            CRC32C checked) vs pread() of the plain file
 * Both sides read what they just wrote, so both are served by the page
 * cache: the ratio is the connector's overhead, not the disk's speed.
 * Ratios > 1 = ours better. Files are removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_common.h"
#include "proxystream.h"

static int rank, nranks;

static void
die(const char *what, int rc)
{
    fprintf(stderr, "[%d] %s: %s (%s)\n", rank, what, pxs_errname(rc), pxs_last_error_detail());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void
rm_tree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "pxs-bench-hdf5: could not remove %s\n", dir);
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int json = app_has_flag(argc, argv, "--json");
    size_t maxsz = (size_t)16 << 20, mib = 256;
    const char *v;
    if ((v = app_opt(argc, argv, "--max-size")) && !(maxsz = app_parse_size(v)))
        die("--max-size", PXS_ERR_INVALID);
    if ((v = app_opt(argc, argv, "--mib")))
        mib = (size_t)strtoul(v, NULL, 10);
    if (mib == 0)
        mib = 1;
    char base[4096];
    const char *tmp = getenv("TMPDIR");
    if ((v = app_opt(argc, argv, "--dir")))
        snprintf(base, sizeof base, "%s", v);
    else
        snprintf(base, sizeof base, "%s/pxs-bench-hdf5-%ld", tmp ? tmp : "/tmp", (long)getpid());
    MPI_Bcast(base, (int)sizeof base, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0 && mkdir(base, 0777) != 0 && errno != EEXIST)
        die("mkdir --dir", PXS_ERR_IO);
    MPI_Barrier(MPI_COMM_WORLD);

    const size_t sizes[] = {(size_t)64 << 10, (size_t)1 << 20, (size_t)16 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t sz = sizes[k];
        if (sz > maxsz)
            break;
        size_t n = (mib << 20) / sz;
        if (n < 4)
            n = 4;
        unsigned char *buf = malloc(sz);
        pxs_proxy_t *px = malloc(n * sizeof *px);
        if (!buf || !px)
            die("malloc", PXS_ERR_NOMEM);
        for (size_t i = 0; i < sz; i++)
            buf[i] = (unsigned char)(i * 131u + k);
        char sdir[4200], raw[4300];
        snprintf(sdir, sizeof sdir, "%s/s%zu", base, sz);
        snprintf(raw, sizeof raw, "%s/raw%zu-r%d", base, sz, rank);

        /* put vs write() */
        pxs_store_opts_t so;
        pxs_store_opts_init(&so);
        so.connector = PXS_CONN_HDF5;
        so.path = sdir;
        pxs_store_t *st;
        int rc = pxs_store_create(MPI_COMM_WORLD, &so, &st);
        if (rc)
            die("store_create", rc);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = app_now();
        for (size_t i = 0; i < n; i++)
            if ((rc = pxs_store_put(st, buf, sz, NULL, &px[i])) != PXS_OK)
                die("put", rc);
        double t_put = app_now() - t0;
        if ((rc = pxs_store_destroy(st)) != PXS_OK)
            die("store_destroy", rc);
        int fd = open(raw, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        if (fd < 0)
            die("open raw", PXS_ERR_IO);
        t0 = app_now();
        for (size_t i = 0; i < n; i++)
            if (write(fd, buf, sz) != (ssize_t)sz)
                die("write raw", PXS_ERR_IO);
        double t_write = app_now() - t0;
        close(fd);
        double gb = (double)n * (double)sz / 1e9;
        if (rank == 0)
            app_report(json, "store-hdf5", "put", nranks, sz, gb / t_put, gb / t_write, "write()",
                       "GB/s", 1);

        /* resolve (a reader job: pxs_store_open) vs pread() */
        if ((rc = pxs_store_open(MPI_COMM_WORLD, sdir, &st)) != PXS_OK)
            die("store_open", rc);
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = app_now();
        for (size_t i = 0; i < n; i++) {
            size_t len = 0;
            if ((rc = pxs_store_resolve(st, &px[i], buf, sz, &len)) != PXS_OK || len != sz)
                die("resolve", rc);
        }
        double t_res = app_now() - t0;
        if ((rc = pxs_store_destroy(st)) != PXS_OK)
            die("store_destroy", rc);
        fd = open(raw, O_RDONLY);
        if (fd < 0)
            die("open raw", PXS_ERR_IO);
        t0 = app_now();
        for (size_t i = 0; i < n; i++)
            if (pread(fd, buf, sz, (off_t)(i * sz)) != (ssize_t)sz)
                die("pread raw", PXS_ERR_IO);
        double t_read = app_now() - t0;
        close(fd);
        if (rank == 0)
            app_report(json, "store-hdf5", "resolve", nranks, sz, gb / t_res, gb / t_read,
                       "pread()", "GB/s", 1);
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0)
            rm_tree(sdir);
        unlink(raw);
        free(buf);
        free(px);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0 && !app_opt(argc, argv, "--dir"))
        rm_tree(base);
    MPI_Finalize();
    return 0;
}
