-- opencode servers registered at run time (POST /api/upstreams), read by every node; the configured ones are not here.
-- password: encrypted by the gateway (AES-256-GCM under Gateway:UpstreamRegistry:SecretKey), never the password itself.
CREATE TABLE upstreams (
    id         text        PRIMARY KEY,
    base_url   text        NOT NULL,
    directory  text        NULL,
    password   text        NULL,
    created_at timestamptz NOT NULL
);
