#!/bin/bash
# Installer of the sebsfs Java test build images (scripts/prepare-images), after
# SeBS's dockerfiles/java_installer.sh.  Runs as the caller's user (see
# entrypoint.sh) from /mnt/function; its output is the build log and its exit
# status the build's.
#
#   pom.xml: ./pom.xml when present, else the first pom.xml `find -maxdepth 3`
#   lists (SeBS takes the first one find lists); `mvn -DskipTests clean package`
#   in its folder (offline: /etc/maven/settings.xml mirrors every repository to
#   Debian's /usr/share/maven-repo), then its target/function.jar is copied to
#   /mnt/function/function.jar.  The poms read ${env.JAVA_VERSION}, which the
#   image sets.  Then `bash $SCRIPT_FILE .` when that file (package.sh) exists.
set -euo pipefail

cd /mnt/function

pom=""
if [[ -f pom.xml ]]; then
	pom=./pom.xml
else
	pom="$(find . -maxdepth 3 -name pom.xml -type f | sort | head -n 1)"
fi

if [[ -n "$pom" ]]; then
	pom_dir="$(dirname "$pom")"
	echo "installer: mvn -DskipTests clean package in $pom_dir (JAVA_VERSION=${JAVA_VERSION:-unset}; $(javac -version 2>&1))"
	(cd "$pom_dir" && mvn -DskipTests clean package)
	jar="$pom_dir/target/function.jar"
	if [[ ! -f "$jar" ]]; then
		echo "installer: error: the build made no $jar (is <finalName> function?)" >&2
		exit 1
	fi
	cp "$jar" /mnt/function/function.jar
	echo "installer: $jar -> /mnt/function/function.jar"
else
	echo "installer: no pom.xml found"
fi

if [[ -f "${SCRIPT_FILE:-}" ]]; then
	echo "installer: bash $SCRIPT_FILE ."
	bash "$SCRIPT_FILE" .
fi
