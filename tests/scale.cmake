# Scale tests (issue 13; docs/DESIGN.md "Scale model"), label "scale": the
# event plane's stress test, the stream demo and pxs-bench-scale --check at
# 32 and 64 oversubscribed ranks. Long on a small machine, so not in the
# default run: configure with -DPXS_SCALE_TESTS=ON, then
#   ctest --test-dir build -L scale
# (.ci/run does this once).
# Always (a few seconds): the scale benchmark's checks at 4 ranks, every
# case: exact records and bytes per event, 2 flushes per append on the
# sole-writer path and >= 3 atomics / 4 flushes on a shared mailbox, <= 8
# group probes per pick, routing state independent of the ranks, and the
# many-to-one polling bound (docs/DESIGN.md "Polling a full mailbox"):
# atomics <= 6 per append + 3 per failed credit attempt, at most one such
# attempt per send and 13 + (time waited) / 65.5 ms per backpressure wait,
# checked from the counters also in a run whose subscriber starts 300 ms
# late (a producer polling at its back-off pace fails it by thousands).
# The counters count MPI operations: these tests run with PXS_SHM=0, the MPI
# rings a real interconnect uses (same-node appends through the node ring,
# docs/DESIGN.md "Node ring", cost no MPI operation at all).
# (300 s: under osc ucx every operation waits for its target to enter MPI;
# at a load average of 90 on 2 cores the ucx variant took 146 s)
if(TARGET pxs-bench-scale)
  pxs_add_mpi_test(NAME scale.check NP 4 EXE pxs-bench-scale
    ARGS --check --events 100 --reps 1 ENV PXS_SHM=0 LABELS events TIMEOUT 300)
  # the default (node ring on): records, probes, routing state and the
  # polling bound; no MPI operation per append to count on one node
  pxs_add_mpi_test(NAME scale.check_shm NP 4 EXE pxs-bench-scale
    ARGS --check --events 100 --reps 1 ENV PXS_SHM=1 OSC rdma LABELS events TIMEOUT 300)
endif()
# A group of 12 members (more than the 8 probes of one flush pass) in which
# all but the last hold their one prefetched event: the publisher must reach
# the free member over successive passes.
pxs_add_mpi_test(NAME scale.group NP 13
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mpi/test_scale_group.c
  OSC sm rdma ENV PXS_SHM=0 LABELS events TIMEOUT 240)
# the same with the node ring on (the default): its appends put no MPI bytes
pxs_add_mpi_test(NAME scale.group_shm NP 13
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mpi/test_scale_group.c
  OSC sm ENV PXS_SHM=1 LABELS events TIMEOUT 240)
option(PXS_SCALE_TESTS "register the 32/64-rank scale tests (label scale)" OFF)
if(PXS_SCALE_TESTS)
  # stress: ARGS = P S events-per-producer batch slots slow_div (see pubsub.cmake)
  foreach(np 32 64)
    math(EXPR p1 "${np} - 4")
    math(EXPR s1 "${np} - 1")
    pxs_add_mpi_test(NAME scale.stress.p${p1}s4 NP ${np} EXE mpitest_events_stress
      ARGS ${p1} 4 1000 8 256 10 OSC sm rdma LABELS scale events TIMEOUT 600)
    pxs_add_mpi_test(NAME scale.stress.p${s1}s1 NP ${np} EXE mpitest_events_stress
      ARGS ${s1} 1 500 1 256 10 OSC sm LABELS scale events TIMEOUT 600)
    pxs_add_mpi_test(NAME scale.stress.p1s${s1} NP ${np} EXE mpitest_events_stress
      ARGS 1 ${s1} 2000 8 256 10 OSC sm LABELS scale events TIMEOUT 600)
    # every case of the scale benchmark, checked: group of np-1 members
    # (exactly once, <= 8 probes per pick), many-to-one, one-to-many, and
    # routing state that does not grow with the ranks
    if(TARGET pxs-bench-scale)
      pxs_add_mpi_test(NAME scale.check NP ${np} EXE pxs-bench-scale
        ARGS --check --events 200 --reps 1 OSC sm rdma ENV PXS_SHM=0 LABELS scale events TIMEOUT 600)
    endif()
  endforeach()
  if(TARGET pxs-demo)
    pxs_add_mpi_test(NAME scale.demo NP 32 EXE pxs-demo
      ARGS --generators 24 --chunks 8 --chunk-size 64K --arena 8M --quiet
      OSC sm rdma LABELS scale stream TIMEOUT 600)
    pxs_add_mpi_test(NAME scale.demo NP 64 EXE pxs-demo
      ARGS --generators 48 --chunks 4 --chunk-size 64K --arena 8M --quiet
      OSC sm LABELS scale stream TIMEOUT 600)
  endif()
endif()
