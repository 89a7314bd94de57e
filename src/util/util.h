/* Internal utilities shared by every module: errors with thread-local detail,
 * logging, clocks, back-off waits, environment parsing, options, byte order.
 * Not installed. */
#ifndef PXSI_UTIL_H
#define PXSI_UTIL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "proxystream/status.h"

#if defined(__GNUC__)
#define PXSI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define PXSI_LIKELY(x)    __builtin_expect(!!(x), 1)
#define PXSI_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#define PXSI_NOINLINE     __attribute__((noinline)) /* a slow path kept out of line */
#else
#define PXSI_PRINTF(a, b)
#define PXSI_LIKELY(x)   (x)
#define PXSI_UNLIKELY(x) (x)
#define PXSI_NOINLINE
#endif

#ifndef NDEBUG
#include <stdio.h>
#include <stdlib.h>
/* Invariants only (never input checks). */
#define PXS_ASSERT(c)                                                          \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "pxs: assertion %s failed at %s:%d\n", #c,         \
                    __FILE__, __LINE__);                                       \
            abort();                                                           \
        }                                                                      \
    } while (0)
#else
#define PXS_ASSERT(c) ((void)0)
#endif

/* ---------------------------------------------------------------- errors */

/* Record a one-line detail for the calling thread, log it at debug level
 * under `subsys`, and return `code` (so: `return pxsi_err(...)`). */
int pxsi_err(int code, const char *subsys, const char *fmt, ...) PXSI_PRINTF(3, 4);
/* Errors keep their cause: like pxsi_err, but the new detail is
 * "<subsys>: <context>: <the detail recorded so far>", so a layer that adds
 * context does not overwrite the cause (src/util/errctx.c). */
int pxsi_err_prefix(int code, const char *subsys, const char *fmt, ...) PXSI_PRINTF(3, 4);
/* MPI failure: detail = "<what>: <MPI error string>"; returns PXS_ERR_MPI.
 * Returns PXS_OK when mpi_rc == MPI_SUCCESS, so it can wrap calls. */
