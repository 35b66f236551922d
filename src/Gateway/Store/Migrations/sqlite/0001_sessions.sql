-- Sessions the gateway knows, keyed by opencode's session id.
-- Timestamps are INTEGER microseconds since the Unix epoch (UTC): exact ordering and keyset comparisons.
-- tags is a JSON array (what the application reads); SQLite has no GIN index, so triggers mirror it into
-- session_tags(tag, session_id), which the "with tag X" filter uses.
CREATE TABLE sessions (
    id           TEXT    NOT NULL PRIMARY KEY,
    upstream_id  TEXT    NOT NULL,
    owner_id     TEXT    NOT NULL,
    workspace_id TEXT    NULL,
    title        TEXT    NULL,
    tags         TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array'),
    metadata     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    archived_at  INTEGER NULL
);

CREATE INDEX sessions_owner_updated ON sessions (owner_id, updated_at DESC, id DESC);
CREATE INDEX sessions_workspace_updated ON sessions (workspace_id, updated_at DESC, id DESC) WHERE workspace_id IS NOT NULL;

CREATE TABLE session_tags (
    tag        TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, session_id)
) WITHOUT ROWID;

CREATE TRIGGER sessions_tags_insert AFTER INSERT ON sessions
BEGIN
    INSERT OR IGNORE INTO session_tags (tag, session_id) SELECT value, NEW.id FROM json_each(NEW.tags);
END;

CREATE TRIGGER sessions_tags_update AFTER UPDATE OF tags ON sessions
BEGIN
    DELETE FROM session_tags WHERE session_id = OLD.id;
    INSERT OR IGNORE INTO session_tags (tag, session_id) SELECT value, NEW.id FROM json_each(NEW.tags);
END;

CREATE TRIGGER sessions_tags_delete AFTER DELETE ON sessions
BEGIN
    DELETE FROM session_tags WHERE session_id = OLD.id;
END;
