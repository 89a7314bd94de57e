/* Stream log and replay (docs/DESIGN.md, section "Stream log and replay"):
 * the writer a producer with opts.log_path appends to, and the replay
 * subscriber (include/proxystream/log.h). Self-contained: the producer calls
 * pxsi_slog_open / _event / _close (stream.c), the replay subscriber is one
 * more implementation of struct pxs_subscriber_ops.
 *
 * One file per producer: <dir>/pxs-log-p<producer>-<random hex>.h5 (sec2,
 * latest format, SWMR write), one chunked extendible compound dataset
 * "events" (seq, topic, producer, flags (1 = END), meta_len, meta[96],
 * proxy[64]). Every record is flushed when written, so a live reader sees
 * it (SWMR read). */
#include <stdlib.h>
#include <string.h>

#include "proxystream/log.h"
#include "stream/slog.h"
#include "util/util.h"

#define SUBSYS "stream.log"

#ifdef PXS_HAVE_HDF5

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "pubsub/pubsub_int.h"
#include "store/connectors/hdf5_int.h"

#define SLOG_CHUNK ((hsize_t)256)
#define SLOG_F_END 1u

typedef struct slog_rec {
    uint64_t seq;
    uint32_t topic;
    int32_t producer;
    uint32_t flags;
    uint32_t meta_len;
    unsigned char meta[PXS_EVENT_META_MAX];
    unsigned char proxy[PXS_PROXY_SIZE];
} slog_rec_t;

struct pxsi_slog {
    hid_t f, ds, type;
    uint64_t n;
    int producer;
    char path[PATH_MAX];
};

static hid_t
rec_type(void)
{
    hsize_t nm = PXS_EVENT_META_MAX, np = PXS_PROXY_SIZE;
    hid_t am = H5Tarray_create2(H5T_NATIVE_UINT8, 1, &nm);
    hid_t ap = H5Tarray_create2(H5T_NATIVE_UINT8, 1, &np);
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(slog_rec_t));
    if (am < 0 || ap < 0 || t < 0) {
        if (am >= 0)
            H5Tclose(am);
        if (ap >= 0)
            H5Tclose(ap);
        if (t >= 0)
            H5Tclose(t);
        return H5I_INVALID_HID;
    }
    H5Tinsert(t, "seq", HOFFSET(slog_rec_t, seq), H5T_NATIVE_UINT64);
    H5Tinsert(t, "topic", HOFFSET(slog_rec_t, topic), H5T_NATIVE_UINT32);
    H5Tinsert(t, "producer", HOFFSET(slog_rec_t, producer), H5T_NATIVE_INT32);
    H5Tinsert(t, "flags", HOFFSET(slog_rec_t, flags), H5T_NATIVE_UINT32);
    H5Tinsert(t, "meta_len", HOFFSET(slog_rec_t, meta_len), H5T_NATIVE_UINT32);
    H5Tinsert(t, "meta", HOFFSET(slog_rec_t, meta), am);
    H5Tinsert(t, "proxy", HOFFSET(slog_rec_t, proxy), ap);
    H5Tclose(am);
    H5Tclose(ap);
    return t;
}

static hid_t
fapl_new(int readonly)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return fapl;
    if (H5Pset_fapl_sec2(fapl) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0 ||
        (readonly && H5Pset_file_locking(fapl, 0, 1) < 0)) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

