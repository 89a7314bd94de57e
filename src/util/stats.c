/* PXS_STATS and the stats line builder (stats.h). See docs/DESIGN.md,
 * section "Logging and statistics". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proxystream/status.h"
#include "util/options.h"
#include "util/stats.h"
#include "util/util.h"

int
pxsi_stats_mode(void)
{
    /* the words: off 1 json 0 on (the last two are spellings of the first two) */
    int v = pxsi_opt_enum(PXSI_OPT_STATS);
    return v == 3 ? PXSI_STATS_OFF : v == 4 ? PXSI_STATS_TEXT : v;
}

int
pxsi_stats_check(const void *out, const char *subsys, const char *what)
{
    size_t size = 0;
    if (out)
        memcpy(&size, out, sizeof size);
    if (!out || size < sizeof(size_t))
        return pxsi_err(PXS_ERR_INVALID, subsys,
                        "%s: NULL or struct_size %zu (initialise it with the _init macro)", what,
                        size);
    return PXS_OK;
}

void
pxsi_stats_copy(void *out, const void *full, size_t full_size)
{
    size_t size;
    memcpy(&size, out, sizeof size);
    size_t n = size < full_size ? size : full_size;
    if (n > sizeof(size_t))
        memcpy((char *)out + sizeof(size_t), (const char *)full + sizeof(size_t),
               n - sizeof(size_t));
}

int
pxsi_stats_init(void *s, size_t size, const char *subsys, const char *what)
{
    if (!s || size < sizeof(size_t))
        return pxsi_err(PXS_ERR_INVALID, subsys, "%s: NULL or size %zu", what, size);
    memset(s, 0, size);
    memcpy(s, &size, sizeof size);
    return PXS_OK;
}

static void sl_add(pxsi_statline_t *l, const char *fmt, ...) PXSI_PRINTF(2, 3);
static void
sl_add(pxsi_statline_t *l, const char *fmt, ...)
{
    if (l->n >= sizeof l->buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(l->buf + l->n, sizeof l->buf - l->n, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    l->n += (size_t)k;
    if (l->n >= sizeof l->buf)
        l->n = sizeof l->buf - 1;
}

static void
sl_key(pxsi_statline_t *l, const char *key)
{
    if (l->json)
        sl_add(l, ",\"%s\":", key);
    else
        sl_add(l, "%s%s=", l->first ? "" : " ", key);
    l->first = 0;
}

void
pxsi_sl_begin(pxsi_statline_t *l, int mode, const char *handle)
{
    l->n = 0;
    l->json = mode == PXSI_STATS_JSON;
    l->first = 1;
    if (l->json)
        sl_add(l, "{\"rank\":%d,\"handle\":\"%s\"", pxsi_log_rank(), handle);
    else
        sl_add(l, "pxs[%d] stats %s: ", pxsi_log_rank(), handle);
}

void
pxsi_sl_u64(pxsi_statline_t *l, const char *key, uint64_t v)
{
    sl_key(l, key);
    sl_add(l, "%llu", (unsigned long long)v);
}

void
pxsi_sl_i64(pxsi_statline_t *l, const char *key, int64_t v)
{
    sl_key(l, key);
    sl_add(l, "%lld", (long long)v);
}

void
pxsi_sl_dbl(pxsi_statline_t *l, const char *key, double v)
{
    sl_key(l, key);
    sl_add(l, "%.6f", v == v ? v : 0.0); /* JSON has no NaN */
}

void
pxsi_sl_u64s(pxsi_statline_t *l, const char *key, const uint64_t *v, size_t n)
{
    sl_key(l, key);
    sl_add(l, "%s", l->json ? "[" : "");
    for (size_t i = 0; i < n; i++)
        sl_add(l, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
    sl_add(l, "%s", l->json ? "]" : "");
}

void
pxsi_sl_i32s(pxsi_statline_t *l, const char *key, const int32_t *v, size_t n)
{
    sl_key(l, key);
    sl_add(l, "%s", l->json ? "[" : "");
    for (size_t i = 0; i < n; i++)
        sl_add(l, "%s%d", i ? "," : "", (int)v[i]);
    sl_add(l, "%s", l->json ? "]" : "");
}

void
pxsi_sl_end(pxsi_statline_t *l)
{
    if (l->json) {
        /* a line cut at the buffer's end would not parse: keep the object whole */
        if (l->n >= sizeof l->buf - 2)
            l->n = sizeof l->buf - 2;
        l->buf[l->n++] = '}';
        l->buf[l->n] = '\0';
    }
    fprintf(stderr, "%s\n", l->buf);
    fflush(stderr);
}
