-- Static mirrors of the public site (sqlite). Keep in step with ../postgres/0018_mirrors.sql.

-- One row per configured mirror (registered at start). `version` is the public change counter
-- (`changes.version`) its copy is current to (NULL: never published whole); `generation` moves on
-- every publish, so an instance's in-memory copy of the manifest below is good while it matches.
-- Publishes to one mirror run one at a time across instances: the lease says who publishes.
CREATE TABLE mirror_targets (
    name             TEXT   NOT NULL PRIMARY KEY,
    version          BIGINT,
    generation       BIGINT NOT NULL DEFAULT 0,
    published_at     BIGINT,
    lease_owner      TEXT,
    lease_expires_at BIGINT
);

-- What each mirror holds: one row per object key, with the SHA-256 of the bytes written, so a
-- publish writes only what changed (and a publish killed half way resumes where it stopped).
CREATE TABLE mirror_objects (
    mirror TEXT NOT NULL,
    key    TEXT NOT NULL,
    hash   TEXT NOT NULL,
    PRIMARY KEY (mirror, key)
);
