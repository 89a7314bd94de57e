// The HDF5 calls of proxystream.hpp on 2 ranks: a durable store
// (connector PXS_CONN_HDF5), a producer logging its stream (log_path),
// then, as a later reader on every rank, pxs::Store::open and a
// pxs::LogSubscriber replaying the stream through the same Consumer code;
// error paths: a missing store, a directory without a log.
#include <proxystream.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

static int rank = -1;

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            std::fprintf(stderr, "[rank %d] %s:%d: FAILED: %s (detail: %s)\n", \
                         rank, __FILE__, __LINE__, #c,                         \
                         pxs_last_error_detail());                             \
            MPI_Abort(MPI_COMM_WORLD, 1);                                      \
        }                                                                      \
    } while (0)

#define CHECK_THROWS(expr, ok_if)                                              \
    do {                                                                       \
        int got_ = 0;                                                          \
        try {                                                                  \
            expr;                                                              \
        } catch (const pxs::error &e_) {                                       \
            got_ = e_.status();                                                \
        }                                                                      \
        int code = got_;                                                       \
        CHECK(got_ != 0 && (ok_if));                                           \
        (void)code;                                                            \
    } while (0)

static std::vector<unsigned char>
chunk(int r, int i)
{
    std::vector<unsigned char> v(3000 + 1000 * (std::size_t)i);
    for (std::size_t k = 0; k < v.size(); k++)
        v[k] = (unsigned char)(k * 31 + (std::size_t)r * 7 + (std::size_t)i);
    return v;
}

static std::vector<unsigned char>
as_uchar(const std::vector<std::byte> &b)
{
    return std::vector<unsigned char>(reinterpret_cast<const unsigned char *>(b.data()),
                                      reinterpret_cast<const unsigned char *>(b.data()) +
                                          b.size());
}

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size == 2);
    char dir[512] = "";
    if (rank == 0) {
        std::snprintf(dir, sizeof dir, "%s/pxs-cxx-hdf5-XXXXXX",
                      std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
        CHECK(mkdtemp(dir) != nullptr);
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    const std::string spath = std::string(dir) + "/store", lpath = std::string(dir) + "/log";
    const std::uint32_t T = 5;
    const int n = 4;
    std::vector<pxs::proxy> all(2 * n);
    {
        pxs_store_opts_t so = pxs::Store::options();
        so.connector = PXS_CONN_HDF5;
        so.path = spath.c_str();
        pxs::Store st(MPI_COMM_WORLD, so);
        std::vector<pxs::proxy> mine;
        for (int i = 0; i < n; i++)
            mine.push_back(st.put(chunk(rank, i)));
        MPI_Allgather(mine.data(), n * PXS_PROXY_SIZE, MPI_BYTE, all.data(), n * PXS_PROXY_SIZE,
                      MPI_BYTE, MPI_COMM_WORLD);
        pxs::Bus bus(MPI_COMM_WORLD, rank == 0 ? std::vector<std::uint32_t>{T}
                                               : std::vector<std::uint32_t>{},
                     rank == 1 ? std::vector<pxs::Subscription>{{T, "", 0}}
                               : std::vector<pxs::Subscription>{});
        if (rank == 0) {
            pxs_producer_opts_t po = pxs::Producer::options();
            po.log_path = lpath.c_str();
            pxs::Producer prod(st, bus, po);
            for (int i = 0; i < n; i++)
                prod.send(T, chunk(9, i));
            prod.close_topic(T);
            prod.close();
        } else {
            pxs::Consumer cons(st, bus);
            int i = 0;
            for (const pxs::Event &ev : cons)
                CHECK(as_uchar(cons.resolve(ev)) == chunk(9, i++));
            CHECK(i == n && cons.ended());
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    {
        // the later reader, on each rank alone
        pxs::Store ro = pxs::Store::open(MPI_COMM_SELF, spath);
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < n; i++)
                CHECK(as_uchar(ro.resolve(all[(std::size_t)(r * n + i)])) == chunk(r, i));
        pxs::LogSubscriber log(lpath, {T});
        {
            pxs::Consumer cons(ro, log);
            int i = 0;
            for (const pxs::Event &ev : cons) {
                CHECK(ev.topic() == T && ev.producer() == 0 && ev.seq() == (std::uint64_t)i);
                CHECK(as_uchar(cons.resolve(ev)) == chunk(9, i++));
            }
            CHECK(i == n && cons.ended());
        }
        log.close();
        ro.close();
    }
    // error paths
    CHECK_THROWS(pxs::Store::open(MPI_COMM_SELF, std::string(dir) + "/missing"),
                 code == PXS_ERR_NOT_FOUND || code == PXS_ERR_IO);
    CHECK_THROWS(pxs::LogSubscriber bad(spath), code == PXS_ERR_NOT_FOUND);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        std::filesystem::remove_all(dir);
    if (rank == 0)
        std::printf("cxx hdf5: OK\n");
    MPI_Finalize();
    return 0;
}
