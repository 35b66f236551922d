#!/usr/bin/env bash
# Installs the Debian packages the tests and the dev stack need, when they are missing.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail
missing=()
command -v python3 >/dev/null || missing+=(python3)
command -v curl >/dev/null || missing+=(curl)
command -v git >/dev/null || missing+=(git)
command -v jq >/dev/null || missing+=(jq)   # the docs' snippets read JSON with it
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi
command -v node >/dev/null || { echo "node (20+) is required" >&2; exit 1; }
command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required" >&2; exit 1; }
