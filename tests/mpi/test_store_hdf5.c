/* HDF5 connector (docs/DESIGN.md, section "HDF5 connector"), driven by
 * tests/tools/hdf5-jobs.sh: several separate mpiexec runs on one directory.
 *   write DIR FILE     NP 3: puts, live resolves of every rank's objects
 *                      (SWMR read of a live writer, a put after the readers
 *                      opened the file), evict, drop, view, async, TRUNC;
 *                      every proxy (text) to FILE
 *   read DIR FILE      a later job: pxs_store_open, every proxy of FILE
 *                      resolves to its bytes (evicted: STALE); forged
 *                      proxies STALE/CORRUPT; read-only put
 *   damage DIR FILE    NP 1: a flipped payload bit (CORRUPT), a file
 *                      truncated mid-record (that record CORRUPT/STALE, the
 *                      complete ones resolve), a deleted file (PXS_ERR_IO
 *                      naming the file)
 *   cuts DIR           NP 1: one file truncated at several offsets (copies):
 *                      every record that lies wholly before the cut
 *                      resolves to its bytes, the others are CORRUPT
 *                      naming the file and the cut; then the file cut
 *                      under an open reader: CORRUPT beyond the cut
 *   faults DIR         bad directories and manifests at create and open
 *   chunks DIR         NP 1: objects spanning many data chunks (chunk
 *                      addresses looked up through H5Dread_chunk and the
 *                      probe driver) resolve in any order, for the writer
 *                      and a later reader; a directory where the rank's
 *                      file should be is CORRUPT naming the file
 *   full DIR FILE      NP 2: rank 1 runs into RLIMIT_FSIZE (disk full):
 *                      PXS_ERR_IO with HDF5's text, later puts refused
 *   readfull DIR FILE  every put that succeeded before the disk was full
 *                      resolves in a later job
 *   small DIR FILE     NP 1: a few objects, proxies to FILE
 *   ro DIR FILE        DIR on a read-only mount (hdf5-jobs.sh: unshare -m,
 *                      bind mount remounted ro): create there is PXS_ERR_IO
 *                      ("Read-only file system"), the store still opens and
 *                      resolves */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pxs_test.h"
#include "store/store_int.h"

enum { K = 6 };
static const size_t sizes[K] = {0, 1, 1000, 70000, 1200000, 4096};
static int rank, nranks;

static uint64_t
seed_of(int owner, int i)
{
    return (uint64_t)owner * 1000u + (uint64_t)i + 7u;
}

static pxs_store_t *
make_store(const char *dir, int durable)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_HDF5;
    so.path = dir;
    so.durable = durable;
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    return st;
}

static pxs_proxy_t
put_obj(pxs_store_t *st, size_t len, uint64_t seed)
{
    unsigned char *b = malloc(len ? len : 1);
    CHECK(b);
    pxs_test_fill(b, len, seed);
    pxs_put_opts_t po;
    CHECK_OK(pxs_put_opts_init(&po));
    po.resolves = 1; /* ignored: durable objects are keep-until-evict */
    po.seq = seed;
    pxs_proxy_t p;
    CHECK_OK(pxs_store_put(st, b, len, &po, &p));
    free(b);
    return p;
}

static void
expect_bytes(pxs_store_t *st, const pxs_proxy_t *p, size_t len, uint64_t seed)
{
    void *b = NULL;
    size_t n = 0;
    CHECK_OK(pxs_store_resolve_alloc(st, p, &b, &n));
    CHECK(n == len && pxs_test_verify(b, n, seed));
    pxs_free(b);
}

static void
check_detail(const char *needle)
{
    if (!strstr(pxs_last_error_detail(), needle)) {
        fprintf(stderr, "[rank %d] detail lacks \"%s\": %s\n", rank, needle,
                pxs_last_error_detail());
        CHECK(!"detail");
    }
}

