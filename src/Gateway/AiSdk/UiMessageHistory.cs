using System.Text.Json;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// A session's messages as the AI SDK's <c>UIMessage[]</c>: each user message (text and files), and each answer (the
/// assistant messages after a user message) as one assistant message whose id is its first assistant message's, with
/// the parts <see cref="UiMessageMapper"/> streams (so a resumed stream's <c>start</c> replaces the in-progress one),
/// and what the newest answer waits for as the stream shows it: approvals on their tool calls, questions as tool parts
/// the app answers, <c>data-opencode-permission</c> parts.
/// </summary>
internal static class UiMessageHistory
{
    private const int MaxDepth = 64;
    private static readonly JsonElement EmptyInput = JsonDocument.Parse("{}").RootElement.Clone();

    /// <param name="messages">Whole answers, oldest first.</param>
    /// <param name="pending">
    /// The snapshot <paramref name="messages"/> end with the newest of: its gaps, and its pending permission requests and
    /// questions on the last answer. Null for a page of earlier messages.
    /// </param>
    public static List<Dictionary<string, object?>> From(IReadOnlyList<MessageWithParts> messages, SessionSnapshot? pending)
    {
        var history = new List<Dictionary<string, object?>>();
        List<Dictionary<string, object?>>? answer = null;
        var subagents = new Dictionary<string, string>(StringComparer.Ordinal); // the answer's tool call id → subagent session
        foreach (var message in messages)
        {
            var id = message.Info.GetProperty("id").GetString()!;
            if (UiMessageMapper.String(message.Info, "role") == "user")
            {
                answer = null;
                history.Add(Message(id, "user", [.. message.Parts.Select(UserPart).OfType<Dictionary<string, object?>>()]));
                continue;
            }

            if (answer is null)
            {
                answer = [];
                subagents.Clear();
                history.Add(Message(id, "assistant", answer));
            }

            foreach (var part in message.Parts)
            {
                answer.AddRange(Parts(id, part, pending?.Gaps));
                if (UiMessageMapper.String(part, "callID") is { } callId && part.TryGetProperty("state", out var state)
                    && state.ValueKind == JsonValueKind.Object && state.TryGetProperty("metadata", out var metadata)
                    && UiMessageMapper.String(metadata, "sessionId") is { } subagent)
                {
                    subagents[callId] = subagent;
                }
            }
        }

        if (answer is not null && pending is not null)
        {
            AddPending(answer, subagents, pending);
        }

        return history;
    }

    private static Dictionary<string, object?> Message(string id, string role, List<Dictionary<string, object?>> parts) =>
        new() { ["id"] = id, ["role"] = role, ["parts"] = parts };

    /// <summary>A user part as the app sent it: text (not opencode's synthetic ones) or a file.</summary>
    private static Dictionary<string, object?>? UserPart(JsonElement part) => UiMessageMapper.String(part, "type") switch
    {
        "text" when !(part.TryGetProperty("synthetic", out var s) && s.ValueKind == JsonValueKind.True) =>
            new() { ["type"] = "text", ["text"] = UiMessageMapper.String(part, "text") ?? "" },
        "file" when UiMessageMapper.String(part, "url") is { } url => UiMessageMapper.String(part, "filename") is { } filename
            ? new() { ["type"] = "file", ["mediaType"] = UiMessageMapper.String(part, "mime") ?? "application/octet-stream", ["url"] = url, ["filename"] = filename }
            : new() { ["type"] = "file", ["mediaType"] = UiMessageMapper.String(part, "mime") ?? "application/octet-stream", ["url"] = url },
        _ => null,
    };

    /// <summary>
    /// The newest answer's pending requests: a permission as the approval of its tool call (a subagent's: of the tool
    /// call that runs it) and a <c>data-opencode-permission</c> part; a question on opencode's own question tool call, or
    /// as a <c>question</c> part of its own.
    /// </summary>
    private static void AddPending(List<Dictionary<string, object?>> answer, Dictionary<string, string> subagentOf, SessionSnapshot pending)
    {
        var tools = answer.Where(p => p["type"] is "dynamic-tool").ToDictionary(p => (string)p["toolCallId"]!, StringComparer.Ordinal);
        var subagents = new Dictionary<string, Dictionary<string, object?>>(StringComparer.Ordinal);
        foreach (var (callId, session) in subagentOf)
        {
            if (tools.TryGetValue(callId, out var tool))
            {
                subagents[session] = tool;
            }
        }

        var parents = pending.Children.ToDictionary(c => c.Id, c => c.ParentId, StringComparer.Ordinal);
        foreach (var request in pending.Permissions)
        {
            var requestId = UiMessageMapper.String(request, "id")!;
            var child = DescendantOf(request, pending.SessionId);
            var target = child is not null ? SubagentTool(child, subagents, parents, pending.SessionId)
                : ToolCallOf(request) is { } callId ? tools.GetValueOrDefault(callId) : null;
            if (target is not null && target["state"] is "input-streaming" or "input-available")
            {
                target["state"] = "approval-requested";
                target["approval"] = new Dictionary<string, object?> { ["id"] = requestId };
            }

            answer.Add(new Dictionary<string, object?>
            {
                ["type"] = UiChunkTypes.DataPermission,
                ["id"] = requestId,
                ["data"] = new UiMessageMapper.PermissionData(requestId, "pending", (string?)target?["toolCallId"], request, child),
            });
        }

        foreach (var request in pending.Questions)
        {
            var requestId = UiMessageMapper.String(request, "id")!;
            var child = DescendantOf(request, pending.SessionId);
            var input = UiMessageMapper.QuestionInput(request);
            if (child is null && ToolCallOf(request) is { } callId && tools.TryGetValue(callId, out var tool) && tool["state"] is "input-streaming" or "input-available")
            {
                tool["state"] = "input-available";
                tool["input"] = input;
                tool["providerExecuted"] = false;
                tool["callProviderMetadata"] = UiMessageMapper.QuestionMetadata(requestId, childSessionId: null);
                continue;
            }

            answer.Add(new Dictionary<string, object?>
            {
                ["type"] = "dynamic-tool",
                ["toolName"] = UiMessageMapper.QuestionTool,
                ["toolCallId"] = requestId,
                ["state"] = "input-available",
                ["input"] = input,
                ["providerExecuted"] = false,
                ["callProviderMetadata"] = UiMessageMapper.QuestionMetadata(requestId, child),
            });
        }
    }

