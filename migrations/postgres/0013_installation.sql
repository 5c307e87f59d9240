-- This installation's own random value, drawn once by the first process that needs it and kept
-- for good (a restart reads it back). With the site's public URL it makes the per-installation
-- part of every Message-ID, so a staging copy mailing from the same domain (even one restored
-- from a production backup, whose public URL differs) never reuses production's ids.
-- Keep in step with ../sqlite/0013_installation.sql.
CREATE TABLE installation (
    id     INTEGER PRIMARY KEY,
    secret TEXT    NOT NULL
);
