# Fortran module tests (label fortran): every call and an error path each,
# the error-stop path without ierr, and the heat example built from the
# installed tree (tests/install/test_examples.sh).
if(NOT PXS_HAVE_FORTRAN)
  return()
endif()

function(pxs_fortran_test_exe exe)
  if(NOT TARGET ${exe})
    add_executable(${exe} ${ARGN})
    target_link_libraries(${exe} PRIVATE proxystream::fortran)
    target_compile_options(${exe} PRIVATE -std=f2018 -Wall
      $<$<BOOL:${PXS_WERROR}>:-Werror>)
  endif()
endfunction()

pxs_fortran_test_exe(ftest_api ${CMAKE_CURRENT_LIST_DIR}/fortran/test_api.f90)
pxs_add_mpi_test(NAME fortran.api NP 3 EXE ftest_api OSC sm ucx TIMEOUT 120
  LABELS fortran)

pxs_fortran_test_exe(ftest_errstop ${CMAKE_CURRENT_LIST_DIR}/fortran/test_errstop.f90)
pxs_add_mpi_test(NAME fortran.errstop NP 1 EXE ftest_errstop OSC sm TIMEOUT 120
  LABELS fortran)
if(PXS_MPI_IMPL STREQUAL OpenMPI)
  set(pxs_errstop_test mpi.fortran.errstop.np1.sm)
else() # MPICH builds (-DPXS_FORTRAN=ON): one variant per test
  set(pxs_errstop_test mpi.fortran.errstop.np1.${PXS_MPI_VARIANT})
endif()
set_tests_properties(${pxs_errstop_test} PROPERTIES PASS_REGULAR_EXPRESSION
  "proxystream: pxs_store_resolve: PXS_ERR_CORRUPT \\([^)]*\\): .+"
  FAIL_REGULAR_EXPRESSION "NOT REACHED")

# The heat example in the build tree too (so the sanitizer suite runs it):
# 3 ranks = 2 simulation + 1 analysis here, 4 ranks from the installed tree.
pxs_fortran_test_exe(fheat ${PROJECT_SOURCE_DIR}/examples/fortran/heat.f90)
pxs_add_mpi_test(NAME fortran.heat NP 3 EXE fheat OSC sm TIMEOUT 120 LABELS fortran)

# examples/fortran/heat.f90 built from the installed tree (find_package,
# proxystream::fortran) and run on 4 ranks: 2 simulation, 2 analysis.
if(NOT PXS_SANITIZE)
  add_test(NAME mpi.install.fortran_heat
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install/test_examples.sh
            ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${MPIEXEC_EXECUTABLE} fortran 4 ${MPIEXEC_PREFLAGS})
  set_tests_properties(mpi.install.fortran_heat PROPERTIES
    LABELS "mpi;install;fortran" TIMEOUT 300 PROCESSORS 4
    ENVIRONMENT "${PXS_ROOT_ENV}" PASS_REGULAR_EXPRESSION "install example fortran passed")
endif()
