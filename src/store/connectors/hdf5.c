/* HDF5 connector: durable objects in one HDF5 file per producer rank.
 * See docs/DESIGN.md, section "HDF5 connector" (layout, proxy meaning,
 * durability, SWMR, bounds).
 *
 * Layout: <dir>/pxs-<nonce hex>-r<rank>.h5 (sec2 driver, latest format,
 * SWMR-written) holds "data" (chunked, extendible uint8 log: the payload
 * bytes of every put, back to back) and "index" (chunked, extendible
 * compound records: offset, size, generation, crc, flags, state, topic,
 * seq), plus attributes nonce, rank, nranks, format. Rank 0 writes
 * <dir>/pxs-<nonce hex>.manifest (text: format, nonce, ranks, connector)
 * once every rank's file exists.
 *
 * Proxy: kind PXS_CONN_HDF5, owner = producer rank, store nonce, offset =
 * byte offset in the data log, size, generation = record index, payload CRC
 * (always), flags PAYLOAD_CRC | KEEP (durable objects are kept until the
 * owner evicts them: a resolve budget cannot be counted across jobs).
 *
 * A resolve reads the record and checks it against the proxy (offset, size,
 * crc, generation; a dead record is PXS_ERR_STALE), then reads the bytes and
 * checks the CRC32C (PXS_ERR_CORRUPT): a proxy never yields other bytes.
 * The owner reads through its own write handle; any other rank (or a later
 * job, pxs_store_open) opens the owner's file read-only with SWMR read and
 * keeps the handle open (refreshed when a record is beyond what it saw).
 *
 * HDF5 is not thread-safe: every entry takes one process-wide mutex, and
 * turns HDF5's automatic error printing off for the call (restored after);
 * HDF5's own error text goes into the detail (h5fail). */
#ifdef PXS_HAVE_HDF5

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store/connectors/hdf5_int.h"
#include "store/store_int.h"

#define SUBSYS "store.hdf5"

#define H5_FORMAT      1
#define H5_DATA_CHUNK  ((hsize_t)1 << 20)    /* 1 MiB data log chunks */
#define H5_INDEX_CHUNK ((hsize_t)64)         /* records per index chunk (3 KiB: a put's
                                                flush rewrites the chunk it touched) */
#define H5_INDEX_BLOCK ((uint64_t)1024)      /* records a reader of a final file keeps */
#define H5_SLACK       ((uint64_t)256 << 10) /* index chunk + metadata a put may add */

/* ------------------------------------------------------------ process lock,
 * errors */
static pthread_mutex_t h5mu = PTHREAD_MUTEX_INITIALIZER;
/* Every HDF5 API call clears the error stack: a helper that cleans up
 * after a failed call saves the text first (h5_save; under h5mu). */
static char h5saved[700];
/* the file driver of every file but a recovered one ("chunk addresses"); < 0: sec2 */
static hid_t px_driver = H5I_INVALID_HID;

typedef struct h5guard {
    H5E_auto2_t fn;
    void *data;
} h5guard_t;

static void
h5_enter(h5guard_t *g)
{
    pthread_mutex_lock(&h5mu);
    g->fn = NULL;
    g->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &g->fn, &g->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5Eclear2(H5E_DEFAULT);
    h5saved[0] = '\0';
}

static void
h5_leave(h5guard_t *g)
{
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, g->fn, g->data);
    pthread_mutex_unlock(&h5mu);
}

typedef struct h5walk {
    char *buf;
    size_t cap, len;
    int n;
} h5walk_t;

static herr_t
walk_cb(unsigned n, const H5E_error2_t *e, void *cd)
{
    (void)n;
    h5walk_t *w = cd;
    if (w->n >= 3 || w->len + 1 >= w->cap)
        return 0;
    int k = snprintf(w->buf + w->len, w->cap - w->len, "%s%s(): %s", w->n ? "; " : "",
                     e->func_name ? e->func_name : "?", e->desc ? e->desc : "?");
    if (k > 0)
        w->len = w->len + (size_t)k < w->cap ? w->len + (size_t)k : w->cap - 1;
    w->n++;
    return 0;
}

/* The HDF5 error stack, innermost (most specific) first, at most 3 entries. */
static void
h5_text(char *buf, size_t cap)
{
    h5walk_t w = {buf, cap, 0, 0};
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &w);
    H5Eclear2(H5E_DEFAULT);
    if (!buf[0])
        snprintf(buf, cap, "no HDF5 error recorded");
}

static void
h5_save(void)
{
    if (!h5saved[0])
        h5_text(h5saved, sizeof h5saved);
}

/* pxsi_err with HDF5's own error text appended (the stack now, else what
 * h5_save kept). */
static int PXSI_PRINTF(2, 3) h5fail(int code, const char *fmt, ...)
{
    char msg[600], h[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h5_text(h, sizeof h);
    if (strcmp(h, "no HDF5 error recorded") == 0 && h5saved[0])
        snprintf(h, sizeof h, "%s", h5saved);
    h5saved[0] = '\0';
    return pxsi_err(code, SUBSYS, "%s (HDF5: %s)", msg, h);
}

/* ------------------------------------------------------------ state */
typedef struct h5file {
    hid_t f, data, index;
    int final;         /* its writer closed it (the .closed marker was there at open):
                          nothing in it changes any more, no refresh needed */
    uint64_t nrec;     /* records seen */
    uint64_t data_len; /* data log bytes seen */
    int recovered;     /* opened through the recovery driver: the file is
                          shorter than HDF5 recorded (truncated) */
    uint64_t eof, eoa; /* recovered: its size, and the size HDF5 recorded */
    /* direct I/O of the data log (see "Data log I/O" in docs/DESIGN.md):
     * the file's descriptor (sec2) and the file address of each data chunk
     * looked up so far (they never move: no filters) */
    int fd;            /* -1: through H5Dread/H5Dwrite */
    haddr_t *caddr;    /* by chunk index; 0 = not looked up yet */
    size_t ncaddr;
    int probe;         /* chunk addresses through the probe driver: 0 = not
                          checked yet, 1 = checked, -1 = not usable */
    /* final files: a block of index records read at once (nothing in a
     * final file changes) */
    pxsi_h5_rec_t *iblk;
    uint64_t iblk_at, iblk_n;
} h5file_t;

typedef struct h5st {
    char dir[PATH_MAX];
    uint64_t nonce;
    int rank;    /* this rank's file (writer), -1 for an opened store */
    int nranks;  /* producer ranks (files) */
    int durable; /* 0: fsync at close; 1: every put; N: every N puts */
    uint64_t unsynced;
    int broken;      /* a write failed: no more puts (the file keeps what was
                        complete) */
    h5file_t w;      /* own file (writer) */
    h5file_t *peers; /* read-only handles, by rank; f < 0 = not open */
    hid_t rtype;     /* memory type of a record */
    pxsi_store_stats_t stats;
} h5st_t;

static hid_t
rec_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(pxsi_h5_rec_t));
    if (t < 0)
        return t;
    H5Tinsert(t, "offset", HOFFSET(pxsi_h5_rec_t, offset), H5T_NATIVE_UINT64);
    H5Tinsert(t, "size", HOFFSET(pxsi_h5_rec_t, size), H5T_NATIVE_UINT64);
    H5Tinsert(t, "generation", HOFFSET(pxsi_h5_rec_t, generation), H5T_NATIVE_UINT64);
    H5Tinsert(t, "seq", HOFFSET(pxsi_h5_rec_t, seq), H5T_NATIVE_UINT64);
    H5Tinsert(t, "crc", HOFFSET(pxsi_h5_rec_t, crc), H5T_NATIVE_UINT32);
    H5Tinsert(t, "topic", HOFFSET(pxsi_h5_rec_t, topic), H5T_NATIVE_UINT32);
    H5Tinsert(t, "flags", HOFFSET(pxsi_h5_rec_t, flags), H5T_NATIVE_UINT16);
    H5Tinsert(t, "state", HOFFSET(pxsi_h5_rec_t, state), H5T_NATIVE_UINT8);
    return t;
}

void
pxsi_h5_file_name(char *buf, size_t cap, const char *dir, uint64_t nonce, int rank)
{
    if (rank < 0)
        snprintf(buf, cap, "%s/pxs-%016" PRIx64 ".manifest", dir, nonce);
    else
        snprintf(buf, cap, "%s/pxs-%016" PRIx64 "-r%d.h5", dir, nonce, rank);
}

