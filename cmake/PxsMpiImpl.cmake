# Which MPI implementation the project is built against, and a launcher that
# belongs to it. Included right after find_package(MPI).
# See docs/DESIGN.md, section "MPICH".
#
# Sets (cache):
#   PXS_MPI_IMPL          OpenMPI | MPICH | unknown   (from <mpi.h>: what we link)
#   PXS_MPIEXEC_IMPL      OpenMPI | MPICH | unknown   (from `mpiexec --version`)
# The two must agree: a library built with mpicc.mpich but started by Open
# MPI's mpiexec runs every rank as a singleton (and the reverse fails too).
# FindMPI picks `mpiexec` next to the compiler wrapper, which on Debian is the
# alternatives link (Open MPI), whatever MPI_C_COMPILER says. So when they
# disagree and the implementation's own launcher is found (mpiexec.mpich,
# mpiexec.hydra, mpiexec.openmpi), it is selected with a message; otherwise
# configuration stops, naming the option to set.
#
# The library itself never depends on this: at run time it asks
# MPI_Get_library_version, for log lines and remedy texts only.

include(CheckSymbolExists)

function(pxs_mpi_header_impl out)
  set(CMAKE_REQUIRED_INCLUDES ${MPI_C_INCLUDE_DIRS})
  set(CMAKE_REQUIRED_QUIET ON)
  check_symbol_exists(OMPI_MAJOR_VERSION mpi.h PXS_HAVE_OMPI_MAJOR_VERSION)
  check_symbol_exists(MPICH_VERSION mpi.h PXS_HAVE_MPICH_VERSION)
  if(PXS_HAVE_OMPI_MAJOR_VERSION)
    set(${out} OpenMPI PARENT_SCOPE)
  elseif(PXS_HAVE_MPICH_VERSION) # also Intel MPI, MVAPICH, Cray MPICH
    set(${out} MPICH PARENT_SCOPE)
  else()
    set(${out} unknown PARENT_SCOPE)
  endif()
endfunction()

function(pxs_mpiexec_impl exe out)
  set(impl unknown)
  if(exe)
    execute_process(COMMAND ${exe} --version OUTPUT_VARIABLE txt ERROR_VARIABLE txt
      RESULT_VARIABLE res TIMEOUT 30)
    if(txt MATCHES "OpenRTE|Open MPI|Open-MPI")
      set(impl OpenMPI)
    elseif(txt MATCHES "HYDRA|MPICH|Intel\\(R\\) MPI")
      set(impl MPICH)
    endif()
  endif()
  set(${out} ${impl} PARENT_SCOPE)
endfunction()

pxs_mpi_header_impl(_pxs_impl)
set(PXS_MPI_IMPL ${_pxs_impl} CACHE INTERNAL "MPI implementation built against")

pxs_mpiexec_impl("${MPIEXEC_EXECUTABLE}" _pxs_launcher)
if(NOT _pxs_launcher STREQUAL PXS_MPI_IMPL AND NOT PXS_MPI_IMPL STREQUAL unknown)
  if(PXS_MPI_IMPL STREQUAL MPICH)
    set(_pxs_names mpiexec.mpich mpiexec.hydra)
  else()
    set(_pxs_names mpiexec.openmpi orterun)
  endif()
  get_filename_component(_pxs_dir "${MPI_C_COMPILER}" DIRECTORY)
  find_program(PXS_MPIEXEC_OWN NAMES ${_pxs_names} HINTS ${_pxs_dir} NO_CACHE)
  if(PXS_MPIEXEC_OWN)
    pxs_mpiexec_impl("${PXS_MPIEXEC_OWN}" _pxs_own)
  endif()
  if(PXS_MPIEXEC_OWN AND _pxs_own STREQUAL PXS_MPI_IMPL)
    message(STATUS "proxystream: built against ${PXS_MPI_IMPL}, but "
      "MPIEXEC_EXECUTABLE=${MPIEXEC_EXECUTABLE} is ${_pxs_launcher}'s launcher: "
      "using ${PXS_MPIEXEC_OWN}")
    set(MPIEXEC_EXECUTABLE ${PXS_MPIEXEC_OWN} CACHE FILEPATH "Executable for running MPI programs." FORCE)
    set(_pxs_launcher ${PXS_MPI_IMPL})
  else()
    message(FATAL_ERROR "proxystream: <mpi.h> (${MPI_C_COMPILER}) is ${PXS_MPI_IMPL}, "
      "but MPIEXEC_EXECUTABLE=${MPIEXEC_EXECUTABLE} is ${_pxs_launcher}'s launcher: "
      "set -DMPIEXEC_EXECUTABLE=<the ${PXS_MPI_IMPL} mpiexec>")
  endif()
endif()
set(PXS_MPIEXEC_IMPL ${_pxs_launcher} CACHE INTERNAL "MPI implementation of MPIEXEC_EXECUTABLE")
message(STATUS "proxystream: MPI implementation ${PXS_MPI_IMPL} "
  "(MPI_C_COMPILER ${MPI_C_COMPILER}, mpiexec ${MPIEXEC_EXECUTABLE})")

# pkg-config name of the MPI (proxystream.pc: Requires)
if(PXS_MPI_IMPL STREQUAL MPICH)
  set(PXS_PC_MPI mpich)
elseif(PXS_MPI_IMPL STREQUAL OpenMPI)
  set(PXS_PC_MPI ompi-c)
else()
  set(PXS_PC_MPI "") # unknown: compile with its mpicc
endif()
