using System.Text;
using System.Text.Json;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// Turns one answer of a session (the assistant messages after a prompt) into UI message stream chunks, from the
/// session's events in order and from snapshots. The answer is one UI message whose id is its first assistant
/// message's id; each opencode step (<c>step-start</c> part) is a step; text and reasoning parts stream as their UI
/// parts, tools as <c>dynamic-tool</c> parts executed by the provider, permission requests as
/// <c>data-opencode-permission</c> parts.
/// <para>
/// What is shown of a part is always a prefix of its text or marked: a gap (design.md's <c>part.gap</c>) ends the
/// text part and adds a <c>data-opencode-gap</c> part before the text that follows. A restated text that does not
/// extend what was shown is shown again: when its part is in the current step, by <c>reset-step</c> and the step's
/// parts restated; else after a <c>data-opencode-gap</c> part with <c>restated: true</c> (the text before it, of that
/// part, is superseded).
/// </para>
/// </summary>
internal sealed class UiMessageMapper(Func<string, string?> roleOf)
{
    /// <summary>design.md's gap event: <c>{messageId, partId, field, offset}</c>.</summary>
    internal const string PartGap = "part.gap";

    private readonly Dictionary<string, string> _roles = new(StringComparer.Ordinal);
    private readonly HashSet<string> _answerMessages = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PartView> _parts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PermissionView> _permissions = new(StringComparer.Ordinal);
    private List<Item> _step = [];
    private string? _finishReason;
    private int _markers;

    /// <summary>The UI message's id: the answer's first assistant message, once known.</summary>
    public string? MessageId { get; private set; }

    public bool Started { get; private set; }

    /// <summary>
    /// Maps one event. False when the event shows text the mapper never saw (a delta past the part's end): restate the
    /// answer from a snapshot (<see cref="Restate"/>) before going on.
    /// </summary>
    public bool Apply(SessionEvent evt, List<UiMessageChunk> output)
    {
        switch (evt.Type)
        {
            case SessionEventTypes.MessageUpdated when evt.Info is { } info:
                OnMessage(evt.MessageId!, info, output);
                return true;
            case SessionEventTypes.PartUpdated when evt.Part is { } part && IsAnswer(evt.MessageId!, output):
                OnPart(evt.MessageId!, evt.PartId!, part, output);
                return true;
            case SessionEventTypes.PartDelta when evt.Field == "text" && IsAnswer(evt.MessageId!, output):
            {
                var view = View(evt.MessageId!, evt.PartId!, type: null);
                return !view.IsText || AppendAt(view, evt.Offset!.Value, evt.Delta!, output);
            }
            case PartGap when evt.Field == "text" && _parts.TryGetValue(evt.PartId!, out var gapped) && gapped.IsText:
                return Gap(gapped, evt.Offset!.Value, output);
            case SessionEventTypes.PartRemoved when _parts.Remove(evt.PartId!, out var removed):
                if (_step.Remove(removed))
                {
                    ResetStep(output);
                }

                return true;
            case SessionEventTypes.PermissionAsked when evt.Permission is { } request:
                OnPermission(request, status: "pending", output);
                return true;
            case SessionEventTypes.PermissionReplied when _permissions.TryGetValue(evt.RequestId!, out var permission):
                permission.Status = evt.Reply ?? "replied";
                permission.Emit(output);
                return true;
            case SessionEventTypes.Error:
                OnError(evt.Error ?? default, output);
                return true;
            default:
                return true;
        }
    }

    /// <summary>
    /// Restates the answer from a snapshot's messages (the assistant messages after the last user message) and pending
    /// permissions: what extends what was shown streams on; what contradicts it is shown again (see the class).
    /// </summary>
    public void Restate(IEnumerable<MessageWithParts> answer, IEnumerable<JsonElement> permissions, List<UiMessageChunk> output)
    {
        foreach (var message in answer)
        {
            var messageId = message.Info.GetProperty("id").GetString()!;
            OnMessage(messageId, message.Info, output);
            if (!_answerMessages.Contains(messageId))
            {
                continue;
            }

            foreach (var part in message.Parts)
            {
                OnPart(messageId, part.GetProperty("id").GetString()!, part, output);
            }
        }

        foreach (var request in permissions)
        {
            OnPermission(request, status: "pending", output);
        }
    }

