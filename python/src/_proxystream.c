/* _proxystream: the CPython binding of proxystream (module `proxystream`).
 *
 * A thin layer over the C API (the headers in include/proxystream): every
 * call maps to one library call (or a short loop of them); nothing is
 * reimplemented here. Communicators come from mpi4py (PyMPIComm_Get).
 * Blocking calls release the GIL; pxs_consumer_next is called in short
 * slices with PyErr_CheckSignals() in between so Ctrl-C interrupts a wait;
 * put, send, flush and close_topic run with the thread's interrupt hook
 * (pxs_interrupt_hook) set to intr_hook, which ends a backpressure wait
 * when a signal handler raised.
 * Design: docs/DESIGN.md, section "Python binding"; the user-facing page is
 * README.md, section "Python". */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <mpi.h>
#include <mpi4py/mpi4py.h>

#include <stdint.h>
#include <string.h>
#include <time.h>

#include <proxystream/log.h>
#include <proxystream/proxy.h>
#include <proxystream/pubsub.h>
#include <proxystream/status.h>
#include <proxystream/store.h>
#include <proxystream/stream.h>

/* Slice of a blocking consumer wait between two signal checks, in s. */
#define WAIT_SLICE 0.1
/* Returned by internal helpers when a Python exception is set. */
#define PYERR (-1000)

/* ------------------------------------------------------------ errors */

static PyObject *Error;         /* proxystream.Error */
static PyObject *ErrByCode[32]; /* index -code (1..16) */

static PyObject *
err_class(int code)
{
    if (code < 0 && -code < (int)(sizeof ErrByCode / sizeof ErrByCode[0]) &&
        ErrByCode[-code])
        return ErrByCode[-code];
    return Error;
}

/* Raise the exception for status `code` with `detail` (NULL: the library's
 * pxs_last_error_detail() of this thread). Returns NULL. */
static PyObject *
raise_status(int code, const char *detail)
{
    if (!detail)
        detail = pxs_last_error_detail();
    PyObject *cls = err_class(code);
    PyObject *msg =
        PyUnicode_FromFormat("%s: %s%s%s", pxs_errname(code),
                             pxs_strerror(code), detail[0] ? ": " : "", detail);
    if (!msg)
        return NULL;
    PyObject *exc = PyObject_CallOneArg(cls, msg);
    Py_DECREF(msg);
    if (!exc)
        return NULL;
    PyObject *c = PyLong_FromLong(code),
             *n = PyUnicode_FromString(pxs_errname(code)),
             *d = PyUnicode_FromString(detail);
    if (!c || !n || !d || PyObject_SetAttrString(exc, "code", c) < 0 ||
        PyObject_SetAttrString(exc, "name", n) < 0 ||
        PyObject_SetAttrString(exc, "detail", d) < 0) {
        Py_XDECREF(c);
        Py_XDECREF(n);
        Py_XDECREF(d);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(c);
    Py_DECREF(n);
    Py_DECREF(d);
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *
raise_closed(const char *what)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%s is closed", what);
    return raise_status(PXS_ERR_CLOSED, buf);
}

/* A handle usable by a call: not closed (`what` is closed) and not inside a
 * call of another thread (BusyError). Returns 0, or -1 with the error set. */
static int
handle_check(const void *h, int active, const char *what)
{
    if (!h) {
        raise_closed(what);
        return -1;
    }
    if (active) {
        char buf[96];
        snprintf(buf, sizeof buf, "%s in use by another thread", what);
        raise_status(PXS_ERR_BUSY, buf);
        return -1;
    }
    return 0;
}

/* __init__ runs once: RuntimeError "<what> already created" when h is set. */
static int
init_once(const void *h, const char *what)
{
    if (h) {
        PyErr_Format(PyExc_RuntimeError, "%s already created", what);
        return -1;
    }
    return 0;
}

/* The end of a close: rc < 0 drops the exception a child's close kept in
 * exc and raises rc's status; otherwise that exception, if any, is raised. */
static PyObject *
close_result(int rc, PyObject *exc[3])
{
    if (rc < 0) {
        Py_XDECREF(exc[0]);
        Py_XDECREF(exc[1]);
        Py_XDECREF(exc[2]);
        return raise_status(rc, NULL);
    }
    if (exc[0]) {
        PyErr_Restore(exc[0], exc[1], exc[2]);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* stats(): a dict of three counters, or rc's status raised. */
static PyObject *
stats_dict(int rc, const char *k0, uint64_t v0, const char *k1, uint64_t v1,
           const char *k2, uint64_t v2)
{
    if (rc < 0)
        return raise_status(rc, NULL);
    return Py_BuildValue("{sKsKsK}", k0, (unsigned long long)v0, k1,
                         (unsigned long long)v1, k2, (unsigned long long)v2);
}

/* Handles left open until after MPI_Finalize (e.g. module globals at exit)
 * are not destroyed from a destructor: that would call MPI after finalize. */
static int
mpi_gone(void)
{
    int fin = 0;
    MPI_Finalized(&fin);
    return fin;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Interruptible blocking calls (put, send, flush, close_topic): the
 * library asks intr_hook about every 50 ms while it waits on backpressure;
 * the hook takes the GIL back, runs Python's signal handlers and, when one
 * raised (Ctrl-C: KeyboardInterrupt), keeps the exception and ends the wait:
 * the call returns PXS_ERR_AGAIN (nothing stored or accepted) and
 * intr_done() raises the kept exception instead. */
typedef struct intr {
    PyObject *exc[3];
} intr_t;

static int
intr_hook(void *arg)
{
    intr_t *it = arg;
    if (it->exc[0])
        return 1;
    PyGILState_STATE g = PyGILState_Ensure();
    int hit = PyErr_CheckSignals() < 0;
    if (hit)
        PyErr_Fetch(&it->exc[0], &it->exc[1], &it->exc[2]);
    PyGILState_Release(g);
    return hit;
}

static void
intr_begin(intr_t *it)
{
    it->exc[0] = it->exc[1] = it->exc[2] = NULL;
    (void)pxs_interrupt_hook(intr_hook, it);
}

/* After the call (GIL held): remove the hook. Returns -1 with the kept
 * exception set if the call failed after an interrupt. A call that
 * succeeded anyway (e.g. a send accepted before a later flush wait was
 * interrupted) keeps its result: a KeyboardInterrupt is re-armed with
 * PyErr_SetInterrupt() to be raised right after it returns (so a send that
 * was accepted is not reported as failed), another exception is raised. */
static int
intr_done(intr_t *it, int rc)
{
    (void)pxs_interrupt_hook(NULL, NULL);
    if (!it->exc[0])
        return 0;
    if (rc >= 0 && PyErr_GivenExceptionMatches(it->exc[0], PyExc_KeyboardInterrupt)) {
        Py_XDECREF(it->exc[0]);
        Py_XDECREF(it->exc[1]);
        Py_XDECREF(it->exc[2]);
        PyErr_SetInterrupt();
        return 0;
    }
    PyErr_Restore(it->exc[0], it->exc[1], it->exc[2]);
    return -1;
}

/* Run `call` (its status to rc) with the GIL released and the interrupt hook
 * set, counted in `active` (the object's calls in flight). */
#define INTR_CALL(active, it, rc, call)                                        \
    do {                                                                       \
        (active)++;                                                            \
        intr_begin(&(it));                                                     \
        Py_BEGIN_ALLOW_THREADS                                                 \
        (rc) = (call);                                                         \
        Py_END_ALLOW_THREADS                                                   \
        (active)--;                                                            \
    } while (0)

/* intr_done, then rc < 0 raised as its status: 0, or -1 with an exception. */
static int
intr_end(intr_t *it, int rc)
{
    if (intr_done(it, rc) < 0)
        return -1;
    if (rc < 0) {
        raise_status(rc, NULL);
        return -1;
    }
    return 0;
}

/* timeout argument: None = forever (-1), else a float >= 0. */
static int
parse_timeout(PyObject *o, double *out)
{
    if (!o || o == Py_None) {
        *out = -1.0;
        return 0;
    }
    double t = PyFloat_AsDouble(o);
    if (t == -1.0 && PyErr_Occurred())
        return -1;
    if (t != t || t < 0) {
        PyErr_SetString(PyExc_ValueError, "timeout must be None or >= 0");
        return -1;
    }
    *out = t;
    return 0;
}

/* The optional keyword `timeout` of next() / next_object() (fmt names the
 * call) to *t as parse_timeout gives it. */
static int
timeout_kwarg(PyObject *args, PyObject *kw, const char *fmt, double *t)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *to = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &to))
        return -1;
    return parse_timeout(to, t);
}

static int
get_u32(PyObject *o, const char *what, uint32_t *out)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s out of range [0, 2**32)", what);
        return -1;
    }
    if (v > UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s out of range [0, 2**32)", what);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* An MPI communicator from an mpi4py Comm (None: MPI_COMM_NULL). */
static int
get_comm(PyObject *o, MPI_Comm *out)
{
    if (o == Py_None) {
        *out = MPI_COMM_NULL;
        return 0;
    }
    MPI_Comm *c = PyMPIComm_Get(o); /* TypeError for anything else */
    if (!c)
        return -1;
    *out = *c;
    return 0;
}

/* TypeError "<what> needs an mpi4py communicator" for MPI_COMM_NULL. */
static int
comm_needed(MPI_Comm c, const char *what)
{
    if (c == MPI_COMM_NULL) {
        PyErr_Format(PyExc_TypeError, "%s needs an mpi4py communicator", what);
        return -1;
    }
    return 0;
}

/* Children (producers, consumers) of a store or bus: weak references, closed
 * before their parent's handle is destroyed (they borrow it). */
static int
children_add(PyObject **list, PyObject *child)
{
    if (!*list && !(*list = PyList_New(0)))
        return -1;
    PyObject *ref = PyWeakref_NewRef(child, NULL);
    if (!ref)
        return -1;
    int rc = PyList_Append(*list, ref);
    Py_DECREF(ref);
    return rc;
}

static int child_active(PyObject *child);

/* 1 if a child is inside a call with the GIL released (another thread). */
static int
children_busy(PyObject *list)
{
    if (!list)
        return 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *child = PyWeakref_GetObject(PyList_GET_ITEM(list, i));
        if (child != Py_None && child_active(child))
            return 1;
    }
    return 0;
}

/* Close every live child; the first failure is kept in *exc (type, value,
 * traceback triple as from PyErr_Fetch) and the rest are cleared. */
