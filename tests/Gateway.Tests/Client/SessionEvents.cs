using System.Text.Json;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Tests.Client;

/// <summary>Constructed gateway messages of one session (<see cref="Session"/>) for the client rules' tests.</summary>
internal static class SessionEvents
{
    public const string Session = "ses_rules";

    public static JsonElement Json(object value) => JsonSerializer.SerializeToElement(value);

    public static SessionEvent Event(long epoch, long seq, string type) =>
        new() { Upstream = "local", SessionId = Session, Epoch = epoch, Seq = seq, Type = type };

    public static SessionEvent Delta(long epoch, long seq, string partId, int offset, string delta, int? handle = null, string messageId = "msg_1") =>
        Event(epoch, seq, SessionEventTypes.PartDelta) with
        {
            MessageId = messageId, PartId = partId, Field = StreamedFields.Text, Offset = offset, Delta = delta, Handle = handle,
        };

    public static SessionEvent TextPart(long epoch, long seq, string partId, string? text, int? handle = null, string messageId = "msg_1") =>
        Event(epoch, seq, SessionEventTypes.PartUpdated) with
        {
            MessageId = messageId, PartId = partId, Handle = handle,
            Part = text is null
                ? Json(new { id = partId, messageID = messageId, type = "text", time = new { start = 1 } })
                : Json(new { id = partId, messageID = messageId, type = "text", text, time = new { start = 1 } }),
        };

    public static SessionEvent Gap(long epoch, long seq, string partId, int offset, string messageId = "msg_1") =>
        Event(epoch, seq, SessionEventTypes.PartGap) with { MessageId = messageId, PartId = partId, Field = StreamedFields.Text, Offset = offset };

    public static SessionEvent Status(long epoch, long seq, string type) => Event(epoch, seq, SessionEventTypes.Status) with { Status = Json(new { type }) };

    public static MessageWithParts Message(string id, string role, params object[] parts) =>
        new(Json(new { id, sessionID = Session, role }), [.. parts.Select(Json)]);

    public static object Text(string id, string text, string messageId = "msg_1") => new { id, messageID = messageId, type = "text", text };

    public static SessionSnapshot Snapshot(long epoch, long seq, IReadOnlyList<MessageWithParts>? messages = null,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>>? handles = null, int? sessionHandle = null,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, IReadOnlyList<int>>>? gaps = null, EarlierMessages? earlier = null,
        IReadOnlyList<JsonElement>? permissions = null) => new()
    {
        Upstream = "local",
        SessionId = Session,
        Epoch = epoch,
        Seq = seq,
        Session = Json(new { id = Session, title = "rules" }),
        Messages = messages ?? [],
        Status = Json(new { type = "idle" }),
        Permissions = permissions ?? [],
        Handles = handles,
        SessionHandle = sessionHandle,
        Gaps = gaps,
        Earlier = earlier,
    };

    public static JoinResult Joined(SessionSnapshot snapshot) => new()
    {
        Upstream = "local", SessionId = Session, Epoch = snapshot.Epoch, Seq = snapshot.Seq, Recovered = false, Snapshot = snapshot,
        SessionHandle = snapshot.SessionHandle,
    };

    public static JoinResult Recovered(long epoch, long seq, int? sessionHandle, params SessionEvent[] events) => new()
    {
        Upstream = "local", SessionId = Session, Epoch = epoch, Seq = seq, Recovered = true, Events = events, SessionHandle = sessionHandle,
    };
}
