using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Store;

/// <summary>One row of <c>sessions</c>. <see cref="Metadata"/> is the serialized JSON object.</summary>
internal sealed record SessionRecord
{
    public required string SessionId { get; init; }
    public required string Upstream { get; init; }
    /// <summary>A subagent's session: its parent session (its owner and workspace are its root's).</summary>
    public string? ParentId { get; init; }
    public required string OwnerId { get; init; }
    public string? Workspace { get; init; }
    public string? Title { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public string Metadata { get; init; } = "{}";
    /// <summary>Incremented by every update; the store's optimistic concurrency token.</summary>
    public long Version { get; init; } = 1;
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? ArchivedAt { get; init; }

    public SessionMetadata ToContract()
    {
        using var document = JsonDocument.Parse(Metadata);
        return new SessionMetadata
        {
            SessionId = SessionId,
            Upstream = Upstream,
            ParentId = ParentId,
            OwnerId = OwnerId,
            Workspace = Workspace,
            Title = Title,
            Tags = Tags,
            Metadata = document.RootElement.Clone(),
            CreatedAt = CreatedAt,
            UpdatedAt = UpdatedAt,
            ArchivedAt = ArchivedAt,
        };
    }

    /// <summary>Databases keep microseconds: round every timestamp down to them before writing.</summary>
    public static DateTimeOffset Truncate(DateTimeOffset value) =>
        new(value.UtcTicks - value.UtcTicks % 10, TimeSpan.Zero);
}

/// <summary>What <see cref="ISessionStore.ListAsync"/> returns: one page, newest first, and where the next starts.</summary>
internal sealed record SessionPage(IReadOnlyList<SessionRecord> Items, SessionCursor? Next);

/// <summary>A keyset position: the (updated_at, id) of the last row of a page.</summary>
internal sealed record SessionCursor(DateTimeOffset UpdatedAt, string SessionId)
{
    private const int MaxEncodedLength = 256;

    /// <summary>Opaque to clients: base64url of "{microseconds since epoch}:{session id}".</summary>
    public string Encode()
    {
        var micros = (UpdatedAt.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;
        return System.Buffers.Text.Base64Url.EncodeToString(
            System.Text.Encoding.UTF8.GetBytes(FormattableString.Invariant($"{micros}:{SessionId}")));
    }

    public static bool TryDecode(string? encoded, out SessionCursor? cursor)
    {
        cursor = null;
        if (string.IsNullOrEmpty(encoded) || encoded.Length > MaxEncodedLength)
        {
            return false;
        }

        byte[] bytes;
        try
        {
            bytes = System.Buffers.Text.Base64Url.DecodeFromChars(encoded);
        }
        catch (FormatException)
        {
            return false;
        }

        var text = System.Text.Encoding.UTF8.GetString(bytes);
        var colon = text.IndexOf(':');
        if (colon <= 0 || !long.TryParse(text.AsSpan(0, colon), System.Globalization.NumberStyles.AllowLeadingSign,
                System.Globalization.CultureInfo.InvariantCulture, out var micros))
        {
            return false;
        }

        var id = text[(colon + 1)..];
        if (!SessionIds.Session().IsMatch(id) || micros < 0 || micros > 253_402_300_799_999_999L)
        {
            return false;
        }

        cursor = new SessionCursor(DateTimeOffset.UnixEpoch.AddTicks(micros * 10), id);
        return true;
    }
}

/// <summary>Filters of a listing. <see cref="VisibleTo"/> null means every row (admins).</summary>
internal sealed record SessionQuery
{
    /// <summary>Rows owned by this user or in one of <see cref="VisibleWorkspaces"/>; null: no visibility filter.</summary>
    public string? VisibleTo { get; init; }
    public IReadOnlyList<string> VisibleWorkspaces { get; init; } = [];
    public string? Workspace { get; init; }
    public string? Tag { get; init; }
    /// <summary>False: only active rows; true: only archived rows; null: both.</summary>
    public bool? Archived { get; init; } = false;
    /// <summary>Case-insensitive substring of the title.</summary>
    public string? TitleContains { get; init; }
    public SessionCursor? After { get; init; }
    public int Limit { get; init; } = 50;
}

/// <summary>The gateway's session table, on PostgreSQL or SQLite.</summary>
internal interface ISessionStore
{
    /// <summary>Which database: <c>postgres</c> or <c>sqlite</c>.</summary>
    string Provider { get; }

    /// <summary>Applies the pending migrations (serialised across processes); returns the versions it applied.</summary>
    Task<IReadOnlyList<int>> MigrateAsync(CancellationToken ct);

    /// <summary>Answers when the database does (a <c>SELECT 1</c>); throws what the database throws otherwise.</summary>
    Task PingAsync(CancellationToken ct);

    /// <summary>Adds a row; throws <see cref="SessionExistsException"/> when the id is taken.</summary>
    Task InsertAsync(SessionRecord record, CancellationToken ct);

    Task<SessionRecord?> GetAsync(string sessionId, CancellationToken ct);

    Task<SessionPage> ListAsync(SessionQuery query, CancellationToken ct);

    /// <summary>
    /// Read-modify-write with optimistic concurrency: <paramref name="change"/> gets the current row and returns the
    /// new one; when another writer got there first it runs again on the fresh row. Null when there is no row.
    /// </summary>
    Task<SessionRecord?> UpdateAsync(string sessionId, Func<SessionRecord, SessionRecord> change, CancellationToken ct);

    /// <summary>
    /// Maps a user's chat id to a session (which must have a record). False, with nothing written, when that user
    /// already has a chat with this id.
    /// </summary>
    Task<bool> TryInsertChatAsync(ChatRecord chat, CancellationToken ct);

    /// <summary>The user's chat with this id, or null.</summary>
    Task<ChatRecord?> GetChatAsync(string ownerId, string chatId, CancellationToken ct);
}

internal sealed class SessionExistsException(string sessionId, Exception inner)
    : Exception($"A session record '{sessionId}' already exists.", inner);
