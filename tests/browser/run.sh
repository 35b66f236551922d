#!/usr/bin/env bash
# The browser end-to-end suite: installs its npm deps (the pinned playwright-core; the browser is Debian's
# /usr/bin/chromium, never downloaded), then runs e2e.test.mjs with node:test. The suite builds the demo page and the
# gateway, starts opencode + mock LLM (ports 4596/4597) and the gateway itself, and stops them by pid when done.
# Results: artifacts/test-results/browser.steps.json; screenshots: artifacts/screenshots/; logs: artifacts/browser/.
# Env: E2E_SKIP_DOTNET_BUILD=1 (the gateway is already built), E2E_OC_PORT, E2E_MOCK_PORT, CHROMIUM.
set -uo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
RESULTS="${E2E_RESULTS:-$ROOT/artifacts/test-results}"
STEPS="$RESULTS/browser.steps.json"
mkdir -p "$RESULTS"
rm -f "$STEPS"
rm -rf "$ROOT/artifacts/screenshots" "$ROOT/artifacts/browser"   # no stale screenshots from an earlier run

fail() { # the suite could not run: count it as one failure
  echo "browser suite: $1" >&2
  printf '{"passed":0,"failed":1,"failures":["browser suite: %s"]}\n' "$1" > "$STEPS"
  exit 1
}

[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || fail "no chromium at ${CHROMIUM:-/usr/bin/chromium} (scripts/install-prerequisites.sh installs it)"
# This lock has no platform-only optional packages, so npm ci accepts it.
npm ci --no-audit --no-fund --loglevel=error || fail "npm ci in tests/browser failed"

# The test file runs in this node process (not a --test child), so a SIGTERM/SIGINT sent to it reaches the suite's
# handlers, which stop what it started.
node \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./lib/steps-reporter.mjs --test-reporter-destination="$STEPS" \
  e2e.test.mjs
status=$?
[ -s "$STEPS" ] || fail "node exited $status without a result"
exit $status
