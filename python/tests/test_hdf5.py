"""HDF5 calls of the binding (Store connector='hdf5', Store.open /
open_store, StreamProducer log_path, open_log, spill_path), under
mpiexec -n 2. Every test is collective."""
import os
import shutil
import tempfile

import numpy as np
import pytest
from mpi4py import MPI

import proxystream as pxs

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()
T = 7


@pytest.fixture
def tmpdir_shared():
    d = tempfile.mkdtemp(prefix="pxs-py-hdf5-") if rank == 0 else None
    d = comm.bcast(d, root=0)
    yield d
    comm.Barrier()
    if rank == 0:
        shutil.rmtree(d, ignore_errors=True)


def chunk(r, i, n=5000):
    return (np.arange(n, dtype=np.int64) * (i + 1) + r * 1000003).tobytes()


def test_needs_two_ranks():
    assert size >= 2


def test_durable_store_open_later(tmpdir_shared):
    path = os.path.join(tmpdir_shared, "store")
    with pxs.Store(comm, connector="hdf5", path=path, durable=1) as st:
        mine = [st.put(chunk(rank, i)) for i in range(4)]
        assert all(p.size == len(chunk(rank, i)) for i, p in enumerate(mine))
        everyone = comm.allgather([bytes(p) for p in mine])
        # live: every rank's objects from their owners' files
        for r, ps in enumerate(everyone):
            for i, b in enumerate(ps):
                assert st.resolve(pxs.Proxy.from_bytes(b)) == chunk(r, i)
    # a later "job": each rank alone, read-only, both spellings
    for opener in (pxs.Store.open, pxs.open_store):
        with opener(MPI.COMM_SELF, path) as ro:
            for r, ps in enumerate(everyone):
                for i, b in enumerate(ps):
                    assert ro.resolve(pxs.Proxy.from_bytes(b)) == chunk(r, i)
            with pytest.raises(pxs.InvalidArgumentError):
                ro.put(b"read-only")
    with pytest.raises(pxs.Error) as ei:
        pxs.Store.open(MPI.COMM_SELF, os.path.join(tmpdir_shared, "missing"))
    assert ei.value.code in (pxs.ERR_NOT_FOUND, pxs.ERR_IO)
    with pytest.raises(pxs.InvalidArgumentError):
        pxs.Store(comm, connector="hdf5")  # no path
    with pytest.raises(ValueError):
        pxs.Store(comm, connector="floppy")


def test_log_replay_by_a_later_reader(tmpdir_shared):
    spath = os.path.join(tmpdir_shared, "store")
    lpath = os.path.join(tmpdir_shared, "log")
    n = 6
    with pxs.Store(comm, connector="hdf5", path=spath) as st, \
            pxs.Bus(comm, publish=[T] if rank == 0 else [],
                    subscribe=[T] if rank == 1 else []) as bus:
        if rank == 0:
            with pxs.StreamProducer(st, bus.publisher(), topics=[T],
                                    log_path=lpath) as prod:
                for i in range(n):
                    prod.send(T, chunk(0, i), metadata=b"m%d" % i)
                prod.close_topic(T)
        elif rank == 1:
            with pxs.StreamConsumer(st, bus.subscriber()) as cons:
                assert [p.resolve() for p in cons] == [chunk(0, i) for i in range(n)]
        comm.Barrier()
    # later, on every rank: the same consumer code over the log
    with pxs.Store.open(MPI.COMM_SELF, spath) as ro, \
            pxs.open_log(lpath, subscribe=[T]) as log:
        assert log.rank == -1
        with pytest.raises(pxs.InvalidArgumentError):
            log.publisher()
        with pxs.StreamConsumer(ro, log.subscriber()) as cons:
            got = [(p.seq, p.metadata, p.resolve()) for p in cons]
        assert got == [(i, b"m%d" % i, chunk(0, i)) for i in range(n)]
    with pytest.raises(pxs.NotFoundError):
        pxs.open_log(tmpdir_shared)  # no log file there


def test_spill_to_hdf5(tmpdir_shared):
    # an object larger than the arena spills to HDF5 instead of failing;
    # the other rank resolves it through the same RMA store
    sp = os.path.join(tmpdir_shared, "spill")
    big = bytes(range(256)) * 1024  # 256 KiB > 64 KiB arena
    with pxs.Store(comm, arena_bytes=64 * 1024, spill_path=sp) as st:
        p = st.put(big, keep=True)
        ps = comm.allgather(bytes(p))
        other = pxs.Proxy.from_bytes(ps[(rank + 1) % size])
        assert st.resolve(other) == big
        comm.Barrier()
        st.evict(p)
        comm.Barrier()
