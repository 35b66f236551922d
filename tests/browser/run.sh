#!/usr/bin/env bash
# The browser end-to-end suite: installs its npm deps (the pinned playwright-core; the browser is Debian's
# /usr/bin/chromium, never downloaded), then runs e2e.test.mjs, agent-runs.test.mjs, cors.test.mjs and nextjs.test.mjs with node:test. Each builds the demo
# page and the gateway, starts opencode + mock LLM (ports 4596/4597) and the gateway itself, and stops them by pid when
# done. Results: artifacts/test-results/browser*.steps.json; screenshots: artifacts/screenshots/; logs:
# artifacts/browser/. Env: E2E_SKIP_DOTNET_BUILD=1 (the gateway is already built), E2E_OC_PORT, E2E_MOCK_PORT,
# E2E_GATEWAY_PORT (every gateway of the suite started while no other runs; default: a free port), E2E_APP_PORT (the CORS test's second
# origin; default: a free port), E2E_NEXT_PORT (the Next.js example's `next start`; default: a free port), CHROMIUM.
set -uo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
RESULTS="${E2E_RESULTS:-$ROOT/artifacts/test-results}"
STEPS="$RESULTS/browser.steps.json"
mkdir -p "$RESULTS"
rm -f "$RESULTS"/browser*.steps.json
rm -rf "$ROOT/artifacts/screenshots" "$ROOT/artifacts/browser"   # no stale screenshots from an earlier run

fail() { # MESSAGE [STEPS]: the suite could not run: count it as one failure
  echo "browser suite: $1" >&2
  printf '{"passed":0,"failed":1,"failures":["browser suite: %s"]}\n' "$1" > "${2:-$STEPS}"
  exit 1
}

[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || fail "no chromium at ${CHROMIUM:-/usr/bin/chromium} (scripts/install-prerequisites.sh installs it)"
# This lock has no platform-only optional packages, so npm ci accepts it.
npm ci --no-audit --no-fund --loglevel=error || fail "npm ci in tests/browser failed"

# Each test file runs in this node process (not a --test child), so a SIGTERM/SIGINT sent to it reaches the suite's
# handlers, which stop what it started. One steps file per test file (browser.steps.json for e2e.test.mjs).
status=0
run_file() { # FILE STEPS
  node \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=./lib/steps-reporter.mjs --test-reporter-destination="$2" \
    "$1"
  local code=$?
  if [ ! -s "$2" ]; then
    echo "browser suite: node exited $code without a result for $1" >&2
    printf '{"passed":0,"failed":1,"failures":["browser suite: %s exited %s without a result"]}\n' "$1" "$code" > "$2"
  fi
  [ "$code" = 0 ] || status=1
}
run_file e2e.test.mjs "$STEPS"
E2E_SKIP_DOTNET_BUILD=1 run_file agent-runs.test.mjs "$RESULTS/browser-agent-runs.steps.json"   # built by the run above
E2E_SKIP_DOTNET_BUILD=1 run_file cors.test.mjs "$RESULTS/browser-cors.steps.json"   # built by the run above
E2E_SKIP_DOTNET_BUILD=1 run_file nextjs.test.mjs "$RESULTS/browser-nextjs.steps.json"   # examples/nextjs
exit $status
