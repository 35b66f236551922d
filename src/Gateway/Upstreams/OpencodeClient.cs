using System.Buffers.Text;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using Polly.CircuitBreaker;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Upstreams;

/// <summary>
/// Typed REST client of one opencode server, on its named <c>HttpClient</c> (<see cref="UpstreamHttpClients.Rest"/>);
/// upstream failures become <see cref="GatewayException"/>s.
/// </summary>
public sealed class OpencodeClient
{
    private readonly IHttpClientFactory _httpClients;
    private readonly string _clientName;

    internal OpencodeClient(UpstreamOptions options, bool configured, long registration, IHttpClientFactory httpClients)
    {
        Options = options;
        Configured = configured;
        _httpClients = httpClients;
        _clientName = UpstreamHttpClients.Rest(options.Id, registration);
        EventStreamClientName = UpstreamHttpClients.EventStream(options.Id, registration);
    }

    public UpstreamOptions Options { get; }

    public string UpstreamId => Options.Id;

    /// <summary>From <c>Gateway:Upstreams</c> (for good); false: registered at run time, removable.</summary>
    public bool Configured { get; }

    /// <summary>Name of this upstream's event-stream client (<see cref="UpstreamHttpClients.EventStream"/>).</summary>
    internal string EventStreamClientName { get; }

    internal string RestClientName => _clientName;

    public Task<JsonElement> CreateSessionAsync(string? title, CancellationToken ct) =>
        SendJsonAsync(HttpMethod.Post, "session", title is null ? new { } : new { title }, sessionId: null, ct, withDirectory: true);

    public Task<JsonElement> GetSessionAsync(string sessionId, CancellationToken ct) =>
        SendJsonAsync(HttpMethod.Get, $"session/{Escape(sessionId)}", body: null, sessionId, ct);

    public Task<JsonElement> UpdateSessionTitleAsync(string sessionId, string title, CancellationToken ct) =>
        SendJsonAsync(HttpMethod.Patch, $"session/{Escape(sessionId)}", new { title }, sessionId, ct);

    public async Task DeleteSessionAsync(string sessionId, CancellationToken ct) =>
        await SendJsonAsync(HttpMethod.Delete, $"session/{Escape(sessionId)}", body: null, sessionId, ct);

    /// <summary>The session's messages, oldest first; with <paramref name="limit"/>, only the most recent ones.</summary>
    public async Task<IReadOnlyList<MessageWithParts>> GetMessagesAsync(string sessionId, CancellationToken ct, int? limit = null)
    {
        var path = $"session/{Escape(sessionId)}/message" + (limit is { } n ? $"?limit={n}" : "");
        return ReadMessages(await SendJsonAsync(HttpMethod.Get, path, body: null, sessionId, ct));
    }

    /// <summary>
    /// The newest <paramref name="limit"/> messages before <paramref name="before"/> (a cursor of
    /// <see cref="MessageCursor"/>'s form; null: the newest of all), oldest first, and the cursor of the ones before them
    /// when there are any.
    /// </summary>
    public async Task<(IReadOnlyList<MessageWithParts> Messages, string? Earlier)> GetMessagePageAsync(string sessionId, int limit,
        string? before, CancellationToken ct)
    {
        var path = $"session/{Escape(sessionId)}/message?limit={limit}"
            + (before is null ? "" : $"&before={Escape(Convert.ToBase64String(Base64Url.DecodeFromChars(before)))}");
        var (root, next) = await SendJsonAsync(HttpMethod.Get, path, body: null, sessionId, ct, header: "x-next-cursor");
        return (ReadMessages(root), string.IsNullOrEmpty(next) ? null : Base64Url.EncodeToString(DecodeAnyBase64(next)));
    }

