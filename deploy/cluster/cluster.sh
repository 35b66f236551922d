#!/usr/bin/env bash
# The gateway's cluster topology on one machine, without containers: Redis (AOF), PostgreSQL, the real opencode on
# the mock LLM, N gateway nodes (the built Release gateway, Production environment) and nginx in front (round robin,
# no sticky sessions, WebSockets, SSE unbuffered). Every process is a child of this script's runs, on 127.0.0.1,
# stopped by pid. Used by the cluster tests, the benchmark and the README. Guide: docs/scaling.md.
#
#   cluster.sh start [--no-aof]   start everything that is not running, wait for every node's /healthz and nginx;
#                                 idempotent; prints FRONT_URL as the last stdout line
#   cluster.sh stop [--clean]     stop everything (nginx, nodes, opencode, Redis, PostgreSQL) by pid; --clean also
#                                 deletes the state dir, Redis' data, the PostgreSQL data and opencode's state
#   cluster.sh status             one line per process; exit 0 when all run, 1 otherwise
#   cluster.sh env [--export]     KEY=VALUE lines (unquoted; the value is everything after the first '='); --export
#                                 prints shell `export KEY='VALUE'` lines instead (eval "$(cluster.sh env --export)")
#   cluster.sh kill-node N        SIGKILL node N (returns once it is gone)
#   cluster.sh term-node N        SIGTERM node N and wait for it to exit (SIGKILL and exit 1 after CLUSTER_TERM_TIMEOUT)
#   cluster.sh start-node N       start node N again: same port, same settings; waits for its /healthz
#   cluster.sh redis-stop         stop Redis (SIGTERM; with AOF it flushes first)
#   cluster.sh redis-start        start Redis again on the same port and data dir, same AOF setting
#   cluster.sh redis-restart      redis-stop, then redis-start
#   cluster.sh opencode-restart   restart opencode (same port, same data; the mock LLM keeps running)
#   cluster.sh postgres-stop      stop PostgreSQL (fast shutdown: open connections are cut)
#   cluster.sh postgres-start     start PostgreSQL again on the same port and data
#
# Environment, read by `start` when the cluster is not running (later commands use what `start` recorded in
# $CLUSTER_STATE_DIR/cluster.conf; `stop` forgets it):
#   CLUSTER_STATE_DIR        state, logs, pids, configs (default <checkout>/.dev/cluster)
#   CLUSTER_NODES            number of gateway nodes (default 3)
#   CLUSTER_PORT_BASE        when set, ports are consecutive from it: nginx = BASE, node n = BASE+n, Redis = BASE+N+1,
#                            PostgreSQL = BASE+N+2, opencode = BASE+N+3, mock LLM = BASE+N+4; otherwise free ports
#   CLUSTER_FRONT_PORT, CLUSTER_NODE_<n>_PORT, CLUSTER_REDIS_PORT, CLUSTER_PG_PORT, CLUSTER_OC_PORT,
#   CLUSTER_MOCK_PORT        one port each (win over CLUSTER_PORT_BASE)
#   CLUSTER_REDIS_AOF        1 (default): appendonly yes, appendfsync everysec; 0: no persistence (same as --no-aof)
#   GATEWAY_NODE_ARGS        extra command-line arguments for every node, split on whitespace
#                            (e.g. "--Gateway:Cluster:LeaseTtl=00:00:03 --Logging:LogLevel:Default=Debug")
#   GATEWAY_NODE_<n>_ARGS    extra arguments for node n only (after GATEWAY_NODE_ARGS)
#   CLUSTER_GATEWAY_DLL      the gateway to run (default src/Gateway/bin/Release/net10.0/Gateway.dll, built when
#                            missing); CLUSTER_BUILD=1 builds it even when present
#   CLUSTER_START_TIMEOUT    seconds to wait for each node's /healthz (default 90)
#   CLUSTER_TERM_TIMEOUT     seconds term-node/stop wait after SIGTERM before SIGKILL (default 45)
#   MOCK_TOKENS, MOCK_DELAY_MS, MOCK_LOG_TOKENS, OC_LOG_LEVEL   passed to deploy/dev/opencode.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
HOST=127.0.0.1
STATE_DIR="${CLUSTER_STATE_DIR:-$ROOT/.dev/cluster}"
case "$STATE_DIR" in /*) ;; *) STATE_DIR="$PWD/$STATE_DIR" ;; esac
CONF="$STATE_DIR/cluster.conf"
MARKER="$STATE_DIR/.opencode-gateway-cluster-state"
NGINX_DIR="$STATE_DIR/nginx"
# This cluster's own PostgreSQL server (a deploy/dev/postgres.sh instance), named after the state dir.
PG_INSTANCE="cluster-$(printf %s "$STATE_DIR" | sha256sum | cut -c1-10)"
TERM_TIMEOUT="${CLUSTER_TERM_TIMEOUT:-45}"
START_TIMEOUT="${CLUSTER_START_TIMEOUT:-90}"

log() { echo "[cluster.sh] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=../lib/process.sh
source "$ROOT/deploy/lib/process.sh"










# free_ports N: N distinct free loopback ports, below the ephemeral range: a node, Redis or opencode started again later
# on its port cannot find it taken by some connection's local port meanwhile.
free_ports() {
  python3 "$ROOT/scripts/free-ports.py" "$1"
}

# ---------------------------------------------------------------- prerequisites
nginx_bin() {
  command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true
}

ensure_prerequisites() {
  command -v python3 >/dev/null || die "python3 is required"
  command -v curl >/dev/null || die "curl is required"
  command -v dotnet >/dev/null || die "the .NET 10 SDK (dotnet) is required"
  local missing=()
  [[ -n "$(nginx_bin)" ]] || missing+=(nginx)
  command -v redis-server >/dev/null || missing+=(redis-server)
  if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    "$ROOT/scripts/install-prerequisites.sh" "${missing[@]}" >&2 || die "installing ${missing[*]} failed"
  fi
}

# ---------------------------------------------------------------- configuration
# cluster.conf: bash assignments written by `start` (printf %q), read by every command.
load_conf() {
  [[ -f "$CONF" ]] || return 1
  # shellcheck disable=SC1090
  source "$CONF"
}

require_conf() {
  load_conf || die "the cluster in $STATE_DIR is not started (no $CONF); run: $0 start"
}

random_hex() { python3 -c 'import secrets,sys; print(secrets.token_hex(int(sys.argv[1])))' "$1"; }

new_conf() {
  local nodes="${CLUSTER_NODES:-3}" aof="${CLUSTER_REDIS_AOF:-1}" i
  [[ "$nodes" =~ ^[1-9][0-9]*$ ]] || die "CLUSTER_NODES must be a positive number (got '$nodes')"
  case "$aof" in 1|0) ;; *) die "CLUSTER_REDIS_AOF must be 1 or 0 (got '$aof')" ;; esac
  [[ "$NO_AOF" == 1 ]] && aof=0

  # Ports: explicit variables, else CLUSTER_PORT_BASE + offset, else free ports.
  local count=$((nodes + 5)) ports=()
  if [[ -n "${CLUSTER_PORT_BASE:-}" ]]; then
    [[ "$CLUSTER_PORT_BASE" =~ ^[0-9]+$ ]] || die "CLUSTER_PORT_BASE must be a number"
    for ((i = 0; i < count; i++)); do ports+=($((CLUSTER_PORT_BASE + i))); done
  else
    read -r -a ports <<<"$(free_ports "$count")"
  fi
  FRONT_PORT="${CLUSTER_FRONT_PORT:-${ports[0]}}"
  NODE_PORTS=()
  for ((i = 1; i <= nodes; i++)); do
    local var="CLUSTER_NODE_${i}_PORT"
    NODE_PORTS+=("${!var:-${ports[$i]}}")
  done
  REDIS_PORT="${CLUSTER_REDIS_PORT:-${ports[$((nodes + 1))]}}"
  PG_PORT="${CLUSTER_PG_PORT:-${ports[$((nodes + 2))]}}"
  OC_PORT="${CLUSTER_OC_PORT:-${ports[$((nodes + 3))]}}"
  MOCK_PORT="${CLUSTER_MOCK_PORT:-${ports[$((nodes + 4))]}}"
  local p
  for p in "$FRONT_PORT" "${NODE_PORTS[@]}" "$REDIS_PORT" "$PG_PORT" "$OC_PORT" "$MOCK_PORT"; do
    [[ "$p" =~ ^[0-9]+$ && "$p" -gt 0 && "$p" -lt 65536 ]] || die "'$p' is not a port number"
  done
  if [[ "$(printf '%s\n' "$FRONT_PORT" "${NODE_PORTS[@]}" "$REDIS_PORT" "$PG_PORT" "$OC_PORT" "$MOCK_PORT" | sort | uniq -d)" ]]; then
    die "two components were given the same port"
  fi

  NODE_COUNT="$nodes"
  REDIS_AOF="$aof"
  SIGNING_KEY="$(random_hex 32)"      # 64 characters: the key is their UTF-8 bytes (>= 32 bytes)
  ADMIN_API_KEY="$(random_hex 32)"
  GATEWAY_DLL="${CLUSTER_GATEWAY_DLL:-$ROOT/src/Gateway/bin/Release/net10.0/Gateway.dll}"
  case "$GATEWAY_DLL" in /*) ;; *) GATEWAY_DLL="$PWD/$GATEWAY_DLL" ;; esac
  read -r -a NODE_ARGS <<<"${GATEWAY_NODE_ARGS:-}"
  for ((i = 1; i <= nodes; i++)); do
    local var="GATEWAY_NODE_${i}_ARGS" extra=()
    read -r -a extra <<<"${!var:-}"
    declare -g -a "NODE_${i}_EXTRA_ARGS=()"
    local -n target="NODE_${i}_EXTRA_ARGS"
    target=("${extra[@]}")
    unset -n target
  done
  {
    echo "# written by deploy/cluster/cluster.sh start; removed by stop"
    local v
    for v in NODE_COUNT FRONT_PORT REDIS_PORT PG_PORT OC_PORT MOCK_PORT REDIS_AOF SIGNING_KEY ADMIN_API_KEY \
      GATEWAY_DLL; do
      printf '%s=%q\n' "$v" "${!v}"
    done
    declare -p NODE_PORTS NODE_ARGS | sed 's/^declare -a /declare -g -a /'
    for ((i = 1; i <= nodes; i++)); do declare -p "NODE_${i}_EXTRA_ARGS" | sed 's/^declare -a /declare -g -a /'; done
  } > "$CONF.tmp"
  chmod 600 "$CONF.tmp"
  mv -f "$CONF.tmp" "$CONF"
}

# Checks that explicitly given settings agree with those of the running cluster.
check_conf_matches() {
  local pair given recorded
  for pair in CLUSTER_NODES:NODE_COUNT CLUSTER_FRONT_PORT:FRONT_PORT CLUSTER_REDIS_PORT:REDIS_PORT \
    CLUSTER_PG_PORT:PG_PORT CLUSTER_OC_PORT:OC_PORT CLUSTER_MOCK_PORT:MOCK_PORT CLUSTER_REDIS_AOF:REDIS_AOF; do
    given="${pair%%:*}"
    recorded="${pair#*:}"
    if [[ -n "${!given:-}" && "${!given}" != "${!recorded}" ]]; then
      die "$given=${!given} but the cluster in $STATE_DIR was started with ${!recorded}; stop it first"
    fi
  done
  if [[ "$NO_AOF" == 1 && "$REDIS_AOF" != 0 ]]; then
    die "--no-aof but the cluster in $STATE_DIR was started with AOF; stop it first"
  fi
  if [[ -n "${CLUSTER_PORT_BASE:-}" && -z "${CLUSTER_FRONT_PORT:-}" && "$CLUSTER_PORT_BASE" != "$FRONT_PORT" ]]; then
    die "CLUSTER_PORT_BASE=$CLUSTER_PORT_BASE but the cluster in $STATE_DIR was started with nginx on $FRONT_PORT; stop it first"
  fi
}

# Derived values (after load_conf).
derive() {
  FRONT_URL="http://$HOST:$FRONT_PORT"
  REDIS_URL="$HOST:$REDIS_PORT"
  REDIS_DIR="$STATE_DIR/redis"
  # nodes × pool must stay below the server's max_connections (200), a node started again included: Npgsql's default of
  # 100 per node let two nodes take every connection during a 1,000-client reconnect, and the third could not start
  PG_CONN="Host=$HOST;Port=$PG_PORT;Username=postgres;Database=gateway;Maximum Pool Size=20"
  OPENCODE_URL="http://$HOST:$OC_PORT"
  MOCK_URL="http://$HOST:$MOCK_PORT"
  OC_STATE_DIR="$STATE_DIR/opencode"
  ADMIN_API_KEY_HASH="$(printf %s "$ADMIN_API_KEY" | sha256sum | cut -d' ' -f1)"
}

node_port() { echo "${NODE_PORTS[$(($1 - 1))]}"; }
node_url() { echo "http://$HOST:$(node_port "$1")"; }
node_pidfile() { echo "$STATE_DIR/node-$1.pid"; }
node_log() { echo "$STATE_DIR/node-$1.log"; }
node_match() { echo "--urls http://$HOST:$(node_port "$1") "; }
node_pid() {
  local pid
  pid="$(read_pid "$(node_pidfile "$1")")"
  if pid_matches "$pid" "Gateway.dll " "$(node_match "$1")"; then echo "$pid"; fi
}

check_node_number() {
  [[ "${1:-}" =~ ^[1-9][0-9]*$ && "$1" -le "$NODE_COUNT" ]] || die "node number must be 1..$NODE_COUNT (got '${1:-}')"
}

# ---------------------------------------------------------------- components
redis_cmd() {
  GATEWAY_DEV_REDIS_PORT="$REDIS_PORT" GATEWAY_DEV_REDIS_DIR="$REDIS_DIR" GATEWAY_DEV_REDIS_AOF="$REDIS_AOF" \
    "$ROOT/deploy/dev/redis.sh" "$@"
}

pg_cmd() {
  GATEWAY_DEV_PG_PORT="$PG_PORT" GATEWAY_DEV_PG_INSTANCE="$PG_INSTANCE" "$ROOT/deploy/dev/postgres.sh" "$@"
}

oc_cmd() {
  OC_PORT="$OC_PORT" MOCK_PORT="$MOCK_PORT" OC_STATE_DIR="$OC_STATE_DIR" "$ROOT/deploy/dev/opencode.sh" "$@"
}

start_postgres() {
  pg_cmd start >/dev/null
  local psql=(psql -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -tAq)
  if [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'gateway'")" != 1 ]]; then
    "${psql[@]}" -c "CREATE DATABASE gateway" >/dev/null
    log "created database 'gateway' on $HOST:$PG_PORT"
  fi
}

ensure_gateway_built() {
  if [[ "${CLUSTER_BUILD:-0}" == 1 || ! -f "$GATEWAY_DLL" ]]; then
    [[ "$GATEWAY_DLL" == "$ROOT/src/Gateway/bin/Release/net10.0/Gateway.dll" ]] \
      || die "$GATEWAY_DLL not found (CLUSTER_GATEWAY_DLL)"
    log "building the gateway (Release)"
    dotnet build "$ROOT/src/Gateway/Gateway.csproj" -c Release -nologo -v quiet >&2 || die "dotnet build failed"
  fi
}

# launch_node N: starts node N (not running), records its pid.
launch_node() {
  local n="$1" port pid logfile
  port="$(node_port "$n")"
  logfile="$(node_log "$n")"
  port_free "$port" || die "port $port (node $n) is in use by another process"
  local -n extra="NODE_${n}_EXTRA_ARGS"
  local args=(dotnet "$GATEWAY_DLL"
    --urls "http://$HOST:$port"
    "--ConnectionStrings:Redis=$REDIS_URL"
    "--ConnectionStrings:Gateway=$PG_CONN"
    "--Gateway:Cluster:NodeId=node-$n"
    "--Gateway:Upstreams:0:Id=local"
    "--Gateway:Upstreams:0:BaseUrl=$OPENCODE_URL"
    "--Gateway:Auth:ApiKeys:0:Name=cluster"
    "--Gateway:Auth:ApiKeys:0:KeyHash=$ADMIN_API_KEY_HASH"
    "--Gateway:Auth:ApiKeys:0:Admin=true"
    "${NODE_ARGS[@]}" "${extra[@]}")
  unset -n extra
  echo "=== $(date -u +%FT%TZ) cluster.sh: starting node-$n on $HOST:$port" >>"$logfile"
  # The signing key goes in through the environment, not the command line (which every local user can read).
  # cwd = the gateway's folder: its content root (appsettings.json).
  pid="$(cd "$(dirname "$GATEWAY_DLL")" && spawn "$logfile" env \
    ASPNETCORE_ENVIRONMENT=Production \
    "Gateway__Auth__Jwt__SigningKey=$SIGNING_KEY" \
    Logging__Console__FormatterName=simple \
    Logging__Console__FormatterOptions__SingleLine=true \
    "Logging__Console__FormatterOptions__TimestampFormat=HH:mm:ss.fff " \
    "${args[@]}")"
  echo "$pid" >"$(node_pidfile "$n")"
  log "node-$n: pid $pid on http://$HOST:$port (log $logfile)"
}

wait_node_healthy() {
  local n="$1" pid url deadline=$((SECONDS + START_TIMEOUT))
  pid="$(read_pid "$(node_pidfile "$n")")"
  url="$(node_url "$n")"
  until [[ "$(http_code "$url/healthz")" == 200 ]]; do
    alive "$pid" || die "node-$n (pid $pid) exited during start-up; last lines of $(node_log "$n"):
$(tail -n 20 "$(node_log "$n")")"
    [[ "$SECONDS" -lt "$deadline" ]] || die "node-$n not healthy after ${START_TIMEOUT}s (log $(node_log "$n"))"
    sleep 0.2
  done
}

# stop_node N SIGNAL: signals node N and waits until it is gone; SIGKILL after TERM_TIMEOUT (then returns 1).
stop_node() {
  local n="$1" signal="$2" pid started=$SECONDS
  pid="$(node_pid "$n")"
  if [[ -z "$pid" ]]; then
    rm -f "$(node_pidfile "$n")"
    log "node-$n: not running"
    return 0
  fi
  kill "-$signal" "$pid"
  if [[ "$signal" == KILL ]]; then
    wait_gone "$pid" 10 || die "node-$n (pid $pid) still there 10 s after SIGKILL"
    log "node-$n: killed (pid $pid)"
  elif ! wait_gone "$pid" "$TERM_TIMEOUT"; then
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || true
    rm -f "$(node_pidfile "$n")"
    log "node-$n: pid $pid did not exit within ${TERM_TIMEOUT}s of SIGTERM; SIGKILL sent"
    return 1
  else
    log "node-$n: exited $((SECONDS - started))s after SIG$signal (pid $pid)"
  fi
  rm -f "$(node_pidfile "$n")"
}

write_nginx_conf() {
  mkdir -p "$NGINX_DIR/tmp"
  local i user_line=""
  # As root the workers would switch to 'nobody', which may not traverse the checkout's path (state, temp files):
  # keep them as the invoking user. This nginx listens on loopback only.
  [[ "$(id -u)" == "0" ]] && user_line="user root;"
  {
    cat <<EOF
# Generated by deploy/cluster/cluster.sh start; rewritten at every start.
$user_line
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log notice;
events { worker_connections 8192; }
http {
  default_type application/octet-stream;
  client_body_temp_path $NGINX_DIR/tmp/client_body;
  proxy_temp_path $NGINX_DIR/tmp/proxy;
  fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
  uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
  scgi_temp_path $NGINX_DIR/tmp/scgi;
  # \$uri, not \$request: browsers' WebSocket and SSE clients put their token in the query (access_token=…).
  log_format cluster '\$time_iso8601 \$remote_addr "\$request_method \$uri \$server_protocol" \$status \$body_bytes_sent '
                     'upstream=\$upstream_addr upstream_status=\$upstream_status rt=\$request_time';
  access_log $NGINX_DIR/access.log cluster;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  upstream gateway_nodes {
    # Round robin, no stickiness. A node that refused a connection is skipped for 5 s.
EOF
    for ((i = 1; i <= NODE_COUNT; i++)); do
      echo "    server $HOST:$(node_port "$i") max_fails=1 fail_timeout=5s;"
    done
    cat <<EOF
    keepalive 32;
  }
  server {
    listen $HOST:$FRONT_PORT;
    # Which node answered (this dev topology only: it shows internal addresses).
    add_header X-Gateway-Upstream \$upstream_addr always;
    # The public API only; the internals (/metrics, /openapi) and anything else stay off the front (404).
    location ~ ^/(hubs/|api/|healthz\$|readyz\$) {
      proxy_pass http://gateway_nodes;
      include $ROOT/deploy/nginx/gateway-proxy.conf;
    }
    location / {
      return 404;
    }
  }
}
EOF
  } >"$NGINX_DIR/nginx.conf"
}

nginx_pid() {
  local pid
  pid="$(read_pid "$NGINX_DIR/master.pid")"
  if pid_matches "$pid" "nginx" "-p $NGINX_DIR/ "; then echo "$pid"; fi
}

# nginx_reloaded MASTER OLD_WORKERS: the master has a worker that is not an old one, and every old one has exited.
nginx_reloaded() {
  local worker
  for worker in $2; do ! alive "$worker" || return 1; done
  [[ -n "$(comm -13 <(sort <<<"$2") <(children_of "$1" | sort))" ]]
}

start_nginx() {
  local bin pid
  bin="$(nginx_bin)"
  write_nginx_conf
  pid="$(nginx_pid)"
  if [[ -n "$pid" ]]; then
    # Running: pick up the (re)written configuration. Return once new workers serve it and the old ones are gone, so
    # that no request after start meets an old worker (its own round robin, its kept-alive connections closing).
    "$bin" -p "$NGINX_DIR/" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log" -t -q >&2 || die "nginx -t failed"
    local old_workers deadline=$((SECONDS + 10))
    old_workers="$(children_of "$pid")"
    kill -HUP "$pid"
    until nginx_reloaded "$pid" "$old_workers"; do
      # An old worker finishes its open requests first: a WebSocket can hold it for long. Not an error.
      if [[ "$SECONDS" -ge "$deadline" ]]; then log "nginx reloaded; old workers still serve open connections"; break; fi
      sleep 0.1
    done
    return 0
  fi
  port_free "$FRONT_PORT" || die "port $FRONT_PORT (nginx) is in use by another process"
  "$bin" -p "$NGINX_DIR/" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log" -t -q >&2 || die "nginx -t failed"
  pid="$(spawn "$NGINX_DIR/stderr.log" "$bin" -p "$NGINX_DIR/" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log")"
  echo "$pid" >"$NGINX_DIR/master.pid"
  local deadline=$((SECONDS + 20))
  until [[ "$(http_code "$FRONT_URL/healthz")" == 200 ]]; do
    alive "$pid" || die "nginx exited: $(tail -n 5 "$NGINX_DIR/error.log" "$NGINX_DIR/stderr.log" 2>/dev/null)"
    [[ "$SECONDS" -lt "$deadline" ]] || die "nginx on $FRONT_URL does not answer /healthz"
    sleep 0.1
  done
  log "nginx: pid $pid on $FRONT_URL (access log $NGINX_DIR/access.log)"
}

stop_nginx() {
  local pid
  pid="$(nginx_pid)"
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid"    # fast shutdown: open WebSockets and SSE streams are cut
    wait_gone "$pid" 20 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 5 || true; }
    log "nginx: stopped (pid $pid)"
  fi
  rm -f "$NGINX_DIR/master.pid"
}

# Before starting anything: the port of each process that is not running yet must be free.
check_ports_free() {
  local busy=() n
  redis_cmd status >/dev/null 2>&1 || port_free "$REDIS_PORT" || busy+=("$REDIS_PORT (Redis)")
  [[ "$(pg_cmd status 2>/dev/null)" == running ]] || port_free "$PG_PORT" || busy+=("$PG_PORT (PostgreSQL)")
  if ! oc_cmd status >/dev/null 2>&1; then
    port_free "$OC_PORT" || busy+=("$OC_PORT (opencode)")
    # A mock LLM already answering there is reused by opencode.sh.
    port_free "$MOCK_PORT" || [[ "$(http_code "$MOCK_URL/health")" == 200 ]] || busy+=("$MOCK_PORT (mock LLM)")
  fi
  for ((n = 1; n <= NODE_COUNT; n++)); do
    [[ -n "$(node_pid "$n")" ]] || port_free "$(node_port "$n")" || busy+=("$(node_port "$n") (node $n)")
  done
  [[ -n "$(nginx_pid)" ]] || port_free "$FRONT_PORT" || busy+=("$FRONT_PORT (nginx)")
  [[ ${#busy[@]} -eq 0 ]] || die "ports in use by other processes: ${busy[*]}; choose others (CLUSTER_PORT_BASE, CLUSTER_*_PORT) or stop them"
}

# ---------------------------------------------------------------- commands
cmd_start() {
  ensure_prerequisites
  mkdir -p "$STATE_DIR"
  touch "$MARKER"
  take_cluster_lock
  if load_conf; then
    check_conf_matches
  else
    new_conf
    load_conf
  fi
  derive
  check_ports_free
  redis_cmd start >/dev/null
  start_postgres
  oc_cmd start >/dev/null
  ensure_gateway_built
  local n started=()
  for ((n = 1; n <= NODE_COUNT; n++)); do
    if [[ -z "$(node_pid "$n")" ]]; then
      launch_node "$n"
      started+=("$n")
    fi
  done
  for n in "${started[@]}"; do wait_node_healthy "$n"; done
  start_nginx
  log "cluster up: $FRONT_URL (nodes: $(for ((n = 1; n <= NODE_COUNT; n++)); do printf '%s ' "$(node_url "$n")"; done)); details: $0 env"
  echo "$FRONT_URL"
}

cmd_stop() {
  local clean=0
  case "${1:-}" in "") ;; --clean) clean=1 ;; *) die "usage: $0 stop [--clean]" ;; esac
  if [[ ! -d "$STATE_DIR" ]]; then
    log "nothing to stop ($STATE_DIR does not exist)"
    return 0
  fi
  take_cluster_lock
  if load_conf; then
    derive
    stop_nginx
    # All nodes at once: SIGTERM, then wait for each.
    local n pids=() status=0
    for ((n = 1; n <= NODE_COUNT; n++)); do
      local pid
      pid="$(node_pid "$n")"
      if [[ -n "$pid" ]]; then kill -TERM "$pid"; fi
      pids+=("$pid")
    done
    for ((n = 1; n <= NODE_COUNT; n++)); do
      local pid="${pids[$((n - 1))]}"
      if [[ -n "$pid" ]] && ! wait_gone "$pid" "$TERM_TIMEOUT"; then
        log "node-$n: pid $pid did not exit within ${TERM_TIMEOUT}s of SIGTERM; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || status=1
      elif [[ -n "$pid" ]]; then
        log "node-$n: stopped (pid $pid)"
      fi
      rm -f "$(node_pidfile "$n")"
    done
    if [[ "$clean" == 1 ]]; then
      oc_cmd stop --clean || status=1
      redis_cmd stop --clean || status=1
      pg_cmd stop --clean || status=1
    else
      oc_cmd stop || status=1
      redis_cmd stop || status=1
      pg_cmd stop || status=1
    fi
    rm -f "$CONF"
    [[ "$status" == 0 ]] || die "some processes did not stop"
  else
    stop_nginx
    log "no $CONF: nothing else recorded to stop"
    # Its PostgreSQL data lives outside the state dir; the port does not matter to stop.
    if [[ "$clean" == 1 ]]; then PG_PORT=0 pg_cmd stop --clean || true; fi
  fi
  if [[ "$clean" == 1 ]]; then
    [[ -f "$MARKER" ]] || die "$STATE_DIR has no $(basename "$MARKER"); not deleting it"
    rm -rf -- "$STATE_DIR"
    log "removed $STATE_DIR"
  fi
}

cmd_status() {
  require_conf
  derive
  local ok=0 n pid line
  if line="$(redis_cmd status 2>/dev/null)"; then echo "redis    $line"; else echo "redis    stopped"; ok=1; fi
  if [[ "$(pg_cmd status 2>/dev/null)" == running ]]; then echo "postgres running $PG_CONN"; else echo "postgres stopped"; ok=1; fi
  if oc_cmd status >/dev/null 2>&1; then
    echo "opencode running $OPENCODE_URL pid $(sed -n 's/^OC_PID=//p' "$OC_STATE_DIR/env")"
  else
    echo "opencode stopped"; ok=1
  fi
  for ((n = 1; n <= NODE_COUNT; n++)); do
    pid="$(node_pid "$n")"
    if [[ -n "$pid" ]]; then echo "node-$n   running $(node_url "$n") pid $pid"; else echo "node-$n   stopped $(node_url "$n")"; ok=1; fi
  done
  pid="$(nginx_pid)"
  if [[ -n "$pid" ]]; then echo "nginx    running $FRONT_URL pid $pid"; else echo "nginx    stopped"; ok=1; fi
  return "$ok"
}

cmd_env() {
  local export=0
  case "${1:-}" in "") ;; --export) export=1 ;; *) die "usage: $0 env [--export]" ;; esac
  require_conf
  derive
  local n lines=() redis_pid pg_dir pg_pid oc_pid="" mock_pid="" oc_log="$OC_STATE_DIR/opencode.log" \
    mock_log="$OC_STATE_DIR/mock.log"
  redis_pid="$(read_pid "$REDIS_DIR/redis.pid")"
  alive "$redis_pid" || redis_pid=""
  pg_dir="$(pg_cmd dir)"
  pg_pid="$(head -n 1 "$pg_dir/data/postmaster.pid" 2>/dev/null || true)"
  alive "$pg_pid" || pg_pid=""
  if [[ -f "$OC_STATE_DIR/env" ]]; then
    oc_pid="$(sed -n 's/^OC_PID=//p' "$OC_STATE_DIR/env")"
    mock_pid="$(sed -n 's/^MOCK_PID=//p' "$OC_STATE_DIR/env")"
    mock_log="$(sed -n 's/^MOCK_LOG=//p' "$OC_STATE_DIR/env")"
  fi
  lines+=("STATE_DIR=$STATE_DIR" "NODE_COUNT=$NODE_COUNT" "FRONT_URL=$FRONT_URL" "FRONT_PORT=$FRONT_PORT")
  for ((n = 1; n <= NODE_COUNT; n++)); do
    lines+=("NODE_${n}_ID=node-$n" "NODE_${n}_URL=$(node_url "$n")" "NODE_${n}_PORT=$(node_port "$n")"
      "NODE_${n}_PID=$(node_pid "$n")" "NODE_${n}_LOG=$(node_log "$n")")
  done
  lines+=("REDIS_PORT=$REDIS_PORT" "REDIS_URL=$REDIS_URL" "REDIS_AOF=$REDIS_AOF" "REDIS_PID=$redis_pid"
    "REDIS_DIR=$REDIS_DIR" "REDIS_LOG=$REDIS_DIR/redis.log"
    "PG_PORT=$PG_PORT" "PG_CONN=$PG_CONN" "PG_PID=$pg_pid" "PG_LOG=$pg_dir/postgres.log"
    "OPENCODE_URL=$OPENCODE_URL" "OPENCODE_PID=$oc_pid" "OPENCODE_LOG=$oc_log" "OPENCODE_STATE_DIR=$OC_STATE_DIR"
    "MOCK_URL=$MOCK_URL" "MOCK_PID=$mock_pid" "MOCK_LOG=$mock_log"
    "NGINX_PID=$(nginx_pid)" "NGINX_CONF=$NGINX_DIR/nginx.conf" "NGINX_ERROR_LOG=$NGINX_DIR/error.log"
    "NGINX_ACCESS_LOG=$NGINX_DIR/access.log"
    "SIGNING_KEY=$SIGNING_KEY" "ADMIN_API_KEY=$ADMIN_API_KEY" "GATEWAY_DLL=$GATEWAY_DLL")
  local line
  for line in "${lines[@]}"; do
    if [[ "$export" == 1 ]]; then
      printf "export %s=%q\n" "${line%%=*}" "${line#*=}"
    else
      printf '%s\n' "$line"
    fi
  done
}

cmd_kill_node() { require_conf; derive; check_node_number "${1:-}"; take_cluster_lock; stop_node "$1" KILL; }
cmd_term_node() { require_conf; derive; check_node_number "${1:-}"; take_cluster_lock; stop_node "$1" TERM; }

cmd_start_node() {
  require_conf
  derive
  check_node_number "${1:-}"
  take_cluster_lock
  if [[ -n "$(node_pid "$1")" ]]; then
    log "node-$1 already running (pid $(node_pid "$1"))"
  else
    launch_node "$1"
    wait_node_healthy "$1"
  fi
  node_url "$1"
}

take_cluster_lock() { take_lock "$STATE_DIR/.lock" 300; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

NO_AOF=0
command="${1:-}"
shift || true
case "$command" in
  start)
    for arg in "$@"; do
      case "$arg" in --no-aof) NO_AOF=1 ;; *) die "usage: $0 start [--no-aof]" ;; esac
    done
    cmd_start ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status ;;
  env) cmd_env "$@" ;;
  kill-node) cmd_kill_node "$@" ;;
  term-node) cmd_term_node "$@" ;;
  start-node) cmd_start_node "$@" ;;
  redis-stop) require_conf; derive; take_cluster_lock; redis_cmd stop ;;
  redis-start) require_conf; derive; take_cluster_lock; redis_cmd start ;;
  redis-restart) require_conf; derive; take_cluster_lock; redis_cmd stop; redis_cmd start ;;
  opencode-restart) require_conf; derive; take_cluster_lock; oc_cmd restart-opencode ;;
  postgres-stop) require_conf; derive; take_cluster_lock; pg_cmd stop ;;
  postgres-start) require_conf; derive; take_cluster_lock; start_postgres ;;
  -h | --help | help) usage 0 ;;
  *) usage ;;
esac
