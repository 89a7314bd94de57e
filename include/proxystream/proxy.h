/** @file proxystream/proxy.h
 *  The proxy: a 64-byte, POD, wire-stable reference to an object in a store.
 *
 *  Wire layout, format version 2 (little-endian, offsets in bytes):
 *   0  u8  version (PXS_PROXY_VERSION)     1  u8  connector kind (pxs_connector_kind)
 *   2  u16 flags (PXS_PROXY_F_*)           4  u32 owner (rank in the store's communicator)
 *   8  u64 store nonce: the random identity of the store instance that made
 *          the proxy (never 0 for a store's proxy)
 *  16  u64 key or arena offset            24  u64 size in bytes
 *  32  u64 generation: slot (24 bits) << 40 | slot generation (40 bits, odd = live)
 *  40  u64 sequence number (per producer, topic)
 *  48  u32 payload CRC32C (if PXS_PROXY_F_PAYLOAD_CRC)
 *  52  u32 resolve budget hint            56  u32 topic id (0 if none)
 *  60  u32 CRC32C of bytes 0..59
 *  A proxy can be sent as 64 MPI_BYTEs, written to a file, or turned into text.
 *  A proxy names one object of one store instance: given to any other store
 *  (another store, job or run) it resolves to PXS_ERR_STALE, never to bytes.
 *  Version 1 proxies (u32 store id, 32-bit generations) are refused with
 *  PXS_ERR_CORRUPT. */
#ifndef PROXYSTREAM_PROXY_H
#define PROXYSTREAM_PROXY_H

#include "proxystream/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PXS_PROXY_SIZE    64
#define PXS_PROXY_VERSION 2
/** Length of the text form including the terminating NUL: "pxs2:" + 128 hex + NUL. */
#define PXS_PROXY_TEXT_LEN 134

/** Connector kinds (stored in the proxy). */
enum pxs_connector_kind {
    PXS_CONN_NONE = 0,
    PXS_CONN_LOCAL = 1, /**< one process, heap arena (unit tests, threads) */
    PXS_CONN_RMA = 2,   /**< MPI RMA window arena (+ node shared memory) */
    PXS_CONN_UCX = 3,   /**< UCX registered memory (built when UCX is found) */
    PXS_CONN_HDF5 = 4,  /**< reserved: durable HDF5 store */
    PXS_CONN_INLINE = 5, /**< a payload that travelled inside its event: held by
                              the process that received the event (offset = its
                              entry there); see docs/DESIGN.md "Inline chunks" */
    PXS_CONN_MAX_ = 6
};

#define PXS_PROXY_F_PAYLOAD_CRC 0x0001u /**< payload_crc is valid and checked */
#define PXS_PROXY_F_KEEP        0x0002u /**< kept until evicted (no resolve budget) */
#define PXS_PROXY_F_LENT        0x0004u /**< a lent buffer (pxs_store_put_ref):
                                             offset is the owner's address */
#define PXS_PROXY_F_MASK_       0x0007u /**< all defined flags */

/** The proxy itself: opaque bytes, copy by value. */
typedef struct pxs_proxy {
    unsigned char bytes[PXS_PROXY_SIZE];
} pxs_proxy_t;

/** Decoded fields of a proxy. */
typedef struct pxs_proxy_info {
    uint8_t version;
    uint8_t kind;
    uint16_t flags;
    uint32_t owner;
    uint64_t store_nonce; /**< store instance identity (0: not a store's proxy) */
    uint32_t topic;
    uint64_t offset;
    uint64_t size;
    uint64_t generation;
    uint64_t seq;
    uint32_t payload_crc;
    uint32_t budget;
} pxs_proxy_info_t;

/** Build a proxy from fields (version is forced to PXS_PROXY_VERSION; the
 *  checksum is computed). Local, non-blocking.
 *  @return PXS_OK, PXS_ERR_INVALID (NULL, unknown kind or flags). */
PXS_API PXS_NODISCARD int pxs_proxy_encode(const pxs_proxy_info_t *info,
                                           pxs_proxy_t *proxy_out);

/** Validate `len` bytes as a proxy and decode it (info_out may be NULL).
 *  Every field is checked: length, version, kind, flags, checksum. A proxy of
 *  an older format version is refused (PXS_ERR_CORRUPT, detail names the
 *  version). Whether the proxy belongs to a given store is checked by the
 *  store (PXS_ERR_STALE for another store instance's proxy).
 *  @return PXS_OK, PXS_ERR_INVALID (NULL), PXS_ERR_CORRUPT (anything else). */
PXS_API PXS_NODISCARD int pxs_proxy_decode(const void *buf, size_t len,
                                           pxs_proxy_info_t *info_out);

/** Check a proxy value (same as pxs_proxy_decode(p->bytes, 64, NULL)). */
PXS_API PXS_NODISCARD int pxs_proxy_validate(const pxs_proxy_t *proxy);

/** Text form "pxs2:<128 lowercase hex>" into buf (cap >= PXS_PROXY_TEXT_LEN).
 *  @return PXS_OK, PXS_ERR_INVALID, PXS_ERR_TRUNC (cap too small),
 *          PXS_ERR_CORRUPT (the proxy does not validate). */
PXS_API PXS_NODISCARD int pxs_proxy_to_text(const pxs_proxy_t *proxy, char *buf,
                                            size_t cap);

/** Parse the text form (surrounding whitespace allowed) and validate it.
 *  A version 1 text proxy ("pxs1:...") is refused with PXS_ERR_CORRUPT.
 *  @return PXS_OK, PXS_ERR_INVALID (NULL), PXS_ERR_CORRUPT. */
PXS_API PXS_NODISCARD int pxs_proxy_from_text(const char *text,
                                              pxs_proxy_t *proxy_out);

/** CRC32C (Castagnoli) of a buffer, continuing from `crc` (start with 0). */
PXS_API uint32_t pxs_crc32c(uint32_t crc, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