static void
file_close(h5file_t *h)
{
    if (h->index >= 0)
        H5Dclose(h->index);
    if (h->data >= 0)
        H5Dclose(h->data);
    if (h->f >= 0)
        H5Fclose(h->f);
    h->f = h->data = h->index = H5I_INVALID_HID;
    h->recovered = 0;
    h->fd = -1;
    free(h->caddr);
    h->caddr = NULL;
    h->ncaddr = 0;
    h->probe = 0;
    free(h->iblk);
    h->iblk = NULL;
    h->iblk_n = 0;
}

static void
file_init(h5file_t *h)
{
    memset(h, 0, sizeof *h);
    h->f = h->data = h->index = H5I_INVALID_HID;
    h->fd = -1;
}

/* ------------------------------------------------------------ data log I/O
 * The payload bytes go between the caller's buffer and the file with
 * pread/pwrite at each chunk's file address: HDF5's chunk cache would copy
 * every byte once more (and write a whole 1 MiB chunk per flush of a small
 * put). The data log has no filters, and its chunks are allocated when the
 * extent grows (H5D_ALLOC_TIME_EARLY, fill never written), so a chunk's
 * address is fixed before its bytes are written and never changes; HDF5
 * itself never holds a data chunk in its cache (no H5Dread/H5Dwrite of the
 * data log on this path). The file stays a plain HDF5 file: any HDF5
 * reader sees the same bytes. */
static void
direct_setup(h5file_t *h)
{
    h->fd = -1;
    if (h->recovered)
        return; /* zeros past the cut: through the recovery driver */
    hid_t dcpl = H5Dget_create_plist(h->data);
    hsize_t ch = 0;
    int ok = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) == 0 &&
             H5Pget_chunk(dcpl, 1, &ch) == 1 && ch == H5_DATA_CHUNK;
    if (dcpl >= 0)
        H5Pclose(dcpl);
    hid_t fapl = ok ? H5Fget_access_plist(h->f) : H5I_INVALID_HID;
    hid_t drv = fapl >= 0 ? H5Pget_driver(fapl) : H5I_INVALID_HID;
    ok = ok && drv >= 0 && (drv == H5FD_SEC2 || drv == px_driver);
    if (fapl >= 0)
        H5Pclose(fapl);
    void *fdp = NULL;
    if (ok && H5Fget_vfd_handle(h->f, H5P_DEFAULT, &fdp) >= 0 && fdp)
        h->fd = *(int *)fdp;
    H5Eclear2(H5E_DEFAULT);
}

/* ------------------------------------------------------------ chunk
 * addresses. HDF5 1.10's H5Dget_chunk_info_by_coord walks the chunk index
 * from its first entry (H5EA_iterate) on every call: looking up each chunk
 * of a file once costs O(chunks^2) (a 256 MiB file: ~9 ms per reader and
 * per writer, a 4 GiB one seconds). H5Dread_chunk finds a chunk directly
 * (O(1)) and then reads the whole chunk through the file driver at its
 * address. The files are opened through "pxs-sec2", HDF5's own sec2 driver
 * with its read callback wrapped: while a probe is on (under h5mu), a raw
 * data read is not done but its address noted, so H5Dread_chunk yields the
 * address of a chunk without reading a byte. The first probe of each handle
 * is checked against H5Dget_chunk_info_by_coord; on any mismatch (another
 * HDF5 version reading differently) the handle falls back to the walk.
 * The driver changes nothing on disk (sec2 stores no driver info). */
static int px_tried;
static H5FD_class_t px_class;
static herr_t (*px_sec2_read)(H5FD_t *, H5FD_mem_t, hid_t, haddr_t, size_t, void *);
static int px_probe;        /* under h5mu */
static int px_probe_hits;   /* raw reads seen while probing */
static haddr_t px_probe_at; /* the last one's address and size */
static size_t px_probe_len;
static void *px_scratch; /* H5Dread_chunk's buffer while probing (never written by
                            the driver; 1 MiB, kept for the process) */

static herr_t
px_read(H5FD_t *f, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf)
{
    if (px_probe && type == H5FD_MEM_DRAW) {
        px_probe_hits++;
        px_probe_at = addr;
        px_probe_len = size;
        return 0;
    }
    return px_sec2_read(f, type, dxpl, addr, size, buf);
}

/* The probe driver's id (registered once), or < 0: use sec2. */
static hid_t
px_driver_get(void)
{
    if (px_tried)
        return px_driver;
    px_tried = 1;
    /* sec2's class (HDF5 1.10 has no public getter): the one a file
     * opened through it points to */
    const H5FD_class_t *c = NULL;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5FD_t *f = fapl >= 0 && H5Pset_fapl_sec2(fapl) >= 0
                    ? H5FDopen("/dev/null", H5F_ACC_RDONLY, fapl, (haddr_t)1 << 40)
                    : NULL;
    if (f && f->cls && f->cls->read)
        px_class = *f->cls, c = &px_class;
    if (f)
        H5FDclose(f);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (!c) {
        H5Eclear2(H5E_DEFAULT);
        return px_driver = H5I_INVALID_HID;
    }
    px_class.name = "pxs-sec2";
    px_class.terminate = NULL; /* sec2's resets sec2's own id */
    px_sec2_read = px_class.read;
    px_class.read = px_read;
    px_driver = H5FDregister(&px_class);
    H5Eclear2(H5E_DEFAULT);
    return px_driver;
}

/* The address of chunk `ci` by H5Dread_chunk through the probe driver;
 * -1: not found that way. */
static int
chunk_probe(h5file_t *h, uint64_t ci, haddr_t *out)
{
    if (!px_scratch && !(px_scratch = malloc(H5_DATA_CHUNK)))
        return -1;
    hsize_t coord = (hsize_t)(ci * H5_DATA_CHUNK);
    uint32_t filt = 0;
    px_probe = 1;
    px_probe_hits = 0;
    herr_t e = H5Dread_chunk(h->data, H5P_DEFAULT, &coord, &filt, px_scratch);
    px_probe = 0;
    if (e < 0 || px_probe_hits != 1 || px_probe_len != H5_DATA_CHUNK || filt != 0 ||
        px_probe_at == HADDR_UNDEF || px_probe_at == 0) {
        H5Eclear2(H5E_DEFAULT);
        return -1;
    }
    *out = px_probe_at;
    return 0;
}

/* The file address of data chunk `ci` (looked up once). -1 when HDF5 has
 * none (not allocated: beyond what this handle saw). */
static int
chunk_addr(h5file_t *h, uint64_t ci, haddr_t *out)
{
    if (ci < h->ncaddr && h->caddr[ci]) {
        *out = h->caddr[ci];
        return 0;
    }
    haddr_t a = HADDR_UNDEF;
    int got = px_driver >= 0 && h->probe >= 0 && chunk_probe(h, ci, &a) == 0;
    if (!got || h->probe == 0) {
        hsize_t coord = (hsize_t)(ci * H5_DATA_CHUNK), size = 0;
        unsigned mask = 0;
        haddr_t w = HADDR_UNDEF;
        if (H5Dget_chunk_info_by_coord(h->data, &coord, &mask, &w, &size) < 0 ||
            w == HADDR_UNDEF || w == 0 || size != H5_DATA_CHUNK) {
            h5_save();
            return -1;
        }
        if (h->probe == 0) /* the first look-up: does the probe find what the walk does? */
            h->probe = got && a == w ? 1 : -1;
        a = w;
    }
    if (ci >= h->ncaddr) {
        size_t n = h->ncaddr ? h->ncaddr : 64;
        while (n <= ci)
            n *= 2;
        haddr_t *x = realloc(h->caddr, n * sizeof *x);
        if (!x) {
            *out = a; /* not kept: looked up again next time */
            return 0;
        }
        memset(x + h->ncaddr, 0, (n - h->ncaddr) * sizeof *x);
        h->caddr = x;
        h->ncaddr = n;
    }
    h->caddr[ci] = a;
    *out = a;
    return 0;
}

/* Move n bytes of the data log at `at` from (wr = 0: into) or to (wr = 1:
 * from) buf, chunk by chunk. With crc: the running CRC32C of the bytes,
 * taken piece by piece while they are in the cache. -1: HDF5 has no address
 * for a chunk (h5_save kept its text), -2: the system call failed (errno),
 * -3: the file ends early. */
