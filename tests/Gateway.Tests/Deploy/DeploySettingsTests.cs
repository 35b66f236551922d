using OpencodeGateway.Testing;
using System.Collections;
using System.ComponentModel;
using System.Reflection;
using System.Text.RegularExpressions;
using Gateway.Tests.Support;
using OpencodeGateway.Auth;
using OpencodeGateway.Cluster;
using OpencodeGateway.Cors;
using OpencodeGateway.Health;
using OpencodeGateway.Hubs;
using OpencodeGateway.Limits;
using OpencodeGateway.Sessions;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Snapshots;
using OpencodeGateway.Store;
using OpencodeGateway.Delivery;
using OpencodeGateway.Ingest;
using OpencodeGateway.Upstreams;
using YamlDotNet.RepresentationModel;

namespace Gateway.Tests.Deploy;

/// <summary>
/// The deployment files (Dockerfile, compose.yaml, Kubernetes manifests, the one-machine cluster script) pass settings
/// to the gateway as environment variables (<c>Gateway__Upstreams__0__BaseUrl</c>) or arguments
/// (<c>--Gateway:Upstreams:0:BaseUrl=…</c>). Docker and Kubernetes do not run where these tests run, so a misspelt key
/// would only show in production, as a setting silently ignored. Every key must be one the gateway binds.
/// </summary>
public sealed partial class DeploySettingsTests
{
    /// <summary>
    /// The options classes bound to configuration sections. Keep in step with the <c>AddOptions&lt;T&gt;().Bind(…)</c>
    /// calls in src/Gateway: a key is known when it names a public property path of one of these types.
    /// </summary>
    private static readonly (string Section, Type Options)[] BoundSections =
    [
        (UpstreamsOptions.SectionName, typeof(List<UpstreamOptions>)),
        (UpstreamRegistryOptions.SectionName, typeof(UpstreamRegistryOptions)),
        (StreamingOptions.SectionName, typeof(StreamingOptions)),
        (ReplayOptions.SectionName, typeof(ReplayOptions)),
        (SnapshotOptions.SectionName, typeof(SnapshotOptions)),
        (OutboxOptions.SectionName, typeof(OutboxOptions)),
        (SessionHubOptions.SectionName, typeof(SessionHubOptions)),
        (GatewayCorsOptions.SectionName, typeof(GatewayCorsOptions)),
        (ClusterOptions.SectionName, typeof(ClusterOptions)),
        (GatewayAuthOptions.SectionName, typeof(GatewayAuthOptions)),
        (StoreOptions.SectionName, typeof(StoreOptions)),
        (PromptOptions.SectionName, typeof(PromptOptions)),
        (ManagementOptions.SectionName, typeof(ManagementOptions)),
        (LimitsOptions.SectionName, typeof(LimitsOptions)),
    ];

    /// <summary>Connection strings the gateway reads (<c>GetConnectionString</c>).</summary>
    private static readonly string[] ConnectionStringKeys = ["ConnectionStrings:Gateway", "ConnectionStrings:Redis"];

    /// <summary>Folders (under the repository root) whose files pass settings to the gateway.</summary>
    private static readonly string[] DeployFolders = ["deploy/docker", "deploy/k8s", "deploy/cluster"];

    /// <summary>What every cluster node needs, whatever the way it is deployed.</summary>
    private static readonly string[] ClusterNodeSettings =
    [
        "Gateway:Upstreams:0:BaseUrl", "Gateway:Auth:Jwt:SigningKey", "ConnectionStrings:Gateway", "ConnectionStrings:Redis",
    ];

    public static TheoryData<string> DeployFiles() => new(DeployFilePaths());

    /// <summary>Every file under <see cref="DeployFolders"/>, relative to the repository root, with '/'.</summary>
    private static List<string> DeployFilePaths()
    {
        var root = RepoScript.Root;
        return DeployFolders
            .SelectMany(folder => Directory.EnumerateFiles(Path.Combine(root, folder), "*", SearchOption.AllDirectories).Order())
            .Select(path => Path.GetRelativePath(root, path).Replace('\\', '/'))
            .ToList();
    }

