/* pxs-inspect: look into proxies, HDF5 stores and stream logs.
 *
 *   pxs-inspect [--json] proxy TEXT       decode a text proxy (exit 1: invalid)
 *   pxs-inspect [--json] ls DIR           the store (manifest, per-rank files:
 *                                         records, live, dead, bytes) and the
 *                                         stream logs (per producer and topic:
 *                                         events, first/last seq, END)
 *   pxs-inspect [--json] dump DIR --topic T   the logged events of topic T
 *   pxs-inspect [--json] verify DIR       resolve every live record of the
 *                                         store (bounds, CRC32C) and read every
 *                                         log record; exit 2 on any corruption
 *
 * See docs/DESIGN.md, section "HDF5 connector". */
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <proxystream.h>

#ifdef PXS_HAVE_HDF5
#include <hdf5.h>

#include "store/connectors/hdf5_int.h"
#endif

static int json;

static void
usage(void)
{
    fprintf(stderr, "usage: pxs-inspect [--json] proxy TEXT | ls DIR | dump "
                    "DIR --topic T | "
                    "verify DIR\n");
}

static const char *
kind_name(int k)
{
    switch (k) {
    case PXS_CONN_LOCAL:
        return "local";
    case PXS_CONN_RMA:
        return "rma";
    case PXS_CONN_UCX:
        return "ucx";
    case PXS_CONN_HDF5:
        return "hdf5";
    case PXS_CONN_INLINE:
        return "inline";
    default:
        return "none";
    }
}

static int
cmd_proxy(const char *text)
{
    pxs_proxy_t p;
    int rc = pxs_proxy_from_text(text, &p);
    pxs_proxy_info_t pi;
    if (rc == PXS_OK)
        rc = pxs_proxy_decode(p.bytes, PXS_PROXY_SIZE, &pi);
    if (rc != PXS_OK) {
        if (json)
            printf("{\"valid\": false, \"error\": \"%s\"}\n", pxs_errname(rc));
        else
            printf("invalid proxy: %s: %s\n", pxs_errname(rc), pxs_last_error_detail());
        return 1;
    }
    if (json)
        printf("{\"valid\": true, \"version\": %u, \"kind\": \"%s\", "
               "\"owner\": %u, "
               "\"store_nonce\": \"%016" PRIx64 "\", \"offset\": %" PRIu64 ", \"size\": %" PRIu64
               ", \"generation\": %" PRIu64 ", \"seq\": %" PRIu64 ", \"topic\": %u, "
               "\"flags\": %u, \"payload_crc\": \"%08x\", \"budget\": %u}\n",
               pi.version, kind_name(pi.kind), pi.owner, pi.store_nonce, pi.offset, pi.size,
               pi.generation, pi.seq, pi.topic, pi.flags, pi.payload_crc, pi.budget);
    else
        printf("version %u\nkind %s\nowner %u\nstore nonce %016" PRIx64 "\noffset %" PRIu64
               "\nsize %" PRIu64 "\ngeneration %" PRIu64 "\nseq %" PRIu64 "\ntopic %u\nflags "
               "0x%x%s%s\npayload crc %08x\nbudget %u\n",
               pi.version, kind_name(pi.kind), pi.owner, pi.store_nonce, pi.offset, pi.size,
               pi.generation, pi.seq, pi.topic, pi.flags,
               (pi.flags & PXS_PROXY_F_PAYLOAD_CRC) ? " crc" : "",
               (pi.flags & PXS_PROXY_F_KEEP) ? " keep" : "", pi.payload_crc, pi.budget);
    return 0;
}

#ifdef PXS_HAVE_HDF5
/* ------------------------------------------------------------ HDF5 reading */
typedef struct lrec {
    uint64_t seq;
    uint32_t topic;
    int32_t producer;
    uint32_t flags;
    uint32_t meta_len;
    unsigned char meta[PXS_EVENT_META_MAX];
    unsigned char proxy[PXS_PROXY_SIZE];
} lrec_t;

static hid_t
log_type(void)
{
    hsize_t nm = PXS_EVENT_META_MAX, np = PXS_PROXY_SIZE;
    hid_t am = H5Tarray_create2(H5T_NATIVE_UINT8, 1, &nm);
    hid_t ap = H5Tarray_create2(H5T_NATIVE_UINT8, 1, &np);
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(lrec_t));
    H5Tinsert(t, "seq", HOFFSET(lrec_t, seq), H5T_NATIVE_UINT64);
    H5Tinsert(t, "topic", HOFFSET(lrec_t, topic), H5T_NATIVE_UINT32);
    H5Tinsert(t, "producer", HOFFSET(lrec_t, producer), H5T_NATIVE_INT32);
    H5Tinsert(t, "flags", HOFFSET(lrec_t, flags), H5T_NATIVE_UINT32);
    H5Tinsert(t, "meta_len", HOFFSET(lrec_t, meta_len), H5T_NATIVE_UINT32);
    H5Tinsert(t, "meta", HOFFSET(lrec_t, meta), am);
    H5Tinsert(t, "proxy", HOFFSET(lrec_t, proxy), ap);
    H5Tclose(am);
    H5Tclose(ap);
    return t;
}

