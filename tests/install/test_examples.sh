#!/bin/bash
# Installs the build tree into a scratch prefix, then builds one language
# binding's example against the *installed* tree with find_package(proxystream)
# and runs it under mpiexec (the example checks its own results and exits
# non-zero on a failed check).
#   usage: test_examples.sh BUILD_DIR SRC_DIR MPIEXEC fortran|cxx NP [mpiexec flags...]
#   (the flags: MPIEXEC_PREFLAGS, --oversubscribe for Open MPI, none for MPICH)
set -eu
build=$1 src=$2 mpiexec=$3 lang=$4 np=$5
shift 5
preflags=("$@")
work=$(mktemp -d /tmp/pxs-install-$lang.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
libdir=$(ls -d "$work"/prefix/lib*/ | head -n1)
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
case $lang in
    fortran) exe=heat ;;
    cxx) exe=pipeline ;;
    *) echo "unknown language $lang" >&2; exit 2 ;;
esac
echo "== examples/$lang against $work/prefix"
cmake -S "$src/examples/$lang" -B "$work/b" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/b" >/dev/null
"$mpiexec" -n "$np" "${preflags[@]}" "$work/b/$exe"
echo "install example $lang passed"
