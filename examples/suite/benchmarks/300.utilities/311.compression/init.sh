#!/bin/bash
# Benchmark-level "add benchmark data" script of 311.compression.
# Called as: bash -e init.sh <workdir> <verbose: true|false> <arch: x64|arm64>
# Copies the data set (resources/) that the function compresses into the package.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$1
cp -r "$src/resources" "$out/"
count=$(find "$out/resources" -type f | wc -l)
echo "311.compression init: copied $count data files (verbose=${2:-false} arch=${3:-x64})"
echo "311.compression init: cwd=$(pwd -P)"
