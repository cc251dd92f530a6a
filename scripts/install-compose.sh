#!/usr/bin/env bash
# Install Compose v2 (`docker compose`) as a Docker CLI plugin where it is missing.
#
# Debian bookworm ships only Compose v1 (docker-compose 1.29, end-of-life). Debian
# trixie's `docker-compose` package is Compose v2 and holds a static plugin binary,
# so we download that one .deb with a private, throw-away apt configuration (the
# system's sources, lists and pins are not touched, nothing is upgraded), unpack
# it with `dpkg -x`, and copy the binary into the system-wide plugin folder.
#
# Idempotent: exits at once when `docker compose version` already works.
#
# Environment:
#   CLOCKLAB_DEBIAN_MIRROR  Debian mirror (default: the one this machine's apt uses)
#   CLOCKLAB_COMPOSE_SUITE  suite to take the package from (default trixie)
#   CLOCKLAB_PLUGIN_DIR     where to put the plugin (default /usr/local/lib/docker/cli-plugins)
set -euo pipefail

MIRROR=$("$(dirname "$0")/debian-mirror.sh") || exit 1
SUITE="${CLOCKLAB_COMPOSE_SUITE:-trixie}"
PLUGIN_DIR="${CLOCKLAB_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

die() { echo "install-compose: $*" >&2; exit 1; }

if docker compose version >/dev/null 2>&1; then
    echo "install-compose: $(docker compose version) already installed"
    exit 0
fi

command -v docker >/dev/null || die "the docker CLI is not installed (apt-get install docker.io)"
command -v apt-get >/dev/null || die "apt-get not found: this script needs Debian or a derivative;
  elsewhere install Compose v2 from your distribution or https://docs.docker.com/compose/install/"
[[ $(id -u) -eq 0 ]] || die "must run as root to write ${PLUGIN_DIR} (try: sudo $0)"
[[ -r $KEYRING ]] || die "${KEYRING} missing (apt-get install debian-archive-keyring)"

start=$SECONDS
work=$(mktemp -d /tmp/clocklab-compose.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/empty"
echo "deb [signed-by=${KEYRING}] ${MIRROR} ${SUITE} main" >"$work/sources.list"
# The apt sandbox user must be able to read and write the private folders.
chmod -R a+rwX "$work"

# A private apt: only the one source above, its own lists and cache, no pins.
apt_private=(
    -o "Dir::Etc::SourceList=$work/sources.list"
    -o "Dir::Etc::SourceParts=$work/empty"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$work/empty"
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o "Dir::State::status=/dev/null"
    -o "APT::Get::List-Cleanup=false"
    -o "Acquire::Languages=none"
    -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
    -qq
)

echo "install-compose: fetching the ${SUITE} package index from ${MIRROR}"
apt-get "${apt_private[@]}" update \
    || die "apt-get update of ${SUITE} from ${MIRROR} failed (network? set CLOCKLAB_DEBIAN_MIRROR)"

echo "install-compose: downloading docker-compose (Compose v2) from ${SUITE}"
(cd "$work/debs" && apt-get "${apt_private[@]}" download docker-compose) \
    || die "could not download docker-compose from ${SUITE}"
deb=$(ls "$work"/debs/docker-compose_*.deb)
echo "install-compose: unpacking $(basename "$deb")"
dpkg -x "$deb" "$work/root"

binary="$work/root/usr/libexec/docker/cli-plugins/docker-compose"
[[ -x $binary ]] || die "$(basename "$deb") holds no usr/libexec/docker/cli-plugins/docker-compose"

install -D -m 0755 "$binary" "${PLUGIN_DIR}/docker-compose"
docker compose version >/dev/null 2>&1 \
    || die "installed ${PLUGIN_DIR}/docker-compose but \`docker compose version\` still fails"
echo "install-compose: $(docker compose version) installed in ${PLUGIN_DIR} in $((SECONDS - start)) s"