/* ------------------------------------------------------------ write */
static void
do_write(const char *dir, const char *file)
{
    pxs_store_t *st = make_store(dir, 2);
    pxs_proxy_t mine[K + 1];
    for (int i = 0; i < K; i++)
        mine[i] = put_obj(st, sizes[i], seed_of(rank, i));
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(mine[2].bytes, PXS_PROXY_SIZE, &pi));
    CHECK(pi.kind == PXS_CONN_HDF5 && (int)pi.owner == rank && pi.generation == 2);
    CHECK((pi.flags & PXS_PROXY_F_KEEP) && (pi.flags & PXS_PROXY_F_PAYLOAD_CRC));
    CHECK(pi.size == sizes[2]);
    CHECK(pi.payload_crc == pxs_crc32c(0, NULL, 0) || pi.size > 0);

    /* the owner: resolve twice (keep), view, async, TRUNC */
    for (int i = 0; i < K; i++) {
        expect_bytes(st, &mine[i], sizes[i], seed_of(rank, i));
        expect_bytes(st, &mine[i], sizes[i], seed_of(rank, i));
    }
    pxs_view_t v;
    CHECK_OK(pxs_store_view(st, &mine[3], &v));
    CHECK(v.len == sizes[3] && pxs_test_verify(v.data, v.len, seed_of(rank, 3)));
    CHECK_OK(pxs_store_release(st, &v));
    CHECK_RC(pxs_store_release(st, &v), PXS_ERR_INVALID);
    unsigned char *buf = malloc(sizes[4]);
    size_t n = 0;
    pxs_request_t *rq = NULL;
    CHECK_OK(pxs_store_resolve_start(st, &mine[4], buf, sizes[4], &rq));
    CHECK_OK(pxs_store_resolve_wait(rq, &n));
    CHECK(n == sizes[4] && pxs_test_verify(buf, n, seed_of(rank, 4)));
    CHECK_RC(pxs_store_resolve(st, &mine[3], buf, 10, &n), PXS_ERR_TRUNC);
    CHECK(n == sizes[3]);

    /* every rank's objects, read from the owner's live file (SWMR) */
    pxs_proxy_t *all = malloc(sizeof(pxs_proxy_t) * (K + 1) * (size_t)nranks);
    MPI_Allgather(mine, K * PXS_PROXY_SIZE, MPI_BYTE, all, K * PXS_PROXY_SIZE, MPI_BYTE,
                  MPI_COMM_WORLD);
    for (int r = 0; r < nranks; r++)
        for (int i = 0; i < K; i++)
            expect_bytes(st, &all[r * K + i], sizes[i], seed_of(r, i));
    CHECK(pxsi_store_path(st, (rank + 1) % nranks) == PXSI_PATH_RMA);

    /* a put after the readers opened the file: they refresh */
    MPI_Barrier(MPI_COMM_WORLD);
    mine[K] = put_obj(st, 3000, seed_of(rank, K));
    pxs_proxy_t *late = malloc(sizeof(pxs_proxy_t) * (size_t)nranks);
    MPI_Allgather(&mine[K], PXS_PROXY_SIZE, MPI_BYTE, late, PXS_PROXY_SIZE, MPI_BYTE,
                  MPI_COMM_WORLD);
    for (int r = 0; r < nranks; r++)
        expect_bytes(st, &late[r], 3000, seed_of(r, K));

    /* evict: the owner ends object 3; nobody resolves it after */
    int prev = (rank + nranks - 1) % nranks;
    CHECK_OK(pxs_store_drop(st, &all[prev * K + 3])); /* keep: validated no-op */
    expect_bytes(st, &all[prev * K + 3], sizes[3], seed_of(prev, 3));
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_OK(pxs_store_evict(st, &mine[3]));
    CHECK_RC(pxs_store_evict(st, &mine[3]), PXS_ERR_STALE);
    MPI_Barrier(MPI_COMM_WORLD);
    for (int r = 0; r < nranks; r++) {
        CHECK_RC(pxs_store_resolve(st, &all[r * K + 3], buf, sizes[4], &n), PXS_ERR_STALE);
        check_detail("evicted");
    }

    /* the proxies, in text, for the next job */
    if (rank == 0) {
        FILE *f = fopen(file, "w");
        CHECK(f);
        for (int r = 0; r < nranks; r++)
            for (int i = 0; i <= K; i++) {
                const pxs_proxy_t *p = i < K ? &all[r * K + i] : &late[r];
                char t[PXS_PROXY_TEXT_LEN];
                CHECK_OK(pxs_proxy_to_text(p, t, sizeof t));
                fprintf(f, "%d %d %zu %c %s\n", r, i, i < K ? sizes[i] : (size_t)3000,
                        i == 3 ? 'D' : 'L', t);
            }
        CHECK(fclose(f) == 0);
    }
    free(late);
    free(all);
    free(buf);
    CHECK_OK(pxs_store_destroy(st));
}

