# Logging and statistics (docs/DESIGN.md, section "Logging and statistics"):
# exact counters after a known scenario (backpressure, END, depth, stale,
# group shares), then the same run with PXS_LOG=debug PXS_STATS=1 checking
# the routing/END/backpressure/stale/stats lines on stderr, and with
# PXS_STATS=json checking that every stats line is a JSON object.
# The counters are those of the store path: inline chunks (docs/DESIGN.md,
# "Inline chunks") change record and resolve counts, so PXS_INLINE_MAX=0.
pxs_add_mpi_test(NAME observe.counts NP 3
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mpi/test_observe.c ENV PXS_INLINE_MAX=0 OSC sm TIMEOUT 120)
pxs_add_mpi_test(NAME observe.log NP 3 EXE mpitest_observe_counts ARGS log
  ENV PXS_LOG=debug PXS_STATS=1 PXS_INLINE_MAX=0 OSC sm TIMEOUT 120)
pxs_add_mpi_test(NAME observe.json NP 3 EXE mpitest_observe_counts ARGS json
  ENV PXS_STATS=json PXS_INLINE_MAX=0 OSC sm TIMEOUT 120)
# The same counters without MPI: in-process bus + local store, one thread.
pxs_add_unit_test(NAME observe.local SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/test_observe_local.c
  ENV PXS_INLINE_MAX=0)
