#!/usr/bin/env bash
# Set up a fresh Debian machine for berth: system packages, a virtualenv with berth and its test
# dependencies. Idempotent; run as root. Used by `make setup` (and so by `make demo`/`make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Packages berth itself uses at run time (busybox for base images, debootstrap for Debian images,
# iptables/nftables for bridge NAT, tini for --init, git for build contexts), curl for README's
# tour, and the peers the tests compare against when present (runc, docker.io's dockerd).
PACKAGES="busybox-static debootstrap iproute2 iptables nftables tini git make util-linux procps
          curl runc docker.io"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # docker.io must not start its daemon as a side effect on machines with an init system.
    apt-get install -y -q --no-install-recommends $missing
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test]'
echo "setup: done (.venv ready)"