/* ------------------------------------------------------------ writer */
static int
slog_create(pxsi_slog_t *l, const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "log directory \"%s\": mkdir: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return pxsi_err(PXS_ERR_IO, SUBSYS, "log directory \"%s\": %s", dir,
                        errno ? strerror(errno) : "not a directory");
    uint64_t r = 0;
    int rc = pxsi_random_u64(&r);
    if (rc)
        return rc;
    snprintf(l->path, sizeof l->path, "%s/pxs-log-p%d-%016" PRIx64 ".h5", dir, l->producer, r);
    char what[PATH_MAX + 64];
    hid_t fapl = fapl_new(0);
    l->f = fapl >= 0 ? H5Fcreate(l->path, H5F_ACC_EXCL, H5P_DEFAULT, fapl) : H5I_INVALID_HID;
    if (l->f < 0) {
        snprintf(what, sizeof what, "cannot create the stream log \"%s\"", l->path);
        rc = pxsi_h5_fail(PXS_ERR_IO, what);
        if (fapl >= 0)
            H5Pclose(fapl);
        return rc;
    }
    H5Pclose(fapl);
    hsize_t zero = 0, unl = H5S_UNLIMITED, ch = SLOG_CHUNK;
    hid_t sp = H5Screate_simple(1, &zero, &unl);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &ch) >= 0)
        l->ds = H5Dcreate2(l->f, "events", l->type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (l->ds < 0 || H5Fstart_swmr_write(l->f) < 0) {
        snprintf(what, sizeof what, "cannot set up the stream log \"%s\"", l->path);
        rc = pxsi_h5_fail(PXS_ERR_IO, what);
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return rc;
}

static void
slog_free(pxsi_slog_t *l)
{
    if (l->ds >= 0)
        H5Dclose(l->ds);
    if (l->f >= 0)
        H5Fclose(l->f);
    if (l->type >= 0)
        H5Tclose(l->type);
    free(l);
}

int
pxsi_slog_open(const char *dir, int producer, pxsi_slog_t **out)
{
    pxsi_slog_t *l = calloc(1, sizeof *l);
    if (!l)
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "stream log");
    l->f = l->ds = H5I_INVALID_HID;
    l->producer = producer;
    void *g;
    pxsi_h5_enter(&g);
    l->type = rec_type();
    int rc = l->type < 0 ? pxsi_err(PXS_ERR_NOMEM, SUBSYS, "record type") : slog_create(l, dir);
    if (rc) {
        if (l->f >= 0)
            remove(l->path);
        slog_free(l);
    }
    pxsi_h5_leave(g);
    if (rc == PXS_OK)
        *out = l;
    return rc;
}

int
pxsi_slog_event(pxsi_slog_t *l, uint32_t topic, uint64_t seq, const pxs_proxy_t *proxy,
                const void *meta, size_t meta_len, int end)
{
    slog_rec_t r;
    memset(&r, 0, sizeof r);
    r.seq = seq;
    r.topic = topic;
    r.producer = l->producer;
    r.flags = end ? SLOG_F_END : 0;
    r.meta_len = (uint32_t)meta_len;
    if (meta_len)
        memcpy(r.meta, meta, meta_len);
    if (proxy)
        memcpy(r.proxy, proxy->bytes, PXS_PROXY_SIZE);
    void *g;
    pxsi_h5_enter(&g);
    int rc = PXS_OK;
    hsize_t next = l->n + 1, start = l->n, one = 1;
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    herr_t e = H5Dset_extent(l->ds, &next);
    if (e >= 0 && (fs = H5Dget_space(l->ds)) >= 0 && (ms = H5Screate_simple(1, &one, NULL)) >= 0)
        e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &one, NULL);
    else
        e = -1;
    if (e >= 0)
        e = H5Dwrite(l->ds, l->type, ms, fs, H5P_DEFAULT, &r);
    if (e >= 0)
        e = H5Fflush(l->f, H5F_SCOPE_LOCAL);
    if (e < 0) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "cannot append to the stream log \"%s\"", l->path);
        rc = pxsi_h5_fail(PXS_ERR_IO, what);
    } else {
        l->n++;
    }
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    pxsi_h5_leave(g);
    return rc;
}

void
pxsi_slog_close(pxsi_slog_t *l)
{
    if (!l)
        return;
    void *g;
    pxsi_h5_enter(&g);
    slog_free(l);
    pxsi_h5_leave(g);
}

