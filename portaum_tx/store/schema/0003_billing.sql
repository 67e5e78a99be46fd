-- Billing: tariffs and their rates, products and their accessibility lists
-- (access code -> tariff), balances and credit limits of customers and
-- accounts, reservations of funds by authorized calls, vouchers and xDRs.
-- Money is {NUMERIC}: exact decimal (TEXT on SQLite, read back as Decimal).

CREATE TABLE tariffs (
    id {ID},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created {BIGINT} NOT NULL
);

-- One rate per destination prefix; a number takes the longest matching prefix.
CREATE TABLE rates (
    tariff_id {BIGINT} NOT NULL REFERENCES tariffs(id) ON DELETE CASCADE,
    prefix TEXT NOT NULL,
    price_per_minute {NUMERIC} NOT NULL,
    next_price_per_minute {NUMERIC},
    first_interval INTEGER NOT NULL DEFAULT 60,
    next_interval INTEGER NOT NULL DEFAULT 60,
    connection_fee {NUMERIC} NOT NULL DEFAULT 0,
    free_seconds INTEGER NOT NULL DEFAULT 0,
    grace_period INTEGER NOT NULL DEFAULT 0,
    forbidden INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tariff_id, prefix)
);

CREATE TABLE products (
    id {ID},
    name TEXT NOT NULL UNIQUE,
    breakage {NUMERIC} NOT NULL DEFAULT 0,
    created {BIGINT} NOT NULL
);

-- The accessibility list: '' is the product's default tariff; other codes
-- (an access number, ANNOUNCE<dnis>, LEG_A<dnis>, CALLBACK_FAIL ...) select
-- another tariff for calls that present them.
CREATE TABLE product_access (
    product_id {BIGINT} NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    access_code TEXT NOT NULL,
    tariff_id {BIGINT} NOT NULL REFERENCES tariffs(id),
    PRIMARY KEY (product_id, access_code)
);
CREATE INDEX product_access_tariff ON product_access (tariff_id);

-- A customer's balance is what its credit accounts owe together.
ALTER TABLE customers ADD COLUMN balance {NUMERIC} NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN credit_limit {NUMERIC};

-- Debit accounts spend their balance; credit accounts owe theirs.
ALTER TABLE accounts ADD COLUMN billing_model TEXT NOT NULL DEFAULT 'credit';
ALTER TABLE accounts ADD COLUMN balance {NUMERIC} NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN credit_limit {NUMERIC};
ALTER TABLE accounts ADD COLUMN product_id {BIGINT} REFERENCES products(id);
ALTER TABLE accounts ADD COLUMN service_password_hash TEXT;
ALTER TABLE accounts ADD COLUMN calls_via_ivr TEXT;
ALTER TABLE accounts ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX accounts_product ON accounts (product_id);

-- Funds held by calls in progress; settled by the charge, dropped on
-- release, ignored once expired (a node that died mid-call).
CREATE TABLE reservations (
    id {ID},
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    customer_id {BIGINT} NOT NULL,
    amount {NUMERIC} NOT NULL,
    on_customer INTEGER NOT NULL,
    max_seconds INTEGER NOT NULL,
    destination TEXT NOT NULL,
    tariff TEXT NOT NULL,
    rate TEXT NOT NULL,
    created {BIGINT} NOT NULL,
    expires {BIGINT} NOT NULL
);
CREATE INDEX reservations_account ON reservations (account_id);
CREATE INDEX reservations_customer ON reservations (customer_id);

CREATE TABLE vouchers (
    number TEXT PRIMARY KEY,
    amount {NUMERIC} NOT NULL,
    expires {BIGINT},
    used_by TEXT,
    used_at {BIGINT},
    created {BIGINT} NOT NULL
);

-- Call and payment records. No foreign keys: the history outlives the
-- accounts and customers it names.
CREATE TABLE xdrs (
    id {ID},
    account_id TEXT NOT NULL,
    customer_id {BIGINT} NOT NULL,
    service TEXT NOT NULL,
    cli TEXT NOT NULL DEFAULT '',
    cld TEXT NOT NULL DEFAULT '',
    access_number TEXT NOT NULL DEFAULT '',
    leg TEXT NOT NULL DEFAULT '',
    start_time {BIGINT} NOT NULL,
    duration INTEGER NOT NULL DEFAULT 0,
    charged_seconds INTEGER NOT NULL DEFAULT 0,
    charge {NUMERIC} NOT NULL,
    balance_after {NUMERIC} NOT NULL,
    tariff TEXT NOT NULL DEFAULT '',
    rate_prefix TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created {BIGINT} NOT NULL
);
CREATE INDEX xdrs_account ON xdrs (account_id, start_time);
CREATE INDEX xdrs_customer ON xdrs (customer_id, start_time);