    private static string? DescendantOf(JsonElement request, string sessionId) =>
        UiMessageMapper.String(request, "sessionID") is { } asker && asker != sessionId ? asker : null;

    private static string? ToolCallOf(JsonElement request) =>
        request.TryGetProperty("tool", out var tool) && tool.ValueKind == JsonValueKind.Object ? UiMessageMapper.String(tool, "callID") : null;

    /// <summary>The answer's tool call that runs <paramref name="descendant"/> or one of its ancestors.</summary>
    private static Dictionary<string, object?>? SubagentTool(string descendant, Dictionary<string, Dictionary<string, object?>> subagents,
        Dictionary<string, string> parents, string sessionId)
    {
        var session = descendant;
        for (var depth = 0; depth < MaxDepth; depth++)
        {
            if (subagents.TryGetValue(session, out var tool))
            {
                return tool;
            }

            if (!parents.TryGetValue(session, out var parent) || parent == sessionId)
            {
                return null;
            }

            session = parent;
        }

        return null;
    }

    /// <summary>The part's UI parts: a text with gaps is split at them, with a gap part between (as streamed).</summary>
    private static IEnumerable<Dictionary<string, object?>> Parts(string messageId, JsonElement part,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, IReadOnlyList<int>>>? gaps)
    {
        if (Part(messageId, part) is not { } ui)
        {
            yield break;
        }

        var partId = UiMessageMapper.String(part, "id") ?? "";
        if (gaps is null || !gaps.TryGetValue(partId, out var fields) || !fields.TryGetValue(StreamedFields.Text, out var offsets) || ui["text"] is not string text)
        {
            yield return ui;
            yield break;
        }

        var start = 0;
        foreach (var gap in offsets.Where(g => g >= 0 && g <= text.Length))
        {
            if (gap > start)
            {
                yield return new Dictionary<string, object?>(ui) { ["text"] = text[start..gap], ["state"] = "done" };
            }

            yield return new Dictionary<string, object?>
            {
                ["type"] = UiChunkTypes.DataGap,
                ["id"] = $"gap-{partId}-{gap}",
                ["data"] = new UiMessageMapper.GapData(messageId, partId, StreamedFields.Text, gap, null),
            };
            start = gap;
        }

        yield return new Dictionary<string, object?>(ui) { ["text"] = text[start..] };
    }

    private static Dictionary<string, object?>? Part(string messageId, JsonElement part)
    {
        var type = UiMessageMapper.String(part, "type");
        var partId = UiMessageMapper.String(part, "id") ?? "";
        switch (type)
        {
            case "step-start":
                return new() { ["type"] = "step-start" };
            case "text" or "reasoning":
            {
                var text = UiMessageMapper.String(part, "text") ?? "";
                if (text.Length == 0)
                {
                    return null;
                }

                var ended = part.TryGetProperty("time", out var time) && time.ValueKind == JsonValueKind.Object && time.TryGetProperty("end", out _);
                return new()
                {
                    ["type"] = type,
                    ["text"] = text,
                    ["state"] = ended ? "done" : "streaming",
                    ["providerMetadata"] = new Dictionary<string, object>
                    {
                        ["opencode"] = new Dictionary<string, string> { ["messageId"] = messageId, ["partId"] = partId },
                    },
                };
            }
            case "tool":
            {
                var state = part.TryGetProperty("state", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;
                var status = UiMessageMapper.String(state, "status");
                var ui = new Dictionary<string, object?>
                {
                    ["type"] = "dynamic-tool",
                    ["toolName"] = UiMessageMapper.String(part, "tool") ?? "unknown",
                    ["toolCallId"] = UiMessageMapper.String(part, "callID") ?? partId,
                    ["state"] = status switch
                    {
                        "completed" => "output-available",
                        "error" => "output-error",
                        "running" => "input-available",
                        _ => "input-streaming",
                    },
                    ["providerExecuted"] = true,
                };
                if (UiMessageMapper.String(state, "title") is { } title)
                {
                    ui["title"] = title;
                }

                if (status is "running" or "completed" or "error")
                {
                    ui["input"] = state.TryGetProperty("input", out var input) ? input : EmptyInput;
                }

                if (status == "completed")
                {
                    ui["output"] = state.TryGetProperty("output", out var output) ? output : null;
                }
                else if (status == "error")
                {
                    ui["errorText"] = UiMessageMapper.String(state, "error") ?? "The tool failed.";
                }

                return ui;
            }
            default:
                return null;
        }
    }
}
