#!/bin/bash
# Installs the build tree into a scratch prefix, then builds a tiny outside
# project against the *installed* tree twice (find_package and pkg-config)
# and runs each under mpiexec.  usage: test_install.sh BUILD_DIR SRC_DIR MPIEXEC
set -eu
build=$1 src=$2 mpiexec=$3
work=$(mktemp -d /tmp/pxs-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
libdir=$(ls -d "$work"/prefix/lib*/ | head -n1)
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
run() { "$mpiexec" -n 2 --oversubscribe "$@"; }

echo "== find_package(proxystream CONFIG)"
cmake -S "$src/tests/install/consumer" -B "$work/b1" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/b1" >/dev/null
run "$work/b1/consumer"

echo "== pkg-config proxystream"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists proxystream
cc -std=c11 -o "$work/consumer_pc" "$src/tests/install/consumer/main.c" \
   $(pkg-config --cflags --libs proxystream)
run "$work/consumer_pc"
echo "install test passed"
