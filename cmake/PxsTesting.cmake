# Test helpers. MPI tests start real ranks through mpiexec.
#
# pxs_add_unit_test(NAME name SOURCES src...)
#   -> test "unit.<name>", label unit
# pxs_add_mpi_test(NAME name SOURCES src... NP n
#                  [OSC sm rdma ucx pt2pt] [TWO_NODE pt2pt ucx] [PPN n]
#                  [ARGS a...] [ENV K=V...] [TIMEOUT s] [LABELS l...])
# What it registers depends on the MPI the project is built against
# (PXS_MPI_IMPL, cmake/PxsMpiImpl.cmake; docs/DESIGN.md, section "MPICH"):
#  Open MPI:
#   -> one test per osc component: "mpi.<name>.np<n>.<osc>", labels mpi;openmpi;osc-<osc>
#      (mpiexec --oversubscribe --mca mpi_yield_when_idle 1, OMPI_MCA_osc=<osc>)
#   -> one per TWO_NODE component, through tests/tools/fakenodes.sh:
#      "mpi.<name>.np<n>.2node.<osc>", labels mpi;openmpi;two-node;osc-<osc>
#   OSC defaults to "sm rdma ucx". The osc and two-node variants are Open MPI only.
#  MPICH (and MPICH derivatives):
#   -> one test if OSC is not empty: "mpi.<name>.np<n>.mpich", labels mpi;mpich
#      (plain mpiexec: hydra oversubscribes without a flag and has no MCA)
#   -> and, for the tests listed in PXS_MPICH_ASYNC_TESTS, the same with
#      MPIR_CVAR_ASYNC_PROGRESS=1: "mpi.<name>.np<n>.mpich-async",
#      labels mpi;mpich;mpich-async
#   TWO_NODE is ignored (fakenodes.sh drives Open MPI's rsh launcher).
#  unknown implementation: as MPICH, variant and label "mpi-generic".
# The executable is built once per NAME's SOURCES.

set(PXS_ROOT_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
if(PXS_MPI_IMPL STREQUAL OpenMPI)
  set(MPIEXEC_PREFLAGS --oversubscribe --mca mpi_yield_when_idle 1 CACHE STRING "" FORCE)
  set(PXS_MPI_VARIANT "")
else()
  # hydra (MPICH, Intel MPI, MVAPICH) starts more ranks than cores as is
  set(MPIEXEC_PREFLAGS "" CACHE STRING "" FORCE)
  if(PXS_MPI_IMPL STREQUAL MPICH)
    set(PXS_MPI_VARIANT mpich)
  else()
    set(PXS_MPI_VARIANT mpi-generic)
  endif()
endif()
# MPICH: tests also run with MPICH's progress thread (passive-target RMA and
# atomics completing while the target computes). "<name>.np<n>" entries.
set(PXS_MPICH_ASYNC_TESTS events.backpressure.np3 store.roundtrip.np4 stream.demo.np4
  stream.group.np4)
set(PXS_FAKENODES ${PROJECT_SOURCE_DIR}/tests/tools/fakenodes.sh)
set(PXS_TEST_COMMON ${PROJECT_SOURCE_DIR}/tests/common)

function(pxs_test_exe exe)
  if(NOT TARGET ${exe})
    add_executable(${exe} ${ARGN})
    target_link_libraries(${exe} PRIVATE proxystream_testhooks)
    target_include_directories(${exe} PRIVATE ${PXS_TEST_COMMON} ${PROJECT_SOURCE_DIR}/src)
    target_compile_options(${exe} PRIVATE ${PXS_WARNINGS})
    target_compile_definitions(${exe} PRIVATE _GNU_SOURCE $<$<BOOL:${PXS_HAVE_UCX}>:PXS_HAVE_UCX=1>)
  endif()
endfunction()

function(pxs_add_unit_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;ARGS;ENV;LABELS" ${ARGN})
  string(REPLACE "." "_" exe "test_${T_NAME}")
  pxs_test_exe(${exe} ${T_SOURCES})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_test(NAME unit.${T_NAME} COMMAND ${exe} ${T_ARGS})
  set_tests_properties(unit.${T_NAME} PROPERTIES LABELS "unit;${T_LABELS}"
    TIMEOUT ${T_TIMEOUT} ENVIRONMENT "${PXS_ROOT_ENV};${T_ENV}")
endfunction()

function(pxs_add_mpi_test)
  cmake_parse_arguments(T "" "NAME;NP;TIMEOUT;PPN;EXE"
    "SOURCES;OSC;TWO_NODE;ARGS;ENV;LABELS" ${ARGN})
  if(NOT T_NP)
    set(T_NP 2)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  if(NOT DEFINED T_OSC)
    set(T_OSC sm rdma ucx)
  endif()
  if(T_EXE)
    set(exe ${T_EXE})
  else()
    string(REPLACE "." "_" exe "mpitest_${T_NAME}")
    pxs_test_exe(${exe} ${T_SOURCES})
  endif()
  if(NOT PXS_MPI_IMPL STREQUAL OpenMPI)
    if(NOT T_OSC) # a two-node-only test
      return()
    endif()
    set(variants ${PXS_MPI_VARIANT})
    if(PXS_MPI_IMPL STREQUAL MPICH AND "${T_NAME}.np${T_NP}" IN_LIST PXS_MPICH_ASYNC_TESTS)
      list(APPEND variants mpich-async)
    endif()
    foreach(v IN LISTS variants)
      set(tname mpi.${T_NAME}.np${T_NP}.${v})
      set(venv "")
      set(vlabels "mpi;${PXS_MPI_VARIANT}")
      if(v STREQUAL mpich-async)
        set(venv MPIR_CVAR_ASYNC_PROGRESS=1)
        list(APPEND vlabels mpich-async)
      endif()
      add_test(NAME ${tname} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_NP}
        ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${exe}> ${MPIEXEC_POSTFLAGS} ${T_ARGS})
      set_tests_properties(${tname} PROPERTIES LABELS "${vlabels};${T_LABELS}"
        PROCESSORS ${T_NP} TIMEOUT ${T_TIMEOUT} ENVIRONMENT "${venv};${T_ENV}")
    endforeach()
    return()
  endif()
  foreach(osc IN LISTS T_OSC)
    set(tname mpi.${T_NAME}.np${T_NP}.${osc})
    add_test(NAME ${tname} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_NP}
      ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${exe}> ${MPIEXEC_POSTFLAGS} ${T_ARGS})
    set_tests_properties(${tname} PROPERTIES LABELS "mpi;openmpi;osc-${osc};${T_LABELS}"
      PROCESSORS ${T_NP} TIMEOUT ${T_TIMEOUT}
      ENVIRONMENT "${PXS_ROOT_ENV};OMPI_MCA_osc=${osc};${T_ENV}")
  endforeach()
  if(T_TWO_NODE)
    if(NOT T_PPN)
      math(EXPR T_PPN "(${T_NP} + 1) / 2")
    endif()
    foreach(osc IN LISTS T_TWO_NODE)
      set(tname mpi.${T_NAME}.np${T_NP}.2node.${osc})
      add_test(NAME ${tname} COMMAND ${PXS_FAKENODES} -np ${T_NP}
        --oversubscribe --mca osc ${osc} $<TARGET_FILE:${exe}> ${T_ARGS})
      set_tests_properties(${tname} PROPERTIES LABELS "mpi;openmpi;two-node;osc-${osc};${T_LABELS}"
        PROCESSORS ${T_NP} TIMEOUT ${T_TIMEOUT} RUN_SERIAL TRUE
        ENVIRONMENT "${PXS_ROOT_ENV};FAKENODES_PPN=${T_PPN};FAKENODES_TIMEOUT=${T_TIMEOUT};${T_ENV}")
    endforeach()
  endif()
