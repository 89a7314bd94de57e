/* unit.fuzz.proxy_corpus: the corpus's named seeds mean what their names
 * say for this library's proxy format: valid_* decode (binary, 64 bytes) or
 * parse (text, *.txt), v1_* are refused with PXS_ERR_CORRUPT and a detail
 * naming format version 1. Keeps the seeds honest across version bumps. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxystream.h"

static int
check_file(const char *dir, const char *name, int *nvalid, int *nv1)
{
    int is_valid = strncmp(name, "valid_", 6) == 0, is_v1 = strncmp(name, "v1_", 3) == 0;
    if (!is_valid && !is_v1)
        return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 1;
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t nl = strlen(name);
    int text = nl > 4 && strcmp(name + nl - 4, ".txt") == 0;
    pxs_proxy_t p;
    int rc = text ? pxs_proxy_from_text((const char *)buf, &p) : pxs_proxy_decode(buf, n, NULL);
    if (is_valid) {
        if (rc != PXS_OK) {
            fprintf(stderr, "%s: %s (%s), expected PXS_OK\n", name, pxs_errname(rc),
                    pxs_last_error_detail());
            return 1;
        }
        (*nvalid)++;
    } else {
        if (rc != PXS_ERR_CORRUPT || !strstr(pxs_last_error_detail(), "version 1")) {
            fprintf(stderr, "%s: %s (%s), expected PXS_ERR_CORRUPT naming version 1\n", name,
                    pxs_errname(rc), pxs_last_error_detail());
            return 1;
        }
        (*nv1)++;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    DIR *d = opendir(argv[1]);
    if (!d)
        return 2;
    int bad = 0, nvalid = 0, nv1 = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        bad |= check_file(argv[1], e->d_name, &nvalid, &nv1);
    closedir(d);
    printf("corpus: %d valid seeds accepted, %d version-1 seeds refused\n", nvalid, nv1);
    return bad || nvalid < 3 || nv1 < 2;
}
