using System.Reflection;
using NetArchTest.Rules;
using OpencodeGateway;

namespace Gateway.Tests;

/// <summary>
/// The gateway's components depend only downwards, read from the compiled assembly (every type a type references, in
/// its signatures and in its method bodies, compiler-generated closures and state machines included: NetArchTest reads
/// the IL with Mono.Cecil), so a reference through a parent namespace or a fully qualified name counts as much as a
/// <c>using</c>. The order: the shared kernel and infrastructure, then the event path (upstreams → ingest → sequencing →
/// history → snapshots → delivery), then session operations, the hub and the HTTP endpoints; the composition root
/// (<c>OpencodeGateway</c>) above all. An <c>Internal</c> namespace is its component's alone.
/// </summary>
public sealed class LayeringTests
{
    private const string Root = "OpencodeGateway";

    /// <summary>Each component's layer: a component may depend on its own layer's and lower ones' only.</summary>
    private static readonly Dictionary<string, int> Layers = new(StringComparer.Ordinal)
    {
        ["Kernel"] = 0,
        ["Configuration"] = 0,
        ["Diagnostics"] = 0,
        ["Cluster"] = 1,
        ["Cors"] = 1,
        ["Upstreams"] = 1,
        ["Auth"] = 2,
        ["Leases"] = 2,
        ["Store"] = 2,
        ["Limits"] = 3,
        ["Ingest"] = 4,
        ["Sequencing"] = 5,
        ["History"] = 6,
        ["Snapshots"] = 7,
        ["Delivery"] = 8,
        ["Sessions"] = 9,
        ["Hubs"] = 10,
        ["Api"] = 11,
        ["Health"] = 11,
        ["Chat"] = 12,
        ["AiSdk"] = 12,
    };

    private static readonly Assembly Gateway = typeof(GatewayApplication).Assembly;

    private static string ComponentOf(string ns)
    {
        var name = ns[(Root.Length + 1)..];
        return name.EndsWith(".Internal", StringComparison.Ordinal) ? name[..^".Internal".Length] : name;
    }

    // (a prefix: the component's Internal namespace and every nested type, whose own namespace is empty in the IL)
    private static PredicateList TypesOf(string component) => Types.InAssembly(Gateway).That().ResideInNamespace($"{Root}.{component}");

    [Fact]
    public void Every_namespace_belongs_to_a_component_with_a_layer()
    {
        var namespaces = Gateway.GetTypes().Select(t => t.Namespace).OfType<string>()
            .Where(ns => ns.StartsWith(Root + ".", StringComparison.Ordinal)).Distinct().ToList();
        Assert.True(namespaces.Count > 20, $"only {namespaces.Count} namespaces found");
        Assert.All(namespaces, ns => Assert.True(Layers.ContainsKey(ComponentOf(ns)), $"namespace {ns} has no layer"));
    }

    [Fact]
    public void No_component_depends_on_one_above_it()
    {
        var violations = new List<string>();
        foreach (var (component, layer) in Layers)
        {
            var above = Layers.Where(l => l.Value > layer).Select(l => $"{Root}.{l.Key}").ToArray();
            var result = TypesOf(component).Should().NotHaveDependencyOnAny(above).GetResult();
            violations.AddRange((result.FailingTypes ?? []).Select(t => $"{t.FullName} ({component}, layer {layer}) depends on a component above it"));
        }

        Assert.True(violations.Count == 0, string.Join(Environment.NewLine, violations));
    }

    [Fact]
    public void No_component_depends_on_another_components_internals()
    {
        var violations = new List<string>();
        foreach (var component in Layers.Keys)
        {
            var result = Types.InAssembly(Gateway).That().DoNotResideInNamespace($"{Root}.{component}").Should().NotHaveDependencyOnAny($"{Root}.{component}.Internal").GetResult();
            violations.AddRange((result.FailingTypes ?? []).Select(t => $"{t.FullName} depends on {component}'s internals"));
        }

        Assert.True(violations.Count == 0, string.Join(Environment.NewLine, violations));
    }
}