int pxsi_mpi_err(int mpi_rc, const char *subsys, const char *what);
#define PXSI_MPI_CHECK(call, subsys)                                           \
    do {                                                                       \
        int pxsi_mrc_ = (call);                                                \
        if (PXSI_UNLIKELY(pxsi_mrc_ != MPI_SUCCESS))                           \
            return pxsi_mpi_err(pxsi_mrc_, subsys, #call);                     \
    } while (0)

/* Collective status agreement: returns the most negative rc over comm (so a
 * failure on one rank fails all). If the reduction itself fails, PXS_ERR_MPI. */
int pxsi_agree(MPI_Comm comm, int rc);

/* Like pxsi_agree, and every rank whose own rc is not the winning one gets
 * the failing rank's detail line, "<detail> (reported by rank R)" (the
 * lowest failing rank with the most negative code speaks). One
 * MPI_Allreduce; one more MPI_Bcast only when some rank failed. */
int pxsi_agree_why(MPI_Comm comm, int rc);

/* Before a collective window creation of `shared` bytes per rank (memory
 * that lands in /dev/shm when the window is node-shared) plus `priv` bytes
 * of other tables: can this node hold the sum over its ranks? Compared with
 * /dev/shm free space, available memory, and finite RLIMIT_AS (the node sum
 * when maps_peers, else this rank's part) / RLIMIT_DATA. Collective over
 * comm (node: its node communicator, or MPI_COMM_NULL to split one here);
 * agreed with pxsi_agree_why: PXS_ERR_NOMEM on every rank with the size and
 * the limit in the detail. `what` names the thing ("arena"), `knob` how to
 * change it. PXS_MEMORY_CHECK=0 skips the comparison (the collectives
 * still run). */
int pxsi_node_mem_fits(MPI_Comm comm, MPI_Comm node, const char *subsys, uint64_t shared,
                       uint64_t priv, int maps_peers, const char *what, const char *knob);

/* ---------------------------------------------------------------- logging */
enum { PXSI_LOG_OFF = 0, PXSI_LOG_ERROR, PXSI_LOG_WARN, PXSI_LOG_INFO,
       PXSI_LOG_DEBUG, PXSI_LOG_TRACE };
/* PXS_LOG, read once; default: off. Inline: a log site that is off costs
 * one relaxed load and a not-taken branch, and evaluates no argument
 * (docs/DESIGN.md, section "Logging and statistics"). */
extern _Atomic int pxsi_log_level_; /* -1 until read */
int pxsi_log_level_init(void);
static inline int
pxsi_log_level(void)
{
    int l = atomic_load_explicit(&pxsi_log_level_, memory_order_relaxed);
    return PXSI_LIKELY(l >= 0) ? l : pxsi_log_level_init();
}
/* MPI_COMM_WORLD rank for line prefixes (-1 before MPI_Init / after
 * MPI_Finalize). */
int pxsi_log_rank(void);
void pxsi_log(int level, const char *subsys, const char *fmt, ...) PXSI_PRINTF(3, 4);
#define PXSI_LOG(level, subsys, ...)                                           \
    do {                                                                       \
        if (PXSI_UNLIKELY(pxsi_log_level() >= (level)))                        \
            pxsi_log((level), (subsys), __VA_ARGS__);                          \
    } while (0)
#define PXSI_DEBUG(subsys, ...) PXSI_LOG(PXSI_LOG_DEBUG, subsys, __VA_ARGS__)
#define PXSI_INFO(subsys, ...)  PXSI_LOG(PXSI_LOG_INFO, subsys, __VA_ARGS__)
#define PXSI_WARN(subsys, ...)  PXSI_LOG(PXSI_LOG_WARN, subsys, __VA_ARGS__)
#define PXSI_TRACE(subsys, ...) PXSI_LOG(PXSI_LOG_TRACE, subsys, __VA_ARGS__)
/* Is a level on? For log sites that must prepare their arguments (build a
 * list, read the clock): `if (PXSI_LOG_ON(PXSI_LOG_DEBUG)) {...}`. */
#define PXSI_LOG_ON(level) PXSI_UNLIKELY(pxsi_log_level() >= (level))

/* ---------------------------------------------------------------- time, waits */
double pxsi_now(void); /* monotonic seconds */

/* The one wait primitive of the library: every wait loop (mailbox credits,
 * mailbox inbox, store put backpressure, consumer next) uses it. See
 * docs/DESIGN.md, section "Back-off rules". Steps (one per pause):
 *   [0, PXSI_BACKOFF_YIELD)       spin (cpu pause)
 *   [PXSI_BACKOFF_YIELD, _SLEEP)  sched_yield
 *   PXSI_BACKOFF_SLEEP + k        sleep 2^k us, at most PXSI_BACKOFF_SLEEP_MAX_NS
 * Oversubscribed ranks (tests on 2 cores) need the yield and sleep phases: a
 * pure spin starves the rank that would make progress. */
#define PXSI_BACKOFF_YIELD 64u  /* first step that yields instead of spinning */
#define PXSI_BACKOFF_SLEEP 128u /* first step that sleeps (1 us, doubling) */
#define PXSI_BACKOFF_SLEEP_MAX_NS 1000000L /* plain waits: naps grow to 1 ms */
/* Waits whose progress needs this rank inside MPI (osc/ucx and pt2pt
 * complete peers' atomics on our windows only while we call MPI) cap the naps
 * at 2^6 = 64 us, i.e. stop growing at step PXSI_BACKOFF_SLEEP + 6 (= 134).
 * Measured: 1 ms naps held a ucx pipeline at ~1400 chunks/s. */
#define PXSI_BACKOFF_MPI_SLEEP_LOG2 6u
#define PXSI_BACKOFF_MPI_MAX_STEP (PXSI_BACKOFF_SLEEP + PXSI_BACKOFF_MPI_SLEEP_LOG2)
/* The progress hook of such a wait runs after every pause from
 * PXSI_BACKOFF_YIELD on, and during the spin phase after every
 * PXSI_BACKOFF_PROGRESS_EVERY-th pause once PXSI_BACKOFF_PROGRESS_FIRST pauses
 * passed (not at once: a reply that is about to land should not wait behind
 * an MPI call). */
#define PXSI_BACKOFF_PROGRESS_EVERY 8u
#define PXSI_BACKOFF_PROGRESS_FIRST 16u

/* Waits made with pxsi_backoff_init_mpi read the clock lazily: not at
 * init, and not during their first PXSI_BACKOFF_CLOCK_FIRST pauses (a wait
 * that ends within the spin phase, the common case of a hot event path,
 * never reads it); the deadline counts from the first read, so such a wait
 * may last that many spin pauses (a few microseconds) past its timeout. */
#define PXSI_BACKOFF_CLOCK_FIRST 16u
/* A wait: its step, its deadline (from the call's timeout: < 0 forever; 0 is
 * a non-blocking poll, expired after the first look), and for waits that
 * need MPI progress a step cap and an optional hook. */
typedef struct pxsi_backoff {
    uint32_t iter;     /* pauses so far (capped at max_iter) */
    uint32_t max_iter; /* UINT32_MAX, or PXSI_BACKOFF_MPI_MAX_STEP */
    double deadline;   /* < 0: none; not read while `lazy` */
    double timeout;    /* the wait's timeout (lazy deadline) */
    int lazy;          /* 1: the deadline is timeout after the first clock read */
    void (*progress)(void *arg); /* NULL: none (or the caller polls progress_due) */
    void *arg;
} pxsi_backoff_t;
/* A plain wait (no MPI progress needed: local store, threads); the deadline
 * counts from now (one clock read when timeout > 0). */
static inline void
pxsi_backoff_init(pxsi_backoff_t *b, double timeout)
{
    b->iter = 0;
    b->max_iter = UINT32_MAX;
    b->timeout = timeout;
    b->lazy = 0;
    b->deadline = timeout < 0 ? -1.0 : timeout == 0 ? 0.0 : pxsi_now() + timeout;
    b->progress = NULL;
    b->arg = NULL;
}
/* A wait whose progress needs this rank inside MPI: naps capped at 64 us, and
 * `progress(arg)` (if not NULL) called by pxsi_backoff_pause when due. A
 * caller with more to do than a void hook (e.g. check MPI_Win_sync's result)
 * passes NULL and asks pxsi_backoff_progress_due() itself. No clock read
 * here (see PXSI_BACKOFF_CLOCK_FIRST). */
static inline void
pxsi_backoff_init_mpi(pxsi_backoff_t *b, double timeout, void (*progress)(void *arg), void *arg)
{
    b->iter = 0;
    b->max_iter = PXSI_BACKOFF_MPI_MAX_STEP;
    b->timeout = timeout;
    b->lazy = timeout > 0;
    b->deadline = timeout < 0 ? -1.0 : 0.0;
    b->progress = progress;
    b->arg = arg;
}
/* One cpu pause (the spin phase's step), for loops that spin inline. */
static inline void
pxsi_cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}
int pxsi_backoff_expired(pxsi_backoff_t *b);
/* Seconds left before the deadline (0 when passed), or -1.0 (forever). */
double pxsi_backoff_left(pxsi_backoff_t *b);
/* The deadline as an absolute CLOCK_MONOTONIC time (for condition-variable
 * waits, which block instead of backing off). Only when b has a deadline. */
