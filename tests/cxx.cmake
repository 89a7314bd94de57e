# C++ header tests (label cxx): every type and call of proxystream.hpp and an
# error path each; the pipeline example in the build tree and from the
# installed tree (tests/install/test_examples.sh).
if(NOT PXS_HAVE_CXX)
  return()
endif()

function(pxs_cxx_test_exe exe)
  if(NOT TARGET ${exe})
    add_executable(${exe} ${ARGN})
    target_link_libraries(${exe} PRIVATE proxystream::proxystream)
    target_compile_features(${exe} PRIVATE cxx_std_17)
    set_target_properties(${exe} PROPERTIES CXX_EXTENSIONS OFF)
    target_compile_options(${exe} PRIVATE ${PXS_WARNINGS})
  endif()
endfunction()

pxs_cxx_test_exe(cxxtest_api ${CMAKE_CURRENT_LIST_DIR}/cxx/test_cxx_api.cpp)
pxs_add_mpi_test(NAME cxx.api NP 3 EXE cxxtest_api OSC sm ucx TIMEOUT 120 LABELS cxx)

pxs_cxx_test_exe(cxx_pipeline ${PROJECT_SOURCE_DIR}/examples/cxx/pipeline.cpp)
pxs_add_mpi_test(NAME cxx.pipeline NP 4 EXE cxx_pipeline OSC sm TIMEOUT 120 LABELS cxx)

if(NOT PXS_SANITIZE)
  add_test(NAME mpi.install.cxx_pipeline
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install/test_examples.sh
            ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${MPIEXEC_EXECUTABLE} cxx 4 ${MPIEXEC_PREFLAGS})
  set_tests_properties(mpi.install.cxx_pipeline PROPERTIES
    LABELS "mpi;install;cxx" TIMEOUT 300 PROCESSORS 4
    ENVIRONMENT "${PXS_ROOT_ENV}" PASS_REGULAR_EXPRESSION "install example cxx passed")
endif()

# the HDF5 calls: Store::open, LogSubscriber (label hdf5 too)
if(PXS_HAVE_HDF5)
  pxs_cxx_test_exe(cxxtest_hdf5 ${CMAKE_CURRENT_LIST_DIR}/cxx/test_cxx_hdf5.cpp)
  pxs_add_mpi_test(NAME cxx.hdf5 NP 2 EXE cxxtest_hdf5 OSC sm TIMEOUT 120 LABELS cxx hdf5)
endif()
