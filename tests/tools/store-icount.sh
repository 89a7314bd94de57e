#!/bin/sh
# Instructions per same-node put and resolve of a small object (issue 15),
# counted by callgrind (repeatable on a loaded machine, unlike timings).
#
#   tests/tools/store-icount.sh [build-dir] [size] [n] [live]
#
# Builds a 2-rank driver against build-dir's static library: rank 0 puts one
# keep object, rank 1 resolves it n times (the same proxy: the decoded-proxy
# cache hits), then n times alternating with a second object (the cache
# misses every time); then rank 0 puts n objects, each evicted by the owner
# (counted apart: evict_one), with `live` (default 0) more keep objects of
# 64 B put before and left live meanwhile (the slot table's high-water mark).
# PXS_ICOUNT_UCX=1 counts the UCX connector instead of the RMA one. Prints instructions per call of each; the memcpy of
# `size` bytes is inside the figures (412 instructions for 4 KiB with
# glibc 2.36's AVX2 memcpy). Needs valgrind and mpicc; Open MPI as root
# needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
set -eu
B=$(cd "${1:-build}" && pwd)
SZ=${2:-4096}
N=${3:-1000}
LIVE=${4:-0}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
# PXS_ICOUNT_KEEP=dir keeps the callgrind files (cg.0: put, cg.1: resolve) there
trap 'if [ -n "${PXS_ICOUNT_KEEP:-}" ]; then mkdir -p "$PXS_ICOUNT_KEEP" && cp "$T"/cg.* "$PXS_ICOUNT_KEEP"/; fi; rm -rf "$T"' EXIT
cat > "$T/drv.c" <<'C'
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include "proxystream.h"
__attribute__((noinline)) int res_same(pxs_store_t *st, pxs_proxy_t *px, void *d, size_t sz)
{
    size_t len;
    return pxs_store_resolve(st, px, d, sz, &len);
}
__attribute__((noinline)) int res_other(pxs_store_t *st, pxs_proxy_t *px, void *d, size_t sz)
{
    size_t len;
    return pxs_store_resolve(st, px, d, sz, &len);
}
__attribute__((noinline)) int put_one(pxs_store_t *st, const void *s, size_t sz, pxs_proxy_t *px)
{
    return pxs_store_put(st, s, sz, NULL, px);
}
__attribute__((noinline)) int evict_one(pxs_store_t *st, pxs_proxy_t *px)
{
    return pxs_store_evict(st, px);
}
int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    size_t sz = (size_t)atol(argv[1]);
    int n = atoi(argv[2]), live = atoi(argv[3]);
    pxs_store_opts_t so;
    pxs_store_t *st;
    if (pxs_store_opts_init(&so))
        abort();
    if (getenv("PXS_ICOUNT_UCX")) /* PXS_ICOUNT_UCX=1: the UCX connector */
        so.connector = PXS_CONN_UCX;
    so.arena_bytes = (sz + 4096) * 4 + ((size_t)1 << 20) + (size_t)live * 128;
    so.max_objects = (size_t)live + 1024;
    if (pxs_store_create(MPI_COMM_WORLD, &so, &st))
        abort();
    unsigned char *src = malloc(sz), *blk;
    if (!src || posix_memalign((void **)&blk, 4096, sz + 4096))
        abort();
    memset(src, 0x5a, sz);
    pxs_proxy_t px[2];
    if (rank == 0) {
        pxs_put_opts_t k;
        if (pxs_put_opts_init(&k))
            abort();
        k.resolves = 0;
        if (pxs_store_put(st, src, sz, &k, &px[0]) || pxs_store_put(st, src, sz, &k, &px[1]))
            abort();
    }
    MPI_Bcast(px, (int)sizeof px, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank == 1) {
        for (int i = 0; i < n; i++)
            if (res_same(st, &px[0], blk + 16, sz))
                abort();
        for (int i = 0; i < n; i++)
            if (res_other(st, &px[i & 1], blk + 16, sz))
                abort();
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        if (pxs_store_evict(st, &px[0]) || pxs_store_evict(st, &px[1]))
            abort();
        pxs_put_opts_t k;
        if (pxs_put_opts_init(&k))
            abort();
        k.resolves = 0;
        for (int i = 0; i < live; i++) {
            pxs_proxy_t q;
            if (pxs_store_put(st, src, 64, &k, &q))
                abort();
        }
        for (int i = 0; i < n; i++) {
            pxs_proxy_t q;
            if (put_one(st, src, sz, &q) || evict_one(st, &q))
                abort();
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (pxs_store_destroy(st))
        abort();
    free(src);
    free(blk);
    MPI_Finalize();
    return 0;
}
C
# link like the benchmark programs (their link line names HDF5 and UCX when built)
LIBS=$(sed -n 's/.*pxs-bench-store *//p' "$B/apps/CMakeFiles/pxs-bench-store.dir/link.txt" |
    sed "s|\.\./libproxystream\.a|$B/libproxystream.a|")
mpicc -O2 -g -I"$SRC/include" "$T/drv.c" -o "$T/drv" $LIBS -lpthread
mpiexec -n 2 --oversubscribe valgrind --tool=callgrind \
    --callgrind-out-file="$T/cg.%q{OMPI_COMM_WORLD_RANK}" \
    --toggle-collect=res_same --toggle-collect=res_other --toggle-collect=put_one --toggle-collect=evict_one \
    "$T/drv" "$SZ" "$N" "$LIVE" > "$T/log" 2>&1 || { tail -20 "$T/log" >&2; exit 1; }
for r in 0 1; do
    callgrind_annotate --inclusive=yes "$T/cg.$r" 2>/dev/null |
        awk -v n="$N" -v sz="$SZ" '$3 ~ /drv\.c:(res_same|res_other|put_one|evict_one)$/ {
            c = $1; gsub(",", "", c); f = $3; sub(/.*:/, "", f);
            if (c + 0 > best[f]) best[f] = c + 0 }
            END { for (f in best) printf "%-10s %6.0f instructions per call (size %s)\n", f, best[f] / n, sz }'
done