#define H5_PIECE H5_DATA_CHUNK /* one system call per chunk (see fapl_new) */
static int
direct_io(h5file_t *h, int wr, uint64_t at, uint64_t n, void *buf, uint32_t *crc)
{
    unsigned char *p = buf;
    while (n > 0) {
        uint64_t ci = at / H5_DATA_CHUNK, in = at % H5_DATA_CHUNK;
        uint64_t k = H5_DATA_CHUNK - in < n ? H5_DATA_CHUNK - in : n;
        if (k > H5_PIECE)
            k = H5_PIECE;
        haddr_t a;
        if (chunk_addr(h, ci, &a) < 0)
            return -1;
        if (wr && crc)
            *crc = pxs_crc32c(*crc, p, (size_t)k);
        uint64_t done = 0;
        while (done < k) {
            ssize_t r = wr ? pwrite(h->fd, p + done, (size_t)(k - done), (off_t)(a + in + done))
                           : pread(h->fd, p + done, (size_t)(k - done), (off_t)(a + in + done));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return -2;
            if (r == 0)
                return -3;
            done += (uint64_t)r;
        }
        if (!wr && crc)
            *crc = pxs_crc32c(*crc, p, (size_t)k);
        p += k;
        at += k;
        n -= k;
    }
    return 0;
}

/* ------------------------------------------------------------ recovery
 * driver: a read-only file driver (pread) for a file shorter than the end
 * of file HDF5 recorded in it (truncated after its writer closed it), which
 * HDF5's own drivers refuse as a whole ("truncated file"). It reports the
 * recorded end (read from the superblock at open: HDF5 compares before it
 * tells the driver) as the file's end, and reads past the real end give zeros:
 * every structure and chunk that lies before the cut reads as written, what
 * lay beyond reads as zeros, which fails HDF5's metadata checksums or the
 * record checks (state, payload CRC32C) and is reported PXS_ERR_CORRUPT.
 * docs/DESIGN.md, section "HDF5 connector", "Truncated files". */
typedef struct rv_file {
    H5FD_t pub; /* first: HDF5 fills it */
    int fd;
    haddr_t eoa, eof, sb_eof; /* sb_eof: the end the superblock records */
    dev_t dev;
    ino_t ino;
} rv_file_t;

static hid_t rv_driver = H5I_INVALID_HID; /* under h5mu */

/* The end of file a version 2/3 superblock at offset 0 records (the latest
 * format these files use): signature (8), version, sizes of offsets and
 * lengths, flags, then base, extension and end-of-file addresses (8 bytes
 * each, LE). 0 when it cannot be read. */
static uint64_t
sb_eof_of(int fd)
{
    unsigned char b[36];
    if (pread(fd, b, sizeof b, 0) != (ssize_t)sizeof b || memcmp(b, "\211HDF\r\n\032\n", 8) != 0 ||
        b[8] < 2 || b[9] != 8)
        return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[28 + i];
    return v;
}

static H5FD_t *
rv_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr)
{
    (void)fapl;
    (void)maxaddr;
    if (flags & (H5F_ACC_RDWR | H5F_ACC_CREAT | H5F_ACC_TRUNC | H5F_ACC_EXCL))
        return NULL;
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat sb;
    rv_file_t *f = fstat(fd, &sb) == 0 ? calloc(1, sizeof *f) : NULL;
    if (!f) {
        close(fd);
        return NULL;
    }
    f->fd = fd;
    f->eof = (haddr_t)sb.st_size;
    f->sb_eof = (haddr_t)sb_eof_of(fd);
    f->dev = sb.st_dev;
    f->ino = sb.st_ino;
    return &f->pub;
}

static herr_t
rv_close(H5FD_t *file)
{
    rv_file_t *f = (rv_file_t *)file;
    close(f->fd);
    free(f);
    return 0;
}

static int
rv_cmp(const H5FD_t *a, const H5FD_t *b)
{
    const rv_file_t *x = (const rv_file_t *)a, *y = (const rv_file_t *)b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static herr_t
rv_query(const H5FD_t *file, unsigned long *flags)
{
    (void)file;
    *flags = 0;
    return 0;
}

static haddr_t
rv_get_eoa(const H5FD_t *file, H5FD_mem_t type)
{
    (void)type;
    return ((const rv_file_t *)file)->eoa;
}

static herr_t
rv_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr)
{
    (void)type;
    ((rv_file_t *)file)->eoa = addr;
    return 0;
}

static haddr_t
rv_get_eof(const H5FD_t *file, H5FD_mem_t type)
{
    (void)type;
    const rv_file_t *f = (const rv_file_t *)file;
    haddr_t e = f->eof > f->eoa ? f->eof : f->eoa;
    return e > f->sb_eof ? e : f->sb_eof;
}

static herr_t
rv_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf)
{
    (void)type;
    (void)dxpl;
    rv_file_t *f = (rv_file_t *)file;
    if (addr == HADDR_UNDEF || addr + size < addr || addr + size > f->eoa)
        return -1;
    unsigned char *p = buf;
    while (size > 0 && addr < f->eof) {
        size_t n = (size_t)(f->eof - addr) < size ? (size_t)(f->eof - addr) : size;
        ssize_t k = pread(f->fd, p, n, (off_t)addr);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* shorter than fstat said: the rest reads as zeros */
        p += k;
        addr += (haddr_t)k;
        size -= (size_t)k;
    }
    memset(p, 0, size);
    return 0;
}

static herr_t
rv_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf)
{
    (void)file, (void)type, (void)dxpl, (void)addr, (void)size, (void)buf;
    return -1; /* read-only */
}

static herr_t
rv_get_handle(H5FD_t *file, hid_t fapl, void **handle)
{
    (void)fapl;
    *handle = &((rv_file_t *)file)->fd;
    return 0;
}