static void
children_close(PyObject **list, PyObject *exc[3])
{
    if (!*list)
        return;
    PyObject *l = *list;
    *list = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(l); i++) {
        PyObject *child = PyWeakref_GetObject(PyList_GET_ITEM(l, i));
        if (child == Py_None)
            continue;
        Py_INCREF(child);
        PyObject *r = PyObject_CallMethod(child, "close", NULL);
        Py_DECREF(child);
        if (r) {
            Py_DECREF(r);
        } else if (!exc[0]) {
            PyErr_Fetch(&exc[0], &exc[1], &exc[2]);
        } else {
            PyErr_Clear();
        }
    }
    Py_DECREF(l);
}

/* ------------------------------------------------------------ types */

typedef struct {
    PyObject_HEAD
    pxs_store_t *h;
    int rank;
    int active; /* calls in flight with the GIL released */
    PyObject *children;
    PyObject *weakrefs;
} StoreObject;

typedef struct {
    PyObject_HEAD
    pxs_bus_t *h;
    pxs_subscriber_t *log; /* a stream log replay (open_log): h is NULL */
    int active;
    PyObject *children;
    PyObject *weakrefs;
} BusObject;

/* A bus, or a stream log replay, not closed yet. */
#define BUS_OPEN(b) ((b)->h != NULL || (b)->log != NULL)

typedef struct {
    PyObject_HEAD
    BusObject *bus;
    int publisher; /* 1: publisher, 0: subscriber */
} EndpointObject;

typedef struct {
    PyObject_HEAD
    pxs_proxy_t p;
    pxs_proxy_info_t info;
    uint32_t topic;
    int32_t producer;
    uint64_t seq;
    PyObject *meta;   /* bytes */
    PyObject *store;  /* StoreObject or NULL: resolve() goes through it */
    PyObject *cached; /* resolve()'s bytes */
} ProxyObject;

typedef struct {
    PyObject_HEAD
    pxs_producer_t *h;
    PyObject *store; /* StoreObject or NULL */
    EndpointObject *pub;
    int active;
    PyObject *weakrefs;
} ProducerObject;

typedef struct {
    PyObject_HEAD
    pxs_consumer_t *h;
    PyObject *store; /* StoreObject or NULL */
    EndpointObject *sub;
    PyObject *filter;
    PyObject *fexc[3]; /* exception raised by the filter callable */
    int active;
    int ended;
    PyObject *weakrefs;
} ConsumerObject;

/* Store.view(): the exporter of one pxs_view_t. */
typedef struct {
    PyObject_HEAD
    StoreObject *store;
    ProxyObject *proxy;
    pxs_view_t v;
    int held;         /* v is held (not yet released) */
    int exit_pending; /* the with block ended: release with the last export */
    Py_ssize_t exports;
    PyObject *mv; /* the memoryview __enter__ returned */
    PyObject *weakrefs;
} ViewObject;

static PyTypeObject StoreType, BusType, EndpointType, ProxyType, ProducerType,
    ConsumerType, ViewType;

/* A new producer or consumer as a child of its store (or NULL) and bus. */
static int
children_add_both(PyObject *store, BusObject *bus, PyObject *child)
{
    if (store && children_add(&((StoreObject *)store)->children, child) < 0)
        return -1;
    return children_add(&bus->children, child);
}

/* ------------------------------------------------------------ Proxy */

static ProxyObject *
proxy_new(const pxs_proxy_t *p, uint32_t topic, int32_t producer, uint64_t seq,
          const void *meta, size_t meta_len, PyObject *store)
{
    pxs_proxy_info_t info;
    int rc = pxs_proxy_decode(p->bytes, PXS_PROXY_SIZE, &info);
    if (rc < 0)
        return (ProxyObject *)raise_status(rc, NULL);
    ProxyObject *o = PyObject_GC_New(ProxyObject, &ProxyType);
    if (!o)
        return NULL;
    o->p = *p;
    o->info = info;
    o->topic = topic;
    o->producer = producer;
    o->seq = seq;
    o->store = NULL;
    o->cached = NULL;
    o->meta = PyBytes_FromStringAndSize(meta ? (const char *)meta : "",
                                        (Py_ssize_t)meta_len);
    if (!o->meta) {
        o->meta = NULL;
        Py_DECREF(o);
        return NULL;
    }
    Py_XINCREF(store);
    o->store = store;
    PyObject_GC_Track(o);
    return o;
}

/* A proxy made from bare bytes: event fields from the proxy itself. */
static ProxyObject *
proxy_from_raw(const pxs_proxy_t *p, PyObject *store)
{
    pxs_proxy_info_t info;
    int rc = pxs_proxy_decode(p->bytes, PXS_PROXY_SIZE, &info);
    if (rc < 0)
        return (ProxyObject *)raise_status(rc, NULL);
    return proxy_new(p, info.topic, (int32_t)info.owner, info.seq, NULL, 0,
                     store);
}

static ProxyObject *
proxy_from_event(const pxs_event_t *ev, PyObject *store)
{
    return proxy_new(&ev->proxy, ev->topic, ev->producer, ev->seq, ev->meta,
                     ev->meta_len, store);
}

static int
proxy_traverse(ProxyObject *o, visitproc visit, void *arg)
{
    Py_VISIT(o->store);
    Py_VISIT(o->cached);
    return 0;
}

static int
proxy_clear(ProxyObject *o)
{
    Py_CLEAR(o->store);
    Py_CLEAR(o->cached);
    return 0;
}

static void
proxy_dealloc(ProxyObject *o)
{
    PyObject_GC_UnTrack(o);
    proxy_clear(o);
    Py_XDECREF(o->meta);
    PyObject_GC_Del(o);
}

