-- The durable outbound mail queue: one row per (message, recipient), so that
-- each recipient is retried, delivered or bounced on its own.  A node claims
-- due rows with a lease (claimed_by, claimed_until); a row whose lease ran
-- out (the node died) is due again.  Bodies are shared by the recipients of
-- one message.

CREATE TABLE outbound_bodies (
    id {ID},
    data {BLOB} NOT NULL,
    created {BIGINT} NOT NULL
);

CREATE TABLE outbound (
    id {ID},
    body_id {BIGINT} NOT NULL REFERENCES outbound_bodies(id),
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'mail',
    created {BIGINT} NOT NULL,
    next_attempt {BIGINT} NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    claimed_by TEXT NOT NULL DEFAULT '',
    claimed_until {BIGINT} NOT NULL DEFAULT 0
);
CREATE INDEX outbound_due ON outbound (next_attempt);
CREATE INDEX outbound_body ON outbound (body_id);