static const H5FD_class_t rv_class = {
    .name = "pxs-recover",
    .maxaddr = (haddr_t)INT64_MAX,
    .fc_degree = H5F_CLOSE_WEAK,
    .open = rv_open,
    .close = rv_close,
    .cmp = rv_cmp,
    .query = rv_query,
    .get_eoa = rv_get_eoa,
    .set_eoa = rv_set_eoa,
    .get_eof = rv_get_eof,
    .get_handle = rv_get_handle,
    .read = rv_read,
    .write = rv_write,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

/* A file access list with the recovery driver (registered once). */
static hid_t
fapl_recover(void)
{
    if (rv_driver < 0 && (rv_driver = H5FDregister(&rv_class)) < 0)
        return H5I_INVALID_HID;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return fapl;
    if (H5Pset_driver(fapl, rv_driver, NULL) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

static hid_t
fapl_new(int readonly)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return fapl;
    /* the writer puts data chunks (the only allocations of 1 MiB) on 1 MiB
     * boundaries of the file: the kernel keeps naturally aligned ranges in
     * large page-cache folios, and a pread of a chunk then costs what one of
     * a plain file does (docs/DESIGN.md, "Data log I/O") */
    hid_t drv = px_driver_get();
    if ((drv >= 0 ? H5Pset_driver(fapl, drv, NULL) : H5Pset_fapl_sec2(fapl)) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0 ||
        (readonly && H5Pset_file_locking(fapl, 0, 1) < 0) ||
        (!readonly && H5Pset_alignment(fapl, H5_DATA_CHUNK, H5_DATA_CHUNK) < 0)) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

static uint64_t
dims_of(hid_t d)
{
    hid_t sp = H5Dget_space(d);
    if (sp < 0)
        return 0;
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    H5Sclose(sp);
    return (uint64_t)n;
}

static int
attr_u64(hid_t f, const char *name, uint64_t *v)
{
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    herr_t e = H5Aread(a, H5T_NATIVE_UINT64, v);
    if (e < 0)
        h5_save();
    H5Aclose(a);
    return e < 0 ? -1 : 0;
}

static int
attr_put_u64(hid_t f, const char *name, uint64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp >= 0 ? H5Acreate2(f, name, H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    herr_t e = a >= 0 ? H5Awrite(a, H5T_NATIVE_UINT64, &v) : -1;
    if (e < 0)
        h5_save();
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
    return e < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ create */
static int
dir_check(const char *dir, int make)
{
    struct stat sb;
    if (make && mkdir(dir, 0777) != 0 && errno != EEXIST)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "store directory \"%s\": mkdir: %s", dir, strerror(errno));
    if (stat(dir, &sb) != 0)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "store directory \"%s\": %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return pxsi_err(PXS_ERR_IO, SUBSYS, "store directory \"%s\" is not a directory", dir);
    return PXS_OK;
}

/* This rank's file: created exclusively, both datasets and the attributes,
 * then SWMR write mode (no objects can be created after it). */
static int
own_file_create(h5st_t *s)
{
    char fn[PATH_MAX + 64];
    pxsi_h5_file_name(fn, sizeof fn, s->dir, s->nonce, s->rank);
    hid_t fapl = fapl_new(0);
    if (fapl < 0)
        return h5fail(PXS_ERR_IO, "file access list for \"%s\"", fn);
    s->w.f = H5Fcreate(fn, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    if (s->w.f < 0) {
        int rc = h5fail(PXS_ERR_IO, "cannot create \"%s\"", fn); /* before any other call */
        H5Pclose(fapl);
        return rc;
    }
    H5Pclose(fapl);
    int rc = PXS_OK;
    hsize_t zero = 0, unl = H5S_UNLIMITED;
    hid_t sp = H5Screate_simple(1, &zero, &unl);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t ch = H5_DATA_CHUNK;
    /* data chunks get their file space when the extent grows, nothing
     * written there (the put writes them directly: direct_io) */
    if (sp < 0 || dcpl < 0 || H5Pset_chunk(dcpl, 1, &ch) < 0 ||
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0 ||
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0)
        rc = h5fail(PXS_ERR_IO, "dataset properties for \"%s\"", fn);
    if (rc == PXS_OK) {
        s->w.data =
            H5Dcreate2(s->w.f, "data", H5T_NATIVE_UINT8, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        ch = H5_INDEX_CHUNK;
        if (s->w.data < 0 || H5Pset_chunk(dcpl, 1, &ch) < 0 ||
            H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_INCR) < 0 ||
            H5Pset_fill_time(dcpl, H5D_FILL_TIME_IFSET) < 0)
            rc = h5fail(PXS_ERR_IO, "cannot create the data log in \"%s\"", fn);
    }
    if (rc == PXS_OK) {
        pxsi_h5_rec_t fill;
        memset(&fill, 0, sizeof fill);
        H5Pset_fill_value(dcpl, s->rtype, &fill);
        s->w.index = H5Dcreate2(s->w.f, "index", s->rtype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (s->w.index < 0)
            rc = h5fail(PXS_ERR_IO, "cannot create the index in \"%s\"", fn);
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (rc == PXS_OK && (attr_put_u64(s->w.f, "nonce", s->nonce) ||
                         attr_put_u64(s->w.f, "rank", (uint64_t)s->rank) ||
                         attr_put_u64(s->w.f, "nranks", (uint64_t)s->nranks) ||
                         attr_put_u64(s->w.f, "format", H5_FORMAT)))
        rc = h5fail(PXS_ERR_IO, "cannot write the attributes of \"%s\"", fn);
    if (rc == PXS_OK && H5Fstart_swmr_write(s->w.f) < 0)
        rc = h5fail(PXS_ERR_IO, "cannot start SWMR write on \"%s\"", fn);
    if (rc == PXS_OK)
        direct_setup(&s->w);
    if (rc) {
        file_close(&s->w);
        unlink(fn);
    }
    return rc;
}

static int
manifest_write(const h5st_t *s)
{
    char fn[PATH_MAX + 64], tmp[PATH_MAX + 80];
    pxsi_h5_file_name(fn, sizeof fn, s->dir, s->nonce, -1);
    snprintf(tmp, sizeof tmp, "%s.tmp", fn);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "manifest \"%s\": %s", tmp, strerror(errno));
    int ok = fprintf(f, "proxystream-store %d\nconnector hdf5\nnonce %016" PRIx64 "\nranks %d\n",
                     H5_FORMAT, s->nonce, s->nranks) > 0;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    int err = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, fn) != 0) {
        err = errno ? errno : err;
        unlink(tmp);
        return pxsi_err(PXS_ERR_IO, SUBSYS, "manifest \"%s\": %s", fn, strerror(err));
    }
    return PXS_OK;
}

static h5st_t *
state_new(const char *dir, uint64_t nonce, int rank, int nranks)
{
    h5st_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->nonce = nonce;
    s->rank = rank;
    s->nranks = nranks;
    file_init(&s->w);
    s->peers = calloc((size_t)nranks, sizeof *s->peers);
    s->rtype = rec_type();
    if (!s->peers || s->rtype < 0) {
        if (s->rtype >= 0)
            H5Tclose(s->rtype);
        free(s->peers);
        free(s);
        return NULL;
    }
    for (int i = 0; i < nranks; i++)
        file_init(&s->peers[i]);
    return s;
}

static void
state_free(h5st_t *s)
{
    for (int i = 0; i < s->nranks; i++)
        file_close(&s->peers[i]);
    file_close(&s->w);
    H5Tclose(s->rtype);
    free(s->peers);
    free(s);
}

static int
h_create(MPI_Comm comm, const pxs_store_opts_t *o, uint64_t nonce, void **out)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int rc = PXS_OK;
    if (!o->path || !o->path[0])
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "the HDF5 connector needs opts.path (a directory)");
    else if (strlen(o->path) >= PATH_MAX - 64)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "opts.path is too long (%zu bytes)", strlen(o->path));
    else if (o->durable < 0)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "opts.durable must be >= 0 (got %d)", o->durable);
    if (rc == PXS_OK && rank == 0)
        rc = dir_check(o->path, 1);
    if ((rc = pxsi_agree_why(comm, rc)) != PXS_OK)
        return rc;
    rc = dir_check(o->path, 0); /* every rank must see the directory */
    h5guard_t g;
    h5_enter(&g);
    h5st_t *s = NULL;
    if (rc == PXS_OK) {
        s = state_new(o->path, nonce, rank, size);
        if (!s)
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "connector state");
    }
    if (s) {
        s->durable = o->durable;
        rc = own_file_create(s);
    }
    h5_leave(&g);
    rc = pxsi_agree_why(comm, rc);
    if (rc == PXS_OK && rank == 0)
        rc = manifest_write(s);
    if (rc == PXS_OK || s)
        rc = pxsi_agree_why(comm, rc);
    if (rc) {
        if (s) {
            h5_enter(&g);
            int had = s->w.f >= 0;
            state_free(s);
            h5_leave(&g);
            if (had) {
                char fn[PATH_MAX + 64];
                pxsi_h5_file_name(fn, sizeof fn, o->path, nonce, rank);
                unlink(fn);
            }
        }
        return rc;
    }
    *out = s;
    return PXS_OK;
}

/* ------------------------------------------------------------ open (a finished
 * store) */
static int
manifest_find(const char *path, char *out, size_t cap)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "store \"%s\": %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(out, cap, "%s", path);
        return PXS_OK;
    }
    DIR *d = opendir(path);
    if (!d)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "store directory \"%s\": %s", path, strerror(errno));
    int n = 0;
    char first[256] = "", second[256] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "pxs-", 4) == 0 && l > 9 &&
            strcmp(e->d_name + l - 9, ".manifest") == 0) {
            if (n == 0)
                snprintf(first, sizeof first, "%s", e->d_name);
            else if (n == 1)
                snprintf(second, sizeof second, "%s", e->d_name);
            n++;
        }
    }
    closedir(d);
    if (n == 0)
        return pxsi_err(PXS_ERR_NOT_FOUND, SUBSYS,
                        "no store in \"%s\" (no pxs-<nonce>.manifest: the store was never "
                        "created completely, or this is not a store directory)",
                        path);
    if (n > 1)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "%d stores in \"%s\" (%s, %s, ...): give the path of one manifest", n, path,
                        first, second);
    snprintf(out, cap, "%s/%s", path, first);
    return PXS_OK;
}

static int
is_manifest(const char *name)
{
    size_t l = strlen(name);
    return strncmp(name, "pxs-", 4) == 0 && l > 9 && strcmp(name + l - 9, ".manifest") == 0;
}

/* Append the manifests in directory dir to buf ("path\n" each). */
static int
manifests_in(const char *dir, char *buf, size_t cap, int *n, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return depth
                   ? PXS_OK
                   : pxsi_err(PXS_ERR_IO, SUBSYS, "store directory \"%s\": %s", dir, strerror(errno));
    int rc = PXS_OK;
    struct dirent *e;
    while (rc == PXS_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (is_manifest(e->d_name)) {
            size_t l = strlen(buf);
            if (l + strlen(p) + 2 > cap)
                rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "too many stores under \"%s\"", dir);
            else
                snprintf(buf + l, cap - l, "%s\n", p);
            (*n)++;
        } else if (depth == 0) {
            struct stat sb;
            if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
                rc = manifests_in(p, buf, cap, n, 1);
        }
    }
    closedir(d);
    return rc;
}

int
pxsi_h5_manifests(const char *path, char *buf, size_t cap, int *n)
{
    buf[0] = '\0';
    *n = 0;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "store \"%s\": %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        if (strlen(path) + 2 > cap)
            return pxsi_err(PXS_ERR_INVALID, SUBSYS, "path too long");
        snprintf(buf, cap, "%s\n", path);
        *n = 1;
        return PXS_OK;
    }
    int rc = manifests_in(path, buf, cap, n, 0);
    if (rc == PXS_OK && *n == 0)
        rc = pxsi_err(PXS_ERR_NOT_FOUND, SUBSYS,
                      "no store in \"%s\" or its subdirectories (no pxs-<nonce>.manifest: the "
                      "store was never created completely, or this is not a store directory)",
                      path);
    return rc;
}