    /// <summary>The answer is complete: ends the open text and reasoning parts, then <c>finish</c>.</summary>
    public void Finish(List<UiMessageChunk> output)
    {
        EnsureStarted(null, output);
        foreach (var view in _parts.Values)
        {
            view.CloseSegment(output);
        }

        output.Add(new UiMessageChunk(UiChunkTypes.Finish) { FinishReason = FinishReasonOf(_finishReason) });
    }

    /// <summary>The stream's own failure (not opencode's): an <c>error</c> chunk.</summary>
    public void Fail(string errorText, List<UiMessageChunk> output)
    {
        EnsureStarted(null, output);
        output.Add(new UiMessageChunk(UiChunkTypes.Error) { ErrorText = errorText });
    }

    private void OnMessage(string messageId, JsonElement info, List<UiMessageChunk> output)
    {
        var role = String(info, "role") ?? "";
        _roles[messageId] = role;
        if (role != "assistant")
        {
            return;
        }

        if (_answerMessages.Add(messageId))
        {
            EnsureStarted(messageId, output);
        }

        if (String(info, "finish") is { } finish)
        {
            _finishReason = finish;
        }
    }

    private bool IsAnswer(string messageId, List<UiMessageChunk> output)
    {
        if (_answerMessages.Contains(messageId))
        {
            return true;
        }

        if (!_roles.TryGetValue(messageId, out var role))
        {
            role = roleOf(messageId) ?? "assistant";
            _roles[messageId] = role;
        }

        if (role != "assistant")
        {
            return false;
        }

        _answerMessages.Add(messageId);
        EnsureStarted(messageId, output);
        return true;
    }

    private void EnsureStarted(string? messageId, List<UiMessageChunk> output)
    {
        if (Started)
        {
            return;
        }

        Started = true;
        MessageId = messageId;
        output.Add(new UiMessageChunk(UiChunkTypes.Start) { MessageId = messageId });
    }

    /// <summary>The part's view, created on first sight; <paramref name="type"/> null: a delta, which does not say.</summary>
    private PartView View(string messageId, string partId, string? type)
    {
        if (!_parts.TryGetValue(partId, out var view))
        {
            view = new PartView(messageId, partId, type ?? "text") { TypeGuessed = type is null };
            _parts[partId] = view;
            if (view.IsText || view.IsTool)
            {
                _step.Add(view);
            }
        }
        else if (type is not null && view.TypeGuessed)
        {
            // A delta came before its part said what it is: until text is shown, the part may still change kind.
            view.TypeGuessed = false;
            if (view.Segments == 0 && type is "text" or "reasoning")
            {
                view.Type = type;
            }
        }

        return view;
    }

