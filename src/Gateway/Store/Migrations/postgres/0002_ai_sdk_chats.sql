-- The chat ids of /api/ai-sdk/chat (useChat's `id`), per user, and the session that answers each.
-- Keyed by (owner_id, chat_id): chat ids are chosen by clients, so two users' ids never meet.
CREATE TABLE ai_sdk_chats (
    owner_id   text        NOT NULL,
    chat_id    text        NOT NULL,
    session_id text        NOT NULL REFERENCES sessions (id),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (owner_id, chat_id)
);
