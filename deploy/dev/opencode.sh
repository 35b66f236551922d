#!/usr/bin/env bash
# Offline dev/test stack: the real `opencode serve` (pinned in opencode/package.json) in front of
# the mock LLM (mock-llm.py), both on 127.0.0.1, with HOME and XDG dirs isolated in a state dir.
#
#   opencode.sh install            npm-ci the pinned opencode into OC_INSTALL_DIR (quiet on stdout)
#   opencode.sh bin                print the path of the installed opencode binary (installs if needed)
#   opencode.sh start              start mock LLM (unless MOCK_PORT answers) + opencode; print base URL
#   opencode.sh stop [--clean]     stop the recorded pids; --clean also deletes OC_STATE_DIR
#   opencode.sh restart-opencode   restart only opencode (same port, same data); print base URL
#   opencode.sh status             print the state dir's env file, or exit 1 if not running
#
# stdout carries only the documented result (URL, env file, binary path); progress goes to stderr.
# Environment: see README.md next to this file.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
HOST=127.0.0.1

log() { echo "[opencode.sh] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=../lib/process.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib/process.sh"
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required (install it first)"; }

# ---------------------------------------------------------------- configuration
pinned_version() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dependencies"]["opencode-ai"])' \
    "$HERE/opencode/package.json"
}

need python3
need curl
OC_VERSION="$(pinned_version)"
OC_PORT="${OC_PORT:-4096}"
MOCK_PORT="${MOCK_PORT:-4097}"
MOCK_TOKENS="${MOCK_TOKENS:-20}"
MOCK_DELAY_MS="${MOCK_DELAY_MS:-20}"
MOCK_LOG_TOKENS="${MOCK_LOG_TOKENS:-0}"
OC_START_TIMEOUT="${OC_START_TIMEOUT:-60}"
OC_LOG_LEVEL="${OC_LOG_LEVEL:-INFO}"
OC_CONFIG="${OC_CONFIG:-$HERE/opencode.json}"
OC_INSTALL_DIR="${OC_INSTALL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opencode-gateway/opencode-$OC_VERSION}"
OC_STATE_DIR="${OC_STATE_DIR:-$REPO_ROOT/.dev/opencode-$OC_PORT}"
OC_PROJECT_DIR="${OC_PROJECT_DIR:-$OC_STATE_DIR/project}"
abs_path() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
OC_CONFIG="$(abs_path "$OC_CONFIG")"
OC_INSTALL_DIR="$(abs_path "$OC_INSTALL_DIR")"
OC_STATE_DIR="$(abs_path "$OC_STATE_DIR")"
OC_PROJECT_DIR="$(abs_path "$OC_PROJECT_DIR")"
BASE_URL="http://$HOST:$OC_PORT"
MOCK_URL="http://$HOST:$MOCK_PORT"

for v in OC_PORT MOCK_PORT MOCK_TOKENS OC_START_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number (got '${!v}')"
done
[[ "$MOCK_DELAY_MS" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "MOCK_DELAY_MS must be a number (got '$MOCK_DELAY_MS')"

OC_PIDFILE="$OC_STATE_DIR/opencode.pid"
MOCK_PIDFILE="$OC_STATE_DIR/mock.pid"
ENV_FILE="$OC_STATE_DIR/env"
STATE_MARKER="$OC_STATE_DIR/.opencode-gateway-dev-state"
OC_LOG="$OC_STATE_DIR/opencode.log"
MOCK_LOG="$OC_STATE_DIR/mock.log"

curl_auth=()
if [ -n "${OPENCODE_SERVER_PASSWORD:-}" ]; then
  curl_auth=(-u "${OPENCODE_SERVER_USERNAME:-opencode}:$OPENCODE_SERVER_PASSWORD")
fi





# What our processes' command lines contain (guards against pid reuse). cmdline_of turns every
# NUL into a space, so "--port N " (trailing space) cannot match "--port N0".
OC_MATCH=(" serve " "--port $OC_PORT ")
MOCK_MATCH=("mock-llm.py " "--port $MOCK_PORT ")




# ---------------------------------------------------------------- install
lock_hash() { sha256sum "$HERE/opencode/package-lock.json" | cut -d' ' -f1; }

# Candidate binaries, preferred first: the AVX2 build if the CPU has AVX2, else the baseline.
candidate_bins() {
  local dir="$1/node_modules" os arch first second
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) os=unknown ;; esac
  case "$(uname -m)" in x86_64 | amd64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) arch=unknown ;; esac
  first="opencode-$os-$arch"; second="opencode-$os-$arch-baseline"
  if [ "$arch" = x64 ] && ! grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
    first="opencode-$os-$arch-baseline"; second="opencode-$os-$arch"
  fi
  local c
  for c in "$first" "$second" "$first-musl" "$second-musl"; do
    echo "$dir/$c/bin/opencode"
  done
  for c in "$dir"/opencode-*/bin/opencode; do echo "$c"; done
}

