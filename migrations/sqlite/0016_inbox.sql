-- The inbox: customers' replies and mentions read from Mastodon and Bluesky (sqlite).
-- Keep in step with ../postgres/0016_inbox.sql.

-- Where each listened channel has read its notifications up to. `cursor` is the channel's own:
-- Mastodon's newest notification id read (the next poll asks `min_id` = it), Bluesky's JSON
-- state of a walk down `listNotifications` (the newest `indexedAt` fully read, and the page
-- cursor of a walk still under way). `next_poll_at` is the earliest next poll: the interval,
-- the network's rate limit (`X-RateLimit-*`, `RateLimit-*`, `Retry-After`) or a backoff after a
-- failure, kept here so a restart honours it too.
CREATE TABLE inbox_sources (
    channel        TEXT   NOT NULL PRIMARY KEY,
    cursor         TEXT,
    next_poll_at   BIGINT NOT NULL,
    failures       BIGINT NOT NULL DEFAULT 0,
    last_polled_at BIGINT,
    last_error     TEXT
);

-- Per incident: whether it tells those answered that it is fixed (the opt-out), and how many
-- inbound posts were not kept because its inbox was full (`inbox.max_items_per_incident`).
CREATE TABLE inbox_incidents (
    incident_id BIGINT NOT NULL PRIMARY KEY REFERENCES incidents (id),
    tell_fixed  BIGINT NOT NULL DEFAULT 1,
    dropped     BIGINT NOT NULL DEFAULT 0
);

-- One customer's conversation about one incident on one channel: one owner at most, claimed
-- by a conditional UPDATE (`claimed_by IS NULL`).
CREATE TABLE inbox_conversations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     BIGINT NOT NULL REFERENCES incidents (id),
    channel         TEXT   NOT NULL,
    author_id       TEXT   NOT NULL,
    author_handle   TEXT   NOT NULL,
    author_name     TEXT   NOT NULL,
    first_at        BIGINT NOT NULL,
    claimed_by      TEXT,
    claimed_at      BIGINT,
    answered_at     BIGINT,
    waiting_told_at BIGINT,
    fixed_told_at   BIGINT,
    CONSTRAINT inbox_conversations_author UNIQUE (incident_id, channel, author_id)
);
CREATE INDEX inbox_conversations_waiting ON inbox_conversations (claimed_by, waiting_told_at, first_at);

-- What a customer wrote, as untrusted plain text (bounded), never HTML. `remote_id` is the
-- network's id of the post (Mastodon's status id; Bluesky's "uri cid"), unique per channel, so
-- a post read twice is kept once; `root_ref` is the Bluesky thread's root ("uri cid").
CREATE TABLE inbox_items (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id BIGINT NOT NULL REFERENCES inbox_conversations (id),
    incident_id     BIGINT NOT NULL REFERENCES incidents (id),
    channel         TEXT   NOT NULL,
    remote_id       TEXT   NOT NULL,
    root_ref        TEXT,
    body            TEXT   NOT NULL,
    url             TEXT,
    posted_at       BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    CONSTRAINT inbox_items_remote UNIQUE (channel, remote_id)
);
CREATE INDEX inbox_items_incident ON inbox_items (incident_id, id);
CREATE INDEX inbox_items_conversation ON inbox_items (conversation_id, id);

-- Candor's replies in a conversation: an operator's answer, or the one "it is fixed" when the
-- incident resolved. Each is sent as a delivery of audience `reply`.
CREATE TABLE inbox_answers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id BIGINT NOT NULL REFERENCES inbox_conversations (id),
    item_id         BIGINT NOT NULL REFERENCES inbox_items (id),
    delivery_id     BIGINT NOT NULL,
    kind            TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    actor           TEXT   NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX inbox_answers_conversation ON inbox_answers (conversation_id, id);
