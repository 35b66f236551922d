using System.Text;
using System.Text.Json;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// Turns one answer of a session (the assistant messages after a prompt) into UI message stream chunks, from the
/// session's events in order and from snapshots. The answer is one UI message whose id is its first assistant
/// message's id; each opencode step (<c>step-start</c> part) is a step; text and reasoning parts stream as their UI
/// parts, tools as <c>dynamic-tool</c> parts executed by the provider.
/// <para>
/// What the run waits for: a permission request is a tool approval (<c>tool-approval-request</c>, approval id = the
/// request id) on the tool call it belongs to, or, for a request raised in a subagent's session, on the root's tool
/// call that runs that subagent (the <c>task</c> part whose <c>state.metadata.sessionId</c> is the subagent's session or
/// one of its ancestors); it is also a <c>data-opencode-permission</c> part. A question is a tool part the app answers
/// (<c>providerExecuted: false</c>, input <c>{questions}</c>, <c>callProviderMetadata.opencode.requestId</c>): opencode's
/// own <c>question</c> tool part when the session itself asked, else a <c>dynamic-tool</c> part named <c>question</c>
/// whose tool call id is the request id. <see cref="WaitingForUser"/> says when the run waits for an answer the app
/// can give: the stream ends there, as the AI SDK's own tool loop ends at an approval, and the app's next POST carries the
/// answer (<see cref="Continue"/>).
/// </para>
/// <para>
/// What is shown of a part is always a prefix of its text or marked: a gap (<c>part.gap</c>) ends the
/// text part and adds a <c>data-opencode-gap</c> part before the text that follows. A restated text that does not
/// extend what was shown is shown again: when its part is in the current step, by <c>reset-step</c> and the step's
/// parts restated; else after a <c>data-opencode-gap</c> part with <c>restated: true</c> (the text before it, of that
/// part, is superseded).
/// </para>
/// </summary>
/// <param name="sessionId">The session the stream is of: requests of other sessions are its descendants'.</param>
/// <param name="roleOf">The role of a message this mapper has not seen the info of.</param>
internal sealed class UiMessageMapper(string sessionId, Func<string, string?> roleOf)
{
    /// <summary>The tool name of questions the app answers.</summary>
    public const string QuestionTool = "question";

    /// <summary>How far up a chain of subagent sessions a request is followed to the root's tool call.</summary>
    private const int MaxDepth = 64;

    private static readonly JsonElement EmptyInput = JsonDocument.Parse("{}").RootElement.Clone();

