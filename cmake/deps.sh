# Sourced by run-tests.sh, run-demo.sh and .ci/run: installs the Debian 12
# packages proxystream needs, only if something is missing.
# mpich + libmpich-dev: the second implementation the suite runs under
# (PXS_MPI=mpich ./run-tests.sh; installs next to Open MPI, which stays the
# default mpicc/mpiexec)
PXS_DEB_PACKAGES="build-essential cmake pkg-config openmpi-bin libopenmpi-dev \
libucx-dev libhdf5-openmpi-dev util-linux clang gfortran g++ mpich libmpich-dev \
python3-dev python3-mpi4py python3-numpy python3-pytest"
pxs_install_deps() {
    local missing=()
    for p in $PXS_DEB_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${missing[*]} (run as root or install them)" >&2
        return 1
    fi
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends "${missing[@]}" >&2
}
