/* Random 64-bit values for store instance nonces (see docs/DESIGN.md,
 * section "Object identity"): getrandom(2), falling back to /dev/urandom
 * (old kernels, seccomp filters). Never returns 0: 0 means "no instance". */
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/util.h"

#define SUBSYS "pxs"

static int
fill(unsigned char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(b + got, n - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got == n)
        return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    got = 0;
    while (got < n) {
        ssize_t k = read(fd, b + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    return got == n ? 0 : -1;
}

int
pxsi_random_u64(uint64_t *out)
{
    for (int tries = 0; tries < 4; tries++) {
        unsigned char b[8];
        if (fill(b, sizeof b) != 0)
            return pxsi_err(PXS_ERR_NOTSUP, SUBSYS,
                            "no randomness: getrandom(2) and /dev/urandom both failed");
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | b[i];
        if (v != 0) {
            *out = v;
            return PXS_OK;
        }
    }
    return pxsi_err(PXS_ERR_NOTSUP, SUBSYS, "randomness source returns only zeros");
}
