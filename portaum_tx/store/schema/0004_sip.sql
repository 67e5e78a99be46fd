-- SIP event subscriptions (RFC 6665), today the message-summary ones of MWI
-- (RFC 3842), and the state of unsolicited MWI per account.  Kept in the store so
-- that they survive a restart and any node can send the NOTIFY for a change it made:
-- a node claims a NOTIFY by moving last_body to the new summary with the CSeq, so
-- that one change is announced once however many nodes hear of it.

CREATE TABLE sip_subscriptions (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    event TEXT NOT NULL,
    dialog TEXT NOT NULL,
    local_cseq {BIGINT} NOT NULL,
    remote_cseq {BIGINT} NOT NULL,
    expires {BIGINT} NOT NULL,
    last_body TEXT NOT NULL DEFAULT '',
    created {BIGINT} NOT NULL
);
CREATE INDEX sip_subscriptions_account ON sip_subscriptions (account_id, event);
CREATE INDEX sip_subscriptions_expires ON sip_subscriptions (expires);