int
pxsi_h5_manifest_read(const char *path, char *dir, size_t dircap, uint64_t *nonce, int *nranks)
{
    char mf[PATH_MAX + 300];
    int rc = manifest_find(path, mf, sizeof mf);
    if (rc)
        return rc;
    FILE *f = fopen(mf, "r");
    if (!f)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "manifest \"%s\": %s", mf, strerror(errno));
    int fmt = 0, nr = 0;
    unsigned long long nn = 0;
    char conn[32] = "";
    int k =
        fscanf(f, "proxystream-store %d connector %31s nonce %llx ranks %d", &fmt, conn, &nn, &nr);
    fclose(f);
    if (k != 4 || fmt != H5_FORMAT || strcmp(conn, "hdf5") != 0 || nn == 0 || nr <= 0)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "manifest \"%s\" is not a proxystream HDF5 store "
                        "manifest of format %d",
                        mf, H5_FORMAT);
    /* the directory the manifest is in */
    snprintf(dir, dircap, "%s", mf);
    char *sl = strrchr(dir, '/');
    if (sl)
        *sl = '\0';
    else
        snprintf(dir, dircap, ".");
    *nonce = nn;
    *nranks = nr;
    return PXS_OK;
}

int
pxsi_h5_open(MPI_Comm comm, const char *path, uint64_t *nonce_out, int *nranks_out,
             void **state_out)
{
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    struct {
        uint64_t nonce;
        int64_t nranks;
        char dir[PATH_MAX];
    } m;
    memset(&m, 0, sizeof m);
    int nr = 0;
    int rc = PXS_OK;
    if (rank == 0) {
        rc = pxsi_h5_manifest_read(path, m.dir, sizeof m.dir, &m.nonce, &nr);
        m.nranks = nr;
    }
    rc = pxsi_agree_why(comm, rc);
    if (rc)
        return rc;
    int mrc = MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, 0, comm);
    rc = pxsi_agree_why(comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Bcast (manifest)"));
    if (rc)
        return rc;
    h5guard_t g;
    h5_enter(&g);
    h5st_t *s = state_new(m.dir, m.nonce, -1, (int)m.nranks);
    h5_leave(&g);
    rc = s ? dir_check(m.dir, 0) : pxsi_err(PXS_ERR_NOMEM, SUBSYS, "connector state");
    rc = pxsi_agree_why(comm, rc);
    if (rc) {
        if (s) {
            h5_enter(&g);
            state_free(s);
            h5_leave(&g);
        }
        return rc;
    }
    *nonce_out = m.nonce;
    *nranks_out = (int)m.nranks;
    *state_out = s;
    return PXS_OK;
}

static int
h_destroy(void *st)
{
    h5st_t *s = st;
    h5guard_t g;
    h5_enter(&g);
    int rc = PXS_OK;
    if (s->w.f >= 0 && !s->broken) {
        if (H5Fflush(s->w.f, H5F_SCOPE_LOCAL) < 0)
            rc = h5fail(PXS_ERR_IO, "flush at close of rank %d's file in \"%s\"", s->rank, s->dir);
        void *fdp = NULL;
        if (rc == PXS_OK && H5Fget_vfd_handle(s->w.f, H5P_DEFAULT, &fdp) >= 0 && fdp &&
            fsync(*(int *)fdp) != 0)
            rc = pxsi_err(PXS_ERR_IO, SUBSYS, "fsync at close of rank %d's file in \"%s\": %s",
                          s->rank, s->dir, strerror(errno));
    }
    if (rc == PXS_OK && s->w.f >= 0 && !s->broken) {
        /* the file is final: readers need not refresh it (a marker beside
         * it, written after the fsync; docs/DESIGN.md, "HDF5 connector") */
        char fn[PATH_MAX + 80];
        pxsi_h5_file_name(fn, sizeof fn, s->dir, s->nonce, s->rank);
        strncat(fn, ".closed", sizeof fn - strlen(fn) - 1);
        int fd = open(fn, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd >= 0)
            close(fd);
    }
    state_free(s);
    h5_leave(&g);
    return rc;
}

/* ------------------------------------------------------------ check */
static int
h_check(void *st, const pxs_proxy_info_t *pi)
{
    h5st_t *s = st;
    if (pi->store_nonce != s->nonce)
        return pxsi_err(PXS_ERR_STALE, SUBSYS,
                        "proxy of store instance 0x%016" PRIx64
                        " given to store instance 0x%016" PRIx64,
                        pi->store_nonce, s->nonce);
    if (pi->owner >= (uint32_t)s->nranks)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "proxy owner %u out of range (%d files)", pi->owner,
                        s->nranks);
    if (pi->size > UINT64_MAX - pi->offset)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "proxy offset + size overflow");
    return PXS_OK;
}

/* ------------------------------------------------------------ put */
static int
do_sync(h5st_t *s, int force)
{
    if (H5Fflush(s->w.f, H5F_SCOPE_LOCAL) < 0)
        return h5fail(PXS_ERR_IO, "flush of rank %d's file in \"%s\"", s->rank, s->dir);
    s->unsynced++;
    if (!force && (s->durable == 0 || s->unsynced < (uint64_t)s->durable))
        return PXS_OK;
    void *fdp = NULL;
    if (H5Fget_vfd_handle(s->w.f, H5P_DEFAULT, &fdp) < 0 || !fdp)
        return h5fail(PXS_ERR_IO, "file handle of rank %d's file in \"%s\"", s->rank, s->dir);
    if (fsync(*(int *)fdp) != 0)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "fsync of rank %d's file in \"%s\": %s", s->rank, s->dir,
                        strerror(errno));
    s->unsynced = 0;
    return PXS_OK;
}

static int
write_at(hid_t d, hid_t mtype, uint64_t at, uint64_t n, const void *buf)
{
    hid_t fs = H5Dget_space(d);
    if (fs < 0)
        return -1;
    hsize_t start = at, count = n;
    hid_t ms = H5Screate_simple(1, &count, NULL);
    herr_t e = ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
    if (e >= 0)
        e = H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf);
    if (e < 0)
        h5_save();
    if (ms >= 0)
        H5Sclose(ms);
    H5Sclose(fs);
    return e < 0 ? -1 : 0;
}

static int
read_at(hid_t d, hid_t mtype, uint64_t at, uint64_t n, void *buf)
{
    hid_t fs = H5Dget_space(d);
    if (fs < 0)
        return -1;
    hsize_t start = at, count = n;
    hid_t ms = H5Screate_simple(1, &count, NULL);
    herr_t e = ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
    if (e >= 0)
        e = H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf);
    if (e < 0)
        h5_save();
    if (ms >= 0)
        H5Sclose(ms);
    H5Sclose(fs);
    return e < 0 ? -1 : 0;
}

/* Room for a put before anything is written: HDF5 cannot take back a
 * failed write (its file handle then keeps failing, and closing it may
 * crash the library at exit), so a put that could run the file past the
 * file size limit (RLIMIT_FSIZE) or the file system's free space is
 * refused with nothing written and the store stays usable. The bound: the
 * bytes, one more data chunk (allocation is per chunk), and H5_SLACK for
 * the index chunk and metadata. */
static int
room_check(h5st_t *s, size_t len)
{
    hsize_t cur = 0;
    if (H5Fget_filesize(s->w.f, &cur) < 0)
        cur = 0;
    uint64_t need = (uint64_t)len + H5_DATA_CHUNK + H5_SLACK;
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (uint64_t)cur + need > (uint64_t)rl.rlim_cur)
        return pxsi_err(PXS_ERR_IO, SUBSYS,
                        "put of %zu bytes: rank %d's file in \"%s\" (%llu bytes) could "
                        "pass the "
                        "file size limit (RLIMIT_FSIZE %llu bytes); nothing was written",
                        len, s->rank, s->dir, (unsigned long long)cur,
                        (unsigned long long)rl.rlim_cur);
    struct statvfs v;
    if (statvfs(s->dir, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize < need)
        return pxsi_err(PXS_ERR_IO, SUBSYS,
                        "put of %zu bytes: disk full: %llu bytes free on the "
                        "file system of "
                        "\"%s\", the put needs up to %llu; nothing was written",
                        len, (unsigned long long)v.f_bavail * v.f_frsize, s->dir,
                        (unsigned long long)need);
    return PXS_OK;
}

