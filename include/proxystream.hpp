/** @file proxystream.hpp
 *  C++17 binding of proxystream: header-only, a thin layer over the C API
 *  (proxystream.h). Link proxystream::proxystream as for C.
 *
 *  - Handles are RAII and move-only: pxs::Store, pxs::Bus, pxs::Producer,
 *    pxs::Consumer, pxs::View.
 *  - Every failure (a negative status) throws pxs::error, a std::system_error
 *    in pxs::category() whose code().value() is the PXS_ERR_* value; what()
 *    names the call, the pxs_strerror text and pxs_last_error_detail().
 *    PXS_END and PXS_TIMEOUT are not failures: next() returns std::nullopt.
 *  - pxs::bytes_view is a read-only {const std::byte *, size_t} span.
 *  - pxs::proxy is pxs_proxy_t itself: 64 plain bytes, sendable with
 *    MPI_Send(p.bytes, PXS_PROXY_SIZE, MPI_BYTE, ...).
 *
 *  Destructors never throw. Store and Bus destroys are collective: call
 *  close() on every rank (it throws on failure; after PXS_ERR_BUSY from
 *  Store::close() the store stays usable and every rank calls close() again).
 *  A destructor of a handle not closed calls the C destroy and ignores its
 *  status; for Store and Bus that is still a collective call, so it must be
 *  reached on every rank (it is not when an exception unwinds one rank only:
 *  then MPI_Abort is the way out). Producer and Consumer destroys are local.
 *  Destroy in order: View, Producer/Consumer, then Bus and Store.
 *  Design: docs/DESIGN.md, section "Fortran and C++ bindings". */
#ifndef PROXYSTREAM_HPP
#define PROXYSTREAM_HPP

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

/* Only MPI's C API is needed (and linked through MPI::MPI_C): keep mpi.h
 * from pulling in the deprecated MPI C++ bindings, which would need
 * libmpi_cxx. Include mpi.h yourself first if you use those bindings. */
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include "proxystream.h"

namespace pxs
{

/* ------------------------------------------------------------ errors */

/** The error category of proxystream status codes (name "proxystream"). */
class error_category_impl final : public std::error_category
{
  public:
    const char *name() const noexcept override
    {
        return "proxystream";
    }
    std::string message(int code) const override
    {
        return pxs_strerror(code);
    }
};

inline const std::error_category &
category() noexcept
{
    static const error_category_impl c;
    return c;
}

/** A failed call: code().value() is the PXS_ERR_* status, detail() the
 *  library's detail line at the time of the failure. */
class error : public std::system_error
{
  public:
    error(int code, const char *call)
        : std::system_error(code, category()), detail_(pxs_last_error_detail())
    {
        what_ = std::string(call) + ": " + pxs_errname(code) + " (" +
                pxs_strerror(code) + ")" +
                (detail_.empty() ? "" : ": " + detail_);
    }
    const char *what() const noexcept override
    {
        return what_.c_str();
    }
    /** The PXS_ERR_* value. */
    int status() const noexcept
    {
        return code().value();
    }
    const std::string &detail() const noexcept
    {
        return detail_;
    }

  private:
    std::string detail_;
    std::string what_;
};

/** Throw pxs::error for a negative status; return the status otherwise. */
inline int
check(int rc, const char *call)
{
    if (rc < 0)
        throw error(rc, call);
    return rc;
}

/* ------------------------------------------------------------ bytes */

/** Read-only byte span (C++17 has no std::span). */
class bytes_view
{
  public:
    constexpr bytes_view() noexcept = default;
    bytes_view(const void *data, std::size_t size) noexcept
        : data_(static_cast<const std::byte *>(data)), size_(size)
    {
    }
    /** Any contiguous container of trivially copyable elements
     *  (std::vector, std::array, std::string, a C array, ...). A string
     *  literal is a C array: its terminating NUL is included. */
    template <
        class C,
        class T = std::remove_pointer_t<
            decltype(std::data(std::declval<const C &>()))>,
        class = std::enable_if_t<std::is_trivially_copyable_v<T> &&
                                 !std::is_same_v<std::decay_t<C>, bytes_view>>>
    bytes_view(const C &c) noexcept
        : bytes_view(std::data(c), std::size(c) * sizeof(T))
    {
    }
    const std::byte *data() const noexcept
    {
        return data_;
    }
    std::size_t size() const noexcept
    {
        return size_;
    }
    bool empty() const noexcept
    {
        return size_ == 0;
    }
    const std::byte *begin() const noexcept
    {
        return data_;
    }
    const std::byte *end() const noexcept
    {
        return data_ + size_;
    }
    std::byte operator[](std::size_t i) const noexcept
    {
        return data_[i];
    }