static hid_t
idx_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(pxsi_h5_rec_t));
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

/* Read a whole 1-D dataset `name` of file fn with memory type t into a new
 * buffer; *n records. 0 on success, -1 (with why) on failure. */
static int
read_all(const char *fn, const char *name, hid_t t, size_t esz, void **out, size_t *n, char *why,
         size_t whycap)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_sec2(fapl);
    H5Pset_file_locking(fapl, 0, 1);
    hid_t f = H5Fopen(fn, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        snprintf(why, whycap, "cannot open \"%s\" (not an HDF5 file, truncated or damaged)", fn);
        return -1;
    }
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dims = 0;
    if (sp >= 0)
        H5Sget_simple_extent_dims(sp, &dims, NULL);
    void *b = malloc(dims ? (size_t)dims * esz : 1);
    int ok = d >= 0 && sp >= 0 && b &&
             (dims == 0 || H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) >= 0);
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    H5Fclose(f);
    if (!ok) {
        free(b);
        snprintf(why, whycap, "cannot read dataset \"%s\" of \"%s\"", name, fn);
        return -1;
    }
    *out = b;
    *n = (size_t)dims;
    return 0;
}

static int
is_log(const char *name)
{
    size_t l = strlen(name);
    return strncmp(name, "pxs-log-", 8) == 0 && l > 11 && strcmp(name + l - 3, ".h5") == 0;
}

/* ------------------------------------------------------------ ls / verify of
 * the store */
static int
store_one(const char *dir, int verify, int *bad)
{
    char sdir[PATH_MAX];
    uint64_t nonce = 0;
    int nranks = 0;
    if (pxsi_h5_manifest_read(dir, sdir, sizeof sdir, &nonce, &nranks) != PXS_OK)
        return 0; /* no store here (maybe only logs) */
    pxs_store_t *st = NULL;
    if (verify && pxs_store_open(MPI_COMM_SELF, dir, &st) != PXS_OK) {
        printf(json ? "{\"store\": \"%016" PRIx64 "\", \"error\": \"open failed\"}\n"
                    : "store %016" PRIx64 ": cannot open: %s\n",
               nonce, pxs_last_error_detail());
        (*bad)++;
        return 1;
    }
    if (json)
        printf("{\"store\": \"%016" PRIx64 "\", \"ranks\": %d, \"dir\": \"%s\"}\n", nonce, nranks,
               sdir);
    else
        printf("store %016" PRIx64 ": %d rank file(s) in %s\n", nonce, nranks, sdir);
    hid_t t = idx_type();
    for (int r = 0; r < nranks; r++) {
        char fn[PATH_MAX + 64], why[PATH_MAX + 128];
        pxsi_h5_file_name(fn, sizeof fn, sdir, nonce, r);
        pxsi_h5_rec_t *rec = NULL;
        size_t n = 0, lost = 0;
        uint64_t eof = 0, eoa = 0;
        if (pxsi_h5_index_read(fn, &rec, &n, &eof, &eoa, &lost) != PXS_OK) {
            snprintf(why, sizeof why, "%s", pxs_last_error_detail());
            printf(json ? "{\"rank\": %d, \"error\": \"%s\"}\n" : "  rank %d: ERROR %s\n", r,
                   json ? "cannot read the index" : why);
            (*bad)++;
            continue;
        }
        /* a truncated file: what it still holds is listed (and verified),
         * the file counts as corrupt (exit status 2) */
        if (eoa > eof) {
            if (json)
                printf("{\"rank\": %d, \"truncated\": true, \"size\": %" PRIu64
                       ", \"recorded_size\": %" PRIu64 ", \"index_lost\": %zu}\n",
                       r, eof, eoa, lost);
            else
                printf("  rank %d: TRUNCATED: %s holds %" PRIu64 " of %" PRIu64
                       " bytes; the complete records are listed%s\n",
                       r, fn, eof, eoa,
                       lost ? ", the index of some records is lost with the cut" : "");
            (*bad)++;
        }
        size_t live = 0, dead = 0, other = 0, nbad = 0, good = 0;
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++) {
            if (rec[i].state == PXSI_H5_LIVE) {
                live++;
                bytes += rec[i].size;
            } else if (rec[i].state == PXSI_H5_DEAD) {
                dead++;
            } else {
                other++;
            }
            if (verify && rec[i].state == PXSI_H5_LIVE) {
                pxs_proxy_info_t pi;
                memset(&pi, 0, sizeof pi);
                pi.kind = PXS_CONN_HDF5;
                pi.owner = (uint32_t)r;
                pi.store_nonce = nonce;
                pi.offset = rec[i].offset;
                pi.size = rec[i].size;
                pi.generation = i;
                pi.flags = rec[i].flags & PXS_PROXY_F_MASK_;
                pi.payload_crc = rec[i].crc;
                pxs_proxy_t p;
                void *data = NULL;
                size_t len = 0;
                int rc = pxs_proxy_encode(&pi, &p);
                if (rc == PXS_OK)
                    rc = pxs_store_resolve_alloc(st, &p, &data, &len);
                good += rc == PXS_OK;
                if (rc != PXS_OK) {
                    nbad++;
                    printf(json ? "{\"rank\": %d, \"record\": %zu, \"error\": "
                                  "\"%s\"}\n"
                                : "  rank %d record %zu: %s\n",
                           r, i, json ? pxs_errname(rc) : pxs_last_error_detail());
                }
                free(data);
            }
        }
        *bad += (int)nbad;
        if (json)
            printf("{\"rank\": %d, \"records\": %zu, \"live\": %zu, \"dead\": "
                   "%zu, "
                   "\"incomplete\": %zu, \"live_bytes\": %" PRIu64 "%s",
                   r, n, live, dead, other, bytes,
                   verify ? (nbad || eoa > eof ? ", \"verified\": false" : ", \"verified\": true")
                          : "");
        else
            printf("  rank %d: %zu record(s): %zu live (%" PRIu64 " B), %zu dead, %zu "
                   "incomplete",
                   r, n, live, bytes, dead, other);
        if (verify)
            printf(json ? ", \"good\": %zu, \"damaged\": %zu}\n"
                   : nbad ? ", CORRUPT: %zu good, %zu damaged\n"
                   : eoa > eof ? ", %zu good (CRC checked), %zu damaged\n"
                               : ", all CRCs good\n",
                   good, nbad);
        else
            printf(json ? "}\n" : "\n");
        free(rec);
    }
    H5Tclose(t);
    if (st)
        (void)pxs_store_destroy(st);
    return 1;
}

