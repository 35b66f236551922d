-- Subagent sessions: opencode's task tool runs each subagent in a child session (parentID). The gateway records a
-- child when it is first seen, with its root's owner and workspace; lists show root sessions only.
ALTER TABLE sessions ADD COLUMN parent_id TEXT NULL;
