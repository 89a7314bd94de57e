"""proxystream.Bus, StreamProducer, StreamConsumer, under mpiexec -n 3.

Rank 0 produces, ranks 1 and 2 consume. Every test is collective."""
import signal
import threading

import numpy as np
import pytest
from mpi4py import MPI

import proxystream as pxs

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()
MiB = 1 << 20
T = 1  # topic rank 0 publishes, ranks 1.. subscribe


def chunk(i, n=2048):
    return np.arange(n, dtype=np.int64) * (i + 1)


@pytest.fixture
def store():
    s = pxs.Store(comm, arena_bytes=4 * MiB, put_timeout=20)
    yield s
    comm.Barrier()
    s.close()


def plain_bus(**opts):
    return pxs.Bus(comm, publish=[T] if rank == 0 else [],
                   subscribe=[T] if rank > 0 else [], **opts)


def test_needs_three_ranks():
    assert size >= 3


def test_send_iterate_resolve(store):
    n = 8
    with plain_bus(slots=64, batch=2, send_timeout=20) as bus:
        if rank == 0:
            with pxs.StreamProducer(store, bus.publisher(), topics=[T]) as prod:
                for i in range(n):
                    p = prod.send(T, chunk(i), metadata=b"chunk%d" % i,
                                  resolves=size - 1)
                    assert p.topic == T and p.seq == i and p.size == chunk(i).nbytes
                    assert p.metadata == b"chunk%d" % i and p.producer == 0
                prod.flush()
                st = prod.stats()
                assert st["sent"] == n and st["bytes"] == n * chunk(0).nbytes
                prod.close_topic(T)
                with pytest.raises(pxs.ClosedError):
                    prod.send(T, b"late")
            assert prod.closed
        else:
            with pxs.StreamConsumer(store, bus.subscriber()) as cons:
                seen = []
                for p in cons:  # until END
                    assert isinstance(p, pxs.Proxy)
                    assert p.topic == T and p.producer == 0
                    assert p.metadata == b"chunk%d" % p.seq
                    a = np.frombuffer(p.resolve(), dtype=np.int64)
                    assert np.array_equal(a, chunk(p.seq))
                    seen.append(p.seq)
                assert seen == list(range(n))
                assert cons.ended
                with pytest.raises(StopIteration):
                    cons.next()
                with pytest.raises(StopIteration):
                    cons.next(timeout=0)
                st = cons.stats()
                assert st["delivered"] == n
    assert bus.closed


def test_next_timeout_and_next_object(store):
    with plain_bus() as bus:
        prod = pxs.StreamProducer(store, bus.publisher()) if rank == 0 else None
        cons = pxs.StreamConsumer(store, bus.subscriber()) if rank > 0 else None
        if cons:
            assert cons.next(timeout=0) is None  # nothing sent yet: a poll
            assert cons.next(timeout=0.05) is None
        comm.Barrier()
        if prod:
            prod.send(T, b"one", resolves=size - 1)
            prod.send(T, bytearray(b"two"), metadata=memoryview(b"m2"),
                      resolves=size - 1)
            prod.close()  # closes T (END)
            prod.close()  # idempotent
        if cons:
            p, data = cons.next_object(timeout=30)
            assert data == b"one" and p.seq == 0 and p.resolve() is data
            p, data = cons.next_object()
            assert data == b"two" and p.metadata == b"m2"
            with pytest.raises(StopIteration):
                cons.next_object()
            cons.close()
            cons.close()
            with pytest.raises(pxs.ClosedError):
                cons.next()


def test_dispatcher_forwards_without_resolving(store):
    # 0 --T--> 1 (dispatcher) --send_proxy on topic 2--> group "w" (rank 2..)
    W = 2
    with pxs.Bus(comm, publish={0: [T], 1: [W]}.get(rank, []),
                 subscribe={0: [], 1: [T]}.get(rank, [(W, "w", 1)])) as bus:
        if rank == 0:
            with pxs.StreamProducer(store, bus.publisher(), topics=[T]) as prod:
                for i in range(6):
                    prod.send(T, chunk(i), metadata=b"%d" % i)
        elif rank == 1:
            with pxs.StreamConsumer(None, bus.subscriber()) as cons, \
                    pxs.StreamProducer(None, bus.publisher(), topics=[W]) as fwd:
                n = 0
                for p in cons:
                    fwd.send_proxy(W, p, metadata=p.metadata)
                    assert not p.resolved
                    n += 1
                assert n == 6
                assert fwd.stats()["forwarded"] == 6
                with pytest.raises(pxs.NotFoundError):
                    fwd.send_proxy(T, p)  # not this producer's topic
        else:
            got = 0
            with pxs.StreamConsumer(store, bus.subscriber()) as cons:
                for p in cons:
                    assert p.producer == 1 and p.topic == W
                    i = int(p.metadata)
                    assert np.array_equal(np.frombuffer(p.resolve(), np.int64), chunk(i))
                    got += 1
            assert got == 6 or size > 3  # with more workers the group shares them


