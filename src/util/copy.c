/* The store's payload copy (docs/DESIGN.md, section "Payload copies"; the
 * declarations and contract: util.h). Below the streaming threshold the
 * copy is glibc memcpy in pieces (faster than one call for copies that fit
 * in the cache, docs/DESIGN.md "Arena and allocator"); from it on, streaming
 * stores: a piecewise memcpy never reaches glibc's own non-temporal
 * threshold, and its ordinary stores read every destination line in first,
 * one third more DRAM traffic (issue 15: 256 MiB resolve and put measured
 * 0.66-0.77 of one memcpy call). */
#include <unistd.h>

#include "util/util.h"

#if defined(__x86_64__) || defined(__SSE2__)
#include <emmintrin.h>
#define PXSI_HAVE_STREAM 1
#else
#define PXSI_HAVE_STREAM 0
#endif

static _Atomic size_t nt_bytes; /* 0 until computed */

size_t
pxsi_copy_nt_bytes(void)
{
    size_t t = atomic_load_explicit(&nt_bytes, memory_order_relaxed);
    if (PXSI_LIKELY(t))
        return t;
    long llc = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
    llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
#ifdef _SC_LEVEL2_CACHE_SIZE
    if (llc <= 0)
        llc = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    t = llc > 0 ? (size_t)llc / 2 : (size_t)32 << 20;
    if (t < ((size_t)4 << 20))
        t = (size_t)4 << 20;
    atomic_store_explicit(&nt_bytes, t, memory_order_relaxed); /* same value in every thread */
    return t;
}

void
pxsi_copy_nt(void *dst, const void *src, size_t len)
{
#if PXSI_HAVE_STREAM
    unsigned char *d = dst;
    const unsigned char *s = src;
    /* head: up to dst's next 64-byte boundary, so each streamed line is whole */
    size_t head = (size_t)(-(uintptr_t)d & 63u);
    if (head > len)
        head = len;
    if (head) {
        memcpy(d, s, head);
        d += head;
        s += head;
        len -= head;
    }
    for (; len >= 64; len -= 64, d += 64, s += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + 32));
        __m128i e = _mm_loadu_si128((const __m128i *)(const void *)(s + 48));
        _mm_stream_si128((__m128i *)(void *)d, a);
        _mm_stream_si128((__m128i *)(void *)(d + 16), b);
        _mm_stream_si128((__m128i *)(void *)(d + 32), c);
        _mm_stream_si128((__m128i *)(void *)(d + 48), e);
    }
    if (len)
        memcpy(d, s, len);
    /* streaming stores are weakly ordered: complete them before anything
     * the caller publishes next (the store's release fences are compiler
     * barriers only on x86) */
    _mm_sfence();
#else
    if (len)
        memcpy(dst, src, len);
#endif
}

void
pxsi_copy_big(void *dst, const void *src, size_t len, size_t piece)
{
    if (PXSI_HAVE_STREAM && len >= pxsi_copy_nt_bytes()) {
        pxsi_copy_nt(dst, src, len);
        return;
    }
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (len) {
        size_t n = len < piece ? len : piece;
        memcpy(d, s, n);
        d += n;
        s += n;
        len -= n;
    }
}
