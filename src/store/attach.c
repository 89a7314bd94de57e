/* Export and attach across jobs (public: proxystream/attach.h): the contact
 * file (written atomically, mode 0600, refused when another user owns it or
 * others can write it, CRC-checked) and the collective steps around the UCX
 * connector's export entries and attached state (connectors/ucx.c). See
 * docs/DESIGN.md, section "Export and attach".
 *
 * Contact file (native byte order; both jobs run on the same kind of
 * machine):
 *     0  "PXSCONT1"      8  u32 version (4)   12 u32 ranks
 *    16  u64 store nonce 24  u64 attach token 32 f64 creation time (epoch s)
 *    40  u32 uid         44  i32 pid of rank 0  48 char host[64]
 *   112  u32 bus exported (0/1)  116 u32 attached mailbox slots
 *   128  per rank: u64 length, the rank's entry: u64 store part length,
 *        the store part (pxsi_ucx_export_blob), the bus part (the rest;
 *        pxsi_xbus_export: topics, local groups, registration area key)
 *   end  u32 CRC32C of everything before it */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proxystream/attach.h"
#include "pubsub/pubsub_int.h"
#include "store/store_int.h"

#define SUBSYS      "attach"
#define HDR      128u
#define VERSION  4u /* 3: registration slots of 8 KiB (detach give-back); 4: slots reused (claim words, generations) */
#define MAX_FILE ((size_t)64 << 20)

#ifdef PXS_HAVE_UCX
static const char magic[8] = {'P', 'X', 'S', 'C', 'O', 'N', 'T', '1'};

/* Rank 0: write buf to path atomically with mode 0600. */
static int
write_atomic(const char *path, const unsigned char *buf, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >=
        (int)sizeof tmp)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "contact path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "creating %s: %s", tmp,
                        strerror(errno));
    int rc = PXS_OK;
    if (fchmod(fd, 0600) != 0) /* whatever the umask */
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "fchmod %s: %s", tmp,
                      strerror(errno));
    for (size_t done = 0; rc == PXS_OK && done < len;) {
        ssize_t w = write(fd, buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "writing %s: %s", tmp,
                          strerror(errno));
        else
            done += (size_t)w;
    }
    if (rc == PXS_OK && fsync(fd) != 0)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "fsync %s: %s", tmp,
                      strerror(errno));
    close(fd);
    if (rc == PXS_OK && rename(tmp, path) != 0)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "rename %s -> %s: %s", tmp, path,
                      strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}
#endif

