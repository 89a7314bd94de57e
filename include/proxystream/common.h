/** @file proxystream/common.h
 *  Export macros and basic types shared by every proxystream header. */
#ifndef PROXYSTREAM_COMMON_H
#define PROXYSTREAM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(PXS_BUILDING) && !defined(PXS_STATIC) && defined(__GNUC__)
#define PXS_API __attribute__((visibility("default")))
#elif defined(__GNUC__)
#define PXS_API __attribute__((visibility("default")))
#else
#define PXS_API
#endif

#if defined(__GNUC__)
#define PXS_NODISCARD __attribute__((warn_unused_result))
#else
#define PXS_NODISCARD
#endif

#define PXS_VERSION_MAJOR 0
#define PXS_VERSION_MINOR 1
#define PXS_VERSION_PATCH 0

/** Timeouts are in seconds (double): 0 = non-blocking poll, < 0 = wait forever. */
#define PXS_WAIT_FOREVER (-1.0)
/** Sentinel of the timeout fields whose 0 is meaningful (pxs_store_opts_t.put_timeout,
 *  pxs_put_opts_t.timeout, pxs_producer_opts_t.put_timeout): "use the default"
 *  (the environment's, or the store's). Set by the _opts_init macros. */
#define PXS_TIMEOUT_DEFAULT (-2.0)

#endif