/* Can this rank put at all? (put, and reserve through h_put_check) */
static int
h_put_check_locked(const h5st_t *s)
{
    if (s->rank < 0)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "put: store \"%s\" was opened read-only (pxs_store_open)", s->dir);
    if (s->broken)
        return pxsi_err(PXS_ERR_IO, SUBSYS,
                        "put: rank %d's file in \"%s\" failed a write before; no more puts "
                        "(records already complete stay readable)",
                        s->rank, s->dir);
    return PXS_OK;
}

static int
h_put_check(void *st, size_t len)
{
    (void)len; /* bounded by the file system: room_check at the put */
    h5guard_t g;
    h5_enter(&g);
    int rc = h_put_check_locked(st);
    h5_leave(&g);
    return rc;
}

static int
h_put_locked(h5st_t *s, const void *data, size_t len, const pxs_put_opts_t *o,
             pxs_proxy_info_t *out)
{
    int rc = h_put_check_locked(s);
    if (rc == PXS_OK)
        rc = room_check(s, len);
    if (rc)
        return rc;
    pxsi_h5_rec_t r;
    memset(&r, 0, sizeof r);
    r.offset = s->w.data_len;
    r.size = len;
    r.generation = s->w.nrec;
    r.seq = o->seq;
    r.topic = o->topic;
    r.crc = 0;
    r.flags = PXS_PROXY_F_PAYLOAD_CRC | PXS_PROXY_F_KEEP;
    r.state = PXSI_H5_LIVE;
    if (len) {
        hsize_t ext = (hsize_t)(r.offset + len);
        int e = H5Dset_extent(s->w.data, &ext) < 0 ? -1 : 0;
        if (e == 0 && s->w.fd >= 0) {
            e = direct_io(&s->w, 1, r.offset, len, (void *)(uintptr_t)data, &r.crc);
        } else if (e == 0) {
            r.crc = pxs_crc32c(0, data, len);
            e = write_at(s->w.data, H5T_NATIVE_UINT8, r.offset, len, data);
        }
        if (e == -2 || e == -3) {
            s->broken = 1;
            return pxsi_err(PXS_ERR_IO, SUBSYS,
                            "put: cannot append %zu bytes to rank %d's data log in \"%s\": %s",
                            len, s->rank, s->dir, e == -2 ? strerror(errno) : "short write");
        }
        if (e < 0) {
            s->broken = 1;
            return h5fail(PXS_ERR_IO,
                          "put: cannot append %zu bytes to rank %d's data log in \"%s\"", len,
                          s->rank, s->dir);
        }
    }
    hsize_t next = (hsize_t)(s->w.nrec + 1);
    if (H5Dset_extent(s->w.index, &next) < 0 ||
        write_at(s->w.index, s->rtype, s->w.nrec, 1, &r) < 0) {
        s->broken = 1;
        return h5fail(PXS_ERR_IO,
                      "put: cannot append record %" PRIu64 " to rank %d's index in \"%s\"",
                      s->w.nrec, s->rank, s->dir);
    }
    rc = do_sync(s, 0);
    if (rc) {
        s->broken = 1;
        return rc;
    }
    s->w.data_len += len;
    s->w.nrec++;
    out->offset = r.offset;
    out->size = len;
    out->generation = r.generation;
    out->flags = r.flags;
    out->payload_crc = r.crc;
    out->budget = 0;
    return PXS_OK;
}

static int
h_put(void *st, const void *data, size_t len, const pxs_put_opts_t *o, double timeout,
      pxs_proxy_info_t *out)
{
    (void)timeout;
    h5guard_t g;
    h5_enter(&g);
    int rc = h_put_locked(st, data, len, o, out);
    h5_leave(&g);
    return rc;
}

/* ------------------------------------------------------------ resolve */
static int
peer_open(h5st_t *s, int owner, h5file_t **out)
{
    if (owner == s->rank) {
        *out = &s->w;
        return PXS_OK;
    }
    h5file_t *h = &s->peers[owner];
    if (h->f >= 0) {
        *out = h;
        return PXS_OK;
    }
    char fn[PATH_MAX + 64];
    pxsi_h5_file_name(fn, sizeof fn, s->dir, s->nonce, owner);
    if (access(fn, F_OK) != 0)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "rank %d's file \"%s\": %s", owner, fn, strerror(errno));
    hid_t fapl = fapl_new(1);
    if (fapl < 0)
        return h5fail(PXS_ERR_IO, "file access list for \"%s\"", fn);
    h->f = H5Fopen(fn, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
    if (h->f < 0) {
        /* HDF5's text first: any other HDF5 call clears its error stack */
        char why[700];
        h5_text(why, sizeof why);
        H5Pclose(fapl);
        if (!strstr(why, "truncated file"))
            return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "cannot open rank %d's file \"%s\" (HDF5: %s)",
                            owner, fn, why);
        /* shorter than HDF5 recorded: open what is left (recovery driver) */
        hid_t rfapl = fapl_recover();
        h->f = rfapl >= 0 ? H5Fopen(fn, H5F_ACC_RDONLY, rfapl) : H5I_INVALID_HID;
        if (rfapl >= 0)
            H5Pclose(rfapl);
        if (h->f < 0) {
            char rwhy[700];
            h5_text(rwhy, sizeof rwhy);
            return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                            "cannot open rank %d's file \"%s\" (HDF5: %s); recovery of a "
                            "truncated file failed too (HDF5: %s)",
                            owner, fn, why, rwhy);
        }
        void *fdp = NULL;
        struct stat sb;
        if (H5Fget_vfd_handle(h->f, H5P_DEFAULT, &fdp) >= 0 && fdp &&
            fstat(*(int *)fdp, &sb) == 0) {
            h->eof = (uint64_t)sb.st_size;
            h->eoa = sb_eof_of(*(int *)fdp);
        }
        h->recovered = 1;
        PXSI_WARN(SUBSYS,
                  "rank %d's file \"%s\" is truncated (%" PRIu64 " of %" PRIu64
                  " bytes): opened for recovery, records beyond the cut are CORRUPT",
                  owner, fn, h->eof, h->eoa);
    } else {
        H5Pclose(fapl);
    }
    uint64_t nn = 0, rk = UINT64_MAX;
    h->data = H5Dopen2(h->f, "data", H5P_DEFAULT);
    h->index = H5Dopen2(h->f, "index", H5P_DEFAULT);
    if (h->data < 0 || h->index < 0 || attr_u64(h->f, "nonce", &nn) ||
        attr_u64(h->f, "rank", &rk)) {
        int rc = h5fail(PXS_ERR_CORRUPT, "\"%s\" is not a proxystream HDF5 store file", fn);
        file_close(h);
        return rc;
    }
    if (nn != s->nonce || rk != (uint64_t)owner) {
        file_close(h);
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "\"%s\" belongs to store 0x%016" PRIx64 " rank %" PRIu64
                        ", not store 0x%016" PRIx64 " rank %d",
                        fn, nn, rk, s->nonce, owner);
    }
    h->nrec = dims_of(h->index);
    h->data_len = dims_of(h->data);
    direct_setup(h);
    char mk[PATH_MAX + 80];
    snprintf(mk, sizeof mk, "%s.closed", fn);
    h->final = h->recovered || access(mk, F_OK) == 0;
    *out = h;
    return PXS_OK;
}

/* Record `gen` of file h (gen < h->nrec). A final file's records come from
 * the block kept (read H5_INDEX_BLOCK records at a time); a live one's are
 * read each time (the writer may evict). */
static int
index_get(h5st_t *s, h5file_t *h, uint64_t gen, pxsi_h5_rec_t *r)
{
    if (!h->final || h->recovered || h == &s->w)
        return read_at(h->index, s->rtype, gen, 1, r);
    if (!h->iblk && !(h->iblk = malloc(H5_INDEX_BLOCK * sizeof *h->iblk)))
        return read_at(h->index, s->rtype, gen, 1, r);
    if (gen < h->iblk_at || gen >= h->iblk_at + h->iblk_n) {
        uint64_t at = gen / H5_INDEX_BLOCK * H5_INDEX_BLOCK;
        uint64_t n = h->nrec - at < H5_INDEX_BLOCK ? h->nrec - at : H5_INDEX_BLOCK;
        h->iblk_n = 0;
        if (read_at(h->index, s->rtype, at, n, h->iblk) < 0)
            return -1;
        h->iblk_at = at;
        h->iblk_n = n;
    }
    *r = h->iblk[gen - h->iblk_at];
    return 0;
}

