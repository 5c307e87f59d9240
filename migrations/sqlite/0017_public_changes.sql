-- One row per move of the public change counter (`changes.version`), naming the incident the
-- change touched. An instance that has applied version N reloads only the incidents named by
-- the rows after N instead of rereading the whole 90-day window; the rows are contiguous
-- (each bump writes one, in the same transaction), so a gap tells it to reload everything.
-- The retention sweep keeps the newest rows only. Keep in step with the other backend's file.
CREATE TABLE public_changes (
    version     BIGINT  PRIMARY KEY,
    incident_id BIGINT  NOT NULL
);