/* ------------------------------------------------------------ read */
typedef struct ent {
    int owner, idx;
    size_t len;
    char state;
    pxs_proxy_t p;
} ent_t;

static int
load(const char *file, ent_t *e, int cap)
{
    FILE *f = fopen(file, "r");
    CHECK(f);
    int n = 0;
    char t[200], s;
    int o, i;
    size_t l;
    while (n < cap && fscanf(f, "%d %d %zu %c %199s", &o, &i, &l, &s, t) == 5) {
        e[n].owner = o;
        e[n].idx = i;
        e[n].len = l;
        e[n].state = s;
        CHECK_OK(pxs_proxy_from_text(t, &e[n].p));
        n++;
    }
    fclose(f);
    return n;
}

static void
resolve_all(pxs_store_t *st, const ent_t *e, int n)
{
    for (int k = 0; k < n; k++) {
        if (e[k].state == 'D') {
            size_t m = 0;
            unsigned char b[8];
            CHECK_RC(pxs_store_resolve(st, &e[k].p, b, e[k].len > 8 ? 8 : 0, &m),
                     e[k].len > 8 ? PXS_ERR_TRUNC : PXS_ERR_STALE);
            void *x = NULL;
            CHECK_RC(pxs_store_resolve_alloc(st, &e[k].p, &x, &m), PXS_ERR_STALE);
        } else {
            expect_bytes(st, &e[k].p, e[k].len, seed_of(e[k].owner, e[k].idx));
        }
    }
}

static pxs_proxy_t
forge(const pxs_proxy_t *p, int field)
{
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(p->bytes, PXS_PROXY_SIZE, &pi));
    if (field == 0)
        pi.store_nonce ^= 0x10;
    else if (field == 1)
        pi.offset += 1;
    else if (field == 2)
        pi.generation += 1000000;
    else if (field == 3)
        pi.size -= 1;
    else if (field == 4)
        pi.payload_crc ^= 1;
    else if (field == 5)
        pi.generation += 1; /* another (live) record's index */
    pxs_proxy_t q;
    CHECK_OK(pxs_proxy_encode(&pi, &q));
    return q;
}

static void
do_read(const char *dir, const char *file)
{
    ent_t e[64];
    int n = load(file, e, 64);
    CHECK(n == 3 * (K + 1));
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_open(MPI_COMM_WORLD, dir, &st));
    resolve_all(st, e, n);
    /* forged proxies: never bytes */
    const pxs_proxy_t *big = &e[4].p; /* rank 0, object 4 */
    void *x = NULL;
    size_t m = 0;
    pxs_proxy_t q = forge(big, 0);
    CHECK_RC(pxs_store_resolve_alloc(st, &q, &x, &m), PXS_ERR_STALE);
    q = forge(big, 1);
    CHECK_RC(pxs_store_resolve_alloc(st, &q, &x, &m), PXS_ERR_CORRUPT);
    q = forge(big, 2);
    CHECK_RC(pxs_store_resolve_alloc(st, &q, &x, &m), PXS_ERR_STALE);
    q = forge(big, 3);
    CHECK_RC(pxs_store_resolve_alloc(st, &q, &x, &m), PXS_ERR_CORRUPT);
    q = forge(big, 4);
    CHECK_RC(pxs_store_resolve_alloc(st, &q, &x, &m), PXS_ERR_CORRUPT);
    q = forge(big, 5);
    CHECK_RC(pxs_store_resolve_alloc(st, &q, &x, &m), PXS_ERR_CORRUPT);
    /* read-only */
    pxs_proxy_t p;
    CHECK_RC(pxs_store_put(st, "x", 1, NULL, &p), PXS_ERR_INVALID);
    check_detail("read-only");
    /* a reserve fails at once with the put's error (not at commit), *res
     * zeroed: nothing to commit or cancel */
    pxs_reservation_t res;
    CHECK_RC(pxs_store_reserve(st, 4096, NULL, &res), PXS_ERR_INVALID);
    check_detail("read-only");
    CHECK(res.data == NULL && res.len == 0);
    CHECK_RC(pxs_store_cancel(st, &res), PXS_ERR_INVALID);
    CHECK_OK(pxs_store_drop(st, big));
    CHECK_OK(pxs_store_evict(st, big)); /* not the owner: a validated drop */
    expect_bytes(st, big, e[4].len, seed_of(0, 4));
    CHECK_OK(pxs_store_destroy(st));

    /* one rank alone (MPI_COMM_SELF), through the manifest's path */
    char mf[8192];
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(big->bytes, PXS_PROXY_SIZE, &pi));
    snprintf(mf, sizeof mf, "%s/pxs-%016llx.manifest", dir, (unsigned long long)pi.store_nonce);
    CHECK_OK(pxs_store_open(MPI_COMM_SELF, mf, &st));
    resolve_all(st, e, n);
    CHECK_OK(pxs_store_destroy(st));
}

