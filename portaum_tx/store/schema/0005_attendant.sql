-- Auto attendant: menus with their event tables and recorded prompts, the
-- dial-by-name directory, call queues and the callers waiting in them.
-- {ID}, {BLOB}, {BIGINT} are spelt by the engine.

-- One row per menu; ROOT always exists for an account that has any menu.
-- events holds the event table as JSON: {"1": {"action": "transfer", ...}}.
CREATE TABLE aa_menus (
    id {ID},
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    period TEXT NOT NULL DEFAULT '',
    events TEXT NOT NULL DEFAULT '{}',
    updated {BIGINT} NOT NULL,
    UNIQUE (account_id, name)
);

-- Recorded prompts (Sun .au, G.711 u-law): scope is "menu:<name>" or
-- "queue:<name>"; kind is intro, menu, timeout, unavailable, before-<event>
-- or music.
CREATE TABLE aa_prompts (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    kind TEXT NOT NULL,
    audio {BLOB} NOT NULL,
    updated {BIGINT} NOT NULL,
    PRIMARY KEY (account_id, scope, kind)
);

CREATE TABLE aa_settings (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    hide_extensions INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE directory_entries (
    id {ID},
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    extension TEXT NOT NULL,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    keys TEXT NOT NULL DEFAULT '',
    excluded INTEGER NOT NULL DEFAULT 0,
    name_audio {BLOB},
    updated {BIGINT} NOT NULL,
    UNIQUE (account_id, extension)
);
CREATE INDEX directory_entries_keys ON directory_entries (account_id, keys);

-- connected counts the outgoing calls a queue holds (ringing or answered);
-- it only moves through guarded UPDATEs so that nodes never over-connect.
CREATE TABLE call_queues (
    id {ID},
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    destination TEXT NOT NULL,
    max_connected INTEGER NOT NULL DEFAULT 1,
    average_seconds INTEGER NOT NULL DEFAULT 180,
    connected INTEGER NOT NULL DEFAULT 0,
    updated {BIGINT} NOT NULL,
    UNIQUE (account_id, name)
);

-- Callers in a queue; the id orders them across every node. state is waiting,
-- offered (holding a slot, dialling the destination) or connected.
CREATE TABLE queue_callers (
    id {ID},
    queue_id {BIGINT} NOT NULL REFERENCES call_queues(id) ON DELETE CASCADE,
    call_id TEXT NOT NULL,
    node TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'waiting',
    entered {BIGINT} NOT NULL,
    heartbeat {BIGINT} NOT NULL
);
CREATE INDEX queue_callers_queue ON queue_callers (queue_id, state, id);
