-- Email subscribers (SQLite). Keep in step with ../postgres/0003_subscribers.sql.
-- Addresses are stored normalised (domain lower-cased). Confirmation tokens are stored only as
-- SHA-256 hashes; unsubscribe tokens are never stored: they are an HMAC of the subscriber's id
-- and `unsubscribe_salt` under the channel's `token_secret`, so a copy of this table cannot
-- forge one.
CREATE TABLE subscribers (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    email              TEXT   NOT NULL,
    -- '' for every component, else ids between commas: ',api,web,'.
    components         TEXT   NOT NULL,
    confirm_hash       TEXT,
    confirm_expires_at BIGINT,
    confirm_sent_at    BIGINT,
    unsubscribe_salt   TEXT   NOT NULL,
    created_at         BIGINT NOT NULL,
    confirmed_at       BIGINT,
    unsubscribed_at    BIGINT,
    CONSTRAINT subscribers_email UNIQUE (email)
);
-- The fan-out walks active subscribers by id (keyset pagination).
CREATE INDEX subscribers_active ON subscribers (id) WHERE confirmed_at IS NOT NULL AND unsubscribed_at IS NULL;
CREATE INDEX subscribers_confirm ON subscribers (confirm_hash);

-- One row per recipient of one email delivery: a fan-out resumed after a crash or a retry skips
-- whoever has a row here.
CREATE TABLE email_sends (
    delivery_id   BIGINT NOT NULL REFERENCES deliveries (id),
    subscriber_id BIGINT NOT NULL,
    state         TEXT   NOT NULL,
    error         TEXT,
    sent_at       BIGINT NOT NULL,
    CONSTRAINT email_sends_once PRIMARY KEY (delivery_id, subscriber_id)
);
