package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"observer/internal/telecom/money"
)

// The PostgreSQL backend talks to pgx.Conn directly rather than through
// database/sql or pgxpool:
//   - Group commit leaves exactly one writing connection per process, so the
//     hot path needs no pool at all; readers (balance, verify, UI) share a
//     handful of connections kept in a channel (pgConnPool), which is all the
//     pooling this workload needs.
//   - Native pgx binds Go slices to PostgreSQL arrays, so each step of a batch
//     (lock accounts, look up txnIDs, insert rows, update balances) is one
//     statement over unnest()/ANY() instead of thousands of round trips.
//   - pgxpool and pgx/stdlib both pull in github.com/jackc/puddle, which the
//     module does not otherwise need.

// pgReaders bounds the connections used outside the writer.
const pgReaders = 4

// pgStore is the multi-node backend.
type pgStore struct {
	cfg  *pgx.ConnConfig
	pool *pgConnPool
	w    *pgx.Conn // the writer's connection; (re)connected by begin
}

func openPostgres(ctx context.Context, dsn string) (*pgStore, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres dsn: %w", err)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	// An acknowledged charge must be on disk on the server: never let a
	// DSN or role default weaken that.
	cfg.RuntimeParams["synchronous_commit"] = "on"
	// The batch statements take arrays of any length; their generic plans
	// (nested loops over unnest() probing primary keys) suit every length,
	// whereas a custom plan for a long array may switch to scanning all
	// accounts. Planning once also saves planning time on every batch.
	cfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "observer-ledger"
	}
	s := &pgStore{cfg: cfg, pool: newPgConnPool(cfg, pgReaders)}
	// Fail Open, not the first charge, when the server is unreachable.
	err = s.pool.with(ctx, func(c *pgx.Conn) error { return c.Ping(ctx) })
	if err != nil {
		s.pool.close()
		return nil, fmt.Errorf("ledger: connect postgres: %w", err)
	}
	return s, nil
}

func (s *pgStore) backend() string { return "postgres" }

func (s *pgStore) idle() {} // the server checkpoints by itself

func (s *pgStore) upkeep() bool { return false }

// durable has nothing to do: with synchronous_commit=on a commit returns
// once the server has flushed it.
func (s *pgStore) durable() error { return nil }

// insertFindsTaken is false: another node may commit a txnID between the
// batch's lookup and its insert, which then skips it (ON CONFLICT DO
// NOTHING) and reports it, without failing the batch.
func (s *pgStore) insertFindsTaken() bool { return false }

func (s *pgStore) migrate(ctx context.Context, migs []migration, sd seed) error {
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return pgx.BeginTxFunc(ctx, c, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			// Nodes starting together queue here, so each migration and the
			// seeding run once. The key includes the schema so that
			// independent ledgers in one database do not wait for each other.
			if _, err := tx.Exec(ctx,
				"SELECT pg_advisory_xact_lock(hashtext('observer.ledger.migrate:' || current_schema()))"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer     PRIMARY KEY,
				name       text        NOT NULL,
				applied_at timestamptz NOT NULL
			)`); err != nil {
				return err
			}
			rs, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
			if err != nil {
				return err
			}
			vs, err := pgx.CollectRows(rs, pgx.RowTo[int])
			if err != nil {
				return err
			}
			applied := map[int]bool{}
			for _, v := range vs {
				applied[v] = true
			}
			todo, err := pending(migs, applied)
			if err != nil {
				return err
			}
			for _, m := range todo {
				// The simple protocol runs a multi-statement script.
				if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
				if _, err := tx.Exec(ctx,
					"INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
					m.version, m.name, sd.at); err != nil {
					return err
				}
			}
			var seeded bool
			if err := tx.QueryRow(ctx,
				"SELECT EXISTS (SELECT 1 FROM ledger_meta WHERE key = 'seeded_at')").Scan(&seeded); err != nil {
				return err
			}
			if seeded {
				return nil
			}
			// lpad alone would truncate ids past 999, hence the CASE.
			if _, err := tx.Exec(ctx, `
				INSERT INTO accounts (id, opening_balance, balance, credit_limit, created_at)
				SELECT 'ACC-' || CASE WHEN i < 100 THEN lpad(i::text, 3, '0') ELSE i::text END,
				       $2, $2, $3, $4
				FROM generate_series(1, $1::int) AS g(i)
				ON CONFLICT (id) DO NOTHING`,
				sd.accounts, int64(sd.opening), int64(sd.limit), sd.at); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
			_, err = tx.Exec(ctx,
				"INSERT INTO ledger_meta (key, value) VALUES ('seeded_at', $1) ON CONFLICT (key) DO NOTHING",
				sd.at.Format(timeLayout))
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("ledger: migrate: %w", err)
	}
	return nil
}

func (s *pgStore) begin(ctx context.Context) (batchTx, error) {
	if s.w == nil || s.w.IsClosed() {
		c, err := pgx.ConnectConfig(ctx, s.cfg)
		if err != nil {
			return nil, err
		}
		s.w = c
	}
	// READ COMMITTED: each statement sees rows other nodes committed
	// meanwhile, which is what resolving a txnID race needs; the account
	// rows we change are locked FOR UPDATE, so nothing is lost.
	tx, err := s.w.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		s.dropWriter()
		return nil, err
	}
	return &pgTx{s: s, tx: tx}, nil
}

// dropWriter discards the writer connection after an error that may have
// left it unusable; the next batch reconnects.
func (s *pgStore) dropWriter() {
	if s.w != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.w.Close(ctx)
		s.w = nil
	}
}

func (s *pgStore) retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// serialization_failure, deadlock_detected: the transaction was
		// rolled back as a whole and may simply run again.
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	// Nothing reached the server (e.g. the connection had dropped).
	return pgconn.SafeToRetry(err)
}

func (s *pgStore) createAccount(ctx context.Context, a Account) (bool, error) {
	var created bool
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `INSERT INTO accounts (id, opening_balance, balance, credit_limit, created_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
			a.ID, int64(a.OpeningBalance), int64(a.Balance), int64(a.CreditLimit), a.CreatedAt)
		created = tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("ledger: create account: %w", err)
	}
	return created, nil
}

