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
cluster = load("cluster.json")
joins = load("joins.json")
agent = load("agent-run.json")
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
def met(ok): return ok if isinstance(ok, str) else "**met**" if ok else "**not met**"
def plot(name, fn):
    if plt is None: return
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    fn(ax); ax.grid(True, alpha=.3); fig.tight_layout(); fig.savefig(os.path.join(d, name)); plt.close(fig)
    w(f"\n![{name}]({name})\n")

w(f"# Gateway benchmark report ({machine.get('mode','?')})\n")
w(f"Machine: {machine.get('nproc')} cores ({machine.get('cpu')}), {fmt(machine.get('memoryMB',0)/1024,0)} GB, kernel {machine.get('kernel')}; "
  f"dotnet {machine.get('dotnet')}, node {machine.get('node')}, opencode {machine.get('opencode')}; commit {machine.get('gitCommit')}; "
  f"{machine.get('date')}; load average at start {' '.join(machine.get('loadavgAtStart', []))}. "
  "Everything measured shares the machine with the load generator; latency and capacity move with the machine's load "
  "(the load average above), bytes and memory per connection do not: compare within a run.\n")

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

if joins:
    rows = joins["result"]["rounds"]
    w("\n## Joins: many snapshot joins of one streaming session at once (real opencode)\n\n"
      "J clients already connected call `Join` (no `since`: each gets a snapshot) at the same moment while the session's answer streams. "
      "REST = requests the gateway made to opencode meanwhile (its HttpClient request count on `/metrics`). *followed*: the gateway "
      "followed the session from its start (live state complete); *unwatched*: a warm gateway, a session nobody watched until these joins; "
      "*cold*: the same on a gateway process started while the answer streams; *cold after one join*: the same, after one client joined "
      "another (idle) session on that new process (that first join's time in brackets).\n")
    w("| round | shape | joins | REST requests | snapshots | join p50 / p99 / max ms | all joined s | gateway CPU s |")
    w("|---|---|---|---|---|---|---|---|")
    for r in rows:
        first = f" ({fmt(r['firstJoinOfProcessMs'])} ms)" if r.get("firstJoinOfProcessMs") is not None else ""
        w(f"| {r['round']} | {r['shape']}{first} | {r['joins']} | {fmt(r['restRequests'])} | {r['snapshots']} | {fmt(r['joinP50Ms'])} / {fmt(r['joinP99Ms'])} / {fmt(r['joinMaxMs'])} | "
          f"{fmt(r['allJoinedSeconds'], 3)} | {fmt(r['gatewayCpuSeconds'], 2)} |")
    for shape in ("followed", "unwatched", "cold"):
        g = [r for r in rows if r["shape"] == shape]
        if not g: continue
        rest, p99 = max(r["restRequests"] for r in g), max(r["joinP99Ms"] for r in g)
        targets.append((f"{g[0]['joins']} concurrent snapshot joins ({shape}): ≤ 10 REST requests, join p99 ≤ 100 ms", rest <= 10 and p99 <= 100,
                        f"REST {fmt(rest)} at most, join p99 {fmt(p99)} ms at most over {len(g)} round(s)"))

