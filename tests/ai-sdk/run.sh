#!/usr/bin/env bash
# The AI SDK suite: installs the pinned `ai` package (npm ci), then runs ai-sdk.test.mjs with node:test against the
# gateway (src/Gateway, built Release) and the real opencode + mock LLM of deploy/dev, which it starts on its own ports
# and stops by pid. Result: artifacts/test-results/ai-sdk.steps.json; gateway log: artifacts/browser/gateway-ai-sdk.log.
# Env: AISDK_SKIP_DOTNET_BUILD=1 (the gateway is already built), AISDK_OC_PORT / AISDK_MOCK_PORT (4696 / 4697),
# AISDK_GATEWAY_PORT (default: a free port).
set -uo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
RESULTS="${AISDK_RESULTS:-$ROOT/artifacts/test-results}"
STEPS="$RESULTS/ai-sdk.steps.json"
mkdir -p "$RESULTS"
rm -f "$STEPS"

fail() { # the suite could not run: count it as one failure
  echo "ai-sdk suite: $1" >&2
  printf '{"passed":0,"failed":1,"failures":["ai-sdk suite: %s"]}\n' "$1" > "$STEPS"
  exit 1
}

npm ci --no-audit --no-fund --loglevel=error || fail "npm ci in tests/ai-sdk failed"
if [ "${AISDK_SKIP_DOTNET_BUILD:-0}" != 1 ]; then
  dotnet build "$ROOT/src/Gateway" -c Release -nologo -v quiet || fail "dotnet build src/Gateway failed"
fi

# The stack helpers of the browser suite (tests/browser/lib), on this suite's own ports and state dir.
export E2E_OC_PORT="${AISDK_OC_PORT:-4696}" E2E_MOCK_PORT="${AISDK_MOCK_PORT:-4697}"
export E2E_OC_STATE_DIR="$ROOT/.dev/ai-sdk-opencode"
if [ -n "${AISDK_GATEWAY_PORT:-}" ]; then export E2E_GATEWAY_PORT="$AISDK_GATEWAY_PORT"; else unset E2E_GATEWAY_PORT; fi
node \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=../browser/lib/steps-reporter.mjs --test-reporter-destination="$STEPS" \
  ai-sdk.test.mjs
status=$?
[ -s "$STEPS" ] || fail "node exited $status without a result"
exit $status
