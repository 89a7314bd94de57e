/* The README's tables agree with the library (one source of truth each):
 * - the status table (rows "| `PXS_ERR_X` (n) | ...") and PXS_STATUS_LIST:
 *   every code of the list is in the README with its number, and every
 *   README row is a code of the list (pxs_errname(n) is its name);
 * - the environment table (rows "| `PXS_X` | meaning | default |") and the
 *   option table (src/util/options.c): every variable in both, and the
 *   defaults equal where the README states a plain number, a size
 *   ("64 MiB"), on/off, or an enum word.
 * Usage: test_readme_tables README.md */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxystream.h"
#include "util/options.h"

#define MAXROWS 64

struct row {
    char name[64];
    char cell[256]; /* status: the number; env: the default column */
};

static int failures;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "readme.tables: " __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                                       \
        failures++;                                                                                \
    } while (0)

/* Copy at most cap - 1 bytes (names and cells longer than that are cut). */
static void
copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void
trim(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    size_t i = 0;
    while (isspace((unsigned char)s[i]))
        i++;
    memmove(s, s + i, strlen(s + i) + 1);
}

/* Parse "| `NAME` (num) | ..." (status) or "| `NAME` | ... | default |" (env). */
static void
parse(FILE *f, struct row *st, int *nst, struct row *env, int *nenv)
{
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "| `PXS_", 7) != 0)
            continue;
        char *name = line + 3;
        char *end = strchr(name, '`');
        if (!end)
            continue;
        *end = '\0';
        char *rest = end + 1;
        if (strncmp(rest, " (", 2) == 0) {
            if (*nst < MAXROWS) {
                copy(st[*nst].name, sizeof st[*nst].name, name);
                char *close = strchr(rest, ')');
                if (close)
                    *close = '\0';
                copy(st[*nst].cell, sizeof st[*nst].cell, rest + 2);
                (*nst)++;
            }
        } else if (strncmp(rest, " |", 2) == 0) {
            if (*nenv < MAXROWS) {
                /* the default is the last column */
                char *bar = strrchr(rest, '|');
                if (!bar)
                    continue;
                *bar = '\0';
                char *prev = strrchr(rest, '|');
                if (!prev)
                    continue;
                copy(env[*nenv].name, sizeof env[*nenv].name, name);
                copy(env[*nenv].cell, sizeof env[*nenv].cell, prev + 1);
                trim(env[*nenv].cell);
                (*nenv)++;
            }
        }
    }
}

struct code {
    const char *name;
    int num;
};
#define CODE(name, num, text) {#name, num},
static const struct code codes[] = {PXS_STATUS_LIST(CODE)};
#undef CODE

static void
check_status(const struct row *st, int nst)
{
    size_t nc = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < nc; i++) {
        int found = 0;
        for (int j = 0; j < nst; j++)
            if (!strcmp(st[j].name, codes[i].name)) {
                found = 1;
                if (atoi(st[j].cell) != codes[i].num)
                    FAIL("%s is %d in the README, %d in PXS_STATUS_LIST", codes[i].name,
                         atoi(st[j].cell), codes[i].num);
            }
        if (!found)
            FAIL("%s (%d) is missing from the README's status table", codes[i].name, codes[i].num);
        if (strcmp(pxs_errname(codes[i].num), codes[i].name) != 0)
            FAIL("pxs_errname(%d) is %s, not %s", codes[i].num, pxs_errname(codes[i].num),
                 codes[i].name);
    }
    for (int j = 0; j < nst; j++) {
        int found = 0;
        for (size_t i = 0; i < nc; i++)
            found |= !strcmp(st[j].name, codes[i].name);
        if (!found)
            FAIL("the README's status table lists %s, which PXS_STATUS_LIST does not have",
                 st[j].name);
    }
    if (nst < 10)
        FAIL("only %d status rows found in the README", nst);
}

/* The README's default as a number, when it states one plainly: 1 parsed,
 * 0 prose (not compared). */
static int
readme_value(const pxsi_option_t *o, const char *cell, double *v)
{
    char *end = NULL;
    switch (o->type) {
    case PXSI_OPT_UINT:
    case PXSI_OPT_DOUBLE:
        *v = strtod(cell, &end);
        return end != cell && *end == '\0';
    case PXSI_OPT_SIZE: {
        *v = strtod(cell, &end);
        if (end == cell)
            return 0;
        while (*end == ' ')
            end++;
        if (!strcmp(end, "KiB"))
            *v *= 1024.0;
        else if (!strcmp(end, "MiB"))
            *v *= 1024.0 * 1024;
        else if (!strcmp(end, "GiB"))
            *v *= 1024.0 * 1024 * 1024;
        else if (*end)
            return 0;
        return 1;
    }
    case PXSI_OPT_BOOL:
        if (!strcasecmp(cell, "on"))
            *v = 1;
        else if (!strcasecmp(cell, "off"))
            *v = 0;
        else
            return 0;
        return 1;
    case PXSI_OPT_ENUM:
        for (int i = 0; o->names[i]; i++)
            if (!strcasecmp(cell, o->names[i])) {
                *v = i;
                return 1;
            }
        return 0;
    default:
        return 0;
    }
}

static void
check_env(const struct row *env, int nenv)
{
    size_t n = 0;
    const pxsi_option_t *t = pxsi_options(&n);
    int compared = 0;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].env)
            continue;
        const struct row *r = NULL;
        for (int j = 0; j < nenv; j++)
            if (!strcmp(env[j].name, t[i].env))
                r = &env[j];
        if (!r) {
            FAIL("%s is in the option table but not in the README's environment table", t[i].env);
            continue;
        }
        double v = 0;
        if (readme_value(&t[i], r->cell, &v)) {
            compared++;
            if (fabs(v - t[i].dflt) > 1e-9 * (fabs(v) + 1))
                FAIL("%s: README default \"%s\", option table %g", t[i].env, r->cell, t[i].dflt);
        }
    }
    for (int j = 0; j < nenv; j++) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            found |= t[i].env && !strcmp(env[j].name, t[i].env);
        if (!found)
            FAIL("the README's environment table lists %s, which the option table does not "
                 "have",
                 env[j].name);
    }
    if (nenv < 5 || compared < 5)
        FAIL("only %d environment rows (%d defaults compared) found in the README", nenv, compared);
    printf("readme.tables: %d environment rows, %d defaults compared\n", nenv, compared);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s README.md\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    static struct row st[MAXROWS], env[MAXROWS];
    int nst = 0, nenv = 0;
    parse(f, st, &nst, env, &nenv);
    fclose(f);
    check_status(st, nst);
    check_env(env, nenv);
    if (failures) {
        fprintf(stderr, "readme.tables: %d mismatch(es)\n", failures);
        return 1;
    }
    printf("readme.tables: %d status rows and the environment table agree\n", nst);
    return 0;
}
