using System.Text.Json;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// A session's messages as the AI SDK's <c>UIMessage[]</c>: each user message, and each answer (the assistant
/// messages after a user message) as one assistant message whose id is its first assistant message's, with the parts
/// <see cref="UiMessageMapper"/> streams (so a resumed stream's <c>start</c> replaces the in-progress one).
/// </summary>
internal static class UiMessageHistory
{
    public static List<Dictionary<string, object?>> From(SessionSnapshot snapshot)
    {
        var messages = new List<Dictionary<string, object?>>();
        List<object>? answer = null;
        foreach (var message in snapshot.Messages)
        {
            var id = message.Info.GetProperty("id").GetString()!;
            if (UiMessageMapper.String(message.Info, "role") == "user")
            {
                answer = null;
                var texts = message.Parts
                    .Where(p => UiMessageMapper.String(p, "type") == "text" && !IsSynthetic(p))
                    .Select(p => (object)new Dictionary<string, object?> { ["type"] = "text", ["text"] = UiMessageMapper.String(p, "text") ?? "" })
                    .ToList();
                messages.Add(Message(id, "user", texts));
                continue;
            }

            if (answer is null)
            {
                answer = [];
                messages.Add(Message(id, "assistant", answer));
            }

            foreach (var part in message.Parts)
            {
                if (Part(id, part) is { } ui)
                {
                    answer.Add(ui);
                }
            }
        }

        if (answer is not null)
        {
            foreach (var request in snapshot.Permissions)
            {
                var requestId = UiMessageMapper.String(request, "id")!;
                var tool = request.TryGetProperty("tool", out var t) ? UiMessageMapper.String(t, "callID") : null;
                answer.Add(new Dictionary<string, object?>
                {
                    ["type"] = UiChunkTypes.DataPermission,
                    ["id"] = requestId,
                    ["data"] = new UiMessageMapper.PermissionData(requestId, "pending", tool, request),
                });
            }
        }

        return messages;
    }

    private static Dictionary<string, object?> Message(string id, string role, List<object> parts) =>
        new() { ["id"] = id, ["role"] = role, ["parts"] = parts };

    private static bool IsSynthetic(JsonElement part) =>
        part.TryGetProperty("synthetic", out var s) && s.ValueKind == JsonValueKind.True;

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
                    ui["input"] = state.TryGetProperty("input", out var input) ? input : JsonDocument.Parse("{}").RootElement;
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
