#!/usr/bin/env bash
# Gateway benchmarks. One command:
#   bench/run.sh            full run (about 35 minutes here): scenario A (real opencode; direct, gateway JSON and MessagePack
#                           compact, JSON full), joins (200 snapshot joins of one streaming session at once), agent run
#                           (a tool's streamed output and snapshot sizes as a session grows), B (fan-out, both protocols,
#                           gateway and bare broadcaster), idle memory, micro-benchmark
#   bench/run.sh --quick    shorter answers and steps
#   bench/run.sh --smoke    a tiny version of each scenario (< 1 min; for CI; never fails the build on numbers)
#   bench/run.sh [--quick|--smoke] cluster   the cluster scenarios only (one node vs deploy/cluster/cluster.sh's three
#                           nodes behind Redis at the same load, Redis cost per event, takeover after SIGKILL, mass reconnect)
# Results: bench/results/<timestamp>/ (results.json, report.md, *.png, logs) and a copy in bench/results/latest/.
# Ports: opencode 4496, mock LLM 4497, gateways 5496/5497, fake upstreams 5498/5499 (BENCH_OC_PORT, BENCH_MOCK_PORT,
# BENCH_GATEWAY_PORT and BENCH_FAKE_PORT move them; the second gateway and fake take the next port). The cluster scenarios
# run cluster.sh with its state in BENCH_CLUSTER_STATE_DIR (default .dev/bench-cluster) on the 8 consecutive ports from
# BENCH_CLUSTER_PORT_BASE (default 5500: nginx, 3 nodes, Redis, PostgreSQL, opencode, mock LLM).
# The gateway under test: BENCH_GATEWAY_GCSERVER=0 for workstation GC; BENCH_GATEWAY_ENV="NAME=VALUE ..." for other
# runtime settings (given to the gateway process only, not to the load generator). BENCH_BEFORE_DLL=path/Gateway.dll runs
# an earlier build beside this one in scenario B (a before/after in one run, each against the bare broadcaster).
# Not part of the test suite: exit status is non-zero only when a scenario could not run at all.
set -euo pipefail
mode=full
[[ "${1:-}" == --quick ]] && mode=quick
[[ "${1:-}" == --smoke ]] && mode=smoke
only=""   # "cluster": the cluster scenarios only
for arg in "$@"; do [[ $arg == cluster ]] && only=cluster; done
wants() { [[ -z $only || $only == "$1" ]]; }
root=$(cd "$(dirname "$0")/.." && pwd)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$root/bench/results/$stamp-$mode"
mkdir -p "$out"
export OC_PORT=${BENCH_OC_PORT:-4496} MOCK_PORT=${BENCH_MOCK_PORT:-4497}
export OC_STATE_DIR="$out/opencode" MOCK_LOG_TOKENS=1
gw_port=${BENCH_GATEWAY_PORT:-5496}
fake_port=${BENCH_FAKE_PORT:-5498}
cluster_base=${BENCH_CLUSTER_PORT_BASE:-5500}
cluster_state=${BENCH_CLUSTER_STATE_DIR:-$root/.dev/bench-cluster}
log() { echo "[bench] $*" >&2; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# plots: Debian's python3-matplotlib (for /usr/bin/python3; a pyenv python3 first on PATH does not see it)
if ! /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  log "installing python3-matplotlib (Debian) for the plots"
  (apt-get install -y python3-matplotlib >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y python3-matplotlib >/dev/null 2>&1; }) \
    || log "matplotlib unavailable: the report will have tables only"
fi
py=python3; /usr/bin/python3 -c "import matplotlib" 2>/dev/null && py=/usr/bin/python3

log "building (Release)"
dotnet build -c Release "$root/src/Gateway" -nologo -v q >/dev/null
dotnet build -c Release "$root/bench/Gateway.Bench" -nologo -v q >/dev/null
dotnet build -c Release "$root/bench/Gateway.BareBroadcaster" -nologo -v q >/dev/null
gw_dll="$root/src/Gateway/bin/Release/net10.0/Gateway.dll"
bare_dll="$root/bench/Gateway.BareBroadcaster/bin/Release/net10.0/Gateway.BareBroadcaster.dll"
bench=(dotnet "$root/bench/Gateway.Bench/bin/Release/net10.0/Gateway.Bench.dll")

