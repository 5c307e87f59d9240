-- Subscription requests per email address per UTC day, so that one address is sent at most a
-- few confirmation mails a day however often it is entered, across instances and restarts.
-- Addresses are kept as SHA-256 hashes; rows older than yesterday are deleted as new ones come.
CREATE TABLE subscribe_quota (
    email_hash TEXT   NOT NULL,
    day        BIGINT NOT NULL,
    requests   BIGINT NOT NULL,
    CONSTRAINT subscribe_quota_key PRIMARY KEY (email_hash, day)
);
CREATE INDEX subscribe_quota_day ON subscribe_quota (day);
