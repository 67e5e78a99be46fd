-- Customers, accounts and their aliases; mailboxes, folders and messages;
-- access numbers; prompts; persistent login throttling; cluster settings.
-- {ID}, {BLOB}, {BIGINT}, {NUMERIC} are spelt by the engine.

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE customers (
    id {ID},
    name TEXT NOT NULL UNIQUE,
    created {BIGINT} NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    customer_id {BIGINT} NOT NULL REFERENCES customers(id),
    pin_hash TEXT,
    password_hash TEXT,
    digest_realm TEXT,
    ha1_md5 TEXT,
    ha1_sha256 TEXT,
    language TEXT NOT NULL DEFAULT 'en',
    timezone TEXT NOT NULL DEFAULT 'UTC',
    email TEXT,
    attachment_format TEXT NOT NULL DEFAULT 'wav',
    fax_format TEXT NOT NULL DEFAULT 'pdf',
    forward_mode TEXT NOT NULL DEFAULT 'none',
    forward_address TEXT,
    greeting TEXT NOT NULL DEFAULT 'personal',
    um_enabled INTEGER NOT NULL DEFAULT 1,
    associated_number TEXT,
    mwi_contact TEXT,
    created {BIGINT} NOT NULL
);
CREATE INDEX accounts_customer ON accounts (customer_id);
CREATE UNIQUE INDEX accounts_email ON accounts (email);

CREATE TABLE aliases (
    alias TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created {BIGINT} NOT NULL
);
CREATE INDEX aliases_account ON aliases (account_id);

CREATE TABLE greetings (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    audio {BLOB} NOT NULL,
    updated {BIGINT} NOT NULL,
    PRIMARY KEY (account_id, kind)
);

CREATE TABLE mailboxes (
    id {ID},
    account_id TEXT NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE,
    quota_bytes {BIGINT} NOT NULL,
    used_bytes {BIGINT} NOT NULL DEFAULT 0,
    created {BIGINT} NOT NULL
);

CREATE TABLE folders (
    id {ID},
    mailbox_id {BIGINT} NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    special_use TEXT,
    subscribed INTEGER NOT NULL DEFAULT 1,
    uidvalidity {BIGINT} NOT NULL DEFAULT 0,
    uidnext {BIGINT} NOT NULL DEFAULT 1,
    recent_floor {BIGINT} NOT NULL DEFAULT 0,
    UNIQUE (mailbox_id, name)
);

CREATE TABLE message_bodies (
    id {ID},
    data {BLOB} NOT NULL,
    size {BIGINT} NOT NULL,
    refs INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE messages (
    id {ID},
    folder_id {BIGINT} NOT NULL REFERENCES folders(id),
    uid {BIGINT} NOT NULL,
    body_id {BIGINT} NOT NULL REFERENCES message_bodies(id),
    size {BIGINT} NOT NULL,
    internal_date {BIGINT} NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    keywords TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'email',
    urgent INTEGER NOT NULL DEFAULT 0,
    UNIQUE (folder_id, uid)
);
CREATE INDEX messages_body ON messages (body_id);

CREATE TABLE access_numbers (
    id {ID},
    pattern TEXT NOT NULL UNIQUE,
    application TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    created {BIGINT} NOT NULL
);

CREATE TABLE prompts (
    id {ID},
    brand TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL,
    name TEXT NOT NULL,
    audio {BLOB} NOT NULL,
    updated {BIGINT} NOT NULL,
    UNIQUE (brand, language, name)
);

CREATE TABLE auth_failures (
    subject TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    first_failure {BIGINT} NOT NULL,
    locked_until {BIGINT} NOT NULL DEFAULT 0
);