/* The record a proxy names, checked against the proxy. */
static int
record_get(h5st_t *s, const pxs_proxy_info_t *pi, h5file_t **hout, pxsi_h5_rec_t *r)
{
    h5file_t *h = NULL;
    int rc = peer_open(s, (int)pi->owner, &h);
    if (rc)
        return rc;
    int own = h == &s->w;
    if (!own && !h->final) {
        /* The writer may be live: its index (new records, an evict) is
         * re-read on every resolve; the data log only when the record lies
         * beyond what we saw (its bytes never change once written). */
        if (H5Drefresh(h->index) < 0)
            return h5fail(PXS_ERR_IO, "refresh of rank %u's file in \"%s\"", pi->owner, s->dir);
        h->nrec = dims_of(h->index);
        if (pi->offset + pi->size > h->data_len) {
            if (H5Drefresh(h->data) < 0)
                return h5fail(PXS_ERR_IO, "refresh of rank %u's file in \"%s\"", pi->owner, s->dir);
            h->data_len = dims_of(h->data);
        }
    }
    if (h->recovered) {
        /* a truncated file: its index record may lie beyond the cut (the
         * index chunk is written in place, often after data chunks). The
         * proxy carries offset, size, generation and the payload CRC32C:
         * what the index cannot confirm, the CRC check of the bytes does */
        int have = pi->generation < h->nrec &&
                   read_at(h->index, s->rtype, pi->generation, 1, r) == 0 &&
                   r->state != PXSI_H5_UNWRITTEN;
        H5Eclear2(H5E_DEFAULT);
        if (!have) {
            memset(r, 0, sizeof *r);
            r->offset = pi->offset;
            r->size = pi->size;
            r->generation = pi->generation;
            r->crc = pi->payload_crc;
            r->flags = pi->flags;
            r->state = PXSI_H5_LIVE;
        }
    } else if (pi->generation >= h->nrec) {
        return pxsi_err(PXS_ERR_STALE, SUBSYS,
                        "record %" PRIu64 " is not in rank %u's file in \"%s\" (%" PRIu64
                        " records: the file was truncated or the record never completed)",
                        pi->generation, pi->owner, s->dir, h->nrec);
    } else if (index_get(s, h, pi->generation, r) < 0) {
        return h5fail(own ? PXS_ERR_IO : PXS_ERR_CORRUPT,
                      "cannot read record %" PRIu64 " of rank %u's file in \"%s\"", pi->generation,
                      pi->owner, s->dir);
    }
    if (r->state == PXSI_H5_DEAD)
        return pxsi_err(PXS_ERR_STALE, SUBSYS, "record %" PRIu64 " of rank %u was evicted",
                        pi->generation, pi->owner);
    if (r->state != PXSI_H5_LIVE)
        return pxsi_err(PXS_ERR_STALE, SUBSYS,
                        "record %" PRIu64 " of rank %u never completed (state %u)", pi->generation,
                        pi->owner, r->state);
    if (r->generation != pi->generation || r->offset != pi->offset || r->size != pi->size ||
        r->crc != pi->payload_crc)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "proxy does not match record %" PRIu64 " of rank %u (file: offset %" PRIu64
                        " size %" PRIu64 " crc %08x; proxy: offset %" PRIu64 " size %" PRIu64
                        " crc %08x)",
                        pi->generation, pi->owner, r->offset, r->size, r->crc, pi->offset, pi->size,
                        pi->payload_crc);
    if (r->offset + r->size > h->data_len)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "record %" PRIu64 " of rank %u lies beyond the data log (%" PRIu64
                        " bytes): truncated file",
                        pi->generation, pi->owner, h->data_len);
    *hout = h;
    return PXS_OK;
}

static int resolve_locked_(h5st_t *s, const pxs_proxy_info_t *pi, void *buf, size_t *len_out);

/* A record of a truncated file that does not read back whole is CORRUPT,
 * and the detail names the file and the cut. */
static int
resolve_locked(h5st_t *s, const pxs_proxy_info_t *pi, void *buf, size_t *len_out)
{
    int rc = resolve_locked_(s, pi, buf, len_out);
    h5file_t *h =
        pi->owner < (uint32_t)s->nranks && (int)pi->owner != s->rank ? &s->peers[pi->owner] : NULL;
    if (rc == PXS_ERR_CORRUPT && h && h->recovered) {
        char fn[PATH_MAX + 64];
        pxsi_h5_file_name(fn, sizeof fn, s->dir, s->nonce, (int)pi->owner);
        return pxsi_err_prefix(rc, SUBSYS,
                               "\"%s\" is truncated (%" PRIu64 " of %" PRIu64
                               " bytes) and record %" PRIu64 " is damaged",
                               fn, h->eof, h->eoa, pi->generation);
    }
    return rc;
}

static int
resolve_locked_(h5st_t *s, const pxs_proxy_info_t *pi, void *buf, size_t *len_out)
{
    h5file_t *h = NULL;
    pxsi_h5_rec_t r;
    int rc = record_get(s, pi, &h, &r);
    if (rc)
        return rc;
    uint32_t crc = 0;
    if (r.size && h->fd >= 0) {
        /* pread piece by piece, each piece's CRC32C taken while cached */
        int e = direct_io(h, 0, r.offset, r.size, buf, &crc);
        if (e == -2)
            return pxsi_err(PXS_ERR_IO, SUBSYS,
                            "cannot read record %" PRIu64 " of rank %u's file in \"%s\": %s",
                            pi->generation, pi->owner, s->dir, strerror(errno));
        if (e == -3)
            return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                            "record %" PRIu64 " of rank %u's file in \"%s\" lies beyond the "
                            "end of the file: truncated file",
                            pi->generation, pi->owner, s->dir);
        if (e < 0)
            return h5fail(h == &s->w ? PXS_ERR_IO : PXS_ERR_CORRUPT,
                          "cannot locate record %" PRIu64 " of rank %u's file in \"%s\"",
                          pi->generation, pi->owner, s->dir);
    } else {
        if (r.size && read_at(h->data, H5T_NATIVE_UINT8, r.offset, r.size, buf) < 0)
            return h5fail(h == &s->w ? PXS_ERR_IO : PXS_ERR_CORRUPT,
                          "cannot read record %" PRIu64 " of rank %u's file in \"%s\"",
                          pi->generation, pi->owner, s->dir);
        crc = pxs_crc32c(0, buf, (size_t)r.size);
    }
    if (crc != r.crc)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "record %" PRIu64 " of rank %u in \"%s\": payload checksum mismatch "
                        "(stored %08x, read %08x): the file is damaged",
                        pi->generation, pi->owner, s->dir, r.crc, crc);
    if (h == &s->w)
        s->stats.resolves_self++;
    else
        s->stats.resolves_rma++;
    *len_out = (size_t)r.size;
    return PXS_OK;
}

static int
h_resolve(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap, size_t *len_out)
{
    (void)cap; /* the front end checked pi->size <= cap */
    h5guard_t g;
    h5_enter(&g);
    int rc = resolve_locked(st, pi, buf, len_out);
    h5_leave(&g);
    return rc;
}

/* Async resolves complete at once (file reads are synchronous here). */
static int
h_resolve_start(void *st, const pxs_proxy_info_t *pi, void *buf, size_t cap, pxs_request_t *req)
{
    size_t n = 0;
    req->status = h_resolve(st, pi, buf, cap, &n);
    req->len = n;
    req->done = 1;
    return PXS_OK;
}

static int
h_resolve_test(void *st, pxs_request_t *req)
{
    (void)st;
    (void)req;
    return PXS_OK;
}

static int
h_resolve_wait(void *st, pxs_request_t *req)
{
    (void)st;
    (void)req;
    return PXS_OK;
}

/* A view is a private copy (there is nothing to map): released by release. */
static int
h_view(void *st, const pxs_proxy_info_t *pi, pxs_view_t *v)
{
    if (pi->size > SIZE_MAX - 1)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "view: size out of range");
    void *b = pxsi_alloc_pages((size_t)pi->size);
    if (!b)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "view: %" PRIu64 " bytes", pi->size);
    size_t n = 0;
    int rc = h_resolve(st, pi, b, (size_t)pi->size, &n);
    if (rc) {
        free(b);
        return rc;
    }
    ((h5st_t *)st)->stats.views_copied++;
    v->data = b;
    v->len = n;
    v->internal_[0] = b;
    return PXS_OK;
}

static int
h_release(void *st, pxs_view_t *v)
{
    (void)st;
    free(v->internal_[0]);
    v->internal_[0] = NULL;
    return PXS_OK;
}

