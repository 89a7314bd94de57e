# Test helpers. MPI tests start real ranks through mpiexec.
#
# pxs_add_unit_test(NAME name SOURCES src...)
#   -> test "unit.<name>", label unit
# pxs_add_mpi_test(NAME name SOURCES src... NP n
#                  [OSC sm rdma ucx pt2pt] [TWO_NODE pt2pt ucx] [PPN n]
#                  [ARGS a...] [ENV K=V...] [TIMEOUT s] [LABELS l...])
#   -> one test per osc component: "mpi.<name>.np<n>.<osc>", labels mpi;osc-<osc>
#   -> one per TWO_NODE component, through tests/tools/fakenodes.sh:
#      "mpi.<name>.np<n>.2node.<osc>", labels mpi;two-node;osc-<osc>
#   OSC defaults to "sm rdma ucx". The executable is built once per NAME's SOURCES.

set(PXS_ROOT_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
set(MPIEXEC_PREFLAGS --oversubscribe --mca mpi_yield_when_idle 1 CACHE STRING "" FORCE)
set(PXS_FAKENODES ${PROJECT_SOURCE_DIR}/tests/tools/fakenodes.sh)
set(PXS_TEST_COMMON ${PROJECT_SOURCE_DIR}/tests/common)

function(pxs_test_exe exe)
  if(NOT TARGET ${exe})
    add_executable(${exe} ${ARGN})
    target_link_libraries(${exe} PRIVATE proxystream::proxystream_static)
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
  foreach(osc IN LISTS T_OSC)
    set(tname mpi.${T_NAME}.np${T_NP}.${osc})
    add_test(NAME ${tname} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_NP}
      ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${exe}> ${MPIEXEC_POSTFLAGS} ${T_ARGS})
    set_tests_properties(${tname} PROPERTIES LABELS "mpi;osc-${osc};${T_LABELS}"
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
      set_tests_properties(${tname} PROPERTIES LABELS "mpi;two-node;osc-${osc};${T_LABELS}"
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
