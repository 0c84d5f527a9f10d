-- Initial ledger schema (SQLite).
--
-- Amounts are INTEGER minor units (cents); timestamps are UTC text
-- (YYYY-MM-DDTHH:MM:SS.sssZ) so that the sqlite3 shell shows them readably.
-- STRICT tables make SQLite reject a value of the wrong type instead of
-- silently storing, say, a float amount.

-- opening_balance is kept so that the balance can always be recomputed from
-- the journal: balance = opening_balance - sum(charges) + sum(topups).
CREATE TABLE accounts (
    id              TEXT    PRIMARY KEY,
    opening_balance INTEGER NOT NULL,
    balance         INTEGER NOT NULL,
    credit_limit    INTEGER NOT NULL CHECK (credit_limit >= 0),
    created_at      TEXT    NOT NULL,
    -- Last line of defence against overspending, whatever the application does.
    CHECK (balance >= -credit_limit)
) STRICT;

-- txn_id is UNIQUE so that the database itself, not only the application,
-- guarantees that a call is charged at most once. seq gives commit order.
CREATE TABLE charges (
    seq        INTEGER PRIMARY KEY,
    txn_id     TEXT    NOT NULL UNIQUE,
    account_id TEXT    NOT NULL REFERENCES accounts (id),
    amount     INTEGER NOT NULL CHECK (amount > 0),
    created_at TEXT    NOT NULL
) STRICT;

CREATE TABLE topups (
    seq        INTEGER PRIMARY KEY,
    txn_id     TEXT    NOT NULL UNIQUE,
    account_id TEXT    NOT NULL REFERENCES accounts (id),
    amount     INTEGER NOT NULL CHECK (amount > 0),
    created_at TEXT    NOT NULL
) STRICT;

-- Small key/value facts about the database, e.g. when it was seeded.
CREATE TABLE ledger_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
