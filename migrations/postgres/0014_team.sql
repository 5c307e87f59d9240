-- The team's console (postgres). Keep in step with ../sqlite/0014_team.sql.

-- Sign-in throttling replaces the hard lock of 0004. Before a password is checked, one attempt is
-- reserved on every key of the request in a single conditional UPDATE, so parallel attempts
-- cannot exceed a key's budget. Keys: `client:<ip>`, `account:<email>` and
-- `account:<email>|<ip>`. Once a key's free attempts are spent, each further attempt waits a
-- delay that doubles (`delay_ms`), up to a ceiling; a quiet window forgets the key.
DROP TABLE login_failures;
CREATE TABLE login_throttle (
    throttle_key TEXT   NOT NULL PRIMARY KEY,
    attempts     BIGINT NOT NULL,
    delay_ms     BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    last_at      BIGINT NOT NULL
);

-- Raised when an operator's password is reset, or the operator is disabled: a console session
-- remembers the epoch it was signed in under and ends when it no longer matches.
ALTER TABLE operators ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;

-- What a token may do, space-separated (`read incidents:write maintenance:write alerts:write
-- subscribers:read subscribers:write`). Tokens made before scopes existed keep every scope.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL
    DEFAULT 'read incidents:write maintenance:write alerts:write subscribers:read subscribers:write';
ALTER TABLE api_tokens ADD COLUMN created_by TEXT;

-- The console's audit log is filtered by who, what and which incident, newest first.
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_incident ON audit_log (incident_id, id);