def test_filter_drops_and_exception(store):
    n = 6
    with plain_bus() as bus:
        if rank == 0:
            with pxs.StreamProducer(store, bus.publisher(), resolves=size - 1) as prod:
                for i in range(n):
                    prod.send(T, b"x%d" % i, metadata=b"even" if i % 2 == 0 else b"odd")
        elif rank == 1:
            with pxs.StreamConsumer(store, bus.subscriber(),
                                    filter=lambda p: p.metadata == b"even") as cons:
                assert [p.resolve() for p in cons] == [b"x0", b"x2", b"x4"]
                assert cons.stats()["dropped"] == 3
        else:
            def bad(p):
                if p.seq == 1:
                    raise KeyError("filter failed")
                return True
            with pxs.StreamConsumer(store, bus.subscriber(), filter=bad) as cons:
                assert cons.next().resolve() == b"x0"
                with pytest.raises(KeyError):
                    cons.next()  # the event is discarded, the error raised
                assert [p.resolve() for p in cons] == [b"x2", b"x3", b"x4", b"x5"]


def test_send_keep_then_evict(store):
    with plain_bus() as bus:
        assert bus.rank == rank
        if rank == 0:
            prod = pxs.StreamProducer(store, bus.publisher(), checksum=1)
            p = prod.send(T, chunk(5), keep=True)
            prod.close()
        else:
            with pxs.StreamConsumer(store, bus.subscriber()) as cons:
                p = cons.next()
                for _ in range(3):  # no budget: kept until evicted
                    assert store.resolve(p) == chunk(5).tobytes()
                with pytest.raises(StopIteration):
                    cons.next()  # rank 0's close: END
        comm.Barrier()
        if rank == 0:
            store.evict(p)
        comm.Barrier()
        if rank > 0:
            with pytest.raises(pxs.StaleProxyError):
                store.resolve(p)


def test_bad_input(store):
    with plain_bus() as bus:
        if rank == 0:
            prod = pxs.StreamProducer(store, bus.publisher())
            with pytest.raises(pxs.TooBigError):
                prod.send(T, b"x", metadata=bytes(pxs.EVENT_META_MAX + 1))
            with pytest.raises(pxs.NotFoundError):
                prod.send(9, b"x")  # topic not declared
            with pytest.raises(TypeError):
                prod.send(T, 3.14)
            with pytest.raises(TypeError):
                prod.send("topic", b"x")
            with pytest.raises(ValueError):
                prod.send(-1, b"x")
            with pytest.raises(ValueError):
                prod.send(T, b"x", resolves=0)
            with pytest.raises(TypeError):
                prod.send_proxy(T, bytes(64))
            with pytest.raises(TypeError):
                prod.close_topic(None)
            with pytest.raises(TypeError):
                pxs.StreamProducer(store, bus.subscriber())
            with pytest.raises(TypeError):
                pxs.StreamProducer("store", bus.publisher())
            prod.close_topic(T)  # END (nothing was sent: close() alone would not)
            prod.close()
            with pytest.raises(pxs.ClosedError):
                prod.send(T, b"x")
        else:
            with pytest.raises(TypeError):
                pxs.StreamConsumer(store, bus.publisher())
            with pytest.raises(TypeError):
                pxs.StreamConsumer(store, bus.subscriber(), filter=3)
            with pxs.StreamConsumer(store, bus.subscriber()) as cons:
                with pytest.raises(ValueError):
                    cons.next(timeout=-1)
                assert list(cons) == []  # rank 0 closed T: END
    with pytest.raises(pxs.ClosedError):
        bus.publisher()
    with pytest.raises(TypeError):
        pxs.Bus(comm, publish=["one"])
    with pytest.raises(ValueError):
        pxs.Bus(comm, subscribe=[(1, "g", 2, 3)])
    with pytest.raises(TypeError):
        pxs.Bus(None)


def test_bus_close_closes_children(store):
    bus = plain_bus()
    prod = pxs.StreamProducer(store, bus.publisher()) if rank == 0 else None
    cons = pxs.StreamConsumer(store, bus.subscriber()) if rank > 0 else None
    bus.close()  # collective; closes this rank's producer and consumer first
    bus.close()
    assert (prod or cons).closed
    with pytest.raises(pxs.ClosedError):
        (prod.send(T, b"x") if prod else cons.next(timeout=0))


def test_wait_is_interruptible(store):
    with plain_bus() as bus:
        prod = pxs.StreamProducer(store, bus.publisher()) if rank == 0 else None
        if rank == 1:
            def on_alarm(signum, frame):
                raise KeyboardInterrupt()  # what Ctrl-C's handler raises
            old = signal.signal(signal.SIGALRM, on_alarm)
            try:
                with pxs.StreamConsumer(store, bus.subscriber()) as cons:
                    signal.setitimer(signal.ITIMER_REAL, 0.3)
                    with pytest.raises(KeyboardInterrupt):
                        cons.next()  # waits forever: nothing is sent yet
                    signal.setitimer(signal.ITIMER_REAL, 0.2)
                    with pytest.raises(KeyboardInterrupt):
                        for _ in cons:  # iteration too
                            pass
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
        comm.Barrier()
        if prod:
            prod.close()


