/* Logging, clocks, back-off, environment, options. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <threads.h>
#include <time.h>

#include "util/options.h"
#include "util/util.h"

#define SUBSYS "opts"

/* ---------------------------------------------------------------- logging */
_Atomic int pxsi_log_level_ = -1;
static once_flag log_once = ONCE_FLAG_INIT;

static void
log_init(void)
{
    /* the option table's PXS_LOG row (src/util/options.c) */
    atomic_store_explicit(&pxsi_log_level_, pxsi_opt_enum(PXSI_OPT_LOG), memory_order_relaxed);
}

int
pxsi_log_level_init(void)
{
    call_once(&log_once, log_init);
    return atomic_load_explicit(&pxsi_log_level_, memory_order_relaxed);
}

int
pxsi_log_rank(void)
{
    int init = 0, fin = 0, r = -1;
    MPI_Initialized(&init);
    if (init)
        MPI_Finalized(&fin);
    if (init && !fin)
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

void
pxsi_log(int level, const char *subsys, const char *fmt, ...)
{
    static const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};
    char line[1024];
    va_list ap;
    if (level < 0 || level > PXSI_LOG_TRACE)
        level = PXSI_LOG_TRACE;
    int n = snprintf(line, sizeof line, "pxs[%d] %s %s: ", pxsi_log_rank(), names[level],
                     subsys ? subsys : "pxs");
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

/* ---------------------------------------------------------------- time */
double
pxsi_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The calling thread's interrupt hook (pxs_interrupt_hook, status.h): asked
 * by pxsi_backoff_expired at most every PXSI_INTERRUPT_PERIOD s; once it
 * said yes, every wait of the thread is expired until the hook is set again
 * (so a send whose put was interrupted does not then wait on the mailbox). */
#define PXSI_INTERRUPT_PERIOD 0.05
static _Thread_local int (*intr_fn)(void *);
static _Thread_local void *intr_arg;
static _Thread_local double intr_last;
static _Thread_local int intr_hit;

int
pxs_interrupt_hook(int (*fn)(void *arg), void *arg)
{
    intr_fn = fn;
    intr_arg = arg;
    intr_last = 0.0;
    intr_hit = 0;
    return PXS_OK;
}

static int
interrupted(void)
{
    if (PXSI_LIKELY(!intr_fn))
        return 0;
    if (intr_hit)
        return 1;
    double now = pxsi_now();
    if (now - intr_last < PXSI_INTERRUPT_PERIOD)
        return 0;
    intr_last = now;
    if (intr_fn(intr_arg)) {
        intr_hit = 1;
        PXSI_DEBUG("util", "wait interrupted by the thread's interrupt hook");
    }
    return intr_hit;
}

/* A lazy wait's deadline: timeout after now (the first clock read). */
static void
backoff_start(pxsi_backoff_t *b, double now)
{
    b->deadline = now + b->timeout;
    b->lazy = 0;
}

int
pxsi_backoff_expired(pxsi_backoff_t *b)
{
    if (b->deadline < 0)
        return interrupted();
    if (b->timeout == 0)
        return 1; /* a poll: one look, no clock */
    if (b->lazy) {
        /* no clock during the first pauses (util.h, PXSI_BACKOFF_CLOCK_FIRST);
         * the deadline counts from the first read, so it has not passed */
        if (b->iter >= PXSI_BACKOFF_CLOCK_FIRST)
            backoff_start(b, pxsi_now());
        return interrupted();
    }
    return pxsi_now() >= b->deadline || interrupted();
}

double
pxsi_backoff_left(pxsi_backoff_t *b)
{
    if (b->deadline < 0)
        return -1.0;
    if (b->timeout == 0)
        return 0.0;
    double now = pxsi_now();
    if (b->lazy)
        backoff_start(b, now);
    double left = b->deadline - now;
    return left > 0 ? left : 0.0;
}

void
pxsi_backoff_abstime(pxsi_backoff_t *b, struct timespec *ts)
{
    if (b->lazy)
        backoff_start(b, pxsi_now());
    /* pxsi_now() is CLOCK_MONOTONIC seconds */
    double s = b->deadline < 0 ? pxsi_now() : b->deadline;
    ts->tv_sec = (time_t)s;
    ts->tv_nsec = (long)((s - (double)ts->tv_sec) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* See util.h for the steps. */
void
pxsi_backoff_pause(pxsi_backoff_t *b)
{
    uint32_t i = b->iter;
    if (b->iter < b->max_iter)
        b->iter++;
    if (i < PXSI_BACKOFF_YIELD) {
        pxsi_cpu_pause();
    } else if (i < PXSI_BACKOFF_SLEEP) {
        sched_yield();
    } else {
        uint32_t step = i - PXSI_BACKOFF_SLEEP;
        long ns = step >= 20 ? PXSI_BACKOFF_SLEEP_MAX_NS : (1000L << step);
        if (ns > PXSI_BACKOFF_SLEEP_MAX_NS)
            ns = PXSI_BACKOFF_SLEEP_MAX_NS;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
    }
    if (b->progress && pxsi_backoff_progress_due(b))
        b->progress(b->arg);
}

void
pxsi_mpi_progress_hook(void *comm)
{
    pxsi_mpi_progress(*(MPI_Comm *)comm);
}

void
pxsi_backoff_pause_mpi(pxsi_backoff_t *b, MPI_Comm comm)
{
    b->max_iter = PXSI_BACKOFF_MPI_MAX_STEP;
    pxsi_backoff_pause(b);
    if (!b->progress && pxsi_backoff_progress_due(b))
        pxsi_mpi_progress(comm);
}

void
pxsi_mpi_progress(MPI_Comm comm)
{
    int flag = 0;
    MPI_Status st;
    if (comm != MPI_COMM_NULL)
        (void)MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &st);
}

/* ---------------------------------------------------------------- env */
/* A bad value is always reported, whatever PXS_LOG says (a typo in a job
 * script must not pass silently), once per variable and process, on stderr:
 *   pxs[rank] warn env: PXS_BATCH=-5 is not an integer in [1, 4096]; using 1
 * and the default is used. See docs/DESIGN.md, section "Environment". */
#define ENV_WARNED_MAX 32
static pthread_mutex_t env_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *env_warned[ENV_WARNED_MAX];
static int env_nwarned;

static void
env_warn(const char *name, const char *fmt, ...)
{
    pthread_mutex_lock(&env_mu);
    int seen = 0;
    for (int i = 0; i < env_nwarned; i++)
        seen |= strcmp(env_warned[i], name) == 0;
    if (!seen && env_nwarned < ENV_WARNED_MAX)
        env_warned[env_nwarned++] = name; /* names are string literals */
    pthread_mutex_unlock(&env_mu);
    if (seen)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "pxs[%d] warn env: %s\n", pxsi_log_rank(), msg);
    fflush(stderr);
}

void
pxsi_env_warned_reset(void)
{
    pthread_mutex_lock(&env_mu);
    env_nwarned = 0;
    pthread_mutex_unlock(&env_mu);
}

/* Decimal digits only (no sign, no blanks): strtoull alone takes "-5" as
 * 2^64 - 5 and skips leading blanks. */
static int
env_digits(const char *s, unsigned long long *v, char **end)
{
    if (*s < '0' || *s > '9')
        return 0;
    errno = 0;
    *v = strtoull(s, end, 10);
    return errno == 0;
}

uint64_t
pxsi_env_size(const char *name, uint64_t dflt)
{
    return pxsi_env_size_in(name, dflt, 0, UINT64_MAX);
}

uint64_t
pxsi_env_size_in(const char *name, uint64_t dflt, uint64_t min, uint64_t max)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end = NULL;
    unsigned long long v = 0;
    unsigned shift = 0;
    int ok = env_digits(s, &v, &end);
    if (ok) {
        switch (*end) {
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        case 't': case 'T': shift = 40; end++; break;
        default: break;
        }
        if (shift && (*end == 'i' || *end == 'I'))
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        ok = *end == '\0' && !(shift && v > (UINT64_MAX >> shift));
    }
    if (!ok) {
        env_warn(name, "%s=%s is not a size (digits with an optional K, M, G or T suffix, "
                       "below 2^64); using the default %llu", name, s,
                 (unsigned long long)dflt);
        return dflt;
    }
    uint64_t bytes = (uint64_t)v << shift;
    if (bytes < min || bytes > max) {
        env_warn(name, "%s=%s is out of range [%llu, %llu] bytes; using the default %llu", name,
                 s, (unsigned long long)min, (unsigned long long)max, (unsigned long long)dflt);
        return dflt;
    }
    return bytes;
}

