/* The option table (see options.h). One row per PXS_* environment variable
 * and per non-zero options-struct default; every pxs_*_opts_init_ and every
 * environment read goes through it. To add an option see CONTRIBUTING.md,
 * "Adding an option". */
#include <float.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "proxystream.h"
#include "util/options.h"
#include "util/util.h"

static const char *const log_names[] = {"off", "error", "warn", "info", "debug", "trace", NULL};
/* PXS_STATS: index 0 off, 1 text, 2 json; "0" and "on" spell 0 and 1 (util/stats.c) */
static const char *const stats_names[] = {"off", "1", "json", "0", "on", NULL};

#define NOFIELD         NULL, 0, 0, 0
#define FIELD(T, f, ft) #T "." #f, offsetof(T, f), sizeof(((T *)0)->f), ft
#define ANY             -DBL_MAX, DBL_MAX

static const pxsi_option_t table[PXSI_OPT_N_] = {
    [PXSI_OPT_LOG] = {"PXS_LOG", PXSI_OPT_ENUM, PXSI_LOG_OFF, 0, 0, log_names, PXSI_OWN_NONE,
                      NOFIELD, PXSI_INIT_NONE, 0,
                      "log level to stderr (off, error, warn, info, debug, trace); read once"},
    [PXSI_OPT_MAILBOX_SLOTS] = {"PXS_MAILBOX_SLOTS", PXSI_OPT_UINT, 1024, 1, PXSI_SLOTS_MAX, NULL,
                                PXSI_OWN_BUS, FIELD(pxs_bus_opts_t, slots, 'u'), PXSI_INIT_ENV, 0,
                                "event slots per subscriber mailbox"},
    [PXSI_OPT_BATCH] = {"PXS_BATCH", PXSI_OPT_UINT, 1, 1, PXSI_BATCH_MAX, NULL, PXSI_OWN_BUS,
                        FIELD(pxs_bus_opts_t, batch, 'u'), PXSI_INIT_ENV, 0,
                        "events coalesced per destination before a flush"},
    [PXSI_OPT_PREFETCH] = {"PXS_PREFETCH", PXSI_OPT_UINT, PXS_PREFETCH_DEFAULT, 1, PXSI_SLOTS_MAX,
                           NULL, PXSI_OWN_NONE, FIELD(pxs_subscription_t, prefetch, 'u'),
                           PXSI_INIT_NONE, 0,
                           "group events a work-sharing member has in flight (prefetch 0)"},
    [PXSI_OPT_SEND_TIMEOUT] = {"PXS_SEND_TIMEOUT", PXSI_OPT_DOUBLE, 30.0, ANY, NULL, PXSI_OWN_BUS,
                               FIELD(pxs_bus_opts_t, send_timeout, 'd'), PXSI_INIT_ENV, 0,
                               "seconds a send waits on a full mailbox (negative: forever)"},
    [PXSI_OPT_ARENA_BYTES] = {"PXS_ARENA_BYTES", PXSI_OPT_SIZE, 64.0 * 1024 * 1024, 1,
                              (double)UINT64_MAX, NULL, PXSI_OWN_STORE,
                              FIELD(pxs_store_opts_t, arena_bytes, 'u'), PXSI_INIT_VALUE, 0,
                              "store arena per rank (arena_bytes 0: read at create)"},
    [PXSI_OPT_PUT_TIMEOUT] = {"PXS_PUT_TIMEOUT", PXSI_OPT_DOUBLE, 30.0, ANY, NULL, PXSI_OWN_STORE,
                              FIELD(pxs_store_opts_t, put_timeout, 'd'), PXSI_INIT_VALUE,
                              PXS_TIMEOUT_DEFAULT,
                              "seconds a put waits for arena space (negative: forever); "
                              "read at create when put_timeout is PXS_TIMEOUT_DEFAULT"},
    [PXSI_OPT_SHM] = {"PXS_SHM", PXSI_OPT_BOOL, 1, 0, 1, NULL, PXSI_OWN_NONE, NOFIELD,
                      PXSI_INIT_NONE, 0,
                      "same-node shared-memory path (read at create when shm is -1)"},
    [PXSI_OPT_GET_CHUNK] = {"PXS_GET_CHUNK", PXSI_OPT_SIZE, 4.0 * 1024 * 1024, 0,
                            (double)UINT64_MAX, NULL, PXSI_OWN_NONE,
                            FIELD(pxs_store_opts_t, get_chunk, 'u'), PXSI_INIT_NONE, 0,
                            "largest single MPI_Get/copy piece of a resolve (get_chunk 0)"},
    [PXSI_OPT_MAX_OBJECTS] = {"PXS_MAX_OBJECTS", PXSI_OPT_UINT, 0, 1, PXSI_MAX_OBJECTS_MAX, NULL,
                              PXSI_OWN_NONE, FIELD(pxs_store_opts_t, max_objects, 'u'),
                              PXSI_INIT_NONE, 0,
                              "object slots per store arena (0: from the arena size)"},
    [PXSI_OPT_MAILBOX_SOLE] = {"PXS_MAILBOX_SOLE", PXSI_OPT_BOOL, 1, 0, 1, NULL, PXSI_OWN_NONE,
                               NOFIELD, PXSI_INIT_NONE, 0,
                               "sole-writer fast path of the mailbox (read at bus create)"},
    [PXSI_OPT_MEMORY_CHECK] = {"PXS_MEMORY_CHECK", PXSI_OPT_BOOL, 1, 0, 1, NULL, PXSI_OWN_NONE,
                               NOFIELD, PXSI_INIT_NONE, 0,
                               "create-time check of arenas and mailboxes against node memory"},
    [PXSI_OPT_PROGRESS_THREAD] = {"PXS_PROGRESS_THREAD", PXSI_OPT_BOOL, 1, 0, 1, NULL,
                                  PXSI_OWN_NONE, NOFIELD, PXSI_INIT_NONE, 0,
                                  "UCX connector's progress thread (read at create when "
                                  "progress_thread is -1)"},
    [PXSI_OPT_EXPORT_WAIT] = {"PXS_EXPORT_WAIT", PXSI_OPT_UINT, 0, 0, 128, NULL,
                              PXSI_OWN_BUS, FIELD(pxs_bus_opts_t, export_wait, 'u'),
                              PXSI_INIT_ENV, 0,
                              "attaching jobs an exported bus's producer waits for before "
                              "sending"},
    [PXSI_OPT_STATS] = {"PXS_STATS", PXSI_OPT_ENUM, 0, 0, 0, stats_names, PXSI_OWN_NONE, NOFIELD,
                        PXSI_INIT_NONE, 0,
                        "print every handle's counters at its destroy (off, 1, json)"},
    [PXSI_OPT_INLINE_MAX] = {"PXS_INLINE_MAX", PXSI_OPT_SIZE, 384, 0, 16384, NULL,
                             PXSI_OWN_PRODUCER, FIELD(pxs_producer_opts_t, inline_max, 'u'),
                             PXSI_INIT_ENV, 0,
                             "largest chunk a producer sends inside its event (0: off)"},
    [PXSI_OPT_LEND] = {"PXS_LEND", PXSI_OPT_BOOL, 1, 0, 1, NULL, PXSI_OWN_NONE, NOFIELD,
                       PXSI_INIT_NONE, 0,
                       "lent buffers (pxs_store_put_ref) where the node allows; 0: copy puts "
                       "(read at store create)"},
    [PXSI_OPT_PREFAULT] = {"PXS_PREFAULT", PXSI_OPT_SIZE, 256.0 * 1024 * 1024, 0,
                           (double)UINT64_MAX, NULL, PXSI_OWN_NONE, NOFIELD, PXSI_INIT_NONE, 0,
                           "bytes of its own arena, and of same-node peers' arenas, a rank "
                           "maps in at store create (0: off)"},
    [PXSI_OPT_STORE_CONNECTOR] = {NULL, PXSI_OPT_FIELD, 0, 0, 0, NULL, PXSI_OWN_STORE,
                                  FIELD(pxs_store_opts_t, connector, 'i'), PXSI_INIT_VALUE,
                                  PXS_CONN_RMA, "connector kind: PXS_CONN_RMA"},
    [PXSI_OPT_STORE_SHM_FIELD] = {NULL, PXSI_OPT_FIELD, 0, 0, 0, NULL, PXSI_OWN_STORE,
                                  FIELD(pxs_store_opts_t, shm, 'i'), PXSI_INIT_VALUE, -1,
                                  "shared-memory path: -1 = auto (PXS_SHM)"},
    [PXSI_OPT_STORE_PROGRESS_THREAD_FIELD] = {NULL, PXSI_OPT_FIELD, 0, 0, 0, NULL, PXSI_OWN_STORE,
                                              FIELD(pxs_store_opts_t, progress_thread, 'i'),
                                              PXSI_INIT_VALUE, -1,
                                              "UCX progress thread: -1 = PXS_PROGRESS_THREAD"},
    [PXSI_OPT_PUT_RESOLVES] = {NULL, PXSI_OPT_FIELD, 0, 0, 0, NULL, PXSI_OWN_PUT,
                               FIELD(pxs_put_opts_t, resolves, 'u'), PXSI_INIT_VALUE, 1,
                               "resolve budget of a put: 1"},
    [PXSI_OPT_PUT_TIMEOUT_FIELD] = {NULL, PXSI_OPT_FIELD, 0, 0, 0, NULL, PXSI_OWN_PUT,
                                    FIELD(pxs_put_opts_t, timeout, 'd'), PXSI_INIT_VALUE,
                                    PXS_TIMEOUT_DEFAULT, "put timeout: the store's"},
    [PXSI_OPT_PRODUCER_PUT_TIMEOUT] = {NULL, PXSI_OPT_FIELD, 0, 0, 0, NULL, PXSI_OWN_PRODUCER,
                                       FIELD(pxs_producer_opts_t, put_timeout, 'd'),
                                       PXSI_INIT_VALUE, PXS_TIMEOUT_DEFAULT,
                                       "producer's put timeout: the store's"},
    [PXSI_OPT_PRODUCER_CLOSE_ON_DESTROY] = {NULL, PXSI_OPT_FIELD, 0, 0, 0, NULL, PXSI_OWN_PRODUCER,
                                            FIELD(pxs_producer_opts_t, close_on_destroy, 'i'),
                                            PXSI_INIT_VALUE, 1,
                                            "destroy closes the producer's topics"},
    [PXSI_OPT_SEND_CHECKSUM] = {NULL, PXSI_OPT_FIELD, 0, 0, 0, NULL, PXSI_OWN_SEND,
                                FIELD(pxs_send_opts_t, checksum, 'i'), PXSI_INIT_VALUE, -1,
                                "send checksum: -1 = the producer's"},
    [PXSI_OPT_CONSUMER_DROP_POLICY] = {NULL, PXSI_OPT_FIELD, 0, 0, 0, NULL, PXSI_OWN_CONSUMER,
                                       FIELD(pxs_consumer_opts_t, drop_policy, 'i'),
                                       PXSI_INIT_VALUE, PXS_DROP_EVICT,
                                       "filtered events give their object back"},
};

