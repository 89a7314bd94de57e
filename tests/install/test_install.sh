#!/bin/bash
# Installs the build tree into a scratch prefix, then builds a tiny outside
# project against the *installed* tree twice (find_package and pkg-config)
# and runs each under mpiexec.
# usage: test_install.sh BUILD_DIR SRC_DIR MPIEXEC [mpiexec flags...]
# (the flags: MPIEXEC_PREFLAGS, --oversubscribe for Open MPI, none for MPICH)
set -eu
build=$1 src=$2 mpiexec=$3
shift 3
preflags=("$@")
work=$(mktemp -d /tmp/pxs-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
libdir=$(ls -d "$work"/prefix/lib*/ | head -n1)
libdir=${libdir%/}
# No LD_LIBRARY_PATH: the programs must find the installed library through
# their RUNPATH (CMake's for find_package users, -Wl,-rpath from the .pc
# file for pkg-config users); the scratch prefix is on no search path.
case ":${LD_LIBRARY_PATH:-}:" in *":$libdir:"*) echo "prefix on LD_LIBRARY_PATH"; exit 1;; esac
run() { "$mpiexec" -n 2 "${preflags[@]}" "$@"; }

echo "== find_package(proxystream CONFIG)"
cmake -S "$src/tests/install/consumer" -B "$work/b1" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/b1" >/dev/null
run "$work/b1/consumer"
# the MPI the library was built against, not another one found first (the
# package config's MPI_C_COMPILER hint; docs/DESIGN.md, section "MPICH")
mpilib() { readelf -d "$1" | sed -n 's/.*NEEDED.*\[\(libmpi[a-z]*\.so[.0-9]*\)\].*/\1/p' | sort -u; }
want=$(mpilib "$libdir/libproxystream.so")
[ -n "$want" ] && [ "$(mpilib "$work/b1/consumer")" = "$want" ] ||
  { echo "consumer links '$(mpilib "$work/b1/consumer")', the library '$want'"; exit 1; }
grep -q 'proxystream_MPI_IMPLEMENTATION' "$libdir/cmake/proxystream/proxystreamConfig.cmake"
# and another MPI is refused with a message, not linked half-and-half
case "$want" in
libmpich*) other=$(command -v mpicc.openmpi || true) ;;
*) other=$(command -v mpicc.mpich || true) ;;
esac
if [ -n "$other" ]; then
    if cmake -S "$src/tests/install/consumer" -B "$work/b3" -DCMAKE_PREFIX_PATH="$work/prefix" \
        -DMPI_C_COMPILER="$other" >"$work/b3.log" 2>&1; then
        echo "find_package(proxystream) accepted $other"; exit 1
    fi
    grep -q 'proxystream was built against' "$work/b3.log" ||
        { cat "$work/b3.log"; exit 1; }
fi

echo "== pkg-config proxystream"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists proxystream
cc -std=c11 -o "$work/consumer_pc" "$src/tests/install/consumer/main.c" \
   $(pkg-config --cflags --libs proxystream)
[ "$(mpilib "$work/consumer_pc")" = "$want" ] ||
  { echo "pkg-config consumer links '$(mpilib "$work/consumer_pc")', the library '$want'"; exit 1; }
run "$work/consumer_pc"

echo "== installed programs (RUNPATH)"
readelf -d "$libdir/libproxystream.so" | grep -q 'R.*PATH.*\$ORIGIN' ||
  { echo "installed library has no \$ORIGIN RUNPATH"; exit 1; }
"$mpiexec" -n 4 "${preflags[@]}" "$work/prefix/bin/pxs-demo" --chunks 1 --chunk-size 4K --mode group
echo "install test passed"
