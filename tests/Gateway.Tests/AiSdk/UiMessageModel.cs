using System.Text.Json;
using OpencodeGateway.AiSdk;

namespace Gateway.Tests.AiSdk;

/// <summary>
/// The UI message the AI SDK's <c>processUIMessageStream</c> (<c>ai</c> 7) builds from chunks, as strict as it is: a
/// chunk about a tool call or an approval it cannot find fails, as it does in the SDK.
/// </summary>
internal sealed class UiMessageModel
{
    public string? Id { get; private set; }
    public List<UiPart> Parts { get; } = [];

    /// <summary>Folds <paramref name="chunks"/> onto <paramref name="message"/> (a new one by default), as the SDK does.</summary>
    public static UiMessageModel Fold(IEnumerable<UiMessageChunk> chunks, UiMessageModel? message = null)
    {
        message ??= new UiMessageModel();
        var open = new Dictionary<string, UiPart>();
        foreach (var c in chunks)
        {
            switch (c.Type)
            {
                case "start":
                    message.Id = c.MessageId ?? message.Id;
                    break;
                case "start-step":
                    message.Parts.Add(new UiPart("step-start"));
                    break;
                case "reset-step":
                    var from = message.Parts.FindLastIndex(p => p.Type == "step-start") + 1;
                    message.Parts.RemoveRange(from, message.Parts.Count - from);
                    open.Clear();
                    break;
                case "text-start" or "reasoning-start":
                    var part = new UiPart(c.Type[..^6]) { State = "streaming" };
                    open[c.Id!] = part;
                    message.Parts.Add(part);
                    break;
                case "text-delta" or "reasoning-delta":
                    open[c.Id!].Text += c.Delta;
                    break;
                case "text-end" or "reasoning-end":
                    open[c.Id!].State = "done";
                    open.Remove(c.Id!);
                    break;
                case "tool-input-start" or "tool-input-available":
                    var tool = message.CurrentStep().LastOrDefault(p => p.ToolCallId == c.ToolCallId);
                    if (tool is null)
                    {
                        tool = new UiPart("dynamic-tool") { ToolCallId = c.ToolCallId, ToolName = c.ToolName };
                        message.Parts.Add(tool);
                    }

                    tool.State = c.Type == "tool-input-start" ? "input-streaming" : "input-available";
                    tool.Input = c.Input;
                    tool.ProviderExecuted = c.ProviderExecuted ?? tool.ProviderExecuted;
                    tool.CallProviderMetadata = c.ProviderMetadata ?? tool.CallProviderMetadata;
                    break;
                case "tool-approval-request":
                    var asking = message.Tool(c.ToolCallId!);
                    (asking.State, asking.ApprovalId, asking.Approved) = ("approval-requested", c.ApprovalId, null);
                    break;
                case "tool-approval-response":
                    var answered = message.Parts.SingleOrDefault(p => p.ApprovalId == c.ApprovalId)
                        ?? throw new InvalidOperationException($"No tool invocation found for approval ID \"{c.ApprovalId}\".");
                    (answered.State, answered.Approved) = ("approval-responded", c.Approved);
                    break;
                case "tool-output-available":
                    var done = message.Tool(c.ToolCallId!);
                    (done.State, done.Output) = ("output-available", c.Output);
                    done.ProviderExecuted = c.ProviderExecuted ?? done.ProviderExecuted;
                    break;
                case "tool-output-error":
                    var failed = message.Tool(c.ToolCallId!);
                    (failed.State, failed.ErrorText) = ("output-error", c.ErrorText);
                    failed.ProviderExecuted = c.ProviderExecuted ?? failed.ProviderExecuted;
                    break;
                case "tool-output-denied":
                    message.Tool(c.ToolCallId!).State = "output-denied";
                    break;
                default:
                    if (c.Type.StartsWith("data-", StringComparison.Ordinal))
                    {
                        var existing = c.Id is null ? null : message.Parts.FirstOrDefault(p => p.Type == c.Type && p.Id == c.Id);
                        if (existing is not null)
                        {
                            existing.Data = c.Data;
                        }
                        else
                        {
                            message.Parts.Add(new UiPart(c.Type) { Id = c.Id, Data = c.Data });
                        }
                    }

                    break;
            }
        }

        return message;
    }

    /// <summary>The tool part of a call: in the current step first, then anywhere (the SDK's <c>getToolInvocation</c>).</summary>
    public UiPart Tool(string toolCallId) =>
        CurrentStep().LastOrDefault(p => p.ToolCallId == toolCallId) ?? Parts.LastOrDefault(p => p.ToolCallId == toolCallId)
        ?? throw new InvalidOperationException($"No tool invocation found for tool call ID \"{toolCallId}\".");

    public IEnumerable<UiPart> CurrentStep() => Parts.Skip(Parts.FindLastIndex(p => p.Type == "step-start") + 1);
}

internal sealed class UiPart(string type)
{
    public string Type { get; } = type;
    public string? Id { get; init; }
    public string Text { get; set; } = "";
    public string? State { get; set; }
    public string? ToolCallId { get; init; }
    public string? ToolName { get; init; }
    public JsonElement? Input { get; set; }
    public JsonElement? Output { get; set; }
    public string? ErrorText { get; set; }
    public bool? ProviderExecuted { get; set; }
    public object? CallProviderMetadata { get; set; }
    public string? ApprovalId { get; set; }
    public bool? Approved { get; set; }
    public object? Data { get; set; }
}
