-- Balances move out of accounts into a narrow table of their own,
-- balances (see docs/explanation/ledger.md, "Where SQLite keeps balances").
--
-- Every batch of charges updates the balances of the accounts it names,
-- which are spread over the whole table. In accounts, whose rows also carry
-- the account's name and creation time, a batch of a few hundred charges
-- changed nearly every page of the table, and every changed page is written
-- to the WAL in full at commit. A row of balances is a third the size, so a
-- batch writes a third of the pages.
--
-- accounts gets an explicit INTEGER PRIMARY KEY, num, for balances to refer
-- to: an implicit rowid may change when the file is vacuumed. The view
-- account_balances shows an account with its balance, as accounts did.
--
-- SQLite cannot drop columns that a CHECK constraint names: the table is
-- rebuilt. The migration runs with foreign_keys off, as SQLite prescribes
-- for that, and is checked with foreign_key_check before it commits.
CREATE TABLE accounts_v3 (
    num             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    opening_balance INTEGER NOT NULL,
    created_at      TEXT    NOT NULL
) STRICT;

CREATE TABLE balances (
    account      INTEGER PRIMARY KEY REFERENCES accounts (num),
    balance      INTEGER NOT NULL,
    credit_limit INTEGER NOT NULL CHECK (credit_limit >= 0),
    -- Last line of defence against overspending, whatever the application does.
    CHECK (balance >= -credit_limit)
) STRICT;

INSERT INTO accounts_v3 (num, id, opening_balance, created_at)
    SELECT rowid, id, opening_balance, created_at FROM accounts ORDER BY rowid;
INSERT INTO balances (account, balance, credit_limit)
    SELECT rowid, balance, credit_limit FROM accounts ORDER BY rowid;
DROP TABLE accounts;
ALTER TABLE accounts_v3 RENAME TO accounts;

CREATE VIEW account_balances AS
    SELECT a.id, a.opening_balance, b.balance, b.credit_limit, a.created_at
    FROM accounts AS a JOIN balances AS b ON b.account = a.num;