const pxsi_option_t *
pxsi_options(size_t *n_out)
{
    if (n_out)
        *n_out = PXSI_OPT_N_;
    return table;
}

uint64_t
pxsi_opt_uint(int id)
{
    const pxsi_option_t *o = &table[id];
    PXS_ASSERT(o->type == PXSI_OPT_UINT || o->type == PXSI_OPT_SIZE);
    if (o->type == PXSI_OPT_SIZE)
        return pxsi_env_size_in(o->env, (uint64_t)o->dflt, (uint64_t)o->min,
                                o->max >= (double)UINT64_MAX ? UINT64_MAX : (uint64_t)o->max);
    return pxsi_env_uint(o->env, (uint64_t)o->dflt, (uint64_t)o->min, (uint64_t)o->max);
}

double
pxsi_opt_double(int id)
{
    const pxsi_option_t *o = &table[id];
    PXS_ASSERT(o->type == PXSI_OPT_DOUBLE);
    return pxsi_env_double(o->env, o->dflt);
}

int
pxsi_opt_bool(int id)
{
    const pxsi_option_t *o = &table[id];
    PXS_ASSERT(o->type == PXSI_OPT_BOOL);
    return pxsi_env_bool(o->env, (int)o->dflt);
}

int
pxsi_opt_enum(int id)
{
    const pxsi_option_t *o = &table[id];
    PXS_ASSERT(o->type == PXSI_OPT_ENUM);
    return pxsi_env_enum(o->env, (int)o->dflt, o->names);
}

