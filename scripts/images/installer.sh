#!/bin/bash
# Installer of the sebsfs test build images (scripts/prepare-images): installs a
# work folder's dependencies like SeBS's build images do (shared/SEBS.md,
# section 6).  Runs as the caller's user (see entrypoint.sh) from /mnt/function;
# its output is the build log and its exit status the build's.
#
#   python  (SEBS_BUILD_LANGUAGE=python, PYTHON_VERSION set by the image):
#           requirements file = requirements.txt.arm.$PYTHON_VERSION for
#           TARGET_ARCHITECTURE=arm64 when present, else
#           requirements.txt.$PYTHON_VERSION when present, else requirements.txt;
#           pip3 install -r <file> -t .python_packages/lib/site-packages, then
#           `bash package.sh .python_packages/lib/site-packages` when package.sh exists.
#           For TARGET_ARCHITECTURE=arm64, as SeBS's python_installer.sh: pip3 gets
#           --platform manylinux_2_17_aarch64 --only-binary=:all: (this image is x86_64).
#   nodejs  (SEBS_BUILD_LANGUAGE=nodejs): npm install when package.json exists;
#           --arch=<TARGET_ARCHITECTURE> as SeBS's nodejs_installer.sh, and
#           --cpu=<same> (npm 10+ chooses optional platform packages by --cpu).
set -euo pipefail

cd /mnt/function
language="${SEBS_BUILD_LANGUAGE:-}"
site=.python_packages/lib/site-packages

case "$language" in
	python)
		version="${PYTHON_VERSION:-}"
		req=""
		if [[ "${TARGET_ARCHITECTURE:-x64}" == "arm64" && -f "requirements.txt.arm.$version" ]]; then
			req="requirements.txt.arm.$version"
		elif [[ -n "$version" && -f "requirements.txt.$version" ]]; then
			req="requirements.txt.$version"
		elif [[ -f requirements.txt ]]; then
			req=requirements.txt
		fi
		if [[ -n "$req" ]]; then
			# -t (--target) turns pip's PEP 668 check off, so Debian's "externally
			# managed" python needs no --break-system-packages here.
			pip_args=(install --no-cache-dir --disable-pip-version-check --no-warn-script-location)
			if [[ "${TARGET_ARCHITECTURE:-x64}" == "arm64" ]]; then
				pip_args+=(--platform manylinux_2_17_aarch64 --only-binary=:all:)
			fi
			echo "installer: pip3 ${pip_args[*]} -r $req -t $site (python $(python3 -c 'import platform; print(platform.python_version())'), image for $version)"
			pip3 "${pip_args[@]}" -r "$req" -t "$site"
		else
			echo "installer: no requirements file; nothing to install"
		fi
		if [[ -f package.sh ]]; then
			mkdir -p "$site"
			echo "installer: bash package.sh $site"
			bash package.sh "$site"
		fi
		;;
	nodejs)
		arch="${TARGET_ARCHITECTURE:-x64}"
		if [[ "$arch" != x64 && "$arch" != arm64 ]]; then
			echo "installer: error: unsupported TARGET_ARCHITECTURE '$arch'" >&2
			exit 2
		fi
		if [[ -f package.json ]]; then
			echo "installer: npm install --no-audit --no-fund --arch=$arch --cpu=$arch (node $(node --version), npm $(npm --version))"
			npm install --no-audit --no-fund "--arch=$arch" "--cpu=$arch"
		else
			echo "installer: no package.json; nothing to install"
		fi
		;;
	*)
		echo "installer: error: SEBS_BUILD_LANGUAGE is '$language', not python or nodejs" >&2
		exit 2
		;;
esac
