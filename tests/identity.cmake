# Object identity (docs/DESIGN.md, section "Object identity"): proxies of
# another store instance are STALE, old generations never come back.
set(PXS_IDENTITY_T ${CMAKE_CURRENT_SOURCE_DIR})

# MPI_COMM_SELF stores (ring across processes, pairs in one process), split
# communicators, generation wrap / slot retirement (test hook). One node:
# node-local claim words only; two emulated nodes: node-local + MPI words
# (docs/DESIGN.md, section "Node-local claim words").
pxs_add_mpi_test(NAME store.identity NP 4 TIMEOUT 120 OSC sm rdma ucx
  SOURCES ${PXS_IDENTITY_T}/mpi/test_store_identity.c TWO_NODE pt2pt ucx)
# PXS_SHM=0: MPI words only. Not under osc rdma: there Open MPI 4.1.4 fails
# MPI_Win_allocate on the two concurrently split halves (MPI_ERR_WIN, a
# /dev/shm/osc_rdma.* segment unlinked twice), and the halves' data mixed.
pxs_add_mpi_test(NAME store.identity.noshm NP 4 TIMEOUT 120 OSC sm ucx
  EXE mpitest_store_identity ENV PXS_SHM=0)

# Two separate mpiexec runs: the first writes a proxy to a file, the second
# (a new job, a new store instance whose first object has the same slot,
# offset and generation) must refuse it with PXS_ERR_STALE; a version 1 text
# proxy is refused with PXS_ERR_CORRUPT.
pxs_test_exe(mpitest_store_crossjob ${PXS_IDENTITY_T}/mpi/test_store_crossjob.c)
add_test(NAME mpi.store.crossjob
  COMMAND bash ${PXS_IDENTITY_T}/tools/crossjob.sh $<TARGET_FILE:mpitest_store_crossjob>
          ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${MPIEXEC_PREFLAGS})
set_tests_properties(mpi.store.crossjob PROPERTIES LABELS "mpi" PROCESSORS 2 TIMEOUT 120
  ENVIRONMENT "${PXS_ROOT_ENV}")
# the UCX connector (PXS_TEST_CONNECTOR=ucx), label ucx-conn
pxs_add_ucx_conn_test(NAME store.identity NP 4 EXE mpitest_store_identity)
