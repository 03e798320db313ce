#!/bin/bash
# Language-level "add benchmark data" script of 110.dynamic-html (python).
# Called as: bash -e init.sh <workdir> <verbose: true|false> <arch: x64|arm64>
# Copies the HTML templates and the local wheels that requirements.txt installs.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$1
cp -r "$src/templates" "$out/"
cp -r "$src/wheels" "$out/"
echo "110.dynamic-html/python init: copied templates/ and wheels/ (arch=${3:-x64})"
