# Node-local fast path (owner: fpmb): node segments (src/util/shmseg.c) and the
# mailbox's node ring. Every test carries the label "nodelocal".
set(PXS_NL_DIR ${CMAKE_CURRENT_SOURCE_DIR})

# node segments: one node, every osc; PXS_SHM=0; two emulated nodes
pxs_add_mpi_test(NAME nodelocal.shmseg NP 3 SOURCES ${PXS_NL_DIR}/mpi/test_shmseg.c
  TWO_NODE pt2pt LABELS nodelocal TIMEOUT 120)
pxs_add_mpi_test(NAME nodelocal.shmseg.noshm NP 2 EXE mpitest_nodelocal_shmseg OSC sm
  ENV PXS_SHM=0 LABELS nodelocal TIMEOUT 120)