    [Theory]
    [MemberData(nameof(DeployFiles))]
    public void Every_setting_a_deploy_file_passes_is_bound_by_the_gateway(string file)
    {
        var unknown = SettingsIn(file).Where(key => !IsKnown(key)).Distinct().ToList();

        Assert.True(unknown.Count == 0, $"{file} passes settings the gateway does not bind: {string.Join(", ", unknown)}");
    }

    [Theory]
    [InlineData("deploy/docker/compose.yaml")]
    [InlineData("deploy/k8s/configmap.yaml", "deploy/k8s/secret.example.yaml", "deploy/k8s/deployment.yaml")]
    [InlineData("deploy/cluster/cluster.sh")]
    public void Each_way_to_deploy_passes_what_a_cluster_node_needs(params string[] files)
    {
        var passed = files.SelectMany(SettingsIn).ToHashSet(StringComparer.OrdinalIgnoreCase);

        Assert.All(ClusterNodeSettings, key => Assert.Contains(key, passed));
    }

    [Fact]
    public void The_checker_refuses_keys_that_bind_nothing()
    {
        Assert.True(IsKnown("Gateway:Upstreams:3:BaseUrl"));
        Assert.True(IsKnown("gateway:upstreams:0:baseurl"));                // the binder ignores case
        Assert.True(IsKnown("Gateway:Auth:ApiKeys:0:Workspaces:1"));
        Assert.True(IsKnown("Gateway:Streaming:CoalesceWindow"));
        Assert.True(IsKnown("Gateway:Store:DataDirectory"));
        Assert.True(IsKnown("ConnectionStrings:Redis"));

        Assert.False(IsKnown("Gateway:Upstreams:0:BaseUri"));               // misspelt property
        Assert.False(IsKnown("Gateway:Upstreams:first:BaseUrl"));           // a list needs an index
        Assert.False(IsKnown("Gateway:Replay:MaxEvents:Limit"));            // nothing under a value
        Assert.False(IsKnown("Gateway:Auth:Jwt:MinKeyBytes"));              // not public
        Assert.False(IsKnown("Gateway:Nonexistent"));
        Assert.False(IsKnown("ConnectionStrings:Sessions"));
    }

    [Fact]
    public void Settings_are_found_in_every_form_the_files_use()
    {
        var text = """
            ENV Gateway__Store__DataDirectory=/data
            --Gateway:Cluster:NodeId=node-1 "--ConnectionStrings:Gateway=Host=x"
            - name: Gateway__Auth__Jwt__SigningKey
            OpencodeGateway.Upstreams src/Gateway/bin/Gateway.dll opencode-gateway:local
            """;

        Assert.Equal(
            ["Gateway:Store:DataDirectory", "Gateway:Cluster:NodeId", "ConnectionStrings:Gateway", "Gateway:Auth:Jwt:SigningKey"],
            SettingsInText(text));
    }

    [Fact]
    public void The_yaml_files_parse_and_each_kubernetes_manifest_has_a_kind()
    {
        var root = RepoScript.Root;
        var yamlFiles = DeployFilePaths().Where(f => f.EndsWith(".yaml", StringComparison.Ordinal)).ToList();
        Assert.Contains("deploy/docker/compose.yaml", yamlFiles);

        foreach (var file in yamlFiles)
        {
            var stream = LoadYaml(Path.Combine(root, file));
            Assert.NotEmpty(stream.Documents);
            if (file.StartsWith("deploy/k8s/", StringComparison.Ordinal))
            {
                foreach (var document in stream.Documents)
                {
                    var mapping = Assert.IsType<YamlMappingNode>(document.RootNode);
                    Assert.True(mapping.Children.ContainsKey("apiVersion") && mapping.Children.ContainsKey("kind"), $"{file}: a document without apiVersion/kind");
                }
            }
        }
    }

