-- The operator console (SQLite). Keep in step with ../postgres/0004_console.sql.

CREATE TABLE operators (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT   NOT NULL,
    role          TEXT   NOT NULL,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT,
    CONSTRAINT operators_email UNIQUE (email)
);

-- Server-side console sessions (tower-sessions records). `data` is the session's JSON.
CREATE TABLE console_sessions (
    id         TEXT   NOT NULL PRIMARY KEY,
    data       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Failed sign-ins per key (`account:<email>` or `address:<ip>`), shared by every instance.
CREATE TABLE login_failures (
    throttle_key  TEXT   NOT NULL PRIMARY KEY,
    failures      BIGINT NOT NULL,
    first_at      BIGINT NOT NULL,
    locked_until  BIGINT
);
