#!/bin/bash
# Language-level "add benchmark data" script of 110.dynamic-html (java).
# Called as: bash -e init.sh <workdir> <verbose: true|false> <arch: x64|arm64>
# Copies the HTML templates next to pom.xml, which packs them into the jar.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$1
cp -r "$src/templates" "$out/"
echo "110.dynamic-html/java init: copied templates/ (arch=${3:-x64})"
