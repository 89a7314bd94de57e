# Benchmark smoke tests (issue 15, section 4): every benchmark program runs,
# checks that the machine is quiet (and honours the bounded wait and its
# options), prints the JSON fields busy and reps with the case names the
# targets table needs, and refuses bad options (exit status 2, a message
# naming the option); apps/run-benchmarks.sh --quick and apps/bench-summary.py
# produce the JSON file, the targets table and the plots. No assertion on
# timing or speed. Driver: tests/tools/bench-smoke.sh. Open MPI builds only
# (the runner script drives Open MPI's mpirun and its osc components).
if(PXS_BUILD_APPS AND PXS_MPI_IMPL STREQUAL OpenMPI)
  string(REPLACE ";" " " PXS_BENCH_MPIEXEC "${MPIEXEC_EXECUTABLE};${MPIEXEC_PREFLAGS}")
  set(PXS_BENCH_CASES events:2 notquiet:2 badopts:4 store:2 oscprobe:2 pipeline:4 script:4)
  if(TARGET pxs-bench-hdf5 AND PXS_HAVE_HDF5)
    list(APPEND PXS_BENCH_CASES hdf5:1)
  endif()
  foreach(c IN LISTS PXS_BENCH_CASES)
    string(REPLACE ":" ";" cp "${c}")
    list(GET cp 0 name)
    list(GET cp 1 np)
    add_test(NAME bench.smoke.${name}
      COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/tools/bench-smoke.sh ${name}
              ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
    set_tests_properties(bench.smoke.${name} PROPERTIES
      LABELS "bench;mpi;openmpi;osc-sm" PROCESSORS ${np} TIMEOUT 300
      ENVIRONMENT "${PXS_ROOT_ENV};OMPI_MCA_osc=sm;BENCH_MPIEXEC=${PXS_BENCH_MPIEXEC}")
  endforeach()
endif()
