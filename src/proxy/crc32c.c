/* CRC32C (Castagnoli, reflected poly 0x82F63B78). Uses the SSE4.2 crc32
 * instruction when the CPU has it, else slice-by-8 tables. Standard check
 * value: crc32c("123456789") = 0xE3069283.
 *
 * One crc32 stream is bound by the instruction's latency (3 cycles for 8
 * bytes); its throughput is one per cycle. So long buffers are cut into
 * blocks of three lanes, each lane's CRC computed by its own interleaved
 * stream (the first continuing the running CRC, the others from 0), and the
 * three joined by linearity: crc(s, A|B|C) = z(z(crc(s,A)) ^ crc(0,B)) ^
 * crc(0,C), where z is the CRC state after one lane of zero bytes: a linear
 * map on 32 bits, applied by four 256-entry tables built at first use.
 *
 * Where the CPU has VPCLMULQDQ with AVX-512 (carry-less multiply on four
 * 128-bit lanes), buffers of 1 KiB and more are first folded: 256 bytes
 * per step in four 512-bit accumulators, each 128-bit lane H:L (H the first
 * 8 bytes) moved D bytes ahead as H*K_H ^ L*K_L with K_H = x^(64+8D-1) and
 * K_L = x^(8D-1) mod P (the -1: a carry-less product of two reflected
 * operands comes out one bit short), XORed into the data D bytes later,
 * which keeps the message polynomial mod P. The running CRC state goes into
 * the first 4 bytes; the last 128 bits and the tail then go through crc32.
 * The constants are computed at first use (fold_k). */
#include <stdatomic.h>
#include <string.h>
#include <threads.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "proxystream/proxy.h"

static uint32_t crc_tab[8][256];
static int have_sse42;

#define LANE_LONG  4096 /* bytes per lane: blocks of 12 KiB */
#define LANE_SHORT 128  /* blocks of 384 bytes for the remainder */
/* z for one lane of zeros, by byte of the state */
static uint32_t zlong[4][256], zshort[4][256];
static int have_fold;
/* fold constants (K_H, K_L) for D = 256, 64, 48, 32, 16 bytes */
enum { KD256, KD64, KD48, KD32, KD16, KDN };
static uint64_t kfold[KDN][2];

/* x^n mod P, reflected (bit 31 - e holds x^e), as the 64-bit operand of a
 * carry-less multiply (bit 63 - e holds x^e). */
static uint64_t
fold_k(size_t n)
{
    uint32_t r = 1u << 31; /* x^0 */
    while (n--)
        r = (r >> 1) ^ ((r & 1) ? 0x82F63B78u : 0);
    return (uint64_t)r << 32;
}

/* The state after n zero bytes (slow: for building the z tables). */
static uint32_t
zeros_sw(uint32_t c, size_t n)
{
    while (n--)
        c = crc_tab[0][c & 0xff] ^ (c >> 8);
    return c;
}

static void
z_init(uint32_t z[4][256], size_t n)
{
    uint32_t basis[32];
    /* z(1 << k) for each bit; 8 zero bytes at a time via the 8 tables */
    for (int k = 0; k < 32; k++) {
        uint32_t c = 1u << k;
        size_t m = n;
        for (; m >= 8; m -= 8) {
            uint64_t w = c;
            c = crc_tab[7][w & 0xff] ^ crc_tab[6][(w >> 8) & 0xff] ^ crc_tab[5][(w >> 16) & 0xff] ^
                crc_tab[4][(w >> 24) & 0xff] ^ crc_tab[3][0] ^ crc_tab[2][0] ^ crc_tab[1][0] ^
                crc_tab[0][0];
        }
        basis[k] = zeros_sw(c, m);
    }
    for (int b = 0; b < 4; b++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t x = 0;
            for (int k = 0; k < 8; k++)
                if (v >> k & 1)
                    x ^= basis[8 * b + k];
            z[b][v] = x;
        }
}

static inline uint32_t
z_apply(uint32_t z[4][256], uint32_t c)
{
    return z[0][c & 0xff] ^ z[1][(c >> 8) & 0xff] ^ z[2][(c >> 16) & 0xff] ^ z[3][c >> 24];
}
static once_flag crc_once = ONCE_FLAG_INIT;
/* set (release) at the end of crc_init: the common path tests it instead
 * of calling call_once */
