using System.Text;
using System.Text.RegularExpressions;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Docs;

/// <summary>
/// Every relative link of the repository's Markdown (README, docs/, the clients', examples' and deploy folders' READMEs)
/// points at a file that exists and, when it names an anchor, at a heading of that file (GitHub's anchor of a heading:
/// lower case, punctuation dropped, spaces as hyphens, a repeated heading numbered).
/// </summary>
public sealed partial class DocLinksTests
{
    // [text](target) and [text]: target; not images' data, not code spans (stripped first).
    [GeneratedRegex(@"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+""[^""]*"")?\)")]
    private static partial Regex InlineLink();

    [GeneratedRegex(@"^\s{0,3}\[[^\]]+\]:\s+(\S+)", RegexOptions.Multiline)]
    private static partial Regex ReferenceLink();

    [GeneratedRegex(@"^(#{1,6})\s+(.+?)\s*#*\s*$", RegexOptions.Multiline)]
    private static partial Regex Heading();

    [GeneratedRegex(@"^(```|~~~).*?^\1", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex FencedBlock();

    [GeneratedRegex(@"`[^`\n]*`")]
    private static partial Regex CodeSpan();

    private static readonly string[] Skipped = ["node_modules", "bin", "obj", ".dev", "artifacts", ".git", ".next", "dist"];

    private static IEnumerable<string> MarkdownFiles(string root) =>
        Directory.EnumerateFiles(root, "*.md", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar).Any(Skipped.Contains))
            .Where(f => !Path.GetRelativePath(root, f).StartsWith("bench" + Path.DirectorySeparatorChar + "results", StringComparison.Ordinal));

    /// <summary>GitHub's anchor of a heading's text.</summary>
    internal static string Anchor(string heading)
    {
        var text = Regex.Replace(heading, @"\[([^\]]*)\]\([^)]*\)", "$1"); // a link in a heading keeps its text
        var anchor = new StringBuilder();
        foreach (var c in text.ToLowerInvariant())
        {
            if (char.IsLetterOrDigit(c) || c is '-' or '_')
            {
                anchor.Append(c);
            }
            else if (c == ' ')
            {
                anchor.Append('-');
            }
        }

        return anchor.ToString();
    }

    internal static HashSet<string> AnchorsOf(string markdown)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (Match heading in Heading().Matches(FencedBlock().Replace(markdown, "")))
        {
            var anchor = Anchor(heading.Groups[2].Value);
            var n = seen.GetValueOrDefault(anchor);
            seen[anchor] = n + 1;
            anchors.Add(n == 0 ? anchor : $"{anchor}-{n}");
        }

        return anchors;
    }

    [Fact]
    public void Anchors_are_githubs()
    {
        Assert.Equal("apichat-sse-for-clients-that-do-not-speak-signalr", Anchor("`/api/chat` (SSE, for clients that do not speak SignalR)"));
        Assert.Equal("client-rules-seq-epoch-offset-gaps", Anchor("Client rules: seq, epoch, offset, gaps"));
        Assert.Equal(["a", "a-1", "b"], AnchorsOf("# A\n## A\n```\n# not a heading\n```\n### B\n").Order());
    }

    [Fact]
    public void Every_relative_link_and_anchor_resolves()
    {
        var root = RepoScript.Root;
        var files = MarkdownFiles(root).ToList();
        Assert.True(files.Count > 8, $"only {files.Count} Markdown files found under {root}");
        var anchors = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        HashSet<string> AnchorsIn(string file) => anchors.TryGetValue(file, out var known) ? known : anchors[file] = AnchorsOf(File.ReadAllText(file));

        var broken = new List<string>();
        foreach (var file in files)
        {
            var text = CodeSpan().Replace(FencedBlock().Replace(File.ReadAllText(file), ""), "");
            var targets = InlineLink().Matches(text).Select(m => m.Groups[1].Value)
                .Concat(ReferenceLink().Matches(text).Select(m => m.Groups[1].Value));
            foreach (var target in targets)
            {
                if (Regex.IsMatch(target, "^[a-z][a-z0-9+.-]*:", RegexOptions.IgnoreCase) || target.StartsWith("//", StringComparison.Ordinal))
                {
                    continue; // https:, mailto:, …
                }

                var hash = target.IndexOf('#');
                var path = Uri.UnescapeDataString(hash < 0 ? target : target[..hash]);
                var anchor = hash < 0 ? null : target[(hash + 1)..];
                var resolved = path.Length == 0 ? file : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, path));
                var where = $"{Path.GetRelativePath(root, file)}: ({target})";
                if (!File.Exists(resolved) && !Directory.Exists(resolved))
                {
                    broken.Add($"{where}: no {Path.GetRelativePath(root, resolved)}");
                }
                else if (anchor is { Length: > 0 } && resolved.EndsWith(".md", StringComparison.Ordinal) && !AnchorsIn(resolved).Contains(anchor))
                {
                    broken.Add($"{where}: no heading #{anchor} in {Path.GetRelativePath(root, resolved)}");
                }
            }
        }

        Assert.True(broken.Count == 0, $"{broken.Count} broken links:{Environment.NewLine}{string.Join(Environment.NewLine, broken)}");
    }
}