endfunction()

# pxs_add_ucx_conn_test(NAME name EXE exe NP n [ARGS a...] [ENV K=V...] [TIMEOUT s])
#   The store test `exe` with the UCX connector (PXS_TEST_CONNECTOR=ucx, read
#   by pxs_test_connector() in tests/common/pxs_test.h), when the UCX
#   connector is built: "mpi.<name>.np<n>.ucxconn" (UCX's default transports:
#   shared memory here) and "mpi.<name>.np<n>.ucxconn.tcp" (UCX_TLS=tcp: the
#   network path, as to another node). Label ucx-conn. TWO_NODE: also
#   "mpi.<name>.np<n>.2node.ucxconn" across two emulated nodes (fakenodes.sh).
function(pxs_add_ucx_conn_test)
  cmake_parse_arguments(T "TWO_NODE" "NAME;NP;TIMEOUT;EXE" "ARGS;ENV" ${ARGN})
  if(NOT PXS_HAVE_UCX)
    return()
  endif()
  # The UCX connector's tests run under Open MPI only: under MPICH (whose
  # ch4 device is itself UCX) the tcp variant stalled past its timeout and
  # the two-node runs need Open MPI's launcher (docs/DESIGN.md, section
  # "MPICH").
  if(NOT PXS_MPI_IMPL STREQUAL "OpenMPI")
    return()
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  foreach(tls default tcp)
    set(tname mpi.${T_NAME}.np${T_NP}.ucxconn)
    set(tenv PXS_TEST_CONNECTOR=ucx)
    if(tls STREQUAL "tcp")
      set(tname ${tname}.tcp)
      list(APPEND tenv UCX_TLS=tcp)
    endif()
    add_test(NAME ${tname} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_NP}
      ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${T_EXE}> ${MPIEXEC_POSTFLAGS} ${T_ARGS})
    set_tests_properties(${tname} PROPERTIES LABELS "mpi;ucx-conn"
      PROCESSORS ${T_NP} TIMEOUT ${T_TIMEOUT}
      ENVIRONMENT "${PXS_ROOT_ENV};${tenv};${T_ENV}")
  endforeach()
  if(T_TWO_NODE)
    math(EXPR ppn "(${T_NP} + 1) / 2")
    set(tname mpi.${T_NAME}.np${T_NP}.2node.ucxconn)
    add_test(NAME ${tname} COMMAND ${PXS_FAKENODES} -np ${T_NP} --oversubscribe
      $<TARGET_FILE:${T_EXE}> ${T_ARGS})
    set_tests_properties(${tname} PROPERTIES LABELS "mpi;two-node;ucx-conn"
      PROCESSORS ${T_NP} TIMEOUT ${T_TIMEOUT} RUN_SERIAL TRUE
      ENVIRONMENT "${PXS_ROOT_ENV};PXS_TEST_CONNECTOR=ucx;FAKENODES_PPN=${ppn};FAKENODES_TIMEOUT=${T_TIMEOUT};${T_ENV}")
  endif()
endfunction()
