#!/usr/bin/env bash
# Build a small local Python base image from Debian's packages, for machines that
# cannot pull `python:3.12-slim` from a registry.
#
#   scripts/base-image.sh [--force]
#
# mmdebstrap's `extract` variant unpacks python3.11-minimal, libpython3.11-stdlib,
# dash and iptables (clocklab's partitions run it in a helper container beside a
# VM) with their dependencies (no maintainer scripts run), then a few
# fix-ups make it a usable runtime: python3/python symlinks, /etc/passwd, group
# and nsswitch.conf, the dynamic linker cache, byte-compiled stdlib, /tmp 1777,
# no docs or locales. The result (~50 MB) is imported as one layer and checked:
# python3 runs as a non-root user on a read-only root, and
# `python3 -m venv --without-pip` works (the Dockerfile relies on it).
#
# Idempotent: does nothing when the image exists, unless --force.
#
# Environment:
#   CLOCKLAB_BASE_IMAGE     tag to build (default clocklab-base:bookworm)
#   CLOCKLAB_DEBIAN_MIRROR  Debian mirror (default: the one this machine's apt uses)
#   CLOCKLAB_DEBIAN_SUITE   Debian suite (default bookworm)
#   CLOCKLAB_BASE_PYTHON    the suite's python3.X (default python3.11; trixie: python3.13)
set -euo pipefail

TAG="${CLOCKLAB_BASE_IMAGE:-clocklab-base:bookworm}"
MIRROR=$("$(dirname "$0")/debian-mirror.sh") || exit 1
SUITE="${CLOCKLAB_DEBIAN_SUITE:-bookworm}"
PY="${CLOCKLAB_BASE_PYTHON:-python3.11}"
PACKAGES="${PY}-minimal,lib${PY}-stdlib,dash,iptables"

NAME=base-image
# shellcheck source=scripts/image-lib.sh
source "$(dirname "$0")/image-lib.sh"
parse_arguments "$@"
require_engine

if [[ $force -eq 0 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "base-image: $TAG exists ($(docker image inspect -f '{{.Id}}' "$TAG" | cut -c1-19)); --force rebuilds it"
    exit 0
fi

require_mmdebstrap


start=$SECONDS
work=$(mktemp -d /tmp/clocklab-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Fix-ups, run as an extract hook with the unpacked tree as $1 (the `extract`
# variant runs no maintainer scripts and no customize hooks).
cat >"$work/fixup.sh" <<EOF
#!/bin/sh
set -eu
root="\$1"
# Suites with merged /usr (trixie on) ship only /usr/...: add the top-level links.
for d in bin sbin lib lib64; do
    [ -e "\$root/\$d" ] || [ ! -d "\$root/usr/\$d" ] || ln -s "usr/\$d" "\$root/\$d"
done
ln -sf ${PY} "\$root/usr/bin/python3"
ln -sf ${PY} "\$root/usr/bin/python"
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"\$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"\$root/etc/group"
printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' \
    'hosts: files dns' 'networks: files' 'protocols: files' 'services: files' >"\$root/etc/nsswitch.conf"
mkdir -p "\$root/root" "\$root/tmp" "\$root/var/tmp" "\$root/run"
chmod 0700 "\$root/root"
chmod 1777 "\$root/tmp" "\$root/var/tmp"
rm -rf "\$root/usr/share/doc" "\$root/usr/share/man" "\$root/usr/share/info" \
    "\$root/usr/share/locale" "\$root/usr/share/lintian" "\$root/usr/share/bug" \
    "\$root/var/cache/apt" "\$root/var/lib/apt/lists"
ldconfig -r "\$root"
# A read-only root cannot cache bytecode: compile the stdlib once, with the
# image's own interpreter.
chroot "\$root" /usr/bin/${PY} -m compileall -q -x '/test/' /usr/lib/${PY} >/dev/null
EOF
chmod +x "$work/fixup.sh"

echo "base-image: mmdebstrap --variant=extract ${SUITE} (${PACKAGES}) from ${MIRROR}"
mmdebstrap --quiet --mode=root --variant=extract --include="$PACKAGES" \
    --extract-hook="$work/fixup.sh \"\$1\"" \
    "$SUITE" "$work/rootfs.tar" "$MIRROR" \
    || die "mmdebstrap failed (is ${MIRROR} reachable? set CLOCKLAB_DEBIAN_MIRROR)"

version=${PY#python}
old=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "base-image: importing as $TAG"
docker import \
    --change "ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin" \
    --change 'CMD ["python3"]' \
    --change "LABEL org.opencontainers.image.title=clocklab-base" \
    --change "LABEL org.opencontainers.image.description=\"Minimal Debian ${SUITE} with ${PY}, built locally by clocklab's scripts/base-image.sh\"" \
    --change "LABEL org.opencontainers.image.base.name=debian:${SUITE}" \
    --change "LABEL org.opencontainers.image.created=${created}" \
    --change "LABEL clocklab.image=base clocklab.python=${version} clocklab.iptables=yes" \
    --message "clocklab base image: ${SUITE} ${PACKAGES}" \
    "$work/rootfs.tar" "$TAG" >/dev/null

echo "base-image: checking $TAG"
docker run --rm --read-only --tmpfs /tmp --user 65534:65534 --network none "$TAG" \
    sh -c "python3 -c 'import asyncio, hashlib, hmac, json, socket, ssl, sys; assert sys.version_info[:2] == (3, ${PY#python3.})' \
           && iptables-nft --version >/dev/null && iptables-legacy --version >/dev/null \
           && python3 -m venv --without-pip /tmp/venv && /tmp/venv/bin/python -c 'import sys; assert sys.prefix == \"/tmp/venv\"'" \
    || die "$TAG was built but fails its smoke test (python3 imports, iptables, venv --without-pip)"

new=$(docker image inspect -f '{{.Id}}' "$TAG")
if [[ -n $old && $old != "$new" ]]; then
    docker image rm "$old" >/dev/null 2>&1 || true  # the image it replaced, unless in use
fi
full=$(docker run --rm --network none "$TAG" python3 -c 'import platform; print(platform.python_version())')
size=$(docker image inspect -f '{{.Size}}' "$TAG")
echo "base-image: built $TAG (Python ${full}, $((size / 1000000)) MB) in $((SECONDS - start)) s"
