#!/usr/bin/env python3
"""Turns one bench/run.sh result directory into report.md + PNG plots. Usage: report.py DIR"""
import glob, json, math, os, sys

d = sys.argv[1]
def load(name):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) else None

machine = load("machine.json") or {}
a = load("scenario-a.json")
b = load("scenario-b.json")
idle = load("idle.json")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except Exception:
    plt = None

out = []
w = out.append
def fmt(x, nd=1):
    if x is None or (isinstance(x, float) and math.isnan(x)): return "–"
    if isinstance(x, (int,)) or (isinstance(x, float) and x.is_integer() and abs(x) >= 100): return f"{int(x):,}"
    return f"{x:,.{nd}f}"
def met(ok): return "**met**" if ok else "**not met**"
def plot(name, fn):
    if plt is None: return
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    fn(ax); ax.grid(True, alpha=.3); fig.tight_layout(); fig.savefig(os.path.join(d, name)); plt.close(fig)
    w(f"\n![{name}]({name})\n")

w(f"# Gateway benchmark report ({machine.get('mode','?')})\n")
w(f"Machine: {machine.get('nproc')} cores ({machine.get('cpu')}), {fmt(machine.get('memoryMB',0)/1024,0)} GB, kernel {machine.get('kernel')}; "
  f"dotnet {machine.get('dotnet')}, node {machine.get('node')}, opencode {machine.get('opencode')}; commit {machine.get('gitCommit')}; "
  f"{machine.get('date')}; load average at start {' '.join(machine.get('loadavgAtStart', []))}. "
  "The machine is shared (other engineers' tests run on it): treat numbers as noisy, compare within a run.\n")