static atomic_int crc_ready;

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
    z_init(zlong, LANE_LONG);
    z_init(zshort, LANE_SHORT);
    static const size_t dist[KDN] = {256, 64, 48, 32, 16};
    for (int i = 0; i < KDN; i++) {
        kfold[i][0] = fold_k(64 + 8 * dist[i] - 1);
        kfold[i][1] = fold_k(8 * dist[i] - 1);
    }
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2");
    have_fold = have_sse42 && __builtin_cpu_supports("avx512f") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("vpclmulqdq") &&
                __builtin_cpu_supports("pclmul");
#endif
    atomic_store_explicit(&crc_ready, 1, memory_order_release);
}

static uint32_t
crc_sw(uint32_t crc, const unsigned char *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc; /* little-endian hosts (x86-64, aarch64) */
        crc = crc_tab[7][w & 0xff] ^ crc_tab[6][(w >> 8) & 0xff] ^
              crc_tab[5][(w >> 16) & 0xff] ^ crc_tab[4][(w >> 24) & 0xff] ^
              crc_tab[3][(w >> 32) & 0xff] ^ crc_tab[2][(w >> 40) & 0xff] ^
              crc_tab[1][(w >> 48) & 0xff] ^ crc_tab[0][(w >> 56) & 0xff];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* Whole blocks of three lanes of `lane` bytes (a multiple of 8; p is
 * 8-byte aligned): three interleaved crc32 streams per block, joined. */
__attribute__((target("sse4.2"))) static inline uint64_t
crc_hw3(uint64_t c, const unsigned char **pp, size_t *lenp, size_t lane, uint32_t z[4][256])
{
    const unsigned char *p = *pp;
    size_t len = *lenp;
    while (len >= 3 * lane) {
        uint64_t a = c, b = 0, d = 0;
        const unsigned char *q = p + lane, *r = p + 2 * lane;
        for (size_t i = 0; i < lane; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, q + i, 8);
            memcpy(&w2, r + i, 8);
            a = __builtin_ia32_crc32di(a, w0);
            b = __builtin_ia32_crc32di(b, w1);
            d = __builtin_ia32_crc32di(d, w2);
        }
        c = z_apply(z, z_apply(z, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
        p += 3 * lane;
        len -= 3 * lane;
    }
    *pp = p;
    *lenp = len;
    return c;
}

#define FOLD_TARGET __attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))

FOLD_TARGET static inline __m512i
fold512(__m512i x, __m512i k, __m512i next)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
                                     _mm512_clmulepi64_epi128(x, k, 0x11), next, 0x96);
}

