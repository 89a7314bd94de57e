# Data plane (store): local connector unit tests, RMA connector MPI tests.
# Each MPI test runs under osc sm, rdma, ucx with the same-node shared-memory
# path on (default) and off (PXS_SHM=0: the MPI_Get path on one machine),
# and across two emulated nodes (fakenodes.sh) under osc pt2pt and ucx.
set(PXS_STORE_T ${CMAKE_CURRENT_SOURCE_DIR})

# pxs_add_xjob_test(name exe script labels timeout): a test across mpiexec
# runs driven by tests/tools/<script> with <exe>, as <name> under UCX's
# default transports and <name>.tcp under UCX_TLS=tcp (4 processes, serial).
function(pxs_add_xjob_test name exe script labels timeout)
  foreach(tls default tcp)
    set(tname ${name})
    set(tenv "")
    if(tls STREQUAL "tcp")
      set(tname ${name}.tcp)
      set(tenv UCX_TLS=tcp)
    endif()
    add_test(NAME ${tname}
      COMMAND bash ${PXS_STORE_T}/tools/${script} $<TARGET_FILE:${exe}>
              ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${MPIEXEC_PREFLAGS})
    set_tests_properties(${tname} PROPERTIES LABELS "${labels}" PROCESSORS 4
      TIMEOUT ${timeout} RUN_SERIAL TRUE ENVIRONMENT "${PXS_ROOT_ENV};${tenv}")
  endforeach()
endfunction()

pxs_add_mpi_test(NAME store.roundtrip NP 4 TIMEOUT 120
  SOURCES ${PXS_STORE_T}/mpi/test_store_roundtrip.c
  TWO_NODE pt2pt ucx)
pxs_add_mpi_test(NAME store.roundtrip.noshm NP 3 TIMEOUT 120
  EXE mpitest_store_roundtrip ENV PXS_SHM=0)
# one rank refuses its node-local claim-word segment (test hook): every rank
# falls back to MPI atomics (docs/DESIGN.md, section "Node-local claim words")
pxs_add_mpi_test(NAME store.roundtrip.nolocalctl NP 3 TIMEOUT 120 OSC sm rdma
  EXE mpitest_store_roundtrip ENV PXS_TEST_LOCAL_CTL_FAIL=1)
# arena prefault (docs/DESIGN.md, "Arena pages mapped at create"): off, and a
# budget that ends inside the own arena (osc sm: the osc's segment; rdma: our
# POSIX segments): the same bytes either way
pxs_add_mpi_test(NAME store.roundtrip.prefault0 NP 3 TIMEOUT 120 OSC sm rdma
  EXE mpitest_store_roundtrip ENV PXS_PREFAULT=0)
pxs_add_mpi_test(NAME store.roundtrip.prefault12k NP 3 TIMEOUT 120 OSC sm rdma
  EXE mpitest_store_roundtrip ENV PXS_PREFAULT=12K)
pxs_add_mpi_test(NAME store.evict NP 3 TIMEOUT 120
  SOURCES ${PXS_STORE_T}/mpi/test_store_evict.c
  TWO_NODE pt2pt ucx ARGS 1000)
pxs_add_mpi_test(NAME store.evict.noshm NP 3 TIMEOUT 120
  EXE mpitest_store_evict ENV PXS_SHM=0)
pxs_add_mpi_test(NAME store.forged NP 2 TIMEOUT 120
  SOURCES ${PXS_STORE_T}/mpi/test_store_forged.c
  TWO_NODE pt2pt ucx)
pxs_add_mpi_test(NAME store.forged.noshm NP 2 TIMEOUT 120 OSC rdma
  EXE mpitest_store_forged ENV PXS_SHM=0)
# the remote resolve reads the bytes in its claim's epoch: every failure
# (stale after reuse, forged offset, spent budget) leaves a zeroed buffer
# (docs/DESIGN.md, section "Remote resolve in one epoch"); opts.shm = 0
pxs_add_mpi_test(NAME store.remote NP 2 TIMEOUT 120
  SOURCES ${PXS_STORE_T}/mpi/test_store_remote.c
  TWO_NODE pt2pt ucx)
pxs_add_unit_test(NAME store.local SOURCES ${PXS_STORE_T}/unit/test_store_local.c TIMEOUT 60)
# reserved puts where the connector hands out no arena memory: private buffer
pxs_add_unit_test(NAME store.reserve_local SOURCES ${PXS_STORE_T}/unit/test_store_reserve_local.c
  TIMEOUT 60)
# optional connector ops NULL -> NOTSUP; errors keep their cause (async resolve)
pxs_add_unit_test(NAME store.ops SOURCES ${PXS_STORE_T}/unit/test_store_ops.c TIMEOUT 60)
# free space split among gaps: largest gap, practical limits, AGAIN detail
pxs_add_unit_test(NAME store.alloc SOURCES ${PXS_STORE_T}/unit/test_store_alloc.c TIMEOUT 60)
# payload copy: every length 0..1100 and offset mod 64, pieces, the streaming path
pxs_add_unit_test(NAME store.copy SOURCES ${PXS_STORE_T}/unit/test_copy.c TIMEOUT 120)
# differing arguments across ranks, a freed communicator, double view release
pxs_add_mpi_test(NAME store.create NP 3 TIMEOUT 120
  SOURCES ${PXS_STORE_T}/mpi/test_store_create.c
  TWO_NODE pt2pt ucx)
