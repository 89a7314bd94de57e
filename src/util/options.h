/* The option table: every PXS_* environment variable and every non-zero
 * default of an options struct, in one place (src/util/options.c). Each row
 * gives the environment name, the type, the default, the bounds, one doc
 * line and the options-struct field it fills. The README's "Environment"
 * table is checked against it (test unit.readme.tables). See
 * docs/DESIGN.md, section "Environment", and CONTRIBUTING.md for adding an
 * option. Not installed. */
#ifndef PXSI_OPTIONS_H
#define PXSI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

/* Bounds used by the table and by the modules that check explicit fields. */
#define PXSI_SLOTS_MAX       (1u << 20) /* mailbox slots per rank */
#define PXSI_BATCH_MAX       4096u      /* events per destination queue */
#define PXSI_MAX_OBJECTS_MAX (1u << 24) /* store slots per rank */

/* Row ids (the table is indexed by them). */
enum pxsi_opt_id {
    PXSI_OPT_LOG,
    PXSI_OPT_MAILBOX_SLOTS,
    PXSI_OPT_BATCH,
    PXSI_OPT_PREFETCH,
    PXSI_OPT_SEND_TIMEOUT,
    PXSI_OPT_ARENA_BYTES,
    PXSI_OPT_PUT_TIMEOUT,
    PXSI_OPT_SHM,
    PXSI_OPT_GET_CHUNK,
    PXSI_OPT_MAX_OBJECTS,
    PXSI_OPT_MAILBOX_SOLE,
    PXSI_OPT_MEMORY_CHECK,
    PXSI_OPT_PROGRESS_THREAD,
    PXSI_OPT_EXPORT_WAIT,
    PXSI_OPT_STATS,
    PXSI_OPT_INLINE_MAX,
    PXSI_OPT_LEND,
    PXSI_OPT_PREFAULT,
    /* field defaults without an environment variable */
    PXSI_OPT_STORE_CONNECTOR,
    PXSI_OPT_STORE_SHM_FIELD,
    PXSI_OPT_STORE_PROGRESS_THREAD_FIELD,
    PXSI_OPT_PUT_RESOLVES,
    PXSI_OPT_PUT_TIMEOUT_FIELD,
    PXSI_OPT_PRODUCER_PUT_TIMEOUT,
    PXSI_OPT_PRODUCER_CLOSE_ON_DESTROY,
    PXSI_OPT_SEND_CHECKSUM,
    PXSI_OPT_CONSUMER_DROP_POLICY,
    PXSI_OPT_N_
};

/* How the environment value is parsed (pxsi_env_* in util.c). */
enum pxsi_opt_type {
    PXSI_OPT_SIZE,   /* digits + optional K/M/G/T suffix, in [min, max] */
    PXSI_OPT_UINT,   /* plain digits in [min, max] */
    PXSI_OPT_DOUBLE, /* finite number (seconds); negative values allowed */
    PXSI_OPT_BOOL,   /* 0/off/no/false, 1/on/yes/true */
    PXSI_OPT_ENUM,   /* one of `names` (case-insensitive), value = index */
    PXSI_OPT_FIELD   /* no environment variable: a field default only */
};

/* The options struct a row fills at pxs_<owner>_opts_init. */
enum pxsi_opt_owner {
    PXSI_OWN_NONE, /* read where used (at create, or once per process) */
    PXSI_OWN_BUS,
    PXSI_OWN_STORE,
    PXSI_OWN_PUT,
    PXSI_OWN_PRODUCER,
    PXSI_OWN_SEND,
    PXSI_OWN_CONSUMER,
    PXSI_OWN_N_
};

/* What opts_init writes into the row's field. */
enum pxsi_opt_init {
    PXSI_INIT_NONE, /* nothing (no field, or 0 is right) */
    PXSI_INIT_ENV,  /* the environment value (default when unset or bad) */
    PXSI_INIT_VALUE /* `value`: the field's default ("0 = from the environment
                       at create", or a sentinel such as PXS_TIMEOUT_DEFAULT) */
};

typedef struct pxsi_option {
    const char *env;          /* "PXS_BATCH"; NULL for PXSI_OPT_FIELD */
    int type;                 /* enum pxsi_opt_type */
    double dflt;              /* default of the environment value */
    double min, max;          /* bounds (SIZE, UINT), inclusive */
    const char *const *names; /* ENUM: the words, index = value */
    int owner;                /* enum pxsi_opt_owner */
    const char *field;        /* "pxs_bus_opts_t.batch" (documentation) */
    size_t offset, fsize;     /* the field in the owner's struct */
    int ftype;                /* field C type: 'u' unsigned, 'i' int, 'd' double */
    int init;                 /* enum pxsi_opt_init */
    double value;             /* PXSI_INIT_VALUE */
    const char *doc;          /* one line */
} pxsi_option_t;

/* The table and its length (tests and documentation). */
const pxsi_option_t *pxsi_options(size_t *n_out);

/* The environment value of a row, within its bounds; the row's default when
 * unset, and the default plus a one-time warning naming the variable when it
 * does not parse or is out of range. */
uint64_t pxsi_opt_uint(int id); /* SIZE, UINT */
double pxsi_opt_double(int id);
int pxsi_opt_bool(int id);
int pxsi_opt_enum(int id);

/* The body of every pxs_<owner>_opts_init_(opts, size): the owner's
 * defaults from the table (zero elsewhere), environment values read now for
 * PXSI_INIT_ENV rows, then pxsi_opts_fill. PXS_ERR_INVALID (detail under
 * subsys, naming `what`) for NULL or size < sizeof(size_t). */
int pxsi_opts_init_from_table(int owner, void *opts, size_t size, const char *subsys,
                              const char *what);

#endif