targets = []
if a:
    runs = a["result"]["runs"]
    ws = sorted({r["watchers"] for r in runs})
    by = {(r["mode"], r["watchers"]): r for r in runs}
    t = runs[0]
    w(f"\n## Scenario A: direct vs gateway on the real opencode\n\nOne answer of {t['tokens']} tokens, one every {t['delayMs']} ms "
      f"({fmt(t['answerTextBytes'])} bytes of text), W watchers. *direct*: each watcher has its own `GET /global/event` and filters "
      "client-side; *gateway*: each joins the session through one gateway process, in the default form (compact deltas, JSON hub "
      "protocol); *gateway-msgpack*: the same in MessagePack; *gateway-full*: `?events=full` (every event a whole `SessionEvent`, JSON). opencode CPU = utime+stime of its pid over the answer "
      "(its idle background rate is shown, and the CPU minus that rate over the answer). Every run starts on a freshly restarted opencode and a short warm-up answer that is not recorded. Streams = `global event connected` lines in opencode's log: opened during the run / all this opencode process served (each run gets a freshly restarted opencode, so for *direct* the total includes the warm-up answer's watcher). "
      "Latency = watcher receive time − mock LLM flush time of that token. *in gateway* = the gateway's own "
      "`gateway_pump_dispatch_duration_seconds` over the answer (upstream bytes read → written or queued for every watcher), "
      "as the upper bound of the histogram bucket holding p50 / p99.\n")
    w("| mode | W | opencode CPU s | minus idle s | opencode idle CPU s/s | gateway CPU s | load gen CPU s | event streams (run / total) | max TCP to opencode | bytes / watcher | p50 ms | p99 ms | in gateway p50 / p99 ms ≤ | complete |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        w(f"| {r['mode']} | {r['watchers']} | {fmt(r['opencodeCpuSeconds'],2)} | {fmt(r.get('opencodeAnswerCpuSeconds'),2)} | {fmt(r.get('opencodeIdleCpuPerSecond'),3)} | {fmt(r.get('gatewayCpuSeconds'),2)} | "
          f"{fmt(r['loadGenCpuSeconds'],2)} | {r['eventStreamsOpenedForRun']} / {r['eventStreamsTotal']} | {r['maxEstablishedTcpToOpencode']} | "
          f"{fmt(r['bytesPerWatcherMean'])} | {fmt(r['latencyP50Ms'])} | {fmt(r['latencyP99Ms'])} | "
          f"{fmt(r.get('gatewayDispatchP50MsAtMost'),2)} / {fmt(r.get('gatewayDispatchP99MsAtMost'),2)} | {r['watchersComplete']}/{r['watchers']} |")
    g = [r for r in runs if r["mode"] == "gateway"]
    gm = [r for r in runs if r["mode"] == "gateway-msgpack"]
    gc = [r for r in runs if r["mode"] == "gateway-coalesced"]
    dr = [r for r in runs if r["mode"] == "direct"]
    if g:
        targets.append(("upstream event streams: exactly 1 per opencode at every W", all(r["eventStreamsTotal"] == 1 for r in g),
                        ", ".join(f"W={r['watchers']}: {r['eventStreamsTotal']}" for r in g)))
        g1, gmax = min(g, key=lambda r: r["watchers"]), max(g, key=lambda r: r["watchers"])
        f = gmax["opencodeCpuSeconds"] / g1["opencodeCpuSeconds"] if g1["opencodeCpuSeconds"] else float("nan")
        extra = ""
        if dr:
            d1, dmax = min(dr, key=lambda r: r["watchers"]), max(dr, key=lambda r: r["watchers"])
            extra = f"; direct grows {dmax['opencodeCpuSeconds']/d1['opencodeCpuSeconds']:.2f}× from W={d1['watchers']} to W={dmax['watchers']}"
        targets.append((f"opencode CPU at W={gmax['watchers']} gateway watchers within 1.05× of W=1", f <= 1.05,
                        f"{f:.2f}× ({g1['opencodeCpuSeconds']:.2f} s → {gmax['opencodeCpuSeconds']:.2f} s){extra}"))
        if dr:
            ratios = [by[("gateway", x)]["bytesPerWatcherMean"] / by[("direct", x)]["bytesPerWatcherMean"] for x in ws
                      if ("gateway", x) in by and ("direct", x) in by and by[("direct", x)]["bytesPerWatcherMean"]]
            cr = [by[("gateway-coalesced", x)]["bytesPerWatcherMean"] / by[("direct", x)]["bytesPerWatcherMean"] for x in ws
                  if ("gateway-coalesced", x) in by and ("direct", x) in by and by[("direct", x)]["bytesPerWatcherMean"]]
            if cr:
                c1 = min(gc, key=lambda r: r["watchers"])
                targets.append(("bytes per watcher ≤ ¼ of direct, with CoalesceWindow (50 ms)", max(cr) <= .25,
                                f"gateway-coalesced/direct = {min(cr):.2f}–{max(cr):.2f} ({fmt(c1['bytesPerWatcherMean'])} B per watcher)"))
            if ratios:
                targets.append(("bytes per watcher ≤ ¼ of a direct subscriber (default: compact, JSON)", max(ratios) <= .25,
                                f"gateway/direct = {min(ratios):.3f}–{max(ratios):.3f} (gateway {fmt(g1['bytesPerWatcherMean'])} B for {fmt(g1['answerTextBytes'])} B of text; "
                                f"{g1['bytesPerWatcherMean']/g1['tokens']:.0f} B per token)"))
            mr = [by[("gateway-msgpack", x)]["bytesPerWatcherMean"] / by[("direct", x)]["bytesPerWatcherMean"] for x in ws
                  if ("gateway-msgpack", x) in by and ("direct", x) in by and by[("direct", x)]["bytesPerWatcherMean"]]
            if mr:
                m1 = min(gm, key=lambda r: r["watchers"])
                targets.append(("bytes per watcher ≤ ⅛ of a direct subscriber (MessagePack)", max(mr) <= .125,
                                f"gateway-msgpack/direct = {min(mr):.3f}–{max(mr):.3f} ({fmt(m1['bytesPerWatcherMean'])} B; "
                                f"{m1['bytesPerWatcherMean']/m1['tokens']:.0f} B per token)"))
    def series(ax, key, ylabel, logy=False):
        for m, style in (("direct", "o-"), ("gateway", "s-"), ("gateway-msgpack", "d-"), ("gateway-full", "v-"), ("gateway-coalesced", "^-")):
            xs = [x for x in ws if (m, x) in by]
            if xs: ax.plot(xs, [by[(m, x)][key] for x in xs], style, label=m)
        ax.set_xscale("log"); ax.set_xlabel("watchers W"); ax.set_ylabel(ylabel); ax.legend()
        if logy: ax.set_yscale("log")
    plot("a-opencode-cpu.png", lambda ax: (series(ax, "opencodeCpuSeconds", "opencode CPU seconds per answer"), ax.set_title("opencode CPU per answer")))
    plot("a-bytes.png", lambda ax: (series(ax, "bytesPerWatcherMean", "bytes received per watcher", True), ax.set_title("bytes per watcher for one answer")))
    def lat(ax):
        for m, c in (("direct", "tab:blue"), ("gateway", "tab:orange"), ("gateway-msgpack", "tab:purple"), ("gateway-full", "tab:red"), ("gateway-coalesced", "tab:green")):
            xs = [x for x in ws if (m, x) in by]
            if xs:
                ax.plot(xs, [by[(m, x)]["latencyP50Ms"] for x in xs], "o--", color=c, label=f"{m} p50")
                ax.plot(xs, [by[(m, x)]["latencyP99Ms"] for x in xs], "o-", color=c, label=f"{m} p99")
        ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("watchers W"); ax.set_ylabel("ms"); ax.legend(); ax.set_title("token → watcher latency")
    plot("a-latency.png", lat)

