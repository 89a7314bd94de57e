"""proxystream.Store, Proxy, View and the errors, under mpiexec -n 2.

Every test is collective: all ranks run the same tests in the same order."""
import pickle
import zlib

import numpy as np
import pytest
from mpi4py import MPI

import proxystream as pxs

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()
peer = (rank + 1) % size

MiB = 1 << 20


@pytest.fixture
def store():
    s = pxs.Store(comm, arena_bytes=4 * MiB, put_timeout=5)
    yield s
    comm.Barrier()
    s.close()


def payload(r, n=1000):
    return bytes((r * 7 + i) % 251 for i in range(n))


def test_needs_two_ranks():
    assert size >= 2


def test_put_resolve_across_ranks_pickled_proxy(store):
    p = store.put(payload(rank))
    assert isinstance(p, pxs.Proxy)
    assert p.size == 1000 and p.owner == rank and store.rank == rank
    # mpi4py pickles the proxy (the 64 bytes and the event fields)
    got = comm.sendrecv(p, dest=peer, source=(rank - 1) % size)
    assert isinstance(got, pxs.Proxy) and got.owner == (rank - 1) % size
    assert store.resolve(got) == payload((rank - 1) % size)


def test_proxy_forms(store):
    p = store.put(b"abc", resolves=1)
    wire = bytes(p)
    assert len(wire) == pxs.PROXY_SIZE == 64
    q = pxs.Proxy.from_bytes(wire)
    assert q == p and hash(q) == hash(p) and not (q != p)
    text = str(p)
    assert text.startswith("pxs2:") and len(text) == 133
    assert pxs.Proxy.from_text("  " + text + "\n") == p
    assert pxs.Proxy.from_bytes(bytearray(wire)) == p
    assert pxs.Proxy.from_bytes(memoryview(wire)) == p
    r = pickle.loads(pickle.dumps(p))
    assert r == p and r.topic == p.topic and r.seq == p.seq and r.metadata == b""
    assert "size=3" in repr(p)
    assert p.metadata == b"" and p.producer == rank and p.seq == 0
    with p as same:  # every class is a context manager
        assert same is p
    assert store.resolve(p) == b"abc"


def test_forged_proxies_are_refused(store):
    p = store.put(b"secret")
    wire = bytearray(bytes(p))
    for off in (0, 4, 9, 17, 25, 33, 41, 63):
        bad = bytearray(wire)
        bad[off] ^= 0x10
        with pytest.raises(pxs.CorruptProxyError) as ei:
            pxs.Proxy.from_bytes(bytes(bad))
        e = ei.value
        assert isinstance(e, pxs.Error)
        assert e.code == pxs.ERR_CORRUPT and e.name == "PXS_ERR_CORRUPT"
        assert e.detail and e.detail in str(e)
    with pytest.raises(pxs.CorruptProxyError):
        pxs.Proxy.from_bytes(bytes(wire[:63]))
    with pytest.raises(pxs.CorruptProxyError):
        pxs.Proxy.from_bytes(bytes(wire) + b"\0")
    with pytest.raises(pxs.CorruptProxyError):
        pxs.Proxy.from_text("pxs2:" + "0" * 128)
    with pytest.raises(pxs.CorruptProxyError):
        pxs.Proxy.from_text("pxs1:" + str(p)[5:])
    with pytest.raises(pxs.CorruptProxyError):
        pickle.loads(pickle.dumps(p).replace(bytes(wire[60:64]), b"\0\0\0\0"))
    assert store.resolve(p) == b"secret"  # the genuine one still works


def test_wrong_types(store):
    with pytest.raises(TypeError):
        store.put(12345)
    with pytest.raises(TypeError):
        store.put("text is not a buffer")
    with pytest.raises(TypeError):
        store.resolve(b"\0" * 64)
    with pytest.raises(TypeError):
        store.evict("p")
    with pytest.raises(TypeError):
        store.view(None)
    with pytest.raises(TypeError):
        pxs.Proxy.from_bytes(42)
    with pytest.raises(TypeError):
        pxs.Proxy.from_text(b"pxs2:")
    with pytest.raises(TypeError):
        pxs.Store("not a communicator")
    with pytest.raises(TypeError):
        pxs.Store(comm, arena_bytes=1.5)
    with pytest.raises(ValueError):
        pxs.Store(comm, connector="ucx-later")
    with pytest.raises(TypeError):
        pxs.Proxy()  # only from a store, a consumer, from_bytes or from_text
    p = store.put(b"x")
    with pytest.raises(BufferError):
        store.resolve_into(p, b"immutable")
    with pytest.raises(ValueError):
        store.put(b"x", resolves=-1)
    assert store.resolve(p) == b"x"
    # non-contiguous numpy arrays are not sent silently as something else
    a = np.arange(100, dtype=np.int32)[::2]
    with pytest.raises((BufferError, ValueError)):
        store.put(a)


