# Event plane tests (owner: events). Every test carries the label "events".
set(PXS_EV_DIR ${CMAKE_CURRENT_SOURCE_DIR})
pxs_test_exe(mpitest_events_stress ${PXS_EV_DIR}/mpi/test_events_stress.c)

# stress: ARGS = P S events-per-producer batch slots slow_div. >= 100k events
# per configuration under osc sm/rdma; under ucx/pt2pt (software atomics, every
# append needs the oversubscribed target to be scheduled) divided by slow_div.
foreach(b 1 32)
  if(b EQUAL 1)
    set(div 50)
  else()
    set(div 10)
  endif()
  pxs_add_mpi_test(NAME events.stress.p2s3.b${b} NP 5 EXE mpitest_events_stress
    ARGS 2 3 50000 ${b} 256 ${div} LABELS events TIMEOUT 120)
  pxs_add_mpi_test(NAME events.stress.p4s1.b${b} NP 5 EXE mpitest_events_stress
    ARGS 4 1 25000 ${b} 256 ${div} LABELS events TIMEOUT 120)
  pxs_add_mpi_test(NAME events.stress.p1s4.b${b} NP 5 EXE mpitest_events_stress
    ARGS 1 4 100000 ${b} 256 ${div} LABELS events TIMEOUT 120)
endforeach()
# across two emulated nodes (2 ranks per node), software-atomic components only
pxs_add_mpi_test(NAME events.stress2n NP 4 EXE mpitest_events_stress OSC ucx
  TWO_NODE pt2pt ucx ARGS 2 2 2000 8 64 1 LABELS events TIMEOUT 120)

pxs_add_mpi_test(NAME events.backpressure NP 3
  SOURCES ${PXS_EV_DIR}/mpi/test_events_backpressure.c
  TWO_NODE pt2pt LABELS events TIMEOUT 120)
pxs_add_mpi_test(NAME events.end NP 4 SOURCES ${PXS_EV_DIR}/mpi/test_events_end.c
  TWO_NODE pt2pt ucx LABELS events TIMEOUT 120)
pxs_add_mpi_test(NAME events.group NP 5 SOURCES ${PXS_EV_DIR}/mpi/test_events_group.c
  TWO_NODE pt2pt LABELS events TIMEOUT 120)
pxs_add_mpi_test(NAME events.errors NP 3 SOURCES ${PXS_EV_DIR}/mpi/test_events_errors.c
  LABELS events TIMEOUT 120)
# window creation across nodes: osc rdma/sm must fail cleanly with the remedy,
# pt2pt/ucx must work (the test checks which case it is in)
pxs_add_mpi_test(NAME events.wincreate NP 2 SOURCES ${PXS_EV_DIR}/mpi/test_events_wincreate.c
  OSC sm TWO_NODE rdma sm pt2pt ucx LABELS events TIMEOUT 120)

pxs_add_unit_test(NAME events.inproc SOURCES ${PXS_EV_DIR}/unit/test_inproc.c
  LABELS events TIMEOUT 120)

# The sole-writer fast path (one producer per mailbox: p1s4, backpressure,
# group) is the default; the same single-producer configurations again with
# it turned off, so the shared protocol (credit and ticket atomics) is also
# exercised with one writer.
pxs_add_mpi_test(NAME events.stress.p1s4.b1.nosole NP 5 EXE mpitest_events_stress
  OSC sm rdma ARGS 1 4 100000 1 256 50 ENV PXS_MAILBOX_SOLE=0 LABELS events TIMEOUT 120)
pxs_add_mpi_test(NAME events.backpressure.nosole NP 3 EXE mpitest_events_backpressure
  OSC sm ucx ENV PXS_MAILBOX_SOLE=0 LABELS events TIMEOUT 120)

# Group prefetch (a member holding an event gets at most `prefetch` events):
# the subscription field, PXS_PREFETCH, and the default; deterministic.
pxs_test_exe(mpitest_events_prefetch ${PXS_EV_DIR}/mpi/test_events_prefetch.c)
pxs_add_mpi_test(NAME events.prefetch NP 4 EXE mpitest_events_prefetch
  LABELS events TIMEOUT 120)
pxs_add_mpi_test(NAME events.prefetch.field1 NP 4 EXE mpitest_events_prefetch OSC sm ucx
  ARGS 1 LABELS events TIMEOUT 120)
pxs_add_mpi_test(NAME events.prefetch.env3 NP 4 EXE mpitest_events_prefetch OSC sm ucx
  ENV PXS_PREFETCH=3 LABELS events TIMEOUT 120)
pxs_add_mpi_test(NAME events.prefetch.nosole NP 4 EXE mpitest_events_prefetch OSC sm rdma
  ARGS 2 ENV PXS_MAILBOX_SOLE=0 LABELS events TIMEOUT 120)
pxs_add_mpi_test(NAME events.prefetch.batch8 NP 4 EXE mpitest_events_prefetch OSC sm
  ENV PXS_BATCH=8 LABELS events TIMEOUT 120)

# Broken bus: an injected MPI failure at each step of an append (test hook).
# Sole-writer path (default) and the shared path (ticket and credit atomics).
pxs_test_exe(mpitest_events_broken ${PXS_EV_DIR}/mpi/test_events_broken.c)
pxs_add_mpi_test(NAME events.broken NP 3 EXE mpitest_events_broken
  LABELS events TIMEOUT 120)
pxs_add_mpi_test(NAME events.broken.nosole NP 3 EXE mpitest_events_broken OSC sm ucx
  ENV PXS_MAILBOX_SOLE=0 LABELS events TIMEOUT 120)

# Thread guards (one thread per side; both sides of an MPI bus at once need
# MPI_THREAD_MULTIPLE), through the in-use test hook: deterministic.
pxs_test_exe(mpitest_events_threads ${PXS_EV_DIR}/mpi/test_events_threads.c)
pxs_add_mpi_test(NAME events.threads NP 1 EXE mpitest_events_threads OSC sm
  LABELS events TIMEOUT 120)
pxs_add_mpi_test(NAME events.threads.multiple NP 1 EXE mpitest_events_threads OSC sm ucx
  ARGS multiple LABELS events TIMEOUT 120)

# Issue 12: batch-1 ping-pong over many rings with no flush: every send goes
# out at once (the sole writer's credits; it hung under MPICH).
pxs_add_mpi_test(NAME events.pingpong NP 2 SOURCES ${PXS_EV_DIR}/mpi/test_events_pingpong.c
  LABELS events TIMEOUT 120)

# Inline chunks (docs/DESIGN.md, "Inline chunks"): malformed record runs
# injected through the test hook are PXS_ERR_CORRUPT (one waits out the
# bounded 10 s for a continuation that never comes), then a real inline event.
pxs_add_mpi_test(NAME events.inline_bad NP 2 SOURCES ${PXS_EV_DIR}/mpi/test_events_inline_bad.c
  OSC sm rdma LABELS events TIMEOUT 120)