FOLD_TARGET static inline __m128i
fold128(__m128i x, int kd)
{
    __m128i k = _mm_set_epi64x((long long)kfold[kd][1], (long long)kfold[kd][0]);
    return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

/* Fold all but the last < 64 bytes (at least 1 KiB, else nothing done). */
FOLD_TARGET static uint64_t
crc_fold(uint64_t c, const unsigned char **pp, size_t *lenp)
{
    const unsigned char *p = *pp;
    size_t len = *lenp;
    if (len < 1024)
        return c;
    __m512i k256 = _mm512_set_epi64((long long)kfold[KD256][1], (long long)kfold[KD256][0],
                                    (long long)kfold[KD256][1], (long long)kfold[KD256][0],
                                    (long long)kfold[KD256][1], (long long)kfold[KD256][0],
                                    (long long)kfold[KD256][1], (long long)kfold[KD256][0]);
    __m512i k64 = _mm512_set_epi64((long long)kfold[KD64][1], (long long)kfold[KD64][0],
                                   (long long)kfold[KD64][1], (long long)kfold[KD64][0],
                                   (long long)kfold[KD64][1], (long long)kfold[KD64][0],
                                   (long long)kfold[KD64][1], (long long)kfold[KD64][0]);
    __m512i x0 = _mm512_loadu_si512((const void *)p);
    __m512i x1 = _mm512_loadu_si512((const void *)(p + 64));
    __m512i x2 = _mm512_loadu_si512((const void *)(p + 128));
    __m512i x3 = _mm512_loadu_si512((const void *)(p + 192));
    x0 = _mm512_xor_si512(x0, _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, (long long)(uint32_t)c));
    p += 256;
    len -= 256;
    while (len >= 256) {
        x0 = fold512(x0, k256, _mm512_loadu_si512((const void *)p));
        x1 = fold512(x1, k256, _mm512_loadu_si512((const void *)(p + 64)));
        x2 = fold512(x2, k256, _mm512_loadu_si512((const void *)(p + 128)));
        x3 = fold512(x3, k256, _mm512_loadu_si512((const void *)(p + 192)));
        p += 256;
        len -= 256;
    }
    x1 = fold512(x0, k64, x1);
    x2 = fold512(x1, k64, x2);
    x3 = fold512(x2, k64, x3);
    while (len >= 64) {
        x3 = fold512(x3, k64, _mm512_loadu_si512((const void *)p));
        p += 64;
        len -= 64;
    }
    __m128i x = _mm512_extracti32x4_epi32(x3, 3);
    x = _mm_xor_si128(x, fold128(_mm512_extracti32x4_epi32(x3, 0), KD48));
    x = _mm_xor_si128(x, fold128(_mm512_extracti32x4_epi32(x3, 1), KD32));
    x = _mm_xor_si128(x, fold128(_mm512_extracti32x4_epi32(x3, 2), KD16));
    c = __builtin_ia32_crc32di(0, (uint64_t)_mm_cvtsi128_si64(x));
    c = __builtin_ia32_crc32di(c, (uint64_t)_mm_extract_epi64(x, 1));
    *pp = p;
    *lenp = len;
    return c;
}

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const unsigned char *p, size_t len, int fold)
{
    uint64_t c = crc;
    if (len < 3 * LANE_SHORT) {
        /* short (a 60-byte proxy): no lanes to interleave, and unaligned
         * 8-byte loads cost what aligned ones do, so no byte-wise peel;
         * 32 bytes per loop step */
        for (; len >= 32; p += 32, len -= 32) {
            uint64_t w[4];
            memcpy(w, p, 32);
            c = __builtin_ia32_crc32di(c, w[0]);
            c = __builtin_ia32_crc32di(c, w[1]);
            c = __builtin_ia32_crc32di(c, w[2]);
            c = __builtin_ia32_crc32di(c, w[3]);
        }
        for (; len >= 8; p += 8, len -= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            c = __builtin_ia32_crc32di(c, w);
        }
        if (len >= 4) {
            uint32_t w;
            memcpy(&w, p, 4);
            c = __builtin_ia32_crc32si((uint32_t)c, w);
            p += 4;
            len -= 4;
        }
        while (len--)
            c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        return (uint32_t)c;
    }
    while (len && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        len--;
    }
    if (fold)
        c = crc_fold(c, &p, &len);
    c = crc_hw3(c, &p, &len, LANE_LONG, zlong);
    c = crc_hw3(c, &p, &len, LANE_SHORT, zshort);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
}
#endif

#ifdef PXS_TEST_HOOKS
/* One path, for tests comparing them: 0 slice-by-8, 1 crc32 (3 lanes), 2
 * folding then crc32. -1 when this CPU has not got that path. */
int pxsi_crc32c_path(int path, uint32_t crc, const void *buf, size_t len, uint32_t *out);
int
pxsi_crc32c_path(int path, uint32_t crc, const void *buf, size_t len, uint32_t *out)
{
    call_once(&crc_once, crc_init);
    if (path == 0) {
        *out = ~crc_sw(~crc, buf, len);
        return 0;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    if ((path == 1 && have_sse42) || (path == 2 && have_fold)) {
        *out = ~crc_hw(~crc, buf, len, path == 2);
        return 0;
    }
#endif
    return -1;
}
#endif

uint32_t
pxs_crc32c(uint32_t crc, const void *buf, size_t len)
{
    if (__builtin_expect(!atomic_load_explicit(&crc_ready, memory_order_acquire), 0))
        call_once(&crc_once, crc_init);
    if (!buf)
        return crc;
    crc = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_sse42)
        return ~crc_hw(crc, buf, len, have_fold);
#endif
    return ~crc_sw(crc, buf, len);
}
