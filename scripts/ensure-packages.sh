#!/bin/bash
# Installs the Debian packages named on the command line that are not
# installed yet. Idempotent: when every one is installed (dpkg-query), it
# runs nothing and needs no root. Otherwise, as root: `apt-get update`
# (a failure is not fatal: the lists may be recent enough), then
# `apt-get install --no-install-recommends` of the missing ones, with a
# /usr/sbin/policy-rc.d that forbids starting services while it runs (so
# the docker and containerd packages do not start the system's daemons:
# dockerd would create its docker0 bridge on a private address range; the
# tests start their own daemons). A policy-rc.d that was already there is
# left as it is.
#
#   scripts/ensure-packages.sh [--for WHO] PKG...
#
# WHO names the caller in its messages (default: ensure-packages), e.g.
# `make deps: need root to install: jq runc`. Used by `make deps`,
# `make bench-deps` and scripts/vm-lib.sh (ensure_packages).
set -euo pipefail

who=ensure-packages
if [ "${1:-}" = --for ]; then
    [ $# -ge 2 ] || { echo "usage: $0 [--for WHO] PKG..." >&2; exit 2; }
    who=$2
    shift 2
fi

missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0

if [ "$(id -u)" != 0 ]; then
    echo "$who: need root to install: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "$who: installing: ${missing[*]}" >&2
apt-get update -qq || true

guard=/usr/sbin/policy-rc.d
if [ ! -e "$guard" ]; then
    trap 'rm -f "$guard"' EXIT
    trap 'exit 1' INT TERM HUP
    printf '#!/bin/sh\nexit 101\n' >"$guard"
    chmod 755 "$guard"
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
