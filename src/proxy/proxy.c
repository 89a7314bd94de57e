/* The proxy wire format: encode, validate/decode, text form.
 * Layout: see include/proxystream/proxy.h (format version 2). Every decoder
 * checks length, version, kind, flags and the CRC32C over bytes 0..59, so a
 * truncated, forged or bit-flipped proxy is PXS_ERR_CORRUPT. A version 1
 * proxy (binary or "pxs1:" text) is refused with its own detail: its 32-bit
 * store id and generation cannot tell store instances apart (see
 * docs/DESIGN.md, section "Object identity"). */
#include <ctype.h>
#include <stdatomic.h>
#include <string.h>

#include "util/util.h"
#include "proxystream/proxy.h"

#define SUBSYS "proxy"

_Static_assert(sizeof(pxs_proxy_t) == PXS_PROXY_SIZE, "proxy must be 64 bytes");

enum {
    OFF_VERSION = 0, OFF_KIND = 1, OFF_FLAGS = 2, OFF_OWNER = 4, OFF_NONCE = 8,
    OFF_OFFSET = 16, OFF_SIZE = 24, OFF_GEN = 32, OFF_SEQ = 40, OFF_PCRC = 48,
    OFF_BUDGET = 52, OFF_TOPIC = 56, OFF_CRC = 60
};

#define V1_REFUSED                                                                     \
    "proxy format version 1 is no longer accepted (this library reads version 2: "     \
    "version 1 proxies cannot tell store instances apart); make a new proxy"

/* The CRC32C over a proxy's bytes 0..59 (encode and every decode): with
 * SSE4.2, seven 8-byte and one 4-byte crc32 instructions inline (unaligned
 * loads), instead of pxs_crc32c's general path (its once-check, alignment
 * prologue and lane setup cost more than the 60 bytes). Same value as
 * pxs_crc32c(0, b, 60): tested in unit.proxy.decode. */
#if defined(__x86_64__) && defined(__GNUC__)
static _Atomic int crc_hw_ok = -1; /* -1 unknown, 0 no, 1 SSE4.2 */

__attribute__((target("sse4.2"))) static uint32_t
proxy_crc_hw(const unsigned char *b)
{
    /* unrolled by hand: -O2 kept the loop, whose counter cost ~20 of ~35
     * instructions (issue 15) */
#define PROXY_CRC_WORD(i)                                                      \
    do {                                                                       \
        uint64_t w;                                                            \
        memcpy(&w, b + (i), 8);                                                \
        c = __builtin_ia32_crc32di(c, w);                                      \
    } while (0)
    uint64_t c = 0xffffffffu;
    PROXY_CRC_WORD(0);
    PROXY_CRC_WORD(8);
    PROXY_CRC_WORD(16);
    PROXY_CRC_WORD(24);
    PROXY_CRC_WORD(32);
    PROXY_CRC_WORD(40);
    PROXY_CRC_WORD(48);
#undef PROXY_CRC_WORD
    uint32_t t;
    memcpy(&t, b + 56, 4);
    return ~__builtin_ia32_crc32si((uint32_t)c, t);
}
#endif

static inline uint32_t
proxy_crc(const unsigned char *b)
{
#if defined(__x86_64__) && defined(__GNUC__)
    int hw = atomic_load_explicit(&crc_hw_ok, memory_order_relaxed);
    if (hw < 0) {
        __builtin_cpu_init();
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        atomic_store_explicit(&crc_hw_ok, hw, memory_order_relaxed);
    }
    if (hw)
        return proxy_crc_hw(b);
#endif
    return pxs_crc32c(0, b, OFF_CRC);
}

static int
kind_ok(unsigned k)
{
    return k > PXS_CONN_NONE && k < PXS_CONN_MAX_;
}

int
pxs_proxy_encode(const pxs_proxy_info_t *info, pxs_proxy_t *proxy_out)
{
    if (!info || !proxy_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "NULL argument to pxs_proxy_encode");
    if (!kind_ok(info->kind))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "unknown connector kind %u", info->kind);
    if (info->flags & ~PXS_PROXY_F_MASK_)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "unknown flags 0x%x", info->flags);
    /* built in an aligned buffer, stored to the caller's in one copy */
    union {
        unsigned char b[PXS_PROXY_SIZE];
        uint64_t w[PXS_PROXY_SIZE / 8];
    } tmp;
    tmp.b[OFF_VERSION] = PXS_PROXY_VERSION;
    tmp.b[OFF_KIND] = info->kind;
    pxsi_put_le16(tmp.b + OFF_FLAGS, info->flags);
    pxsi_put_le32(tmp.b + OFF_OWNER, info->owner);
    pxsi_put_le64(tmp.b + OFF_NONCE, info->store_nonce);
    pxsi_put_le32(tmp.b + OFF_TOPIC, info->topic);
    pxsi_put_le64(tmp.b + OFF_OFFSET, info->offset);
    pxsi_put_le64(tmp.b + OFF_SIZE, info->size);
    pxsi_put_le64(tmp.b + OFF_GEN, info->generation);
    pxsi_put_le64(tmp.b + OFF_SEQ, info->seq);
    pxsi_put_le32(tmp.b + OFF_PCRC, info->payload_crc);
    pxsi_put_le32(tmp.b + OFF_BUDGET, info->budget);
    pxsi_put_le32(tmp.b + OFF_CRC, proxy_crc(tmp.b));
    memcpy(proxy_out->bytes, tmp.b, sizeof tmp.b);
    return PXS_OK;
}