func (s *pgStore) account(ctx context.Context, id string) (Account, bool, error) {
	a := Account{ID: id}
	var open, bal, lim int64
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx,
			"SELECT opening_balance, balance, credit_limit, created_at FROM accounts WHERE id = $1", id).
			Scan(&open, &bal, &lim, &a.CreatedAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, false, nil
	}
	if err != nil {
		return Account{}, false, fmt.Errorf("ledger: read account: %w", err)
	}
	a.OpeningBalance, a.Balance, a.CreditLimit = money.Amount(open), money.Amount(bal), money.Amount(lim)
	a.CreatedAt = a.CreatedAt.UTC()
	return a, true, nil
}

func (s *pgStore) findOne(ctx context.Context, k opKind, txnID string) (record, bool, error) {
	var recs map[string]record
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		var err error
		recs, err = pgFind(ctx, c, k, []string{txnID})
		return err
	})
	if err != nil {
		return record{}, false, fmt.Errorf("ledger: read %s: %w", k, err)
	}
	rec, ok := recs[txnID]
	return rec, ok, nil
}

func (s *pgStore) recent(ctx context.Context, n int) ([]Receipt, error) {
	var out []Receipt
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		rs, err := c.Query(ctx,
			"SELECT txn_id, account_id, amount, created_at FROM charges ORDER BY seq DESC LIMIT $1", n)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var (
				id, acct string
				amt      int64
				at       time.Time
			)
			if err := rs.Scan(&id, &acct, &amt, &at); err != nil {
				return err
			}
			out = append(out, record{account: acct, amount: money.Amount(amt), atMilli: at.UnixMilli()}.receipt(id, false))
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: recent: %w", err)
	}
	return out, nil
}

func (s *pgStore) snapshot(ctx context.Context, fn func(q querier) error) error {
	return s.pool.with(ctx, func(c *pgx.Conn) error {
		// REPEATABLE READ: every Verify query sees the same snapshot, even
		// while other nodes keep charging.
		return pgx.BeginTxFunc(ctx, c, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
			func(tx pgx.Tx) error { return fn(pgQuerier{tx}) })
	})
}

func (s *pgStore) integrityQuery() string { return "" }

// indexChecks has nothing to add: the charges table's own UNIQUE index is
// the txnID index, and PostgreSQL keeps it.
func (s *pgStore) indexChecks() []string { return nil }

func (s *pgStore) close() error {
	s.dropWriter()
	s.pool.close()
	return nil
}

// pgFind returns the committed entries of kind k among txnIDs.
func pgFind(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, k opKind, txnIDs []string) (map[string]record, error) {
	rs, err := q.Query(ctx, "SELECT txn_id, account_id, amount, created_at FROM "+tables[k]+" WHERE txn_id = ANY($1)", txnIDs)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := make(map[string]record)
	for rs.Next() {
		var (
			id, acct string
			amt      int64
			at       time.Time
		)
		if err := rs.Scan(&id, &acct, &amt, &at); err != nil {
			return nil, err
		}
		out[id] = record{account: acct, amount: money.Amount(amt), atMilli: at.UnixMilli()}
	}
	return out, rs.Err()
}

// pgTx is a batch on the writer connection: each step is one statement.
type pgTx struct {
	s    *pgStore
	tx   pgx.Tx
	done bool
}