/* ------------------------------------------------------------ damage */
/* The file offset of the first `len` payload bytes of seed in file fn. */
static long
find_payload(const char *fn, uint64_t seed, size_t len)
{
    FILE *f = fopen(fn, "rb");
    CHECK(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz), pat[64];
    CHECK(b && fread(b, 1, (size_t)sz, f) == (size_t)sz);
    fclose(f);
    pxs_test_fill(pat, len < 64 ? len : 64, seed);
    long at = -1;
    for (long i = 0; i + 64 <= sz; i++)
        if (memcmp(b + i, pat, 64) == 0) {
            at = i;
            break;
        }
    free(b);
    CHECK(at >= 0);
    return at;
}

static void
rank_file(char *fn, size_t cap, const char *dir, const pxs_proxy_t *p)
{
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(p->bytes, PXS_PROXY_SIZE, &pi));
    snprintf(fn, cap, "%s/pxs-%016llx-r%u.h5", dir, (unsigned long long)pi.store_nonce, pi.owner);
}

static void
do_damage(const char *dir, const char *file)
{
    ent_t e[64];
    int n = load(file, e, 64);
    char fn[4096];
    /* a flipped bit in rank 0's object 4 */
    rank_file(fn, sizeof fn, dir, &e[4].p);
    long at = find_payload(fn, seed_of(0, 4), e[4].len) + 5000;
    int fd = open(fn, O_RDWR);
    CHECK(fd >= 0);
    unsigned char c;
    CHECK(pread(fd, &c, 1, at) == 1);
    c ^= 0x04;
    CHECK(pwrite(fd, &c, 1, at) == 1);
    close(fd);
    /* rank 1's file cut in the middle of its object 4 (1.2 MB): the
     * records before it are complete */
    int r1 = K + 1 + 4;
    CHECK(e[r1].owner == 1 && e[r1].idx == 4);
    char fn1[4096];
    rank_file(fn1, sizeof fn1, dir, &e[r1].p);
    long cut = find_payload(fn1, seed_of(1, 4), e[r1].len) + 600000;
    CHECK(truncate(fn1, cut) == 0);
    /* rank 2's file deleted */
    char fn2[4096];
    rank_file(fn2, sizeof fn2, dir, &e[2 * (K + 1)].p);
    CHECK(unlink(fn2) == 0);

    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_open(MPI_COMM_SELF, dir, &st));
    int ok = 0, bad = 0;
    for (int k = 0; k < n; k++) {
        void *x = NULL;
        size_t m = 0;
        int rc = pxs_store_resolve_alloc(st, &e[k].p, &x, &m);
        if (e[k].owner == 1 && e[k].idx >= 4 && e[k].state != 'D') {
            /* HDF5 refuses a truncated file as a whole; the recovery
             * driver opens what is left: the record cut in the middle and
             * those after it are CORRUPT, naming the file and the cut, the
             * complete ones before it resolve (below) */
            CHECK_RC(rc, PXS_ERR_CORRUPT);
            check_detail(fn1);
            check_detail("is truncated");
            bad++;
            continue;
        }
        if (e[k].owner == 2) {
            CHECK_RC(rc, PXS_ERR_IO);
            check_detail(fn2);
            continue;
        }
        if (e[k].state == 'D') {
            CHECK_RC(rc, PXS_ERR_STALE);
            continue;
        }
        if (e[k].owner == 0 && e[k].idx == 4) {
            CHECK_RC(rc, PXS_ERR_CORRUPT);
            check_detail("checksum");
            bad++;
            continue;
        }
        /* complete records of damaged and intact files resolve */
        CHECK_RC(rc, PXS_OK);
        CHECK(m == e[k].len && pxs_test_verify(x, m, seed_of(e[k].owner, e[k].idx)));
        pxs_free(x);
        ok++;
    }
    CHECK(bad >= 2 && ok > 0);
    CHECK_OK(pxs_store_destroy(st));
}