select_bin() {
  local c v
  while IFS= read -r c; do
    [ -x "$c" ] || continue
    v="$(timeout 60 "$c" --version 2>/dev/null | tail -n 1 || true)"
    if [ "$v" = "$OC_VERSION" ]; then
      echo "$c"; return 0
    fi
    log "skipping $c (--version said '${v:-nothing}', want $OC_VERSION)"
  done < <(candidate_bins "$1" | awk '!seen[$0]++')
  return 1
}

# Prints the binary path if OC_INSTALL_DIR holds a finished install of the committed lock.
installed_bin() {
  local stamp="$OC_INSTALL_DIR/.installed" hash bin
  [ -f "$stamp" ] || return 1
  { read -r hash && read -r bin; } < "$stamp" || return 1
  [ "$hash" = "$(lock_hash)" ] && [ -x "$bin" ] || return 1
  echo "$bin"
}

cmd_install() {
  installed_bin >/dev/null && return 0
  need npm
  need node
  mkdir -p "$(dirname "$OC_INSTALL_DIR")"
  take_lock "$OC_INSTALL_DIR.lock"
  installed_bin >/dev/null && return 0   # another process finished it while we waited

  local staging="$OC_INSTALL_DIR.staging.$$"
  rm -rf -- "$staging"
  mkdir -p "$staging"
  cp "$HERE/opencode/package.json" "$HERE/opencode/package-lock.json" "$staging/"
  log "installing opencode-ai@$OC_VERSION into $OC_INSTALL_DIR (npm ci)"
  # Scripts are not needed (we pick the platform binary ourselves) and npm 11 skips them anyway.
  if ! (cd "$staging" && npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier \
          --loglevel=error 1>&2); then
    rm -rf -- "$staging"
    die "npm ci failed"
  fi
  local bin
  if ! bin="$(select_bin "$staging")"; then
    rm -rf -- "$staging"
    die "no opencode binary in the npm install answers --version with $OC_VERSION"
  fi
  rm -rf -- "$OC_INSTALL_DIR"
  mv "$staging" "$OC_INSTALL_DIR"
  bin="$OC_INSTALL_DIR${bin#"$staging"}"
  "$bin" --version >/dev/null 2>&1 || die "$bin does not run after moving the install"
  ln -sfn "$bin" "$OC_INSTALL_DIR/opencode"
  printf '%s\n%s\n' "$(lock_hash)" "$bin" > "$OC_INSTALL_DIR/.installed"
  log "opencode $OC_VERSION: $bin"
}

cmd_bin() {
  cmd_install
  installed_bin
}

# ---------------------------------------------------------------- start pieces
ensure_state_dir() {
  mkdir -p "$OC_STATE_DIR"
  OC_STATE_DIR="$(cd "$OC_STATE_DIR" && pwd)"
  touch "$STATE_MARKER"
  mkdir -p "$OC_STATE_DIR"/{home,xdg/config,xdg/data,xdg/cache,xdg/state}
}

ensure_project_dir() {
  if [ ! -d "$OC_PROJECT_DIR" ]; then
    mkdir -p "$OC_PROJECT_DIR"
    echo "scratch project of the opencode-gateway dev stack" > "$OC_PROJECT_DIR/README.txt"
    if command -v git >/dev/null 2>&1; then
      (cd "$OC_PROJECT_DIR" && git init -q . && git add README.txt &&
        git -c user.name=opencode-dev -c user.email=opencode-dev@localhost \
          -c commit.gpgsign=false commit -q -m init) >&2 || log "warning: git init of $OC_PROJECT_DIR failed"
    else
      log "warning: git not found; $OC_PROJECT_DIR is not a git repository"
    fi
  fi
  OC_PROJECT_DIR="$(cd "$OC_PROJECT_DIR" && pwd)"
}