    /// <summary>
    /// A cursor of the messages before <paramref name="messageId"/>: opencode's own (1.18: <c>{"id":…,"time":…}</c>, the
    /// message and its creation time in milliseconds), in base64url so that it passes through URLs as it is.
    /// </summary>
    public static string MessageCursor(string messageId, long created) =>
        Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(new { id = messageId, time = created }));

    private static byte[] DecodeAnyBase64(string value) =>
        Base64Url.DecodeFromChars(value.TrimEnd('=').Replace('+', '-').Replace('/', '_'));

    /// <summary>The message a cursor of <see cref="MessageCursor"/>'s form points before; false for anything else.</summary>
    public static bool TryReadMessageCursor(string cursor, out string messageId)
    {
        messageId = "";
        if (cursor.Length is 0 or > 512)
        {
            return false;
        }

        try
        {
            using var document = JsonDocument.Parse(Base64Url.DecodeFromChars(cursor));
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("time", out var time) || !time.TryGetInt64(out _))
            {
                return false;
            }

            messageId = id.GetString()!;
            return messageId.StartsWith("msg_", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return false;
        }
    }

    private IReadOnlyList<MessageWithParts> ReadMessages(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Array)
        {
            throw Unexpected("a message list");
        }

        var messages = new List<MessageWithParts>(root.GetArrayLength());
        foreach (var item in root.EnumerateArray())
        {
            if (!item.TryGetProperty("info", out var info) || !item.TryGetProperty("parts", out var parts)
                || parts.ValueKind != JsonValueKind.Array)
            {
                throw Unexpected("messages with info and parts");
            }

            messages.Add(new MessageWithParts(info, [.. parts.EnumerateArray()]));
        }

        return messages;
    }

    /// <summary>Status of the busy sessions of a directory (idle sessions are absent).</summary>
    public Task<JsonElement> GetStatusMapAsync(string? directory, CancellationToken ct) =>
        SendJsonAsync(HttpMethod.Get, WithDirectory("session/status", directory), body: null, sessionId: null, ct);

    /// <summary>Pending permission requests of a directory.</summary>
    public Task<JsonElement> GetPendingPermissionsAsync(string? directory, CancellationToken ct) =>
        SendJsonAsync(HttpMethod.Get, WithDirectory("permission", directory), body: null, sessionId: null, ct);

    /// <summary>Pending questions of a directory (opencode's <c>question</c> tool).</summary>
    public Task<JsonElement> GetPendingQuestionsAsync(string? directory, CancellationToken ct) =>
        SendJsonAsync(HttpMethod.Get, WithDirectory("question", directory), body: null, sessionId: null, ct);

    /// <summary>The sessions whose parent is this one (subagent sessions), as session infos.</summary>
    public Task<JsonElement> GetChildrenAsync(string sessionId, CancellationToken ct) =>
        SendJsonAsync(HttpMethod.Get, $"session/{Escape(sessionId)}/children", body: null, sessionId, ct);

    public Task<JsonElement> GetTodosAsync(string sessionId, CancellationToken ct) =>
        SendJsonAsync(HttpMethod.Get, $"session/{Escape(sessionId)}/todo", body: null, sessionId, ct);

    public async Task PromptAsync(string sessionId, IReadOnlyList<PromptPart> parts, string? agent, string? model, CancellationToken ct)
    {
        var body = new Dictionary<string, object>
        {
            ["parts"] = parts.Select(PromptPartBody).ToArray(),
        };
        if (agent is not null)
        {
            body["agent"] = agent;
        }

        if (model is not null)
        {
            var slash = model.IndexOf('/');
            body["model"] = new { providerID = model[..slash], modelID = model[(slash + 1)..] };
        }

        await SendJsonAsync(HttpMethod.Post, $"session/{Escape(sessionId)}/prompt_async", body, sessionId, ct);
    }

    // opencode's part shapes: {type:"text", text} and {type:"file", mime, url, filename?}.
    private static object PromptPartBody(PromptPart part) => part.Type == "file"
        ? part.Filename is null ? new { type = part.Type, mime = part.Mime, url = part.Url } : new { type = part.Type, mime = part.Mime, url = part.Url, filename = part.Filename }
        : new { type = part.Type, text = part.Text };

    public async Task AbortAsync(string sessionId, CancellationToken ct) =>
        await SendJsonAsync(HttpMethod.Post, $"session/{Escape(sessionId)}/abort", new { }, sessionId, ct);

    public async Task ReplyPermissionAsync(string requestId, string reply, string? message, CancellationToken ct)
    {
        object body = message is null ? new { reply } : new { reply, message };
        try
        {
            await SendJsonAsync(HttpMethod.Post, $"permission/{Escape(requestId)}/reply", body, sessionId: null, ct);
        }
        catch (GatewayException e) when (e.Code == GatewayErrorCodes.SessionNotFound)
        {
            throw new GatewayException(GatewayErrorCodes.PermissionNotFound, $"Permission request '{requestId}' is not pending.");
        }
    }

    /// <summary>Answers a question: one array of answers per question of the request.</summary>
    public Task ReplyQuestionAsync(string requestId, IReadOnlyList<IReadOnlyList<string>> answers, CancellationToken ct) =>
        SendQuestionAsync(requestId, "reply", new { answers }, ct);

    /// <summary>Dismisses a question: the tool call ends with an error.</summary>
    public Task RejectQuestionAsync(string requestId, CancellationToken ct) => SendQuestionAsync(requestId, "reject", new { }, ct);

    private async Task SendQuestionAsync(string requestId, string action, object body, CancellationToken ct)
    {
        try
        {
            await SendJsonAsync(HttpMethod.Post, $"question/{Escape(requestId)}/{action}", body, sessionId: null, ct);
        }
        catch (GatewayException e) when (e.Code == GatewayErrorCodes.SessionNotFound)
        {
            throw new GatewayException(GatewayErrorCodes.QuestionNotFound, $"Question request '{requestId}' is not pending.");
        }
    }

    /// <summary>Lists the sessions opencode knows (most recently updated first).</summary>
    public Task<JsonElement> ListSessionsAsync(CancellationToken ct) =>
        SendJsonAsync(HttpMethod.Get, "session", body: null, sessionId: null, ct);

    private async Task<JsonElement> SendJsonAsync(HttpMethod method, string path, object? body, string? sessionId,
        CancellationToken ct, bool withDirectory = false, [CallerMemberName] string operation = "") =>
        (await SendJsonAsync(method, path, body, sessionId, ct, header: null, withDirectory, operation)).Body;

    /// <summary>Sends one request; returns its JSON body and the value of response header <paramref name="header"/>.</summary>
    private async Task<(JsonElement Body, string? Header)> SendJsonAsync(HttpMethod method, string path, object? body, string? sessionId,
        CancellationToken ct, string? header, bool withDirectory = false, [CallerMemberName] string operation = "")
    {
        using var activity = GatewayTelemetry.StartActivity($"opencode.{operation.Replace("Async", "", StringComparison.Ordinal)}", UpstreamId, sessionId);
        try
        {
            return await SendJsonCoreAsync(method, path, body, sessionId, withDirectory, header, ct);
        }
        catch (GatewayException e)
        {
            activity.RecordError(e, e.Code);
            throw;
        }
    }

    private async Task<(JsonElement Body, string? Header)> SendJsonCoreAsync(HttpMethod method, string path, object? body, string? sessionId,
        bool withDirectory, string? header, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        if (withDirectory && !string.IsNullOrEmpty(Options.Directory))
        {
            request.Headers.TryAddWithoutValidation("x-opencode-directory", Uri.EscapeDataString(Options.Directory));
        }

        var http = _httpClients.CreateClient(_clientName);
        if (http.BaseAddress is null)
        {
            // Removed from the registry since this client was handed out: its name is no longer configured.
            throw GatewayException.UpstreamNotFound(UpstreamId);
        }

        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException e)
        {
            throw new GatewayException(GatewayErrorCodes.UpstreamUnavailable,
                $"Upstream '{UpstreamId}' is unreachable: {e.Message}", e);
        }
        catch (BrokenCircuitException e)
        {
            throw new GatewayException(GatewayErrorCodes.UpstreamUnavailable,
                $"Upstream '{UpstreamId}' is failing; calls to it are paused for a few seconds (circuit open).", e);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new GatewayException(GatewayErrorCodes.UpstreamUnavailable,
                $"Upstream '{UpstreamId}' did not answer within {Options.RequestTimeout.TotalSeconds:0.#} s.", e);
        }

        using (response)
        {
            var headerValue = header is not null && response.Headers.TryGetValues(header, out var values) ? values.FirstOrDefault() : null;
            if (response.StatusCode == HttpStatusCode.NoContent)
            {
                return (default, headerValue);
            }

            string text;
            try
            {
                text = await response.Content.ReadAsStringAsync(ct);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                throw new GatewayException(GatewayErrorCodes.UpstreamUnavailable,
                    $"Upstream '{UpstreamId}' dropped the response: {e.Message}", e);
            }

            if (!response.IsSuccessStatusCode)
            {
                throw MapError(response.StatusCode, text, sessionId);
            }

            if (response.Content.Headers.ContentType?.MediaType is not "application/json")
            {
                // opencode answers unknown paths with its web UI's index.html and status 200.
                throw Unexpected($"JSON (got {response.Content.Headers.ContentType?.MediaType ?? "no content type"})");
            }

            try
            {
                using var document = JsonDocument.Parse(text);
                return (document.RootElement.Clone(), headerValue);
            }
            catch (JsonException e)
            {
                throw new GatewayException(GatewayErrorCodes.UpstreamError, $"Upstream '{UpstreamId}' sent malformed JSON.", e);
            }
        }
    }

    private GatewayException MapError(HttpStatusCode status, string body, string? sessionId)
    {
        var detail = UpstreamMessage(body);
        return status switch
        {
            HttpStatusCode.NotFound when sessionId is not null && !detail.Contains("Permission", StringComparison.Ordinal)
                && !detail.Contains("Question", StringComparison.Ordinal) =>
                GatewayException.SessionNotFound(sessionId),
            HttpStatusCode.NotFound => new GatewayException(GatewayErrorCodes.SessionNotFound, detail.Length > 0 ? detail : "Not found."),
            HttpStatusCode.BadRequest => new GatewayException(GatewayErrorCodes.BadRequest,
                $"Upstream '{UpstreamId}' rejected the request: {detail}"),
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new GatewayException(GatewayErrorCodes.UpstreamError,
                $"Upstream '{UpstreamId}' refused the gateway's credentials (check Gateway:Upstreams Username/Password)."),
            _ => new GatewayException(GatewayErrorCodes.UpstreamError,
                $"Upstream '{UpstreamId}' failed with HTTP {(int)status}: {detail}"),
        };
    }

    private static string UpstreamMessage(string body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return "";
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (root.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Object
                    && data.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String)
                {
                    return message.GetString()!;
                }

                if (root.TryGetProperty("_tag", out var tag) && tag.ValueKind == JsonValueKind.String)
                {
                    return tag.GetString()!;
                }
            }
        }
        catch (JsonException)
        {
            // not JSON: fall through to the raw text
        }

        return body.Length <= 200 ? body : body[..200];
    }

    private GatewayException Unexpected(string expected) =>
        new(GatewayErrorCodes.UpstreamError, $"Upstream '{UpstreamId}' did not answer with {expected}; is it an opencode server?");

    private static string Escape(string segment) => Uri.EscapeDataString(segment);

    private static string WithDirectory(string path, string? directory) =>
        string.IsNullOrEmpty(directory) ? path : $"{path}?directory={Uri.EscapeDataString(directory)}";
}