if b:
    configs = b["result"]["configs"]
    w("\n## Scenario B: fan-out on one node (fake upstream)\n\nThe load generator hosts a fake opencode emitting `message.part.delta` events at a set rate, "
      "round-robin over S sessions, each delta carrying its emit time; S×W watchers (the official SignalR client, default compact form) joined "
      "through one gateway process (separate process, server GC), in each protocol. *bare*: the same connections, rates and load generator "
      "against `bench/Gateway.BareBroadcaster`, a minimal Kestrel WebSocket endpoint (no SignalR, no gateway logic) sending each delta as the "
      "same frame bytes: the machine's limit for this fan-out. Rates step up until p99 > 50 ms, delivery falls below 95 % of offered, or a "
      "connection is dropped. Server and load generator share the 2 cores, so the load generator's CPU is shown too. Per delivered event, "
      "from the server's own `/metrics`: CPU µs, bytes allocated and thread-pool work items; bytes = WebSocket payload received per event.\n")
    w("| S × W | server | protocol | offered delivered/s | upstream ev/s | delivered/s | p50 ms | p99 ms | max ms | server CPU % | load gen CPU % | server RSS MB | B / ev | µs / ev | B alloc / ev | work items / ev | ok |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    best_all = 0
    low = None
    for c in configs:
        name = f"{c['sessions']}×{c['watchersPerSession']}"
        rows = ([("low", c["lowRate"])] if c.get("lowRate") else []) + [("", s) for s in c["steps"]]
        for tag, s in rows:
            w(f"| {name}{' (50 tok/s)' if tag else ''} | {c['server']} | {c['protocol']} | {fmt(s['offeredDeliveredPerSec'])} | {fmt(s['upstreamEventsPerSec'])} | {fmt(s['deliveredPerSec'])} | "
              f"{fmt(s['p50Ms'],2)} | {fmt(s['p99Ms'],2)} | {fmt(s['maxMs'],1)} | {fmt(s['serverCpuPercent'])} | {fmt(s['loadGenCpuPercent'])} | "
              f"{fmt(s['serverRssMB'])} | {fmt(s.get('bytesPerDelivered'))} | {fmt(s.get('serverCpuMicrosPerDelivered'))} | {fmt(s.get('serverAllocBytesPerDelivered'))} | "
              f"{fmt(s.get('serverWorkItemsPerDelivered'),2)} | {'yes' if s['ok'] else 'no'} |")
        if c["server"] == "gateway":
            best_all = max(best_all, c["bestDeliveredPerSecWithP99Under50ms"])
            if c.get("lowRate") and c["connections"] >= 1000 and c["protocol"] == "json": low = c["lowRate"]
    w("\nHighest delivered events/s with p99 ≤ 50 ms: " + ", ".join(
        f"{c['sessions']}×{c['watchersPerSession']} {c['server']} {c['protocol']}: **{fmt(c['bestDeliveredPerSecWithP99Under50ms'])}**" for c in configs) + "\n")
    ratios = b["result"].get("ratiosToBare") or []
    if ratios:
        w("\n### The gateway as a ratio of the bare broadcaster\n\nCapacity = best delivered/s at p99 ≤ 50 ms, gateway ÷ bare (≤ when the bare "
          "broadcaster never reached its limit). CPU per delivered event, gateway ÷ bare, at the highest offered rate both kept up with, and at "
          "one session's 50 tokens/s.\n")
        w("| S × W | protocol | gateway best/s | bare best/s | capacity ratio | CPU / event ratio (at offered/s) | CPU / event ratio at 50 tok/s |")
        w("|---|---|---|---|---|---|---|")
        for r in ratios:
            cap = "–" if r.get("capacityRatio") is None else ("" if r["bareLimitReached"] else "≤ ") + f"{r['capacityRatio']:.2f}"
            w(f"| {r['sessions']}×{r['watchersPerSession']} | {r['protocol']} | {fmt(r['gatewayBest'])} | {fmt(r['bareBest'])} | {cap} | "
              f"{fmt(r.get('cpuPerDeliveredRatio'),2)} ({fmt(r.get('cpuRatioAtOfferedPerSec'))}) | {fmt(r.get('cpuPerDeliveredRatioAtLowRate'),2)} |")
        for r in ratios:
            if r["watchersPerSession"] * r["sessions"] >= 1000 and r["sessions"] in (1, 100) and r.get("capacityRatio") is not None:
                targets.append((f"≥ 0.5× the bare broadcaster's capacity, {r['sessions']} × {r['watchersPerSession']} ({r['protocol']})",
                                r["capacityRatio"] >= .5, f"{r['capacityRatio']:.2f}× ({fmt(r['gatewayBest'])}/s vs {fmt(r['bareBest'])}/s)"))
    targets.append(("one node ≥ 100,000 delivered events/s with p99 ≤ 50 ms", best_all >= 100_000, f"best {fmt(best_all)}/s"))
    if low:
        targets.append(("p99 ≤ 10 ms at 1,000 watchers of one session at 50 tokens/s", low["p99Ms"] <= 10,
                        f"p99 {low['p99Ms']:.2f} ms, p50 {low['p50Ms']:.2f} ms"))
    def label(c): return f"{c['sessions']}×{c['watchersPerSession']} {c['server']} {c['protocol']}"
    def cap(ax):
        for c in configs:
            st = c["steps"]
            ax.plot([s["deliveredPerSec"] for s in st], [s["p99Ms"] for s in st], "o-" if c["server"] == "gateway" else "x:", label=label(c))
        ax.axhline(50, color="red", ls=":", label="50 ms"); ax.set_yscale("log"); ax.set_xlabel("delivered events/s"); ax.set_ylabel("p99 latency ms")
        ax.legend(fontsize=6); ax.set_title("fan-out: p99 vs delivered rate")
    plot("b-capacity.png", cap)
    def cpu(ax):
        for c in configs:
            st = c["steps"]
            ax.plot([s["deliveredPerSec"] for s in st], [s["serverCpuMicrosPerDelivered"] for s in st], "o-" if c["server"] == "gateway" else "x:", label=label(c))
        ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("delivered events/s"); ax.set_ylabel("server CPU µs per delivered event")
        ax.legend(fontsize=6); ax.set_title("CPU per delivered event: gateway vs bare")
    plot("b-cpu.png", cpu)

if idle:
    r = idle["result"]
    w(f"\n## Memory per idle connection\n\nConnections {r['definition']}. Gateway baseline RSS {fmt(r['baselineRssMB'])} MB, managed heap "
      f"{fmt(r['baselineHeapMB'])} MB (heap = after a full blocking GC induced over EventPipe). Per connection = (value − baseline) / connections.\n")
    w("| connections | open | gateway RSS MB | RSS KB/conn | managed heap MB | heap KB/conn | connect s | load gen CPU s | load gen RSS MB |")
    w("|---|---|---|---|---|---|---|---|---|")
    for p in r["points"]:
        w(f"| {fmt(p['connections'])} | {fmt(p['open'])} | {fmt(p['gatewayRssMB'])} | {fmt(p['rssPerConnectionKB'],1)} | {fmt(p['gatewayHeapMB'])} | "
          f"{fmt(p['heapPerConnectionKB'],1)} | {fmt(p['connectSeconds'])} | {fmt(p['loadGenCpuSeconds'],2)} | {fmt(p['loadGenRssMB'])} |")
    top = max(r["points"], key=lambda p: p["connections"])
    targets.append((f"≤ 24 KB gateway memory per idle connection at {fmt(top['connections'])} connections",
                    top["rssPerConnectionKB"] <= 24, f"RSS {top['rssPerConnectionKB']:.1f} KB, managed heap {top['heapPerConnectionKB']:.1f} KB per connection"))
    def mem(ax):
        xs = [p["connections"] for p in r["points"]]
        ax.plot(xs, [p["rssPerConnectionKB"] for p in r["points"]], "o-", label="RSS KB/conn")
        ax.plot(xs, [p["heapPerConnectionKB"] for p in r["points"]], "s-", label="managed heap KB/conn")
        ax.axhline(24, color="red", ls=":", label="24 KB target"); ax.set_xlabel("idle connections"); ax.set_ylabel("KB per connection"); ax.legend()
        ax.set_title("gateway memory per idle connection"); ax.set_ylim(bottom=0)
    plot("b-idle-memory.png", mem)

micro = sorted(glob.glob(os.path.join(d, "microbench", "results", "*-report-github.md")))
if micro:
    w("\n## Micro-benchmark (BenchmarkDotNet): the pump's path over the captured stream\n")
    for m in micro:
        w(open(m).read())

if targets:
    w("\n## Targets\n\n| target | result | measured |\n|---|---|---|")
    for name, ok, detail in targets:
        w(f"| {name} | {met(ok)} | {detail} |")
open(os.path.join(d, "report.md"), "w").write("\n".join(out) + "\n")
print(os.path.join(d, "report.md"))