pxs_add_mpi_test(NAME store.create.noshm NP 3 TIMEOUT 120
  EXE mpitest_store_create ENV PXS_SHM=0)
# window creation across nodes: osc rdma must fail with PXS_ERR_MPI and the
# remedy on every rank; pt2pt/ucx and one node must work (the test checks)
pxs_add_mpi_test(NAME store.wincreate NP 2 TIMEOUT 120
  SOURCES ${PXS_STORE_T}/mpi/test_store_wincreate.c
  OSC sm TWO_NODE rdma pt2pt)
# collectives fail together and say why (impossible arena, destroy BUSY on
# every rank and the retry loop), the one-thread guard, the arena-full detail
pxs_add_mpi_test(NAME store.collective NP 3 TIMEOUT 120
  SOURCES ${PXS_STORE_T}/mpi/test_store_collective.c
  TWO_NODE pt2pt ucx)
pxs_add_mpi_test(NAME store.collective NP 2 TIMEOUT 120 OSC sm rdma
  EXE mpitest_store_collective)
pxs_add_mpi_test(NAME store.collective.noshm NP 2 TIMEOUT 120 OSC rdma
  EXE mpitest_store_collective ENV PXS_SHM=0)
# MPI_THREAD_FUNNELED: a call from another thread is PXS_ERR_INVALID
pxs_add_mpi_test(NAME store.collective.funneled NP 2 TIMEOUT 120 OSC sm
  EXE mpitest_store_collective ARGS funneled)
# a same-node reader dies holding a view's claim: the object dies, its block
# stays pinned (never reused), the rest of the arena keeps working (Open MPI:
# the job survives the exit through orte_allowed_exit_without_sync)
if(PXS_MPI_IMPL STREQUAL "OpenMPI")
  pxs_add_mpi_test(NAME store.dead_reader NP 2 TIMEOUT 60 OSC sm rdma ucx
    SOURCES ${PXS_STORE_T}/mpi/test_store_dead_reader.c
    ENV OMPI_MCA_orte_allowed_exit_without_sync=1)
endif()
# the same memory check before the bus's mailbox window (one rank over its
# RLIMIT_DATA: every rank fails with the reason)
pxs_add_mpi_test(NAME bus.memcheck NP 2 TIMEOUT 120 OSC sm rdma
  SOURCES ${PXS_STORE_T}/mpi/test_bus_memcheck.c)
# The UCX connector through the same tests (PXS_TEST_CONNECTOR=ucx; UCX's
# default transports and UCX_TLS=tcp), label ucx-conn; built with UCX only.
pxs_add_ucx_conn_test(NAME store.roundtrip NP 3 EXE mpitest_store_roundtrip TWO_NODE)
pxs_add_ucx_conn_test(NAME store.evict NP 3 EXE mpitest_store_evict ARGS 1000 TWO_NODE)
pxs_add_ucx_conn_test(NAME store.forged NP 2 EXE mpitest_store_forged TIMEOUT 300)
pxs_add_ucx_conn_test(NAME store.create NP 3 EXE mpitest_store_create)
# reserve on a connector without arena reservations: private buffers, TOO_BIG at reserve
pxs_add_ucx_conn_test(NAME store.reserve NP 3 EXE mpitest_store_reserve)
# PXS_ERR_PEER: the owner process dies (exits without MPI_Finalize; the job
# survives it through orte_allowed_exit_without_sync): the resolve fails with
# PXS_ERR_PEER naming the rank, no hang
if(PXS_HAVE_UCX)
  pxs_test_exe(mpitest_store_ucx_peer ${PXS_STORE_T}/mpi/test_store_ucx_peer.c)
  pxs_add_ucx_conn_test(NAME store.ucx_peer NP 2 EXE mpitest_store_ucx_peer
    ENV OMPI_MCA_orte_allowed_exit_without_sync=1 TIMEOUT 60)
endif()
# Export/attach across two mpiexec runs (tests/tools/ucx_attach.sh): bytes
# verified across jobs, stale/forged/loose contact files refused, producer
# killed -> PXS_ERR_PEER; UCX default transports and UCX_TLS=tcp
if(PXS_HAVE_UCX AND PXS_MPI_IMPL STREQUAL "OpenMPI") # see pxs_add_ucx_conn_test
  pxs_test_exe(mpitest_ucx_attach ${PXS_STORE_T}/mpi/test_ucx_attach.c)
  pxs_add_xjob_test(mpi.ucx.attach mpitest_ucx_attach ucx_attach.sh "mpi;ucx-conn" 300)
