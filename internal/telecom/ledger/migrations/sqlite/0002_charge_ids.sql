-- The txnID index of charges moves to a table of its own, charge_ids, which
-- the writer fills in the background instead of in each charge's
-- transaction (see docs/explanation/ledger.md, "Where the txnIDs are
-- indexed").
--
-- A UNIQUE index on charges.txn_id made every batch of charges rewrite one
-- index page per charge, all over the index, because txnIDs arrive in no
-- particular order; as the ledger grew, so did the bytes each charge wrote.
-- A charge now appends its row to charges and nothing else; charge_ids
-- receives the txnIDs later, many at a time and in txnID order, so that a
-- page of the index is written once for many charges. Until then the
-- writer holds them in memory and rebuilds that set from the charges above
-- charge_ids_through when it starts.
--
-- SQLite cannot drop a constraint in place: the table is rebuilt.
CREATE TABLE charges_v2 (
    seq        INTEGER PRIMARY KEY,
    txn_id     TEXT    NOT NULL,
    account_id TEXT    NOT NULL REFERENCES accounts (id),
    amount     INTEGER NOT NULL CHECK (amount > 0),
    created_at TEXT    NOT NULL
) STRICT;
INSERT INTO charges_v2 (seq, txn_id, account_id, amount, created_at)
    SELECT seq, txn_id, account_id, amount, created_at FROM charges ORDER BY seq;
DROP TABLE charges;
ALTER TABLE charges_v2 RENAME TO charges;

-- Every charged txnID, once, with the seq of its row in charges. The
-- PRIMARY KEY is what guarantees that no txnID is charged twice.
CREATE TABLE charge_ids (
    txn_id TEXT    PRIMARY KEY,
    seq    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO charge_ids (txn_id, seq) SELECT txn_id, seq FROM charges;

-- Every charge with seq <= charge_ids_through is in charge_ids.
INSERT INTO ledger_meta (key, value)
    SELECT 'charge_ids_through', CAST(coalesce(max(seq), 0) AS TEXT) FROM charges;
