-- Sessions the gateway knows, keyed by opencode's session id.
-- Tags: a text[] column with a GIN index. "Workspace sessions with tag X" is then
-- `workspace_id = $1 AND tags @> ARRAY[$2]`: the planner combines the workspace b-tree and the GIN index (BitmapAnd),
-- a tag update stays a single-row UPDATE (no child table to keep in step), and the row is read without a join.
CREATE TABLE sessions (
    id           text        PRIMARY KEY,
    upstream_id  text        NOT NULL,
    owner_id     text        NOT NULL,
    workspace_id text        NULL,
    title        text        NULL,
    tags         text[]      NOT NULL DEFAULT '{}',
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    archived_at  timestamptz NULL
);

-- "My sessions, newest first" with keyset paging on (updated_at, id).
CREATE INDEX sessions_owner_updated ON sessions (owner_id, updated_at DESC, id DESC);
-- "Sessions of workspace W, newest first".
CREATE INDEX sessions_workspace_updated ON sessions (workspace_id, updated_at DESC, id DESC) WHERE workspace_id IS NOT NULL;
-- "... with tag X".
CREATE INDEX sessions_tags ON sessions USING gin (tags);
