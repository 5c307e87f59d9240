-- Candor core schema (SQLite). Times are milliseconds since the Unix epoch, UTC.
-- Keep in step with ../postgres/0001_core.sql: same tables, columns and constraint names.

CREATE TABLE incidents (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    title             TEXT    NOT NULL,
    impact            TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    eta_at            BIGINT,
    next_update_at    BIGINT,
    owner             TEXT,
    started_at        BIGINT  NOT NULL,
    resolved_at       BIGINT,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    version           BIGINT  NOT NULL DEFAULT 1,
    apologised_eta_at BIGINT,
    reminded_for_at   BIGINT,
    CONSTRAINT incidents_promise CHECK (resolved_at IS NOT NULL OR next_update_at IS NOT NULL)
);
CREATE INDEX incidents_open ON incidents (resolved_at, id);

CREATE TABLE incident_components (
    incident_id  BIGINT NOT NULL REFERENCES incidents (id),
    component_id TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    PRIMARY KEY (incident_id, component_id)
);

CREATE TABLE updates (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id    BIGINT NOT NULL REFERENCES incidents (id),
    kind           TEXT   NOT NULL,
    status         TEXT   NOT NULL,
    message        TEXT   NOT NULL,
    eta_at         BIGINT,
    next_update_at BIGINT,
    components     TEXT   NOT NULL,
    author         TEXT   NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX updates_incident ON updates (incident_id, id);

CREATE TABLE eta_revisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    update_id   BIGINT REFERENCES updates (id),
    old_eta_at  BIGINT,
    new_eta_at  BIGINT,
    actor       TEXT   NOT NULL,
    reason      TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX eta_revisions_incident ON eta_revisions (incident_id, id);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    incident_id BIGINT,
    detail      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (created_at);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id      BIGINT NOT NULL REFERENCES incidents (id),
    update_id        BIGINT REFERENCES updates (id),
    channel          TEXT   NOT NULL,
    audience         TEXT   NOT NULL,
    payload          TEXT   NOT NULL,
    state            TEXT   NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    remote_id        TEXT,
    remote_url       TEXT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT
);
-- Claims look only at unfinished deliveries. Partial indexes hold just those rows, so a claim
-- costs the same however much delivered history the table holds. Their WHERE clauses match the
-- claim queries' predicates word for word (SQLite uses a partial index only then).
CREATE INDEX deliveries_pending ON deliveries (channel, next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (channel, lease_expires_at) WHERE state = 'in_flight';
CREATE INDEX deliveries_unfinished ON deliveries (incident_id, channel, id) WHERE state IN ('pending', 'in_flight');
CREATE INDEX deliveries_incident ON deliveries (incident_id, channel, id);
CREATE INDEX deliveries_update ON deliveries (update_id);

CREATE TABLE scheduled_actions (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    action      TEXT   NOT NULL,
    due_at      BIGINT NOT NULL,
    done_at     BIGINT NOT NULL,
    update_id   BIGINT,
    CONSTRAINT scheduled_actions_once PRIMARY KEY (incident_id, action, due_at)
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT   NOT NULL,
    token_hash   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    CONSTRAINT api_tokens_name UNIQUE (name),
    CONSTRAINT api_tokens_hash UNIQUE (token_hash)
);

CREATE TABLE idempotency_keys (
    token_id        BIGINT NOT NULL REFERENCES api_tokens (id),
    idem_key        TEXT   NOT NULL,
    request_hash    TEXT   NOT NULL,
    response_status BIGINT NOT NULL,
    response_body   TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (token_id, idem_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
