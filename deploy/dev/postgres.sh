#!/usr/bin/env bash
# A throw-away PostgreSQL for development and tests on 127.0.0.1, trust auth.
#
#   deploy/dev/postgres.sh start   # installs the server if missing, initdb on first use, starts it (idempotent);
#                                  # prints the connection string (Host=…) on stdout as its last line
#   deploy/dev/postgres.sh stop    # stops the server started here, by the pid in its postmaster.pid;
#                                  # stop --clean also deletes its folder (data, log, socket)
#   deploy/dev/postgres.sh status  # prints running/stopped
#   deploy/dev/postgres.sh url     # prints the connection string
#   deploy/dev/postgres.sh dir     # prints the folder holding the data, the log and the socket
#
# Environment: GATEWAY_DEV_PG_PORT (default 55432); GATEWAY_DEV_PG_INSTANCE (default "default": a second server of
# the same checkout, e.g. deploy/cluster/cluster.sh's, uses another name); GATEWAY_DEV_PG_ROOT (default /var/tmp).
#
# The data lives OUTSIDE the checkout, in $GATEWAY_DEV_PG_ROOT/opencode-gateway-pg-<uid>-<hash of the checkout's
# path>-<instance>: PostgreSQL refuses to run as root, so as root the server runs as the 'postgres' user, which must
# reach its data directory; a checkout under /root or in a `mktemp -d` folder (mode 700) is not traversable by it.
# The port is given at start (not written into postgresql.conf), so one data directory serves any port.
# Trust authentication on loopback only: NEVER use this for anything but local tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log() { echo "$*" >&2; }
die() { echo "error: $*" >&2; exit 1; }
# shellcheck source=../lib/process.sh
source "$ROOT/deploy/lib/process.sh"
INSTANCE="${GATEWAY_DEV_PG_INSTANCE:-default}"
[[ "$INSTANCE" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "error: GATEWAY_DEV_PG_INSTANCE='$INSTANCE': letters, digits, '-', '_' only" >&2; exit 2; }
PORT="${GATEWAY_DEV_PG_PORT:-55432}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "error: GATEWAY_DEV_PG_PORT='$PORT' is not a port number" >&2; exit 2; }
HOST=127.0.0.1
CONN="Host=$HOST;Port=$PORT;Username=postgres;Database=postgres"
CHECKOUT_HASH="$(printf %s "$ROOT" | sha256sum | cut -c1-12)"
DIR="${GATEWAY_DEV_PG_ROOT:-/var/tmp}/opencode-gateway-pg-$(id -u)-$CHECKOUT_HASH-$INSTANCE"
DATA="$DIR/data"
LOG="$DIR/postgres.log"
# The user the server runs as, and who owns $DIR.
if [[ "$(id -u)" == "0" ]]; then OWNER=postgres; else OWNER="$(id -un)"; fi

find_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
    echo "$dir"
  fi
}

# Runs a command as the server's user, from / (the caller's cwd may not be readable by that user).
as_owner() {
  if [[ "$(id -u)" == "0" ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

install_server() {
  echo "PostgreSQL server binaries not found; installing the 'postgresql' package" >&2
  "$ROOT/scripts/install-prerequisites.sh" postgresql >&2
}

# Creates $DIR owned by $OWNER (mode 700), or checks that the existing one is a real directory of $OWNER: the parent
# is world-writable, so a folder someone else put there under this name is refused.
prepare_dir() {
  if [[ -e "$DIR" || -L "$DIR" ]]; then
    if [[ -L "$DIR" || ! -d "$DIR" || "$(stat -c %U "$DIR")" != "$OWNER" ]]; then
      echo "error: $DIR exists but is not a directory owned by '$OWNER'; remove it" >&2
      exit 1
    fi
  elif [[ "$(id -u)" == "0" ]]; then
    install -d -m 700 -o postgres -g postgres "$DIR"
  else
    install -d -m 700 "$DIR"
  fi
  # For people wondering whose folder this is.
  [[ -f "$DIR/checkout" ]] || printf '%s\n' "$ROOT" | as_owner tee "$DIR/checkout" >/dev/null
}

running_pid() {
  local pid
  pid="$(read_pid "$DATA/postmaster.pid")"
  if alive "$pid"; then
    echo "$pid"
  fi
}

# The port the running server listens on (4th line of postmaster.pid).
running_port() {
  sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true
}

start() {
  local bin
  bin="$(find_bin)"
  if [[ -z "$bin" ]]; then
    install_server
    bin="$(find_bin)"
    [[ -n "$bin" ]] || { echo "error: no initdb after installing postgresql" >&2; exit 1; }
  fi

  prepare_dir
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    {
      echo "listen_addresses = '$HOST'"
      echo "unix_socket_directories = '$DIR'"
      echo "max_connections = 200"
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    } | as_owner tee -a "$DATA/postgresql.conf" >/dev/null
  fi

  if [[ -n "$(running_pid)" ]]; then
    if [[ "$(running_port)" != "$PORT" ]]; then
      echo "error: this checkout's PostgreSQL '$INSTANCE' already runs on port $(running_port), not $PORT;" \
        "stop it first (GATEWAY_DEV_PG_PORT=$(running_port) $0 stop)" >&2
      exit 1
    fi
  else
    # 9>&-: the server must not inherit (and hold forever) this script's lock.
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $PORT" -w -t 60 start >&2 9>&- || { tail -n 30 "$LOG" >&2; exit 1; }
  fi
  echo "$CONN"
}

stop() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    echo "stopped" >&2
  else
    # SIGINT: fast shutdown of this postmaster only
    signal_and_wait "$pid" INT 10 || die "postgres (pid $pid) did not stop within 10 s"
    echo "stopped (pid $pid)" >&2
  fi
  if [[ "${1:-}" == "--clean" && -d "$DIR" && ! -L "$DIR" ]]; then
    rm -rf -- "$DIR"
    echo "removed $DIR" >&2
  fi
}

take_lock "$ROOT/.dev/postgres-$INSTANCE.lock" 120

case "${1:-}" in
  start) start ;;
  stop)
    case "${2:-}" in "" | --clean) stop "${2:-}" ;; *) echo "usage: $0 stop [--clean]" >&2; exit 2 ;; esac ;;
  status) if [[ -n "$(running_pid)" ]]; then echo running; else echo stopped; fi ;;
  url) echo "$CONN" ;;
  dir) echo "$DIR" ;;
  *) echo "usage: $0 start|stop [--clean]|status|url|dir" >&2; exit 2 ;;
esac