static int
proxy_arg(PyObject *o, const pxs_proxy_t **out)
{
    if (!PyObject_TypeCheck(o, &ProxyType)) {
        PyErr_Format(PyExc_TypeError,
                     "expected a proxystream.Proxy, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    *out = &((ProxyObject *)o)->p;
    return 0;
}

static PyObject *
proxy_from_bytes(PyObject *cls, PyObject *arg)
{
    (void)cls;
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    pxs_proxy_t p;
    int rc = pxs_proxy_decode(b.buf, (size_t)b.len, NULL);
    if (rc == PXS_OK)
        memcpy(p.bytes, b.buf, PXS_PROXY_SIZE);
    PyBuffer_Release(&b);
    if (rc < 0)
        return raise_status(rc, NULL);
    return (PyObject *)proxy_from_raw(&p, NULL);
}

static PyObject *
proxy_from_text(PyObject *cls, PyObject *arg)
{
    (void)cls;
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "Proxy.from_text needs a str, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    const char *s = PyUnicode_AsUTF8(arg);
    if (!s)
        return NULL;
    pxs_proxy_t p;
    int rc = pxs_proxy_from_text(s, &p);
    if (rc < 0)
        return raise_status(rc, NULL);
    return (PyObject *)proxy_from_raw(&p, NULL);
}

/* Pickle: the 64 bytes and the event fields (not the store: a proxy that
 * travelled resolves through the store given to Store.resolve/Proxy.resolve).
 */
static PyObject *
proxy_rebuild(PyObject *cls, PyObject *args)
{
    (void)cls;
    Py_buffer b, m;
    unsigned long topic;
    long producer;
    unsigned long long seq;
    if (!PyArg_ParseTuple(args, "y*klKy*:_rebuild", &b, &topic, &producer, &seq,
                          &m))
        return NULL;
    PyObject *r = NULL;
    pxs_proxy_t p;
    int rc = pxs_proxy_decode(b.buf, (size_t)b.len, NULL);
    if (rc < 0) {
        raise_status(rc, NULL);
    } else if ((size_t)m.len > PXS_EVENT_META_MAX) {
        raise_status(PXS_ERR_TOO_BIG, "metadata over PXS_EVENT_META_MAX");
    } else {
        memcpy(p.bytes, b.buf, PXS_PROXY_SIZE);
        r = (PyObject *)proxy_new(&p, (uint32_t)topic, (int32_t)producer, seq,
                                  m.buf, (size_t)m.len, NULL);
    }
    PyBuffer_Release(&b);
    PyBuffer_Release(&m);
    return r;
}

static PyObject *
proxy_reduce(ProxyObject *o, PyObject *unused)
{
    (void)unused;
    PyObject *rebuild =
        PyObject_GetAttrString((PyObject *)&ProxyType, "_rebuild");
    if (!rebuild)
        return NULL;
    PyObject *r =
        Py_BuildValue("N(y#kiKO)", rebuild, (const char *)o->p.bytes,
                      (Py_ssize_t)PXS_PROXY_SIZE, (unsigned long)o->topic,
                      (int)o->producer, (unsigned long long)o->seq, o->meta);
    return r;
}

static PyObject *
proxy_bytes(ProxyObject *o, PyObject *unused)
{
    (void)unused;
    return PyBytes_FromStringAndSize((const char *)o->p.bytes, PXS_PROXY_SIZE);
}

static PyObject *
proxy_str(ProxyObject *o)
{
    char buf[PXS_PROXY_TEXT_LEN];
    int rc = pxs_proxy_to_text(&o->p, buf, sizeof buf);
    if (rc < 0)
        return raise_status(rc, NULL);
    return PyUnicode_FromString(buf);
}

static PyObject *
proxy_repr(ProxyObject *o)
{
    return PyUnicode_FromFormat(
        "<proxystream.Proxy topic=%lu producer=%d seq=%llu "
        "owner=%lu size=%llu>",
        (unsigned long)o->topic, (int)o->producer, (unsigned long long)o->seq,
        (unsigned long)o->info.owner, (unsigned long long)o->info.size);
}

static PyObject *
proxy_richcompare(PyObject *a, PyObject *b, int op)
{
    if (!PyObject_TypeCheck(b, &ProxyType) || (op != Py_EQ && op != Py_NE))
        Py_RETURN_NOTIMPLEMENTED;
    int eq = memcmp(((ProxyObject *)a)->p.bytes, ((ProxyObject *)b)->p.bytes,
                    PXS_PROXY_SIZE) == 0;
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static Py_hash_t
proxy_hash(ProxyObject *o)
{
    /* the proxy's own CRC (bytes 60..63) */
    uint32_t h;
    memcpy(&h, o->p.bytes + 60, 4);
    return (Py_hash_t)(h == (uint32_t)-1 ? 0 : h);
}

static PyObject *store_resolve_bytes(StoreObject *s, const pxs_proxy_t *p,
                                     size_t size);
static int store_check(StoreObject *s);

static PyObject *
proxy_resolve(ProxyObject *o, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"store", NULL};
    PyObject *store = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:resolve", kwlist, &store))
        return NULL;
    if (o->cached)
        return Py_NewRef(o->cached);
    if (store == Py_None)
        store = o->store;
    if (!store) {
        PyErr_SetString(
            PyExc_ValueError,
            "this proxy has no store: pass one (proxy.resolve(store)) "
            "or use Store.resolve(proxy)");
        return NULL;
    }
    if (!PyObject_TypeCheck(store, &StoreType)) {
        PyErr_Format(PyExc_TypeError,
                     "store must be a proxystream.Store, not %.100s",
                     Py_TYPE(store)->tp_name);
        return NULL;
    }
    if (store_check((StoreObject *)store) < 0)
        return NULL;
    PyObject *b =
        store_resolve_bytes((StoreObject *)store, &o->p, o->info.size);
    if (!b)
        return NULL;
    o->cached = Py_NewRef(b);
    return b;
}

static PyObject *
proxy_get_topic(ProxyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLong(o->topic);
}
static PyObject *
proxy_get_producer(ProxyObject *o, void *c)
{
    (void)c;
    return PyLong_FromLong(o->producer);
}
static PyObject *
proxy_get_seq(ProxyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(o->seq);
}
static PyObject *
proxy_get_meta(ProxyObject *o, void *c)
{
    (void)c;
    return Py_NewRef(o->meta);
}
static PyObject *
proxy_get_size(ProxyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(o->info.size);
}
static PyObject *
proxy_get_owner(ProxyObject *o, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLong(o->info.owner);
}
static PyObject *
proxy_get_inline(ProxyObject *o, void *c)
{
    (void)c;
    return PyBool_FromLong(o->info.kind == PXS_CONN_INLINE);
}
static PyObject *
proxy_get_resolved(ProxyObject *o, void *c)
{
    (void)c;
    return PyBool_FromLong(o->cached != NULL);
}

static PyGetSetDef proxy_getset[] = {
    {"topic", (getter)proxy_get_topic, NULL, "topic id of the event", NULL},
    {"producer", (getter)proxy_get_producer, NULL,
     "publishing rank (the owner for a proxy not received as an event)", NULL},
    {"seq", (getter)proxy_get_seq, NULL,
     "sequence number per (producer, topic)", NULL},
    {"metadata", (getter)proxy_get_meta, NULL, "inline metadata (bytes)", NULL},
    {"size", (getter)proxy_get_size, NULL, "payload size in bytes", NULL},
    {"owner", (getter)proxy_get_owner, NULL, "rank holding the bytes", NULL},
    {"resolved", (getter)proxy_get_resolved, NULL,
     "resolve() was called (cached)", NULL},
    {"inline", (getter)proxy_get_inline, NULL,
     "the payload travelled inside the event (held by this process until resolved)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyObject *
proxy_enter(PyObject *o, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(o);
}

static PyObject *
proxy_exit(PyObject *o, PyObject *args)
{
    (void)o;
    (void)args;
    Py_RETURN_FALSE;
}

static PyMethodDef proxy_methods[] = {
    {"resolve", (PyCFunction)(void (*)(void))proxy_resolve,
     METH_VARARGS | METH_KEYWORDS,
     "resolve(store=None) -> bytes: the payload, read once through the store "
     "the "
     "proxy came with (or `store`) and cached"},
    {"from_bytes", (PyCFunction)proxy_from_bytes, METH_O | METH_CLASS,
     "Proxy.from_bytes(b): validate 64 wire bytes (CorruptProxyError if "
     "forged)"},
    {"from_text", (PyCFunction)proxy_from_text, METH_O | METH_CLASS,
     "Proxy.from_text(s): parse the text form 'pxs2:<hex>'"},
    {"_rebuild", (PyCFunction)proxy_rebuild, METH_VARARGS | METH_CLASS,
     "pickle support"},
    {"__reduce__", (PyCFunction)proxy_reduce, METH_NOARGS, NULL},
    {"__bytes__", (PyCFunction)proxy_bytes, METH_NOARGS,
     "the 64-byte wire form"},
    {"__enter__", proxy_enter, METH_NOARGS, NULL},
    {"__exit__", proxy_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ProxyType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "proxystream.Proxy",
    .tp_basicsize = sizeof(ProxyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc =
        "A 64-byte reference to an object in a store, with its event fields.",
    .tp_dealloc = (destructor)proxy_dealloc,
    .tp_traverse = (traverseproc)proxy_traverse,
    .tp_clear = (inquiry)proxy_clear,
    .tp_repr = (reprfunc)proxy_repr,
    .tp_str = (reprfunc)proxy_str,
    .tp_hash = (hashfunc)proxy_hash,
    .tp_richcompare = proxy_richcompare,
    .tp_methods = proxy_methods,
    .tp_getset = proxy_getset,
};

/* ------------------------------------------------------------ Store */

static int
store_check(StoreObject *s)
{
    if (!s->h) {
        raise_closed("store");
        return -1;
    }
    return 0;
}

static int
opt_size(PyObject *v, const char *name, size_t *out)
{
    size_t x = PyLong_AsSize_t(v);
    if (x == (size_t)-1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError) ||
            PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s must be an int >= 0", name);
        }
        return -1;
    }
    *out = x;
    return 0;
}

static int
opt_double(PyObject *v, const char *name, double *out)
{
    (void)name;
    double x = PyFloat_AsDouble(v);
    if (x == -1.0 && PyErr_Occurred())
        return -1;
    *out = x;
    return 0;
}

static int
opt_int(PyObject *v, const char *name, int *out)
{
    if (PyFloat_Check(v) || !PyNumber_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int or bool", name);
        return -1;
    }
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred())
        return -1;
    *out = (int)x;
    return 0;
}

static int
store_init(StoreObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"comm",        "connector", "arena_bytes",
                             "put_timeout", "shm",       "max_objects",
                             "get_chunk",   "path",      "durable",
                             "spill_path",  "spill_after", NULL};
    PyObject *comm = Py_None, *conn = NULL, *arena = NULL, *pt = NULL,
             *shm = NULL, *maxo = NULL, *chunk = NULL, *dur = NULL, *sa = NULL;
    const char *path = NULL, *spill = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$OOOOOOzOzO:Store", kwlist, &comm,
                                     &conn, &arena, &pt, &shm, &maxo, &chunk,
                                     &path, &dur, &spill, &sa))
        return -1;
    if (init_once(self->h, "Store") < 0)
        return -1;
    MPI_Comm c;
    if (get_comm(comm, &c) < 0)
        return -1;
    pxs_store_opts_t o;
    pxs_store_opts_init(&o);
    if (conn && conn != Py_None) {
        if (PyUnicode_Check(conn)) {
            const char *s = PyUnicode_AsUTF8(conn);
            if (!s)
                return -1;
            if (!strcmp(s, "rma"))
                o.connector = PXS_CONN_RMA;
            else if (!strcmp(s, "local"))
                o.connector = PXS_CONN_LOCAL;
            else if (!strcmp(s, "hdf5"))
                o.connector = PXS_CONN_HDF5;
            else if (!strcmp(s, "ucx"))
                o.connector = PXS_CONN_UCX;
            else {
                PyErr_Format(PyExc_ValueError,
                             "connector must be 'rma', 'local', 'hdf5' or 'ucx', not '%s'", s);
                return -1;
            }
        } else if (opt_int(conn, "connector", &o.connector) < 0) {
            return -1;
        }
    }
    if (arena && opt_size(arena, "arena_bytes", &o.arena_bytes) < 0)
        return -1;
    if (pt && pt != Py_None &&
        opt_double(pt, "put_timeout", &o.put_timeout) < 0)
        return -1;
    if (shm && shm != Py_None && opt_int(shm, "shm", &o.shm) < 0)
        return -1;
    if (maxo && opt_size(maxo, "max_objects", &o.max_objects) < 0)
        return -1;
    if (chunk && opt_size(chunk, "get_chunk", &o.get_chunk) < 0)
        return -1;
    o.path = path;
    o.spill_path = spill;
    if (dur && dur != Py_None && opt_int(dur, "durable", &o.durable) < 0)
        return -1;
    if (sa && sa != Py_None && opt_double(sa, "spill_after", &o.spill_after) < 0)
        return -1;
    if (o.connector == PXS_CONN_LOCAL && c == MPI_COMM_NULL)
        c = MPI_COMM_SELF;
    if (comm_needed(c, "Store") < 0)
        return -1;
    pxs_store_t *h = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_store_create(c, &o, &h);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        raise_status(rc, NULL);
        return -1;
    }
    self->h = h;
    self->rank = pxs_store_rank(h);
    return 0;
}

/* pxs_store_open: a new Store object on a finished HDF5 store. */
static PyObject *
store_open_impl(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"comm", "path", NULL};
    PyObject *comm;
    const char *path;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Os:open", kwlist, &comm, &path))
        return NULL;
    MPI_Comm c;
    if (get_comm(comm, &c) < 0 || comm_needed(c, "Store.open") < 0)
        return NULL;
    StoreObject *self = (StoreObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    pxs_store_t *h = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_store_open(c, path, &h);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        Py_DECREF(self);
        return raise_status(rc, NULL);
    }
    self->h = h;
    self->rank = pxs_store_rank(h);
    return (PyObject *)self;
}

static PyObject *
store_open_cls(PyObject *cls, PyObject *args, PyObject *kw)
{
    return store_open_impl((PyTypeObject *)cls, args, kw);
}

static PyObject *
mod_open_store(PyObject *m, PyObject *args, PyObject *kw)
{
    (void)m;
    return store_open_impl(&StoreType, args, kw);
}

/* Collective; children (producers, consumers on this store) are closed first.
 * A view still held anywhere makes every rank's close raise BusyError and
 * leaves the store open (pxs_store_destroy's rule): release, then close again.
 */
static PyObject *
store_close(StoreObject *s, PyObject *unused)
{
    (void)unused;
    if (!s->h)
        Py_RETURN_NONE;
    if (s->active || children_busy(s->children))
        return raise_status(PXS_ERR_BUSY, "store in use by another thread");
    PyObject *exc[3] = {NULL, NULL, NULL};
    children_close(&s->children, exc);
    int rc;
    s->active++;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_store_destroy(s->h);
    Py_END_ALLOW_THREADS
    s->active--;
    if (rc != PXS_ERR_BUSY) /* busy: the store stays open */
        s->h = NULL;
    return close_result(rc, exc);
}

