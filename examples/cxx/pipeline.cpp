// generator -> dispatcher -> workers with proxystream.hpp (C++17).
//
// Rank 0 generates CHUNKS chunks of doubles and sends each (its proxy travels,
// the bytes stay on rank 0) with metadata {index, CRC32C of the bytes}. Rank 1,
// the dispatcher, iterates its consumer and forwards every proxy round robin
// to one worker's topic without touching the payload. Ranks 2.. resolve the
// chunks, check the CRC and sum them. Rank 0 prints what each worker got and
// checks the total against what it generated (exit status 1 on a mismatch).
//   usage: mpirun -n 4 pipeline [chunks] [doubles per chunk]
#include <proxystream.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace
{
struct Meta {
    std::uint64_t index;
    std::uint32_t crc;
    std::uint32_t pad;
};
constexpr std::uint32_t T_CHUNKS = 1, T_WORKER0 = 100;
} // namespace

int
main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int chunks = argc > 1 ? std::atoi(argv[1]) : 64;
    const int count = argc > 2 ? std::atoi(argv[2]) : 8192;
    const int workers = size - 2;
    if (workers < 1) {
        if (rank == 0)
            std::fprintf(stderr, "pipeline: needs at least 3 ranks\n");
        MPI_Finalize();
        return 2;
    }
    int bad = 0;
    double sum = 0, total = 0;
    long got = 0;
    try {
        pxs_store_opts_t so = pxs::Store::options();
        so.arena_bytes = 16u << 20;
        pxs::Store store(MPI_COMM_WORLD, so);

        std::vector<std::uint32_t> publish;
        std::vector<pxs::Subscription> subscribe;
        if (rank == 0) {
            publish = {T_CHUNKS};
        } else if (rank == 1) {
            subscribe = {{T_CHUNKS, "", 0}};
            for (int w = 0; w < workers; w++)
                publish.push_back(T_WORKER0 + w);
        } else {
            subscribe = {{T_WORKER0 + (std::uint32_t)(rank - 2), "", 0}};
        }
        pxs::Bus bus(MPI_COMM_WORLD, publish, subscribe);

        if (rank == 0) {
            pxs::Producer gen(store, bus);
            std::vector<double> chunk(count);
            for (int c = 0; c < chunks; c++) {
                for (int i = 0; i < count; i++)
                    chunk[i] = c + i * 1e-3;
                Meta m{
                    (std::uint64_t)c,
                    pxs_crc32c(0, chunk.data(), chunk.size() * sizeof(double)),
                    0};
                gen.send(T_CHUNKS, chunk, pxs::bytes_view(&m, sizeof m));
                for (double x : chunk)
                    sum += x;
            }
            gen.close(); // END
        } else if (rank == 1) {
            pxs::Consumer in(bus); // no store: never resolves
            pxs::Producer out(bus);
            long n = 0;
            for (const pxs::Event &ev : in)
                out.send_proxy(T_WORKER0 + (std::uint32_t)(n++ % workers),
                               ev.get_proxy(), ev.meta());
            out.close(); // END to every worker
            got = n;
        } else {
            pxs::Consumer in(store, bus);
            for (const pxs::Event &ev : in) {
                Meta m;
                std::memcpy(&m, ev.meta().data(), sizeof m);
                std::vector<double> v =
                    in.resolve<double>(ev); // pulled from rank 0
                if (pxs_crc32c(0, v.data(), v.size() * sizeof(double)) !=
                    m.crc) {
                    std::fprintf(
                        stderr,
                        "pipeline: worker %d: chunk %llu CRC mismatch\n",
                        rank - 2, (unsigned long long)m.index);
                    bad = 1;
                }
                for (double x : v)
                    sum += x;
                got++;
            }
        }
        bus.close();
        store.close();
    } catch (const pxs::error &e) {
        std::fprintf(stderr, "pipeline: rank %d: %s\n", rank, e.what());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    // rank 0's generated sum vs the workers' sums; chunks per worker
    double wsum = rank >= 2 ? sum : 0;
    MPI_Reduce(&wsum, &total, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    std::vector<long> per(size);
    MPI_Gather(&got, 1, MPI_LONG, per.data(), 1, MPI_LONG, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        long received = 0;
        std::printf("pipeline: %d chunks of %zu B, dispatcher forwarded %ld\n",
                    chunks, count * sizeof(double), per[1]);
        for (int w = 0; w < workers; w++) {
            std::printf("  worker %d: %ld chunks\n", w, per[2 + w]);
            received += per[2 + w];
        }
        bool ok = received == chunks && per[1] == chunks &&
                  std::abs(total - sum) <= 1e-9 * std::abs(sum);
        std::printf(
            "pipeline: sum generated %.6f, resolved by workers %.6f: %s\n", sum,
            total, ok ? "ok" : "MISMATCH");
        if (!ok)
            bad = 1;
    }
    int anybad = 0;
    MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return anybad;
}
