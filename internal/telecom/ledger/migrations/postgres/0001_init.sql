-- Initial ledger schema (PostgreSQL).
--
-- Amounts are bigint minor units (cents). The same tables are shared by every
-- node of a cluster, so every invariant that must hold across nodes is a
-- database constraint.

-- opening_balance is kept so that the balance can always be recomputed from
-- the journal: balance = opening_balance - sum(charges) + sum(topups).
CREATE TABLE accounts (
    id              text        PRIMARY KEY,
    opening_balance bigint      NOT NULL,
    balance         bigint      NOT NULL,
    credit_limit    bigint      NOT NULL CHECK (credit_limit >= 0),
    created_at      timestamptz NOT NULL,
    -- Last line of defence against overspending, whatever a node does.
    CHECK (balance >= -credit_limit)
);

-- txn_id is UNIQUE so that two nodes racing on the same call cannot both
-- charge it: the second insert conflicts. seq gives (roughly) commit order.
CREATE TABLE charges (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txn_id     text        NOT NULL UNIQUE,
    account_id text        NOT NULL REFERENCES accounts (id),
    amount     bigint      NOT NULL CHECK (amount > 0),
    created_at timestamptz NOT NULL
);

CREATE TABLE topups (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txn_id     text        NOT NULL UNIQUE,
    account_id text        NOT NULL REFERENCES accounts (id),
    amount     bigint      NOT NULL CHECK (amount > 0),
    created_at timestamptz NOT NULL
);

-- Small key/value facts about the database, e.g. when it was seeded.
CREATE TABLE ledger_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