static PyObject *
store_put(StoreObject *s, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"buf",      "resolves", "keep",
                             "checksum", "timeout",  NULL};
    PyObject *obj, *res = NULL, *tmo = Py_None;
    int keep = 0, checksum = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|Opp$O:put", kwlist, &obj,
                                     &res, &keep, &checksum, &tmo))
        return NULL;
    if (store_check(s) < 0)
        return NULL;
    pxs_put_opts_t o;
    pxs_put_opts_init(&o);
    if (res && res != Py_None && get_u32(res, "resolves", &o.resolves) < 0)
        return NULL;
    if (keep)
        o.resolves = 0;
    o.checksum = checksum;
    if (tmo != Py_None && parse_timeout(tmo, &o.timeout) < 0)
        return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(obj, &b, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    pxs_proxy_t p;
    int rc;
    intr_t it;
    INTR_CALL(s->active, it, rc,
              pxs_store_put(s->h, b.buf, (size_t)b.len, &o, &p));
    PyBuffer_Release(&b);
    if (intr_end(&it, rc) < 0)
        return NULL;
    return (PyObject *)proxy_from_raw(&p, (PyObject *)s);
}

/* Resolve into a new bytes object of the proxy's size (no second copy). */
static PyObject *
store_resolve_bytes(StoreObject *s, const pxs_proxy_t *p, size_t size)
{
    if (size > (size_t)PY_SSIZE_T_MAX)
        return raise_status(PXS_ERR_TOO_BIG,
                            "object larger than a bytes object");
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (!b)
        return NULL;
    size_t len = 0;
    int rc;
    s->active++;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_store_resolve(s->h, p, PyBytes_AS_STRING(b), size, &len);
    Py_END_ALLOW_THREADS
    s->active--;
    if (rc < 0) {
        Py_DECREF(b);
        return raise_status(rc, NULL);
    }
    if (len != size && _PyBytes_Resize(&b, (Py_ssize_t)len) < 0)
        return NULL;
    return b;
}

static PyObject *
store_resolve(StoreObject *s, PyObject *arg)
{
    const pxs_proxy_t *p;
    if (proxy_arg(arg, &p) < 0 || store_check(s) < 0)
        return NULL;
    return store_resolve_bytes(s, p, ((ProxyObject *)arg)->info.size);
}

