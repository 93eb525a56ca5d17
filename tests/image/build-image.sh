#!/usr/bin/env bash
# Build the spot-extender image from the Dockerfile with buildah: no daemon, vfs storage,
# chroot isolation, all from Debian packages (apt-get installs buildah and debootstrap when
# they are missing and this runs as root).
#
# No container registry is reachable here, so the base image named by the Dockerfile's
# PYTHON_IMAGE (python:3.11-slim by default) is replaced by one made from Debian's own
# packages: debootstrap bookworm with python3, python3-venv and python-is-python3 (Python
# 3.11), committed once as $BASE and kept in buildah's storage.
#
# pip inside the build trusts what pip on this machine trusts: /etc/pip.conf and the CA
# bundle $PIP_CERT names are bind-mounted into the RUN steps only, never into the image.
#
# Prints the image name on stdout; progress goes to stderr.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml")
IMAGE=localhost/spot-extender:$VERSION
BASE=localhost/spot-extender-base:python3.11-bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
B=(buildah --storage-driver vfs)

START_TS=$(date +%s)
log() { printf '==> %s [%ss]\n' "$*" "$(( $(date +%s) - START_TS ))" >&2; }
die() { printf 'build-image.sh: ERROR: %s\n' "$*" >&2; exit 1; }

missing=()
for tool in buildah debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
# debootstrap only recommends the keyring; without it it would install unverified packages.
[[ -s /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
if (( ${#missing[@]} )); then
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null \
    || die "${missing[*]} missing: install them (Debian: apt-get install -y ${missing[*]})"
  log "installing ${missing[*]} from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
fi

if ! "${B[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  rootfs=$(mktemp -d) ctr=""
  # A failed base build leaves neither the rootfs nor a working container (a full copy on vfs).
  trap 'rm -rf "$rootfs"; [[ -z $ctr ]] || "${B[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
  log "making the base image $BASE with debootstrap (once per machine)"
  debootstrap --force-check-gpg --keyring=/usr/share/keyrings/debian-archive-keyring.gpg --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates bookworm "$rootfs" "$DEBIAN_MIRROR" >&2
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  ctr=$("${B[@]}" from scratch)
  mnt=$("${B[@]}" mount "$ctr")
  cp -a "$rootfs"/. "$mnt"/
  "${B[@]}" umount "$ctr" >/dev/null
  "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  "${B[@]}" commit -q "$ctr" "$BASE" >/dev/null
  "${B[@]}" rm "$ctr" >/dev/null
  ctr=""
fi

mounts=()
[[ -f /etc/pip.conf ]] && mounts+=(-v /etc/pip.conf:/etc/pip.conf:ro)
[[ -n ${PIP_CERT:-} && -f $PIP_CERT ]] && mounts+=(-v "$PIP_CERT:/etc/ssl/certs/ca-certificates.crt:ro")
previous=$("${B[@]}" images -q --noheading "$IMAGE" 2>/dev/null || true)
log "building $IMAGE from $ROOT/Dockerfile on $BASE"
"${B[@]}" bud --isolation chroot --layers=false "${mounts[@]}" \
  --build-arg "PYTHON_IMAGE=$BASE" --build-arg "VERSION=$VERSION" -t "$IMAGE" "$ROOT" >&2
# The image this tag named before is untagged now, and vfs keeps a full copy of each:
# remove that one (if no container uses it), nothing else in the shared storage.
current=$("${B[@]}" images -q --noheading "$IMAGE")
if [[ -n $previous && $previous != "$current" ]]; then "${B[@]}" rmi "$previous" >/dev/null 2>&1 || true; fi
log "built $IMAGE"
echo "$IMAGE"