static void
put_field(void *s, const pxsi_option_t *o, double v)
{
    unsigned char *p = (unsigned char *)s + o->offset;
    if (o->ftype == 'd' && o->fsize == sizeof(double)) {
        memcpy(p, &v, sizeof v);
    } else if (o->ftype == 'i' && o->fsize == sizeof(int)) {
        int i = (int)v;
        memcpy(p, &i, sizeof i);
    } else if (o->ftype == 'u' && o->fsize == sizeof(uint32_t)) {
        uint32_t u = (uint32_t)v;
        memcpy(p, &u, sizeof u);
    } else if (o->ftype == 'u' && o->fsize == sizeof(uint64_t)) {
        uint64_t u = (uint64_t)v;
        memcpy(p, &u, sizeof u);
    } else {
        PXS_ASSERT(!"option table: unsupported field type");
    }
}

static size_t
owner_size(int owner)
{
    switch (owner) {
    case PXSI_OWN_BUS:
        return sizeof(pxs_bus_opts_t);
    case PXSI_OWN_STORE:
        return sizeof(pxs_store_opts_t);
    case PXSI_OWN_PUT:
        return sizeof(pxs_put_opts_t);
    case PXSI_OWN_PRODUCER:
        return sizeof(pxs_producer_opts_t);
    case PXSI_OWN_SEND:
        return sizeof(pxs_send_opts_t);
    case PXSI_OWN_CONSUMER:
        return sizeof(pxs_consumer_opts_t);
    default:
        return 0;
    }
}