/* ------------------------------------------------------------ cuts */
enum { NC = 40 };

/* A copy of `len` bytes of src as dst. */
static void
copy_prefix(const char *src, const char *dst, long len)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    CHECK(in && out);
    char buf[65536];
    long left = len;
    while (left > 0) {
        size_t want = left < (long)sizeof buf ? (size_t)left : sizeof buf;
        size_t got = fread(buf, 1, want, in);
        CHECK(got > 0 && fwrite(buf, 1, got, out) == got);
        left -= (long)got;
    }
    fclose(in);
    CHECK(fclose(out) == 0);
}

static void
do_cuts(const char *dir)
{
    pxs_store_t *st = make_store(dir, 0);
    pxs_proxy_t p[NC];
    size_t len[NC];
    for (int i = 0; i < NC; i++) {
        len[i] = 1000 + (size_t)i * 37003 % 260000; /* 1 KB .. 261 KB, ~5 MB in all */
        p[i] = put_obj(st, len[i], seed_of(0, i));
    }
    CHECK_OK(pxs_store_destroy(st));
    pxs_proxy_info_t pi;
    CHECK_OK(pxs_proxy_decode(p[0].bytes, PXS_PROXY_SIZE, &pi));
    char fn[4096], mf[4096];
    snprintf(fn, sizeof fn, "%s/pxs-%016llx-r0.h5", dir, (unsigned long long)pi.store_nonce);
    snprintf(mf, sizeof mf, "%s/pxs-%016llx.manifest", dir, (unsigned long long)pi.store_nonce);
    struct stat sb;
    CHECK(stat(fn, &sb) == 0);
    long size = (long)sb.st_size, end[NC];
    for (int i = 0; i < NC; i++)
        end[i] = find_payload(fn, seed_of(0, i), len[i]) + (long)len[i];
    /* cuts: fractions of the file, the middle of record 20's payload, the
     * last byte */
    long cuts[] = {size / 10,     size * 3 / 10, size / 2,
                   size * 7 / 10, size * 9 / 10, end[20] - (long)len[20] / 2,
                   size - 1};
    int ncuts = (int)(sizeof cuts / sizeof cuts[0]), total_ok = 0, total_bad = 0;
    for (int c = 0; c < ncuts; c++) {
        char cdir[4096], cfn[8192], cmf[8192];
        snprintf(cdir, sizeof cdir, "%s.cut%d", dir, c);
        CHECK(mkdir(cdir, 0777) == 0);
        snprintf(cfn, sizeof cfn, "%s/%s", cdir, strrchr(fn, '/') + 1);
        snprintf(cmf, sizeof cmf, "%s/%s", cdir, strrchr(mf, '/') + 1);
        CHECK(stat(mf, &sb) == 0);
        copy_prefix(mf, cmf, (long)sb.st_size);
        copy_prefix(fn, cfn, cuts[c]);
        CHECK_OK(pxs_store_open(MPI_COMM_SELF, cdir, &st));
        int ok = 0, bad = 0, lost = 0, complete = 0;
        for (int i = 0; i < NC; i++) {
            void *x = NULL;
            size_t m = 0;
            int rc = pxs_store_resolve_alloc(st, &p[i], &x, &m);
            complete += end[i] <= cuts[c];
            if (rc == PXS_OK) {
                CHECK(end[i] <= cuts[c]); /* never bytes the file no longer holds */
                CHECK(m == len[i] && pxs_test_verify(x, m, seed_of(0, i)));
                pxs_free(x);
                ok++;
                continue;
            }
            CHECK_RC(rc, PXS_ERR_CORRUPT);
            check_detail(cfn);
            check_detail("truncated");
            bad++;
            /* a record whose bytes all lie before the cut is complete:
             * losing it is what recovery must not do */
            if (end[i] <= cuts[c]) {
                fprintf(stderr, "cut %ld of %ld: complete record %d (ends at %ld) lost: %s\n",
                        cuts[c], size, i, end[i], pxs_last_error_detail());
                lost++;
            }
        }
        printf("cut at %ld of %ld bytes: %d record(s) resolve, %d CORRUPT, %d complete "
               "one(s) lost\n",
               cuts[c], size, ok, bad, lost);
        /* exactly the complete records resolve */
        CHECK(lost == 0 && ok == complete && bad == NC - complete);
        total_ok += ok;
        total_bad += bad;
        CHECK_OK(pxs_store_destroy(st));
    }
    CHECK(total_ok > 0 && total_bad > 0);
    /* cut under an open reader (HDF5 checked the size at open; the bytes are
     * read with pread at the chunk's address): what lies before the cut
     * still resolves, what lay beyond is CORRUPT ("beyond the end of the
     * file"), never other bytes */
    CHECK_OK(pxs_store_open(MPI_COMM_SELF, dir, &st));
    void *x = NULL;
    size_t m = 0;
    for (int i = 0; i < NC; i++) { /* every chunk's address is known now */
        CHECK_OK(pxs_store_resolve_alloc(st, &p[i], &x, &m));
        CHECK(m == len[i] && pxs_test_verify(x, m, seed_of(0, i)));
        pxs_free(x);
    }
    CHECK(end[NC - 1] > end[NC / 2]);
    CHECK(truncate(fn, end[NC / 2]) == 0);
    CHECK_RC(pxs_store_resolve_alloc(st, &p[NC - 1], &x, &m), PXS_ERR_CORRUPT);
    check_detail("beyond the end of the file");
    CHECK_OK(pxs_store_resolve_alloc(st, &p[1], &x, &m));
    CHECK(m == len[1] && pxs_test_verify(x, m, seed_of(0, 1)));
    pxs_free(x);
    CHECK_OK(pxs_store_destroy(st));
    printf("cut under an open reader: record %d CORRUPT, records 0 and 1 resolve\n", NC - 1);
}

