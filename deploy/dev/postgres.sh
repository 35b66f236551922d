#!/usr/bin/env bash
# A throw-away PostgreSQL for development and tests: data in <repo>/.dev/postgres, 127.0.0.1:55432, trust auth.
#
#   deploy/dev/postgres.sh start   # installs the server if missing, initdb on first use, starts it (idempotent);
#                                  # prints the connection string (Host=…) on stdout as its last line
#   deploy/dev/postgres.sh stop    # stops the server started here, by the pid in its postmaster.pid
#   deploy/dev/postgres.sh status  # prints running/stopped
#   deploy/dev/postgres.sh url     # prints the connection string
#
# PostgreSQL refuses to run as root: as root the server runs as the 'postgres' user and the folder is its own.
# Trust authentication on loopback only: NEVER use this for anything but local tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/.dev/postgres"
DATA="$DIR/data"
LOG="$DIR/postgres.log"
PORT="${GATEWAY_DEV_PG_PORT:-55432}"
HOST=127.0.0.1
CONN="Host=$HOST;Port=$PORT;Username=postgres;Database=postgres"

find_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
    echo "$dir"
  fi
}

as_owner() {
  if [[ "$(id -u)" == "0" ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

install_server() {
  echo "PostgreSQL server binaries not found; installing the 'postgresql' package" >&2
  if [[ "$(id -u)" != "0" ]]; then
    echo "error: run as root (or install the 'postgresql' package) first" >&2
    exit 1
  fi
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
}

running_pid() {
  if [[ -f "$DATA/postmaster.pid" ]]; then
    local pid
    pid="$(head -n 1 "$DATA/postmaster.pid")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      echo "$pid"
    fi
  fi
}

start() {
  local bin
  bin="$(find_bin)"
  if [[ -z "$bin" ]]; then
    install_server
    bin="$(find_bin)"
    [[ -n "$bin" ]] || { echo "error: no initdb after installing postgresql" >&2; exit 1; }
  fi

  mkdir -p "$DIR"
  if [[ "$(id -u)" == "0" ]]; then
    chown postgres:postgres "$DIR"
    chmod 700 "$DIR"
  fi

  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    {
      echo "listen_addresses = '$HOST'"
      echo "port = $PORT"
      echo "unix_socket_directories = '$DIR'"
      echo "max_connections = 200"
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    } | as_owner tee -a "$DATA/postgresql.conf" >/dev/null
  fi

  if [[ -z "$(running_pid)" ]]; then
    # 9>&-: the server must not inherit (and hold forever) this script's lock.
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >&2 9>&- || { tail -n 30 "$LOG" >&2; exit 1; }
  fi
  echo "$CONN"
}

stop() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    echo "stopped" >&2
    return 0
  fi
  kill -INT "$pid"   # fast shutdown of this postmaster only
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "stopped (pid $pid)" >&2; return 0; }
    sleep 0.1
  done
  echo "error: postgres (pid $pid) did not stop within 10 s" >&2
  exit 1
}

mkdir -p "$ROOT/.dev"
exec 9>"$ROOT/.dev/postgres.lock"
flock -w 120 9

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if [[ -n "$(running_pid)" ]]; then echo running; else echo stopped; fi ;;
  url) echo "$CONN" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