def test_resolve_budget_stale_and_cache(store):
    p = store.put(payload(rank, 64), resolves=1)
    got = comm.sendrecv(p, dest=peer, source=(rank - 1) % size)
    first = got.resolve(store)
    assert first == payload((rank - 1) % size, 64)
    assert got.resolve() is first  # cached: no second resolve
    assert got.resolved
    comm.Barrier()
    with pytest.raises(pxs.StaleProxyError) as ei:
        store.resolve(got)  # budget 1 used
    assert ei.value.code == pxs.ERR_STALE and "budget" in ei.value.detail
    # a proxy without a store
    fresh = pxs.Proxy.from_bytes(bytes(got))
    with pytest.raises(ValueError):
        fresh.resolve()
    with pytest.raises(TypeError):
        fresh.resolve(store="s")


def test_resolve_into_and_trunc(store):
    data = np.arange(1024, dtype=np.int64)
    p = store.put(data, resolves=1)
    got = comm.sendrecv(p, dest=peer, source=(rank - 1) % size)
    small = bytearray(100)
    with pytest.raises(pxs.TruncatedError) as ei:
        store.resolve_into(got, small)  # nothing consumed
    assert ei.value.code == pxs.ERR_TRUNC
    out = np.zeros(2048, dtype=np.int64)
    n = store.resolve_into(got, out)
    assert n == data.nbytes
    assert np.array_equal(out[:1024], data) and not out[1024:].any()


def test_keep_evict_checksum(store):
    p = store.put(payload(rank, 256), keep=True, checksum=True)
    got = comm.sendrecv(p, dest=peer, source=(rank - 1) % size)
    for _ in range(3):
        assert store.resolve(got) == payload((rank - 1) % size, 256)
    comm.Barrier()
    store.evict(p)  # the owner ends it
    comm.Barrier()
    with pytest.raises(pxs.StaleProxyError):
        store.resolve(got)
    with pytest.raises(pxs.StaleProxyError):
        store.evict(p)


def test_too_big_and_used(store):
    used, cap = store.used()
    assert cap >= 4 * MiB and 0 <= used <= cap
    with pytest.raises(pxs.TooBigError) as ei:
        store.put(bytes(8 * MiB))
    assert ei.value.code == pxs.ERR_TOO_BIG


def test_backpressure_error(store):
    keep = [store.put(bytes(MiB), keep=True, timeout=0) for _ in range(3)]
    with pytest.raises(pxs.BackpressureError) as ei:
        for _ in range(4):
            keep.append(store.put(bytes(MiB), keep=True, timeout=0))
    assert ei.value.code == pxs.ERR_AGAIN and "arena full" in ei.value.detail
    for p in keep:
        store.evict(p)


def test_view_zero_copy_readonly(store):
    a = np.arange(4096, dtype=np.float64) * (rank + 1)
    p = store.put(a, resolves=1)
    got = comm.sendrecv(p, dest=peer, source=(rank - 1) % size)
    view = store.view(got)
    with view as mv:
        assert isinstance(mv, memoryview) and mv.readonly and mv.nbytes == a.nbytes
        x = np.frombuffer(mv, dtype=np.float64)
        assert x.sum() == np.arange(4096).sum() * (((rank - 1) % size) + 1)
        with pytest.raises(TypeError):
            mv[0] = 1
        with pytest.raises(ValueError):
            x[0] = 1.0  # numpy sees it read-only too
        del x
    assert not view.held
    with pytest.raises(ValueError):
        mv[0]  # the memoryview handed out is released with the block
    with pytest.raises(BufferError):
        memoryview(view)
    with pytest.raises(pxs.StaleProxyError):
        store.view(got)  # the view was the one resolve


