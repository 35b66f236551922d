# Process helpers of the project's shell scripts (deploy/cluster/cluster.sh, deploy/dev/*.sh): start servers detached,
# find them again by pid file, and stop exactly those (never by name: a recycled pid or someone else's server of the
# same program is left alone). Source it after defining log and die.

# cmdline_of PID: the process's command line, NULs as spaces ("--port N " with its trailing space cannot match "--port N0").
cmdline_of() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null || true; }

# alive PID: the process exists and is not a zombie.
alive() {
  local state
  [[ "$1" =~ ^[0-9]+$ ]] || return 1
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# children_of PID: the pids whose parent is PID (a pid's stat line starts with itself; its 4th field is the parent).
children_of() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v parent="$1" '{ pid = $1; sub(/.*\) /, ""); if ($2 == parent) print pid }'
}

# pid_matches PID PATTERN...: alive and its command line contains every PATTERN (guards against pid reuse).
pid_matches() {
  local pid="$1" cmd p; shift
  alive "$pid" || return 1
  cmd="$(cmdline_of "$pid")"
  for p in "$@"; do [[ "$cmd" == *"$p"* ]] || return 1; done
}

# read_pid FILE: the pid on the file's first line (servers such as PostgreSQL write more lines after it), or nothing.
read_pid() { if [[ -f "$1" ]]; then head -n 1 "$1" | tr -dc '0-9'; fi; }

# spawn OUT COMMAND...: runs COMMAND detached (its own session, stdio to OUT, the lock fd 9 closed: a long-lived server
# must not hold the caller's lock for ever); echoes its pid. exec keeps the program's own pid.
spawn() {
  local out="$1"; shift
  if command -v setsid >/dev/null 2>&1; then
    ( exec setsid "$@" </dev/null >>"$out" 2>&1 9>&- ) &
  else
    ( exec nohup "$@" </dev/null >>"$out" 2>&1 9>&- ) &
  fi
  echo $!
}

# wait_gone PID SECONDS: 0 when the process is gone within SECONDS.
wait_gone() {
  local pid="$1" deadline=$((SECONDS + $2))
  while alive "$pid"; do
    [[ "$SECONDS" -lt "$deadline" ]] || return 1
    sleep 0.1
  done
}

# signal_and_wait PID SIGNAL SECONDS: sends SIGNAL; 0 when the process is gone within SECONDS.
signal_and_wait() {
  kill "-$2" "$1" 2>/dev/null || true
  wait_gone "$1" "$3"
}

# stop_pidfile NAME PIDFILE SECONDS PATTERN...: SIGTERM to the recorded pid when it is still ours (PATTERNs), SIGKILL
# after SECONDS; removes the pid file.
stop_pidfile() {
  local name="$1" pidfile="$2" grace="$3" pid; shift 3
  pid="$(read_pid "$pidfile")"
  if [[ -z "$pid" ]]; then
    rm -f "$pidfile"; return 0
  fi
  if ! alive "$pid"; then
    log "$name: pid $pid is not running"
  elif ! pid_matches "$pid" "$@"; then
    log "$name: pid $pid is now '$(cmdline_of "$pid")', not ours; leaving it alone"
  else
    if ! signal_and_wait "$pid" TERM "$grace"; then
      log "$name: pid $pid still alive $grace s after SIGTERM, sending SIGKILL"
      signal_and_wait "$pid" KILL 5 || true
    fi
    log "$name: stopped pid $pid"
  fi
  rm -f "$pidfile"
}

# take_lock FILE [SECONDS]: an exclusive lock on FILE (fd 9) for the rest of this process (taking another file's lock
# gives the previous one up; taking the same one again is a no-op).
take_lock() {
  [[ "${PROCESS_SH_LOCK:-}" == "$1" ]] && return 0
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  flock -w "${2:-300}" 9 || die "could not lock $1 within ${2:-300} s"
  PROCESS_SH_LOCK="$1"
}

# http_code CURL_ARGS...: the HTTP status of one request (2 s at most), or nothing.
http_code() { curl -s -m 2 -o /dev/null -w '%{http_code}' "$@" 2>/dev/null || true; }

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() {
  python3 - "$1" <<'PY'
import socket, sys
with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
PY
}
