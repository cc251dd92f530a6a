# What scripts/base-image.sh and scripts/host-image.sh share: sourced, not run.
# The sourcing script sets NAME (its prefix in messages) before sourcing.

die() { echo "${NAME}: $*" >&2; exit 1; }

# Sets `force` from the arguments: --force rebuilds, --help prints the script's header.
parse_arguments() {
    force=0
    for arg in "$@"; do
        case $arg in
            -f|--force) force=1 ;;
            -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            *) die "unknown argument '$arg' (usage: $0 [--force])" ;;
        esac
    done
}

require_engine() {
    docker info >/dev/null 2>&1 \
        || die "no Docker engine answers (is dockerd running? is $(id -un) allowed to use it?)"
}

# mmdebstrap builds root filesystems as root; installed here where it is missing.
require_mmdebstrap() {
    [[ $(id -u) -eq 0 ]] \
        || die "must run as root: mmdebstrap needs it to create the root filesystem (try: sudo $0)"
    command -v mmdebstrap >/dev/null && return 0
    echo "${NAME}: installing mmdebstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; } \
        || die "could not install mmdebstrap with apt-get"
}
