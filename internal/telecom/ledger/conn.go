package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"observer/internal/telecom/money"
)

// recentWindow is how many of the latest charges Busiest looks at: the
// accounts busy now, without scanning the whole journal.
const recentWindow = 1000

// Conn is one dedicated database connection for reads, as a pool worker
// holds. It is not safe for concurrent use; Close releases it.
type Conn struct {
	backend string
	sq      *sql.Conn
	pg      *pgx.Conn
}

// AccountActivity is an account as the observer's ledger view lists it.
type AccountActivity struct {
	ID      string
	Balance money.Amount
	Charges int64        // charges among the latest ones (Busiest)
	Amount  money.Amount // their total (Busiest)
}

// Conn opens a dedicated connection to the ledger's database.
func (l *Ledger) Conn(ctx context.Context) (*Conn, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	switch st := l.st.(type) {
	case *sqliteStore:
		c, err := st.db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("ledger: connect: %w", err)
		}
		return &Conn{backend: "sqlite", sq: c}, nil
	case *pgStore:
		c, err := pgx.ConnectConfig(ctx, st.cfg)
		if err != nil {
			return nil, fmt.Errorf("ledger: connect: %w", err)
		}
		return &Conn{backend: "postgres", pg: c}, nil
	}
	return nil, errors.New("ledger: unknown backend")
}

// Close releases the connection.
func (c *Conn) Close() error {
	if c.sq != nil {
		return c.sq.Close()
	}
	return c.pg.Close(context.Background())
}

// Account reads one account; a missing one is ErrUnknownAccount.
func (c *Conn) Account(ctx context.Context, id string) (Account, error) {
	a := Account{ID: id}
	var err error
	if c.sq != nil {
		var created string
		err = c.sq.QueryRowContext(ctx, "SELECT opening_balance, balance, credit_limit, created_at FROM account_balances WHERE id = ?", id).
			Scan(&a.OpeningBalance, &a.Balance, &a.CreditLimit, &created)
		if err == nil {
			a.CreatedAt, err = time.Parse(timeLayout, created)
		}
	} else {
		err = c.pg.QueryRow(ctx, "SELECT opening_balance, balance, credit_limit, created_at FROM accounts WHERE id = $1", id).
			Scan(&a.OpeningBalance, &a.Balance, &a.CreditLimit, &a.CreatedAt)
	}
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		return Account{}, unknownAccount(id)
	}
	if err != nil {
		return Account{}, fmt.Errorf("ledger: read account: %w", err)
	}
	return a, nil
}

// Recent returns up to n charges, newest first.
func (c *Conn) Recent(ctx context.Context, n int) ([]Receipt, error) {
	var out []Receipt
	err := c.each(ctx, "SELECT txn_id, account_id, amount, created_at FROM charges ORDER BY seq DESC LIMIT "+fmt.Sprint(n),
		func(scan func(...any) error) error {
			var id, acct string
			var amt int64
			var at time.Time
			if c.sq != nil {
				var s string
				if err := scan(&id, &acct, &amt, &s); err != nil {
					return err
				}
				at, _ = time.Parse(timeLayout, s)
			} else if err := scan(&id, &acct, &amt, &at); err != nil {
				return err
			}
			out = append(out, Receipt{TxnID: id, Account: acct, Amount: money.Amount(amt), At: at})
			return nil
		})
	return out, err
}

// Busiest returns the n accounts charged most often among the latest
// charges, with their balances.
func (c *Conn) Busiest(ctx context.Context, n int) ([]AccountActivity, error) {
	q := fmt.Sprintf(`SELECT r.account_id, a.balance, COUNT(*), SUM(r.amount)
		FROM (SELECT account_id, amount FROM charges ORDER BY seq DESC LIMIT %d) r
		JOIN account_balances a ON a.id = r.account_id
		GROUP BY r.account_id, a.balance ORDER BY COUNT(*) DESC, r.account_id LIMIT %d`, recentWindow, n)
	return c.activity(ctx, q)
}

// LowestBalances returns the n accounts with the lowest balances.
func (c *Conn) LowestBalances(ctx context.Context, n int) ([]AccountActivity, error) {
	return c.activity(ctx, fmt.Sprintf("SELECT id, balance, 0, 0 FROM account_balances ORDER BY balance, id LIMIT %d", n))
}

func (c *Conn) activity(ctx context.Context, q string) ([]AccountActivity, error) {
	var out []AccountActivity
	err := c.each(ctx, q, func(scan func(...any) error) error {
		var a AccountActivity
		var bal, cnt, sum int64
		if err := scan(&a.ID, &bal, &cnt, &sum); err != nil {
			return err
		}
		a.Balance, a.Charges, a.Amount = money.Amount(bal), cnt, money.Amount(sum)
		out = append(out, a)
		return nil
	})
	return out, err
}

// each runs a parameterless query and calls row for every row.
func (c *Conn) each(ctx context.Context, q string, row func(scan func(...any) error) error) error {
	if c.sq != nil {
		rs, err := c.sq.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("ledger: query: %w", err)
		}
		defer rs.Close()
		for rs.Next() {
			if err := row(rs.Scan); err != nil {
				return fmt.Errorf("ledger: query: %w", err)
			}
		}
		return rs.Err()
	}
	rs, err := c.pg.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("ledger: query: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		if err := row(rs.Scan); err != nil {
			return fmt.Errorf("ledger: query: %w", err)
		}
	}
	return rs.Err()
}
