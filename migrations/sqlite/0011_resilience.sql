-- A counter that moves with every change the public sees, bumped in the same transaction as the
-- change. Instances compare it to know when to rebuild their page cache (the highest update id
-- cannot tell: an update with a lower id may commit after one with a higher id).
CREATE TABLE changes (
    id      INTEGER PRIMARY KEY,
    version BIGINT  NOT NULL
);
INSERT INTO changes (id, version) VALUES (1, 0);

-- One row that /readyz writes: proof that the database still takes writes (a full disk or a
-- read-only volume answers SELECT 1 but refuses this).
CREATE TABLE heartbeat (
    id      INTEGER PRIMARY KEY,
    beat_at BIGINT  NOT NULL
);
INSERT INTO heartbeat (id, beat_at) VALUES (1, 0);

-- Retention sweeps delete finished deliveries by age.
CREATE INDEX deliveries_finished_age ON deliveries (created_at) WHERE state IN ('delivered', 'dead');

-- A delivery is retried until it is `outbox.retry_for` old, counted from here when set
-- ("retry now" on a dead delivery starts a new window) or else from created_at.
ALTER TABLE deliveries ADD COLUMN retry_since BIGINT;