case $mode in
  full)  a_args=(--watchers=1,10,100,500 --tokens=2000 --delay=10)
         b_args=(--configs=1x1000,100x10,1000x1 --step-seconds=4
                 --levels=5000,6250,7500,8750,10000,12500,15000,17500,20000,25000,30000,35000,40000,50000,60000,70000,80000,100000,120000,150000,200000)
         i_args=(--connections=1000,5000,10000)
         j_args=(--joins=200 --rounds=3)
         r_args=(--lines=400 --turns=10,20,30,40,60) ;;
  quick) a_args=(--watchers=1,10,100,500 --tokens=500 --delay=10)
         # A ladder fine enough that a capacity ratio does not jump with a step (each step +12.5-25 %)
         b_args=(--configs=1x1000,100x10,1000x1 --step-seconds=2 --warm-seconds=1
                 --levels=5000,6250,7500,8750,10000,12500,15000,17500,20000,25000,30000,35000,40000,50000,60000,70000,80000,100000,120000,150000)
         i_args=(--connections=1000,5000)
         j_args=(--joins=200 --rounds=1)
         r_args=(--lines=400 --turns=10,30,60) ;;
  smoke) a_args=(--watchers=1,5 --tokens=30 --delay=10 --idle-seconds=0.5 --warmup-tokens=5)
         b_args=(--configs=1x20,5x4 --step-seconds=1 --warm-seconds=0.5 --levels=500,1000 --low-rate=20 --max-level=1000)
         i_args=(--connections=50,100 --sessions=5)
         j_args=(--joins=20 --rounds=1 --tokens=200 --streamed-before=20)
         r_args=(--lines=40 --turns=2,3) ;;
esac
case $mode in   # the cluster scenarios (the smoke leaves killed nodes down: its takeover runs on the two left)
  full)  c_args=(--sessions=10 --watchers=30 --rates=20,50 --step-seconds=10 --takeovers=3
                 --reconnect-clients=1000 --reconnect-sessions=20 --reconnect-rate=10 --reconnect-kill=other,holder) ;;
  quick) c_args=(--rates=50 --step-seconds=5 --takeovers=2 --reconnect-kill=holder) ;;
  smoke) c_args=(--sessions=2 --watchers=6 --rates=20 --jit-warm-seconds=1 --warm-seconds=1 --step-seconds=2 --redis-idle-seconds=1
                 --takeovers=1 --takeover-sessions=2 --takeover-watchers=3 --reconnect-clients=30 --reconnect-sessions=3
                 --reconnect-kill=other --reconnect-settle-seconds=1 --reconnect-baseline-seconds=1 --reconnect-timeout=30 --restart-killed=false) ;;
esac

# --- machine -------------------------------------------------------------------------------------------------
oc_bin=$(OC_PORT=$OC_PORT "$root/deploy/dev/opencode.sh" bin 2>/dev/null || true)
python3 - "$out/machine.json" "$mode" "$oc_bin" <<'PY'
import json, os, subprocess, sys, platform
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception: return ""
cpu = next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1])//1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
json.dump({"mode": sys.argv[2], "nproc": os.cpu_count(), "cpu": cpu, "memoryMB": mem, "kernel": platform.release(),
           "loadavgAtStart": open("/proc/loadavg").read().split()[:3],
           "dotnet": sh("dotnet --version"), "node": sh("node --version"),
           "opencode": sh(f"'{sys.argv[3]}' --version") if sys.argv[3] else "?", "gitCommit": sh("git rev-parse --short HEAD"),
           "date": sh("date -u +%FT%TZ")}, open(sys.argv[1], "w"), indent=2)
PY
log "machine: $(tr -d '\n' < "$out/machine.json" | tr -s ' ')"

status=0
cleanup() { OC_PORT=$OC_PORT "$root/deploy/dev/opencode.sh" stop >/dev/null 2>&1 || true; }
stop_cluster() { CLUSTER_STATE_DIR="$cluster_state" "$root/deploy/cluster/cluster.sh" stop >/dev/null 2>&1 || true; }
trap 'cleanup; stop_cluster' EXIT

if wants single; then   # the single-node scenarios: A, B, idle memory (and the micro-benchmark below)
# --- scenario A: real opencode, direct vs gateway --------------------------------------------------------------
log "scenario A: starting opencode on :$OC_PORT (mock :$MOCK_PORT)"
if "$root/deploy/dev/opencode.sh" start >/dev/null; then
  "${bench[@]}" scenario-a --oc-env="$OC_STATE_DIR/env" --oc-restart="'$root/deploy/dev/opencode.sh' restart-opencode" \
    --gateway-dll="$gw_dll" --gateway-port="$gw_port" \
    --log-dir="$out" --out="$out/scenario-a.json" "${a_args[@]}" || { log "scenario A failed"; status=1; }
  log "joins: many snapshot joins of one streaming session at once"
  "${bench[@]}" joins --oc-env="$OC_STATE_DIR/env" --gateway-dll="$gw_dll" --gateway-port="$gw_port" \
    --log-dir="$out" --out="$out/joins.json" "${j_args[@]}" || { log "joins failed"; status=1; }
  log "agent run: a tool's streamed output per watcher, snapshot sizes as a session grows"
  "${bench[@]}" agent-run --oc-env="$OC_STATE_DIR/env" --gateway-dll="$gw_dll" --gateway-port="$gw_port" \
    --log-dir="$out" --out="$out/agent-run.json" "${r_args[@]}" || { log "agent run failed"; status=1; }
