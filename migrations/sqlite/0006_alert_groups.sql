-- Alertmanager's alert groups and the incidents they opened or joined. While a group's incident
-- is open its row is active (active = 1), and the partial unique index lets only one active row
-- exist per group key: repeats and several Alertmanager replicas never open two incidents.
CREATE TABLE alert_groups (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    group_key     TEXT    NOT NULL,
    incident_id   BIGINT  REFERENCES incidents (id),
    active        INTEGER,
    opened        INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    alerts        BIGINT  NOT NULL,
    receiver      TEXT    NOT NULL,
    first_seen_at BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    resolved_at   BIGINT
);
CREATE UNIQUE INDEX alert_groups_active ON alert_groups (group_key) WHERE active = 1;
CREATE INDEX alert_groups_incident ON alert_groups (incident_id);