int
pxs_export(pxs_bus_t *bus, pxs_store_t *s, const char *path)
{
    if (!s || s->magic != PXSI_STORE_MAGIC || s->comm == MPI_COMM_NULL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "pxs_export: not a live collective store");
#ifndef PXS_HAVE_UCX
    (void)bus;
    (void)path;
    return pxsi_agree(
        s->comm, pxsi_err(PXS_ERR_NOTSUP, SUBSYS,
                          "pxs_export: this library was built without UCX"));
#else
    int rc = PXS_OK;
    if (s->kind != PXS_CONN_UCX || s->rank < 0)
        rc = pxsi_err(PXS_ERR_NOTSUP, SUBSYS,
                      "pxs_export: needs a PXS_CONN_UCX store of this job");
    else if (!path || !*path)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_export: no contact path");
    else if (bus && (!PXSI_HANDLE_OK(bus, PXSI_MAGIC_BUS) ||
                     bus->pub.ops != &pxsi_core_pub_ops))
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                      "pxs_export: not an MPI bus (pxs_bus_create), or exported "
                      "already");
    else if (bus && (((struct pxsi_core *)bus->pub.state)->rank != s->rank ||
                     ((struct pxsi_core *)bus->pub.state)->size != s->size))
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                      "pxs_export: the bus and the store must span the same "
                      "ranks in the same order");
    rc = pxsi_agree(s->comm, rc);
    if (rc)
        return rc;
    /* the attach token and the attached mailbox size: rank 0's */
    uint64_t hdr2[2] = {0, pxsi_opt_uint(PXSI_OPT_MAILBOX_SLOTS)};
    if (s->rank == 0)
        rc = pxsi_random_u64(&hdr2[0]);
    rc = pxsi_agree(s->comm, rc);
    if (rc == PXS_OK)
        rc = pxsi_agree(s->comm,
                        pxsi_mpi_err(MPI_Bcast(hdr2, 2, MPI_UINT64_T, 0, s->comm),
                                     SUBSYS, "MPI_Bcast (token)"));
    if (rc)
        return rc;
    uint64_t token = hdr2[0];
    uint32_t aslots = (uint32_t)hdr2[1];
    unsigned char *sblob = NULL, *bblob = NULL, *blob = NULL;
    size_t slen = 0, blen = 0;
    rc = pxsi_ucx_export_blob(s->st, &sblob, &slen);
    if (rc == PXS_OK && bus)
        rc = pxsi_xbus_export(bus, s->st, token, aslots, &bblob, &blen);
    if (rc == PXS_OK && !(blob = malloc(8 + slen + blen)))
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "export entry");
    if (rc == PXS_OK) {
        uint64_t l = slen;
        memcpy(blob, &l, 8);
        memcpy(blob + 8, sblob, slen);
        if (blen)
            memcpy(blob + 8 + slen, bblob, blen);
    }
    size_t elen = 8 + slen + blen;
    free(sblob);
    free(bblob);
    rc = pxsi_agree_why(s->comm, rc);
    if (rc) {
        free(blob);
        pxsi_xbus_unexport(bus);
        return rc;
    }
    int me = (int)elen, *lens = NULL, *displ = NULL;
    unsigned char *all = NULL;
    if (s->rank == 0) {
        lens = calloc((size_t)s->size, sizeof *lens);
        displ = calloc((size_t)s->size, sizeof *displ);
        if (!lens || !displ)
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "export tables");
    }
    int mrc = MPI_Gather(&me, 1, MPI_INT, lens, 1, MPI_INT, 0, s->comm);
    rc = pxsi_agree(
        s->comm, rc ? rc : pxsi_mpi_err(mrc, SUBSYS, "MPI_Gather (entry sizes)"));
    size_t total = 0;
    if (rc == PXS_OK && s->rank == 0) {
        for (int i = 0; i < s->size; i++) {
            displ[i] = (int)total;
            total += (size_t)lens[i];
        }
        all = malloc(total ? total : 1);
        if (!all)
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "export entries");
    }
    rc = pxsi_agree(s->comm, rc);
    if (rc == PXS_OK) {
        mrc = MPI_Gatherv(blob, me, MPI_BYTE, all, lens, displ, MPI_BYTE, 0,
                          s->comm);
        rc = pxsi_agree(s->comm,
                        pxsi_mpi_err(mrc, SUBSYS, "MPI_Gatherv (entries)"));
    }
    free(blob);
    if (rc == PXS_OK && s->rank == 0) {
        size_t flen = HDR + 8 * (size_t)s->size + total + 4;
        unsigned char *f = calloc(1, flen);
        if (!f)
            rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "contact file buffer");
        if (rc == PXS_OK) {
            uint32_t ver = VERSION, n = (uint32_t)s->size, uid = (uint32_t)geteuid();
            uint32_t hasbus = bus != NULL;
            int32_t pid = (int32_t)getpid();
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double created = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
            memcpy(f, magic, 8);
            memcpy(f + 8, &ver, 4);
            memcpy(f + 12, &n, 4);
            memcpy(f + 16, &s->nonce, 8);
            memcpy(f + 24, &token, 8);
            memcpy(f + 32, &created, 8);
            memcpy(f + 40, &uid, 4);
            memcpy(f + 44, &pid, 4);
            gethostname((char *)f + 48, 63);
            memcpy(f + 112, &hasbus, 4);
            memcpy(f + 116, &aslots, 4);
            size_t at = HDR;
            for (int i = 0; i < s->size; i++) {
                uint64_t l = (uint64_t)lens[i];
                memcpy(f + at, &l, 8);
                memcpy(f + at + 8, all + displ[i], (size_t)lens[i]);
                at += 8 + (size_t)lens[i];
            }
            uint32_t crc = pxs_crc32c(0, f, at);
            memcpy(f + at, &crc, 4);
            rc = write_atomic(path, f, flen);
        }
        free(f);
    }
    free(all);
    free(lens);
    free(displ);
    rc = pxsi_agree_why(s->comm, rc);
    if (rc)
        pxsi_xbus_unexport(bus);
    return rc;
#endif
}