def test_wait_releases_the_gil(store):
    # rank 1 publishes to itself from a second thread while its main thread
    # waits in next(): with the GIL held during the wait this would hang.
    S = 3
    assert MPI.Query_thread() == MPI.THREAD_MULTIPLE
    with pxs.Bus(comm, publish=[S] if rank == 1 else [],
                 subscribe=[S] if rank == 1 else []) as bus:
        if rank == 1:
            prod = pxs.StreamProducer(store, bus.publisher())
            cons = pxs.StreamConsumer(store, bus.subscriber())

            def send():
                prod.send(S, b"from a thread")
                prod.close_topic(S)
            th = threading.Thread(target=send)
            th.start()
            p = cons.next()
            th.join()
            assert p.resolve() == b"from a thread"
            with pytest.raises(StopIteration):
                cons.next()  # the thread closed S: END
            prod.close()
            cons.close()


def test_inline_chunks(store):
    """Chunks up to inline_max ride inside the event (docs/DESIGN.md,
    "Inline chunks"): resolve works the same; one byte more goes through the
    store; a second resolve of a consumed inline proxy is StaleProxyError."""
    sizes = [0, 1, 256, 257, 100]
    with plain_bus(slots=64) as bus:
        if rank == 0:
            with pxs.StreamProducer(store, bus.publisher(), inline_max=256) as prod:
                for i, n in enumerate(sizes):
                    prod.send(T, bytes([i % 251]) * n, metadata=b"%d" % n)
        else:
            with pxs.StreamConsumer(store, bus.subscriber()) as cons:
                for i, n in enumerate(sizes):
                    p = cons.next(timeout=30)
                    assert p.seq == i and p.size == n and p.metadata == b"%d" % n
                    assert p.inline == (n <= 256)
                    assert p.resolve() == bytes([i % 251]) * n
                    if p.inline:  # consumed by the resolve: a copy names nothing now
                        with pytest.raises(pxs.StaleProxyError):
                            store.resolve(pxs.Proxy.from_bytes(bytes(p)))
                with pytest.raises(StopIteration):
                    cons.next(timeout=30)


def _fill_until_interrupted(prod, payload):
    """Send until a send blocks (watched) and SIGINT interrupts it; returns
    how many sends were accepted before."""
    from pxs_testutil import InterruptWhenStuck
    n = 0
    with InterruptWhenStuck() as w:
        with pytest.raises(KeyboardInterrupt):
            while True:
                w.begin()
                prod.send(T, payload(n))
                w.end()
                n += 1
        assert w.fired == 1
    return n


def test_send_wait_on_full_arena_is_interruptible():
    # The consumers do not read until rank 0 is done: the 5th send of 256 KiB
    # finds the 1 MiB arena full and waits forever (put_timeout=-1) until
    # SIGINT; KeyboardInterrupt, nothing published, the producer still works.
    s = pxs.Store(comm, arena_bytes=MiB, put_timeout=-1)
    with plain_bus(slots=64, send_timeout=20) as bus:
        n = None
        if rank == 0:
            prod = pxs.StreamProducer(s, bus.publisher(), topics=[T])
            n = _fill_until_interrupted(
                prod, lambda i: bytes([i]) * (256 * 1024))
            assert n == 4 and prod.stats()["sent"] == 4
        n = comm.bcast(n, root=0)
        if rank == 0:
            prod.close_topic(T)
            prod.close()
        else:
            with pxs.StreamConsumer(s, bus.subscriber()) as cons:
                got = [p.resolve() for p in cons]
            assert got == [bytes([i]) * (256 * 1024) for i in range(n)]
        comm.Barrier()
    s.close()


def test_send_wait_on_full_mailbox_is_interruptible(store):
    # Small mailboxes, send_timeout=-1 (forever), consumers not reading:
    # a send blocks on the full mailbox until SIGINT. The interrupted send is
    # not delivered; every accepted one is, in order, then END.
    with plain_bus(slots=4, batch=1, send_timeout=-1) as bus:
        n = None
        if rank == 0:
            prod = pxs.StreamProducer(store, bus.publisher(), topics=[T])
            n = _fill_until_interrupted(prod, lambda i: b"event %d" % i)
            assert n >= 4 and prod.stats()["sent"] == n
        n = comm.bcast(n, root=0)
        if rank == 0:
            prod.close_topic(T)  # waits until the consumers drain
            prod.close()
        else:
            with pxs.StreamConsumer(store, bus.subscriber()) as cons:
                got = [p.resolve() for p in cons]
            assert got == [b"event %d" % i for i in range(n)]
        comm.Barrier()