uint64_t
pxsi_env_uint(const char *name, uint64_t dflt, uint64_t min, uint64_t max)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end = NULL;
    unsigned long long v = 0;
    if (!env_digits(s, &v, &end) || *end != '\0' || v < min || v > max) {
        env_warn(name, "%s=%s is not an integer in [%llu, %llu]; using the default %llu",
                 name, s, (unsigned long long)min, (unsigned long long)max,
                 (unsigned long long)dflt);
        return dflt;
    }
    return (uint64_t)v;
}

double
pxsi_env_double(const char *name, double dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    /* NaN would make every comparison with a deadline false (a wait that
     * never ends); inf and out-of-range values are refused too (a negative
     * value already means "wait forever" where that makes sense) */
    if (end == s || *end != '\0' || errno != 0 || isspace((unsigned char)*s) || !isfinite(v)) {
        env_warn(name, "%s=%s is not a finite number; using the default %g", name, s, dflt);
        return dflt;
    }
    return v;
}

int
pxsi_env_bool(const char *name, int dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    if (!strcasecmp(s, "0") || !strcasecmp(s, "off") || !strcasecmp(s, "no") ||
        !strcasecmp(s, "false"))
        return 0;
    if (!strcasecmp(s, "1") || !strcasecmp(s, "on") || !strcasecmp(s, "yes") ||
        !strcasecmp(s, "true"))
        return 1;
    env_warn(name, "%s=%s is not a boolean (0/off/no/false, 1/on/yes/true); using the "
                   "default %d", name, s, dflt);
    return dflt;
}