/* ------------------------------------------------------------ replay
 * subscriber */
typedef struct rfile {
    hid_t f, ds;
    uint64_t n, cur;
    /* topics this file logged, and which of them it closed */
    uint32_t *topics;
    unsigned char *ended;
    size_t nt, capt;
} rfile_t;

typedef struct replay {
    hid_t type;
    rfile_t *files;
    size_t nfiles, rr;
    uint32_t *subs;
    size_t nsubs;
    int all;
    char dir[PATH_MAX];
} replay_t;

static int
wants(const replay_t *r, uint32_t topic)
{
    if (r->all)
        return 1;
    for (size_t i = 0; i < r->nsubs; i++)
        if (r->subs[i] == topic)
            return 1;
    return 0;
}

static int
note_topic(rfile_t *f, uint32_t topic, int end)
{
    for (size_t i = 0; i < f->nt; i++)
        if (f->topics[i] == topic) {
            f->ended[i] |= (unsigned char)end;
            return PXS_OK;
        }
    if (f->nt == f->capt) {
        size_t nc = f->capt ? 2 * f->capt : 8;
        uint32_t *t = realloc(f->topics, nc * sizeof *t);
        if (!t)
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "replay topics");
        f->topics = t;
        unsigned char *e = realloc(f->ended, nc);
        if (!e)
            return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "replay topics");
        f->ended = e;
        f->capt = nc;
    }
    f->topics[f->nt] = topic;
    f->ended[f->nt++] = (unsigned char)end;
    return PXS_OK;
}

static uint64_t
extent(hid_t ds)
{
    hid_t sp = H5Dget_space(ds);
    hsize_t n = 0;
    if (sp >= 0) {
        H5Sget_simple_extent_dims(sp, &n, NULL);
        H5Sclose(sp);
    }
    return (uint64_t)n;
}

/* Next record of file f (cur < n), under the HDF5 lock. */
static int
read_rec(replay_t *r, rfile_t *f, slog_rec_t *rec)
{
    hsize_t start = f->cur, one = 1;
    hid_t fs = H5Dget_space(f->ds);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    herr_t e =
        (fs < 0 || ms < 0) ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &one, NULL);
    if (e >= 0)
        e = H5Dread(f->ds, r->type, ms, fs, H5P_DEFAULT, rec);
    int rc = PXS_OK;
    if (e < 0) {
        char what[PATH_MAX + 64];
        snprintf(what, sizeof what, "cannot read record %" PRIu64 " of a stream log in \"%s\"",
                 f->cur, r->dir);
        rc = pxsi_h5_fail(PXS_ERR_CORRUPT, what);
    }
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (rc == PXS_OK && rec->meta_len > PXS_EVENT_META_MAX)
        rc = pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "record %" PRIu64 " in \"%s\": meta_len %u", f->cur,
                      r->dir, rec->meta_len);
    if (rc == PXS_OK)
        f->cur++;
    return rc;
}

/* One pass over the files from r->rr: PXS_OK (an event), PXS_END (every
 * file closed every topic it logged that we want), PXS_TIMEOUT (nothing
 * more yet). */
static int
replay_step(replay_t *r, pxs_event_t *ev)
{
    for (size_t k = 0; k < r->nfiles; k++) {
        rfile_t *f = &r->files[(r->rr + k) % r->nfiles];
        while (f->cur < f->n) {
            slog_rec_t rec;
            int rc = read_rec(r, f, &rec);
            if (rc)
                return rc;
            if ((rc = note_topic(f, rec.topic, (rec.flags & SLOG_F_END) != 0)) != PXS_OK)
                return rc;
            if ((rec.flags & SLOG_F_END) || !wants(r, rec.topic))
                continue;
            memset(ev, 0, sizeof *ev);
            memcpy(ev->proxy.bytes, rec.proxy, PXS_PROXY_SIZE);
            ev->topic = rec.topic;
            ev->producer = rec.producer;
            ev->seq = rec.seq;
            ev->meta_len = rec.meta_len;
            memcpy(ev->meta, rec.meta, rec.meta_len);
            r->rr = (r->rr + k + 1) % r->nfiles; /* interleave producers */
            return PXS_OK;
        }
    }
    for (size_t k = 0; k < r->nfiles; k++) {
        rfile_t *f = &r->files[k];
        int open = f->nt == 0; /* a log with no record yet: its producer may still write */
        for (size_t i = 0; i < f->nt; i++)
            if (wants(r, f->topics[i]) && !f->ended[i])
                open = 1;
        if (open)
            return PXS_TIMEOUT;
    }
    return PXS_END;
}