int
pxs_proxy_decode(const void *buf, size_t len, pxs_proxy_info_t *info_out)
{
    if (!buf)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "NULL buffer");
    const unsigned char *b = buf;
    if (len != PXS_PROXY_SIZE)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "proxy is %zu bytes, expected %d", len,
                        PXS_PROXY_SIZE);
    if (b[OFF_VERSION] == 1)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, V1_REFUSED);
    if (b[OFF_VERSION] != PXS_PROXY_VERSION)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                        "unknown proxy format version %u (this library reads version %d)",
                        b[OFF_VERSION], PXS_PROXY_VERSION);
    if (proxy_crc(b) != pxsi_get_le32(b + OFF_CRC))
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "proxy checksum mismatch");
    if (!kind_ok(b[OFF_KIND]))
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "unknown connector kind %u", b[OFF_KIND]);
    uint16_t flags = pxsi_get_le16(b + OFF_FLAGS);
    if (flags & ~PXS_PROXY_F_MASK_)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "unknown flags 0x%x", flags);
    if (!(flags & PXS_PROXY_F_PAYLOAD_CRC) && pxsi_get_le32(b + OFF_PCRC) != 0)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "payload checksum set without its flag");
    if (info_out) {
        pxs_proxy_info_t in;
        in.version = b[OFF_VERSION];
        in.kind = b[OFF_KIND];
        in.flags = flags;
        in.owner = pxsi_get_le32(b + OFF_OWNER);
        in.store_nonce = pxsi_get_le64(b + OFF_NONCE);
        in.topic = pxsi_get_le32(b + OFF_TOPIC);
        in.offset = pxsi_get_le64(b + OFF_OFFSET);
        in.size = pxsi_get_le64(b + OFF_SIZE);
        in.generation = pxsi_get_le64(b + OFF_GEN);
        in.seq = pxsi_get_le64(b + OFF_SEQ);
        in.payload_crc = pxsi_get_le32(b + OFF_PCRC);
        in.budget = pxsi_get_le32(b + OFF_BUDGET);
        *info_out = in;
    }
    return PXS_OK;
}

int
pxs_proxy_validate(const pxs_proxy_t *proxy)
{
    if (!proxy)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "NULL proxy");
    return pxs_proxy_decode(proxy->bytes, PXS_PROXY_SIZE, NULL);
}

static const char hexd[] = "0123456789abcdef";
#define TEXT_PREFIX     "pxs2:"
#define TEXT_PREFIX_V1  "pxs1:"
#define TEXT_PREFIX_LEN 5
_Static_assert(PXS_PROXY_TEXT_LEN == TEXT_PREFIX_LEN + 2 * PXS_PROXY_SIZE + 1,
               "text length: prefix, two hex digits per byte, NUL");

int
pxs_proxy_to_text(const pxs_proxy_t *proxy, char *buf, size_t cap)
{
    if (!proxy || !buf)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "NULL argument to pxs_proxy_to_text");
    if (cap < PXS_PROXY_TEXT_LEN)
        return pxsi_err(PXS_ERR_TRUNC, SUBSYS, "text buffer of %zu bytes, need %d", cap,
                        PXS_PROXY_TEXT_LEN);
    int rc = pxs_proxy_validate(proxy);
    if (rc != PXS_OK)
        return rc;
    memcpy(buf, TEXT_PREFIX, TEXT_PREFIX_LEN);
    for (int i = 0; i < PXS_PROXY_SIZE; i++) {
        buf[TEXT_PREFIX_LEN + 2 * i] = hexd[proxy->bytes[i] >> 4];
        buf[TEXT_PREFIX_LEN + 2 * i + 1] = hexd[proxy->bytes[i] & 15];
    }
    buf[PXS_PROXY_TEXT_LEN - 1] = '\0';
    return PXS_OK;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
pxs_proxy_from_text(const char *text, pxs_proxy_t *proxy_out)
{
    if (!text || !proxy_out)
        return pxsi_err(PXS_ERR_INVALID, SUBSYS, "NULL argument to pxs_proxy_from_text");
    while (isspace((unsigned char)*text))
        text++;
    if (strncmp(text, TEXT_PREFIX_V1, TEXT_PREFIX_LEN) == 0)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, V1_REFUSED);
    if (strncmp(text, TEXT_PREFIX, TEXT_PREFIX_LEN) != 0)
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "text proxy must start with \"" TEXT_PREFIX "\"");
    text += TEXT_PREFIX_LEN;
    pxs_proxy_t p;
    for (int i = 0; i < PXS_PROXY_SIZE; i++) {
        int hi = hexval(text[2 * i]);
        int lo = hi < 0 ? -1 : hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return pxsi_err(PXS_ERR_CORRUPT, SUBSYS,
                            "text proxy truncated or not hex at digit %d", 2 * i);
        p.bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    const char *rest = text + 2 * PXS_PROXY_SIZE;
    while (isspace((unsigned char)*rest))
        rest++;
    if (*rest != '\0')
        return pxsi_err(PXS_ERR_CORRUPT, SUBSYS, "trailing characters after text proxy");
    int rc = pxs_proxy_validate(&p);
    if (rc != PXS_OK)
        return rc;
    *proxy_out = p;
    return PXS_OK;
}
