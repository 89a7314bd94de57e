# Python binding (python/): pytest files under mpiexec, label python.
# Registered only when the binding is built (-DPXS_PYTHON=AUTO|ON finds
# Python 3 development files and mpi4py) and numpy and pytest import.
if(NOT TARGET pxs_python)
  return()
endif()
execute_process(COMMAND ${PXS_PYTHON_EXECUTABLE} -c "import numpy, pytest"
  RESULT_VARIABLE pxs_py_test_rc OUTPUT_QUIET ERROR_QUIET)
if(NOT pxs_py_test_rc EQUAL 0)
  message(STATUS "proxystream: Python tests off (numpy or pytest missing for ${PXS_PYTHON_EXECUTABLE})")
  return()
endif()

set(PXS_PY_ENV ${PXS_ROOT_ENV} PYTHONPATH=${PXS_PYTHON_BUILD_DIR}
  PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1)

# pxs_add_python_test(NAME n NP np COMMAND args...): "python.<n>.np<np>"
function(pxs_add_python_test)
  cmake_parse_arguments(T "" "NAME;NP;TIMEOUT" "COMMAND" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set(tname python.${T_NAME}.np${T_NP})
  add_test(NAME ${tname} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_NP}
    ${MPIEXEC_PREFLAGS} ${PXS_PYTHON_EXECUTABLE} ${T_COMMAND})
  set_tests_properties(${tname} PROPERTIES LABELS "python;mpi" PROCESSORS ${T_NP}
    TIMEOUT ${T_TIMEOUT} ENVIRONMENT "${PXS_PY_ENV}")
endfunction()

foreach(t store:2 stream:3)
  string(REPLACE ":" ";" t ${t})
  list(GET t 0 name)
  list(GET t 1 np)
  pxs_add_python_test(NAME ${name} NP ${np} COMMAND -m pytest -q -p no:cacheprovider --color=no
    ${PROJECT_SOURCE_DIR}/python/tests/test_${name}.py)
endforeach()
# the example, both ways of forwarding (exit status 1 on a checksum or count mismatch)
pxs_add_python_test(NAME dispatcher NP 5 COMMAND
  ${PROJECT_SOURCE_DIR}/examples/python/dispatcher.py --chunks 60 --chunk-bytes 262144)
pxs_add_python_test(NAME dispatcher_topics NP 4 COMMAND
  ${PROJECT_SOURCE_DIR}/examples/python/dispatcher.py --mode topics --chunks 40 --chunk-bytes 65536)

# the installed package (scratch prefix, PYTHONPATH, RPATH, no LD_LIBRARY_PATH)
add_test(NAME python.install
  COMMAND ${PROJECT_SOURCE_DIR}/python/tests/test_install.sh ${PROJECT_BINARY_DIR}
          ${PROJECT_SOURCE_DIR} ${MPIEXEC_EXECUTABLE} ${PXS_PYTHON_EXECUTABLE})
set_tests_properties(python.install PROPERTIES LABELS "python;mpi;install" TIMEOUT 300
  PROCESSORS 3 ENVIRONMENT "${PXS_ROOT_ENV}")
# the HDF5 calls (Store connector='hdf5', Store.open, log_path, open_log, spill)
if(PXS_HAVE_HDF5)
  pxs_add_python_test(NAME hdf5 NP 2 COMMAND -m pytest -q -p no:cacheprovider --color=no
    ${PROJECT_SOURCE_DIR}/python/tests/test_hdf5.py)
  set_tests_properties(python.hdf5.np2 PROPERTIES LABELS "python;mpi;hdf5")
endif()
