-- Scheduled maintenance (sqlite). Keep in step with ../postgres/0002_maintenance.sql.
-- A maintenance window is an incident of another kind: it shares updates, deliveries, threading,
-- the scheduler's promises and the audit log. scheduled_for/scheduled_until are the announced
-- window; last_notice_at is the due time of the newest advance notice sent; sequence is the
-- iCalendar SEQUENCE (bumped on every public change); recurrence_key names the config entry a
-- materialised recurring window came from.

ALTER TABLE incidents ADD COLUMN kind TEXT NOT NULL DEFAULT 'incident';
ALTER TABLE incidents ADD COLUMN description TEXT;
ALTER TABLE incidents ADD COLUMN scheduled_for BIGINT;
ALTER TABLE incidents ADD COLUMN scheduled_until BIGINT;
ALTER TABLE incidents ADD COLUMN last_notice_at BIGINT;
ALTER TABLE incidents ADD COLUMN sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN recurrence_key TEXT;

CREATE INDEX incidents_maintenance ON incidents (kind, status, scheduled_for);
-- One concrete window per (config entry, start), however many schedulers materialise it.
CREATE UNIQUE INDEX incidents_recurrence ON incidents (recurrence_key, scheduled_for);