/* Every store at dir (the manifests in it and its subdirectories, e.g. the
 * durable copies beside a stream log). */
static int
store_walk(const char *dir, int verify, int *bad)
{
    enum { LIST = 1 << 16 };
    char *list = calloc(1, LIST);
    int n = 0, found = 0;
    if (!list || pxsi_h5_manifests(dir, list, LIST, &n) != PXS_OK) {
        free(list);
        return 0;
    }
    char *save = NULL;
    for (char *m = strtok_r(list, "\n", &save); m; m = strtok_r(NULL, "\n", &save))
        found += store_one(m, verify, bad);
    free(list);
    return found;
}

/* ------------------------------------------------------------ logs */
typedef struct tstat {
    int producer;
    uint32_t topic;
    uint64_t n, first, last;
    int ended;
} tstat_t;

static int
logs_walk(const char *dir, int mode, long topic, int *bad)
{
    /* mode 0: ls, 1: dump topic, 2: verify */
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    hid_t t = log_type();
    struct dirent *e;
    int nfiles = 0;
    while ((e = readdir(d)) != NULL) {
        if (!is_log(e->d_name))
            continue;
        nfiles++;
        char fn[PATH_MAX + 300], why[PATH_MAX + 400];
        snprintf(fn, sizeof fn, "%s/%s", dir, e->d_name);
        lrec_t *r = NULL;
        size_t n = 0;
        if (read_all(fn, "events", t, sizeof *r, (void **)&r, &n, why, sizeof why)) {
            printf(json ? "{\"log\": \"%s\", \"error\": \"%s\"}\n" : "log %s: ERROR %s\n",
                   e->d_name, why);
            (*bad)++;
            continue;
        }
        tstat_t ts[64];
        int nts = 0;
        size_t nbad = 0;
        for (size_t i = 0; i < n; i++) {
            int end = (r[i].flags & 1u) != 0;
            if (!end && (r[i].meta_len > PXS_EVENT_META_MAX ||
                         pxs_proxy_validate((const pxs_proxy_t *)(const void *)r[i].proxy))) {
                nbad++;
                if (mode == 2)
                    printf(json ? "{\"log\": \"%s\", \"record\": %zu, "
                                  "\"error\": \"bad record\"}\n"
                                : "log %s record %zu: bad proxy or metadata\n",
                           e->d_name, i);
            }
            if (mode == 1 && (long)r[i].topic == topic) {
                char text[PXS_PROXY_TEXT_LEN] = "";
                if (!end && pxs_proxy_to_text((const pxs_proxy_t *)(const void *)r[i].proxy, text,
                                              sizeof text) != PXS_OK)
                    snprintf(text, sizeof text, "invalid");
                char meta[2 * PXS_EVENT_META_MAX + 1] = "";
                for (uint32_t k = 0; !end && k < r[i].meta_len && k < PXS_EVENT_META_MAX; k++)
                    snprintf(meta + 2 * k, 3, "%02x", r[i].meta[k]);
                if (json)
                    printf("{\"producer\": %d, \"topic\": %u, \"seq\": %" PRIu64
                           ", \"end\": %s, \"meta_hex\": \"%s\", \"proxy\": "
                           "\"%s\"}\n",
                           r[i].producer, r[i].topic, r[i].seq, end ? "true" : "false", meta, text);
                else if (end)
                    printf("producer %d topic %u END\n", r[i].producer, r[i].topic);
                else
                    printf("producer %d topic %u seq %" PRIu64 " meta %s proxy %s\n", r[i].producer,
                           r[i].topic, r[i].seq, meta[0] ? meta : "-", text);
            }
            int k = 0;
            while (k < nts && ts[k].topic != r[i].topic)
                k++;
            if (k == nts && nts < 64) {
                ts[nts] = (tstat_t){r[i].producer, r[i].topic, 0, r[i].seq, r[i].seq, 0};
                nts++;
            }
            if (k < nts) {
                if (end) {
                    ts[k].ended = 1;
                } else {
                    if (ts[k].n == 0)
                        ts[k].first = r[i].seq;
                    ts[k].n++;
                    ts[k].last = r[i].seq;
                }
            }
        }
        *bad += (int)nbad;
        if (mode != 1)
            for (int k = 0; k < nts; k++) {
                if (json)
                    printf("{\"log\": \"%s\", \"producer\": %d, \"topic\": %u, "
                           "\"events\": "
                           "%" PRIu64 ", \"first_seq\": %" PRIu64 ", \"last_seq\": %" PRIu64
                           ", \"end\": %s}\n",
                           e->d_name, ts[k].producer, ts[k].topic, ts[k].n, ts[k].first, ts[k].last,
                           ts[k].ended ? "true" : "false");
                else
                    printf("log %s: producer %d topic %u: %" PRIu64 " event(s), seq %" PRIu64
                           "..%" PRIu64 "%s\n",
                           e->d_name, ts[k].producer, ts[k].topic, ts[k].n, ts[k].first, ts[k].last,
                           ts[k].ended ? ", END" : ", open");
            }
        free(r);
    }
    closedir(d);
    H5Tclose(t);
    return nfiles;
}
#endif

