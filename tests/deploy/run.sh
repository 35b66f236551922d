#!/usr/bin/env bash
# The deploy/ suite: installs its npm deps (the pinned @microsoft/signalr), then runs deploy.test.mjs with node:test.
# The suite starts the one-machine cluster (deploy/cluster/cluster.sh: Redis, PostgreSQL, opencode + mock LLM, the
# gateway nodes, nginx) in .dev/cluster-test and stops it by pid when done (also on SIGINT/SIGTERM).
# Needs the Release gateway (built by cluster.sh when missing), redis-server and nginx (scripts/install-prerequisites.sh).
# Results: artifacts/test-results/deploy.steps.json.
# Env: DEPLOY_TEST_PORT_BASE (consecutive ports from there; default free ports), DEPLOY_TEST_NODES (default 3).
set -uo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
RESULTS="${DEPLOY_TEST_RESULTS:-$ROOT/artifacts/test-results}"
STEPS="$RESULTS/deploy.steps.json"
mkdir -p "$RESULTS"
rm -f "$STEPS"

fail() { # the suite could not run: count it as one failure
  echo "deploy suite: $1" >&2
  printf '{"passed":0,"failed":1,"failures":["deploy suite: %s"]}\n' "$1" > "$STEPS"
  exit 1
}

npm ci --no-audit --no-fund --loglevel=error || fail "npm ci in tests/deploy failed"

# The test file runs in this node process (not a --test child), so a SIGTERM/SIGINT sent to it reaches the suite's
# handlers, which stop the cluster.
node \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=../browser/lib/steps-reporter.mjs --test-reporter-destination="$STEPS" \
  deploy.test.mjs
status=$?
[ -s "$STEPS" ] || fail "node exited $status without a result"
exit $status
