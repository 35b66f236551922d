#!/usr/bin/env bash
# Installs the Debian packages the tests and the dev stack need, when they are missing.
#   scripts/install-prerequisites.sh          everything ./test.sh needs
#   scripts/install-prerequisites.sh PKG...   only these Debian packages (e.g. redis-server nginx), when missing
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail
missing=()
if [ $# -gt 0 ]; then
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
else
  command -v python3 >/dev/null || missing+=(python3)
  command -v curl >/dev/null || missing+=(curl)
  command -v git >/dev/null || missing+=(git)
  command -v jq >/dev/null || missing+=(jq)   # the docs' snippets read JSON with it
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
  # The one-machine cluster (deploy/cluster/cluster.sh) and its tests: Redis and nginx, run as child processes.
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  # promtool, which checks and unit-tests deploy/observability's alert rules (tests/Gateway.Tests/Observability).
  command -v promtool >/dev/null || missing+=(prometheus)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  # The packages' own services (nginx on :80, redis on :6379, a PostgreSQL cluster, prometheus on :9090) must not
  # start: the scripts run their own instances as child processes, and only promtool is used of prometheus.
  # policy-rc.d exit 101 = "action forbidden" for invoke-rc.d.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi
if [ $# -eq 0 ]; then
  command -v node >/dev/null || { echo "node (20+) is required" >&2; exit 1; }
  command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required" >&2; exit 1; }
fi