    [Fact]
    public void The_dockerfile_copies_paths_that_exist_runs_as_non_root_and_checks_health()
    {
        var root = RepoScript.Root;
        var lines = File.ReadAllLines(Path.Combine(root, "deploy/docker/Dockerfile"))
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .ToList();

        var copies = lines.Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from=", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(copies);
        foreach (var copy in copies)
        {
            var parts = copy.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            foreach (var source in parts[1..^1])
            {
                Assert.True(File.Exists(Path.Combine(root, source)) || Directory.Exists(Path.Combine(root, source)), $"Dockerfile: '{copy}': {source} does not exist");
            }
        }

        // The entry point runs the assembly the project builds.
        Assert.Contains("ENTRYPOINT [\"dotnet\", \"Gateway.dll\"]", lines);
        Assert.DoesNotContain("<AssemblyName>", File.ReadAllText(Path.Combine(root, "src/Gateway/Gateway.csproj")));

        var lastUser = lines.Last(l => l.StartsWith("USER ", StringComparison.Ordinal))["USER ".Length..].Trim();
        Assert.DoesNotContain(lastUser, new[] { "root", "0", "0:0" });
        Assert.Contains(lines, l => l.StartsWith("EXPOSE 8080", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("http://127.0.0.1:8080/healthz", StringComparison.Ordinal));
    }

    [Fact]
    public void The_shipped_ingress_and_nginx_route_the_public_api_only_and_pass_the_bodies_the_gateway_takes()
    {
        var root = RepoScript.Root;
        var ingress = (YamlMappingNode)LoadYaml(Path.Combine(root, "deploy/k8s/ingress.yaml")).Documents.Single().RootNode;
        var paths = ingress.AllNodes.OfType<YamlMappingNode>()
            .Where(n => n.Children.ContainsKey("path") && n.Children.ContainsKey("pathType"))
            .Select(n => $"{n["pathType"]} {n["path"]}")
            .Order().ToList();
        Assert.Equal(["Exact /healthz", "Exact /readyz", "Prefix /api", "Prefix /hubs"], paths);
        var annotations = (YamlMappingNode)((YamlMappingNode)ingress["metadata"])["annotations"];
        // 12 MB: a prompt with an attachment at the limit and the conversation useChat sends with it (AiSdkEndpoints).
        Assert.Equal("12m", annotations["nginx.ingress.kubernetes.io/proxy-body-size"].ToString());
        Assert.True(OpencodeGateway.AiSdk.AiSdkEndpoints.MaxSendBodyBytes(new PromptOptions()) <= 12 * 1024 * 1024);
        Assert.Equal("false", annotations["nginx.ingress.kubernetes.io/enable-access-log"].ToString());

        foreach (var nginx in new[] { "deploy/docker/nginx.conf", "deploy/cluster/cluster.sh" })
        {
            var text = File.ReadAllText(Path.Combine(root, nginx));
            Assert.Matches(@"location ~ \^/\(hubs/\|api/\|healthz\\?\$\|readyz\\?\$\)", text);
            Assert.Matches(@"location / \{\s*return 404;", text);
        }

        Assert.Contains("client_max_body_size 12m;", File.ReadAllText(Path.Combine(root, "deploy/nginx/gateway-proxy.conf")));
        // The internals have a port of their own, which the Service names and no Ingress routes.
        Assert.Contains("Gateway__Management__Urls: http://0.0.0.0:9090", File.ReadAllText(Path.Combine(root, "deploy/k8s/configmap.yaml")));
        Assert.Contains("name: management", File.ReadAllText(Path.Combine(root, "deploy/k8s/service.yaml")));
    }

    [Fact]
    public void The_service_monitor_scrapes_metrics_on_the_management_port_of_the_gateways_service()
    {
        var root = RepoScript.Root;
        var monitor = (YamlMappingNode)LoadYaml(Path.Combine(root, "deploy/observability/servicemonitor.yaml")).Documents.Single().RootNode;
        Assert.Equal("monitoring.coreos.com/v1", monitor["apiVersion"].ToString());
        Assert.Equal("ServiceMonitor", monitor["kind"].ToString());
        var spec = (YamlMappingNode)monitor["spec"];
        var endpoint = (YamlMappingNode)Assert.Single((YamlSequenceNode)spec["endpoints"]);
        Assert.Equal("management", endpoint["port"].ToString());
        Assert.Equal("/metrics", endpoint["path"].ToString());

        // It selects the Service by labels the Service has once kustomize applied deploy/k8s (its own and the ones
        // kustomization.yaml gives every resource).
        var service = (YamlMappingNode)LoadYaml(Path.Combine(root, "deploy/k8s/service.yaml")).Documents.Single().RootNode;
        var kustomization = (YamlMappingNode)LoadYaml(Path.Combine(root, "deploy/k8s/kustomization.yaml")).Documents.Single().RootNode;
        var serviceLabels = ((YamlSequenceNode)kustomization["labels"]).Cast<YamlMappingNode>()
            .SelectMany(l => (YamlMappingNode)l["pairs"])
            .Concat(((YamlMappingNode)service["metadata"]).Children.TryGetValue("labels", out var own) ? (YamlMappingNode)own : [])
            .ToDictionary(p => p.Key.ToString(), p => p.Value.ToString());
        var selector = (YamlMappingNode)((YamlMappingNode)spec["selector"])["matchLabels"];
        Assert.NotEmpty(selector.Children);
        Assert.All(selector, l => Assert.Equal(l.Value.ToString(), serviceLabels.GetValueOrDefault(l.Key.ToString())));
        Assert.Contains("service.yaml", ((YamlSequenceNode)kustomization["resources"]).Select(r => r.ToString()));

        // The Service's port of that name leads to the container port the gateway's management URL listens on.
        var servicePort = ((YamlSequenceNode)((YamlMappingNode)service["spec"])["ports"]).Cast<YamlMappingNode>()
            .Single(p => p["name"].ToString() == "management");
        var containerPorts = LoadYaml(Path.Combine(root, "deploy/k8s/deployment.yaml")).Documents.Single().AllNodes.OfType<YamlMappingNode>()
            .Where(n => n.Children.ContainsKey("containerPort")).ToList();
        var containerPort = containerPorts.Single(p => p["name"].ToString() == servicePort["targetPort"].ToString());
        Assert.Contains($"Gateway__Management__Urls: http://0.0.0.0:{containerPort["containerPort"]}",
            File.ReadAllText(Path.Combine(root, "deploy/k8s/configmap.yaml")));
    }

    /// <summary>Settings a file passes, as configuration keys (<c>Gateway:Upstreams:0:BaseUrl</c>).</summary>
    private static List<string> SettingsIn(string file)
    {
        var path = Path.Combine(RepoScript.Root, file);
        if (!file.EndsWith(".yaml", StringComparison.Ordinal))
        {
            return SettingsInText(File.ReadAllText(path));
        }

        // YAML: the settings are in the parsed scalars (keys and values), so comments do not count and an anchor's
        // content is read once, where it is defined.
        var settings = new List<string>();
        foreach (var document in LoadYaml(path).Documents)
        {
            foreach (var node in document.AllNodes.OfType<YamlScalarNode>())
            {
                settings.AddRange(SettingsInText(node.Value ?? ""));
            }
        }

        return settings;
    }

    private static List<string> SettingsInText(string text) =>
        SettingPattern().Matches(text)
            .Select(m => m.Value.Replace("__", ":", StringComparison.Ordinal))
            .ToList();

    // Gateway__X__Y, Gateway:X:Y, ConnectionStrings__Name, ConnectionStrings:Name; not OpencodeGateway.X or Gateway.dll.
    [GeneratedRegex(@"(?<![A-Za-z0-9_])(Gateway|ConnectionStrings)(__|:)[A-Za-z0-9_:]*[A-Za-z0-9]")]
    private static partial Regex SettingPattern();

    private static YamlStream LoadYaml(string path)
    {
        using var reader = new StreamReader(path);
        var stream = new YamlStream();
        stream.Load(reader);
        return stream;
    }

    private static bool IsKnown(string key)
    {
        if (ConnectionStringKeys.Contains(key, StringComparer.OrdinalIgnoreCase))
        {
            return true;
        }

        foreach (var (section, type) in BoundSections)
        {
            if (key.StartsWith(section + ":", StringComparison.OrdinalIgnoreCase)
                && Binds(type, key[(section.Length + 1)..].Split(':')))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether ConfigurationBinder would bind <paramref name="path"/> into an instance of <paramref name="type"/>.</summary>
    private static bool Binds(Type type, ReadOnlySpan<string> path)
    {
        if (path.IsEmpty)
        {
            return true;
        }

        if (IsValue(type))
        {
            return false;
        }

        if (DictionaryValueType(type) is { } valueType)
        {
            return Binds(valueType, path[1..]);
        }

        if (ElementType(type) is { } elementType)
        {
            return int.TryParse(path[0], out var index) && index >= 0 && Binds(elementType, path[1..]);
        }

        var property = type.GetProperty(path[0], BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
        if (property is null || property.GetIndexParameters().Length > 0 || property.GetMethod?.IsPublic != true)
        {
            return false;
        }

        // Values need a public setter; objects and collections are bound into what the getter returns.
        if (IsValue(property.PropertyType) && property.SetMethod?.IsPublic != true)
        {
            return false;
        }

        return Binds(property.PropertyType, path[1..]);
    }

    // What the binder converts from a string (it uses the type's TypeConverter).
    private static bool IsValue(Type type) => TypeDescriptor.GetConverter(type).CanConvertFrom(typeof(string));

    private static Type? DictionaryValueType(Type type) =>
        type.GetInterfaces().Append(type)
            .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>) && i.GetGenericArguments()[0] == typeof(string))
            ?.GetGenericArguments()[1];

    private static Type? ElementType(Type type) =>
        type.IsArray ? type.GetElementType()
        : typeof(IEnumerable).IsAssignableFrom(type)
            ? type.GetInterfaces().Append(type)
                .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>))
                ?.GetGenericArguments()[0]
            : null;