func (t *pgTx) loadAccounts(ctx context.Context, ids []string) (map[string]*acctState, error) {
	// Locking in id order means two nodes can never wait for each other's
	// account locks in a cycle.
	sorted := slices.Sorted(slices.Values(ids))
	rs, err := t.tx.Query(ctx, `SELECT a.id, a.balance, a.credit_limit
		FROM unnest($1::text[]) AS u(id) JOIN accounts AS a ON a.id = u.id
		ORDER BY a.id
		FOR UPDATE OF a`, sorted)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := make(map[string]*acctState, len(ids))
	for rs.Next() {
		var (
			id       string
			bal, lim int64
		)
		if err := rs.Scan(&id, &bal, &lim); err != nil {
			return nil, err
		}
		out[id] = &acctState{balance: money.Amount(bal), limit: money.Amount(lim)}
	}
	return out, rs.Err()
}

func (t *pgTx) find(ctx context.Context, k opKind, txnIDs []string) (map[string]record, error) {
	return pgFind(ctx, t.tx, k, txnIDs)
}

func (t *pgTx) insert(ctx context.Context, k opKind, reqs []*request, at time.Time) ([]string, error) {
	// Inserting in txnID order means two nodes racing on several of the
	// same txnIDs wait for each other in one direction only: no deadlock.
	sorted := slices.SortedFunc(slices.Values(reqs), func(a, b *request) int {
		return strings.Compare(a.txnID, b.txnID)
	})
	ids := make([]string, len(sorted))
	accts := make([]string, len(sorted))
	amts := make([]int64, len(sorted))
	for i, r := range sorted {
		ids[i], accts[i], amts[i] = r.txnID, r.account, int64(r.amount)
	}
	rs, err := t.tx.Query(ctx, "INSERT INTO "+tables[k]+` (txn_id, account_id, amount, created_at)
		SELECT u.txn_id, u.account_id, u.amount, $4
		FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS u(txn_id, account_id, amount, ord)
		ORDER BY u.ord
		ON CONFLICT (txn_id) DO NOTHING
		RETURNING txn_id`, ids, accts, amts, at)
	if err != nil {
		return nil, err
	}
	inserted, err := pgx.CollectRows(rs, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if len(inserted) == len(ids) {
		return nil, nil
	}
	got := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		got[id] = true
	}
	var skipped []string
	for _, id := range ids {
		if !got[id] {
			skipped = append(skipped, id)
		}
	}
	return skipped, nil
}

func (t *pgTx) setBalances(ctx context.Context, accts map[string]*acctState) error {
	ids := make([]string, 0, len(accts))
	vals := make([]int64, 0, len(accts))
	for id, a := range accts {
		if a.dirty {
			ids = append(ids, id)
			vals = append(vals, int64(a.balance))
		}
	}
	_, err := t.tx.Exec(ctx, `UPDATE accounts AS a SET balance = v.balance
		FROM unnest($1::text[], $2::bigint[]) AS v(id, balance)
		WHERE a.id = v.id`, ids, vals)
	return err
}

func (t *pgTx) commit(ctx context.Context) error {
	t.done = true
	if err := t.tx.Commit(ctx); err != nil {
		// The connection state is unknown after a failed COMMIT.
		t.s.dropWriter()
		return err
	}
	return nil
}

func (t *pgTx) rollback() {
	if t.done {
		return
	}
	t.done = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.tx.Rollback(ctx); err != nil {
		t.s.dropWriter()
	}
}

// pgQuerier adapts a pgx transaction to querier.
type pgQuerier struct{ tx pgx.Tx }

func (q pgQuerier) query(ctx context.Context, s string) (rows, error) {
	return q.tx.Query(ctx, s)
}

// pgConnPool is a minimal connection pool: idle connections wait in a
// channel, and sem bounds how many exist at once.
type pgConnPool struct {
	cfg  *pgx.ConnConfig
	idle chan *pgx.Conn
	sem  chan struct{}
}

func newPgConnPool(cfg *pgx.ConnConfig, size int) *pgConnPool {
	return &pgConnPool{cfg: cfg, idle: make(chan *pgx.Conn, size), sem: make(chan struct{}, size)}
}

// with runs fn on a pooled connection. A connection that fn left broken or
// inside a transaction is closed instead of being reused.
func (p *pgConnPool) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	var c *pgx.Conn
	select {
	case c = <-p.idle:
	default:
		select {
		case c = <-p.idle:
		case p.sem <- struct{}{}:
			var err error
			if c, err = pgx.ConnectConfig(ctx, p.cfg); err != nil {
				<-p.sem
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := fn(c)
	if c.IsClosed() || c.PgConn().TxStatus() != 'I' {
		_ = c.Close(context.Background())
		<-p.sem
		return err
	}
	p.idle <- c // cannot block: at most cap(sem) connections exist
	return err
}

// close closes the idle connections; the pool must not be in use.
func (p *pgConnPool) close() {
	for {
		select {
		case c := <-p.idle:
			_ = c.Close(context.Background())
			<-p.sem
		default:
			return
		}
	}
}