/* ------------------------------------------------------------ faults */
static void
do_faults(const char *dir)
{
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_HDF5;
    pxs_store_t *st = NULL;
    char p[2048];
    /* no path */
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_INVALID);
    check_detail("opts.path");
    /* the parent is missing */
    snprintf(p, sizeof p, "%s/missing/store", dir);
    so.path = p;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_IO);
    check_detail(p);
    check_detail("No such file");
    /* a file where the directory should be */
    snprintf(p, sizeof p, "%s/afile", dir);
    if (rank == 0) {
        FILE *f = fopen(p, "w");
        CHECK(f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_IO);
    check_detail("not a directory");
    /* bad durability on one rank only: every rank fails */
    snprintf(p, sizeof p, "%s/ok", dir);
    so.durable = rank == 1 ? -1 : 0;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_INVALID);
    so.durable = 0;
    /* open: missing, empty, a damaged manifest, two stores in one dir */
    snprintf(p, sizeof p, "%s/nothing", dir);
    CHECK_RC(pxs_store_open(MPI_COMM_WORLD, p, &st), PXS_ERR_IO);
    check_detail(p);
    snprintf(p, sizeof p, "%s/empty", dir);
    if (rank == 0)
        CHECK(mkdir(p, 0777) == 0);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RC(pxs_store_open(MPI_COMM_WORLD, p, &st), PXS_ERR_NOT_FOUND);
    snprintf(p, sizeof p, "%s/empty/pxs-0000000000000001.manifest", dir);
    if (rank == 0) {
        FILE *f = fopen(p, "w");
        CHECK(f);
        fprintf(f, "garbage\n");
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK_RC(pxs_store_open(MPI_COMM_WORLD, p, &st), PXS_ERR_CORRUPT);
    snprintf(p, sizeof p, "%s/two", dir);
    so.path = p;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st));
    unsigned long long nonce1 = (unsigned long long)pxsi_store_nonce(st);
    CHECK_OK(pxs_store_destroy(st));
    pxs_store_t *st2 = NULL;
    CHECK_OK(pxs_store_create(MPI_COMM_WORLD, &so, &st2));
    pxs_proxy_t px = put_obj(st2, 100, 5);
    CHECK_OK(pxs_store_destroy(st2));
    /* the directory: both stores, each proxy routed to its own */
    CHECK_OK(pxs_store_open(MPI_COMM_WORLD, p, &st));
    expect_bytes(st, &px, 100, 5);
    CHECK_OK(pxs_store_destroy(st));
    /* a proxy of the second store given to the first (by its manifest) */
    char mf[8192];
    snprintf(mf, sizeof mf, "%s/pxs-%016llx.manifest", p, nonce1);
    CHECK_OK(pxs_store_open(MPI_COMM_WORLD, mf, &st));
    void *x = NULL;
    size_t m = 0;
    CHECK_RC(pxs_store_resolve_alloc(st, &px, &x, &m), PXS_ERR_STALE);
    CHECK_OK(pxs_store_destroy(st));
    /* NULL arguments */
    CHECK_RC(pxs_store_open(MPI_COMM_WORLD, NULL, &st), PXS_ERR_INVALID);
    CHECK_RC(pxs_store_open(MPI_COMM_WORLD, dir, NULL), PXS_ERR_INVALID);
}

