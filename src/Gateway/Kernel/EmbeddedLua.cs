
namespace OpencodeGateway.Kernel;

/// <summary>
/// The Lua scripts a component keeps in <c>{Component}/Scripts/*.lua</c>, embedded in the assembly (as the SQL
/// migrations are) and read once: each component holds its scripts in static fields loaded through this.
/// </summary>
public static class EmbeddedLua
{
    /// <summary>The text of <c>{component}/Scripts/{file}</c>; throws when it is not embedded (a build mistake).</summary>
    public static string Load(string component, string file)
    {
        var name = $"{component}/Scripts/{file}";
        var assembly = typeof(EmbeddedLua).Assembly;
        // (the resource name carries the build machine's path separator)
        var resource = assembly.GetManifestResourceNames().FirstOrDefault(r => r.Replace('\\', '/') == name)
            ?? throw new InvalidOperationException($"The Lua script {name} is not embedded in {assembly.GetName().Name}.");
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