MOCK_PID=""
ensure_mock() {
  local pid health
  pid="$(read_pid "$MOCK_PIDFILE")"
  if [ -n "$pid" ] && ! pid_matches "$pid" "${MOCK_MATCH[@]}"; then
    rm -f "$MOCK_PIDFILE"; pid=""
  fi
  health="$(curl -s -m 2 "$MOCK_URL/health" 2>/dev/null || true)"
  if [[ "$health" == *'"ok"'* ]]; then
    MOCK_PID="$pid"
    if [ -z "$pid" ]; then
      # Someone else's mock (e.g. another OC_PORT's stack): reuse it, and its log.
      local other_log
      other_log="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("log") or "")' "$health" 2>/dev/null || true)"
      if [ -n "$other_log" ]; then MOCK_LOG="$other_log"; fi
      log "mock LLM already answers on $MOCK_URL (not started by this state dir; reusing it)"
    fi
    return 0
  fi
  [ -z "$pid" ] || die "mock LLM pid $pid is running but $MOCK_URL/health does not answer"
  [ "$(http_code "$MOCK_URL/")" = "000" ] || die "port $MOCK_PORT is used by something that is not the mock LLM"

  if [ -s "$MOCK_LOG" ]; then mv -f "$MOCK_LOG" "$MOCK_LOG.1"; fi
  local args=(python3 "$HERE/mock-llm.py" --host "$HOST" --port "$MOCK_PORT"
    --tokens "$MOCK_TOKENS" --delay-ms "$MOCK_DELAY_MS" --log "$MOCK_LOG")
  if [ "$MOCK_LOG_TOKENS" = "1" ]; then args+=(--log-tokens); fi
  pid="$(spawn "$OC_STATE_DIR/mock.stderr" "${args[@]}")"
  echo "$pid" > "$MOCK_PIDFILE"
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(http_code "$MOCK_URL/health")" = "200" ] && break
    kill -0 "$pid" 2>/dev/null || die "mock LLM exited: $(tail -n 5 "$OC_STATE_DIR/mock.stderr")"
    sleep 0.1
  done
  [ "$(http_code "$MOCK_URL/health")" = "200" ] || die "mock LLM does not answer on $MOCK_URL"
  MOCK_PID="$pid"
  log "mock LLM pid $pid on $MOCK_URL (log $MOCK_LOG)"
}

# Environment of the opencode process: isolated HOME/XDG, offline switches.
opencode_env() {
  OPENCODE_ENV=(
    "HOME=$OC_STATE_DIR/home"
    "XDG_CONFIG_HOME=$OC_STATE_DIR/xdg/config"
    "XDG_DATA_HOME=$OC_STATE_DIR/xdg/data"        # opencode.db (SQLite), log/, snapshots
    "XDG_CACHE_HOME=$OC_STATE_DIR/xdg/cache"
    "XDG_STATE_HOME=$OC_STATE_DIR/xdg/state"
    "OPENCODE_CONFIG=$OC_CONFIG"
    "OC_MOCK_BASE_URL=$MOCK_URL/v1"                # {env:OC_MOCK_BASE_URL} in opencode.json
    "OPENCODE_DISABLE_MODELS_FETCH=1"              # the one that matters: no models.dev fetch
    "OPENCODE_DISABLE_AUTOUPDATE=1"
    "OPENCODE_DISABLE_DEFAULT_PLUGINS=1"
    "OPENCODE_DISABLE_LSP_DOWNLOAD=1"
    "OPENCODE_DISABLE_SHARE=1"
    "OPENCODE_DISABLE_CLAUDE_CODE=1"
    "OPENCODE_DISABLE_EXTERNAL_SKILLS=1"
    "npm_config_registry=http://127.0.0.1:9/"      # embedded npm fails fast: no plugin download
  )
}

write_env_file() {
  local oc_bin="$1" oc_pid="$2" tmp="$ENV_FILE.tmp.$$"
  cat > "$tmp" <<EOF
OC_BASE_URL=$BASE_URL
OC_PID=$oc_pid
MOCK_PID=$MOCK_PID
OC_MOCK_URL=$MOCK_URL
OC_LOG=$OC_LOG
MOCK_LOG=$MOCK_LOG
OC_PROJECT_DIR=$OC_PROJECT_DIR
OC_STATE_DIR=$OC_STATE_DIR
OC_DATA_DIR=$OC_STATE_DIR/xdg/data/opencode
OC_PORT=$OC_PORT
MOCK_PORT=$MOCK_PORT
OC_VERSION=$OC_VERSION
OC_BIN=$oc_bin
EOF
  mv -f "$tmp" "$ENV_FILE"
}