static int
replay_refresh(replay_t *r)
{
    for (size_t k = 0; k < r->nfiles; k++) {
        rfile_t *f = &r->files[k];
        if (H5Drefresh(f->ds) < 0) {
            char what[PATH_MAX + 64];
            snprintf(what, sizeof what, "cannot refresh a stream log in \"%s\"", r->dir);
            return pxsi_h5_fail(PXS_ERR_IO, what);
        }
        f->n = extent(f->ds);
    }
    return PXS_OK;
}

static int
replay_recv(void *state, pxs_event_t *ev, double timeout)
{
    replay_t *r = state;
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, timeout);
    for (int refreshed = 0;;) {
        void *g;
        pxsi_h5_enter(&g);
        int rc = replay_step(r, ev);
        if (rc == PXS_TIMEOUT && !refreshed) {
            rc = replay_refresh(r);
            if (rc == PXS_OK)
                rc = replay_step(r, ev);
        }
        pxsi_h5_leave(g);
        refreshed = 0;
        if (rc == PXS_END) {
            memset(ev, 0, sizeof *ev);
            ev->topic = PXS_TOPIC_ALL;
            ev->producer = -1;
            return PXS_END;
        }
        if (rc != PXS_TIMEOUT)
            return rc;
        if (pxsi_backoff_expired(&b))
            return PXS_TIMEOUT;
        pxsi_backoff_pause(&b);
    }
}

static const pxsi_sub_ops_t replay_ops = {.recv = replay_recv};

static void
replay_free(replay_t *r)
{
    for (size_t k = 0; k < r->nfiles; k++) {
        rfile_t *f = &r->files[k];
        if (f->ds >= 0)
            H5Dclose(f->ds);
        if (f->f >= 0)
            H5Fclose(f->f);
        free(f->topics);
        free(f->ended);
    }
    if (r->type >= 0)
        H5Tclose(r->type);
    free(r->files);
    free(r->subs);
    free(r);
}

static int
replay_open_files(replay_t *r)
{
    DIR *d = opendir(r->dir);
    if (!d)
        return pxsi_err(PXS_ERR_IO, SUBSYS, "log directory \"%s\": %s", r->dir, strerror(errno));
    int rc = PXS_OK;
    size_t cap = 0;
    struct dirent *e;
    while (rc == PXS_OK && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "pxs-log-", 8) != 0 || l < 12 || strcmp(e->d_name + l - 3, ".h5"))
            continue;
        if (r->nfiles == cap) {
            cap = cap ? 2 * cap : 8;
            rfile_t *nf = realloc(r->files, cap * sizeof *nf);
            if (!nf) {
                rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "replay files");
                break;
            }
            r->files = nf;
        }
        rfile_t *f = &r->files[r->nfiles];
        memset(f, 0, sizeof *f);
        f->f = f->ds = H5I_INVALID_HID;
        r->nfiles++;
        char fn[PATH_MAX + 300];
        snprintf(fn, sizeof fn, "%s/%s", r->dir, e->d_name);
        hid_t fapl = fapl_new(1);
        f->f = fapl >= 0 ? H5Fopen(fn, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl) : H5I_INVALID_HID;
        if (f->f >= 0)
            f->ds = H5Dopen2(f->f, "events", H5P_DEFAULT);
        if (f->ds < 0) {
            char what[PATH_MAX + 400];
            snprintf(what, sizeof what, "\"%s\" is not a readable stream log", fn);
            rc = pxsi_h5_fail(PXS_ERR_CORRUPT, what);
        } else {
            f->n = extent(f->ds);
        }
        if (fapl >= 0)
            H5Pclose(fapl);
    }
    closedir(d);
    if (rc == PXS_OK && r->nfiles == 0)
        rc = pxsi_err(PXS_ERR_NOT_FOUND, SUBSYS, "no stream log (pxs-log-*.h5) in \"%s\"", r->dir);
    return rc;
}