int
pxsi_opts_init_from_table(int owner, void *opts, size_t size, const char *subsys, const char *what)
{
    if (!opts || size < sizeof(size_t))
        return pxsi_err(PXS_ERR_INVALID, subsys, "%s: NULL or size %zu", what, size);
    union {
        pxs_bus_opts_t bus;
        pxs_store_opts_t store;
        pxs_put_opts_t put;
        pxs_producer_opts_t producer;
        pxs_send_opts_t send;
        pxs_consumer_opts_t consumer;
    } d;
    size_t d_size = owner_size(owner);
    PXS_ASSERT(d_size > 0 && d_size <= sizeof d);
    memset(&d, 0, sizeof d);
    for (int i = 0; i < PXSI_OPT_N_; i++) {
        const pxsi_option_t *o = &table[i];
        if (o->owner != owner || o->init == PXSI_INIT_NONE)
            continue;
        double v = o->value;
        if (o->init == PXSI_INIT_ENV) {
            switch (o->type) {
            case PXSI_OPT_SIZE:
            case PXSI_OPT_UINT:
                v = (double)pxsi_opt_uint(i);
                break;
            case PXSI_OPT_DOUBLE:
                v = pxsi_opt_double(i);
                break;
            case PXSI_OPT_BOOL:
                v = pxsi_opt_bool(i);
                break;
            case PXSI_OPT_ENUM:
                v = pxsi_opt_enum(i);
                break;
            default:
                break;
            }
        }
        put_field(&d, o, v);
    }
    pxsi_opts_fill(opts, size, &d, d_size);
    return PXS_OK;
}
