#!/bin/bash
# Entrypoint of the sebsfs test build images (scripts/prepare-images), after the
# build-container contract of SeBS (shared/SEBS.md, section 6).
#
# Runs as root.  Creates the user CONTAINER_USER (default docker_user) with the
# caller's ids CONTAINER_UID / CONTAINER_GID (default: the owner of
# /mnt/function), hands /mnt/function to those ids like SeBS's own images do
# (files it cannot change, e.g. a read-only package.sh mount, are left alone),
# then runs the command (default: /sebs/installer.sh) as that user from
# /mnt/function, so what it creates there is owned by the caller.  HOME is a
# fresh writable /tmp/home.  The exit status is the command's.
set -euo pipefail

workdir=/mnt/function
user="${CONTAINER_USER:-docker_user}"
uid="${CONTAINER_UID:-}"
gid="${CONTAINER_GID:-}"

die() { printf 'entrypoint: error: %s\n' "$*" >&2; exit 125; }

[[ -d "$workdir" ]] || die "$workdir is not mounted"
[[ "$#" -gt 0 ]] || set -- /sebs/installer.sh
[[ -n "$uid" ]] || uid="$(stat -c '%u' "$workdir")"
[[ -n "$gid" ]] || gid="$(stat -c '%g' "$workdir")"
[[ "$uid" =~ ^[0-9]+$ ]] || die "CONTAINER_UID must be a number, not '$uid'"
[[ "$gid" =~ ^[0-9]+$ ]] || die "CONTAINER_GID must be a number, not '$gid'"
[[ "$user" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "CONTAINER_USER '$user' is not a valid user name"

export HOME=/tmp/home
mkdir -p "$HOME"

if [[ "$uid" -eq 0 ]]; then
	# The caller is root: nothing to drop.
	export USER=root LOGNAME=root
	cd "$workdir"
	exec "$@"
fi

# The group: reuse one that has the gid already, else create one named after the user.
if ! getent group "$gid" >/dev/null; then
	if getent group "$user" >/dev/null; then
		groupmod -o -g "$gid" "$user"
	else
		groupadd -o -g "$gid" "$user"
	fi
fi
# The user: -o allows a uid that another account has already.
if getent passwd "$user" >/dev/null; then
	usermod -o -u "$uid" -g "$gid" -d "$HOME" "$user"
else
	useradd -o -M -N -u "$uid" -g "$gid" -d "$HOME" -s /bin/bash "$user"
fi
chown "$uid:$gid" "$HOME"

# Like SeBS's images (chown -R), but only what is not the caller's yet: a no-op
# when the caller owns its work folder.  Files on read-only mounts (package.sh)
# stay as they are: they only need to be readable.
chown "$uid:$gid" "$workdir" || die "cannot hand $workdir to $uid:$gid"
find "$workdir" -mindepth 1 \( ! -uid "$uid" -o ! -gid "$gid" \) -exec chown -h "$uid:$gid" {} + 2>/dev/null || true

export USER="$user" LOGNAME="$user"
cd "$workdir"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