#ifdef PXS_HAVE_UCX
/* Rank 0: wait for the file, check who may write it, read it whole. */
static int
read_contact(const char *path, double timeout, unsigned char **buf_out,
             size_t *len_out)
{
    pxsi_backoff_t b;
    pxsi_backoff_init(&b, timeout);
    int fd;
    while ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        if (errno != ENOENT)
            return pxsi_err(PXS_ERR_INVALID, SUBSYS, "contact file %s: %s", path,
                            strerror(errno));
        if (pxsi_backoff_expired(&b))
            return pxsi_err(PXS_ERR_TIMEDOUT, SUBSYS,
                            "contact file %s: not there after %.1f s", path,
                            timeout);
        pxsi_backoff_pause(&b);
    }
    struct stat sb;
    int rc = PXS_OK;
    if (fstat(fd, &sb) != 0)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "contact file %s: fstat: %s", path,
                      strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                      "contact file %s: not a regular file", path);
    else if (sb.st_uid != geteuid())
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                      "contact file %s is owned by uid %u, not by this user "
                      "(%u): refused",
                      path, (unsigned)sb.st_uid, (unsigned)geteuid());
    else if (sb.st_mode & (S_IWGRP | S_IWOTH))
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                      "contact file %s is writable by %s (mode %03o): refused "
                      "(chmod 600)",
                      path, (sb.st_mode & S_IWOTH) ? "others" : "its group",
                      (unsigned)(sb.st_mode & 0777));
    else if ((size_t)sb.st_size < HDR + 4 || (size_t)sb.st_size > MAX_FILE)
        rc = pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                      "contact file %s: size %lld is not a contact file's",
                      path, (long long)sb.st_size);
    unsigned char *buf = NULL;
    size_t len = rc ? 0 : (size_t)sb.st_size;
    if (rc == PXS_OK && !(buf = malloc(len)))
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "contact file buffer");
    for (size_t done = 0; rc == PXS_OK && done < len;) {
        ssize_t r = read(fd, buf + done, len - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "contact file %s: short read",
                          path);
        else
            done += (size_t)r;
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    *buf_out = buf;
    *len_out = len;
    return PXS_OK;
}

/* Any rank: the file's fields; blob pointers into buf (each rank's store
 * part sblob/slen and bus part bblob/bl). */
struct contact {
    uint64_t nonce, token;
    uint32_t n, hasbus, aslots;
    const unsigned char **sblob, **bblob;
    size_t *slen, *bl;
};

static void
contact_free(struct contact *c)
{
    free(c->sblob);
    free(c->bblob);
    free(c->slen);
    free(c->bl);
}

static int
parse_contact(const unsigned char *f, size_t len, struct contact *c)
{
    uint32_t ver = 0, n = 0, crc = 0;
    memset(c, 0, sizeof *c);
    if (len < HDR + 4 || memcmp(f, magic, 8) != 0)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "not a proxystream contact file");
    memcpy(&crc, f + len - 4, 4);
    if (pxs_crc32c(0, f, len - 4) != crc)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "contact file checksum mismatch (damaged or "
                        "edited)");
    memcpy(&ver, f + 8, 4);
    memcpy(&n, f + 12, 4);
    memcpy(&c->nonce, f + 16, 8);
    memcpy(&c->token, f + 24, 8);
    memcpy(&c->hasbus, f + 112, 4);
    memcpy(&c->aslots, f + 116, 4);
    if (ver != VERSION)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "contact file version %u (this library: %u)", ver, VERSION);
    if (n == 0 || n > (1u << 24) || c->nonce == 0 ||
        (c->hasbus && (c->aslots == 0 || c->aslots > PXSI_SLOTS_MAX)))
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "contact file names %u ranks / nonce 0 / %u mailbox slots", n,
                        c->aslots);
    c->sblob = calloc(n, sizeof *c->sblob);
    c->bblob = calloc(n, sizeof *c->bblob);
    c->slen = calloc(n, sizeof *c->slen);
    c->bl = calloc(n, sizeof *c->bl);
    if (!c->sblob || !c->bblob || !c->slen || !c->bl) {
        contact_free(c);
        return pxsi_err(PXS_ERR_NOMEM, SUBSYS, "contact entries");
    }
    size_t at = HDR;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t l = 0, sl = 0;
        if (at + 8 > len - 4)
            goto bad;
        memcpy(&l, f + at, 8);
        if (l > len - 4 - at - 8 || l < 8)
            goto bad;
        memcpy(&sl, f + at + 8, 8);
        if (sl > l - 8)
            goto bad;
        c->sblob[i] = f + at + 16;
        c->slen[i] = (size_t)sl;
        c->bblob[i] = f + at + 16 + sl;
        c->bl[i] = (size_t)(l - 8 - sl);
        at += 8 + (size_t)l;
    }
    if (at != len - 4)
        goto bad;
    c->n = n;
    return PXS_OK;
bad:
    contact_free(c);
    return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "contact file entries are malformed");
}
#endif

