#!/bin/bash
# Post-install script of 110.dynamic-html (python), run after pip from the work
# folder as: bash package.sh .python_packages/lib/site-packages
# Reads PLATFORM, PYTHON_VERSION and TARGET_ARCHITECTURE like the real ones do.
set -euo pipefail
packages=$1
# Byte code is rebuilt at run time, and pip's direct_url.json records the
# absolute path of the build folder: drop both (and their RECORD lines) so the
# same sources always give the same package.
find "$packages" -depth -type d -name __pycache__ -exec rm -rf {} +
find "$packages" -path '*.dist-info/direct_url.json' -delete
for record in "$packages"/*.dist-info/RECORD; do
  [ -f "$record" ] || continue
  sed -i -e '/\/__pycache__\//d' -e '/\.dist-info\/direct_url\.json,/d' "$record"
done
{
  echo "platform=${PLATFORM:-unknown}"
  echo "python=${PYTHON_VERSION:-unknown}"
  echo "arch=${TARGET_ARCHITECTURE:-unknown}"
} > "$packages/.sebs-packaged"
echo "110.dynamic-html/python package.sh: cleaned $packages for ${PLATFORM:-unknown}"