/* ------------------------------------------------------------ disk full */
static void
do_full(const char *dir, const char *file)
{
    signal(SIGXFSZ, SIG_IGN);
    pxs_store_t *st = make_store(dir, 1);
    if (rank == 1) {
        struct rlimit rl = {3000000, 3000000};
        CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
    }
    enum { N = 40, LEN = 100000 };
    pxs_proxy_t p[N];
    int good = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        unsigned char *b = malloc(LEN);
        pxs_test_fill(b, LEN, seed_of(rank, i));
        int rc = pxs_store_put(st, b, LEN, NULL, &p[good]);
        free(b);
        if (rc == PXS_OK) {
            CHECK(!failed);
            good++;
            continue;
        }
        CHECK_RC(rc, PXS_ERR_IO);
        if (!failed) {
            check_detail(dir);
            check_detail("RLIMIT_FSIZE");
            check_detail("nothing was written");
            fprintf(stderr, "rank %d disk full after %d puts: %s\n", rank, good,
                    pxs_last_error_detail());
        }
        failed++;
    }
    CHECK(rank == 1 ? failed > 0 && good > 0 : failed == 0);
    /* the refused puts wrote nothing: what was written resolves, here and
     * in the next job */
    for (int i = 0; i < good; i++) {
        void *b = NULL;
        size_t n = 0;
        int rc = pxs_store_resolve_alloc(st, &p[i], &b, &n);
        CHECK_RC(rc, PXS_OK);
        CHECK(n == LEN && pxs_test_verify(b, n, seed_of(rank, i)));
        pxs_free(b);
    }
    int goods[256];
    MPI_Gather(&good, 1, MPI_INT, goods, 1, MPI_INT, 0, MPI_COMM_WORLD);
    pxs_proxy_t *all = malloc(sizeof(pxs_proxy_t) * N * (size_t)nranks);
    MPI_Gather(p, N * PXS_PROXY_SIZE, MPI_BYTE, all, N * PXS_PROXY_SIZE, MPI_BYTE, 0,
               MPI_COMM_WORLD);
    if (rank == 0) {
        FILE *f = fopen(file, "w");
        CHECK(f);
        for (int r = 0; r < nranks; r++)
            for (int i = 0; i < goods[r]; i++) {
                char t[PXS_PROXY_TEXT_LEN];
                CHECK_OK(pxs_proxy_to_text(&all[r * N + i], t, sizeof t));
                fprintf(f, "%d %d %d L %s\n", r, i, LEN, t);
            }
        CHECK(fclose(f) == 0);
    }
    free(all);
    CHECK_OK(pxs_store_destroy(st));
}

static void
do_readfull(const char *dir, const char *file)
{
    ent_t e[128];
    int n = load(file, e, 128);
    CHECK(n > 40);
    pxs_store_t *st = NULL;
    CHECK_OK(pxs_store_open(MPI_COMM_WORLD, dir, &st));
    resolve_all(st, e, n);
    CHECK_OK(pxs_store_destroy(st));
}

/* ------------------------------------------------------------ read-only file
 * system */
/* small: one rank per job puts K objects and writes their proxies.
 * ro: run with DIR on a read-only mount: a new store there is PXS_ERR_IO
 * naming the path and the system's text; the existing store opens and
 * resolves (a reader writes nothing). */
static void
do_small(const char *dir, const char *file)
{
    pxs_store_t *st = make_store(dir, 1);
    FILE *f = rank == 0 ? fopen(file, "w") : NULL;
    for (int i = 0; i < K; i++) {
        pxs_proxy_t p = put_obj(st, sizes[i], seed_of(rank, i));
        char t[PXS_PROXY_TEXT_LEN];
        CHECK_OK(pxs_proxy_to_text(&p, t, sizeof t));
        if (f)
            fprintf(f, "%d %d %zu L %s\n", rank, i, sizes[i], t);
    }
    if (f)
        CHECK(fclose(f) == 0);
    CHECK_OK(pxs_store_destroy(st));
}