wait_ready() {
  local pid="$1" deadline=$((SECONDS + OC_START_TIMEOUT))
  # Requests in the first ~0.5 s after the port opens can hang: every probe has a 2 s cap.
  until [ "$(http_code "${curl_auth[@]}" "$BASE_URL/global/health")" = "200" ]; do
    kill -0 "$pid" 2>/dev/null || die "opencode exited during start-up; last log lines:
$(tail -n 20 "$OC_LOG" 2>/dev/null)"
    [ "$SECONDS" -lt "$deadline" ] || die "opencode not ready after ${OC_START_TIMEOUT}s (log: $OC_LOG)"
    sleep 0.2
  done
}

# Start opencode serve (caller made sure it is not running). $1 = "new" (rotate log) or "append".
launch_opencode() {
  local mode="$1" bin pid
  bin="$(installed_bin)" || die "opencode is not installed (run: $0 install)"
  local code
  code="$(http_code "$BASE_URL/global/health")"
  [ "$code" = "000" ] || die "port $OC_PORT already answers (HTTP $code) but not with a process of $OC_STATE_DIR"
  if [ "$mode" = new ] && [ -s "$OC_LOG" ]; then
    mv -f "$OC_LOG" "$OC_LOG.1"
  fi
  opencode_env
  local args=(env "${OPENCODE_ENV[@]}" "$bin" serve --hostname "$HOST" --port "$OC_PORT"
    --print-logs --log-level "$OC_LOG_LEVEL")
  pid="$(cd "$OC_PROJECT_DIR" && spawn "$OC_LOG" "${args[@]}")"
  echo "$pid" > "$OC_PIDFILE"
  log "opencode pid $pid on $BASE_URL (cwd $OC_PROJECT_DIR, data $OC_STATE_DIR/xdg/data/opencode)"
  wait_ready "$pid"
  write_env_file "$bin" "$pid"
  log "ready: $BASE_URL (details: $ENV_FILE)"
}

# ---------------------------------------------------------------- commands
cmd_start() {
  cmd_install
  ensure_state_dir
  take_lock "$OC_STATE_DIR/.lock"
  ensure_project_dir
  ensure_mock
  local pid
  pid="$(read_pid "$OC_PIDFILE")"
  if [ -n "$pid" ] && pid_matches "$pid" "${OC_MATCH[@]}"; then
    wait_ready "$pid"
    write_env_file "$(installed_bin)" "$pid"
    log "opencode already running (pid $pid)"
  else
    rm -f "$OC_PIDFILE"
    launch_opencode new
  fi
  echo "$BASE_URL"
}

cmd_restart_opencode() {
  [ -f "$ENV_FILE" ] || die "not running (no $ENV_FILE); use: $0 start"
  ensure_state_dir
  take_lock "$OC_STATE_DIR/.lock"
  ensure_project_dir
  ensure_mock
  stop_pidfile opencode "$OC_PIDFILE" 10 "${OC_MATCH[@]}"
  # The port is free as soon as the process is gone; make sure nothing still answers on it.
  local i
  for ((i = 0; i < 50; i++)); do
    [ "$(http_code "$BASE_URL/global/health")" = "000" ] && break
    sleep 0.1
  done
  launch_opencode append
  echo "$BASE_URL"
}

cmd_stop() {
  local clean=0
  case "${1:-}" in
    "") ;;
    --clean) clean=1 ;;
    *) die "usage: $0 stop [--clean]" ;;
  esac
  if [ -d "$OC_STATE_DIR" ]; then
    OC_STATE_DIR="$(cd "$OC_STATE_DIR" && pwd)"
    take_lock "$OC_STATE_DIR/.lock"
    stop_pidfile opencode "$OC_PIDFILE" 10 "${OC_MATCH[@]}"
    stop_pidfile mock-llm "$MOCK_PIDFILE" 10 "${MOCK_MATCH[@]}"
    rm -f "$ENV_FILE"
  fi
  if [ "$clean" = 1 ] && [ -d "$OC_STATE_DIR" ]; then
    [ -f "$STATE_MARKER" ] || die "$OC_STATE_DIR has no $(basename "$STATE_MARKER"); not deleting it"
    rm -rf -- "$OC_STATE_DIR"
    log "removed $OC_STATE_DIR"
  fi
}

cmd_status() {
  [ -f "$ENV_FILE" ] || exit 1
  local pid
  pid="$(sed -n 's/^OC_PID=//p' "$ENV_FILE")"
  pid_matches "$pid" "${OC_MATCH[@]}" || exit 1
  cat "$ENV_FILE"
}

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

case "${1:-}" in
  install) cmd_install ;;
  bin) cmd_bin ;;
  start) cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  restart-opencode) cmd_restart_opencode ;;
  status) cmd_status ;;
  -h | --help | help) usage 0 ;;
  *) usage ;;
esac
