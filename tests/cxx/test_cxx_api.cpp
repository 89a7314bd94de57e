// Every type and call of proxystream.hpp, and an error path each, on 3 ranks:
// rank 0 produces topic 1; rank 1 consumes it in a range-for loop, resolves odd
// chunks, forwards even ones on topic 2 (forward-only producer) and discards
// the last; rank 2 (group "g" on topic 2) resolves the forwarded ones. Plus a
// store round trip over MPI_Send of a proxy, views, and close() after BUSY.
#include <proxystream.hpp>

#include <cstdio>
#include <cstring>
#include <type_traits>

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            std::fprintf(stderr, "[rank %d] %s:%d: FAILED: %s (detail: %s)\n", \
                         rank, __FILE__, __LINE__, #c,                         \
                         pxs_last_error_detail());                             \
            MPI_Abort(MPI_COMM_WORLD, 1);                                      \
        }                                                                      \
    } while (0)

// expr must throw pxs::error with status `want`
#define CHECK_THROWS(expr, want)                                               \
    do {                                                                       \
        int got_ = 0;                                                          \
        try {                                                                  \
            expr;                                                              \
        } catch (const pxs::error &e_) {                                       \
            got_ = e_.status();                                                \
            CHECK(e_.code().category() == pxs::category());                    \
            CHECK(std::strstr(e_.what(), pxs_errname(want)) != nullptr);       \
            CHECK(!e_.detail().empty() &&                                      \
                  std::strstr(e_.what(), e_.detail().c_str()) != nullptr);     \
        }                                                                      \
        CHECK(got_ == (want));                                                 \
    } while (0)

static_assert(!std::is_copy_constructible_v<pxs::Store>, "move-only");
static_assert(!std::is_copy_constructible_v<pxs::Bus>, "move-only");
static_assert(!std::is_copy_constructible_v<pxs::Producer>, "move-only");
static_assert(!std::is_copy_constructible_v<pxs::Consumer>, "move-only");
static_assert(!std::is_copy_constructible_v<pxs::View>, "move-only");
static_assert(std::is_nothrow_move_constructible_v<pxs::Store> &&
                  std::is_nothrow_move_constructible_v<pxs::Consumer>,
              "movable");
static_assert(std::is_base_of_v<std::system_error, pxs::error>, "system_error");
static_assert(sizeof(pxs::proxy) == 64, "64-byte proxy");