if agent:
    tool = agent["result"]["toolOutput"]
    w("\n## Agent run: a tool's streamed output, snapshots of a long session (real opencode)\n\n"
      f"A `bash` call printing {tool['lines']} lines ({fmt(tool['outputChars'])} characters of output; opencode sent the whole tool part "
      f"{tool['toolPartUpdates']} times while it ran, {tool['seconds']} s): bytes each watcher received from the prompt to idle (the whole "
      "run: messages, steps, the answer after the tool), against the final output's length. *direct*: opencode's own `/global/event`.\n")
    w("| watcher | bytes | × output |")
    w("|---|---|---|")
    for x in tool["watchers"]:
        w(f"| {x['form']} | {fmt(x['bytes'])} | {x['perOutputChar']:.2f} |")
    for x in tool["watchers"]:
        if x["form"].startswith("compact"):
            targets.append((f"{x['form']} watcher of a {tool['lines']}-line bash run: ≤ 3× the output", x["perOutputChar"] <= 3,
                            f"{x['perOutputChar']:.2f}×"))
    snaps = agent["result"]["snapshots"]
    w("\nA snapshot join (`Join` without `since`, its result's JSON) after N turns of one session (each turn a prompt and a 40-token answer):\n")
    w("| turns | stored messages | messages in the snapshot | earlier? | join bytes |")
    w("|---|---|---|---|---|")
    for x in snaps:
        w(f"| {x['turns']} | {x['storedMessages']} | {x['messages']} | {'yes' if x['hasEarlier'] else 'no'} | {fmt(x['joinBytes'])} |")
    by = {x["turns"]: x["joinBytes"] for x in snaps}
    if 30 in by and 60 in by:
        targets.append(("snapshot at 60 turns ≤ 1.2× the snapshot at 30 turns", by[60] <= 1.2 * by[30], f"{by[60] / by[30]:.2f}×"))

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
        w("| S × W | build | protocol | gateway best/s | bare best/s | capacity ratio | CPU / event ratio (at offered/s) | CPU / event ratio at 50 tok/s |")
        w("|---|---|---|---|---|---|---|---|")
        for r in ratios:
            cap = "–" if r.get("capacityRatio") is None else ("" if r["bareLimitReached"] else "≤ ") + f"{r['capacityRatio']:.2f}"
            w(f"| {r['sessions']}×{r['watchersPerSession']} | {r.get('server', 'gateway')} | {r['protocol']} | {fmt(r['gatewayBest'])} | {fmt(r['bareBest'])} | {cap} | "
              f"{fmt(r.get('cpuPerDeliveredRatio'),2)} ({fmt(r.get('cpuRatioAtOfferedPerSec'))}) | {fmt(r.get('cpuPerDeliveredRatioAtLowRate'),2)} |")
        for r in ratios:
            if r.get("server", "gateway") == "gateway" and r["watchersPerSession"] * r["sessions"] >= 1000 and r.get("capacityRatio") is not None:
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
            ax.plot([s["deliveredPerSec"] for s in st], [s["p99Ms"] for s in st], {"gateway": "o-", "before": "s--"}.get(c["server"], "x:"), label=label(c))
        ax.axhline(50, color="red", ls=":", label="50 ms"); ax.set_yscale("log"); ax.set_xlabel("delivered events/s"); ax.set_ylabel("p99 latency ms")
        ax.legend(fontsize=6); ax.set_title("fan-out: p99 vs delivered rate")
    plot("b-capacity.png", cap)
    def cpu(ax):
        for c in configs:
            st = c["steps"]
            ax.plot([s["deliveredPerSec"] for s in st], [s["serverCpuMicrosPerDelivered"] for s in st], {"gateway": "o-", "before": "s--"}.get(c["server"], "x:"), label=label(c))
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

