#!/usr/bin/env python3
"""The seed's scenario in Python: a generator streams numpy chunks, a
dispatcher forwards their proxies without ever touching the data, and
workers resolve the chunks and reduce them.

    mpirun -n 5 /usr/bin/python3 examples/python/dispatcher.py [--mode group|topics]

Rank 0 is the generator, rank 1 the dispatcher, ranks 2.. the workers.
--mode group (default): the dispatcher forwards on one topic that the workers
subscribe to as the work-sharing group "workers" (each chunk reaches one
worker, the bus picks a worker with room). --mode topics: one topic per
worker, the dispatcher deals the proxies round robin.

Each chunk's metadata carries its index and CRC-32; a worker checks the CRC
of the bytes it resolved and sums them. Rank 0 checks the total against what
it sent and prints chunks/s. Exit status 1 if anything does not match.
"""
import argparse
import struct
import sys
import time
import zlib

import numpy as np
from mpi4py import MPI

import proxystream as pxs

CHUNKS = 1      # generator -> dispatcher
WORK = 2        # dispatcher -> workers (group mode)
WORKER_BASE = 100  # dispatcher -> worker r on topic WORKER_BASE + r (topics mode)
META = struct.Struct("<QI")  # chunk index, CRC-32 of the chunk's bytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=400)
    ap.add_argument("--chunk-bytes", type=int, default=1 << 20)
    ap.add_argument("--mode", choices=("group", "topics"), default="group")
    args = ap.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if size < 3:
        if rank == 0:
            print("dispatcher.py needs at least 3 ranks "
                  "(generator, dispatcher, workers)", file=sys.stderr)
        return 2
    workers = list(range(2, size))
    n_elems = args.chunk_bytes // 8

    if args.mode == "group":
        work_topics = [WORK]
        my_subs = [(WORK, "workers")]
    else:
        work_topics = [WORKER_BASE + w for w in workers]
        my_subs = [WORKER_BASE + rank]
    publish = {0: [CHUNKS], 1: work_topics}.get(rank, [])
    subscribe = {0: [], 1: [CHUNKS]}.get(rank, my_subs)

    # the arena holds what is in flight: a few chunks per worker is plenty
    arena = max(64 << 20, 4 * len(workers) * args.chunk_bytes)
    count, total, bad = 0, 0, 0
    with pxs.Store(comm, arena_bytes=arena) as store, \
            pxs.Bus(comm, publish=publish, subscribe=subscribe) as bus:
        comm.Barrier()
        t0 = time.perf_counter()
        if rank == 0:
            # generator: chunk i holds i, i+1, ..., so every chunk differs
            with pxs.StreamProducer(store, bus.publisher(), topics=[CHUNKS]) as prod:
                base = np.arange(n_elems, dtype=np.int64)
                for i in range(args.chunks):
                    a = base + i
                    prod.send(CHUNKS, a, metadata=META.pack(i, zlib.crc32(a)))
        elif rank == 1:
            # dispatcher: proxies in, proxies out; it has no store to resolve with
            with pxs.StreamConsumer(None, bus.subscriber()) as cons, \
                    pxs.StreamProducer(None, bus.publisher(), topics=work_topics) as fwd:
                for n, p in enumerate(cons):
                    fwd.send_proxy(work_topics[n % len(work_topics)], p,
                                   metadata=p.metadata)
                    count += 1
        else:
            # worker: resolve, check, reduce
            with pxs.StreamConsumer(store, bus.subscriber()) as cons:
                for p in cons:
                    i, crc = META.unpack(p.metadata)
                    a = np.frombuffer(p.resolve(), dtype=np.int64)
                    if zlib.crc32(a) != crc or a.size != n_elems or a[0] != i:
                        bad += 1
                    total += int(a.sum())
                    count += 1
        done = comm.gather((count if rank >= 2 else 0, total, bad), root=0)
        forwarded = comm.bcast(count if rank == 1 else None, root=1)
        elapsed = time.perf_counter() - t0

    if rank != 0:
        return 0
    got, got_sum, got_bad = (sum(col) for col in zip(*done))
    expect_sum = sum(i * n_elems + n_elems * (n_elems - 1) // 2
                     for i in range(args.chunks))
    ok = (got == args.chunks and forwarded == args.chunks and got_bad == 0
          and got_sum == expect_sum)
    mib = args.chunks * args.chunk_bytes / (1 << 20)
    print(f"proxystream python dispatcher ({args.mode}): {size} ranks, "
          f"{len(workers)} workers, {args.chunks} chunks of {args.chunk_bytes} B")
    print(f"  dispatcher forwarded {forwarded} proxies, workers resolved {got}, "
          f"checksum errors {got_bad}, sum {'ok' if got_sum == expect_sum else 'WRONG'}")
    print(f"  {args.chunks / elapsed:.0f} chunks/s, {mib / elapsed:.0f} MiB/s "
          f"({elapsed:.3f} s)")
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