void pxsi_backoff_abstime(pxsi_backoff_t *b, struct timespec *ts);
/* Is MPI progress due after the pauses made so far (see the constants)? */
static inline int
pxsi_backoff_progress_due(const pxsi_backoff_t *b)
{
    return b->iter >= PXSI_BACKOFF_YIELD ||
           (b->iter >= PXSI_BACKOFF_PROGRESS_FIRST && b->iter % PXSI_BACKOFF_PROGRESS_EVERY == 0);
}
/* One pause of the current step, then the hook when due. */
void pxsi_backoff_pause(pxsi_backoff_t *b);
/* Compatibility for call sites not switched yet (the store): the same as a
 * pause of a wait made with pxsi_backoff_init_mpi(b, timeout,
 * pxsi_mpi_progress_hook, &comm), on a wait made with pxsi_backoff_init. */
void pxsi_backoff_pause_mpi(pxsi_backoff_t *b, MPI_Comm comm);
/* A progress hook: arg points at an MPI_Comm; calls pxsi_mpi_progress. */
void pxsi_mpi_progress_hook(void *comm);
/* Let MPI progress (software-atomic osc components need it): MPI_Iprobe. */
void pxsi_mpi_progress(MPI_Comm comm);

/* The MPI library this process runs on (MPI_Get_library_version), for log
 * lines and remedy texts only: nothing else may depend on it (src/util/mpiimpl.c). */
enum { PXSI_MPI_OTHER = 0, PXSI_MPI_OPENMPI = 1, PXSI_MPI_MPICH = 2 };
int pxsi_mpi_impl(void);
/* "Open MPI v4.1.4", "MPICH 4.0.2", or the version string's first line. */
const char *pxsi_mpi_impl_name(void);
/* What to do when a window cannot be created, for this MPI library. */
const char *pxsi_mpi_window_remedy(void);

/* ---------------------------------------------------------------- environment */
/* Environment readers. Modules read PXS_* variables through the option
 * table (util/options.h: pxsi_opt_uint(PXSI_OPT_BATCH), ...), which holds
 * each variable's default and bounds; these are its parsers. Unset or empty: dflt. A bad value gives dflt and a
 * warning on stderr naming the variable and the value, printed whatever
 * PXS_LOG says, once per variable and process. */
/* Unsigned size: digits with an optional K/M/G/T suffix (powers of 1024,
 * optional "i"/"B"), no sign, no blanks, below 2^64. */