    private readonly Dictionary<string, string> _roles = new(StringComparer.Ordinal);
    private readonly HashSet<string> _answerMessages = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Item> _parts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ToolView> _tools = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ToolView> _subagentTools = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _parents = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Request> _requests = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Status, JsonElement? Answers)> _answered = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ClientApproval> _clientApprovals = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ClientToolResult> _clientResults = new(StringComparer.Ordinal);
    private List<Item> _step = [];
    private string? _finishReason;
    private int _markers;

    /// <summary>The UI message's id: the answer's first assistant message, once known.</summary>
    public string? MessageId { get; private set; }

    public bool Started { get; private set; }

    /// <summary>
    /// A permission request or a question waits for an answer, shown as the app answers it: an approval request on its
    /// tool call, a question part. (A permission that is only a <c>data-opencode-permission</c> part so far — its tool call
    /// is not shown yet, or has no input yet — does not end the stream: its approval follows.)
    /// </summary>
    public bool WaitingForUser => _requests.Values.Any(r => r.Status == Request.Pending && r.Shown);

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
            case SessionEventTypes.PartDelta when evt.Field == StreamedFields.Text && IsAnswer(evt.MessageId!, output):
                return View(evt.MessageId!, evt.PartId!, type: null) is not { } view || AppendAt(view, evt.Offset!.Value, evt.Delta!, output);
            case SessionEventTypes.PartGap when evt.Field == StreamedFields.Text && _parts.GetValueOrDefault(evt.PartId!) is TextView gapped:
                return Gap(gapped, evt.Offset!.Value, output);
            case SessionEventTypes.PartRemoved when _parts.Remove(evt.PartId!, out var removed):
                if (removed is ToolView tool)
                {
                    _tools.Remove(tool.CallId);
                }

                if (_step.Remove(removed))
                {
                    ResetStep(output);
                }

                return true;
            case SessionEventTypes.PermissionAsked when evt.Permission is { } request:
                OnPermissionAsked(request, evt.ChildSessionId, output);
                return true;
            case SessionEventTypes.PermissionReplied:
                OnAnswered(evt.RequestId!, evt.Reply is { Length: > 0 } reply ? reply : Request.Replied, answers: null, output);
                return true;
            case SessionEventTypes.QuestionAsked when evt.Question is { } question:
                OnQuestionAsked(question, evt.ChildSessionId, output);
                return true;
            case SessionEventTypes.QuestionReplied when evt.Question is { } replied && String(replied, "id") is { } repliedId:
                OnAnswered(repliedId, Request.Replied, replied.TryGetProperty("answers", out var answers) ? answers.Clone() : null, output);
                return true;
            case SessionEventTypes.QuestionRejected when evt.Question is { } rejected && String(rejected, "id") is { } rejectedId:
                OnAnswered(rejectedId, Request.Rejected, answers: null, output);
                return true;
            case SessionEventTypes.ChildUpdated when evt.Child is { } child:
                _parents[child.Id] = child.ParentId;
                AttachPending(output);
                return true;
            case SessionEventTypes.Error:
                OnError(evt.Error ?? default, output);
                return true;
            default:
                return true;
        }
    }

    /// <summary>
    /// Restates the answer from a snapshot: its messages (the assistant messages after the last user message), its
    /// descendants and what waits for an answer. What extends what was shown streams on; what contradicts it is shown
    /// again (see the class).
    /// </summary>
    public void Restate(IEnumerable<MessageWithParts> answer, SessionSnapshot snapshot, List<UiMessageChunk> output)
    {
        AddChildren(snapshot.Children);
        foreach (var message in answer)
        {
            var messageId = message.Info.GetProperty("id").GetString()!;
            OnMessage(messageId, message.Info, output);
            if (_answerMessages.Contains(messageId))
            {
                foreach (var part in message.Parts)
                {
                    OnPart(messageId, part.GetProperty("id").GetString()!, part, output, GapsOf(snapshot, part));
                }
            }
        }

        RestatePending(snapshot, output);
    }

    /// <summary>
    /// Continues the app's copy of the answer (<paramref name="client"/>) from a snapshot: the steps before the app's
    /// last one are taken as shown; the last one is shown again after <c>reset-step</c> (its parts may have changed
    /// since), with the approvals and answers the app holds, and the steps that followed after it.
    /// </summary>
    /// <param name="answered">Requests answered for this continuation (request id → reply, answers): not pending, whatever the snapshot says.</param>
    public void Continue(ClientAnswer client, IReadOnlyDictionary<string, (string Status, JsonElement? Answers)> answered,
        IReadOnlyList<MessageWithParts> answer, SessionSnapshot snapshot, List<UiMessageChunk> output)
    {
        MessageId = client.MessageId;
        foreach (var (id, reply) in answered)
        {
            _answered[id] = reply;
        }

        // An approval the app holds unanswered whose request opencode no longer lists was answered elsewhere, how is
        // not known: the call is shown without it rather than as still asking.
        var pending = snapshot.Permissions.Select(p => String(p, "id")).ToHashSet(StringComparer.Ordinal);
        foreach (var (callId, approval) in client.Approvals)
        {
            if (approval.Approved is not null || pending.Contains(approval.Id))
            {
                _clientApprovals[callId] = approval;
            }
        }

        foreach (var (callId, result) in client.Results)
        {
            _clientResults[callId] = result;
        }

        AddChildren(snapshot.Children);
        var shown = new List<UiMessageChunk>(); // what the app holds already
        var steps = 0;
        var live = client.Steps == 0;
        if (live)
        {
            ResumeClientStep(output);
        }

        foreach (var message in answer)
        {
            var messageId = message.Info.GetProperty("id").GetString()!;
            OnMessage(messageId, message.Info, live ? output : shown);
            if (!_answerMessages.Contains(messageId))
            {
                continue;
            }

            foreach (var part in message.Parts)
            {
                OnPart(messageId, part.GetProperty("id").GetString()!, part, live ? output : shown, GapsOf(snapshot, part));
                if (!live && String(part, "type") == "step-start" && ++steps == client.Steps)
                {
                    live = true;
                    ResumeClientStep(output);
                }
            }
        }

        if (!live)
        {
            // The app shows more steps than opencode has: show the last one again.
            EmitStart(output);
            ResetStep(output);
        }

        RestatePending(snapshot, output);
        RestoreClientItems(client, output);
    }

    /// <summary>The answer is complete, or waits for the user: ends the open text and reasoning parts, then <c>finish</c>.</summary>
    public void Finish(List<UiMessageChunk> output)
    {
        EnsureStarted(null, output);
        foreach (var view in _parts.Values.OfType<TextView>())
        {
            view.CloseSegment(output);
        }

        // A run that waits for approvals or answers ends its stream as the AI SDK's own tool loop does.
        output.Add(new UiMessageChunk(UiChunkTypes.Finish) { FinishReason = WaitingForUser ? "tool-calls" : FinishReasonOf(_finishReason) });
    }

    /// <summary>The stream's own failure (not opencode's): an <c>error</c> chunk.</summary>
    public void Fail(string errorText, List<UiMessageChunk> output)
    {
        EnsureStarted(null, output);
        output.Add(new UiMessageChunk(UiChunkTypes.Error) { ErrorText = errorText });
    }

    private void ResumeClientStep(List<UiMessageChunk> output)
    {
        EmitStart(output);
        output.Add(new UiMessageChunk(UiChunkTypes.ResetStep));
    }

    private void EmitStart(List<UiMessageChunk> output)
    {
        Started = true;
        output.Add(new UiMessageChunk(UiChunkTypes.Start) { MessageId = MessageId });
    }

    private static IReadOnlyList<int>? GapsOf(SessionSnapshot snapshot, JsonElement part) =>
        snapshot.Gaps is { } gaps && String(part, "id") is { } partId && gaps.TryGetValue(partId, out var fields)
            && fields.TryGetValue(StreamedFields.Text, out var offsets) ? offsets : null;

    private void AddChildren(IEnumerable<ChildSession> children)
    {
        foreach (var child in children)
        {
            _parents[child.Id] = child.ParentId;
        }
    }

    /// <summary>The snapshot's pending requests; requests this mapper holds as pending that it lacks were answered meanwhile.</summary>
    private void RestatePending(SessionSnapshot snapshot, List<UiMessageChunk> output)
    {
        var listed = snapshot.Permissions.Concat(snapshot.Questions).Select(r => String(r, "id")).ToHashSet(StringComparer.Ordinal);
        foreach (var request in _requests.Values.Where(r => r.Status == Request.Pending && !listed.Contains(r.Id)).ToList())
        {
            OnAnswered(request.Id, Request.Replied, answers: null, output);
        }

        foreach (var permission in snapshot.Permissions)
        {
            OnPermissionAsked(permission, DescendantOf(permission), output);
        }

        foreach (var question in snapshot.Questions)
        {
            OnQuestionAsked(question, DescendantOf(question), output);
        }
    }

    /// <summary>The descendant session that raised a request, or null for the session's own.</summary>
    private string? DescendantOf(JsonElement request) => String(request, "sessionID") is { } asker && asker != sessionId ? asker : null;

    /// <summary>
    /// Items of the app's last step this mapper cannot restate from opencode: permission parts and subagents' questions
    /// answered meanwhile (opencode no longer lists them).
    /// </summary>
    private void RestoreClientItems(ClientAnswer client, List<UiMessageChunk> output)
    {
        foreach (var part in client.LastStep)
        {
            var type = String(part, "type");
            if (type == UiChunkTypes.DataPermission && part.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Object
                && String(data, "requestId") is { } permissionId && !_requests.ContainsKey(permissionId)
                && data.TryGetProperty("request", out var permission) && permission.ValueKind == JsonValueKind.Object)
            {
                var status = _answered.TryGetValue(permissionId, out var reply) ? reply.Status
                    : String(data, "status") is { } shown and not Request.Pending ? shown : Request.Replied;
                AddPermission(permissionId, permission, String(data, "childSessionId"), status, output);
            }
            else if (ClientAnswer.IsToolPart(type) && String(part, "toolName") == QuestionTool && String(part, "toolCallId") is { } callId
                && RequestIdOf(part) == callId && !_requests.ContainsKey(callId) && part.TryGetProperty("input", out var input)
                && input.ValueKind == JsonValueKind.Object)
            {
                // A question part of its own: its tool call id is the request id.
                var (status, answers) = _answered.TryGetValue(callId, out var answered) ? answered
                    : client.Results.GetValueOrDefault(callId) switch
                    {
                        { ErrorText: not null } => (Request.Rejected, null),
                        { Output: { ValueKind: JsonValueKind.Object } given } when given.TryGetProperty("answers", out var a) => (Request.Replied, a),
                        _ => (Request.Replied, (JsonElement?)null),
                    };
                AddQuestion(callId, input, ChildSessionIdOf(part), status, answers, onTool: false, output);
            }
        }
    }

    private static string? RequestIdOf(JsonElement part) => String(OpencodeMetadataOf(part), "requestId");

    private static string? ChildSessionIdOf(JsonElement part) => String(OpencodeMetadataOf(part), "childSessionId");

    private static JsonElement OpencodeMetadataOf(JsonElement part) =>
        part.TryGetProperty("callProviderMetadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object
        && metadata.TryGetProperty("opencode", out var opencode) ? opencode : default;

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

    /// <summary>The text part's view, created on first sight; <paramref name="type"/> null: a delta, which does not say. Null: not a text part.</summary>
    private TextView? View(string messageId, string partId, string? type)
    {
        if (!_parts.TryGetValue(partId, out var item))
        {
            var created = new TextView(messageId, partId, type ?? "text") { TypeGuessed = type is null };
            _parts[partId] = created;
            _step.Add(created);
            return created;
        }

        if (item is not TextView view)
        {
            return null;
        }

        if (type is not null && view.TypeGuessed)
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

    private void OnPart(string messageId, string partId, JsonElement part, List<UiMessageChunk> output, IReadOnlyList<int>? gaps = null)
    {
        var type = String(part, "type") ?? "";
        var isNew = !_parts.ContainsKey(partId);
        switch (type)
        {
            case "text" or "reasoning":
            {
                if (View(messageId, partId, type) is not { } view)
                {
                    break;
                }

                if (part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                {
                    if (gaps is { Count: > 0 })
                    {
                        RestateWithGaps(view, text.GetString()!, gaps, output);
                    }
                    else
                    {
                        Restate(view, text.GetString()!, output);
                    }
                }

                if (part.TryGetProperty("time", out var time) && time.ValueKind == JsonValueKind.Object && time.TryGetProperty("end", out _))
                {
                    view.Ended = true;
                    view.CloseSegment(output);
                }

                break;
            }
            case "tool":
                OnTool(messageId, partId, part, output);
                break;
            case "step-start" when isNew:
                _parts[partId] = new StepMarker();
                output.Add(new UiMessageChunk(UiChunkTypes.StartStep));
                _step = [];
                break;
            case "step-finish" when isNew:
                _parts[partId] = new StepMarker();
                output.Add(new UiMessageChunk(UiChunkTypes.FinishStep));
                break;
        }
    }

    private void OnTool(string messageId, string partId, JsonElement part, List<UiMessageChunk> output)
    {
        if (!_parts.TryGetValue(partId, out var item))
        {
            var created = new ToolView(String(part, "callID") ?? partId);
            if (_clientApprovals.TryGetValue(created.CallId, out var approval))
            {
                created.Approvals.Add(new Approval(approval.Id) { Approved = approval.Approved, Reason = approval.Reason });
            }

            created.ClientResult = _clientResults.GetValueOrDefault(created.CallId);
            _parts[partId] = item = created;
            _tools[created.CallId] = created;
            _step.Add(created);
        }

        if (item is not ToolView view)
        {
            return;
        }

        var subagent = view.SubagentSessionId;
        view.Update(part);
        if (view.SubagentSessionId is { } started && started != subagent)
        {
            _subagentTools[started] = view;
        }

        AttachPending(output);
        view.Emit(output);
    }

    private static bool AppendAt(TextView view, int offset, string delta, List<UiMessageChunk> output)
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

    private bool Gap(TextView view, int offset, List<UiMessageChunk> output)
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

    private void Restate(TextView view, string text, List<UiMessageChunk> output)
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

    /// <summary>A snapshot's text with gaps: shown again, split at them, unless it is exactly what is shown.</summary>
    private void RestateWithGaps(TextView view, string text, IReadOnlyList<int> gaps, List<UiMessageChunk> output)
    {
        if (view.Known.Equals(text.AsSpan()) && view.Gaps.SequenceEqual(gaps))
        {
            return;
        }

        view.Gaps.Clear();
        view.Gaps.AddRange(gaps);
        Replace(view, text, keepGaps: true, output);
    }

    private void Replace(TextView view, string text, bool keepGaps, List<UiMessageChunk> output)
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

    private void OnPermissionAsked(JsonElement request, string? childSessionId, List<UiMessageChunk> output)
    {
        if (String(request, "id") is { } requestId && !_requests.ContainsKey(requestId))
        {
            var (status, _) = _answered.GetValueOrDefault(requestId, (Request.Pending, null));
            AddPermission(requestId, request, childSessionId, status, output);
        }
    }

    private void AddPermission(string requestId, JsonElement request, string? childSessionId, string status, List<UiMessageChunk> output)
    {
        EnsureStarted(null, output);
        var permission = new Request(requestId, isQuestion: false, request.Clone(), childSessionId) { Status = status };
        _requests[requestId] = permission;
        permission.Data = new PermissionView(permission);
        _step.Add(permission.Data);
        Attach(permission, output);
        permission.Data.Emit(output);
    }

    private void OnQuestionAsked(JsonElement request, string? childSessionId, List<UiMessageChunk> output)
    {
        if (String(request, "id") is { } requestId && !_requests.ContainsKey(requestId))
        {
            var (status, answers) = _answered.GetValueOrDefault(requestId, (Request.Pending, null));
            AddQuestion(requestId, request, childSessionId, status, answers, onTool: true, output);
        }
    }

    /// <param name="onTool">Show it on opencode's own tool call when the session itself asked and that call is shown.</param>
    private void AddQuestion(string requestId, JsonElement request, string? childSessionId, string status, JsonElement? answers,
        bool onTool, List<UiMessageChunk> output)
    {
        EnsureStarted(null, output);
        var question = new Request(requestId, isQuestion: true, request.Clone(), childSessionId) { Status = status, Answers = answers };
        _requests[requestId] = question;
        if (onTool && childSessionId is null && ToolCallOf(request) is { } callId && _tools.TryGetValue(callId, out var tool))
        {
            question.Target = tool;
            tool.Question = question;
            tool.Emit(output);
        }
        else
        {
            question.Part = new QuestionPart(question);
            _step.Add(question.Part);
            question.Part.Emit(output);
        }
    }

    /// <summary>A request was answered (<paramref name="status"/>: a permission's reply, or replied/rejected).</summary>
    private void OnAnswered(string requestId, string status, JsonElement? answers, List<UiMessageChunk> output)
    {
        if (!_requests.TryGetValue(requestId, out var request))
        {
            return;
        }

        request.Status = status;
        request.Answers ??= answers;
        if (request.Approval is { } approval && status is "once" or "always" or "reject")
        {
            approval.Approved = status != "reject";
        }

        request.Target?.Emit(output);
        request.Data?.Emit(output);
        request.Part?.Emit(output);
    }

    /// <summary>Shows permission requests on their tool call once it is known (a subagent's: once its task is).</summary>
    private void AttachPending(List<UiMessageChunk> output)
    {
        foreach (var request in _requests.Values)
        {
            if (!request.IsQuestion && request.Target is null)
            {
                Attach(request, output);
            }
        }
    }

    private void Attach(Request permission, List<UiMessageChunk> output)
    {
        var target = permission.ChildSessionId is { } child ? SubagentTool(child)
            : ToolCallOf(permission.Body) is { } callId ? _tools.GetValueOrDefault(callId) : null;
        if (target is null)
        {
            return;
        }

        permission.Target = target;
        var approval = target.Approvals.Find(a => a.Id == permission.Id);
        if (approval is null)
        {
            approval = new Approval(permission.Id);
            target.Approvals.Add(approval);
        }

        approval.Approved ??= permission.Status switch
        {
            "once" or "always" => true,
            "reject" => false,
            _ => null,
        };
        permission.Approval = approval;
        target.Emit(output);
        if (permission.Data is { Emitted: true } data)
        {
            data.Emit(output); // now with its tool call
        }
    }

    /// <summary>The root's tool call that runs <paramref name="descendant"/> or one of its ancestors.</summary>
    private ToolView? SubagentTool(string descendant)
    {
        var session = descendant;
        for (var depth = 0; depth < MaxDepth; depth++)
        {
            if (_subagentTools.TryGetValue(session, out var tool))
            {
                return tool;
            }

            if (!_parents.TryGetValue(session, out var parent) || parent == sessionId)
            {
                return null;
            }

            session = parent;
        }

        return null;
    }

    private static string? ToolCallOf(JsonElement request) =>
        request.TryGetProperty("tool", out var tool) && tool.ValueKind == JsonValueKind.Object ? String(tool, "callID") : null;

    private void OnError(JsonElement error, List<UiMessageChunk> output)
    {
        EnsureStarted(null, output);
        var name = String(error, "name") ?? "UnknownError";
        var message = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("data", out var data) ? String(data, "message") : null;
        output.Add(name == "MessageAbortedError"
            ? new UiMessageChunk(UiChunkTypes.Abort) { Reason = message ?? "aborted" }
            : new UiMessageChunk(UiChunkTypes.Error) { ErrorText = message is null ? name : $"{name}: {message}" });
    }

    private UiMessageChunk GapMarker(TextView view, int offset, bool restated) => new(UiChunkTypes.DataGap)
    {
        Id = $"gap-{++_markers}",
        Data = new GapData(view.MessageId, view.PartId, StreamedFields.Text, offset, restated ? true : null),
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

    /// <summary>The input of a question part: <c>{questions}</c> of opencode's request.</summary>
    internal static JsonElement QuestionInput(JsonElement request) =>
        JsonSerializer.SerializeToElement(new { questions = request.TryGetProperty("questions", out var questions) ? questions : default });

    /// <summary><c>callProviderMetadata</c> of a question part: which request it answers.</summary>
    internal static Dictionary<string, object> QuestionMetadata(string requestId, string? childSessionId) => new()
    {
        ["opencode"] = childSessionId is null
            ? new Dictionary<string, string> { ["requestId"] = requestId }
            : new Dictionary<string, string> { ["requestId"] = requestId, ["childSessionId"] = childSessionId },
    };

    /// <summary><c>data-opencode-gap</c>'s data.</summary>
    internal sealed record GapData(string MessageId, string PartId, string Field, int Offset, bool? Restated);

    /// <summary>
    /// <c>data-opencode-permission</c>'s data: opencode's request, its status (pending, once, always, reject; replied when
    /// answered in a way this stream did not see), the tool call whose approval it is, and the descendant session that
    /// asked.
    /// </summary>
    internal sealed record PermissionData(string RequestId, string Status, string? ToolCallId, JsonElement Request, string? ChildSessionId = null);

    /// <summary>A permission request or a question, and where it is shown.</summary>
    private sealed class Request(string id, bool isQuestion, JsonElement body, string? childSessionId)
    {
        public const string Pending = "pending";
        public const string Replied = "replied";
        public const string Rejected = "rejected";

        public string Id { get; } = id;
        public bool IsQuestion { get; } = isQuestion;
        /// <summary>opencode's request.</summary>
        public JsonElement Body { get; } = body;
        public string? ChildSessionId { get; } = childSessionId;
        /// <summary><see cref="Pending"/>, a permission's reply, <see cref="Replied"/> or <see cref="Rejected"/>.</summary>
        public required string Status { get; set; }
        /// <summary>A replied question's answers, when known.</summary>
        public JsonElement? Answers { get; set; }
        /// <summary>The tool call it is shown on: a permission's approval, or opencode's own question tool call.</summary>
        public ToolView? Target { get; set; }
        public Approval? Approval { get; set; }
        public PermissionView? Data { get; set; }
        /// <summary>A question shown as a part of its own.</summary>
        public QuestionPart? Part { get; set; }

        /// <summary>Shown for the app to answer: its approval requested, or its question part sent.</summary>
        public bool Shown => IsQuestion ? Part is not null || Target?.InputForApp == true : Approval?.RequestSent == true;
    }

    /// <summary>One approval of a tool call (a subagent's tool call can ask more than once).</summary>
    private sealed class Approval(string id)
    {
        public string Id { get; } = id;
        public bool? Approved { get; set; }
        public string? Reason { get; init; }
        public bool RequestSent { get; set; }
        public bool ResponseSent { get; set; }
    }

    /// <summary>Something the current step shows, which <c>reset-step</c> removes and the mapper then restates.</summary>
    private abstract class Item
    {
        public abstract void Restate(UiMessageMapper mapper, List<UiMessageChunk> output);
    }

    /// <summary>A <c>step-start</c> or <c>step-finish</c> part, seen once.</summary>
    private sealed class StepMarker : Item
    {
        public override void Restate(UiMessageMapper mapper, List<UiMessageChunk> output)
        {
        }
    }

    private sealed class PermissionView(Request request) : Item
    {
        public bool Emitted { get; private set; }

        public void Emit(List<UiMessageChunk> output)
        {
            Emitted = true;
            output.Add(new UiMessageChunk(UiChunkTypes.DataPermission)
            {
                Id = request.Id,
                Data = new PermissionData(request.Id, request.Status, request.Target?.CallId, request.Body, request.ChildSessionId),
            });
        }

        public override void Restate(UiMessageMapper mapper, List<UiMessageChunk> output) => Emit(output);
    }

    /// <summary>A question not on a tool call of the answer (a subagent's): a <c>question</c> tool part the app answers.</summary>
    private sealed class QuestionPart(Request question) : Item
    {
        private bool _started;
        private bool _resultSent;

        public void Emit(List<UiMessageChunk> output)
        {
            if (!_started)
            {
                _started = true;
                output.Add(new UiMessageChunk(UiChunkTypes.ToolInputStart) { ToolCallId = question.Id, ToolName = QuestionTool, Dynamic = true });
                output.Add(new UiMessageChunk(UiChunkTypes.ToolInputAvailable)
                {
                    ToolCallId = question.Id, ToolName = QuestionTool, Dynamic = true, ProviderExecuted = false,
                    Input = QuestionInput(question.Body), ProviderMetadata = QuestionMetadata(question.Id, question.ChildSessionId),
                });
            }

            if (_resultSent)
            {
                return;
            }

            // Answered, the question is opencode's (providerExecuted): useChat's sendAutomaticallyWhen must not send it again.
            if (question.Status == Request.Rejected)
            {
                _resultSent = true;
                output.Add(new UiMessageChunk(UiChunkTypes.ToolOutputError)
                {
                    ToolCallId = question.Id, Dynamic = true, ProviderExecuted = true, ErrorText = "The question was dismissed.",
                });
            }
            else if (question.Status == Request.Replied && question.Answers is { } answers)
            {
                _resultSent = true;
                output.Add(new UiMessageChunk(UiChunkTypes.ToolOutputAvailable)
                {
                    ToolCallId = question.Id, Dynamic = true, ProviderExecuted = true, Output = JsonSerializer.SerializeToElement(new { answers }),
                });
            }
        }

        public override void Restate(UiMessageMapper mapper, List<UiMessageChunk> output)
        {
            _started = _resultSent = false;
            Emit(output);
        }
    }

    /// <summary>An opencode tool part: a provider-executed <c>dynamic-tool</c> part, with its approvals and question.</summary>
    private sealed class ToolView(string callId) : Item
    {
        private JsonElement _part;
        private bool _started;
        private bool? _inputForApp; // null: input not sent; true: sent as the app's to answer
        private bool _resultSent;
        private bool _clientResultSent;

        public string CallId { get; } = callId;
        /// <summary>The session of the subagent it runs (opencode's <c>task</c>: <c>state.metadata.sessionId</c>).</summary>
        public string? SubagentSessionId { get; private set; }
        public List<Approval> Approvals { get; } = [];
        /// <summary>opencode's question this tool call asks (its <c>question</c> tool).</summary>
        public Request? Question { get; set; }
        /// <summary>What the app answered on this tool call, shown until opencode's own result.</summary>
        public ClientToolResult? ClientResult { get; set; }

        /// <summary>Its input was sent as the app's to answer (<c>providerExecuted: false</c>).</summary>
        public bool InputForApp => _inputForApp == true;

        private JsonElement State => _part.TryGetProperty("state", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;

        public void Update(JsonElement part)
        {
            _part = part.Clone();
            var metadata = State.ValueKind == JsonValueKind.Object && State.TryGetProperty("metadata", out var m) ? m : default;
            SubagentSessionId = String(metadata, "sessionId") ?? SubagentSessionId;
        }

        /// <summary>Sends what the app does not have yet, in the protocol's order: input, approvals, result.</summary>
        public void Emit(List<UiMessageChunk> output)
        {
            var state = State;
            var status = String(state, "status");
            var toolName = String(_part, "tool") ?? "unknown";
            var title = String(state, "title");
            if (!_started)
            {
                _started = true;
                output.Add(new UiMessageChunk(UiChunkTypes.ToolInputStart)
                {
                    ToolCallId = CallId, ToolName = toolName, Title = title, Dynamic = true, ProviderExecuted = true,
                });
            }

            // The app's to answer: a pending question, or one the app answered (until opencode's own result).
            var forApp = Question?.Status == Request.Pending || ClientResult is not null;
            var resend = forApp && _inputForApp == false && !_resultSent && Approvals.TrueForAll(a => !a.RequestSent);
            if ((_inputForApp is null && (forApp || status is "running" or "completed" or "error")) || resend)
            {
                _inputForApp = forApp;
                var requestId = Question?.Id ?? ClientResult?.RequestId;
                output.Add(new UiMessageChunk(UiChunkTypes.ToolInputAvailable)
                {
                    ToolCallId = CallId, ToolName = toolName, Title = title, Dynamic = true, ProviderExecuted = !forApp,
                    Input = Question is { } question ? QuestionInput(question.Body)
                        : state.ValueKind == JsonValueKind.Object && state.TryGetProperty("input", out var input) ? input.Clone() : EmptyInput,
                    ProviderMetadata = forApp && requestId is not null ? QuestionMetadata(requestId, childSessionId: null) : null,
                });
            }

            if (_inputForApp is null)
            {
                return;
            }

            foreach (var approval in Approvals)
            {
                if (!approval.RequestSent)
                {
                    approval.RequestSent = true;
                    output.Add(new UiMessageChunk(UiChunkTypes.ToolApprovalRequest) { ApprovalId = approval.Id, ToolCallId = CallId });
                }

                if (approval.Approved is { } approved && !approval.ResponseSent)
                {
                    approval.ResponseSent = true;
                    output.Add(new UiMessageChunk(UiChunkTypes.ToolApprovalResponse) { ApprovalId = approval.Id, Approved = approved, Reason = approval.Reason });
                }
            }

            if (_resultSent)
            {
                return;
            }

            if (status is "completed" or "error")
            {
                // A refused approval ends the call as denied, whatever came of it (a subagent may go on without the
                // refused call): the protocol has no result for a call whose approval was refused.
                _resultSent = true;
                output.Add(Approvals.Count > 0 && Approvals[^1].Approved == false
                    ? new UiMessageChunk(UiChunkTypes.ToolOutputDenied) { ToolCallId = CallId }
                    : status == "completed"
                        ? new UiMessageChunk(UiChunkTypes.ToolOutputAvailable)
                        {
                            ToolCallId = CallId, Dynamic = true, ProviderExecuted = true,
                            Output = state.TryGetProperty("output", out var o) ? o.Clone() : null,
                        }
                        : new UiMessageChunk(UiChunkTypes.ToolOutputError)
                        {
                            ToolCallId = CallId, Dynamic = true, ProviderExecuted = true, ErrorText = String(state, "error") ?? "The tool failed.",
                        });
            }
            else if (ClientResult is { } result && Question?.Status != Request.Pending && !_clientResultSent)
            {
                // Sent to opencode, the answer is opencode's (providerExecuted): sendAutomaticallyWhen must not send it again.
                _clientResultSent = true;
                output.Add(result.ErrorText is { } error
                    ? new UiMessageChunk(UiChunkTypes.ToolOutputError) { ToolCallId = CallId, Dynamic = true, ProviderExecuted = true, ErrorText = error }
                    : new UiMessageChunk(UiChunkTypes.ToolOutputAvailable) { ToolCallId = CallId, Dynamic = true, ProviderExecuted = true, Output = result.Output });
            }
        }

        public override void Restate(UiMessageMapper mapper, List<UiMessageChunk> output)
        {
            _started = _resultSent = _clientResultSent = false;
            _inputForApp = null;
            foreach (var approval in Approvals)
            {
                approval.RequestSent = approval.ResponseSent = false;
            }

            Emit(output);
        }
    }

    private sealed class TextView(string messageId, string partId, string type) : Item
    {
        public string MessageId { get; } = messageId;
        public string PartId { get; } = partId;
        public string Type { get; set; } = type;
        public bool TypeGuessed { get; set; }
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

        public override void Restate(UiMessageMapper mapper, List<UiMessageChunk> output) => EmitSegments(mapper, output);
    }
}
