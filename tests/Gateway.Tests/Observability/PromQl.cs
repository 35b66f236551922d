using System.Text.RegularExpressions;

namespace Gateway.Tests.Observability;

/// <summary>
/// What a PromQL expression (or a Grafana <c>label_values(selector, label)</c> query) reads: the metric names, the
/// labels each selector matches on, and the labels it groups or joins by. A reader of the language's lexical shape,
/// enough for the dashboard's and the alert rules' expressions, not a parser.
/// </summary>
internal static partial class PromQl
{
    /// <summary>A metric a selector names and the labels its matchers test.</summary>
    public sealed record Selector(string Metric, IReadOnlyList<string> MatchedLabels);

    public sealed record Reads(IReadOnlyList<Selector> Selectors, IReadOnlyList<string> GroupingLabels)
    {
        public IEnumerable<string> Metrics => Selectors.Select(s => s.Metric).Distinct();
    }

    private static readonly HashSet<string> Keywords = new(StringComparer.OrdinalIgnoreCase)
    {
        "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan",
    };

    public static Reads Read(string expression)
    {
        if (LabelValuesQuery().Match(expression) is { Success: true } labelValues)
        {
            expression = labelValues.Groups["selector"].Value;
        }

        // Strings first (a matcher's value may hold anything), then ranges and Grafana's variables outside strings.
        var text = StringLiteral().Replace(expression, "\"\"");
        text = RangeOrSubquery().Replace(text, " ");
        var grouping = new List<string>();
        text = GroupingClause().Replace(text, m =>
        {
            grouping.AddRange(m.Groups["labels"].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            return " ";
        });

        var selectors = new List<Selector>();
        text = SelectorWithMatchers().Replace(text, m =>
        {
            var labels = MatcherLabel().Matches(m.Groups["matchers"].Value).Select(l => l.Groups[1].Value).ToList();
            if (m.Groups["metric"].Value is { Length: > 0 } metric)
            {
                selectors.Add(new Selector(metric, labels));
            }

            return " ";
        });

        foreach (Match token in Identifier().Matches(text))
        {
            if (!Keywords.Contains(token.Value) && !FollowedByCall(text, token))
            {
                selectors.Add(new Selector(token.Value, []));
            }
        }

        return new Reads(selectors, grouping);
    }

    private static bool FollowedByCall(string text, Match token)
    {
        var next = token.Index + token.Length;
        while (next < text.Length && char.IsWhiteSpace(text[next]))
        {
            next++;
        }

        return next < text.Length && text[next] == '(';
    }

    [GeneratedRegex(@"^\s*label_values\((?<selector>.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", RegexOptions.Singleline)]
    private static partial Regex LabelValuesQuery();

    [GeneratedRegex(@"""(?:[^""\\]|\\.)*""|'(?:[^'\\]|\\.)*'|`[^`]*`")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex RangeOrSubquery();

    [GeneratedRegex(@"\b(?:by|without|on|ignoring|group_left|group_right)\s*\((?<labels>[^)]*)\)", RegexOptions.IgnoreCase)]
    private static partial Regex GroupingClause();

    [GeneratedRegex(@"(?<metric>[A-Za-z_:][A-Za-z0-9_:]*)?\s*\{(?<matchers>[^}]*)\}")]
    private static partial Regex SelectorWithMatchers();

    [GeneratedRegex(@"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")]
    private static partial Regex MatcherLabel();

    [GeneratedRegex(@"(?<![A-Za-z0-9_:.$])[A-Za-z_:][A-Za-z0-9_:]*")]
    private static partial Regex Identifier();
}