endif()
# progress thread off: resolves complete while the owner is in library calls
if(PXS_HAVE_UCX)
  pxs_test_exe(mpitest_store_ucx_nothread ${PXS_STORE_T}/mpi/test_store_ucx_nothread.c)
  pxs_add_ucx_conn_test(NAME store.ucx_nothread NP 3 EXE mpitest_store_ucx_nothread)
  # node-local claim words (owner idle in MPI_Barrier) / get path, evicted
  # objects STALE, posted unclaims all given back
  pxs_test_exe(mpitest_store_ucx_local ${PXS_STORE_T}/mpi/test_store_ucx_local.c)
  pxs_add_ucx_conn_test(NAME store.ucx_local NP 3 EXE mpitest_store_ucx_local TWO_NODE)
endif()
# Events across jobs (tests/tools/ucx_xbus.sh): a bus exported with its
# store, attaching jobs with plain and group subscriptions, detach after
# half + a second job for the rest (END), refused registrations (wrong
# token, oversized mailbox), exporting job killed -> PXS_ERR_PEER; UCX
# default transports and UCX_TLS=tcp. Label ucx.
if(PXS_HAVE_UCX AND PXS_MPI_IMPL STREQUAL "OpenMPI")
  pxs_test_exe(mpitest_xbus ${PXS_STORE_T}/mpi/test_xbus.c)
  pxs_add_xjob_test(mpi.ucx.xbus mpitest_xbus ucx_xbus.sh "mpi;ucx;ucx-conn" 400)
  # groups mixing members of both jobs, a killed attached member's events
  # delivered again, registration slots reused (tests/tools/ucx_xgroup.sh)
  pxs_test_exe(mpitest_xgroup ${PXS_STORE_T}/mpi/test_xgroup.c)
  pxs_add_xjob_test(mpi.ucx.xgroup mpitest_xgroup ucx_xgroup.sh "mpi;ucx;ucx-conn" 400)
  # each job on its own emulated node (fakenodes.sh): attach, detach, second
  add_test(NAME mpi.ucx.xbus.2node
    COMMAND bash ${PXS_STORE_T}/tools/ucx_xbus.sh $<TARGET_FILE:mpitest_xbus>
            ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG})
  set_tests_properties(mpi.ucx.xbus.2node PROPERTIES LABELS "mpi;ucx;two-node" PROCESSORS 4
    TIMEOUT 400 RUN_SERIAL TRUE ENVIRONMENT "${PXS_ROOT_ENV};XBUS_TWO_NODE=1")
endif()
# pxs-demo --export / --attach (tests/tools/ucx_demo.sh): two worker jobs
# one after another
if(PXS_HAVE_UCX AND PXS_MPI_IMPL STREQUAL "OpenMPI" AND TARGET pxs-demo)
  add_test(NAME mpi.ucx.demo.attach
    COMMAND bash ${PXS_STORE_T}/tools/ucx_demo.sh $<TARGET_FILE:pxs-demo>
            ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${MPIEXEC_PREFLAGS})
  set_tests_properties(mpi.ucx.demo.attach PROPERTIES LABELS "mpi;ucx" PROCESSORS 4
    TIMEOUT 300 RUN_SERIAL TRUE ENVIRONMENT "${PXS_ROOT_ENV}")
endif()
# reserved puts (docs/DESIGN.md, section "Reserved puts"): reserve, fill,
# commit into the arena; readers view/resolve on this node, through MPI_Get
# (PXS_SHM=0) and across two emulated nodes; cancel, bad reservations,
# backpressure
pxs_add_mpi_test(NAME store.reserve NP 3 TIMEOUT 180 OSC sm rdma ucx pt2pt
  SOURCES ${PXS_STORE_T}/mpi/test_store_reserve.c TWO_NODE pt2pt)
pxs_add_mpi_test(NAME store.reserve.noshm NP 3 TIMEOUT 180 OSC rdma
  EXE mpitest_store_reserve ENV PXS_SHM=0)
# lent buffers (docs/DESIGN.md, section "Lent buffers"): one node under every
# osc (lent: cross-memory attach); where the store cannot lend, put_ref
# copies: two emulated nodes, PXS_SHM=0, PXS_LEND=0, a rank whose
# cross-memory probe fails (test hook)
pxs_add_mpi_test(NAME store.lend NP 3 TIMEOUT 180 OSC sm rdma ucx pt2pt
  SOURCES ${PXS_STORE_T}/mpi/test_store_lend.c TWO_NODE pt2pt ARGS 64)
pxs_add_mpi_test(NAME store.lend.noshm NP 3 TIMEOUT 180 OSC rdma
  EXE mpitest_store_lend ARGS 16 ENV PXS_SHM=0)
pxs_add_mpi_test(NAME store.lend.off NP 3 TIMEOUT 180 OSC sm
  EXE mpitest_store_lend ARGS 16 ENV PXS_LEND=0)
pxs_add_mpi_test(NAME store.lend.nocma NP 3 TIMEOUT 180 OSC sm
  EXE mpitest_store_lend ARGS 16 ENV PXS_TEST_CMA_FAIL=2)
