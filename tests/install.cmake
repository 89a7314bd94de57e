# Build an outside project against the installed tree (find_package, pkg-config).
if(PXS_SANITIZE)
  return()  # the outside consumer is not built with the sanitizer runtime
endif()
add_test(NAME mpi.install.consumer
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install/test_install.sh
          ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(mpi.install.consumer PROPERTIES LABELS "mpi;install" TIMEOUT 300
  PROCESSORS 2 ENVIRONMENT "${PXS_ROOT_ENV}")