    /// <summary>Every key a bound options class reads, with <c>N</c> for a list's index (leaf values only).</summary>
    private static IEnumerable<string> Keys(string prefix, Type type)
    {
        if (IsValue(type))
        {
            yield return prefix;
            yield break;
        }

        if (DictionaryValueType(type) is not null)
        {
            yield return prefix; // its keys are the user's
            yield break;
        }

        if (ElementType(type) is { } element)
        {
            foreach (var key in IsValue(element) ? [prefix] : Keys($"{prefix}:N", element))
            {
                yield return key;
            }

            yield break;
        }

        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                     .Where(p => p.GetIndexParameters().Length == 0 && p.GetMethod?.IsPublic == true
                         && (p.SetMethod?.IsPublic == true || !IsValue(p.PropertyType))))
        {
            foreach (var key in Keys($"{prefix}:{property.Name}", property.PropertyType))
            {
                yield return key;
            }
        }
    }

    [Fact]
    public void Every_setting_the_gateway_binds_is_documented()
    {
        var root = RepoScript.Root;
        var docs = string.Join('\n', new[] { "docs/configuration.md", "docs/sessions-and-auth.md", "docs/scaling.md" }
            .Select(f => File.ReadAllText(Path.Combine(root, f))));
        var undocumented = BoundSections.SelectMany(s => Keys(s.Section, s.Options))
            .Where(key => !docs.Contains($"`{key}`", StringComparison.Ordinal) && !docs.Contains($"`{key}:N`", StringComparison.Ordinal)
                // "`Gateway:Upstreams:N:Username` / `Password`": a key documented beside its sibling
                && !docs.Contains($"/ `{key[(key.LastIndexOf(':') + 1)..]}`", StringComparison.Ordinal))
            .ToList();
        Assert.True(undocumented.Count == 0, $"not in docs/configuration.md (nor the auth or scaling docs): {string.Join(", ", undocumented)}");
    }
}