  private:
    const std::byte *data_ = nullptr;
    std::size_t size_ = 0;
};

/* ------------------------------------------------------------ proxies */

/** The 64-byte proxy (POD, copy by value). */
using proxy = pxs_proxy_t;

/** Check a proxy: throws PXS_ERR_CORRUPT for a forged or damaged one. */
inline void
validate(const proxy &p)
{
    check(pxs_proxy_validate(&p), "pxs_proxy_validate");
}
/** Decoded fields (size, owner, seq, ...). */
inline pxs_proxy_info_t
info(const proxy &p)
{
    pxs_proxy_info_t i;
    check(pxs_proxy_decode(p.bytes, PXS_PROXY_SIZE, &i), "pxs_proxy_decode");
    return i;
}
/** Text form "pxs2:<128 hex>". */
inline std::string
to_text(const proxy &p)
{
    char buf[PXS_PROXY_TEXT_LEN];
    check(pxs_proxy_to_text(&p, buf, sizeof buf), "pxs_proxy_to_text");
    return buf;
}
/** Parse the text form (validates it). */
inline proxy
from_text(const std::string &text)
{
    proxy p;
    check(pxs_proxy_from_text(text.c_str(), &p), "pxs_proxy_from_text");
    return p;
}

/** One received event (wraps pxs_event_t). */
class Event
{
  public:
    Event() noexcept : ev_()
    {
    }
    explicit Event(const pxs_event_t &ev) noexcept : ev_(ev)
    {
    }
    const proxy &get_proxy() const noexcept
    {
        return ev_.proxy;
    }
    std::uint32_t topic() const noexcept
    {
        return ev_.topic;
    }
    int producer() const noexcept
    {
        return ev_.producer;
    }
    std::uint64_t seq() const noexcept
    {
        return ev_.seq;
    }
    bytes_view meta() const noexcept
    {
        return bytes_view(ev_.meta, ev_.meta_len);
    }
    const pxs_event_t &raw() const noexcept
    {
        return ev_;
    }

  private:
    pxs_event_t ev_;
};

/* ------------------------------------------------------------ handles */

namespace detail
{
/** Move-only owner of one C handle. */
template <class T> class handle
{
  public:
    handle() noexcept = default;
    explicit handle(T *h) noexcept : h_(h)
    {
    }
    handle(const handle &) = delete;
    handle &operator=(const handle &) = delete;
    handle(handle &&o) noexcept : h_(std::exchange(o.h_, nullptr))
    {
    }
    T *get() const noexcept
    {
        return h_;
    }
    T *release() noexcept
    {
        return std::exchange(h_, nullptr);
    }
    explicit operator bool() const noexcept
    {
        return h_ != nullptr;
    }

  protected:
    T *h_ = nullptr;
};
} // namespace detail

class Store;

/** A zero-copy view of an object (pxs_store_view); released by release() or
 *  the destructor. It counts as one resolve. */
class View
{
  public:
    View() noexcept : v_()
    {
    }
    View(const View &) = delete;
    View &operator=(const View &) = delete;
    View(View &&o) noexcept : st_(std::exchange(o.st_, nullptr)), v_(o.v_)
    {
    }
    View &operator=(View &&o) noexcept
    {
        if (this != &o) {
            reset();
            st_ = std::exchange(o.st_, nullptr);
            v_ = o.v_;
        }
        return *this;
    }
    ~View()
    {
        reset();
    }
    bytes_view bytes() const noexcept
    {
        return bytes_view(v_.data, st_ ? v_.len : 0);
    }
    const std::byte *data() const noexcept
    {
        return bytes().data();
    }
    std::size_t size() const noexcept
    {
        return bytes().size();
    }
    /** Release now (throws on failure). */
    void release()
    {
        if (st_)
            check(pxs_store_release(std::exchange(st_, nullptr), &v_),
                  "pxs_store_release");
    }

