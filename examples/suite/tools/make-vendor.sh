#!/bin/bash
# Rebuild the local npm tarball of the example suite with `npm pack` (offline).
#   examples/suite/tools/make-vendor.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="$here/../benchmarks/100.webapps/110.dynamic-html/nodejs/vendor"
mkdir -p "$out"
cd "$here/sebs-example-lib"
npm pack --pack-destination "$out" --offline --silent
