#!/usr/bin/env bash
# Print the Debian mirror this machine's apt uses, for scripts that fetch Debian
# packages outside apt (mmdebstrap, a private apt for one package).
#
#   scripts/debian-mirror.sh
#
# CLOCKLAB_DEBIAN_MIRROR overrides it. Otherwise the first `deb` source whose
# suites are not -security is taken from /etc/apt/sources.list.d/*.sources
# (deb822), then /etc/apt/sources.list.d/*.list and /etc/apt/sources.list (one-line
# form). Exits 1, saying where it looked, when none is configured.
set -euo pipefail

if [[ -n ${CLOCKLAB_DEBIAN_MIRROR:-} ]]; then
    echo "$CLOCKLAB_DEBIAN_MIRROR"
    exit 0
fi

shopt -s nullglob
# deb822: a stanza's Types, URIs and Suites, stanzas separated by blank lines.
for file in /etc/apt/sources.list.d/*.sources; do
    mirror=$(awk '
        function flush() { if (!done && types ~ /(^| )deb( |$)/ && suites !~ /security/ && uris != "") { split(uris, u, " "); print u[1]; done = 1; exit } types = uris = suites = "" }
        /^[[:space:]]*$/ { flush(); next }
        /^[[:space:]]*#/ { next }
        tolower($1) == "types:"  { $1 = ""; types = $0 }
        tolower($1) == "uris:"   { $1 = ""; sub(/^ +/, ""); uris = $0 }
        tolower($1) == "suites:" { $1 = ""; suites = $0 }
        END { flush() }' "$file")
    if [[ -n $mirror ]]; then
        echo "$mirror"
        exit 0
    fi
done
# One-line form: deb [options] URI suite components...
for file in /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
    [[ -r $file ]] || continue
    mirror=$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                                if ($(i + 1) !~ /security/) { print $i; exit } }' "$file")
    if [[ -n $mirror ]]; then
        echo "$mirror"
        exit 0
    fi
done
echo "debian-mirror: no Debian source in /etc/apt/sources.list.d/ or /etc/apt/sources.list;" \
    "set CLOCKLAB_DEBIAN_MIRROR" >&2
exit 1