static int rank = -1;

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 3);
    const int N = 1000, NCHUNK = 6;

    CHECK(std::string(pxs::category().name()) == "proxystream");
    CHECK(pxs::category().message(PXS_ERR_STALE) ==
          pxs_strerror(PXS_ERR_STALE));

    // ---- collective create errors throw on every rank together; local
    // calls on empty handles throw PXS_ERR_INVALID
    {
        pxs_store_opts_t huge = pxs::Store::options();
        huge.arena_bytes = (size_t)1 << 62;
        CHECK_THROWS(pxs::Store(MPI_COMM_WORLD, huge), PXS_ERR_NOMEM);
        CHECK_THROWS(
            pxs::Bus(MPI_COMM_WORLD, {},
                     {{1, "a-group-name-longer-than-31-characters", 0}}),
            PXS_ERR_INVALID);
        pxs::Bus nobus;
        pxs::Store nostore;
        CHECK(!nobus && !nostore && !nobus.publisher());
        CHECK_THROWS(pxs::Producer{nobus}, PXS_ERR_INVALID);
        CHECK_THROWS(pxs::Consumer(nostore, nobus), PXS_ERR_INVALID);
        pxs::Producer noprod;
        CHECK_THROWS(noprod.flush(), PXS_ERR_INVALID);
        CHECK_THROWS(noprod.close_topic(1), PXS_ERR_INVALID);
        nobus.close(); // empty: no-op
        nostore.close();
    }

    // ---- store: put, proxy by MPI_Send, resolve, stale, forged, view, evict
    pxs_store_opts_t so = pxs::Store::options();
    so.arena_bytes = 4u << 20;
    pxs::Store tmp(MPI_COMM_WORLD, so);
    pxs::Store st = std::move(tmp); // moved-from handle is empty
    CHECK(!tmp && st && st.rank() == rank);
    std::vector<double> a(35);
    for (int i = 0; i < 35; i++)
        a[i] = i + 100.0 * rank;
    pxs::proxy p = st.put(a), q;
    MPI_Sendrecv(p.bytes, PXS_PROXY_SIZE, MPI_BYTE, (rank + 1) % 3, 1, q.bytes,
                 PXS_PROXY_SIZE, MPI_BYTE, (rank + 2) % 3, 1, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    pxs::validate(q);
    CHECK(pxs::info(q).size == 35 * sizeof(double) &&
          pxs::info(q).owner == (uint32_t)(rank + 2) % 3);
    double small[3];
    CHECK_THROWS(st.resolve(q, small, sizeof small),
                 PXS_ERR_TRUNC); // nothing consumed
    std::vector<std::byte> got = st.resolve(q);
    CHECK(got.size() == 35 * sizeof(double));
    for (int i = 0; i < 35; i++) {
        double d;
        std::memcpy(&d, got.data() + i * sizeof d, sizeof d);
        CHECK(d == i + 100.0 * ((rank + 2) % 3));
    }
    CHECK_THROWS(st.resolve(q), PXS_ERR_STALE); // budget 1 used up
    std::string txt = pxs::to_text(q);
    CHECK(txt.rfind("pxs2:", 0) == 0 && txt.size() == PXS_PROXY_TEXT_LEN - 1);
    CHECK(std::memcmp(pxs::from_text(" " + txt + "\n").bytes, q.bytes, 64) ==
          0);
    CHECK_THROWS(pxs::from_text("pxs2:zz"), PXS_ERR_CORRUPT);
    pxs::proxy forged = q;
    forged.bytes[24] ^= 0x40; // the size field
    CHECK_THROWS(st.resolve(forged, small, sizeof small), PXS_ERR_CORRUPT);
    CHECK_THROWS(pxs::validate(forged), PXS_ERR_CORRUPT);
    CHECK_THROWS(st.evict(forged), PXS_ERR_CORRUPT);

    pxs_put_opts_t keep = pxs::Store::put_options();
    keep.resolves = 0; // keep until evicted
    std::string hello = "hello from rank " + std::to_string(rank);
    pxs::proxy k = st.put(hello, keep);
    {
        pxs::View v1 = st.view(k);
        pxs::View v2 = st.view(k);
        CHECK(std::string(reinterpret_cast<const char *>(v1.data()),
                          v1.size()) == hello);
        CHECK(v2.bytes().size() == hello.size() &&
              v2.bytes()[0] == std::byte{'h'});
        v2.release(); // explicit
        v2.release(); // no-op once released
    }                 // v1 released by its destructor
    st.evict(k);
    CHECK_THROWS(st.view(k), PXS_ERR_STALE);
    pxs::proxy d = st.put(hello);
    st.drop(d); // budget 1: gone
    CHECK_THROWS(st.resolve(d), PXS_ERR_STALE);

    // ---- lent buffers: put_ref, ref_wait (docs/DESIGN.md, "Lent buffers");
    // lent on one node when cross-memory attach works, else copied
    std::vector<int> lend(1000, rank);
    bool lent = false;
    pxs::proxy lp = st.put_ref(lend, &lent), lq;
    if (lent)
        CHECK(!st.ref_wait(lp, 0.0)); // nobody has the proxy yet: in use
    else
        CHECK_THROWS(st.ref_wait(lp, 0.0), PXS_ERR_INVALID); // a copy
    MPI_Sendrecv(lp.bytes, PXS_PROXY_SIZE, MPI_BYTE, (rank + 1) % 3, 2, lq.bytes,
                 PXS_PROXY_SIZE, MPI_BYTE, (rank + 2) % 3, 2, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    std::vector<std::byte> lg = st.resolve(lq);
    CHECK(lg.size() == 1000 * sizeof(int));
    for (int i = 0; i < 1000; i += 333) {
        int v;
        std::memcpy(&v, lg.data() + i * sizeof v, sizeof v);
        CHECK(v == (rank + 2) % 3);
    }
    if (lent)
        CHECK(st.ref_wait(lp)); // the peer resolved it: ours again
    CHECK_THROWS(st.ref_wait(lq), PXS_ERR_INVALID); // another rank's object
    CHECK_THROWS(st.put_ref(pxs::bytes_view()), PXS_ERR_INVALID); // 0 bytes

    // ---- reserved puts (docs/DESIGN.md, "Reserved puts"): fill in place
    pxs_reservation_t rv = st.reserve(1000 * sizeof(int));
    for (int i = 0; i < 1000; i++)
        std::memcpy(static_cast<char *>(rv.data) + i * sizeof(int), &rank, sizeof rank);
    pxs::proxy rp = st.commit(rv), rq;
    CHECK_THROWS(st.commit(rv), PXS_ERR_INVALID); // ended
    MPI_Sendrecv(rp.bytes, PXS_PROXY_SIZE, MPI_BYTE, (rank + 1) % 3, 3, rq.bytes,
                 PXS_PROXY_SIZE, MPI_BYTE, (rank + 2) % 3, 3, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    std::vector<std::byte> rg = st.resolve(rq);
    CHECK(rg.size() == 1000 * sizeof(int));
    for (int i = 0; i < 1000; i += 333) {
        int v;
        std::memcpy(&v, rg.data() + i * sizeof v, sizeof v);
        CHECK(v == (rank + 2) % 3);
    }
    pxs_reservation_t rc = st.reserve(64);
    st.cancel(rc);
    CHECK_THROWS(st.cancel(rc), PXS_ERR_INVALID);

    // ---- bus, producer, consumer
    std::vector<uint32_t> pub;
    std::vector<pxs::Subscription> sub;
    if (rank == 0)
        pub = {1};
    else if (rank == 1)
        pub = {2}, sub = {{1, "", 0}};
    else
        sub = {{2, "g", 2}};
    pxs::Bus bus(MPI_COMM_WORLD, pub, sub);
    CHECK(bus.publisher() && bus.subscriber() && bus.rank() == rank);
    pxs::Consumer c2;
    if (rank == 2) {
        c2 = pxs::Consumer(st, bus);
        CHECK(!c2.next(0.0) && !c2.ended()); // nothing sent yet: PXS_TIMEOUT
    }
    MPI_Barrier(MPI_COMM_WORLD);

    if (rank == 0) {
        pxs_producer_opts_t po = pxs::Producer::options();
        uint32_t topics[] = {1};
        po.topics = topics;
        po.n_topics = 1;
        po.checksum = 1;
        po.resolves = 1; // one resolve per chunk (rank 1 or, forwarded, rank 2)
        pxs::Producer prod(st, bus, po);
        std::vector<int> chunk(N);
        for (int c = 0; c < NCHUNK; c++) {
            for (int i = 0; i < N; i++)
                chunk[i] = c * N + i;
            pxs::proxy sp = prod.send(1, chunk, pxs::bytes_view(&c, sizeof c));
            CHECK(pxs::info(sp).seq == (uint64_t)c &&
                  pxs::info(sp).size == N * sizeof(int));
            if (c == 2)
                prod.flush();
        }
        pxs::proxy copied = st.put(chunk);
        CHECK_THROWS(prod.ref_wait(copied), PXS_ERR_INVALID); // not lent
        st.drop(copied);
        CHECK_THROWS(prod.send_ref(1, pxs::bytes_view()), PXS_ERR_INVALID);
        char big[200] = {0};
        CHECK_THROWS(prod.send(1, chunk, pxs::bytes_view(big, sizeof big)),
                     PXS_ERR_TOO_BIG);
        CHECK_THROWS(prod.send(3, chunk), PXS_ERR_NOT_FOUND);
        CHECK_THROWS(prod.close_topic(3), PXS_ERR_NOT_FOUND);
        prod.close_topic(1);
        CHECK_THROWS(prod.send(1, chunk), PXS_ERR_CLOSED);
        prod.close();
        prod.close(); // no-op
    } else if (rank == 1) {
        pxs::Consumer cons(st, bus);
        pxs::Producer fwd(bus); // forward only
        int odd = 0, discarded = 0;
        for (const pxs::Event &ev : cons) {
            int c;
            CHECK(ev.topic() == 1 && ev.producer() == 0 &&
                  ev.meta().size() == sizeof c);
            std::memcpy(&c, ev.meta().data(), sizeof c);
            CHECK((uint64_t)c == ev.seq());
            if (c == NCHUNK - 1) {
                pxs_event_t raw = ev.raw();
                raw.proxy.bytes[39] ^= 1;
                CHECK_THROWS(cons.discard(pxs::Event(raw)), PXS_ERR_CORRUPT);
                cons.discard(ev);
                discarded++;
            } else if (c % 2 == 0) {
                fwd.send_proxy(2, ev.get_proxy(), ev.meta());
            } else {
                std::vector<int> v = cons.resolve<int>(ev);
                CHECK(v.size() == (size_t)N);
                for (int i = 0; i < N; i++)
                    CHECK(v[i] == c * N + i);
                odd++;
            }
        }
        CHECK(cons.ended() && odd == 2 && discarded == 1);
        CHECK(!cons.next(0.0) && cons.ended()); // END again
        pxs::proxy bad = p;
        bad.bytes[0] = 99;
        CHECK_THROWS(fwd.send_proxy(2, bad), PXS_ERR_CORRUPT);
        CHECK_THROWS(fwd.send(2, hello), PXS_ERR_INVALID); // no store
        fwd.close();                                       // END on topic 2
        pxs::Consumer moved = std::move(cons);
        // a failure while iterating throws (the moved-from handle is empty)
        int thrown = 0;
        try {
            for (const pxs::Event &ev : cons)
                (void)ev;
        } catch (const pxs::error &e) {
            thrown = e.status();
        }
        CHECK(thrown == PXS_ERR_INVALID);
        moved.close();
    } else {
        int n = 0;
        for (const pxs::Event &ev : c2) {
            int c;
            std::memcpy(&c, ev.meta().data(), sizeof c);
            int buf[N];
            CHECK(c2.resolve(ev, buf, sizeof buf) == sizeof buf);
            CHECK(c % 2 == 0 && buf[0] == c * N && buf[N - 1] == c * N + N - 1);
            CHECK_THROWS(c2.resolve(ev, buf, sizeof buf), PXS_ERR_STALE);
            n++;
        }
        CHECK(n == 3 && c2.ended());
        c2.close();
    }
    bus.close();

    // ---- close() after BUSY: every rank holds a view, every rank gets BUSY
    pxs::proxy kv = st.put(hello, keep);
    pxs::View held = st.view(kv);
    CHECK_THROWS(st.close(), PXS_ERR_BUSY);
    CHECK(st); // still usable
    held.release();
    st.evict(kv);
    st.close();
    CHECK(!st);
    if (rank == 0)
        std::printf("cxx api: ok\n");
    MPI_Finalize();
    return 0;
}