    private void OnPart(string messageId, string partId, JsonElement part, List<UiMessageChunk> output)
    {
        var type = String(part, "type") ?? "";
        var isNew = !_parts.ContainsKey(partId);
        switch (type)
        {
            case "text" or "reasoning":
            {
                var view = View(messageId, partId, type);
                if (part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                {
                    Restate(view, text.GetString()!, output);
                }

                if (part.TryGetProperty("time", out var time) && time.ValueKind == JsonValueKind.Object && time.TryGetProperty("end", out _))
                {
                    view.Ended = true;
                    view.CloseSegment(output);
                }

                break;
            }
            case "tool":
                View(messageId, partId, type).UpdateTool(part, output);
                break;
            case "step-start" when isNew:
                _parts[partId] = new PartView(messageId, partId, type);
                output.Add(new UiMessageChunk(UiChunkTypes.StartStep));
                _step = [];
                break;
            case "step-finish" when isNew:
                _parts[partId] = new PartView(messageId, partId, type);
                output.Add(new UiMessageChunk(UiChunkTypes.FinishStep));
                break;
        }
    }

    private static bool AppendAt(PartView view, int offset, string delta, List<UiMessageChunk> output)
    {
        var length = view.Known.Length;
        if (offset > length)
        {
            return false;
        }

        if (offset + delta.Length > length)
        {
            var tail = delta[(length - offset)..];
            view.Known.Append(tail);
            view.EmitText(tail, output);
        }

        return true;
    }

    private bool Gap(PartView view, int offset, List<UiMessageChunk> output)
    {
        if (offset > view.Known.Length)
        {
            return false;
        }

        if (view.Gaps.Contains(offset))
        {
            return true;
        }

        view.Gaps.Add(offset);
        view.Gaps.Sort();
        if (offset == view.Known.Length)
        {
            view.CloseSegment(output);
            output.Add(GapMarker(view, offset, restated: false));
        }
        else
        {
            // Text after the offset was shown as continuous: show the part again, split at its gaps.
            Replace(view, view.Known.ToString(), keepGaps: true, output);
        }

        return true;
    }

    private void Restate(PartView view, string text, List<UiMessageChunk> output)
    {
        var known = view.Known.ToString();
        if (view.Gaps.Count == 0 && text.StartsWith(known, StringComparison.Ordinal))
        {
            AppendAt(view, known.Length, text[known.Length..], output);
        }
        else if (view.Gaps.Count > 0 || !string.Equals(text, known, StringComparison.Ordinal))
        {
            Replace(view, text, keepGaps: false, output);
        }
    }

    private void Replace(PartView view, string text, bool keepGaps, List<UiMessageChunk> output)
    {
        view.Known.Clear().Append(text);
        if (!keepGaps)
        {
            view.Gaps.Clear();
        }

        if (_step.Contains(view))
        {
            ResetStep(output);
            return;
        }

        view.CloseSegment(output);
        output.Add(GapMarker(view, 0, restated: true));
        view.EmitSegments(this, output);
    }

    private void ResetStep(List<UiMessageChunk> output)
    {
        output.Add(new UiMessageChunk(UiChunkTypes.ResetStep));
        foreach (var item in _step)
        {
            item.Restate(this, output);
        }
    }

    private void OnPermission(JsonElement request, string status, List<UiMessageChunk> output)
    {
        if (String(request, "id") is not { } requestId)
        {
            return;
        }

        EnsureStarted(null, output);
        if (!_permissions.TryGetValue(requestId, out var permission))
        {
            permission = new PermissionView(requestId, request);
            _permissions[requestId] = permission;
            _step.Add(permission);
        }
        else if (permission.Status == status)
        {
            return;
        }

        permission.Status = status;
        permission.Emit(output);
    }

    private void OnError(JsonElement error, List<UiMessageChunk> output)
    {
        EnsureStarted(null, output);
        var name = String(error, "name") ?? "UnknownError";
        var message = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("data", out var data) ? String(data, "message") : null;
        output.Add(name == "MessageAbortedError"
            ? new UiMessageChunk(UiChunkTypes.Abort) { Reason = message ?? "aborted" }
            : new UiMessageChunk(UiChunkTypes.Error) { ErrorText = message is null ? name : $"{name}: {message}" });
    }

    private UiMessageChunk GapMarker(PartView view, int offset, bool restated) => new(UiChunkTypes.DataGap)
    {
        Id = $"gap-{++_markers}",
        Data = new GapData(view.MessageId, view.PartId, "text", offset, restated ? true : null),
    };

    /// <summary>opencode's finish reasons as the AI SDK names them.</summary>
    internal static string? FinishReasonOf(string? finish) => finish switch
    {
        null => null,
        "stop" or "length" or "content-filter" or "tool-calls" or "error" => finish,
        _ => "other",
    };

    internal static string? String(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary><c>data-opencode-gap</c>'s data.</summary>
    internal sealed record GapData(string MessageId, string PartId, string Field, int Offset, bool? Restated);

    /// <summary><c>data-opencode-permission</c>'s data: opencode's request and its status (pending, once, always, reject).</summary>
    internal sealed record PermissionData(string RequestId, string Status, string? ToolCallId, JsonElement Request);

    /// <summary>Something the current step shows, which <c>reset-step</c> removes and the mapper then restates.</summary>
    private abstract class Item
    {
        public abstract void Restate(UiMessageMapper mapper, List<UiMessageChunk> output);
    }

    private sealed class PermissionView(string requestId, JsonElement request) : Item
    {
        public string Status { get; set; } = "pending";

        public void Emit(List<UiMessageChunk> output)
        {
            var tool = request.TryGetProperty("tool", out var t) && t.ValueKind == JsonValueKind.Object ? String(t, "callID") : null;
            output.Add(new UiMessageChunk(UiChunkTypes.DataPermission)
            {
                Id = requestId,
                Data = new PermissionData(requestId, Status, tool, request),
            });
        }

        public override void Restate(UiMessageMapper mapper, List<UiMessageChunk> output) => Emit(output);
    }

    private sealed class PartView(string messageId, string partId, string type) : Item
    {
        private JsonElement _tool;
        private bool _inputStartSent;
        private bool _inputSent;
        private bool _outputSent;

        public string MessageId { get; } = messageId;
        public string PartId { get; } = partId;
        public string Type { get; set; } = type;
        public bool TypeGuessed { get; set; }
        public bool IsText => Type is "text" or "reasoning";
        public bool IsTool => Type == "tool";
        /// <summary>The part's text as the gateway knows it (its offsets; no markers).</summary>
        public StringBuilder Known { get; } = new();
        /// <summary>Offsets in <see cref="Known"/> where the text is not continuous, sorted.</summary>
        public List<int> Gaps { get; } = [];
        public bool Ended { get; set; }
        /// <summary>Text parts shown for this part so far (a new one after each gap or restatement).</summary>
        public int Segments { get; private set; }
        private string? OpenSegment { get; set; }

        private string Kind => Type == "reasoning" ? "reasoning" : "text";

        public void EmitText(string text, List<UiMessageChunk> output)
        {
            if (text.Length == 0)
            {
                return;
            }

            if (OpenSegment is null)
            {
                OpenSegment = Segments == 0 ? PartId : $"{PartId}-{Segments}";
                Segments++;
                output.Add(new UiMessageChunk($"{Kind}-start")
                {
                    Id = OpenSegment,
                    ProviderMetadata = new Dictionary<string, object>
                    {
                        ["opencode"] = new Dictionary<string, string> { ["messageId"] = MessageId, ["partId"] = PartId },
                    },
                });
            }

            output.Add(new UiMessageChunk($"{Kind}-delta") { Id = OpenSegment, Delta = text });
        }

        public void CloseSegment(List<UiMessageChunk> output)
        {
            if (OpenSegment is not null)
            {
                output.Add(new UiMessageChunk($"{Kind}-end") { Id = OpenSegment });
                OpenSegment = null;
            }
        }

        /// <summary>Shows the whole known text again as new text parts, split at the gaps by gap markers.</summary>
        public void EmitSegments(UiMessageMapper mapper, List<UiMessageChunk> output)
        {
            OpenSegment = null;
            var text = Known.ToString();
            var start = 0;
            foreach (var gap in Gaps)
            {
                EmitText(text[start..gap], output);
                CloseSegment(output);
                output.Add(mapper.GapMarker(this, gap, restated: false));
                start = gap;
            }

            EmitText(text[start..], output);
            if (Ended)
            {
                CloseSegment(output);
            }
        }

        public void UpdateTool(JsonElement part, List<UiMessageChunk> output)
        {
            _tool = part.Clone();
            var state = part.TryGetProperty("state", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;
            var status = String(state, "status");
            var callId = String(part, "callID") ?? PartId;
            var toolName = String(part, "tool") ?? "unknown";
            var title = String(state, "title");
            if (!_inputStartSent)
            {
                _inputStartSent = true;
                output.Add(new UiMessageChunk(UiChunkTypes.ToolInputStart)
                {
                    ToolCallId = callId, ToolName = toolName, Title = title, Dynamic = true, ProviderExecuted = true,
                });
            }

            if (status is "running" or "completed" or "error" && !_inputSent)
            {
                _inputSent = true;
                output.Add(new UiMessageChunk(UiChunkTypes.ToolInputAvailable)
                {
                    ToolCallId = callId, ToolName = toolName, Title = title, Dynamic = true, ProviderExecuted = true,
                    Input = state.TryGetProperty("input", out var input) ? input.Clone() : JsonDocument.Parse("{}").RootElement.Clone(),
                });
            }

            if (status == "completed" && !_outputSent)
            {
                _outputSent = true;
                output.Add(new UiMessageChunk(UiChunkTypes.ToolOutputAvailable)
                {
                    ToolCallId = callId, Dynamic = true, ProviderExecuted = true,
                    Output = state.TryGetProperty("output", out var o) ? o.Clone() : null,
                });
            }
            else if (status == "error" && !_outputSent)
            {
                _outputSent = true;
                output.Add(new UiMessageChunk(UiChunkTypes.ToolOutputError)
                {
                    ToolCallId = callId, Dynamic = true, ProviderExecuted = true, ErrorText = String(state, "error") ?? "The tool failed.",
                });
            }
        }

        public override void Restate(UiMessageMapper mapper, List<UiMessageChunk> output)
        {
            if (IsTool)
            {
                _inputStartSent = _inputSent = _outputSent = false;
                UpdateTool(_tool, output);
            }
            else
            {
                EmitSegments(mapper, output);
            }
        }
    }
}
