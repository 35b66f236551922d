using System.Text.Json;
using System.Text.RegularExpressions;
using Gateway.Tests.Diagnostics;
using Gateway.Tests.Support;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Testing;
using YamlDotNet.RepresentationModel;

namespace Gateway.Tests.Observability;

/// <summary>
/// The Grafana dashboard and the alert rules of <c>deploy/observability</c> query what a running gateway exports: every
/// metric they name is on a cluster node's <c>/metrics</c> (a node on Redis and PostgreSQL, so the cluster's series
/// are there too) once it has served a join, a prompt, events and an upstream reconnect, and every label they match
/// on or group by is one those series carry.
/// </summary>
[Collection(TelemetryCollection.Name)]
public sealed partial class DashboardMetricsTests(RedisFixture redis, PostgresFixture postgres)
    : IClassFixture<RedisFixture>, IClassFixture<PostgresFixture>
{
    /// <summary>Labels Prometheus gives every series it scrapes (the target's), not the gateway.</summary>
    private static readonly HashSet<string> TargetLabels = ["job", "instance", "namespace"];

    /// <summary>Series Prometheus makes itself: <c>up</c> says whether a scrape succeeded.</summary>
    private static readonly HashSet<string> PrometheusSeries = ["up"];

    private static string ObservabilityFile(string name) => Path.Combine(RepoScript.Root, "deploy", "observability", name);

    /// <summary>Every PromQL expression of the dashboard (panel targets, variable queries), with where it is.</summary>
    private static List<(string Where, string Expression)> DashboardExpressions()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(ObservabilityFile("dashboard.json")));
        var expressions = new List<(string, string)>();
        foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
        {
            if (!panel.TryGetProperty("targets", out var targets))
            {
                continue; // a row
            }

            foreach (var target in targets.EnumerateArray())
            {
                expressions.Add(($"panel '{panel.GetProperty("title").GetString()}'", target.GetProperty("expr").GetString()!));
            }
        }

        foreach (var variable in dashboard.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray())
        {
            if (variable.GetProperty("type").GetString() == "query")
            {
                expressions.Add(($"variable '{variable.GetProperty("name").GetString()}'", variable.GetProperty("query").GetProperty("query").GetString()!));
            }
        }

        return expressions;
    }

    private static List<(string Where, string Expression)> AlertExpressions()
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(ObservabilityFile("alerts.yaml")))
        {
            stream.Load(reader);
        }

        var root = (YamlMappingNode)stream.Documents.Single().RootNode;
        return [.. ((YamlSequenceNode)root["groups"]).Cast<YamlMappingNode>()
            .SelectMany(group => ((YamlSequenceNode)group["rules"]).Cast<YamlMappingNode>())
            .Select(rule => ($"alert {rule["alert"]}", rule["expr"].ToString()))];
    }

    [Fact]
    public async Task Every_metric_and_label_the_dashboard_and_the_alerts_query_is_on_a_running_gateways_metrics()
    {
        var expressions = DashboardExpressions().Concat(AlertExpressions()).ToList();
        Assert.True(expressions.Count > 40, $"only {expressions.Count} expressions found");
        var reads = expressions.Select(e => (e.Where, e.Expression, Reads: PromQl.Read(e.Expression))).ToList();
        Assert.All(reads, r => Assert.True(r.Reads.Metrics.Any(), $"{r.Where}: no metric read from '{r.Expression}'"));
        var queried = reads.SelectMany(r => r.Reads.Metrics).Where(m => !PrometheusSeries.Contains(m)).ToHashSet();

        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings =
            {
                ["ConnectionStrings:Redis"] = redis.Endpoint,
                ["ConnectionStrings:Gateway"] = await postgres.CreateDatabaseAsync(),
                ["Gateway:Cluster:KeyPrefix"] = RedisFixture.NewKeyPrefix(),
                ["Gateway:Cluster:NodeId"] = "dashboard-node",
                ["Gateway:Limits:SessionsPerConnection"] = "1",
            },
        });
        await using (var hub = await host.ConnectHubAsync("alice"))
        {
            var id = (await hub.InvokeAsync("CreateSession", new { title = "watched" })).GetProperty("id").GetString()!;
            await hub.InvokeAsync("Join", new { sessionId = id });
            // A second session is one too many for this connection: a limit's refusal.
            var other = (await hub.InvokeAsync("CreateSession", new { title = "refused" })).GetProperty("id").GetString()!;
            await Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(() => hub.InvokeAsync("Join", new { sessionId = other }));
            await hub.InvokeAsync("Prompt", new { sessionId = id, text = "hello" });
            for (var i = 0; i < 3; i++)
            {
                host.Upstream.EmitMessage(id);
                Assert.NotNull(await hub.NextAsync("SessionEvent", TimeSpan.FromSeconds(10)));
            }
        }

        using (var alice = host.HttpClient("alice"))
        {
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await alice.GetAsync("api/sessions/ses_missing")).StatusCode);
        }

        host.Upstream.CutStreams();

        using var http = host.HttpClient(null);
        Dictionary<string, HashSet<string>> exported = [];
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            exported = Series(await http.GetStringAsync("/metrics"));
            var missing = queried.Where(m => !exported.ContainsKey(m)).Order().ToList();
            if (missing.Count == 0)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, $"queried but not on /metrics: {string.Join(", ", missing)}");
            await Task.Delay(200);
        }

        var wrongLabels = new List<string>();
        foreach (var (where, expression, read) in reads)
        {
            var metrics = read.Metrics.Where(exported.ContainsKey).ToList();
            foreach (var selector in read.Selectors.Where(s => exported.ContainsKey(s.Metric)))
            {
                wrongLabels.AddRange(selector.MatchedLabels.Where(l => !TargetLabels.Contains(l) && !exported[selector.Metric].Contains(l))
                    .Select(l => $"{where}: {selector.Metric} has no label '{l}'"));
            }

            wrongLabels.AddRange(read.GroupingLabels.Where(l => !TargetLabels.Contains(l) && !metrics.Any(m => exported[m].Contains(l)))
                .Select(l => $"{where}: no metric of '{expression}' has the label '{l}'"));
        }

        Assert.Empty(wrongLabels);
    }

    [Fact]
    public void Metric_names_and_labels_are_read_from_promql_and_grafana_queries()
    {
        var read = PromQl.Read("""
            histogram_quantile(0.99, sum by (instance, le) (rate(gateway_a_bucket{job=~"$job", code!="x{y}"}[$__rate_interval])))
              / on (instance) group_left sum without (upstream) (gateway_b offset 5m) > bool 1e3 and up{job="a b"} unless gateway_c[5m:1m]
            """);
        Assert.Equal(["gateway_a_bucket", "up", "gateway_b", "gateway_c"], read.Metrics);
        Assert.Equal(["job", "code"], read.Selectors.Single(s => s.Metric == "gateway_a_bucket").MatchedLabels);
        Assert.Equal(["instance", "le", "instance", "upstream"], read.GroupingLabels);

        var variable = PromQl.Read("""label_values(gateway_live_sessions{job=~"$job"}, instance)""");
        Assert.Equal(["gateway_live_sessions"], variable.Metrics);
    }

    [Fact]
    public void Every_panel_and_query_of_the_dashboard_uses_its_prometheus_datasource_variable()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(ObservabilityFile("dashboard.json")));
        var variables = dashboard.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray().ToList();
        var datasource = Assert.Single(variables, v => v.GetProperty("type").GetString() == "datasource");
        Assert.Equal("prometheus", datasource.GetProperty("query").GetString());
        var name = datasource.GetProperty("name").GetString();

        var users = new List<(string Where, JsonElement Source)>();
        foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray().Where(p => p.GetProperty("type").GetString() != "row"))
        {
            var title = panel.GetProperty("title").GetString();
            users.Add(($"panel '{title}'", panel.GetProperty("datasource")));
            users.AddRange(panel.GetProperty("targets").EnumerateArray().Select(t => ($"a target of '{title}'", t.GetProperty("datasource"))));
        }

        users.AddRange(variables.Where(v => v.GetProperty("type").GetString() == "query")
            .Select(v => ($"variable '{v.GetProperty("name").GetString()}'", v.GetProperty("datasource"))));
        Assert.True(users.Count > 40, $"only {users.Count} panels, targets and variables found");
        Assert.All(users, u => Assert.True(
            u.Source.GetProperty("uid").GetString() == $"${{{name}}}" && u.Source.GetProperty("type").GetString() == "prometheus",
            $"{u.Where} does not query ${{{name}}}: {u.Source}"));
    }

    /// <summary>The series names of a Prometheus text exposition, each with the label names it carries.</summary>
    private static Dictionary<string, HashSet<string>> Series(string exposition)
    {
        var series = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var line in exposition.Split('\n'))
        {
            if (SampleLine().Match(line) is not { Success: true } sample)
            {
                continue;
            }

            if (!series.TryGetValue(sample.Groups["name"].Value, out var labels))
            {
                series[sample.Groups["name"].Value] = labels = [];
            }

            labels.UnionWith(LabelName().Matches(sample.Groups["labels"].Value).Select(m => m.Groups[1].Value));
        }

        return series;
    }

    [GeneratedRegex(@"^(?<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?<labels>.*)\})?\s")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"(?:^|,)([A-Za-z_][A-Za-z0-9_]*)=""")]
    private static partial Regex LabelName();
}
