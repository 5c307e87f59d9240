-- The honesty record (sqlite). Keep in step with ../postgres/0015_honesty.sql.

-- When the alerts of a group started, as Alertmanager's `startsAt` says (the earliest of the
-- group's alerts, never later than Candor first heard of it): the record's "alert to first post"
-- counts from here. NULL on groups stored before this column.
ALTER TABLE alert_groups ADD COLUMN alert_started_at BIGINT;

-- Corrections of published updates. An update's own row never changes: each correction is a
-- row of its own with the new words and the reason, shown under the original, and sent through
-- the outbox to every channel the original reached (those deliveries carry the corrected
-- update's id and the correction's id).
CREATE TABLE corrections (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    update_id       BIGINT  NOT NULL REFERENCES updates (id),
    incident_id     BIGINT  NOT NULL REFERENCES incidents (id),
    message         TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    meaning_changed INTEGER NOT NULL,
    author          TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX corrections_incident ON corrections (incident_id, id);
CREATE INDEX corrections_update ON corrections (update_id, id);
