-- Confirmation mails go through the outbox: a delivery that belongs to no incident (a
-- subscriber's confirmation) has no incident_id. Keep in step with
-- ../sqlite/0012_confirmation_deliveries.sql (which has to rebuild the table).
ALTER TABLE deliveries ALTER COLUMN incident_id DROP NOT NULL;
