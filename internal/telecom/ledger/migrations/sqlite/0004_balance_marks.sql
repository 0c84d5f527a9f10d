-- A batch of charges no longer writes every balance it changes (see
-- docs/explanation/ledger.md, "Where SQLite keeps balances").
--
-- The accounts are divided into slices of 1,024 by number (num >> 10), a
-- page or so of balances each. A batch writes the balances of one slice,
-- in turn, and records in balance_marks the last charge and top-up that
-- the slice's balances include. An account's balance is therefore its row
-- in balances plus its charges and top-ups after its slice's marks: a few
-- batches' worth, which the view account_balances adds up. Balances and
-- marks change in the same transactions as the charges, so after a crash
-- they still agree with them.
--
-- A slice without a row here has every balance up to date.
CREATE TABLE balance_marks (
    slice           INTEGER PRIMARY KEY,
    charges_through INTEGER NOT NULL,
    topups_through  INTEGER NOT NULL
) STRICT;

DROP VIEW account_balances;

-- What each account's balances row lacks: its charges and top-ups after
-- its slice's marks (the accounts that lack nothing are left out).
CREATE VIEW balance_tails AS
    WITH since AS (
        SELECT min(charges_through) AS charges, min(topups_through) AS topups FROM balance_marks
    ), recent AS (
        SELECT account_id, -amount AS delta, seq, 0 AS kind FROM charges
            WHERE seq > (SELECT charges FROM since)
        UNION ALL
        SELECT account_id, amount, seq, 1 FROM topups
            WHERE seq > (SELECT topups FROM since)
    )
    SELECT a.num AS account, sum(r.delta) AS delta
    FROM recent AS r
    JOIN accounts AS a ON a.id = r.account_id
    JOIN balance_marks AS m ON m.slice = a.num >> 10
    WHERE r.seq > CASE r.kind WHEN 0 THEN m.charges_through ELSE m.topups_through END
    GROUP BY a.num;

CREATE VIEW account_balances AS
    SELECT a.id, a.opening_balance, b.balance + coalesce(t.delta, 0) AS balance, b.credit_limit, a.created_at
    FROM accounts AS a
    JOIN balances AS b ON b.account = a.num
    LEFT JOIN balance_tails AS t ON t.account = a.num;
