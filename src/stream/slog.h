/* Stream log writer (src/stream/slog.c), used by the producer. Not
 * installed. See docs/DESIGN.md, section "Stream log and replay". */
#ifndef PXSI_SLOG_H
#define PXSI_SLOG_H

#include <stddef.h>
#include <stdint.h>

#include "proxystream/proxy.h"

typedef struct pxsi_slog pxsi_slog_t;

/* A new log file for `producer` in directory dir (created if missing):
 * PXS_OK, PXS_ERR_IO (HDF5's text in the detail), PXS_ERR_NOTSUP (no HDF5). */
int pxsi_slog_open(const char *dir, int producer, pxsi_slog_t **out);
/* Append one event (end = 0) or the END of `topic` (end = 1, proxy NULL),
 * flushed to the OS before it returns. */
int pxsi_slog_event(pxsi_slog_t *l, uint32_t topic, uint64_t seq, const pxs_proxy_t *proxy,
                    const void *meta, size_t meta_len, int end);
void pxsi_slog_close(pxsi_slog_t *l);

#endif
