-- Confirmation mails go through the outbox: a delivery that belongs to no incident (a
-- subscriber's confirmation) has no incident_id. Keep in step with
-- ../postgres/0012_confirmation_deliveries.sql.
--
-- SQLite cannot drop NOT NULL in place, so the table is rebuilt (create the new table, copy,
-- drop the old one, rename, recreate its indexes), in the migration's one transaction. Foreign
-- keys stay on (they cannot be switched off inside a transaction), so the rows of email_sends,
-- which refer to deliveries, are set aside while the old table is dropped and put back after.
CREATE TEMP TABLE email_sends_kept AS
    SELECT delivery_id, subscriber_id, state, error, sent_at FROM email_sends;
DELETE FROM email_sends;
CREATE TABLE deliveries_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id      BIGINT REFERENCES incidents (id),
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
    delivered_at     BIGINT,
    retry_since      BIGINT
);
INSERT INTO deliveries_new (id, incident_id, update_id, channel, audience, payload, state, attempts,
    next_attempt_at, lease_owner, lease_expires_at, remote_id, remote_url, last_error, created_at,
    delivered_at, retry_since)
SELECT id, incident_id, update_id, channel, audience, payload, state, attempts,
    next_attempt_at, lease_owner, lease_expires_at, remote_id, remote_url, last_error, created_at,
    delivered_at, retry_since
FROM deliveries;
-- Ids are never reused (AUTOINCREMENT): the new table continues the old one's sequence, even
-- past ids whose rows retention already deleted.
DELETE FROM sqlite_sequence WHERE name = 'deliveries_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'deliveries_new', seq FROM sqlite_sequence WHERE name = 'deliveries';
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
-- Every index deliveries had (0001_core.sql and 0011_resilience.sql), word for word.
CREATE INDEX deliveries_pending ON deliveries (channel, next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (channel, lease_expires_at) WHERE state = 'in_flight';
CREATE INDEX deliveries_unfinished ON deliveries (incident_id, channel, id) WHERE state IN ('pending', 'in_flight');
CREATE INDEX deliveries_incident ON deliveries (incident_id, channel, id);
CREATE INDEX deliveries_update ON deliveries (update_id);
CREATE INDEX deliveries_finished_age ON deliveries (created_at) WHERE state IN ('delivered', 'dead');
INSERT INTO email_sends (delivery_id, subscriber_id, state, error, sent_at)
    SELECT delivery_id, subscriber_id, state, error, sent_at FROM email_sends_kept;
DROP TABLE email_sends_kept;
