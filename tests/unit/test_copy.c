/* The store's payload copy (src/util/copy.c, issue 15):
 *  - pxsi_copy_nt (streaming stores) and pxsi_copy (memcpy in pieces below
 *    the streaming threshold) copy exactly len bytes for every len 0..1100
 *    and every source and destination offset 0..63 (relative offsets mod 64
 *    all covered), touching no byte before or after the destination;
 *  - pieces of 1, 7, 64 and 4096 bytes, and lengths around the pieces;
 *  - one copy at the streaming threshold (pxsi_copy_nt_bytes() + 4097 B at
 *    page offset 16, as malloc'd buffers lie) takes the streaming path and
 *    is exact;
 *  - the threshold is at least 4 MiB. */
#include <stdlib.h>

#include "pxs_test.h"
#include "util/util.h"

#define GUARD 64

static unsigned char
pat(size_t i, unsigned seed)
{
    return (unsigned char)((i * 131u + seed * 17u + (i >> 8)) & 0xff);
}

/* Copy len bytes from src + so into dst + doff with fn/piece and check dst
 * and its guards. */
static void
one(unsigned char *dbuf, const unsigned char *sbuf, size_t so, size_t doff, size_t len, int nt,
    size_t piece, unsigned seed)
{
    memset(dbuf, 0xa5, len + 2 * GUARD);
    unsigned char *d = dbuf + GUARD + doff;
    if (nt)
        pxsi_copy_nt(d, sbuf + so, len);
    else
        pxsi_copy(d, sbuf + so, len, piece);
    for (size_t i = 0; i < GUARD + doff; i++)
        if (dbuf[i] != 0xa5) {
            fprintf(stderr,
                    "len %zu so %zu doff %zu nt %d piece %zu: byte %zd before dst written\n", len,
                    so, doff, nt, piece, (ssize_t)i - (ssize_t)(GUARD + doff));
            CHECK(0);
        }
    for (size_t i = 0; i < len; i++)
        if (d[i] != pat(so + i, seed)) {
            fprintf(stderr, "len %zu so %zu doff %zu nt %d piece %zu: byte %zu wrong\n", len, so,
                    doff, nt, piece, i);
            CHECK(0);
        }
    for (size_t i = 0; i < GUARD - doff; i++)
        if (d[len + i] != 0xa5) {
            fprintf(stderr, "len %zu so %zu doff %zu nt %d piece %zu: byte %zu after dst written\n",
                    len, so, doff, nt, piece, i);
            CHECK(0);
        }
}

static void
sweep(void)
{
    const size_t maxlen = 1100;
    unsigned char *s = NULL, *d = NULL;
    CHECK(posix_memalign((void **)&s, 4096, maxlen + 128) == 0);
    CHECK(posix_memalign((void **)&d, 4096, maxlen + 2 * GUARD + 128) == 0);
    for (size_t i = 0; i < maxlen + 128; i++)
        s[i] = pat(i, 1);
    for (size_t len = 0; len <= maxlen; len++)
        for (size_t so = 0; so < 64; so += (len < 300 ? 1 : 7))
            for (size_t doff = 0; doff < 64; doff += (len < 300 ? 1 : 5)) {
                one(d, s, so, doff, len, 1, 0, 1);
                one(d, s, so, doff, len, 0, 64, 1);
            }
    /* pieces */
    const size_t pieces[] = {1, 7, 64, 4096};
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++)
        for (size_t len = 0; len <= maxlen; len += 13)
            one(d, s, 3, 5, len, 0, pieces[p], 1);
    free(s);
    free(d);
}

static void
at_threshold(void)
{
    size_t t = pxsi_copy_nt_bytes();
    CHECK(t >= ((size_t)4 << 20));
    CHECK(pxsi_copy_nt_bytes() == t);
    size_t len = t + 4097;
    unsigned char *s = NULL, *d = NULL;
    CHECK(posix_memalign((void **)&s, 4096, len + 4096) == 0);
    CHECK(posix_memalign((void **)&d, 4096, len + 4096) == 0);
    for (size_t i = 0; i < len; i++)
        s[16 + i] = pat(i, 2);
    memset(d, 0x5a, len + 4096);
    pxsi_copy(d + 16, s + 16, len, (size_t)256 << 10);
    for (size_t i = 0; i < 16; i++)
        CHECK(d[i] == 0x5a);
    for (size_t i = 0; i < len; i++)
        if (d[16 + i] != pat(i, 2)) {
            fprintf(stderr, "threshold copy: byte %zu of %zu wrong\n", i, len);
            CHECK(0);
        }
    for (size_t i = 16 + len; i < len + 4096; i++)
        CHECK(d[i] == 0x5a);
    free(s);
    free(d);
}

int
main(void)
{
    sweep();
    at_threshold();
    printf("payload copy OK\n");
    return 0;
}
