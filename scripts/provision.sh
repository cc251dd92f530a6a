#!/usr/bin/env bash
# Provision a Debian machine (as root) for clocklab's tests: what `make` cannot
# install into .venv.
#
#   scripts/provision.sh
#
#   engine    dockerd running (installed and started here where it is not)
#   packages  make, python3 venv support, chromium (the report's browser test),
#             mmdebstrap (the local base image)
#   compose   Compose v2 as a Docker CLI plugin (scripts/install-compose.sh)
#   base      the local Python base image (scripts/base-image.sh)
#   neighbours a kernel neighbour (ARP) table for 50-VM trials: each VM keeps an
#             entry per peer, 2,450 in all, beyond the default limit of 1,024
#
# Idempotent: each step does nothing when its part is already there.
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

die() { echo "provision: $*" >&2; exit 1; }
step() { echo; echo "=== provision: $* ==="; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and may start dockerd)"

apt_updated=0
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && { echo "already installed: $*"; return 0; }
    if [[ $apt_updated -eq 0 ]]; then
        apt-get update -qq || die "apt-get update failed"
        apt_updated=1
    fi
    echo "installing: ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

step engine
if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null || apt_install docker.io
    if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid  # left by a dockerd that is gone
    fi
    echo "starting dockerd (log: /var/log/clocklab-dockerd.log)"
    nohup dockerd >/var/log/clocklab-dockerd.log 2>&1 &
    deadline=$((SECONDS + 60))
    until docker info >/dev/null 2>&1; do
        if [[ $SECONDS -ge $deadline ]]; then
            tail -20 /var/log/clocklab-dockerd.log >&2 || true
            die "dockerd did not answer within 60 s"
        fi
        sleep 0.5
    done
fi
docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'

step packages
apt_install make chromium mmdebstrap openssh-client  # ssh: `clocklab cluster join` and its tests
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
python3 --version

step compose
scripts/install-compose.sh

step base
scripts/base-image.sh

step neighbours
for pair in gc_thresh2=4096 gc_thresh3=8192; do
    key=net.ipv4.neigh.default.${pair%%=*} want=${pair#*=}
    if [[ $(sysctl -n "$key") -lt $want ]]; then sysctl -qw "$key=$want"; fi
    echo "$key = $(sysctl -n "$key")"
done