int
pxsi_env_enum(const char *name, int dflt, const char *const *names)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char list[256];
    size_t n = 0;
    list[0] = '\0';
    for (int i = 0; names[i]; i++) {
        if (!strcasecmp(s, names[i]))
            return i;
        int w = snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", names[i]);
        if (w > 0 && (size_t)w < sizeof list - n)
            n += (size_t)w;
    }
    env_warn(name, "%s=%s is not one of %s; using the default %s", name, s, list, names[dflt]);
    return dflt;
}

/* ---------------------------------------------------------------- options */
void
pxsi_opts_fill(void *opts, size_t size, const void *d, size_t d_size)
{
    if (size > d_size)
        memset(opts, 0, size);
    memcpy(opts, d, size < d_size ? size : d_size);
    memcpy(opts, &size, sizeof size); /* struct_size is the first field */
}

int
pxsi_opts_take(void *dst, size_t dst_size, const void *src)
{
    if (!src)
        return PXS_OK;
    size_t n;
    memcpy(&n, src, sizeof n);
    if (n < sizeof(size_t))
        return pxsi_err(PXS_ERR_INVALID, SUBSYS,
                        "options struct_size is %zu: initialise it with the _opts_init macro", n);
    if (n > dst_size)
        n = dst_size; /* a newer caller: we read only what we know */
    memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
           n - sizeof(size_t));
    return PXS_OK;
}
