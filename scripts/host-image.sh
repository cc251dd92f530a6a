#!/usr/bin/env bash
# Build the image of a simulated cluster host (`clocklab cluster up`): Debian with
# its own Docker engine, from Debian's packages, offline from any registry.
#
#   scripts/host-image.sh [--force]
#
# mmdebstrap's `minbase` variant installs docker.io, iptables and the tools the
# engine needs, and openssh-server, so that a host can be joined over ssh as a
# real machine is (`clocklab cluster join ssh://root@ADDRESS`); the result
# (~460 MB) is imported as one layer. Each host runs `sshd` and `dockerd` in it
# (the orchestrator passes the arguments). The image holds no ssh host keys:
# each host makes its own at its first start, and root logs in by key only.
#
# The image carries the sha256 of this file (label clocklab.recipe): it is
# rebuilt only when this recipe changes, unless --force.
#
# The Debian mirror is the one this machine's apt uses (scripts/debian-mirror.sh).
#
# Environment:
#   CLOCKLAB_HOST_IMAGE     tag to build (default clocklab-host:bookworm)
#   CLOCKLAB_DEBIAN_MIRROR  Debian mirror (default: the one this machine's apt uses)
#   CLOCKLAB_DEBIAN_SUITE   Debian suite (default bookworm)
set -euo pipefail

TAG="${CLOCKLAB_HOST_IMAGE:-clocklab-host:bookworm}"
SUITE="${CLOCKLAB_DEBIAN_SUITE:-bookworm}"
PACKAGES="docker.io,iptables,ca-certificates,procps,iproute2,openssh-server"
RECIPE=$(sha256sum "$0" | cut -d' ' -f1)

NAME=host-image
# shellcheck source=scripts/image-lib.sh
source "$(dirname "$0")/image-lib.sh"
parse_arguments "$@"
require_engine

current=$(docker image inspect -f '{{index .Config.Labels "clocklab.recipe"}}' "$TAG" 2>/dev/null || true)
if [[ $force -eq 0 && $current == "$RECIPE" ]]; then
    echo "host-image: $TAG is current ($(docker image inspect -f '{{.Id}}' "$TAG" | cut -c8-19)); --force rebuilds it"
    exit 0
fi

require_mmdebstrap

MIRROR=$("$(dirname "$0")/debian-mirror.sh") || exit 1


start=$SECONDS
work=$(mktemp -d /tmp/clocklab-host.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "host-image: mmdebstrap --variant=minbase ${SUITE} (${PACKAGES}) from ${MIRROR}"
mmdebstrap --quiet --mode=root --variant=minbase --include="$PACKAGES" \
    --customize-hook='rm -rf "$1"/usr/share/doc "$1"/usr/share/man "$1"/usr/share/locale "$1"/var/lib/apt/lists/*' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
    "$SUITE" "$work/rootfs.tar" "$MIRROR" \
    || die "mmdebstrap failed (is ${MIRROR} reachable? set CLOCKLAB_DEBIAN_MIRROR)"

old=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
echo "host-image: importing as $TAG"
docker import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change 'CMD ["dockerd"]' \
    --change "LABEL org.opencontainers.image.title=clocklab-host" \
    --change "LABEL org.opencontainers.image.description=\"Debian ${SUITE} with a Docker engine: one host of clocklab's simulated cluster\"" \
    --change "LABEL org.opencontainers.image.base.name=debian:${SUITE}" \
    --change "LABEL clocklab.image=host clocklab.recipe=${RECIPE}" \
    --message "clocklab host image: ${SUITE} ${PACKAGES}" \
    "$work/rootfs.tar" "$TAG" >/dev/null

echo "host-image: checking $TAG"
docker run --rm --network none "$TAG" sh -c 'dockerd --version && iptables --version && ip -V && ssh-keygen -A && mkdir -p /run/sshd && /usr/sbin/sshd -t' >/dev/null \
    || die "$TAG was built but fails its smoke test (dockerd, iptables, ip, sshd)"

new=$(docker image inspect -f '{{.Id}}' "$TAG")
if [[ -n $old && $old != "$new" ]]; then
    docker image rm "$old" >/dev/null 2>&1 || true  # the image it replaced, unless in use
fi
size=$(docker image inspect -f '{{.Size}}' "$TAG")
echo "host-image: built $TAG ($((size / 1000000)) MB) in $((SECONDS - start)) s"
