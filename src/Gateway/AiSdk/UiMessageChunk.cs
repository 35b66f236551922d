using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// One chunk of the AI SDK's UI message stream (<c>ai</c>'s <c>uiMessageChunkSchema</c>), flat: <see cref="Type"/> says
/// which members are set; absent members are not written.
/// </summary>
internal sealed record UiMessageChunk(string Type)
{
    public string? Id { get; init; }
    public string? Delta { get; init; }
    public string? MessageId { get; init; }
    public string? ToolCallId { get; init; }
    public string? ApprovalId { get; init; }
    public bool? Approved { get; init; }
    public string? ToolName { get; init; }
    public JsonElement? Input { get; init; }
    public JsonElement? Output { get; init; }
    public string? ErrorText { get; init; }
    public string? Title { get; init; }
    public bool? Dynamic { get; init; }
    public bool? ProviderExecuted { get; init; }
    public string? FinishReason { get; init; }
    public string? Reason { get; init; }
    public object? Data { get; init; }
    public object? ProviderMetadata { get; init; }

    /// <summary>camelCase, nulls left out, non-ASCII text as is.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}

/// <summary>The chunk types the gateway sends, and its own data parts.</summary>
internal static class UiChunkTypes
{
    public const string Start = "start";
    public const string Finish = "finish";
    public const string Abort = "abort";
    public const string Error = "error";
    public const string StartStep = "start-step";
    public const string FinishStep = "finish-step";
    /// <summary>Removes the current step's parts from the message: the gateway restates them after it.</summary>
    public const string ResetStep = "reset-step";
    public const string TextStart = "text-start";
    public const string TextDelta = "text-delta";
    public const string TextEnd = "text-end";
    public const string ReasoningStart = "reasoning-start";
    public const string ReasoningDelta = "reasoning-delta";
    public const string ReasoningEnd = "reasoning-end";
    public const string ToolInputStart = "tool-input-start";
    public const string ToolInputAvailable = "tool-input-available";
    public const string ToolOutputAvailable = "tool-output-available";
    public const string ToolOutputError = "tool-output-error";
    /// <summary>The tool call waits for the user's approval (<c>approvalId</c>: opencode's permission request id).</summary>
    public const string ToolApprovalRequest = "tool-approval-request";
    /// <summary>The approval was answered (by this app or any other client).</summary>
    public const string ToolApprovalResponse = "tool-approval-response";
    /// <summary>The tool call failed because its approval was refused.</summary>
    public const string ToolOutputDenied = "tool-output-denied";

    /// <summary>A gap in a text or reasoning part: the text parts before and after it are not continuous.</summary>
    public const string DataGap = "data-opencode-gap";
    /// <summary>A permission request of opencode (id = the request id); restated with its reply.</summary>
    public const string DataPermission = "data-opencode-permission";
}
