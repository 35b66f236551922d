#!/usr/bin/env bash
# Runs every test of the project: .NET unit tests, the integration suite on the real opencode (started by
# deploy/dev/opencode.sh, offline, on a mock LLM), the browser end-to-end suite (the demo page in headless Chromium),
# the AI SDK suite (tests/ai-sdk), the docs' snippets (tests/snippets), the .NET client's package (dotnet pack) and the
# TypeScript client's tests and package (npm pack). Installs what they need.
# Prints one closing line "N passed, M failed, K skipped" and exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"
RESULTS="$ROOT/artifacts/test-results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
status=0
step() { echo; echo "==> $*"; }
# check NAME FAILURE COMMAND...: a step that is one test: passed when COMMAND succeeds (RESULTS/NAME.steps.json).
check() {
  local name="$1" failure="$2"
  shift 2
  if "$@"; then
    echo '{"passed":1,"failed":0,"failures":[]}' > "$RESULTS/$name.steps.json"
  else
    printf '{"passed":0,"failed":1,"failures":["%s"]}\n' "$failure" > "$RESULTS/$name.steps.json"
    status=1
  fi
}
# Free loopback ports below the ephemeral range (and the one after each free too, for the mock LLM next to opencode):
# the integration suite starts opencode minutes from now, by when a port from the ephemeral range can be any
# connection's local port (CI failed once so: "Address already in use" for the mock LLM).
read -r free_pg free_oc free_redis free_restart <<<"$(python3 scripts/free-ports.py 4 --with-next)"
export GATEWAY_DEV_PG_PORT="${GATEWAY_DEV_PG_PORT:-$free_pg}"
export GATEWAY_IT_OC_PORT="${GATEWAY_IT_OC_PORT:-$free_oc}"
export GATEWAY_DEV_REDIS_PORT="${GATEWAY_DEV_REDIS_PORT:-$free_redis}"
# The Redis the restart tests of the specification suites stop and start themselves.
export GATEWAY_TEST_REDIS_RESTART_PORT="${GATEWAY_TEST_REDIS_RESTART_PORT:-$free_restart}"

step "prerequisites"
scripts/install-prerequisites.sh || { echo "installing prerequisites failed"; exit 1; }
deploy/dev/opencode.sh install || { echo "installing opencode failed"; exit 1; }

step "PostgreSQL (for the store suite)"
GATEWAY_TEST_POSTGRES="$(deploy/dev/postgres.sh start | tail -n 1)" || { echo "starting PostgreSQL failed"; exit 1; }
export GATEWAY_TEST_POSTGRES
trap 'deploy/dev/postgres.sh stop >/dev/null 2>&1 || true; deploy/dev/redis.sh stop --clean >/dev/null 2>&1 || true' EXIT

step "Redis (for the specification suites of the lifetime manager, history and leases)"
GATEWAY_TEST_REDIS="$(deploy/dev/redis.sh start | tail -n 1)" || { echo "starting Redis failed"; exit 1; }
export GATEWAY_TEST_REDIS

step "dotnet build"
dotnet build Gateway.sln -c Release -nologo -v quiet || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

step ".NET client package: dotnet pack src/Gateway.Client (and the contract it depends on)"
# The solution builds examples/dotnet-console against the package's project; this writes the packages as they would be
# published (README, XML docs, the contract as a dependency of the same version) to artifacts/packages.
pack_dotnet_client() {
  rm -rf artifacts/packages \
    && dotnet pack src/Gateway.Contracts -c Release --no-build -nologo -v quiet -o artifacts/packages \
    && dotnet pack src/Gateway.Client -c Release --no-build -nologo -v quiet -o artifacts/packages
}
check dotnet-client-pack "packing src/Gateway.Client (dotnet pack) failed" pack_dotnet_client

for project in Gateway.Tests Gateway.IntegrationTests; do
  step "dotnet test $project"
  dotnet test "tests/$project" -c Release --no-build -nologo \
    --logger "trx;LogFileName=$project.trx" --logger "console;verbosity=normal" \
    --results-directory "$RESULTS/$project" || status=1
done

step "browser end-to-end (headless Chromium, tests/browser)"
# Builds the demo page, starts its own opencode + mock (ports 4596/4597) and gateway, stops them by pid when done.
# The gateway was just built above. Results: artifacts/test-results/browser.steps.json, artifacts/screenshots/.
E2E_SKIP_DOTNET_BUILD=1 tests/browser/run.sh || status=1

step "deploy: the one-machine cluster (tests/deploy)"
# deploy/cluster/cluster.sh with Redis, PostgreSQL, opencode + mock, three gateway nodes and nginx, on free ports;
# stopped by pid when done. Results: artifacts/test-results/deploy.steps.json.
tests/deploy/run.sh || status=1

step "AI SDK client against /api/ai-sdk/chat (tests/ai-sdk)"
# The real `ai` package's DefaultChatTransport and readUIMessageStream against the gateway process and a real opencode
# (ports 4696/4697); results: artifacts/test-results/ai-sdk.steps.json.
AISDK_SKIP_DOTNET_BUILD=1 tests/ai-sdk/run.sh || status=1

step "docs snippets against ./run.sh (tests/snippets)"
# Every bash block of README.md and docs/ (except those marked no-run) run as written against ./run.sh's gateway;
# results: artifacts/test-results/snippets.steps.json, outputs in artifacts/snippets/.
python3 tests/snippets/run_snippets.py "$RESULTS" || status=1

step "TypeScript client: npm pack, then vitest (React 18 and 19)"
# npm install, not npm ci: it installs the locked versions, but this registry lacks some platform-only optional
# packages (rollup's), which npm then leaves out of the lock, and npm ci refuses such a lock. test/react18: React 18
# for the hooks' tests, installed on its own. npm pack builds dist/ (prepack) and writes the package as it would be
# published, the tarball examples/nextjs installs.
pack_client() {
  (cd clients/ts && npm install --no-audit --no-fund --loglevel=error \
    && npm --prefix test/react18 install --no-audit --no-fund --loglevel=error \
    && npm pack --loglevel=error)
}
check clients-ts-pack "installing or packing clients/ts (npm pack) failed" pack_client
( cd clients/ts && npx tsc -p tsconfig.json \
  && npx vitest run --reporter=default --reporter=json --outputFile="$RESULTS/clients-ts.vitest.json" ) || status=1

step "benchmarks, smoke (keeps bench/ working; never judged on numbers)"
check bench-smoke "bench/run.sh --smoke could not run a scenario" bench/run.sh --smoke

step "summary"
python3 scripts/summarize-results.py "$RESULTS" || status=1
exit $status
