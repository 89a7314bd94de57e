#!/bin/bash
# Installs what is missing (Debian 12, as root), builds proxystream in
# ./build and runs the whole test suite with ctest (real MPI ranks through
# mpiexec).  Extra arguments go to ctest, e.g.  ./run-tests.sh -L unit
set -euo pipefail
cd "$(dirname "$0")"
. cmake/deps.sh
pxs_install_deps
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
build=${PXS_BUILD_DIR:-build}
flags=()
[ "${CI:-}" = true ] && flags+=(-DPXS_WERROR=ON)
cmake -S . -B "$build" "${flags[@]}" ${PXS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