  private:
    friend class Store;
    View(pxs_store_t *st, const pxs_view_t &v) noexcept : st_(st), v_(v)
    {
    }
    void reset() noexcept
    {
        if (st_) {
            [[maybe_unused]] int rc =
                pxs_store_release(std::exchange(st_, nullptr), &v_);
        }
    }
    pxs_store_t *st_ = nullptr;
    pxs_view_t v_;
};

/** A store (collective create/close over a communicator). */
class Store : public detail::handle<pxs_store_t>
{
  public:
    /** Default store options (C defaults and PXS_* environment). */
    static pxs_store_opts_t options() noexcept
    {
        pxs_store_opts_t o;
        pxs_store_opts_init(&o);
        return o;
    }
    /** Default per-put options. */
    static pxs_put_opts_t put_options() noexcept
    {
        pxs_put_opts_t o;
        pxs_put_opts_init(&o);
        return o;
    }
    Store() noexcept = default;
    explicit Store(MPI_Comm comm, const pxs_store_opts_t &opts = options())
    {
        check(pxs_store_create(comm, &opts, &h_), "pxs_store_create");
    }
    /** A finished (or live) HDF5 store, read-only (pxs_store_open): path is
     *  its directory or manifest. Collective over comm (MPI_COMM_SELF is
     *  fine). Throws pxs::error (NOT_FOUND, CORRUPT, IO, NOTSUP, ...). */
    static Store open(MPI_Comm comm, const std::string &path)
    {
        Store s;
        check(pxs_store_open(comm, path.c_str(), &s.h_), "pxs_store_open");
        return s;
    }
    Store(Store &&) noexcept = default;
    Store &operator=(Store &&o) noexcept
    {
        if (this != &o) {
            reset();
            h_ = o.release();
        }
        return *this;
    }
    /** Collective destroy; ignores failures (see the file comment). */
    ~Store()
    {
        reset();
    }
    /** Collective destroy; throws (PXS_ERR_BUSY: views or requests still
     *  out on some rank; the store stays usable, every rank calls again). */
    void close()
    {
        if (h_) {
            check(pxs_store_destroy(h_), "pxs_store_destroy");
            h_ = nullptr;
        }
    }