int
pxs_log_subscriber_open(const char *path, const pxs_subscription_t *subs, size_t n,
                        pxs_subscriber_t **out)
{
    if (!path || !out || (n && !subs))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "log_subscriber_open: NULL argument");
    if (strlen(path) >= PATH_MAX - 300)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "log_subscriber_open: path too long");
    replay_t *r = calloc(1, sizeof *r);
    pxs_subscriber_t *s = calloc(1, sizeof *s);
    if (!r || !s || (n && !(r->subs = calloc(n, sizeof *r->subs)))) {
        free(r ? r->subs : NULL);
        free(r);
        free(s);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "replay subscriber");
    }
    snprintf(r->dir, sizeof r->dir, "%s", path);
    for (size_t i = 0; i < n; i++) {
        if (subs[i].topic == PXS_TOPIC_ALL)
            r->all = 1;
        r->subs[r->nsubs++] = subs[i].topic;
    }
    if (n == 0)
        r->all = 1;
    void *g;
    pxsi_h5_enter(&g);
    r->type = rec_type();
    int rc = r->type < 0 ? pxsi_err(PXS_ERR_NOMEM, SUBSYS, "record type") : replay_open_files(r);
    if (rc)
        replay_free(r);
    pxsi_h5_leave(g);
    if (rc) {
        free(s);
        return rc;
    }
    s->magic = PXSI_MAGIC_SUB;
    s->standalone = 1;
    s->ops = &replay_ops;
    s->state = r;
    *out = s;
    return PXS_OK;
}

int
pxs_log_subscriber_close(pxs_subscriber_t *s)
{
    if (!s)
        return PXS_OK;
    if (!PXSI_HANDLE_OK(s, PXSI_MAGIC_SUB) || s->ops != &replay_ops)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "log_subscriber_close: not a replay subscriber");
    void *g;
    pxsi_h5_enter(&g);
    replay_free(s->state);
    pxsi_h5_leave(g);
    s->magic = PXSI_MAGIC_DEAD;
    free(s);
    return PXS_OK;
}

#else /* no HDF5 */

int
pxsi_slog_open(const char *dir, int producer, pxsi_slog_t **out)
{
    (void)dir;
    (void)producer;
    (void)out;
    return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "stream log: this library was built without HDF5");
}

int
pxsi_slog_event(pxsi_slog_t *l, uint32_t topic, uint64_t seq, const pxs_proxy_t *proxy,
                const void *meta, size_t meta_len, int end)
{
    (void)l;
    (void)topic;
    (void)seq;
    (void)proxy;
    (void)meta;
    (void)meta_len;
    (void)end;
    return PXS_ERR_NOTSUP;
}

void
pxsi_slog_close(pxsi_slog_t *l)
{
    (void)l;
}

int
pxs_log_subscriber_open(const char *path, const pxs_subscription_t *subs, size_t n,
                        pxs_subscriber_t **out)
{
    (void)path;
    (void)subs;
    (void)n;
    (void)out;
    return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "replay: this library was built without HDF5");
}

int
pxs_log_subscriber_close(pxs_subscriber_t *s)
{
    (void)s;
    return PXS_OK;
}

#endif
