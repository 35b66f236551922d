#!/usr/bin/env bash
# A throw-away Redis for development and tests: redis-server on 127.0.0.1, no password, data in the checkout's .dev/.
#
#   deploy/dev/redis.sh start [--aof|--no-aof]  # installs redis-server if missing (as root), starts it (idempotent:
#                                              # a running one is left as it is); prints 127.0.0.1:PORT as its last
#                                              # stdout line
#   deploy/dev/redis.sh stop [--clean]         # SIGTERM to the recorded pid (SIGKILL after 10 s); --clean also
#                                              # deletes the data dir
#   deploy/dev/redis.sh status                 # "running 127.0.0.1:PORT pid N aof yes|no" (exit 0) or "stopped" (exit 1)
#   deploy/dev/redis.sh url                    # prints 127.0.0.1:PORT
#
# Environment (all optional):
#   GATEWAY_DEV_REDIS_PORT  port on 127.0.0.1 (default 56379)
#   GATEWAY_DEV_REDIS_AOF   1 = append-only file, fsync every second (default), 0 = no persistence at all; --aof and
#                           --no-aof override it. With AOF a stop/start keeps the data; without, Redis starts empty.
#   GATEWAY_DEV_REDIS_DIR   data dir: appendonlydir/, redis.pid, redis.log (default <checkout>/.dev/redis-$PORT)
# Never used for anything but local tests: no password, loopback only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PORT="${GATEWAY_DEV_REDIS_PORT:-56379}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "error: GATEWAY_DEV_REDIS_PORT='$PORT' is not a port number" >&2; exit 2; }
DIR="${GATEWAY_DEV_REDIS_DIR:-$ROOT/.dev/redis-$PORT}"
AOF="${GATEWAY_DEV_REDIS_AOF:-1}"
PIDFILE="$DIR/redis.pid"
LOG="$DIR/redis.log"
ADDRESS="127.0.0.1:$PORT"

log() { echo "$*" >&2; }
die() { echo "error: $*" >&2; exit 1; }
# shellcheck source=../lib/process.sh
source "$ROOT/deploy/lib/process.sh"

install_server() {
  echo "redis-server not found; installing the 'redis-server' package" >&2
  "$ROOT/scripts/install-prerequisites.sh" redis-server >&2
  command -v redis-server >/dev/null || { echo "error: no redis-server after installing it" >&2; exit 1; }
}

# The recorded pid, when that process is alive and is a redis-server (a recycled pid is never signalled).
running_pid() {
  local pid
  pid="$(read_pid "$PIDFILE")"
  if pid_matches "$pid" redis-server; then
    echo "$pid"
  fi
}

ping() {
  redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q '^PONG$'
}

start() {
  command -v redis-server >/dev/null || install_server
  if [[ -n "$(running_pid)" ]]; then
    echo "$ADDRESS"
    return 0
  fi

  local appendonly
  case "$AOF" in
    1|yes|true|on) appendonly=yes ;;
    0|no|false|off) appendonly=no ;;
    *) echo "error: GATEWAY_DEV_REDIS_AOF='$AOF': use 1 or 0" >&2; exit 2 ;;
  esac

  mkdir -p "$DIR"
  rm -f "$PIDFILE"
  [[ ! -f "$LOG" ]] || mv -f "$LOG" "$LOG.1"
  # No RDB snapshots (save ""): AOF is the only persistence, so "no AOF" really means nothing survives a restart.
  # 9>&-: the server must not inherit (and hold forever) this script's lock.
  redis-server --bind 127.0.0.1 --port "$PORT" --dir "$DIR" --daemonize yes --pidfile "$PIDFILE" --logfile "$LOG" \
    --save '' --appendonly "$appendonly" --appendfsync everysec 9>&- \
    || { tail -n 20 "$LOG" >&2 2>/dev/null; exit 1; }

  # PING answers PONG once the AOF is loaded (LOADING before).
  for _ in $(seq 1 300); do
    if [[ -n "$(running_pid)" ]] && ping; then
      echo "redis-server on $ADDRESS, pid $(running_pid), aof $appendonly, dir $DIR" >&2
      echo "$ADDRESS"
      return 0
    fi
    if [[ -f "$PIDFILE" && -z "$(running_pid)" ]]; then
      break
    fi
    sleep 0.1
  done
  echo "error: redis-server did not answer PING on $ADDRESS within 30 s; $LOG:" >&2
  tail -n 20 "$LOG" >&2 2>/dev/null || true
  exit 1
}

stop() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    # SIGTERM: redis flushes the AOF and exits
    if ! signal_and_wait "$pid" TERM 10; then
      echo "redis-server (pid $pid) did not stop within 10 s; SIGKILL" >&2
      signal_and_wait "$pid" KILL 10 || true
    fi
    echo "stopped (pid $pid)" >&2
  else
    echo "stopped" >&2
  fi
  rm -f "$PIDFILE"
  if [[ "$CLEAN" == 1 ]]; then
    rm -rf "$DIR"
  fi
}

status() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    echo stopped
    return 1
  fi
  local aof
  aof="$(redis-cli -h 127.0.0.1 -p "$PORT" config get appendonly 2>/dev/null | sed -n 2p || true)"
  echo "running $ADDRESS pid $pid aof ${aof:-unknown}"
}

command="${1:-}"
shift || true
CLEAN=0
for arg in "$@"; do
  case "$arg" in
    --aof) AOF=1 ;;
    --no-aof) AOF=0 ;;
    --clean) CLEAN=1 ;;
    *) echo "error: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

# start and stop serialise on a lock in the data dir.
lock() { take_lock "$DIR/.lock" 60; }

case "$command" in
  start) lock; start ;;
  stop) lock; stop ;;
  status) status ;;
  url) echo "$ADDRESS" ;;
  *) echo "usage: $0 start [--aof|--no-aof] | stop [--clean] | status | url" >&2; exit 2 ;;
esac