    proxy put(bytes_view data, const pxs_put_opts_t &opts = put_options())
    {
        proxy p;
        check(pxs_store_put(h_, data.data(), data.size(), &opts, &p),
              "pxs_store_put");
        return p;
    }
    /** Lend data instead of copying it (pxs_store_put_ref; docs/DESIGN.md,
     *  "Lent buffers"). *lent (if given) = true: the store lent it, data
     *  must stay alive and unchanged until ref_wait(p) returns true; false:
     *  copied (a store that cannot lend), data is free at once. */
    proxy put_ref(bytes_view data, bool *lent = nullptr,
                  const pxs_put_opts_t &opts = put_options())
    {
        proxy p;
        int l = 0;
        check(pxs_store_put_ref(h_, data.data(), data.size(), &opts, &p, &l),
              "pxs_store_put_ref");
        if (lent)
            *lent = l != 0;
        return p;
    }
    /** Reserve len bytes to fill in place (pxs_store_reserve;
     *  docs/DESIGN.md, "Reserved puts"): write r.data[0 .. r.len), then
     *  commit(r) or cancel(r). r.in_arena = 1: in this rank's arena (no
     *  copy at commit); 0: a private buffer the commit puts. */
    pxs_reservation_t reserve(std::size_t len, const pxs_put_opts_t &opts = put_options())
    {
        pxs_reservation_t r;
        check(pxs_store_reserve(h_, len, &opts, &r), "pxs_store_reserve");
        return r;
    }
    /** pxs_store_commit: publish a reservation (ended whatever happens). */
    proxy commit(pxs_reservation_t &r)
    {
        proxy p;
        check(pxs_store_commit(h_, &r, &p), "pxs_store_commit");
        return p;
    }
    /** pxs_store_cancel: give a reservation back unpublished. */
    void cancel(pxs_reservation_t &r) { check(pxs_store_cancel(h_, &r), "pxs_store_cancel"); }
    /** pxs_store_ref_wait (owner only, lent proxies only): true when the
     *  lent buffer is the caller's again, false when it is still in use
     *  after timeout s (PXS_ERR_AGAIN); throws on any other failure. */
    bool ref_wait(const proxy &p, double timeout = PXS_WAIT_FOREVER)
    {
        int rc = pxs_store_ref_wait(h_, &p, timeout);
        if (rc == PXS_ERR_AGAIN)
            return false;
        check(rc, "pxs_store_ref_wait");
        return true;
    }
    /** Resolve into buf (cap bytes); returns the object's size. */
    std::size_t resolve(const proxy &p, void *buf, std::size_t cap)
    {
        std::size_t n = 0;
        check(pxs_store_resolve(h_, &p, buf, cap, &n), "pxs_store_resolve");
        return n;
    }
    /** Resolve into a new byte vector. */
    std::vector<std::byte> resolve(const proxy &p)
    {
        void *buf = nullptr;
        std::size_t n = 0;
        check(pxs_store_resolve_alloc(h_, &p, &buf, &n),
              "pxs_store_resolve_alloc");
        const std::byte *b = static_cast<const std::byte *>(buf);
        std::vector<std::byte> v(b, b + n);
        pxs_free(buf);
        return v;
    }
    View view(const proxy &p)
    {
        pxs_view_t v;
        check(pxs_store_view(h_, &p, &v), "pxs_store_view");
        return View(h_, v);
    }
    void evict(const proxy &p)
    {
        check(pxs_store_evict(h_, &p), "pxs_store_evict");
    }
    void drop(const proxy &p)
    {
        check(pxs_store_drop(h_, &p), "pxs_store_drop");
    }
    int rank() const noexcept
    {
        return pxs_store_rank(h_);
    }

  private:
    void reset() noexcept
    {
        if (h_) {
            [[maybe_unused]] int rc = pxs_store_destroy(release());
        }
    }
};

/** A subscription: plain (group empty) or as a member of a named group. */
struct Subscription {
    std::uint32_t topic = 0;
    std::string group;
    std::uint32_t prefetch = 0;
};

/** The MPI mailbox bus (collective create/close). */
class Bus : public detail::handle<pxs_bus_t>
{
  public:
    /** Default bus options (C defaults and PXS_* environment). */
    static pxs_bus_opts_t options() noexcept
    {
        pxs_bus_opts_t o;
        pxs_bus_opts_init(&o);
        return o;
    }
    Bus() noexcept = default;
    /** publish: topics this rank publishes; subscribe: topics it receives.
     *  The publish/subscribe fields of opts are replaced by these. */
    Bus(MPI_Comm comm, const std::vector<std::uint32_t> &publish,
        const std::vector<Subscription> &subscribe,
        pxs_bus_opts_t opts = options())
    {
        std::vector<pxs_subscription_t> subs(subscribe.size());
        for (std::size_t i = 0; i < subs.size(); i++) {
            subs[i].topic = subscribe[i].topic;
            subs[i].group = subscribe[i].group.empty()
                                ? nullptr
                                : subscribe[i].group.c_str();
            subs[i].prefetch = subscribe[i].prefetch;
        }
        opts.publish = publish.empty() ? nullptr : publish.data();
        opts.n_publish = publish.size();
        opts.subscribe = subs.empty() ? nullptr : subs.data();
        opts.n_subscribe = subs.size();
        check(pxs_bus_create(comm, &opts, &h_), "pxs_bus_create");
        check(pxs_bus_publisher(h_, &pub_), "pxs_bus_publisher");
        check(pxs_bus_subscriber(h_, &sub_), "pxs_bus_subscriber");
    }
    Bus(Bus &&o) noexcept
        : handle(std::move(o)), pub_(std::exchange(o.pub_, nullptr)),
          sub_(std::exchange(o.sub_, nullptr))
    {
    }
    Bus &operator=(Bus &&o) noexcept
    {
        if (this != &o) {
            reset();
            h_ = o.release();
            pub_ = std::exchange(o.pub_, nullptr);
            sub_ = std::exchange(o.sub_, nullptr);
        }
        return *this;
    }
    /** Collective destroy; ignores failures (see the file comment). */
    ~Bus()
    {
        reset();
    }
    /** Collective destroy; throws. */
    void close()
    {
        if (h_) {
            pub_ = nullptr;
            sub_ = nullptr;
            check(pxs_bus_destroy(release()), "pxs_bus_destroy");
        }
    }
    /** Borrowed C handles (valid until close). */
    pxs_publisher_t *publisher() const noexcept
    {
        return pub_;
    }
    pxs_subscriber_t *subscriber() const noexcept
    {
        return sub_;
    }
    int rank() const noexcept
    {
        return pxs_bus_rank(h_);
    }

