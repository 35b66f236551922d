using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.History;
using OpencodeGateway.Sessions.Internal;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Snapshots;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Sessions;

/// <summary>Session operations shared by the hub and the HTTP API: validation, upstream lookup, live state.</summary>
internal sealed partial class SessionService(UpstreamRegistry upstreams, LiveSessionRegistry live, ISessionHistory history,
    SnapshotService snapshots, SessionTree tree, PromptAdmission admission, IOptions<PromptOptions> prompts,
    IOptions<SnapshotOptions> snapshotOptions)
{
    public const int MaxPromptLength = 256 * 1024;

    // Which upstream holds a session, learned from creates and lookups (only matters with several upstreams).
    private readonly ConcurrentDictionary<string, string> _upstreamOf = new(StringComparer.Ordinal);

    public static void ValidateSessionId(string? sessionId)
    {
        if (string.IsNullOrEmpty(sessionId) || !SessionIds.Session().IsMatch(sessionId))
        {
            throw GatewayException.BadRequest("sessionId must be an opencode session id ('ses_' followed by letters and digits).");
        }
    }

    /// <summary>Finds the upstream of a session: the one named, the only one, or the one that knows the session.</summary>
    public async Task<OpencodeClient> ResolveAsync(string sessionId, string? upstream, CancellationToken ct)
    {
        ValidateSessionId(sessionId);
        if (!string.IsNullOrEmpty(upstream))
        {
            return upstreams.Get(upstream);
        }

        if (upstreams.All.Count == 1)
        {
            return upstreams.Default;
        }

        if (_upstreamOf.TryGetValue(sessionId, out var known))
        {
            return upstreams.Get(known);
        }

        foreach (var client in upstreams.All)
        {
            if (live.TryGet(new SessionKey(client.UpstreamId, sessionId), out _))
            {
                return client;
            }
        }

        var lookups = upstreams.All.Select(async client =>
        {
            try
            {
                await client.GetSessionAsync(sessionId, ct);
                return (Client: client, Failure: (GatewayException?)null);
            }
            catch (GatewayException e)
            {
                return (Client: (OpencodeClient?)null, Failure: e);
            }
        });
        var answers = await Task.WhenAll(lookups);
        var found = answers.FirstOrDefault(a => a.Client is not null).Client;
        if (found is null)
        {
            // "Not found" only when every upstream said so; an unreachable one may hold the session.
            throw answers.Select(a => a.Failure).FirstOrDefault(f => f!.Code != GatewayErrorCodes.SessionNotFound)
                ?? GatewayException.SessionNotFound(sessionId);
        }

        _upstreamOf[sessionId] = found.UpstreamId;
        return found;
    }

    public async Task<JsonElement> CreateAsync(string? upstream, string? title, CancellationToken ct)
    {
        if (title is { Length: > 512 })
        {
            throw GatewayException.BadRequest("title must be at most 512 characters.");
        }

        var client = string.IsNullOrEmpty(upstream) ? upstreams.Default : upstreams.Get(upstream);
        var info = await client.CreateSessionAsync(title, ct);
        if (info.TryGetProperty("id", out var id) && id.GetString() is { } sessionId)
        {
            _upstreamOf[sessionId] = client.UpstreamId;
        }

        return info;
    }

    /// <summary>
    /// Starts watching: the caller must already receive the session's events (its feed runs and the connection is in
    /// its group). Recovers from <paramref name="since"/> when the history still holds everything after it in the
    /// same epoch, else builds a snapshot.
    /// </summary>
    public async Task<JoinResult> JoinAsync(SessionKey key, StreamPosition? since, SessionMetadata? metadata, CancellationToken ct)
    {
        if (since is not null && await history.ReadAfterAsync(key, since, ct) is { } missed)
        {
            return new JoinResult
            {
                Upstream = key.Upstream, SessionId = key.SessionId, Epoch = since.Epoch,
                Seq = missed.Count > 0 ? missed[^1].Seq : since.Seq, Recovered = true, Events = missed,
            };
        }

        var snapshot = await snapshots.BuildAsync(key, metadata, ct);
        return new JoinResult
        {
            Upstream = key.Upstream, SessionId = key.SessionId, Epoch = snapshot.Epoch, Seq = snapshot.Seq,
            Recovered = false, Snapshot = snapshot,
        };
    }

    /// <summary>
    /// Refuses (<c>rate_limited</c>) a prompt of <paramref name="user"/> to a session about to be created that their
    /// limits refuse, and counts it otherwise: then <see cref="PromptAsync"/> with <c>admitted</c>.
    /// </summary>
    public async ValueTask AdmitNewSessionPromptAsync(GatewayUser user, CancellationToken ct) => await admission.AdmitAsync(user, key: null, ct);

    /// <summary>
    /// Sends <paramref name="user"/>'s prompt, checked (<see cref="ValidatePrompt"/>) and admitted by the user's limits
    /// (unless <paramref name="admitted"/> by <see cref="AdmitNewSessionPromptAsync"/>) before anything is sent.
    /// </summary>
    public async Task<PromptResult> PromptAsync(GatewayUser user, OpencodeClient client, PromptRequest request, CancellationToken ct,
        bool admitted = false)
    {
        var parts = ValidatePrompt(request);
        var key = new SessionKey(client.UpstreamId, request.SessionId);
        // (a new session's prompt was admitted before the session was created: it has no position yet)
        var admittance = admitted ? default : await admission.AdmitAsync(user, key, ct);
        var busy = live.TryGet(key, out _) && live.Use(key, s => s.Busy);
        await admission.NoteAsync(user, key, admittance, ct);
        try
        {
            await client.PromptAsync(request.SessionId, parts, request.Agent, request.Model, ct);
        }
        catch
        {
            await admission.ForgetAsync(user, key, CancellationToken.None);
            throw;
        }

        return new PromptResult(request.SessionId, Queued: busy);
    }

    /// <summary>
    /// The prompt's parts, checked before anything is sent: text parts with text, <c>file</c> parts with a <c>data:</c>
    /// URL (base64) within <see cref="PromptOptions.MaxAttachmentBytes"/>; errors name the part and the limit.
    /// </summary>
    public IReadOnlyList<PromptPart> ValidatePrompt(PromptRequest request)
    {
        var parts = request.Parts is { Count: > 0 } ? request.Parts
            : !string.IsNullOrEmpty(request.Text) ? [new PromptPart("text", request.Text)]
            : throw GatewayException.BadRequest("A prompt needs text or at least one part.");
        if (request.Parts is { Count: > 0 } && !string.IsNullOrEmpty(request.Text))
        {
            throw GatewayException.BadRequest("Give either text or parts, not both.");
        }

        var limits = prompts.Value;
        var total = 0;
        var files = 0;
        for (var i = 0; i < parts.Count; i++)
        {
            switch (parts[i])
            {
                case null:
                    throw GatewayException.Invalid($"parts[{i}]", "must be a part object.");
                case { Type: "text" } text:
                    if (string.IsNullOrEmpty(text.Text))
                    {
                        throw GatewayException.Invalid($"parts[{i}].text", "must not be empty.");
                    }

                    SessionRules.RequireWellFormed(text.Text, request.Parts is null ? "text" : $"parts[{i}].text");

                    total += text.Text.Length;
                    break;
                case { Type: "file" } file:
                    if (++files > limits.MaxAttachments)
                    {
                        throw GatewayException.Invalid("parts", $"at most {limits.MaxAttachments} attachments are allowed "
                            + $"({PromptOptions.SectionName}:MaxAttachments).", GatewayErrorCodes.PayloadTooLarge);
                    }

                    ValidateAttachment(file, $"parts[{i}]", limits);
                    break;
                default:
                    throw GatewayException.Invalid($"parts[{i}].type", "must be 'text' or 'file'.");
            }
        }

        if (total > MaxPromptLength)
        {
            throw new GatewayException(GatewayErrorCodes.PayloadTooLarge, $"The prompt is longer than {MaxPromptLength} characters.");
        }

        if (request.Model is not null && (request.Model.IndexOf('/') is <= 0 || request.Model.EndsWith('/')))
        {
            throw GatewayException.BadRequest("model must be 'provider/model'.");
        }

        return parts;
    }

    private static void ValidateAttachment(PromptPart file, string field, PromptOptions limits)
    {
        if (file.Mime is null || !MediaType().IsMatch(file.Mime))
        {
            throw GatewayException.Invalid($"{field}.mime", "must be a media type such as 'image/png'.");
        }

        if (file.Filename is { } name && (name.Length is 0 or > 255 || name.Any(c => char.IsControl(c) || c is '/' or '\\')
                                         || !SessionRules.IsWellFormed(name)))
        {
            throw GatewayException.Invalid($"{field}.filename", "must be a file name of 1–255 characters, without paths or control characters.");
        }

        // Only data: URLs: the gateway fetches nothing on a client's behalf and opencode must not read paths for it.
        const string scheme = "data:";
        var url = file.Url;
        var comma = url?.IndexOf(',') ?? -1;
        if (url is null || !url.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) || comma < 0
            || !url.AsSpan(scheme.Length, comma - scheme.Length).EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
        {
            throw GatewayException.Invalid($"{field}.url", "must be a base64 data URL ('data:{mime};base64,…'); other URLs and paths are refused.");
        }

        var payload = url.AsSpan(comma + 1);
        // Checked on the encoded length first, so an oversized attachment is refused before its bytes are looked at.
        if ((long)payload.Length / 4 * 3 - 2 > limits.MaxAttachmentBytes)
        {
            throw GatewayException.Invalid($"{field}.url", $"the attachment is larger than {limits.MaxAttachmentBytes} bytes "
                + $"({PromptOptions.SectionName}:MaxAttachmentBytes).", GatewayErrorCodes.PayloadTooLarge);
        }

        if (!System.Buffers.Text.Base64.IsValid(payload, out var decoded))
        {
            throw GatewayException.Invalid($"{field}.url", "its data is not valid base64.");
        }

        if (decoded > limits.MaxAttachmentBytes)
        {
            throw GatewayException.Invalid($"{field}.url", $"the attachment is larger than {limits.MaxAttachmentBytes} bytes "
                + $"({PromptOptions.SectionName}:MaxAttachmentBytes).", GatewayErrorCodes.PayloadTooLarge);
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")]
    private static partial System.Text.RegularExpressions.Regex MediaType();

    public async Task ReplyPermissionAsync(OpencodeClient client, PermissionReplyRequest request, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(request.RequestId) || !SessionIds.Permission().IsMatch(request.RequestId))
        {
            throw GatewayException.BadRequest("requestId must be an opencode permission id ('per_' followed by letters and digits).");
        }

        if (request.Reply is not ("once" or "always" or "reject"))
        {
            throw GatewayException.BadRequest("reply must be 'once', 'always' or 'reject'.");
        }

        if (request.Message is { } message)
        {
            SessionRules.RequireWellFormed(message, "message");
        }

        // opencode's reply endpoint does not name the session: check the request is pending in the session's run.
        if (!await IsPendingInRunAsync(client, request.SessionId, request.RequestId, client.GetPendingPermissionsAsync, ct))
        {
            throw new GatewayException(GatewayErrorCodes.PermissionNotFound,
                $"Permission request '{request.RequestId}' is not pending on session '{request.SessionId}' or its subagents.");
        }

        await client.ReplyPermissionAsync(request.RequestId, request.Reply, request.Message, ct);
    }

    public async Task ReplyQuestionAsync(OpencodeClient client, QuestionReplyRequest request, CancellationToken ct)
    {
        ValidateQuestionId(request.RequestId);
        if (request.Answers is null || request.Answers.Any(a => a is null))
        {
            throw GatewayException.Invalid("answers", "must be an array with one array of answers per question.");
        }

        for (var i = 0; i < request.Answers.Count; i++)
        {
            var answers = request.Answers[i];
            if (answers.Count > MaxAnswersPerQuestion)
            {
                throw GatewayException.Invalid($"answers[{i}]", $"at most {MaxAnswersPerQuestion} answers per question are allowed.");
            }

            for (var j = 0; j < answers.Count; j++)
            {
                if (string.IsNullOrEmpty(answers[j]) || answers[j].Length > MaxAnswerLength)
                {
                    throw GatewayException.Invalid($"answers[{i}][{j}]", $"must be a non-empty string of at most {MaxAnswerLength} characters.");
                }

                SessionRules.RequireWellFormed(answers[j], $"answers[{i}][{j}]");
            }
        }

        var asked = await PendingInRunAsync(client, request.SessionId, request.RequestId, client.GetPendingQuestionsAsync, ct)
            ?? throw QuestionNotFound(request.SessionId, request.RequestId);
        var questions = asked.TryGetProperty("questions", out var list) && list.ValueKind == JsonValueKind.Array ? list.GetArrayLength() : -1;
        if (questions >= 0 && request.Answers.Count != questions)
        {
            throw GatewayException.Invalid("answers", $"the request has {questions} question(s): give one array of answers for each.");
        }

        await client.ReplyQuestionAsync(request.RequestId, request.Answers, ct);
    }

    public async Task RejectQuestionAsync(OpencodeClient client, QuestionRejectRequest request, CancellationToken ct)
    {
        ValidateQuestionId(request.RequestId);
        _ = await PendingInRunAsync(client, request.SessionId, request.RequestId, client.GetPendingQuestionsAsync, ct)
            ?? throw QuestionNotFound(request.SessionId, request.RequestId);
        await client.RejectQuestionAsync(request.RequestId, ct);
    }

    /// <summary>
    /// The messages before a cursor (a snapshot's or a page's <c>earlier</c>), oldest first, as opencode stored them.
    /// </summary>
    public async Task<MessagePage> LoadEarlierAsync(OpencodeClient client, string sessionId, string? before, int? limit, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(before) || !OpencodeClient.TryReadMessageCursor(before, out _))
        {
            throw GatewayException.Invalid("before", "must be the cursor of a snapshot's or a page's 'earlier'.");
        }

        var size = limit ?? snapshotOptions.Value.MaxMessages;
        if (size is < 1 or > SnapshotOptions.MaxPageSize)
        {
            throw GatewayException.Invalid("limit", $"must be between 1 and {SnapshotOptions.MaxPageSize}.");
        }

        var (messages, earlier) = await client.GetMessagePageAsync(sessionId, size, before, ct);
        return new MessagePage(messages, earlier is null ? null : new EarlierMessages(earlier));
    }

    private const int MaxAnswersPerQuestion = 100;
    private const int MaxAnswerLength = 8192;

    private static void ValidateQuestionId(string? requestId)
    {
        if (string.IsNullOrEmpty(requestId) || !SessionIds.Question().IsMatch(requestId))
        {
            throw GatewayException.BadRequest("requestId must be an opencode question id ('que_' followed by letters and digits).");
        }
    }

    private static GatewayException QuestionNotFound(string sessionId, string requestId) =>
        new(GatewayErrorCodes.QuestionNotFound, $"Question request '{requestId}' is not pending on session '{sessionId}' or its subagents.");

    private async Task<bool> IsPendingInRunAsync(OpencodeClient client, string sessionId, string requestId,
        Func<string?, CancellationToken, Task<JsonElement>> listPending, CancellationToken ct) =>
        await PendingInRunAsync(client, sessionId, requestId, listPending, ct) is not null;

    /// <summary>
    /// The pending request (a permission or a question, from <paramref name="listPending"/> of the session's directory)
    /// when it was raised in the session or in one of its descendants; null otherwise.
    /// </summary>
    private async Task<JsonElement?> PendingInRunAsync(OpencodeClient client, string sessionId, string requestId,
        Func<string?, CancellationToken, Task<JsonElement>> listPending, CancellationToken ct)
    {
        var info = await client.GetSessionAsync(sessionId, ct);
        var directory = info.TryGetProperty("directory", out var d) ? d.GetString() : null;
        var pending = await listPending(directory, ct);
        if (pending.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        foreach (var request in pending.EnumerateArray())
        {
            if (!request.TryGetProperty("id", out var id) || !id.ValueEquals(requestId)
                || !request.TryGetProperty("sessionID", out var owner) || owner.GetString() is not { } askedIn)
            {
                continue;
            }

            if (askedIn == sessionId)
            {
                return request;
            }

            try
            {
                var ancestors = await tree.GetAncestorsAsync(new SessionKey(client.UpstreamId, askedIn), ct);
                return ancestors.Contains(sessionId, StringComparer.Ordinal) ? request : null;
            }
            catch (GatewayException e) when (e.Code == GatewayErrorCodes.SessionNotFound)
            {
                return null; // asked in a session opencode no longer has: not this run's
            }
        }

        return null;
    }
}
