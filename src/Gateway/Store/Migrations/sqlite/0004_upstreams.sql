-- opencode servers registered at run time (POST /api/upstreams); the configured ones are not here.
-- password: encrypted by the gateway (AES-256-GCM under Gateway:UpstreamRegistry:SecretKey), never the password itself.
-- created_at: INTEGER microseconds since the Unix epoch (UTC), like the sessions table.
CREATE TABLE upstreams (
    id         TEXT    NOT NULL PRIMARY KEY,
    base_url   TEXT    NOT NULL,
    directory  TEXT    NULL,
    password   TEXT    NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
