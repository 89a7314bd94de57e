#!/bin/bash
# Installs what is missing (Debian 12, as root), builds proxystream in
# ./build and runs the demo on this machine: 1 generator -> 1 dispatcher ->
# 2 workers (4 MPI ranks).  Extra arguments go to the demo (pxs-demo --help).
set -euo pipefail
cd "$(dirname "$0")"
. cmake/deps.sh
pxs_install_deps
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
build=${PXS_BUILD_DIR:-build}
cmake -S . -B "$build" >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
exec mpirun -n "${PXS_DEMO_RANKS:-4}" --oversubscribe "$build/apps/pxs-demo" "$@"
