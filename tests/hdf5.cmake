# HDF5 connector (docs/DESIGN.md, section "HDF5 connector"): durable
# objects across separate mpiexec runs, damaged files, bad directories,
# disk full. Real files under a fresh temporary directory per test.
if(PXS_HAVE_HDF5)
  set(PXS_HDF5_T ${CMAKE_CURRENT_SOURCE_DIR})
  pxs_test_exe(mpitest_store_hdf5 ${PXS_HDF5_T}/mpi/test_store_hdf5.c)
  foreach(scenario durable faults full readonly cuts)
    add_test(NAME mpi.store.hdf5.${scenario}
      COMMAND bash ${PXS_HDF5_T}/tools/hdf5-jobs.sh ${scenario}
              $<TARGET_FILE:mpitest_store_hdf5>
              ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${MPIEXEC_PREFLAGS})
    set_tests_properties(mpi.store.hdf5.${scenario} PROPERTIES LABELS "mpi;hdf5"
      PROCESSORS 3 TIMEOUT 120 ENVIRONMENT "${PXS_ROOT_ENV}")
  endforeach()
  if(TARGET pxs-inspect) # cuts: pxs-inspect ls/verify on each truncated copy
    set_property(TEST mpi.store.hdf5.cuts APPEND PROPERTY ENVIRONMENT
      "INSPECT=$<TARGET_FILE:pxs-inspect>")
  endif()
  # the same across two emulated nodes (tests/tools/fakenodes.sh: each fake
  # node sees the same directory; jobs of 3 ranks put 2 on one node)
  add_test(NAME mpi.store.hdf5.durable.2node
    COMMAND bash ${PXS_HDF5_T}/tools/hdf5-jobs.sh durable $<TARGET_FILE:mpitest_store_hdf5>
            ${PXS_FAKENODES} -np --oversubscribe --mca osc pt2pt)
  set_tests_properties(mpi.store.hdf5.durable.2node PROPERTIES
    LABELS "mpi;hdf5;two-node;osc-pt2pt" PROCESSORS 3 TIMEOUT 240 RUN_SERIAL TRUE
    ENVIRONMENT "${PXS_ROOT_ENV};FAKENODES_PPN=2;FAKENODES_TIMEOUT=200")
  # stream log and replay: 3 producers + a live consumer, then a later job
  pxs_test_exe(mpitest_stream_replay ${PXS_HDF5_T}/mpi/test_stream_replay.c)
  add_test(NAME mpi.stream.replay
    COMMAND bash ${PXS_HDF5_T}/tools/hdf5-jobs.sh replay $<TARGET_FILE:mpitest_stream_replay>
            ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${MPIEXEC_PREFLAGS})
  set_tests_properties(mpi.stream.replay PROPERTIES LABELS "mpi;hdf5"
    PROCESSORS 4 TIMEOUT 120 ENVIRONMENT "${PXS_ROOT_ENV}")
  # spill under pressure: a stalled consumer, every chunk verified
  pxs_test_exe(mpitest_store_spill ${PXS_HDF5_T}/mpi/test_store_spill.c)
  foreach(osc sm ucx)
    add_test(NAME mpi.store.spill.${osc}
      COMMAND bash ${PXS_HDF5_T}/tools/hdf5-jobs.sh spill $<TARGET_FILE:mpitest_store_spill>
              ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${MPIEXEC_PREFLAGS})
    set_tests_properties(mpi.store.spill.${osc} PROPERTIES LABELS "mpi;hdf5;osc-${osc}"
      PROCESSORS 3 TIMEOUT 120 ENVIRONMENT "${PXS_ROOT_ENV};OMPI_MCA_osc=${osc}")
  endforeach()
  add_test(NAME mpi.store.spill.2node.ucx
    COMMAND bash ${PXS_HDF5_T}/tools/hdf5-jobs.sh spill $<TARGET_FILE:mpitest_store_spill>
            ${PXS_FAKENODES} -np --oversubscribe --mca osc ucx)
  set_tests_properties(mpi.store.spill.2node.ucx PROPERTIES
    LABELS "mpi;hdf5;two-node;osc-ucx" PROCESSORS 3 TIMEOUT 240 RUN_SERIAL TRUE
    ENVIRONMENT "${PXS_ROOT_ENV};FAKENODES_PPN=2;FAKENODES_TIMEOUT=200")
  # pxs-demo --log DIR, then --replay DIR in a new job (every chunk verified)
  if(TARGET pxs-demo)
    add_test(NAME mpi.stream.demo.replay
      COMMAND bash ${PXS_HDF5_T}/tools/hdf5-jobs.sh demo $<TARGET_FILE:pxs-demo>
              ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${MPIEXEC_PREFLAGS})
    set_tests_properties(mpi.stream.demo.replay PROPERTIES LABELS "mpi;hdf5"
      PROCESSORS 4 TIMEOUT 120 ENVIRONMENT "${PXS_ROOT_ENV}")
  endif()
  # pxs-inspect: ls, verify (exit 2 on a flipped bit), proxy, log ls/dump
  if(TARGET pxs-inspect)
    add_test(NAME mpi.tools.inspect
      COMMAND bash ${PXS_HDF5_T}/tools/hdf5-jobs.sh inspect $<TARGET_FILE:mpitest_store_hdf5>
              ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${MPIEXEC_PREFLAGS})
    set_tests_properties(mpi.tools.inspect PROPERTIES LABELS "mpi;hdf5"
      PROCESSORS 4 TIMEOUT 120 ENVIRONMENT
      "${PXS_ROOT_ENV};INSPECT=$<TARGET_FILE:pxs-inspect>;REPLAY=$<TARGET_FILE:mpitest_stream_replay>")
  endif()
endif()
