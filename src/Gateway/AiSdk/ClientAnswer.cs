using System.Text.Json;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// The app's copy of an answer, from the assistant message a POST ends with: <c>useChat</c> sends it after
/// <c>addToolApprovalResponse</c> or <c>addToolOutput</c> (with <c>sendAutomaticallyWhen</c>, or a
/// <c>sendMessage()</c> without a message). It says what the user answered and what the app shows, so the stream that
/// follows continues that message instead of repeating it.
/// </summary>
/// <param name="MessageId">The UI message's id: the answer's first assistant message.</param>
/// <param name="Steps">Its <c>step-start</c> parts: the steps the app shows.</param>
/// <param name="Approvals">The approval each tool part holds, by tool call id.</param>
/// <param name="Results">Outputs the app set on tool parts it answers (questions), by tool call id.</param>
/// <param name="LastStep">The parts after the last <c>step-start</c>, which a continuation shows again.</param>
internal sealed record ClientAnswer(
    string MessageId,
    int Steps,
    IReadOnlyDictionary<string, ClientApproval> Approvals,
    IReadOnlyDictionary<string, ClientToolResult> Results,
    IReadOnlyList<JsonElement> LastStep)
{
    /// <summary>Reads the parts the gateway acts on; <paramref name="at"/> is the message's path for errors.</summary>
    public static ClientAnswer Parse(JsonElement message, string at)
    {
        var messageId = UiMessageMapper.String(message, "id") ?? throw GatewayException.Invalid($"{at}.id", "must be the answer's message id.");
        var approvals = new Dictionary<string, ClientApproval>(StringComparer.Ordinal);
        var results = new Dictionary<string, ClientToolResult>(StringComparer.Ordinal);
        var lastStep = new List<JsonElement>();
        var steps = 0;
        if (message.TryGetProperty("parts", out var parts) && parts.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var part in parts.EnumerateArray())
            {
                var field = $"{at}.parts[{i++}]";
                var type = UiMessageMapper.String(part, "type");
                if (type == "step-start")
                {
                    steps++;
                    lastStep.Clear();
                    continue;
                }

                lastStep.Add(part.Clone());
                if (!IsToolPart(type) || UiMessageMapper.String(part, "toolCallId") is not { } callId)
                {
                    continue;
                }

                if (part.TryGetProperty("approval", out var approval) && approval.ValueKind == JsonValueKind.Object)
                {
                    approvals[callId] = ReadApproval(approval, $"{field}.approval");
                }

                if (ReadResult(part, callId, field) is { } result)
                {
                    results[callId] = result;
                }
            }
        }

        return new ClientAnswer(messageId, steps, approvals, results, lastStep);
    }

    /// <summary>A tool part: <c>dynamic-tool</c>, or <c>tool-{name}</c> for an app that declares the tool.</summary>
    internal static bool IsToolPart(string? type) => type == "dynamic-tool" || type?.StartsWith("tool-", StringComparison.Ordinal) == true;

    private static ClientApproval ReadApproval(JsonElement approval, string field)
    {
        var id = UiMessageMapper.String(approval, "id") ?? throw GatewayException.Invalid($"{field}.id", "must be the approval's id.");
        bool? approved = approval.TryGetProperty("approved", out var a) ? a.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null => null,
            _ => throw GatewayException.Invalid($"{field}.approved", "must be true or false."),
        } : null;
        return new ClientApproval(id, approved, UiMessageMapper.String(approval, "reason"));
    }

    /// <summary>An output the app set itself: a tool part it executes (not the provider's) that has a result.</summary>
    private static ClientToolResult? ReadResult(JsonElement part, string callId, string field)
    {
        if (part.TryGetProperty("providerExecuted", out var executed) && executed.ValueKind == JsonValueKind.True)
        {
            return null;
        }

        var requestId = part.TryGetProperty("callProviderMetadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object
            && metadata.TryGetProperty("opencode", out var opencode) ? UiMessageMapper.String(opencode, "requestId") : null;
        return UiMessageMapper.String(part, "state") switch
        {
            "output-available" => new ClientToolResult(callId, requestId,
                part.TryGetProperty("output", out var output) ? output.Clone() : null, ErrorText: null, field),
            "output-error" => new ClientToolResult(callId, requestId, Output: null, UiMessageMapper.String(part, "errorText") ?? "", field),
            _ => null,
        };
    }
}

/// <summary>A tool part's approval as the app holds it; <see cref="Approved"/> is null until the user answered.</summary>
internal sealed record ClientApproval(string Id, bool? Approved, string? Reason);

/// <summary>
/// A tool part the app answered itself (<c>addToolOutput</c>): <see cref="Output"/>, or <see cref="ErrorText"/> for
/// <c>state: "output-error"</c>. <see cref="RequestId"/>: the question it answers (<c>callProviderMetadata.opencode</c>).
/// <see cref="Field"/>: the part's path in the request, for errors.
/// </summary>
internal sealed record ClientToolResult(string ToolCallId, string? RequestId, JsonElement? Output, string? ErrorText, string Field);
