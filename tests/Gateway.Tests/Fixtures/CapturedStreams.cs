using System.Text;
using OpencodeGateway.Ingest;

namespace OpencodeGateway.Tests.Fixtures;

/// <summary>Real opencode 1.18.33 event streams captured by the harness (HTTP head, then the SSE body).</summary>
internal static class CapturedStreams
{
    public static string Body(string name)
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));
        if (text.StartsWith("HTTP/", StringComparison.Ordinal))
        {
            text = text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) is var crlf and >= 0 ? crlf + 4 : text.IndexOf("\n\n", StringComparison.Ordinal) + 2)..];
        }

        return text;
    }

    /// <summary>The data of every event, in order.</summary>
    public static List<string> DataLines(string name) =>
        Body(name).Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l["data: ".Length..].TrimEnd('\r')).ToList();

    public static List<UpstreamEvent> Normalized(string name) =>
        DataLines(name).Select(l => OpencodeEventNormalizer.Normalize(Encoding.UTF8.GetBytes(l))).ToList();
}