  private:
    void reset() noexcept
    {
        if (h_) {
            [[maybe_unused]] int rc = pxs_bus_destroy(release());
        }
    }
    pxs_publisher_t *pub_ = nullptr;
    pxs_subscriber_t *sub_ = nullptr;
};

/** A replay subscriber on a stream log (pxs_log_subscriber_open; HDF5
 *  builds): a Consumer created on it, with a Store::open store, reads the
 *  recorded stream in order per (producer, topic), then END. Local.
 *  Destroy the consumers on it first. */
class LogSubscriber : public detail::handle<pxs_subscriber_t>
{
  public:
    LogSubscriber() noexcept = default;
    /** topics: the topics to replay; empty = every topic. */
    explicit LogSubscriber(const std::string &path,
                           const std::vector<std::uint32_t> &topics = {})
    {
        std::vector<pxs_subscription_t> subs(topics.empty() ? 1 : topics.size());
        for (std::size_t i = 0; i < subs.size(); i++) {
            subs[i].topic = topics.empty() ? PXS_TOPIC_ALL : topics[i];
            subs[i].group = nullptr;
            subs[i].prefetch = 0;
        }
        check(pxs_log_subscriber_open(path.c_str(), subs.data(), subs.size(), &h_),
              "pxs_log_subscriber_open");
    }
    LogSubscriber(LogSubscriber &&) noexcept = default;
    LogSubscriber &operator=(LogSubscriber &&o) noexcept
    {
        if (this != &o) {
            close();
            h_ = o.release();
        }
        return *this;
    }
    ~LogSubscriber()
    {
        close();
    }
    void close() noexcept
    {
        if (h_)
            (void)pxs_log_subscriber_close(release());
    }
    pxs_subscriber_t *subscriber() const noexcept
    {
        return h_;
    }
};

/** A producer (local): puts chunks in a store and publishes their proxies.
 *  Borrows the store and the bus: destroy it first. */
class Producer : public detail::handle<pxs_producer_t>
{
  public:
    static pxs_producer_opts_t options() noexcept
    {
        pxs_producer_opts_t o;
        pxs_producer_opts_init(&o);
        return o;
    }
    static pxs_send_opts_t send_options() noexcept
    {
        pxs_send_opts_t o;
        pxs_send_opts_init(&o);
        return o;
    }
    Producer() noexcept = default;
    Producer(Store &store, const Bus &bus,
             const pxs_producer_opts_t &opts = options())
    {
        check(pxs_producer_create(store.get(), bus.publisher(), &opts, &h_),
              "pxs_producer_create");
    }
    /** A forward-only producer (send_proxy; send gives PXS_ERR_INVALID). */
    explicit Producer(const Bus &bus,
                      const pxs_producer_opts_t &opts = options())
    {
        check(pxs_producer_create(nullptr, bus.publisher(), &opts, &h_),
              "pxs_producer_create");
    }
    Producer(Producer &&) noexcept = default;
    Producer &operator=(Producer &&o) noexcept
    {
        if (this != &o) {
            reset();
            h_ = o.release();
        }
        return *this;
    }
    ~Producer()
    {
        reset();
    }
    /** Destroy (closes owned topics, flushes); throws on failure (the handle
     *  is freed in any case). */
    void close()
    {
        if (h_)
            check(pxs_producer_destroy(release()), "pxs_producer_destroy");
    }