static void
do_ro(const char *dir, const char *file)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/new", dir);
    pxs_store_opts_t so;
    CHECK_OK(pxs_store_opts_init(&so));
    so.connector = PXS_CONN_HDF5;
    so.path = p;
    pxs_store_t *st = NULL;
    CHECK_RC(pxs_store_create(MPI_COMM_WORLD, &so, &st), PXS_ERR_IO);
    check_detail(p);
    check_detail("Read-only file system");
    ent_t e[64];
    int n = load(file, e, 64);
    CHECK(n == K);
    CHECK_OK(pxs_store_open(MPI_COMM_WORLD, dir, &st));
    resolve_all(st, e, n);
    CHECK_OK(pxs_store_destroy(st));
}

/* ------------------------------------------------------------ chunks */
static void
do_chunks(const char *dir)
{
    enum { N = 24 };
    size_t len[N];
    pxs_proxy_t p[N];
    pxs_store_t *st = make_store(dir, 0);
    for (int i = 0; i < N; i++) {
        len[i] = 300000 + (size_t)i * 12345; /* ~10 MiB: most cross a chunk edge */
        p[i] = put_obj(st, len[i], seed_of(0, i));
    }
    for (int i = N - 1; i >= 0; i--) /* the writer, last chunk first */
        expect_bytes(st, &p[i], len[i], seed_of(0, i));
    CHECK_OK(pxs_store_destroy(st));
    /* a later reader: stride order, then every object again */
    CHECK_OK(pxs_store_open(MPI_COMM_WORLD, dir, &st));
    for (int k = 0; k < N; k++) {
        int i = (k * 7) % N;
        expect_bytes(st, &p[i], len[i], seed_of(0, i));
    }
    for (int i = 0; i < N; i++)
        expect_bytes(st, &p[i], len[i], seed_of(0, i));
    CHECK_OK(pxs_store_destroy(st));
    /* a directory where the file should be: CORRUPT naming the file */
    char fn[4096], bak[4200];
    rank_file(fn, sizeof fn, dir, &p[0]);
    snprintf(bak, sizeof bak, "%s.bak", fn);
    CHECK(rename(fn, bak) == 0);
    CHECK(mkdir(fn, 0777) == 0);
    CHECK_OK(pxs_store_open(MPI_COMM_WORLD, dir, &st));
    void *x = NULL;
    size_t m = 0;
    CHECK_RC(pxs_store_resolve_alloc(st, &p[3], &x, &m), PXS_ERR_CORRUPT);
    check_detail(fn);
    CHECK_OK(pxs_store_destroy(st));
    CHECK(rmdir(fn) == 0);
    CHECK(rename(bak, fn) == 0);
    CHECK_OK(pxs_store_open(MPI_COMM_WORLD, dir, &st));
    expect_bytes(st, &p[3], len[3], seed_of(0, 3));
    CHECK_OK(pxs_store_destroy(st));
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    CHECK(argc >= 3);
    const char *mode = argv[1], *dir = argv[2], *file = argc > 3 ? argv[3] : "";
    if (strcmp(mode, "write") == 0)
        do_write(dir, file);
    else if (strcmp(mode, "read") == 0)
        do_read(dir, file);
    else if (strcmp(mode, "damage") == 0)
        do_damage(dir, file);
    else if (strcmp(mode, "faults") == 0)
        do_faults(dir);
    else if (strcmp(mode, "chunks") == 0)
        do_chunks(dir);
    else if (strcmp(mode, "cuts") == 0)
        do_cuts(dir);
    else if (strcmp(mode, "full") == 0)
        do_full(dir, file);
    else if (strcmp(mode, "readfull") == 0)
        do_readfull(dir, file);
    else if (strcmp(mode, "small") == 0)
        do_small(dir, file);
    else if (strcmp(mode, "ro") == 0)
        do_ro(dir, file);
    else
        CHECK(!"mode");
    if (rank == 0)
        printf("hdf5 %s: OK\n", mode);
    MPI_Finalize();
    return 0;
}
