"""proxystream: stream bulk data between MPI ranks as 64-byte proxies.

A thin binding of the C library (see README.md, section "Python"):

    from mpi4py import MPI
    import proxystream as pxs

    with pxs.Store(MPI.COMM_WORLD) as store, \\
         pxs.Bus(MPI.COMM_WORLD, publish=[1], subscribe=[(1, "workers")]) as bus:
        ...

Classes: Store, Bus, StreamProducer, StreamConsumer, Proxy (and View, the
object Store.view() returns). HDF5 builds: Store(comm, connector="hdf5",
path=DIR), Store.open(comm, DIR) / open_store, StreamProducer(...,
log_path=DIR) and open_log(DIR) (a replay subscriber for StreamConsumer). Failures raise proxystream.Error or one of its
subclasses (one per PXS_ERR_* code) with .code, .name and .detail.
"""
from mpi4py import MPI as _MPI  # noqa: F401  (initialises MPI, loads mpi4py's C API)

from ._proxystream import (  # noqa: F401
    Error, InvalidArgumentError, NoMemoryError, BackpressureError, TimedOutError,
    StaleProxyError, CorruptProxyError, TooBigError, ClosedError, MPIError,
    NotSupportedError, BusyError, NotFoundError, TruncatedError,
    IOFailedError, PeerError,
    Proxy, Store, View, Bus, Endpoint, StreamProducer, StreamConsumer,
    strerror, errname, open_store, open_log,
    PROXY_SIZE, EVENT_META_MAX, OK, END, TIMEOUT, CONN_LOCAL, CONN_RMA,
    CONN_HDF5, CONN_UCX,
    ERR_INVALID, ERR_NOMEM, ERR_AGAIN, ERR_TIMEDOUT, ERR_STALE, ERR_CORRUPT,
    ERR_TOO_BIG, ERR_CLOSED, ERR_MPI, ERR_NOTSUP, ERR_BUSY, ERR_NOT_FOUND,
    ERR_TRUNC, ERR_IO, ERR_PEER,
)

__all__ = [
    "Error", "InvalidArgumentError", "NoMemoryError", "BackpressureError",
    "TimedOutError", "StaleProxyError", "CorruptProxyError", "TooBigError",
    "ClosedError", "MPIError", "NotSupportedError", "BusyError",
    "NotFoundError", "TruncatedError", "IOFailedError", "PeerError",
    "Proxy", "Store", "View", "Bus", "StreamProducer", "StreamConsumer",
    "strerror", "errname", "open_store", "open_log",
]
