-- account_balances shows an account with its balance. In PostgreSQL both
-- are in accounts; SQLite keeps balances in a table of their own, and the
-- queries both backends share read the view.
CREATE VIEW account_balances AS
    SELECT id, opening_balance, balance, credit_limit, created_at FROM accounts;
