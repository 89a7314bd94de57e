# Node-local fast path (owner: fpmb): node segments (src/util/shmseg.c) and the
# mailbox's node ring. Every test carries the label "nodelocal".
set(PXS_NL_DIR ${CMAKE_CURRENT_SOURCE_DIR})

# node segments: one node, every osc; PXS_SHM=0; two emulated nodes
pxs_add_mpi_test(NAME nodelocal.shmseg NP 3 SOURCES ${PXS_NL_DIR}/mpi/test_shmseg.c
  TWO_NODE pt2pt LABELS nodelocal TIMEOUT 120)
pxs_add_mpi_test(NAME nodelocal.shmseg.noshm NP 2 EXE mpitest_nodelocal_shmseg OSC sm
  ENV PXS_SHM=0 LABELS nodelocal TIMEOUT 120)

# the mailbox's node ring: node-local and remote traffic in one bus. One node
# under every osc (everything through the node ring; the MPI ring unused),
# PXS_SHM=0 (everything through the MPI ring), two emulated nodes (2 ranks
# each: every subscriber gets both kinds at once) under pt2pt and ucx.
pxs_test_exe(mpitest_nodelocal_mixed ${PXS_NL_DIR}/mpi/test_nodelocal_mixed.c)
foreach(mode all two)
  pxs_add_mpi_test(NAME nodelocal.mixed.${mode} NP 4 EXE mpitest_nodelocal_mixed
    OSC sm rdma ucx pt2pt TWO_NODE pt2pt ucx ARGS ${mode} LABELS nodelocal events TIMEOUT 180)
  pxs_add_mpi_test(NAME nodelocal.mixed.${mode}.noshm NP 4 EXE mpitest_nodelocal_mixed
    OSC sm rdma TWO_NODE pt2pt ARGS ${mode} ENV PXS_SHM=0 LABELS nodelocal events TIMEOUT 180)
endforeach()

# one stream with a same-node and an off-node producer per consumer: the
# multi-producer stream test on two emulated nodes with ranks placed round
# robin over the nodes (--map-by node: ranks 0, 2 on one node, 1, 3 on the
# other), so each consumer's events come through both of its rings and its
# resolves go to a same-node and an off-node arena
if(PXS_MPI_IMPL STREQUAL OpenMPI)
  foreach(osc pt2pt ucx)
    set(tname mpi.nodelocal.stream.np4.2node.${osc})
    add_test(NAME ${tname} COMMAND ${PXS_FAKENODES} -np 4 --oversubscribe --map-by node
      --mca osc ${osc} $<TARGET_FILE:mpitest_stream_multi>)
    set_tests_properties(${tname} PROPERTIES
      LABELS "mpi;openmpi;two-node;osc-${osc};nodelocal;events"
      PROCESSORS 4 TIMEOUT 180 RUN_SERIAL TRUE
      ENVIRONMENT "${PXS_ROOT_ENV};FAKENODES_PPN=2;FAKENODES_TIMEOUT=180")
  endforeach()
endif()

# a node-local exchange needs nothing from the target's MPI: the subscriber
# makes no MPI call while a same-node publisher appends (every osc; under ucx
# and pt2pt an append through the MPI window would wait for it)
pxs_add_mpi_test(NAME nodelocal.nompi NP 2 SOURCES ${PXS_NL_DIR}/mpi/test_nodelocal_nompi.c
  OSC sm rdma ucx pt2pt LABELS nodelocal events TIMEOUT 120)
pxs_add_mpi_test(NAME nodelocal.nompi.b8 NP 2 EXE mpitest_nodelocal_nompi OSC ucx pt2pt
  ARGS 8 LABELS nodelocal events TIMEOUT 120)
