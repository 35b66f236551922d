#!/usr/bin/env bash
# Runs the gateway on its embedded defaults: single node, in-memory fan-out, SQLite store, and, unless you point it at
# an opencode of your own (OPENCODE_URL=http://host:port), a real opencode started offline on a mock LLM by
# deploy/dev/opencode.sh. Builds the demo chat page first when npm is available. Ctrl-C stops everything it started.
#
#   ./run.sh                                   # gateway on http://127.0.0.1:5000 + local opencode on :4096
#   OPENCODE_URL=http://127.0.0.1:4096 ./run.sh   # use an opencode you run yourself
#   GATEWAY_URL=http://0.0.0.0:8080 ./run.sh      # listen elsewhere
set -euo pipefail
cd "$(dirname "$0")"
GATEWAY_URL="${GATEWAY_URL:-http://127.0.0.1:5000}"
started_stack=0

cleanup() {
  if [ "$started_stack" = 1 ]; then
    deploy/dev/opencode.sh stop || true
  fi
}
trap cleanup EXIT INT TERM

if [ -z "${OPENCODE_URL:-}" ]; then
  echo "starting opencode (offline, mock LLM) with deploy/dev/opencode.sh ..." >&2
  OPENCODE_URL="$(deploy/dev/opencode.sh start)"
  started_stack=1
fi

if command -v npm >/dev/null 2>&1; then
  echo "building the demo chat page ..." >&2
  ( cd clients/demo && npm install --no-audit --no-fund --loglevel=error >&2 && npm run build --silent >&2 ) \
    || echo "demo page not built (the gateway still runs)" >&2
fi

dotnet build src/Gateway -c Release -nologo -v quiet >&2
# Development: the store is SQLite under src/Gateway/data, tokens are signed with the development key.
TOKEN="$(scripts/mint-token.py dev)"
cat >&2 <<TXT

  opencode gateway (Development settings: appsettings.Development.json)
    upstream      $OPENCODE_URL
    demo chat     $GATEWAY_URL/?token=$TOKEN
    dev token     $TOKEN   (user "dev"; mint others: scripts/mint-token.py USER [WORKSPACE…])
    SignalR hub   $GATEWAY_URL/hubs/session
    health        $GATEWAY_URL/healthz   $GATEWAY_URL/readyz

TXT
export ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}"
dotnet run --project src/Gateway -c Release --no-build -- --urls "$GATEWAY_URL" \
  --Gateway:Upstreams:0:Id=local --Gateway:Upstreams:0:BaseUrl="$OPENCODE_URL"