int
main(int argc, char **argv)
{
    int a = 1;
    if (a < argc && strcmp(argv[a], "--json") == 0) {
        json = 1;
        a++;
    }
    if (a >= argc) {
        usage();
        return 2;
    }
    const char *cmd = argv[a++];
    if (strcmp(cmd, "proxy") == 0) {
        if (a >= argc) {
            usage();
            return 2;
        }
        return cmd_proxy(argv[a]);
    }
#ifdef PXS_HAVE_HDF5
    if (a >= argc) {
        usage();
        return 2;
    }
    const char *dir = argv[a++];
    long topic = -1;
    for (; a < argc; a++) {
        if (strcmp(argv[a], "--topic") == 0 && a + 1 < argc)
            topic = strtol(argv[++a], NULL, 0);
        else if (strcmp(argv[a], "--json") == 0)
            json = 1;
    }
    int mode = strcmp(cmd, "ls") == 0       ? 0
               : strcmp(cmd, "dump") == 0   ? 1
               : strcmp(cmd, "verify") == 0 ? 2
                                            : -1;
    if (mode < 0 || (mode == 1 && topic < 0)) {
        usage();
        return 2;
    }
    MPI_Init(&argc, &argv);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int bad = 0, found = 0;
    if (mode != 1)
        found += store_walk(dir, mode == 2, &bad);
    found += logs_walk(dir, mode, topic, &bad);
    MPI_Finalize();
    if (!found) {
        fprintf(stderr, "pxs-inspect: no store manifest and no stream log in %s\n", dir);
        return 2;
    }
    if (mode == 2 && !json)
        printf("%s\n", bad ? "CORRUPT" : "OK");
    return bad ? 2 : 0;
#else
    fprintf(stderr, "pxs-inspect: %s needs a library built with HDF5\n", cmd);
    return 2;
#endif
}
