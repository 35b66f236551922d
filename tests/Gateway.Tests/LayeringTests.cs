using System.Text.RegularExpressions;

namespace Gateway.Tests;

/// <summary>
/// The gateway's namespaces import only downwards: infrastructure, then the event path in its own order (upstream →
/// pump → live state → history → fan-out → hub), then the HTTP endpoints; an <c>Internal</c> namespace is its
/// component's alone. Read from the sources, so a new <c>using</c> that points upwards fails here.
/// </summary>
public sealed partial class LayeringTests
{
    /// <summary>Each namespace's layer: a namespace may import its own layer's and lower ones' only.</summary>
    private static readonly Dictionary<string, int> Layers = new(StringComparer.Ordinal)
    {
        ["Configuration"] = 0,
        ["Diagnostics"] = 0,
        ["Cluster"] = 1,
        ["SignalR"] = 1,
        ["Cors"] = 1,
        ["Upstreams"] = 1,
        ["Problems"] = 1,
        ["Auth"] = 2,
        ["Limits"] = 2,
        ["Leases"] = 2,
        ["Streaming"] = 3,
        ["Sessions.Live"] = 4,
        ["Sessions.Store"] = 4,
        ["Sessions.History"] = 5,
        ["Sessions.Snapshots"] = 6,
        ["Sessions"] = 7,
        ["Fanout"] = 8,
        ["Hubs"] = 9,
        ["Api"] = 10,
        ["Health"] = 10,
        ["Chat"] = 11,
        ["AiSdk"] = 11,
    };

    [GeneratedRegex(@"^namespace OpencodeGateway\.([A-Za-z.]+);", RegexOptions.Multiline)]
    private static partial Regex NamespaceDeclaration();

    [GeneratedRegex(@"^using OpencodeGateway\.([A-Za-z.]+);", RegexOptions.Multiline)]
    private static partial Regex GatewayUsing();

    private static string Component(string ns) => ns.EndsWith(".Internal", StringComparison.Ordinal) ? ns[..^".Internal".Length] : ns;

    private static IEnumerable<(string File, string Namespace, string[] Imports)> Sources()
    {
        var root = Path.GetDirectoryName(typeof(LayeringTests).Assembly.Location)!;
        while (!File.Exists(Path.Combine(root, "Gateway.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("Gateway.sln not found above the test assembly");
        }

        var source = Path.Combine(root, "src", "Gateway");
        foreach (var file in Directory.EnumerateFiles(source, "*.cs", SearchOption.AllDirectories)
                     .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                         && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            var text = File.ReadAllText(file);
            if (NamespaceDeclaration().Match(text) is { Success: true } declaration)
            {
                yield return (Path.GetRelativePath(source, file), declaration.Groups[1].Value,
                    [.. GatewayUsing().Matches(text).Select(m => m.Groups[1].Value)]);
            }
        }
    }

    [Fact]
    public void Every_namespace_has_a_layer()
    {
        var sources = Sources().ToList();
        Assert.True(sources.Count > 100, $"only {sources.Count} source files found");
        Assert.All(sources, s => Assert.True(Layers.ContainsKey(Component(s.Namespace)), $"{s.File}: namespace {s.Namespace} has no layer"));
    }

    [Fact]
    public void No_namespace_imports_one_above_it_nor_another_components_internals()
    {
        var violations = new List<string>();
        foreach (var (file, ns, imports) in Sources())
        {
            var layer = Layers.GetValueOrDefault(Component(ns), int.MaxValue);
            // The contract is its own assembly under everything (Contracts and Contracts.Serialization).
            foreach (var import in imports.Where(i => i != "Contracts" && !i.StartsWith("Contracts.", StringComparison.Ordinal)))
            {
                if (import.EndsWith(".Internal", StringComparison.Ordinal) && Component(import) != Component(ns))
                {
                    violations.Add($"{file} ({ns}) uses {import}, the internals of another component");
                }
                else if (Layers.GetValueOrDefault(Component(import), int.MaxValue) > layer)
                {
                    violations.Add($"{file} ({ns}, layer {layer}) imports {import} (layer {Layers.GetValueOrDefault(Component(import), -1)})");
                }
            }
        }

        Assert.Empty(violations);
    }
}