def test_view_held_past_block_and_close():
    s = pxs.Store(comm, arena_bytes=2 * MiB)
    a = np.arange(10000, dtype=np.int32) + rank
    p = s.put(a, resolves=1)
    got = comm.sendrecv(p, dest=peer, source=(rank - 1) % size)
    view = s.view(got)
    with view as mv:
        arr = np.frombuffer(mv, dtype=np.int32)  # numpy keeps an export
    assert view.held  # release pending: the array is alive
    expect = np.arange(10000, dtype=np.int32) + (rank - 1) % size
    # close is collective: with a view held on every rank it fails on every
    # rank and frees nothing
    with pytest.raises(pxs.BusyError) as ei:
        s.close()
    assert ei.value.code == pxs.ERR_BUSY
    assert not s.closed
    assert np.array_equal(arr, expect)  # memory still there
    del arr, mv
    assert not view.held  # the last export released the view
    s.close()
    s.close()  # idempotent
    assert s.closed
    with pytest.raises(pxs.ClosedError):
        s.put(b"x")
    with pytest.raises(pxs.ClosedError):
        s.resolve(got)
    del view  # after the store: nothing to release, no crash


def test_view_release_method(store):
    p = store.put(b"0123456789", resolves=1)
    v = store.view(p)
    mv = v.__enter__()
    assert bytes(mv) == b"0123456789"
    extra = np.asarray(mv)
    assert v.release() is False and v.held
    del extra
    assert not v.held
    assert v.release() is True


def test_numpy_round_trip_64mib():
    n = 64 * MiB
    with pxs.Store(comm, arena_bytes=n + MiB) as s:
        if rank == 0:
            a = np.random.default_rng(11).integers(0, 2**63, n // 8, dtype=np.uint64)
            p = s.put(a, resolves=2, checksum=True)
            crc = zlib.crc32(a)
        else:
            p = crc = None
        p, crc = comm.bcast((p, crc), root=0)
        assert p.size == n
        if rank == 1:
            b = np.frombuffer(p.resolve(s), dtype=np.uint64)  # bytes -> array
            assert b.nbytes == n and zlib.crc32(b) == crc
            c = np.empty(n // 8, dtype=np.uint64)
            assert s.resolve_into(p, c) == n
            assert np.array_equal(b, c)
        comm.Barrier()


def test_local_connector():
    with pxs.Store(None, connector="local", arena_bytes=MiB) as s:
        p = s.put(b"local bytes", resolves=2)
        assert s.resolve(p) == b"local bytes"
        with s.view(p) as mv:
            assert bytes(mv) == b"local bytes"
        with pytest.raises(pxs.StaleProxyError):
            s.resolve(p)


def test_error_classes():
    assert issubclass(pxs.TimedOutError, TimeoutError)
    assert issubclass(pxs.TimedOutError, pxs.Error)
    assert issubclass(pxs.NotFoundError, LookupError)
    assert issubclass(pxs.InvalidArgumentError, ValueError)
    codes = {c.code for c in (pxs.InvalidArgumentError, pxs.NoMemoryError,
                              pxs.BackpressureError, pxs.TimedOutError,
                              pxs.StaleProxyError, pxs.CorruptProxyError,
                              pxs.TooBigError, pxs.ClosedError, pxs.MPIError,
                              pxs.NotSupportedError, pxs.BusyError,
                              pxs.NotFoundError, pxs.TruncatedError)}
    assert codes == set(range(-13, 0))
    assert pxs.errname(pxs.ERR_STALE) == "PXS_ERR_STALE"
    assert pxs.strerror(pxs.ERR_AGAIN)


def test_put_wait_is_interruptible():
    # A put that waits forever on a full arena (put_timeout=-1, objects kept)
    # ends with KeyboardInterrupt when SIGINT arrives during the wait, stores
    # nothing, and the store keeps working. Without the interrupt hook the
    # put would never return (ctest's timeout would fail the test).
    from pxs_testutil import InterruptWhenStuck
    s = pxs.Store(comm, arena_bytes=MiB, put_timeout=-1)
    keep = [s.put(bytes(256 * 1024), keep=True) for _ in range(4)]  # full
    used_full, _ = s.used()
    with InterruptWhenStuck() as w:
        w.begin()
        with pytest.raises(KeyboardInterrupt):
            s.put(b"x" * 1000)  # no room: waits until interrupted
        w.end()
        assert w.fired == 1
    assert s.used()[0] == used_full  # the interrupted put stored nothing
    s.evict(keep.pop())
    p = s.put(b"after", resolves=1)  # room again: works as before
    assert s.resolve(p) == b"after"
    for k in keep:
        s.evict(k)
    comm.Barrier()
    s.close()
