/* Errors keep their cause: a layer that adds context prefixes it to the
 * detail the lower layer recorded instead of overwriting it. See
 * docs/CONVENTIONS.md and docs/DESIGN.md, section "Errors keep their cause". */
#include <stdarg.h>
#include <stdio.h>

#include "util/util.h"

int
pxsi_err_prefix(int code, const char *subsys, const char *fmt, ...)
{
    char cause[512], ctx[256];
    snprintf(cause, sizeof cause, "%s", pxs_last_error_detail());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    if (!cause[0])
        return pxsi_err(code, subsys, "%s", ctx);
    return pxsi_err(code, subsys, "%s: %s", ctx, cause);
}
