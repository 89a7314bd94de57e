/* libFuzzer target: pxs_proxy_decode and pxs_proxy_from_text on arbitrary
 * bytes must never crash, and whatever decodes must re-encode identically. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxystream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pxs_proxy_info_t info;
    if (pxs_proxy_decode(data, size, &info) == PXS_OK) {
        pxs_proxy_t p;
        if (pxs_proxy_encode(&info, &p) != PXS_OK || memcmp(p.bytes, data, 64) != 0)
            abort();
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    pxs_proxy_t q;
    if (pxs_proxy_from_text(text, &q) == PXS_OK && pxs_proxy_validate(&q) != PXS_OK)
        abort();
    free(text);
    return 0;
}
