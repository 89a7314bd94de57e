#!/bin/bash
# Installs what is missing (Debian 12, as root), builds proxystream in
# ./build and runs the whole test suite with ctest (real MPI ranks through
# mpiexec).  Extra arguments go to ctest, e.g.  ./run-tests.sh -L unit
# PXS_MPI=mpich: build against Debian's MPICH in ./build-mpich instead
# (mpicc.mpich, mpiexec.mpich) and run its suite.
set -euo pipefail
cd "$(dirname "$0")"
. cmake/deps.sh
pxs_install_deps
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
flags=()
case "${PXS_MPI:-openmpi}" in
openmpi) build=${PXS_BUILD_DIR:-build} ;;
mpich)
    build=${PXS_BUILD_DIR:-build-mpich}
    flags+=(-DMPI_C_COMPILER="$(command -v mpicc.mpich)"
        -DMPIEXEC_EXECUTABLE="$(command -v mpiexec.mpich)")
    ;;
*)
    echo "PXS_MPI=$PXS_MPI: openmpi or mpich" >&2
    exit 2
    ;;
esac
[ "${CI:-}" = true ] && flags+=(-DPXS_WERROR=ON)
cmake -S . -B "$build" "${flags[@]}" ${PXS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