/* ------------------------------------------------------------ evict, drop */
static int
h_evict(void *st, const pxs_proxy_info_t *pi)
{
    h5st_t *s = st;
    h5guard_t g;
    h5_enter(&g);
    h5file_t *h = NULL;
    pxsi_h5_rec_t r;
    int rc = record_get(s, pi, &h, &r);
    if (rc == PXS_OK && h == &s->w) {
        /* the owner: the record dies (its bytes stay until the file goes) */
        r.state = PXSI_H5_DEAD;
        if (s->broken)
            rc = pxsi_err(PXS_ERR_IO, SUBSYS, "evict: rank %d's file failed a write before", s->rank);
        else if (write_at(s->w.index, s->rtype, pi->generation, 1, &r) < 0)
            rc = h5fail(PXS_ERR_IO, "evict: cannot mark record %" PRIu64 " dead in \"%s\"",
                        pi->generation, s->dir);
        else
            rc = do_sync(s, 0);
        if (rc == PXS_OK)
            s->stats.reclaimed++;
    }
    h5_leave(&g);
    return rc;
}

/* Keep objects: a drop only validates (the record exists and matches). */
static int
h_drop(void *st, const pxs_proxy_info_t *pi)
{
    h5st_t *s = st;
    h5guard_t g;
    h5_enter(&g);
    h5file_t *h = NULL;
    pxsi_h5_rec_t r;
    int rc = record_get(s, pi, &h, &r);
    h5_leave(&g);
    return rc;
}

static int
h_progress(void *st)
{
    (void)st;
    return PXS_OK;
}

static int
h_used(void *st, size_t *used_out, size_t *cap_out)
{
    h5st_t *s = st;
    *used_out = (size_t)s->w.data_len;
    *cap_out = SIZE_MAX; /* bounded by the file system */
    return PXS_OK;
}

static int
h_path(void *st, int owner)
{
    h5st_t *s = st;
    return owner == s->rank ? PXSI_PATH_SELF : PXSI_PATH_RMA;
}

static void
h_stats(void *st, pxsi_store_stats_t *out)
{
    *out = ((h5st_t *)st)->stats;
}

#ifdef PXS_TEST_HOOKS
/* Flip the byte at `offset` of this rank's data log (through HDF5). */
static int
h_corrupt(void *st, uint64_t offset)
{
    h5st_t *s = st;
    if (s->rank < 0 || offset >= s->w.data_len)
        return PXS_ERR_INVALID;
    h5guard_t g;
    h5_enter(&g);
    unsigned char b = 0;
    int rc;
    if (s->w.fd >= 0) { /* the way puts write (HDF5 never caches a data chunk) */
        rc = direct_io(&s->w, 0, offset, 1, &b, NULL) < 0 ? PXS_ERR_IO : PXS_OK;
        b ^= 0xffu;
        if (rc == PXS_OK && direct_io(&s->w, 1, offset, 1, &b, NULL) < 0)
            rc = PXS_ERR_IO;
    } else {
        rc = read_at(s->w.data, H5T_NATIVE_UINT8, offset, 1, &b) < 0 ? PXS_ERR_IO : PXS_OK;
        b ^= 0xffu;
        if (rc == PXS_OK && write_at(s->w.data, H5T_NATIVE_UINT8, offset, 1, &b) < 0)
            rc = PXS_ERR_IO;
    }
    if (rc == PXS_OK)
        rc = do_sync(s, 0);
    h5_leave(&g);
    return rc;
}

static int
h_set_gen(void *st, uint32_t slot, uint64_t gen)
{
    (void)st;
    (void)slot;
    (void)gen;
    return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "set_gen: HDF5 records have no slots");
}

static int
h_add_claims(void *st, uint32_t slot, int64_t n)
{
    (void)st;
    (void)slot;
    (void)n;
    return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "add_claims: HDF5 records are not claimed");
}
#endif

/* ------------------------------------------------------------ for tools */
int
pxsi_h5_index_read(const char *fn, pxsi_h5_rec_t **out, size_t *n, uint64_t *eof, uint64_t *eoa,
                   size_t *lost)
{
    *out = NULL;
    *n = 0;
    *eof = *eoa = 0;
    *lost = 0;
    h5guard_t g;
    h5_enter(&g);
    int rc = PXS_OK;
    hid_t t = rec_type(), f = H5I_INVALID_HID, d = H5I_INVALID_HID;
    hid_t fapl = fapl_new(1);
    if (t < 0 || fapl < 0)
        rc = h5fail(PXS_ERR_IO, "file access list for \"%s\"", fn);
    if (rc == PXS_OK && access(fn, F_OK) != 0)
        rc = pxsi_err(PXS_ERR_IO, SUBSYS, "\"%s\": %s", fn, strerror(errno));
    if (rc == PXS_OK) {
        f = H5Fopen(fn, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
        if (f < 0) {
            char why[700];
            h5_text(why, sizeof why);
            hid_t rfapl = strstr(why, "truncated file") ? fapl_recover() : H5I_INVALID_HID;
            f = rfapl >= 0 ? H5Fopen(fn, H5F_ACC_RDONLY, rfapl) : H5I_INVALID_HID;
            if (rfapl >= 0)
                H5Pclose(rfapl);
            if (f < 0) {
                rc = pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "cannot open \"%s\" (HDF5: %s)", fn, why);
            } else {
                void *fdp = NULL;
                struct stat sb;
                if (H5Fget_vfd_handle(f, H5P_DEFAULT, &fdp) >= 0 && fdp &&
                    fstat(*(int *)fdp, &sb) == 0) {
                    *eof = (uint64_t)sb.st_size;
                    *eoa = sb_eof_of(*(int *)fdp);
                }
                if (*eoa <= *eof) /* recovered, so shorter than recorded */
                    *eoa = *eof + 1;
            }
        }
    }
    if (rc == PXS_OK && (d = H5Dopen2(f, "index", H5P_DEFAULT)) < 0)
        rc = h5fail(PXS_ERR_CORRUPT, "\"%s\" has no readable index", fn);
    uint64_t nrec = rc == PXS_OK ? dims_of(d) : 0;
    pxsi_h5_rec_t *r = NULL;
    if (rc == PXS_OK && nrec > (uint64_t)(SIZE_MAX / 2 / sizeof *r))
        rc = pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "\"%s\": index of %" PRIu64 " records", fn, nrec);
    if (rc == PXS_OK && !(r = calloc(nrec ? (size_t)nrec : 1, sizeof *r)))
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "index of \"%s\" (%" PRIu64 " records)", fn, nrec);
    if (rc == PXS_OK && nrec && read_at(d, t, 0, nrec, r) < 0) {
        /* a truncated file: read what it still holds, block by block (an
         * index chunk whose structures lie beyond the cut fails) */
        for (uint64_t at = 0; at < nrec; at += H5_INDEX_CHUNK) {
            uint64_t k = nrec - at < H5_INDEX_CHUNK ? nrec - at : H5_INDEX_CHUNK;
            if (read_at(d, t, at, k, r + at) < 0) {
                memset(r + at, 0, (size_t)k * sizeof *r);
                *lost += (size_t)k;
            }
            H5Eclear2(H5E_DEFAULT);
        }
        h5saved[0] = '\0';
    }
    if (rc == PXS_OK) {
        *out = r;
        *n = (size_t)nrec;
    } else {
        free(r);
    }
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (t >= 0)
        H5Tclose(t);
    h5_leave(&g);
    return rc;
}

/* ------------------------------------------------------------ for other HDF5
 * users */
/* The stream log (src/stream/slog.c) shares the process lock and the error
 * capture. */
void
pxsi_h5_enter(void **g)
{
    h5guard_t *x = malloc(sizeof *x);
    h5guard_t tmp;
    h5_enter(x ? x : &tmp);
    if (!x) { /* cannot keep the old handler: leave printing off */
        *g = NULL;
        return;
    }
    *g = x;
}

void
pxsi_h5_leave(void *g)
{
    if (g) {
        h5_leave(g);
        free(g);
    } else {
        H5Eclear2(H5E_DEFAULT);
        pthread_mutex_unlock(&h5mu);
    }
}

int
pxsi_h5_fail(int code, const char *what)
{
    return h5fail(code, "%s", what);
}

const pxsi_store_conn_ops_t pxsi_store_hdf5_ops = {
    .name = "hdf5",
    .kind = PXS_CONN_HDF5,
    PXSI_STORE_CONN_OPS(h),
    .put_check = h_put_check,
};

#else
/* Built without HDF5: PXS_CONN_HDF5 and pxs_store_open give PXS_ERR_NOTSUP
 * (store.c); this unit only keeps ISO C happy. */
typedef int pxsi_hdf5_not_built_t;
#endif /* PXS_HAVE_HDF5 */