    /** Store data and publish its proxy on topic; meta (<= 96 B) travels
     *  inline. opts.meta is replaced by meta. */
    proxy send(std::uint32_t topic, bytes_view data, bytes_view meta = {},
               pxs_send_opts_t opts = send_options())
    {
        proxy p;
        opts.meta = meta.data();
        opts.meta_len = meta.size();
        check(pxs_producer_send(h_, topic, data.data(), data.size(), &opts, &p),
              "pxs_producer_send");
        return p;
    }
    /** Lend data and publish its proxy (pxs_producer_send_ref). *lent (if
     *  given) = true: data must stay alive and unchanged until
     *  ref_wait(returned proxy) returns true; false: copied, free at once. */
    proxy send_ref(std::uint32_t topic, bytes_view data, bool *lent = nullptr,
                   bytes_view meta = {}, pxs_send_opts_t opts = send_options())
    {
        proxy p;
        int l = 0;
        opts.meta = meta.data();
        opts.meta_len = meta.size();
        check(pxs_producer_send_ref(h_, topic, data.data(), data.size(), &opts,
                                    &p, &l),
              "pxs_producer_send_ref");
        if (lent)
            *lent = l != 0;
        return p;
    }
    /** pxs_producer_reserve: len bytes in the producer's store to fill in
     *  place, then send_reserved (or the store's cancel). */
    pxs_reservation_t reserve(std::size_t len)
    {
        pxs_reservation_t r;
        check(pxs_producer_reserve(h_, len, &r), "pxs_producer_reserve");
        return r;
    }
    /** pxs_producer_send_reserved: commit r and publish its proxy on topic;
     *  r is consumed whatever happens. */
    proxy send_reserved(std::uint32_t topic, pxs_reservation_t &r, bytes_view meta = {},
                        pxs_send_opts_t opts = send_options())
    {
        proxy p;
        opts.meta = meta.data();
        opts.meta_len = meta.size();
        check(pxs_producer_send_reserved(h_, topic, &r, &opts, &p),
              "pxs_producer_send_reserved");
        return p;
    }
    /** pxs_producer_ref_wait: flushes the batch if the buffer is not free
     *  yet; true when it is the caller's again, false when still in use
     *  after timeout s (PXS_ERR_AGAIN); throws on any other failure. */
    bool ref_wait(const proxy &p, double timeout = PXS_WAIT_FOREVER)
    {
        int rc = pxs_producer_ref_wait(h_, &p, timeout);
        if (rc == PXS_ERR_AGAIN)
            return false;
        check(rc, "pxs_producer_ref_wait");
        return true;
    }
    /** Forward an existing proxy (never touches its bytes). */
    void send_proxy(std::uint32_t topic, const proxy &p, bytes_view meta = {})
    {
        check(pxs_producer_send_proxy(h_, topic, &p, meta.data(), meta.size()),
              "pxs_producer_send_proxy");
    }
    void flush()
    {
        check(pxs_producer_flush(h_), "pxs_producer_flush");
    }
    void close_topic(std::uint32_t topic)
    {
        check(pxs_producer_close_topic(h_, topic), "pxs_producer_close_topic");
    }