static PyObject *
store_resolve_into(StoreObject *s, PyObject *args)
{
    PyObject *po, *bo;
    if (!PyArg_ParseTuple(args, "OO:resolve_into", &po, &bo))
        return NULL;
    const pxs_proxy_t *p;
    if (proxy_arg(po, &p) < 0 || store_check(s) < 0)
        return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(bo, &b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    size_t len = 0;
    int rc;
    s->active++;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_store_resolve(s->h, p, b.buf, (size_t)b.len, &len);
    Py_END_ALLOW_THREADS
    s->active--;
    PyBuffer_Release(&b);
    if (rc < 0)
        return raise_status(rc, NULL);
    return PyLong_FromSize_t(len);
}

static PyObject *
store_evict(StoreObject *s, PyObject *arg)
{
    const pxs_proxy_t *p;
    if (proxy_arg(arg, &p) < 0 || store_check(s) < 0)
        return NULL;
    int rc;
    s->active++;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_store_evict(s->h, p);
    Py_END_ALLOW_THREADS
    s->active--;
    if (rc < 0)
        return raise_status(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *
store_used(StoreObject *s, PyObject *unused)
{
    (void)unused;
    if (store_check(s) < 0)
        return NULL;
    size_t used = 0, cap = 0;
    int rc = pxs_store_used(s->h, &used, &cap);
    if (rc < 0)
        return raise_status(rc, NULL);
    return Py_BuildValue("(nn)", (Py_ssize_t)used, (Py_ssize_t)cap);
}

static PyObject *
store_view(StoreObject *s, PyObject *arg)
{
    const pxs_proxy_t *p;
    if (proxy_arg(arg, &p) < 0 || store_check(s) < 0)
        return NULL;
    ViewObject *v = PyObject_GC_New(ViewObject, &ViewType);
    if (!v)
        return NULL;
    v->store = (StoreObject *)Py_NewRef(s);
    v->proxy = (ProxyObject *)Py_NewRef(arg);
    memset(&v->v, 0, sizeof v->v);
    v->held = 0;
    v->exit_pending = 0;
    v->exports = 0;
    v->mv = NULL;
    v->weakrefs = NULL;
    PyObject_GC_Track(v);
    int rc;
    s->active++;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_store_view(s->h, p, &v->v);
    Py_END_ALLOW_THREADS
    s->active--;
    if (rc < 0) {
        Py_DECREF(v);
        return raise_status(rc, NULL);
    }
    v->held = 1;
    return (PyObject *)v;
}

static PyObject *
store_get_rank(StoreObject *s, void *c)
{
    (void)c;
    return PyLong_FromLong(s->rank);
}

static PyObject *
store_get_closed(StoreObject *s, void *c)
{
    (void)c;
    return PyBool_FromLong(s->h == NULL);
}

/* The method table entries of a context manager whose __exit__ calls close. */
#define CONTEXT_METHODS                                                        \
    {"__enter__", generic_enter, METH_NOARGS, NULL},                           \
        {"__exit__", generic_exit, METH_VARARGS, NULL}

static PyObject *
generic_enter(PyObject *o, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(o);
}

static PyObject *
generic_exit(PyObject *o, PyObject *args)
{
    (void)args;
    PyObject *r = PyObject_CallMethod(o, "close", NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static int
store_traverse(StoreObject *s, visitproc visit, void *arg)
{
    Py_VISIT(s->children);
    return 0;
}

static void
store_dealloc(StoreObject *s)
{
    /* pxs_store_destroy is collective: it cannot run from the garbage
     * collector. A store not closed is left to MPI_Finalize. */
    PyObject_GC_UnTrack(s);
    if (s->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)s);
    Py_CLEAR(s->children);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef store_methods[] = {
    {"open", (PyCFunction)(void (*)(void))store_open_cls,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "Store.open(comm, path) -> Store: a finished (or live) HDF5 store, "
     "read-only (pxs_store_open; collective, MPI.COMM_SELF is fine)"},
    {"put", (PyCFunction)(void (*)(void))store_put,
     METH_VARARGS | METH_KEYWORDS,
     "put(buf, resolves=1, keep=False, checksum=False, *, timeout=None) -> "
     "Proxy"},
    {"resolve", (PyCFunction)store_resolve, METH_O, "resolve(proxy) -> bytes"},
    {"resolve_into", (PyCFunction)store_resolve_into, METH_VARARGS,
     "resolve_into(proxy, buffer) -> int (bytes written)"},
    {"view", (PyCFunction)store_view, METH_O,
     "view(proxy): context manager giving a read-only zero-copy memoryview"},
    {"evict", (PyCFunction)store_evict, METH_O, "evict(proxy)"},
    {"used", (PyCFunction)store_used, METH_NOARGS,
     "used() -> (bytes used, capacity)"},
    {"close", (PyCFunction)store_close, METH_NOARGS, "close() (collective)"},
    CONTEXT_METHODS,
    {NULL, NULL, 0, NULL}};

static PyGetSetDef store_getset[] = {
    {"rank", (getter)store_get_rank, NULL,
     "this rank in the store's communicator", NULL},
    {"closed", (getter)store_get_closed, NULL, "close() completed", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject StoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "proxystream.Store",
    .tp_basicsize = sizeof(StoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc =
        "Store(comm, *, connector='rma', arena_bytes=0, put_timeout=None, "
        "shm=-1, max_objects=0, get_chunk=0, path=None, durable=0, "
        "spill_path=None, spill_after=0): collective; 0/None = library "
        "defaults. connector 'hdf5' needs path (a directory); Store.open(comm, "
        "path) opens a finished HDF5 store read-only",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)store_init,
    .tp_dealloc = (destructor)store_dealloc,
    .tp_traverse = (traverseproc)store_traverse,
    .tp_weaklistoffset = offsetof(StoreObject, weakrefs),
    .tp_methods = store_methods,
    .tp_getset = store_getset,
};

/* ------------------------------------------------------------ View */

static int
view_release_now(ViewObject *v)
{
    if (!v->held)
        return 0;
    v->held = 0;
    if (!v->store->h) /* cannot happen: destroy refuses while a view is held */
        return 0;
    int rc = pxs_store_release(v->store->h, &v->v);
    if (rc < 0) {
        raise_status(rc, NULL);
        return -1;
    }
    return 0;
}

static int
view_getbuffer(ViewObject *v, Py_buffer *view, int flags)
{
    if (!v->held) {
        PyErr_SetString(PyExc_BufferError, "proxystream view already released");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)v, (void *)v->v.data,
                          (Py_ssize_t)v->v.len, 1, flags) < 0)
        return -1;
    v->exports++;
    return 0;
}

static void
view_releasebuffer(ViewObject *v, Py_buffer *view)
{
    (void)view;
    if (--v->exports == 0 && v->exit_pending) {
        if (view_release_now(v) < 0)
            PyErr_WriteUnraisable((PyObject *)v);
    }
}

static PyBufferProcs view_as_buffer = {(getbufferproc)view_getbuffer,
                                       (releasebufferproc)view_releasebuffer};

static PyObject *
view_enter(ViewObject *v, PyObject *unused)
{
    (void)unused;
    if (!v->mv) {
        v->mv = PyMemoryView_FromObject((PyObject *)v);
        if (!v->mv)
            return NULL;
    }
    return Py_NewRef(v->mv);
}

/* Leaving the block: release the memoryview we handed out; if something
 * (a numpy array) still exports it, the library view stays held and is
 * released when that last export goes (never memory freed under an array). */
static PyObject *
view_close(ViewObject *v, PyObject *unused)
{
    (void)unused;
    v->exit_pending = 1;
    if (v->mv) {
        PyObject *r = PyObject_CallMethod(v->mv, "release", NULL);
        if (r) {
            Py_DECREF(r);
            Py_CLEAR(v->mv);
        } else if (PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Clear(); /* exported: deferred to the last release */
            return Py_NewRef(Py_False);
        } else {
            return NULL;
        }
    }
    if (v->exports == 0 && view_release_now(v) < 0)
        return NULL;
    return PyBool_FromLong(!v->held);
}

static PyObject *
view_exit(ViewObject *v, PyObject *args)
{
    (void)args;
    PyObject *r = view_close(v, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *
view_get_held(ViewObject *v, void *c)
{
    (void)c;
    return PyBool_FromLong(v->held);
}

static PyObject *
view_get_nbytes(ViewObject *v, void *c)
{
    (void)c;
    return PyLong_FromSize_t(v->v.len);
}

static int
view_traverse(ViewObject *v, visitproc visit, void *arg)
{
    Py_VISIT(v->store);
    Py_VISIT(v->proxy);
    Py_VISIT(v->mv);
    return 0;
}

static void
view_dealloc(ViewObject *v)
{
    PyObject_GC_UnTrack(v);
    if (v->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)v);
    /* no export can be alive here (each holds a reference to v) */
    if (v->held && !mpi_gone() && view_release_now(v) < 0)
        PyErr_WriteUnraisable(NULL);
    Py_CLEAR(v->mv);
    Py_CLEAR(v->proxy);
    Py_CLEAR(v->store);
    PyObject_GC_Del(v);
}

static PyMethodDef view_methods[] = {
    {"__enter__", (PyCFunction)view_enter, METH_NOARGS,
     "the read-only memoryview"},
    {"__exit__", (PyCFunction)view_exit, METH_VARARGS, NULL},
    {"release", (PyCFunction)view_close, METH_NOARGS,
     "release() -> bool: True if the library view was released now, False if "
     "it "
     "waits for the last export (e.g. a numpy array) to go"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef view_getset[] = {
    {"held", (getter)view_get_held, NULL, "the library view is still held",
     NULL},
    {"nbytes", (getter)view_get_nbytes, NULL, "size of the object", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ViewType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "proxystream.View",
    .tp_basicsize = sizeof(ViewObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc =
        "Store.view(proxy): `with store.view(p) as mv:` gives a read-only "
        "zero-copy memoryview; leaving the block releases the view, or, while "
        "an export (numpy array) is alive, when the last export goes.",
    .tp_dealloc = (destructor)view_dealloc,
    .tp_traverse = (traverseproc)view_traverse,
    .tp_weaklistoffset = offsetof(ViewObject, weakrefs),
    .tp_as_buffer = &view_as_buffer,
    .tp_methods = view_methods,
    .tp_getset = view_getset,
};

/* ------------------------------------------------------------ Bus */

static int
bus_check(BusObject *b)
{
    if (!BUS_OPEN(b)) {
        raise_closed("bus");
        return -1;
    }
    return 0;
}

static int
parse_subscriptions(PyObject *seq, pxs_subscription_t **subs_out, size_t *n_out,
                    PyObject **keep_out)
{
    PyObject *fast = PySequence_Fast(seq, "subscribe must be a sequence");
    if (!fast)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    pxs_subscription_t *subs = PyMem_Calloc((size_t)(n ? n : 1), sizeof *subs);
    if (!subs) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(fast, i);
        if (PyTuple_Check(it)) {
            Py_ssize_t k = PyTuple_GET_SIZE(it);
            if (k < 1 || k > 3) {
                PyErr_SetString(PyExc_ValueError,
                                "a subscription is topic, (topic, group) or "
                                "(topic, group, prefetch)");
                goto fail;
            }
            if (get_u32(PyTuple_GET_ITEM(it, 0), "topic", &subs[i].topic) < 0)
                goto fail;
            if (k >= 2 && PyTuple_GET_ITEM(it, 1) != Py_None) {
                PyObject *g = PyTuple_GET_ITEM(it, 1);
                if (!PyUnicode_Check(g)) {
                    PyErr_SetString(PyExc_TypeError,
                                    "group must be a str or None");
                    goto fail;
                }
                subs[i].group =
                    PyUnicode_AsUTF8(g); /* lives as long as the tuple */
                if (!subs[i].group)
                    goto fail;
            }
            if (k == 3 && get_u32(PyTuple_GET_ITEM(it, 2), "prefetch",
                                  &subs[i].prefetch) < 0)
                goto fail;
        } else if (get_u32(it, "topic", &subs[i].topic) < 0) {
            goto fail;
        }
    }
    *subs_out = subs;
    *n_out = (size_t)n;
    *keep_out = fast;
    return 0;
fail:
    PyMem_Free(subs);
    Py_DECREF(fast);
    return -1;
}

static int
parse_topics(PyObject *seq, const char *what, uint32_t **out, size_t *n_out)
{
    PyObject *fast = PySequence_Fast(seq, "topics must be a sequence of ints");
    if (!fast)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    uint32_t *t = PyMem_Calloc((size_t)(n ? n : 1), sizeof *t);
    if (!t) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (get_u32(PySequence_Fast_GET_ITEM(fast, i), what, &t[i]) < 0) {
            PyMem_Free(t);
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    *out = t;
    *n_out = (size_t)n;
    return 0;
}

static int
bus_init(BusObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"comm",  "publish",      "subscribe", "slots",
                             "batch", "send_timeout", NULL};
    PyObject *comm, *pub = NULL, *sub = NULL, *slots = NULL, *batch = NULL,
                    *st = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OO$OOO:Bus", kwlist, &comm,
                                     &pub, &sub, &slots, &batch, &st))
        return -1;
    if (init_once(self->h, "Bus") < 0)
        return -1;
    MPI_Comm c;
    if (get_comm(comm, &c) < 0 || comm_needed(c, "Bus") < 0)
        return -1;
    pxs_bus_opts_t o;
    pxs_bus_opts_init(&o);
    uint32_t *topics = NULL;
    pxs_subscription_t *subs = NULL;
    PyObject *keep = NULL;
    int ret = -1;
    if (pub && pub != Py_None &&
        parse_topics(pub, "topic", &topics, &o.n_publish) < 0)
        goto out;
    if (sub && sub != Py_None &&
        parse_subscriptions(sub, &subs, &o.n_subscribe, &keep) < 0)
        goto out;
    o.publish = topics;
    o.subscribe = subs;
    if (slots && slots != Py_None && get_u32(slots, "slots", &o.slots) < 0)
        goto out;
    if (batch && batch != Py_None && get_u32(batch, "batch", &o.batch) < 0)
        goto out;
    if (st && st != Py_None &&
        opt_double(st, "send_timeout", &o.send_timeout) < 0)
        goto out;
    pxs_bus_t *h = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_bus_create(c, &o, &h);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        raise_status(rc, NULL);
        goto out;
    }
    self->h = h;
    ret = 0;
out:
    PyMem_Free(topics);
    PyMem_Free(subs);
    Py_XDECREF(keep);
    return ret;
}

/* Collective. Producers and consumers on this bus are closed first (a
 * producer's close sends its pending ENDs before the bus goes). */
static PyObject *
bus_close(BusObject *b, PyObject *unused)
{
    (void)unused;
    if (!BUS_OPEN(b))
        Py_RETURN_NONE;
    if (b->active || children_busy(b->children))
        return raise_status(PXS_ERR_BUSY, "bus in use by another thread");
    PyObject *exc[3] = {NULL, NULL, NULL};
    children_close(&b->children, exc);
    if (b->log) { /* a log replay: local */
        (void)pxs_log_subscriber_close(b->log);
        b->log = NULL;
        return close_result(PXS_OK, exc);
    }
    pxs_bus_t *h = b->h;
    b->h = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_bus_destroy(h);
    Py_END_ALLOW_THREADS
    return close_result(rc, exc);
}

static PyObject *
bus_endpoint(BusObject *b, int publisher)
{
    if (bus_check(b) < 0)
        return NULL;
    EndpointObject *e = PyObject_GC_New(EndpointObject, &EndpointType);
    if (!e)
        return NULL;
    e->bus = (BusObject *)Py_NewRef(b);
    e->publisher = publisher;
    PyObject_GC_Track(e);
    return (PyObject *)e;
}

static PyObject *
bus_publisher(BusObject *b, PyObject *unused)
{
    (void)unused;
    if (b->log)
        return raise_status(PXS_ERR_INVALID, "a stream log replay has no publisher");
    return bus_endpoint(b, 1);
}

static PyObject *
bus_subscriber(BusObject *b, PyObject *unused)
{
    (void)unused;
    return bus_endpoint(b, 0);
}

static PyObject *
bus_get_rank(BusObject *b, void *c)
{
    (void)c;
    if (bus_check(b) < 0)
        return NULL;
    if (!b->h)
        return PyLong_FromLong(-1); /* a log replay has no rank */
    return PyLong_FromLong(pxs_bus_rank(b->h));
}

static PyObject *
bus_get_closed(BusObject *b, void *c)
{
    (void)c;
    return PyBool_FromLong(!BUS_OPEN(b));
}

static int
bus_traverse(BusObject *b, visitproc visit, void *arg)
{
    Py_VISIT(b->children);
    return 0;
}

static void
bus_dealloc(BusObject *b)
{
    /* pxs_bus_destroy is collective: not from the garbage collector. */
    PyObject_GC_UnTrack(b);
    if (b->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)b);
    if (b->log) /* local; consumers on it keep it alive (their endpoint) */
        (void)pxs_log_subscriber_close(b->log);
    b->log = NULL;
    Py_CLEAR(b->children);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyMethodDef bus_methods[] = {
    {"publisher", (PyCFunction)bus_publisher, METH_NOARGS,
     "the bus's publisher"},
    {"subscriber", (PyCFunction)bus_subscriber, METH_NOARGS,
     "the bus's subscriber"},
    {"close", (PyCFunction)bus_close, METH_NOARGS, "close() (collective)"},
    CONTEXT_METHODS,
    {NULL, NULL, 0, NULL}};

static PyGetSetDef bus_getset[] = {
    {"rank", (getter)bus_get_rank, NULL, "this rank in the bus communicator",
     NULL},
    {"closed", (getter)bus_get_closed, NULL, "close() completed", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject BusType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "proxystream.Bus",
    .tp_basicsize = sizeof(BusObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc =
        "Bus(comm, publish=[topics], subscribe=[topic | (topic, group) | "
        "(topic, group, prefetch)], *, slots=0, batch=0, send_timeout=None): "
        "collective MPI mailbox bus",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)bus_init,
    .tp_dealloc = (destructor)bus_dealloc,
    .tp_traverse = (traverseproc)bus_traverse,
    .tp_weaklistoffset = offsetof(BusObject, weakrefs),
    .tp_methods = bus_methods,
    .tp_getset = bus_getset,
};

/* Publisher / Subscriber: the bus's borrowed endpoints. */
static int
endpoint_traverse(EndpointObject *e, visitproc visit, void *arg)
{
    Py_VISIT(e->bus);
    return 0;
}

static void
endpoint_dealloc(EndpointObject *e)
{
    PyObject_GC_UnTrack(e);
    Py_CLEAR(e->bus);
    PyObject_GC_Del(e);
}

static PyObject *
endpoint_repr(EndpointObject *e)
{
    return PyUnicode_FromFormat("<proxystream.%s of bus %p%s>",
                                e->publisher ? "Publisher" : "Subscriber",
                                (void *)e->bus, e->bus->h ? "" : " (closed)");
}

static PyObject *
endpoint_close(PyObject *e, PyObject *unused)
{
    (void)e;
    (void)unused;
    Py_RETURN_NONE; /* borrowed from the bus: Bus.close() ends it */
}

static PyMethodDef endpoint_methods[] = {
    {"close", endpoint_close, METH_NOARGS, "no-op (the bus owns the endpoint)"},
    CONTEXT_METHODS,
    {NULL, NULL, 0, NULL}};

static PyTypeObject EndpointType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "proxystream.Endpoint",
    .tp_basicsize = sizeof(EndpointObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc =
        "A bus's publisher or subscriber (Bus.publisher(), Bus.subscriber())",
    .tp_dealloc = (destructor)endpoint_dealloc,
    .tp_traverse = (traverseproc)endpoint_traverse,
    .tp_repr = (reprfunc)endpoint_repr,
    .tp_methods = endpoint_methods,
};

/* ------------------------------------------------------------ StreamProducer
 */

static int
store_or_none(PyObject *o, PyObject **out)
{
    if (o == Py_None) {
        *out = NULL;
        return 0;
    }
    if (!PyObject_TypeCheck(o, &StoreType)) {
        PyErr_Format(PyExc_TypeError,
                     "store must be a proxystream.Store or None, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    if (store_check((StoreObject *)o) < 0)
        return -1;
    *out = o;
    return 0;
}

static int
endpoint_arg(PyObject *o, int publisher, EndpointObject **out)
{
    if (!PyObject_TypeCheck(o, &EndpointType) ||
        ((EndpointObject *)o)->publisher != publisher) {
        PyErr_Format(PyExc_TypeError, "expected a %s (Bus.%s()), not %.100s",
                     publisher ? "publisher" : "subscriber",
                     publisher ? "publisher" : "subscriber",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    *out = (EndpointObject *)o;
    return bus_check((*out)->bus);
}

static int
producer_init(ProducerObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"store",    "publisher",   "topics",
                             "batch",    "max_delay",   "resolves",
                             "checksum", "put_timeout", "close_on_destroy",
                             "log_path", "log_bytes", "inline_max", NULL};
    PyObject *so, *po, *topics = NULL, *batch = NULL, *md = NULL, *res = NULL,
                       *cs = NULL, *pt = NULL, *coc = NULL, *lb = NULL, *im = NULL;
    const char *log_path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$OOOOOOOzOO:StreamProducer",
                                     kwlist, &so, &po, &topics, &batch, &md,
                                     &res, &cs, &pt, &coc, &log_path, &lb, &im))
        return -1;
    if (init_once(self->h, "StreamProducer") < 0)
        return -1;
    PyObject *store;
    EndpointObject *pub;
    if (store_or_none(so, &store) < 0 || endpoint_arg(po, 1, &pub) < 0)
        return -1;
    pxs_producer_opts_t o;
    pxs_producer_opts_init(&o);
    uint32_t *t = NULL;
    int ret = -1;
    if (topics && topics != Py_None &&
        parse_topics(topics, "topic", &t, &o.n_topics) < 0)
        return -1;
    o.topics = t;
    if (batch && batch != Py_None && get_u32(batch, "batch", &o.batch) < 0)
        goto out;
    if (md && md != Py_None && opt_double(md, "max_delay", &o.max_delay) < 0)
        goto out;
    if (res && res != Py_None && get_u32(res, "resolves", &o.resolves) < 0)
        goto out;
    if (cs && cs != Py_None && opt_int(cs, "checksum", &o.checksum) < 0)
        goto out;
    if (pt && pt != Py_None &&
        opt_double(pt, "put_timeout", &o.put_timeout) < 0)
        goto out;
    if (coc && coc != Py_None &&
        opt_int(coc, "close_on_destroy", &o.close_on_destroy) < 0)
        goto out;
    o.log_path = log_path;
    if (lb && lb != Py_None && opt_int(lb, "log_bytes", &o.log_bytes) < 0)
        goto out;
    if (im && im != Py_None && get_u32(im, "inline_max", &o.inline_max) < 0)
        goto out;
    pxs_publisher_t *p;
    int rc = pxs_bus_publisher(pub->bus->h, &p);
    if (rc == PXS_OK)
        rc = pxs_producer_create(store ? ((StoreObject *)store)->h : NULL, p,
                                 &o, &self->h);
    if (rc < 0) {
        raise_status(rc, NULL);
        goto out;
    }
    if (children_add_both(store, pub->bus, (PyObject *)self) < 0) {
        int drc = pxs_producer_destroy(self->h); /* nothing was sent: cannot fail usefully */
        (void)drc;
        self->h = NULL;
        goto out;
    }
    Py_XINCREF(store);
    self->store = store;
    self->pub = (EndpointObject *)Py_NewRef(pub);
    ret = 0;
out:
    PyMem_Free(t);
    return ret;
}

static int
producer_check(ProducerObject *p)
{
    return handle_check(p->h, p->active, "producer");
}

static int
meta_arg(PyObject *m, Py_buffer *b)
{
    if (!m || m == Py_None) {
        memset(b, 0, sizeof *b);
        return 0;
    }
    return PyObject_GetBuffer(m, b, PyBUF_SIMPLE);
}

static void
meta_release(Py_buffer *b)
{
    if (b->obj)
        PyBuffer_Release(b);
}

static PyObject *
producer_send(ProducerObject *p, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"topic", "obj",      "metadata", "resolves",
                             "keep",  "checksum", NULL};
    PyObject *to, *obj, *meta = NULL, *res = Py_None, *cs = Py_None;
    int keep = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOp$O:send", kwlist, &to,
                                     &obj, &meta, &res, &keep, &cs))
        return NULL;
    uint32_t topic;
    if (get_u32(to, "topic", &topic) < 0 || producer_check(p) < 0)
        return NULL;
    pxs_send_opts_t o;
    pxs_send_opts_init(&o);
    if (res != Py_None && get_u32(res, "resolves", &o.resolves) < 0)
        return NULL;
    if (res != Py_None && o.resolves == 0) {
        PyErr_SetString(PyExc_ValueError,
                        "resolves must be >= 1 (use keep=True to keep)");
        return NULL;
    }
    o.keep = keep;
    if (cs != Py_None && opt_int(cs, "checksum", &o.checksum) < 0)
        return NULL;
    Py_buffer m, b;
    if (meta_arg(meta, &m) < 0)
        return NULL;
    if (PyObject_GetBuffer(obj, &b, PyBUF_C_CONTIGUOUS) < 0) {
        meta_release(&m);
        return NULL;
    }
    o.meta = m.buf;
    o.meta_len = (size_t)m.len;
    pxs_proxy_t px;
    int rc;
    intr_t it;
    INTR_CALL(p->active, it, rc,
              pxs_producer_send(p->h, topic, b.buf, (size_t)b.len, &o, &px));
    PyBuffer_Release(&b);
    if (intr_done(&it, rc) < 0) {
        meta_release(&m);
        return NULL;
    }
    if (rc < 0) {
        meta_release(&m);
        return raise_status(rc, NULL);
    }
    pxs_proxy_info_t info;
    PyObject *r = NULL;
    if ((rc = pxs_proxy_decode(px.bytes, PXS_PROXY_SIZE, &info)) < 0)
        raise_status(rc, NULL);
    else
        r = (PyObject *)proxy_new(&px, topic,
                                  (int32_t)pxs_bus_rank(p->pub->bus->h),
                                  info.seq, m.buf, (size_t)m.len, p->store);
    meta_release(&m);
    return r;
}

static PyObject *
producer_send_proxy(ProducerObject *p, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"topic", "proxy", "metadata", NULL};
    PyObject *to, *po, *meta = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:send_proxy", kwlist, &to,
                                     &po, &meta))
        return NULL;
    uint32_t topic;
    const pxs_proxy_t *px;
    if (get_u32(to, "topic", &topic) < 0 || proxy_arg(po, &px) < 0 ||
        producer_check(p) < 0)
        return NULL;
    Py_buffer m;
    if (meta_arg(meta, &m) < 0)
        return NULL;
    int rc;
    intr_t it;
    INTR_CALL(p->active, it, rc,
              pxs_producer_send_proxy(p->h, topic, px, m.buf, (size_t)m.len));
    meta_release(&m);
    if (intr_end(&it, rc) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
producer_flush(ProducerObject *p, PyObject *unused)
{
    (void)unused;
    if (producer_check(p) < 0)
        return NULL;
    int rc;
    intr_t it;
    INTR_CALL(p->active, it, rc, pxs_producer_flush(p->h));
    if (intr_end(&it, rc) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
producer_close_topic(ProducerObject *p, PyObject *arg)
{
    uint32_t topic;
    if (get_u32(arg, "topic", &topic) < 0 || producer_check(p) < 0)
        return NULL;
    int rc;
    intr_t it;
    INTR_CALL(p->active, it, rc, pxs_producer_close_topic(p->h, topic));
    if (intr_end(&it, rc) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
producer_stats(ProducerObject *p, PyObject *unused)
{
    (void)unused;
    if (producer_check(p) < 0)
        return NULL;
    uint64_t sent = 0, bytes = 0, fwd = 0;
    int rc = pxs_producer_stats(p->h, &sent, &bytes, &fwd);
    return stats_dict(rc, "sent", sent, "bytes", bytes, "forwarded", fwd);
}

/* Local: closes the producer's topics (close_on_destroy=True, the default) and
 * flushes; the handle is freed even if that fails (the error is raised). */
static PyObject *
producer_close(ProducerObject *p, PyObject *unused)
{
    (void)unused;
    if (!p->h)
        Py_RETURN_NONE;
    if (p->active)
        return raise_status(PXS_ERR_BUSY, "producer in use by another thread");
    pxs_producer_t *h = p->h;
    p->h = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_producer_destroy(h);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return raise_status(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *
producer_get_closed(ProducerObject *p, void *c)
{
    (void)c;
    return PyBool_FromLong(p->h == NULL);
}

static int
producer_traverse(ProducerObject *p, visitproc visit, void *arg)
{
    Py_VISIT(p->store);
    Py_VISIT(p->pub);
    return 0;
}

static void
producer_dealloc(ProducerObject *p)
{
    PyObject_GC_UnTrack(p);
    if (p->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)p);
    if (p->h && p->pub && p->pub->bus->h &&
        (!p->store || ((StoreObject *)p->store)->h) && !mpi_gone()) {
        /* local: safe from the collector while the bus and store live */
        int rc = pxs_producer_destroy(p->h);
        (void)rc;
    }
    p->h = NULL;
    Py_CLEAR(p->store);
    Py_CLEAR(p->pub);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyMethodDef producer_methods[] = {
    {"send", (PyCFunction)(void (*)(void))producer_send,
     METH_VARARGS | METH_KEYWORDS,
     "send(topic, obj, metadata=b'', resolves=None, keep=False, *, "
     "checksum=None) -> "
     "Proxy: obj is any C-contiguous buffer (bytes, bytearray, numpy array), "
     "sent "
     "from its memory"},
    {"send_proxy", (PyCFunction)(void (*)(void))producer_send_proxy,
     METH_VARARGS | METH_KEYWORDS,
     "send_proxy(topic, proxy, metadata=b''): forward"},
    {"flush", (PyCFunction)producer_flush, METH_NOARGS,
     "deliver queued events"},
    {"close_topic", (PyCFunction)producer_close_topic, METH_O,
     "close_topic(topic): END"},
    {"stats", (PyCFunction)producer_stats, METH_NOARGS, "counters"},
    {"close", (PyCFunction)producer_close, METH_NOARGS,
     "close() (local; idempotent)"},
    CONTEXT_METHODS,
    {NULL, NULL, 0, NULL}};

static PyGetSetDef producer_getset[] = {
    {"closed", (getter)producer_get_closed, NULL, "close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ProducerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "proxystream.StreamProducer",
    .tp_basicsize = sizeof(ProducerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc =
        "StreamProducer(store, publisher, *, topics=None, batch=0, "
        "max_delay=0, "
        "resolves=0, checksum=0, put_timeout=None, close_on_destroy=True, "
        "log_path=None, log_bytes=0, inline_max=None (PXS_INLINE_MAX))",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)producer_init,
    .tp_dealloc = (destructor)producer_dealloc,
    .tp_traverse = (traverseproc)producer_traverse,
    .tp_weaklistoffset = offsetof(ProducerObject, weakrefs),
    .tp_methods = producer_methods,
    .tp_getset = producer_getset,
};

/* ------------------------------------------------------------ StreamConsumer
 */

/* Called by pxs_consumer_next with the GIL released. An exception in the
 * Python filter delivers the event; next() then gives up its claim
 * (pxs_consumer_discard) and raises the exception. */
static int
consumer_filter_cb(const pxs_event_t *ev, void *arg)
{
    ConsumerObject *c = arg;
    PyGILState_STATE g = PyGILState_Ensure();
    int keep = 1;
    if (!c->fexc[0]) {
        PyObject *p = (PyObject *)proxy_from_event(ev, c->store);
        PyObject *r = p ? PyObject_CallOneArg(c->filter, p) : NULL;
        Py_XDECREF(p);
        if (r) {
            keep = PyObject_IsTrue(r);
            Py_DECREF(r);
        }
        if (!r || keep < 0) {
            PyErr_Fetch(&c->fexc[0], &c->fexc[1], &c->fexc[2]);
            keep = 1;
        }
    }
    PyGILState_Release(g);
    return keep;
}

static int
consumer_init(ConsumerObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"store", "subscriber", "filter", NULL};
    PyObject *so, *se, *filter = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:StreamConsumer", kwlist,
                                     &so, &se, &filter))
        return -1;
    if (init_once(self->h, "StreamConsumer") < 0)
        return -1;
    PyObject *store;
    EndpointObject *sub;
    if (store_or_none(so, &store) < 0 || endpoint_arg(se, 0, &sub) < 0)
        return -1;
    if (filter != Py_None && !PyCallable_Check(filter)) {
        PyErr_SetString(PyExc_TypeError,
                        "filter must be callable (proxy -> bool) or None");
        return -1;
    }
    pxs_consumer_opts_t o;
    pxs_consumer_opts_init(&o);
    if (filter != Py_None) {
        o.filter = consumer_filter_cb;
        o.filter_arg = self;
        /* without a store there is no claim to give up */
        if (!store)
            o.drop_policy = PXS_DROP_IGNORE;
    }
    pxs_subscriber_t *s = sub->bus->log;
    int rc = s ? PXS_OK : pxs_bus_subscriber(sub->bus->h, &s);
    if (rc == PXS_OK)
        rc = pxs_consumer_create(store ? ((StoreObject *)store)->h : NULL, s,
                                 &o, &self->h);
    if (rc < 0) {
        raise_status(rc, NULL);
        return -1;
    }
    if (children_add_both(store, sub->bus, (PyObject *)self) < 0) {
        (void)pxs_consumer_destroy(self->h);
        self->h = NULL;
        return -1;
    }
    Py_XINCREF(store);
    self->store = store;
    self->sub = (EndpointObject *)Py_NewRef(sub);
    if (filter != Py_None)
        self->filter = Py_NewRef(filter);
    return 0;
}

static int
consumer_check(ConsumerObject *c)
{
    return handle_check(c->h, c->active, "consumer");
}

/* pxs_consumer_next in slices of WAIT_SLICE s with the GIL released and a
 * signal check between slices. timeout < 0: forever. Returns the status, or
 * PYERR with a Python exception set. */
static int
consumer_next_sliced(ConsumerObject *c, pxs_event_t *ev, double timeout)
{
    double deadline = timeout >= 0 ? now_s() + timeout : 0;
    for (;;) {
        double slice = WAIT_SLICE;
        if (timeout >= 0) {
            double left = deadline - now_s();
            slice = left < 0 ? 0 : left < slice ? left : slice;
        }
        int rc;
        c->active++;
        Py_BEGIN_ALLOW_THREADS
        rc = pxs_consumer_next(c->h, ev, slice);
        Py_END_ALLOW_THREADS
        c->active--;
        if (c->fexc[0]) {
            if (rc == PXS_OK) {
                int drc = pxs_consumer_discard(c->h, ev);
                (void)drc;
            }
            PyErr_Restore(c->fexc[0], c->fexc[1], c->fexc[2]);
            c->fexc[0] = c->fexc[1] = c->fexc[2] = NULL;
            return PYERR;
        }
        if (rc != PXS_TIMEOUT)
            return rc;
        if (PyErr_CheckSignals() < 0)
            return PYERR;
        if (timeout >= 0 && now_s() >= deadline)
            return PXS_TIMEOUT;
    }
}

/* Returns a new Proxy, Py_None (timeout), or NULL with StopIteration set at
 * END when `stop` (else NULL without exception at END: tp_iternext). */
static PyObject *
consumer_next_impl(ConsumerObject *c, double timeout, int raise_stop)
{
    if (consumer_check(c) < 0)
        return NULL;
    pxs_event_t ev;
    int rc = c->ended ? PXS_END : consumer_next_sliced(c, &ev, timeout);
    if (rc == PYERR)
        return NULL;
    if (rc == PXS_END) {
        c->ended = 1;
        if (raise_stop)
            PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
    if (rc == PXS_TIMEOUT)
        Py_RETURN_NONE;
    if (rc < 0)
        return raise_status(rc, NULL);
    return (PyObject *)proxy_from_event(&ev, c->store);
}

static PyObject *
consumer_next(ConsumerObject *c, PyObject *args, PyObject *kw)
{
    double t;
    if (timeout_kwarg(args, kw, "|O:next", &t) < 0)
        return NULL;
    return consumer_next_impl(c, t, 1);
}

static PyObject *
consumer_next_object(ConsumerObject *c, PyObject *args, PyObject *kw)
{
    double t;
    if (timeout_kwarg(args, kw, "|O:next_object", &t) < 0)
        return NULL;
    if (!c->store && c->h) {
        PyErr_SetString(PyExc_ValueError,
                        "next_object needs a consumer with a store");
        return NULL;
    }
    PyObject *p = consumer_next_impl(c, t, 1);
    if (!p || p == Py_None)
        return p;
    PyObject *b = PyObject_CallMethod(p, "resolve", NULL);
    if (!b) {
        Py_DECREF(p);
        return NULL;
    }
    return Py_BuildValue("(NN)", p, b);
}

static PyObject *
consumer_iternext(ConsumerObject *c)
{
    PyObject *r = consumer_next_impl(c, -1.0, 0);
    if (r == Py_None) { /* cannot happen without a timeout */
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

static PyObject *
consumer_stats(ConsumerObject *c, PyObject *unused)
{
    (void)unused;
    if (consumer_check(c) < 0)
        return NULL;
    uint64_t d = 0, dr = 0, rb = 0;
    int rc = pxs_consumer_stats(c->h, &d, &dr, &rb);
    return stats_dict(rc, "delivered", d, "dropped", dr, "resolved_bytes", rb);
}

static PyObject *
consumer_close(ConsumerObject *c, PyObject *unused)
{
    (void)unused;
    if (!c->h)
        Py_RETURN_NONE;
    if (c->active)
        return raise_status(PXS_ERR_BUSY, "consumer in use by another thread");
    pxs_consumer_t *h = c->h;
    c->h = NULL;
    int rc = pxs_consumer_destroy(h);
    if (rc < 0)
        return raise_status(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *
consumer_get_ended(ConsumerObject *c, void *x)
{
    (void)x;
    return PyBool_FromLong(c->ended);
}

static PyObject *
consumer_get_closed(ConsumerObject *c, void *x)
{
    (void)x;
    return PyBool_FromLong(c->h == NULL);
}

static int
consumer_traverse(ConsumerObject *c, visitproc visit, void *arg)
{
    Py_VISIT(c->store);
    Py_VISIT(c->sub);
    Py_VISIT(c->filter);
    return 0;
}

static int
consumer_clear(ConsumerObject *c)
{
    Py_CLEAR(c->filter);
    return 0;
}

static void
consumer_dealloc(ConsumerObject *c)
{
    PyObject_GC_UnTrack(c);
    if (c->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)c);
    if (c->h && c->sub && BUS_OPEN(c->sub->bus) &&
        (!c->store || ((StoreObject *)c->store)->h) && !mpi_gone()) {
        int rc = pxs_consumer_destroy(c->h);
        (void)rc;
    }
    c->h = NULL;
    Py_CLEAR(c->store);
    Py_CLEAR(c->sub);
    Py_CLEAR(c->filter);
    Py_XDECREF(c->fexc[0]);
    Py_XDECREF(c->fexc[1]);
    Py_XDECREF(c->fexc[2]);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyMethodDef consumer_methods[] = {
    {"next", (PyCFunction)(void (*)(void))consumer_next,
     METH_VARARGS | METH_KEYWORDS,
     "next(timeout=None) -> Proxy, or None on timeout; StopIteration at END"},
    {"next_object", (PyCFunction)(void (*)(void))consumer_next_object,
     METH_VARARGS | METH_KEYWORDS,
     "next_object(timeout=None) -> (Proxy, bytes), or None on timeout; "
     "StopIteration "
     "at END"},
    {"stats", (PyCFunction)consumer_stats, METH_NOARGS, "counters"},
    {"close", (PyCFunction)consumer_close, METH_NOARGS,
     "close() (local; idempotent)"},
    CONTEXT_METHODS,
    {NULL, NULL, 0, NULL}};

static PyGetSetDef consumer_getset[] = {
    {"ended", (getter)consumer_get_ended, NULL, "END was reached", NULL},
    {"closed", (getter)consumer_get_closed, NULL, "close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ConsumerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "proxystream.StreamConsumer",
    .tp_basicsize = sizeof(ConsumerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc =
        "StreamConsumer(store, subscriber, filter=None): iterate for proxies "
        "until END; filter(proxy) -> bool drops events on their metadata",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)consumer_init,
    .tp_dealloc = (destructor)consumer_dealloc,
    .tp_traverse = (traverseproc)consumer_traverse,
    .tp_clear = (inquiry)consumer_clear,
    .tp_weaklistoffset = offsetof(ConsumerObject, weakrefs),
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)consumer_iternext,
    .tp_methods = consumer_methods,
    .tp_getset = consumer_getset,
};

static int
child_active(PyObject *child)
{
    if (PyObject_TypeCheck(child, &ProducerType))
        return ((ProducerObject *)child)->active != 0;
    if (PyObject_TypeCheck(child, &ConsumerType))
        return ((ConsumerObject *)child)->active != 0;
    return 0;
}

/* ------------------------------------------------------------ module */

static PyObject *
mod_strerror(PyObject *m, PyObject *arg)
{
    (void)m;
    int code = _PyLong_AsInt(arg);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(pxs_strerror(code));
}

static PyObject *
mod_errname(PyObject *m, PyObject *arg)
{
    (void)m;
    int code = _PyLong_AsInt(arg);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(pxs_errname(code));
}

/* open_log(path, subscribe=[topics]): a replay subscriber on a stream log,
 * as a Bus object without a publisher (local; close() closes it). */
static PyObject *
mod_open_log(PyObject *m, PyObject *args, PyObject *kw)
{
    (void)m;
    static char *kwlist[] = {"path", "subscribe", NULL};
    const char *path;
    PyObject *seq = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|O:open_log", kwlist, &path, &seq))
        return NULL;
    pxs_subscription_t *subs = NULL, all = {PXS_TOPIC_ALL, NULL, 0};
    size_t n = 0;
    PyObject *keep = NULL;
    if (seq && seq != Py_None && parse_subscriptions(seq, &subs, &n, &keep) < 0)
        return NULL;
    BusObject *b = (BusObject *)BusType.tp_alloc(&BusType, 0);
    if (!b) {
        PyMem_Free(subs);
        Py_XDECREF(keep);
        return NULL;
    }
    pxs_subscriber_t *s = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pxs_log_subscriber_open(path, subs ? subs : &all, subs ? n : 1, &s);
    Py_END_ALLOW_THREADS
    PyMem_Free(subs);
    Py_XDECREF(keep);
    if (rc < 0) {
        Py_DECREF(b);
        return raise_status(rc, NULL);
    }
    b->log = s;
    return (PyObject *)b;
}

static PyMethodDef mod_methods[] = {
    {"open_store", (PyCFunction)(void (*)(void))mod_open_store, METH_VARARGS | METH_KEYWORDS,
     "open_store(comm, path) -> Store (the same as Store.open)"},
    {"open_log", (PyCFunction)(void (*)(void))mod_open_log, METH_VARARGS | METH_KEYWORDS,
     "open_log(path, subscribe=None) -> a Bus-like replay of the stream log in "
     "directory path (subscriber() only; None = every topic); local"},
    {"strerror", mod_strerror, METH_O, "strerror(code) -> str"},
    {"errname", mod_errname, METH_O, "errname(code) -> 'PXS_ERR_...'"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT,
    "proxystream._proxystream",
    "proxystream C binding (use the proxystream package)",
    -1,
    mod_methods,
    NULL,
    NULL,
    NULL,
    NULL};

/* name, code, extra builtin base (NULL: none) */
static const struct {
    const char *name;
    int code;
    const char *builtin;
} err_table[] = {
    {"InvalidArgumentError", PXS_ERR_INVALID, "ValueError"},
    {"NoMemoryError", PXS_ERR_NOMEM, "MemoryError"},
    {"BackpressureError", PXS_ERR_AGAIN, NULL},
    {"TimedOutError", PXS_ERR_TIMEDOUT, "TimeoutError"},
    {"StaleProxyError", PXS_ERR_STALE, NULL},
    {"CorruptProxyError", PXS_ERR_CORRUPT, NULL},
    {"TooBigError", PXS_ERR_TOO_BIG, NULL},
    {"ClosedError", PXS_ERR_CLOSED, NULL},
    {"MPIError", PXS_ERR_MPI, NULL},
    {"NotSupportedError", PXS_ERR_NOTSUP, NULL},
    {"BusyError", PXS_ERR_BUSY, NULL},
    {"NotFoundError", PXS_ERR_NOT_FOUND, "LookupError"},
    {"TruncatedError", PXS_ERR_TRUNC, NULL},
    {"IOFailedError", PXS_ERR_IO, "OSError"},
    {"PeerError", PXS_ERR_PEER, NULL},
};

static int
add_int(PyObject *m, const char *name, long v)
{
    return PyModule_AddIntConstant(m, name, v);
}

PyMODINIT_FUNC
PyInit__proxystream(void)
{
    if (import_mpi4py() < 0)
        return NULL;
    PyTypeObject *types[] = {&ProxyType,   &StoreType,    &ViewType,
                             &BusType,     &EndpointType, &ProducerType,
                             &ConsumerType};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m)
        return NULL;
    Error = PyErr_NewExceptionWithDoc("proxystream.Error",
                                      "A proxystream failure: .code (PXS_ERR_* "
                                      "value), .name ('PXS_ERR_...'), "
                                      ".detail (pxs_last_error_detail())",
                                      NULL, NULL);
    if (!Error || PyModule_AddObjectRef(m, "Error", Error) < 0)
        goto fail;
    PyObject *builtins = PyEval_GetBuiltins();
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++) {
        char qual[80];
        snprintf(qual, sizeof qual, "proxystream.%s", err_table[i].name);
        PyObject *bases;
        if (err_table[i].builtin) {
            PyObject *b = PyDict_GetItemString(builtins, err_table[i].builtin);
            bases = PyTuple_Pack(2, Error, b);
        } else {
            bases = PyTuple_Pack(1, Error);
        }
        if (!bases)
            goto fail;
        PyObject *cls = PyErr_NewException(qual, bases, NULL);
        Py_DECREF(bases);
        if (!cls)
            goto fail;
        PyObject *code = PyLong_FromLong(err_table[i].code);
        if (!code || PyObject_SetAttrString(cls, "code", code) < 0) {
            Py_XDECREF(code);
            Py_DECREF(cls);
            goto fail;
        }
        Py_DECREF(code);
        ErrByCode[-err_table[i].code] = cls; /* module keeps a reference */
        if (PyModule_AddObjectRef(m, err_table[i].name, cls) < 0)
            goto fail;
    }
    if (PyModule_AddObjectRef(m, "Proxy", (PyObject *)&ProxyType) < 0 ||
        PyModule_AddObjectRef(m, "Store", (PyObject *)&StoreType) < 0 ||
        PyModule_AddObjectRef(m, "View", (PyObject *)&ViewType) < 0 ||
        PyModule_AddObjectRef(m, "Bus", (PyObject *)&BusType) < 0 ||
        PyModule_AddObjectRef(m, "Endpoint", (PyObject *)&EndpointType) < 0 ||
        PyModule_AddObjectRef(m, "StreamProducer", (PyObject *)&ProducerType) <
            0 ||
        PyModule_AddObjectRef(m, "StreamConsumer", (PyObject *)&ConsumerType) <
            0)
        goto fail;
    if (add_int(m, "PROXY_SIZE", PXS_PROXY_SIZE) < 0 ||
        add_int(m, "EVENT_META_MAX", PXS_EVENT_META_MAX) < 0 ||
        add_int(m, "OK", PXS_OK) < 0 || add_int(m, "END", PXS_END) < 0 ||
        add_int(m, "TIMEOUT", PXS_TIMEOUT) < 0 ||
        add_int(m, "CONN_LOCAL", PXS_CONN_LOCAL) < 0 ||
        add_int(m, "CONN_RMA", PXS_CONN_RMA) < 0 ||
        add_int(m, "CONN_HDF5", PXS_CONN_HDF5) < 0 ||
        add_int(m, "CONN_UCX", PXS_CONN_UCX) < 0)
        goto fail;
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++) {
        char name[40];
        const char *n = pxs_errname(err_table[i].code); /* "PXS_ERR_..." */
        snprintf(name, sizeof name, "%s", strncmp(n, "PXS_", 4) ? n : n + 4);
        if (add_int(m, name, err_table[i].code) < 0)
            goto fail;
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