if cluster:
    r = cluster["result"]
    sh = r["shape"]
    def lat(x, keys=("p50Ms", "p95Ms", "p99Ms", "maxMs")): return " / ".join(fmt(x.get(k), 2) for k in keys) if x else "–"
    def summ(x, keys=("p50", "max")): return " / ".join(fmt(x.get(k), 2) for k in keys) if x and x.get("n") else "–"
    w(f"\n## Cluster: one node vs three nodes behind Redis (fake upstream)\n\nThe same load on one gateway process (no Redis) and on "
      f"`deploy/cluster/cluster.sh`'s topology ({r.get('nodes', '?')} nodes, Redis with AOF, PostgreSQL, nginx): {sh['sessions']} sessions × "
      f"{sh['watchersPerSession']} watchers ({sh['connections']} connections; {sh['clients']}), on the cluster each session's watchers spread "
      "evenly over the nodes and connected to them directly. The fake upstream emits `message.part.delta` events carrying their emit time; "
      "latency = watcher receive time − emit time. *on holder* = watchers on the node holding the upstream's lease (they get events before "
      "Redis); *via Redis* = the others (events through the history's PUBLISH). All processes share the machine's cores.\n")
    w("| events/s per session | upstream ev/s | delivered/s | single p50 / p95 / p99 / max ms | cluster all p50 / p95 / p99 / max ms | on holder p99 ms | "
      "via Redis p50 / p95 / p99 / max ms | p99 via Redis ÷ single | CPU % single gateway | CPU % cluster nodes (sum) | Redis CPU % | load gen CPU % single / cluster |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for l in r.get("latency", []):
        s1, c1 = l["single"], l["cluster"]
        nodes_cpu = sum(v for k, v in c1["cpuPercent"].items() if k.startswith("node-"))
        w(f"| {fmt(l['ratePerSession'])} | {fmt(c1['upstreamEventsPerSec'])} | {fmt(s1['deliveredPerSec'])} / {fmt(c1['deliveredPerSec'])} | {lat(s1)} | {lat(c1)} | "
          f"{fmt(c1['onHolderNode'].get('p99Ms'), 2)} | {lat(c1['viaRedis'])} | {fmt(l['p99RatioViaRedis'], 2)} | {fmt(s1['cpuPercent'].get('gateway'))} | "
          f"{fmt(nodes_cpu)} | {fmt(c1['cpuPercent'].get('redis'))} | {fmt(s1['loadGenCpuPercent'])} / {fmt(c1['loadGenCpuPercent'])} |")
        targets.append((f"p99 through Redis ≤ 1.5× the single node's at {fmt(l['ratePerSession'])} events/s per session",
                        l["p99RatioViaRedis"] is not None and l["p99RatioViaRedis"] <= 1.5,
                        f"{fmt(l['p99RatioViaRedis'], 2)}× ({fmt(c1['viaRedis'].get('p99Ms'), 2)} vs {fmt(s1['p99Ms'], 2)} ms; all cluster watchers "
                        f"{fmt(l['p99RatioAllClusterWatchers'], 2)}×)"))

    w("\n### Redis per event\n\nFrom Redis' `INFO stats` / `INFO commandstats` around the same windows (the bench's own INFO calls left out). "
      "*Commands* are what Redis executed, those run inside the history's Lua script included (one `EVALSHA` carries a batch of one "
      "session's events); *less idle* subtracts what Redis did in the same time with the same watchers and no events (lease renewals, "
      "history checks).\n")
    w("| events/s per session | bytes / upstream event (in + out) | bytes / delivered event | commands / upstream event | commands / delivered event | "
      "EVALSHA / upstream event | less idle: bytes / delivered, commands / delivered | Redis CPU % | busiest commands per upstream event |")
    w("|---|---|---|---|---|---|---|---|---|")
    for l in r.get("latency", []):
        x = l["cluster"]["redis"]; n = x.get("lessIdle", {})
        top = ", ".join(f"{k} {fmt(v, 2)}" for k, v in list(x["callsPerUpstreamEvent"].items())[:8])
        w(f"| {fmt(l['ratePerSession'])} | {fmt(x['bytesPerUpstreamEvent'])} ({fmt(x['inputBytesPerUpstreamEvent'])} + {fmt(x['outputBytesPerUpstreamEvent'])}) | "
          f"{fmt(x['bytesPerDeliveredEvent'])} | {fmt(x['commandsPerUpstreamEvent'], 2)} | {fmt(x['commandsPerDeliveredEvent'], 2)} | "
          f"{fmt(x['callsPerUpstreamEvent'].get('evalsha'), 2)} | {fmt(n.get('bytesPerDeliveredEvent'))}, {fmt(n.get('commandsPerDeliveredEvent'), 2)} | "
          f"{fmt(x['cpuPercent'])} | {top} |")
        targets.append((f"Redis bytes and commands per delivered event reported ({fmt(l['ratePerSession'])} events/s per session)", "reported",
                        f"{fmt(x['bytesPerDeliveredEvent'])} B and {fmt(x['commandsPerDeliveredEvent'], 2)} commands per delivered event; "
                        f"{fmt(x['bytesPerUpstreamEvent'])} B and {fmt(x['commandsPerUpstreamEvent'], 2)} commands per upstream event"))
    if r.get("redisIdle"):
        i = r["redisIdle"]
        w(f"\nRedis idle, {i['watchers']} watchers, no events: {fmt(i['commandsPerSec'])} commands/s, {fmt(i['inputBytesPerSec'])} B/s in, "
          f"{fmt(i['outputBytesPerSec'])} B/s out ({', '.join(f'{k} {v}' for k, v in i['callsPerSec'].items())} per second).\n")

    t = r.get("takeover")
    if t and t["rounds"]:
        w(f"\n### Takeover after SIGKILL of the lease holder\n\n{t['sessions']} sessions × {t['watchersPerSession']} watchers on the running nodes, "
          f"{fmt(t['ratePerSession'])} events/s per session. Definitions: {t['definition']}.\n")
        w("| round | nodes | killed | new holder | lease taken s | next event at survivors s (p50 / max) | pushed snapshot s (p50 / max) | survivors with next event | upstream streams at once | gaps seen |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for x in t["rounds"]:
            w(f"| {x['round']} | {x['nodes']} | node-{x['killedNode']} | {'node-' + str(x['newHolder']) if x['newHolder'] else '–'} | {fmt(x['leaseTakenSeconds'], 2)} | "
              f"{summ(x['nextEventSeconds'])} | {summ(x['pushedSnapshotSeconds'])} | {x['survivorsWithNextEvent']}/{x['survivingWatchers']} | {x['maxUpstreamStreamsAtOnce']} | {x['sanity']['gaps']} |")
        taken = [x["leaseTakenSeconds"] for x in t["rounds"]]
        nxt = [x["nextEventSeconds"].get("max") for x in t["rounds"]]
        targets.append(("takeover ≤ 10 s after SIGKILL of the holder", bool(taken) and all(v is not None and v <= 10 for v in taken),
                        f"lease taken after {', '.join(fmt(v, 2) for v in taken)} s; next event at every survivor after "
                        f"{', '.join(fmt(v, 2) for v in nxt)} s"))

    rc = r.get("reconnect")
    if rc:
        w("\n### Mass reconnect after a node loss\n\nClients behind nginx (round robin, WebSockets without negotiate, the official client's "
          "automatic reconnect, rejoin with `since`), spread over the sessions; one node SIGKILLed mid-stream (*holder*: the lease holder, so the "
          "upstream stream moves too; *other*: a node that does not hold it). *moved* = the clients whose connection dropped. Times from the "
          "node's death: reconnected (connection back, through nginx, to another node), rejoined (`Join` answered: recovered or a snapshot), "
          "live again (first event applied in order after that). REST = requests the upstream served from the kill until every moved client "
          "was live again. *stayers* = the clients that kept their connection: their latency in a window before the kill and from the kill "
          "until every moved client was live again (at least as long). At head = with the upstream quiet, clients holding their session's "
          "last position.\n")
        w("| kill | nodes | clients / sessions | moved | all live again | reconnected s (p50 / max) | rejoined s (p50 / max) | live again s (p50 / p99 / max) | "
          "recovered / snapshot | lease taken s | REST calls (per session) | stayers p50 / p99 ms before → during | at head | gaps seen moved / stayers | CPU % during |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for x in rc:
            b4, du = x["stayersLatencyBefore"], x["stayersLatencyDuring"]
            w(f"| {x['kill']} (node-{x['killedNode']}) | {x['nodes']} | {fmt(x['clients'])} / {x['sessions']} | {fmt(x['movedClients'])} | "
              f"{'yes' if x['allMovedLiveAgain'] else 'no (' + str(x['movedNotLiveAgain']) + ' not)'} | {summ(x['reconnectedSeconds'])} | "
              f"{summ(x['rejoinedSeconds'])} | {summ(x['liveAgainSeconds'], ('p50', 'p99', 'max'))} | {x['rejoinsRecovered']} / {x['rejoinsWithSnapshot']} | "
              f"{fmt(x['leaseTakenSeconds'], 2)} | {fmt(x['restCallsUntilAllLive'])} ({fmt(x['restCallsPerSessionUntilAllLive'], 2)}) | "
              f"{fmt(b4.get('p50Ms'), 2)} / {fmt(b4.get('p99Ms'), 2)} → {fmt(du.get('p50Ms'), 2)} / {fmt(du.get('p99Ms'), 2)} | "
              f"{fmt(x['clientsAtSessionHead'])}/{fmt(x['clients'])} | {x['sanityMoved']['gaps']} / {x['sanityStayers']['gaps']} | "
              f"{', '.join(f'{k} {fmt(v)}' for k, v in x['cpuPercentDuring'].items())} |")
            ok = x["allMovedLiveAgain"] and x["clientsAtSessionHead"] == x["clients"]
            targets.append((f"1,000 clients back and caught up after losing a node ({x['kill']})",
                            (ok if x["clients"] >= 1000 else f"not run at 1,000 ({fmt(x['clients'])} clients)"),
                            f"{fmt(x['movedClients'])} moved, {'all' if x['allMovedLiveAgain'] else 'not all'} live again after "
                            f"{fmt(x['liveAgainSeconds'].get('max'), 2)} s; {fmt(x['clientsAtSessionHead'])}/{fmt(x['clients'])} at head; "
                            f"{fmt(x['restCallsUntilAllLive'])} REST calls ({fmt(x['restCallsPerSessionUntilAllLive'], 2)} per session)"))
        w("\nClients per node before the kill, and where the moved ones went: " + "; ".join(
            f"{x['kill']} (holder node-{x['holderBefore']}): {', '.join(f'{k} {v}' for k, v in x['clientsPerNodeBeforeKill'].items())} → "
            f"{', '.join(f'{k} {v}' for k, v in x['movedClientsNowOn'].items())}" for x in rc) + ". A gap a client sees is one the gateway let "
          "through (the client rules repair it with a rejoin `since`); the first ones:\n")
        for x in rc:
            for g in x.get("gapLog", []):
                w(f"- {x['kill']}: {g}")
        w("\nREST calls by route: " + "; ".join(f"{x['kill']}: " + (", ".join(f"{k} {v}" for k, v in x["restCallsByRoute"].items()) or "none")
                                                for x in rc) + "\n")

    def cl(ax):
        rows = r.get("latency", [])
        xs = range(len(rows))
        for key, label, off in (("single", "single node", -0.25), ("holder", "cluster, on holder", 0), ("redis", "cluster, via Redis", 0.25)):
            vals = [(l["single"] if key == "single" else l["cluster"]["onHolderNode"] if key == "holder" else l["cluster"]["viaRedis"]) for l in rows]
            ax.bar([i + off for i in xs], [v.get("p99Ms") or 0 for v in vals], 0.25, label=f"{label} p99")
            ax.plot([i + off for i in xs], [v.get("p50Ms") or 0 for v in vals], "k_", markersize=12)
        ax.set_xticks(list(xs)); ax.set_xticklabels([f"{fmt(l['ratePerSession'])}/s per session" for l in rows])
        ax.set_ylabel("ms (bar p99, tick p50)"); ax.legend(fontsize=7); ax.set_title("delivery latency: one node vs cluster")
    if r.get("latency"):
        plot("cluster-latency.png", cl)

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