  private:
    void reset() noexcept
    {
        if (h_) {
            [[maybe_unused]] int rc = pxs_producer_destroy(release());
        }
    }
};

/** A consumer (local). Iterating it yields Events until PXS_END (every
 *  producer closed); a failure during iteration throws pxs::error. */
class Consumer : public detail::handle<pxs_consumer_t>
{
  public:
    static pxs_consumer_opts_t options() noexcept
    {
        pxs_consumer_opts_t o;
        pxs_consumer_opts_init(&o);
        return o;
    }
    Consumer() noexcept = default;
    Consumer(Store &store, const Bus &bus,
             const pxs_consumer_opts_t &opts = options())
    {
        check(pxs_consumer_create(store.get(), bus.subscriber(), &opts, &h_),
              "pxs_consumer_create");
    }
    /** A consumer of a recorded stream (replay of a stream log). */
    Consumer(Store &store, const LogSubscriber &log,
             const pxs_consumer_opts_t &opts = options())
    {
        check(pxs_consumer_create(store.get(), log.subscriber(), &opts, &h_),
              "pxs_consumer_create");
    }
    /** A consumer without a store (it forwards, never resolves). */
    explicit Consumer(const Bus &bus,
                      const pxs_consumer_opts_t &opts = options())
    {
        check(pxs_consumer_create(nullptr, bus.subscriber(), &opts, &h_),
              "pxs_consumer_create");
    }
    Consumer(Consumer &&o) noexcept : handle(std::move(o)), ended_(o.ended_)
    {
    }
    Consumer &operator=(Consumer &&o) noexcept
    {
        if (this != &o) {
            reset();
            h_ = o.release();
            ended_ = o.ended_;
        }
        return *this;
    }
    ~Consumer()
    {
        reset();
    }
    void close()
    {
        if (h_)
            check(pxs_consumer_destroy(release()), "pxs_consumer_destroy");
    }

    /** Next event; std::nullopt at the end of the stream (ended() is then
     *  true) or when timeout (s; 0 polls, < 0 waits) passed. */
    std::optional<Event> next(double timeout = PXS_WAIT_FOREVER)
    {
        pxs_event_t ev;
        int rc =
            check(pxs_consumer_next(h_, &ev, timeout), "pxs_consumer_next");
        if (rc == PXS_OK)
            return Event(ev);
        if (rc == PXS_END)
            ended_ = true;
        return std::nullopt;
    }
    /** True once next() saw PXS_END. */
    bool ended() const noexcept
    {
        return ended_;
    }

    std::size_t resolve(const Event &ev, void *buf, std::size_t cap)
    {
        std::size_t n = 0;
        check(pxs_consumer_resolve(h_, &ev.raw(), buf, cap, &n),
              "pxs_consumer_resolve");
        return n;
    }
    /** Resolve into a vector of T (size: the object's size / sizeof(T)). */
    template <class T = std::byte> std::vector<T> resolve(const Event &ev)
    {
        static_assert(std::is_trivially_copyable_v<T>,
                      "resolve into trivially copyable T");
        pxs_proxy_info_t i = info(ev.get_proxy());
        std::vector<T> v((i.size + sizeof(T) - 1) / sizeof(T));
        std::size_t n = resolve(ev, v.data(), v.size() * sizeof(T));
        v.resize(n / sizeof(T));
        return v;
    }
    void discard(const Event &ev)
    {
        check(pxs_consumer_discard(h_, &ev.raw()), "pxs_consumer_discard");
    }

    /** Input iterator over events (waits for each; ends at PXS_END). */
    class iterator
    {
      public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Event;
        using difference_type = std::ptrdiff_t;
        using pointer = const Event *;
        using reference = const Event &;
        iterator() noexcept = default;
        explicit iterator(Consumer *c) : c_(c)
        {
            ++*this;
        }
        reference operator*() const noexcept
        {
            return ev_;
        }
        pointer operator->() const noexcept
        {
            return &ev_;
        }
        iterator &operator++()
        {
            std::optional<Event> e = c_->next(PXS_WAIT_FOREVER);
            if (e)
                ev_ = *e;
            else
                c_ = nullptr;
            return *this;
        }
        void operator++(int)
        {
            ++*this;
        }
        bool operator==(const iterator &o) const noexcept
        {
            return c_ == o.c_;
        }
        bool operator!=(const iterator &o) const noexcept
        {
            return c_ != o.c_;
        }

      private:
        Consumer *c_ = nullptr;
        Event ev_;
    };
    iterator begin()
    {
        return iterator(this);
    }
    iterator end() noexcept
    {
        return iterator();
    }

  private:
    void reset() noexcept
    {
        if (h_) {
            [[maybe_unused]] int rc = pxs_consumer_destroy(release());
        }
    }
    bool ended_ = false;
};

} // namespace pxs

#endif
