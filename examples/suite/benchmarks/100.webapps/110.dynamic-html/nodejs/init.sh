#!/bin/bash
# Language-level "add benchmark data" script of 110.dynamic-html (nodejs).
# Called as: bash -e init.sh <workdir> <verbose: true|false> <arch: x64|arm64>
# Copies the HTML templates and the vendored tarball that package.json installs.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$1
cp -r "$src/templates" "$out/"
cp -r "$src/vendor" "$out/"
echo "110.dynamic-html/nodejs init: copied templates/ and vendor/ (arch=${3:-x64})"
