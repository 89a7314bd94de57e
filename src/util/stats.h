/* Statistics output shared by every handle (src/util/stats.c): the
 * PXS_STATS mode, the sized-struct copy of the public stats structs, and a
 * line builder that writes one handle's counters either as text
 * (`pxs[rank] stats bus: sent=1 ...`) or as one JSON object per line. See
 * docs/DESIGN.md, section "Logging and statistics". Not installed. */
#ifndef PXSI_UTIL_STATS_H
#define PXSI_UTIL_STATS_H

#include <stddef.h>
#include <stdint.h>

enum { PXSI_STATS_OFF = 0, PXSI_STATS_TEXT = 1, PXSI_STATS_JSON = 2 };
/* PXS_STATS: off, 1 (text lines) or json; read at each destroy. */
int pxsi_stats_mode(void);

/* The caller's struct (its struct_size says how much of it there is) gets
 * the prefix of the library's full struct `full` that fits; struct_size is
 * kept. PXS_ERR_INVALID (under subsys) for NULL or a struct_size below
 * sizeof(size_t). */
int pxsi_stats_check(const void *out, const char *subsys, const char *what);
void pxsi_stats_copy(void *out, const void *full, size_t full_size);
/* The body of every pxs_X_stats_init_: zero `size` bytes, stamp struct_size. */
int pxsi_stats_init(void *s, size_t size, const char *subsys, const char *what);

/* One output line. */
typedef struct pxsi_statline {
    char buf[4096];
    size_t n;
    int json;
    int first;
} pxsi_statline_t;
void pxsi_sl_begin(pxsi_statline_t *l, int mode, const char *handle);
void pxsi_sl_u64(pxsi_statline_t *l, const char *key, uint64_t v);
void pxsi_sl_i64(pxsi_statline_t *l, const char *key, int64_t v);
void pxsi_sl_dbl(pxsi_statline_t *l, const char *key, double v);
void pxsi_sl_u64s(pxsi_statline_t *l, const char *key, const uint64_t *v, size_t n);
void pxsi_sl_i32s(pxsi_statline_t *l, const char *key, const int32_t *v, size_t n);
/* Finish the line and write it to stderr (one fprintf). */
void pxsi_sl_end(pxsi_statline_t *l);

#endif