int
pxs_attach(MPI_Comm comm, const char *path, const pxs_subscription_t *subs,
           size_t n_subs, double timeout, pxs_bus_t **bus_out,
           pxs_store_t **store_out)
{
    if (comm == MPI_COMM_NULL)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_attach: MPI_COMM_NULL");
    int rank = 0;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "pxs_attach: invalid communicator");
    int rc = PXS_OK;
    if ((n_subs && !subs) || (n_subs && !bus_out))
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                      "pxs_attach: %zu subscription(s) with subs or bus_out NULL",
                      n_subs);
    else if (!path || !*path || !store_out)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS,
                      "pxs_attach: no contact path or store_out");
    else if (timeout != timeout)
        rc = pxsi_err(PXS_ERR_INVALID, SUBSYS, "pxs_attach: timeout is NaN");
#ifndef PXS_HAVE_UCX
    if (rc == PXS_OK)
        rc = pxsi_err(PXS_ERR_NOTSUP, SUBSYS,
                      "pxs_attach: this library was built without UCX");
    return pxsi_agree(comm, rc);
#else
    rc = pxsi_agree(comm, rc);
    if (rc)
        return rc;
    double t0 = pxsi_now();
    unsigned char *f = NULL;
    uint64_t flen = 0;
    size_t got = 0;
    if (rank == 0) {
        rc = read_contact(path, timeout, &f, &got);
        flen = got;
    }
    rc = pxsi_agree_why(comm, rc);
    if (rc)
        return rc;
    int mrc = MPI_Bcast(&flen, 1, MPI_UINT64_T, 0, comm);
    rc = pxsi_agree(comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Bcast (contact size)"));
    if (rc == PXS_OK && rank != 0 && !(f = malloc(flen)))
        rc = pxsi_err(PXS_ERR_NOMEM, SUBSYS, "contact buffer");
    rc = pxsi_agree(comm, rc);
    if (rc == PXS_OK) {
        mrc = MPI_Bcast(f, (int)flen, MPI_BYTE, 0, comm);
        rc = pxsi_agree(comm,
                        pxsi_mpi_err(mrc, SUBSYS, "MPI_Bcast (contact file)"));
    }
    struct contact ct;
    memset(&ct, 0, sizeof ct);
    if (rc == PXS_OK)
        rc = pxsi_agree_why(comm, parse_contact(f, (size_t)flen, &ct));
    if (rc == PXS_OK && bus_out && !ct.hasbus)
        rc = pxsi_agree(comm, pxsi_err(PXS_ERR_INVALID, SUBSYS,
                                       "pxs_attach: %s exports a store only (no bus): "
                                       "pass bus_out NULL",
                                       path));
    MPI_Comm dup = MPI_COMM_NULL, bdup = MPI_COMM_NULL;
    if (rc == PXS_OK) {
        mrc = MPI_Comm_dup(comm, &dup);
        if (mrc == MPI_SUCCESS)
            mrc = MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
        rc = pxsi_agree(comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Comm_dup"));
    }
    void *st = NULL;
    if (rc == PXS_OK) {
        /* what is left of the timeout bounds the connection (at least 1 s) */
        double left = timeout < 0 ? 30.0 : timeout - (pxsi_now() - t0);
        rc = pxsi_ucx_attach(dup, ct.nonce, (int)ct.n, ct.sblob, ct.slen,
                             left < 1.0 ? 1.0 : left, &st);
        rc = pxsi_agree_why(dup, rc);
    }
    pxs_store_t *store = NULL;
    if (rc == PXS_OK)
        rc = pxsi_agree(dup, pxsi_store_adopt(dup, &pxsi_store_ucx_ops, st,
                                              ct.nonce, (int)ct.n, &store));
    if (rc == PXS_OK && bus_out) {
        mrc = MPI_Comm_dup(comm, &bdup);
        if (mrc == MPI_SUCCESS)
            mrc = MPI_Comm_set_errhandler(bdup, MPI_ERRORS_RETURN);
        rc = pxsi_agree(comm, pxsi_mpi_err(mrc, SUBSYS, "MPI_Comm_dup"));
        if (rc == PXS_OK) {
            double left = timeout < 0 ? 30.0 : timeout - (pxsi_now() - t0);
            /* bdup is the bus's from here on (freed on failure too) */
            rc = pxsi_xbus_attach(bdup, st, ct.token, ct.aslots, (int)ct.n, ct.bblob,
                                  ct.bl, subs, n_subs, left < 1.0 ? 1.0 : left, bus_out);
        }
        if (rc != PXS_OK) {
            (void)pxs_store_destroy(store);
            store = NULL;
            dup = MPI_COMM_NULL; /* the store's, freed by its destroy */
        }
    }
    if (rc == PXS_OK)
        *store_out = store;
    else if (store)
        dup = MPI_COMM_NULL;
    contact_free(&ct);
    free(f);
    if (rc && dup != MPI_COMM_NULL)
        MPI_Comm_free(&dup);
    return rc;
#endif
}
