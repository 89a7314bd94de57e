#!/bin/bash
# Installs what is missing (Debian 12, as root), builds proxystream in
# ./build and runs the demo on this machine: 1 generator -> 1 dispatcher ->
# 2 workers (4 MPI ranks).  Extra arguments go to the demo (pxs-demo --help).
set -euo pipefail
cd "$(dirname "$0")"
. cmake/deps.sh
pxs_install_deps
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# PXS_MPI=mpich: build against MPICH in ./build-mpich and run with its mpiexec
case "${PXS_MPI:-openmpi}" in
openmpi)
    build=${PXS_BUILD_DIR:-build}
    cmake -S . -B "$build" >/dev/null
    launch=(mpirun -n "${PXS_DEMO_RANKS:-4}" --oversubscribe)
    ;;
mpich)
    build=${PXS_BUILD_DIR:-build-mpich}
    cmake -S . -B "$build" -DMPI_C_COMPILER="$(command -v mpicc.mpich)" \
        -DMPIEXEC_EXECUTABLE="$(command -v mpiexec.mpich)" >/dev/null
    launch=(mpiexec.mpich -n "${PXS_DEMO_RANKS:-4}")
    ;;
*)
    echo "PXS_MPI=$PXS_MPI: openmpi or mpich" >&2
    exit 2
    ;;
esac
cmake --build "$build" -j "$(nproc)" >/dev/null
exec "${launch[@]}" "$build/apps/pxs-demo" "$@"
