-- The chat ids of /api/ai-sdk/chat (useChat's `id`), per user, and the session that answers each.
-- Keyed by (owner_id, chat_id): chat ids are chosen by clients, so two users' ids never meet.
-- created_at: INTEGER microseconds since the Unix epoch (UTC), like the sessions table.
CREATE TABLE ai_sdk_chats (
    owner_id   TEXT    NOT NULL,
    chat_id    TEXT    NOT NULL,
    session_id TEXT    NOT NULL REFERENCES sessions (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner_id, chat_id)
) WITHOUT ROWID;
