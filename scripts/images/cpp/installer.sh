#!/bin/bash
# Installer of the sebsfs C++ test build image (scripts/prepare-images), after
# SeBS's dockerfiles/cpp_installer.sh.  Runs as the caller's user (see
# entrypoint.sh) from /mnt/function; its output is the build log and its exit
# status the build's.
#
#   cmake3 -DCMAKE_BUILD_TYPE=Release -S /mnt/function -B /mnt/function/build,
#   then cmake3 --build /mnt/function/build --target aws-lambda-package-benchmark
#   (the stand-in runtime's packager writes build/benchmark.zip).  Like SeBS,
#   the output of each step is kept in build/configuration.log and
#   build/compilation.log; it also goes to stdout, so the build log has it.
set -euo pipefail

src=/mnt/function
build=/mnt/function/build
mkdir -p "$build"

echo "installer: cmake3 -DCMAKE_BUILD_TYPE=Release -S $src -B $build ($(cmake3 --version | head -n 1), $(g++ --version | head -n 1))"
if ! cmake3 -DCMAKE_BUILD_TYPE=Release -S "$src" -B "$build" 2>&1 | tee "$build/configuration.log"; then
	echo "installer: error: CMake configuration failed (build/configuration.log)" >&2
	exit 1
fi
echo "installer: cmake3 --build $build --target aws-lambda-package-benchmark"
if ! VERBOSE=1 cmake3 --build "$build" --target aws-lambda-package-benchmark 2>&1 | tee "$build/compilation.log"; then
	echo "installer: error: CMake build failed (build/compilation.log)" >&2
	exit 1
fi
