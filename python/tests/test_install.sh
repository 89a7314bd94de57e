#!/bin/bash
# Installs the build tree into a scratch prefix and runs the Python example
# against the *installed* package: PYTHONPATH=<prefix>/lib/python3/dist-packages,
# no LD_LIBRARY_PATH (the extension's RPATH finds the library).
# usage: test_install.sh BUILD_DIR SRC_DIR MPIEXEC PYTHON
set -eu
build=$1 src=$2 mpiexec=$3 python=$4
work=$(mktemp -d /tmp/pxs-pyinstall.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
pkg="$work/prefix/lib/python3/dist-packages/proxystream"
ls "$pkg"/__init__.py "$pkg"/_proxystream*.so
unset LD_LIBRARY_PATH
export PYTHONPATH="$work/prefix/lib/python3/dist-packages"
# the extension must load the installed library, not the build tree's
lib=$(ldd "$pkg"/_proxystream*.so | awk '/libproxystream/ {print $3}')
echo "libproxystream: $lib"
case "$lib" in "$work"/prefix/*) ;; *) echo "not the installed library" >&2; exit 1 ;; esac
"$mpiexec" -n 1 "$python" -c \
  "import proxystream, sys; assert proxystream.__file__.startswith('$work/prefix'), proxystream.__file__"
"$mpiexec" -n 3 --oversubscribe "$python" "$src/examples/python/dispatcher.py" \
  --chunks 20 --chunk-bytes 65536
echo "python install test passed"
