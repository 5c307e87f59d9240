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

-- Postmortems: one per resolved incident, Markdown, drafted then published (published_at set;
-- later edits of a published one show at once and are audited). Rendered and sanitised when
-- shown, never stored as HTML.
CREATE TABLE postmortems (
    incident_id  BIGINT NOT NULL PRIMARY KEY REFERENCES incidents (id),
    body         TEXT   NOT NULL,
    author       TEXT   NOT NULL,
    updated_at   BIGINT NOT NULL,
    published_at BIGINT
);

-- A postmortem's action items, public once it is published. due_on is a calendar date
-- (YYYY-MM-DD) in the site's zone; one past its day and not done shows as overdue.
CREATE TABLE postmortem_actions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    text        TEXT   NOT NULL,
    owner       TEXT   NOT NULL,
    due_on      TEXT   NOT NULL,
    done_at     BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX postmortem_actions_incident ON postmortem_actions (incident_id, id);