uint64_t pxsi_env_size(const char *name, uint64_t dflt);
/* Unsigned decimal integer in [min, max] (no suffix, no sign). */
uint64_t pxsi_env_uint(const char *name, uint64_t dflt, uint64_t min, uint64_t max);
/* A size as pxsi_env_size, in [min, max] bytes. */
uint64_t pxsi_env_size_in(const char *name, uint64_t dflt, uint64_t min, uint64_t max);
/* One of the NULL-terminated `names` (case-insensitive): its index. */
int pxsi_env_enum(const char *name, int dflt, const char *const *names);
/* Finite number (strtod syntax; NaN and inf are refused). */
double pxsi_env_double(const char *name, double dflt);
/* "0/off/no/false" -> 0, "1/on/yes/true" -> 1, else dflt. */
int pxsi_env_bool(const char *name, int dflt);
/* Tests only: forget which variables were already warned about. */
void pxsi_env_warned_reset(void);

/* ---------------------------------------------------------------- options */
/* Options structs start with `size_t struct_size`. Copy the caller's struct
 * into a full-size local one already holding defaults: only the bytes the
 * caller's struct_size covers are taken. src NULL: keep defaults.
 * src->struct_size == 0 or < sizeof(size_t): PXS_ERR_INVALID. */
int pxsi_opts_take(void *dst, size_t dst_size, const void *src);

/* The body of every pxs_X_opts_init_(opts, size): copy the defaults `d`
 * (a full struct of d_size bytes) into the caller's struct of `size` bytes
 * (an older, smaller one gets the prefix; a newer, larger one has the rest
 * zeroed) and stamp struct_size = size. */
void pxsi_opts_fill(void *opts, size_t size, const void *d, size_t d_size);

/* ---------------------------------------------------------------- randomness */
/* A random, non-zero 64-bit value (getrandom(2), else /dev/urandom):
 * PXS_OK or PXS_ERR_NOTSUP (no source of randomness). src/util/random.c. */
int pxsi_random_u64(uint64_t *out);

/* ---------------------------------------------------------------- byte order */
/* Little-endian wire fields. On a little-endian host a field is one plain
 * (unaligned-safe) load or store: the byte loops below were not merged by
 * the compiler and cost tens of instructions per field on the event path
 * (docs/DESIGN.md "Event path cost"). */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PXSI_LE_HOST 1
#else
#define PXSI_LE_HOST 0
#endif
static inline void
pxsi_put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void
pxsi_put_le32(unsigned char *p, uint32_t v)
{
#if PXSI_LE_HOST
    memcpy(p, &v, 4);
#else
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
#endif
}
static inline void
pxsi_put_le64(unsigned char *p, uint64_t v)
{
#if PXSI_LE_HOST
    memcpy(p, &v, 8);
#else
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
#endif
}
static inline uint16_t
pxsi_get_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t
pxsi_get_le32(const unsigned char *p)
{
    uint32_t v = 0;
#if PXSI_LE_HOST
    memcpy(&v, p, 4);
#else
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
#endif
    return v;
}
static inline uint64_t
pxsi_get_le64(const unsigned char *p)
{
    uint64_t v = 0;
#if PXSI_LE_HOST
    memcpy(&v, p, 8);
#else
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
#endif
    return v;
}

/* ---------------------------------------------------------------- payload copies */
/* The store's payload copy (src/util/copy.c; docs/DESIGN.md, section "Payload
 * copies"): src and dst must not overlap. Below pxsi_copy_nt_bytes(), glibc
 * memcpy in pieces of `piece` bytes (0: one call); at or above it, streaming
 * (non-temporal) stores, as glibc's own memcpy does above its threshold, so
 * a copy much larger than the cache does not read its destination in first.
 * Every store has completed (sfence) when it returns. */
void pxsi_copy_big(void *dst, const void *src, size_t len, size_t piece); /* len > piece > 0 */
static inline void
pxsi_copy(void *dst, const void *src, size_t len, size_t piece)
{
    if (PXSI_LIKELY(piece == 0 || len <= piece)) {
        if (len)
            memcpy(dst, src, len);
        return;
    }
    pxsi_copy_big(dst, src, len, piece);
}
/* The streaming copy alone (any len; used by pxsi_copy and the unit test). */
void pxsi_copy_nt(void *dst, const void *src, size_t len);
/* The size from which pxsi_copy streams: half the last-level cache
 * (sysconf), at least 4 MiB; 32 MiB when the cache size is unknown. */
size_t pxsi_copy_nt_bytes(void);

/* ---------------------------------------------------------------- handles */
/* Every handle struct starts with a uint32_t magic, checked at each public
 * entry and poisoned on destroy. */
#define PXSI_MAGIC_DEAD 0xdeadbeefu
#define PXSI_HANDLE_OK(h, m) ((h) != NULL && *(const uint32_t *)(h) == (m))

/* Size checks before narrowing to MPI int counts. */
#define PXSI_INT_MAX_SIZE ((size_t)0x7fffffff)

#endif