else
  log "opencode did not start: scenario A skipped"; status=1
fi
cleanup
cp "$OC_STATE_DIR"/{opencode.log,mock.log} "$out/" 2>/dev/null || true

# --- scenario B: fan-out on one node, fake upstream -------------------------------------------------------------
log "scenario B: fan-out"
# each configuration in both protocols, on the gateway and on the bare broadcaster (the machine's limit) alike
"${bench[@]}" fanout --gateway-dll="$gw_dll" ${BENCH_BEFORE_DLL:+--before-dll="$BENCH_BEFORE_DLL"} --bare-dll="$bare_dll" --protocols=json,msgpack --gateway-port="$gw_port" \
  --fake-port=$((fake_port + 1)) --log-dir="$out" --out="$out/scenario-b.json" "${b_args[@]}" || { log "scenario B failed"; status=1; }
log "scenario B: idle connections"
"${bench[@]}" idle --gateway-dll="$gw_dll" --gateway-port=$((gw_port + 1)) --fake-port="$fake_port" --log-dir="$out" \
  --out="$out/idle.json" "${i_args[@]}" || { log "idle memory failed"; status=1; }
fi

# --- cluster: the same load on one node and on cluster.sh's three nodes; Redis cost; takeover; mass reconnect ------
if wants cluster; then
  log "cluster scenarios (cluster.sh state $cluster_state, ports $cluster_base-$((cluster_base + 7)))"
  "${bench[@]}" cluster --gateway-dll="$gw_dll" --cluster-sh="$root/deploy/cluster/cluster.sh" --state-dir="$cluster_state" \
    --port-base="$cluster_base" --gateway-port="$gw_port" --fake-port="$fake_port" --log-dir="$out" --out="$out/cluster.json" \
    "${c_args[@]}" || { log "cluster scenarios failed"; status=1; }
  stop_cluster
  for f in "$cluster_state"/node-*.log; do if [[ -f $f ]]; then cp "$f" "$out/cluster-$(basename "$f")"; fi; done
fi

# --- micro-benchmark (allocations per event on the pump's path) -------------------------------------------------
if [[ $mode != smoke ]] && wants single; then
  log "micro-benchmark (BenchmarkDotNet)"
  (cd "$root/bench/Gateway.MicroBench" && dotnet run -c Release -- --filter '*' --artifacts "$out/microbench" \
     ${BENCH_MICRO_ARGS:-} >"$out/microbench.log" 2>&1) || { log "micro-benchmark failed (see microbench.log)"; }
fi

rm -rf "$OC_STATE_DIR"
"$py" "$root/bench/report.py" "$out" || { log "report failed"; status=1; }
# latest/: the small, committed part of a FULL run (json, report, plots, BenchmarkDotNet summary), which
# docs/benchmarks.md quotes; --quick and --smoke runs leave it alone. Logs stay in the timestamped dir.
if [[ $mode == full && -z $only ]]; then
  rm -rf "$root/bench/results/latest" && mkdir -p "$root/bench/results/latest"
  cp "$out"/*.json "$out"/*.md "$root/bench/results/latest/" 2>/dev/null || true
  cp "$out"/*.png "$root/bench/results/latest/" 2>/dev/null || true
  cp "$out"/microbench/results/*-report-github.md "$root/bench/results/latest/" 2>/dev/null || true
  log "done: $out/report.md (copy: bench/results/latest/)"
elif [[ $mode == full ]]; then
  # a full run of the cluster scenarios alone adds its results to latest/ (the other scenarios' stay)
  mkdir -p "$root/bench/results/latest"
  cp "$out"/cluster.json "$out"/cluster-latency.png "$root/bench/results/latest/" 2>/dev/null || true
  cp "$out"/report.md "$root/bench/results/latest/report-cluster.md"
  log "done: $out/report.md (copy: bench/results/latest/cluster.json, cluster-latency.png, report-cluster.md)"
else
  log "done: $out/report.md"
fi
exit $status
