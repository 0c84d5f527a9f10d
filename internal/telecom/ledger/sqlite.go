package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"modernc.org/sqlite"

	"observer/internal/telecom/money"
)

// SQLiteFile is the database file name inside the data directory.
const SQLiteFile = "ledger.db"

// sqlitePragmas are applied to every connection:
//   - busy_timeout: another process (a second node on the same file, the
//     sqlite3 shell) may hold the write lock briefly; wait rather than fail.
//   - synchronous=FULL: the WAL is fsync'd at every commit, so an
//     acknowledged charge survives power loss, not just a process crash.
//   - foreign_keys=ON: SQLite leaves REFERENCES unenforced otherwise.
//
// journal_mode=WAL (readers never block the writer; a commit appends to the
// log) is a property of the file instead, set once by setWAL.
var sqlitePragmas = []string{
	"busy_timeout(" + strconv.Itoa(int(sqliteBusyTimeout/time.Millisecond)) + ")",
	"synchronous(FULL)",
	"foreign_keys(ON)",
}

// sqliteBusyTimeout is how long a connection waits for another one's lock.
const sqliteBusyTimeout = 10 * time.Second

// sqliteBusy is SQLITE_BUSY: the write lock stayed taken past busy_timeout.
const sqliteBusy = 5

// sqliteStore is the single-node backend: a database/sql pool for readers and
// one dedicated connection, with prepared statements, for the writer.
type sqliteStore struct {
	db *sql.DB
	w  *sql.Conn
	ws struct {
		account, setBalance *sql.Stmt
		find, insert        [2]*sql.Stmt // by opKind
	}
}

// tables maps an opKind to its table; the names are constants, never input.
var tables = [2]string{opCharge: "charges", opTopUp: "topups"}

func openSQLite(ctx context.Context, dir string) (_ *sqliteStore, err error) {
	if dir == "" {
		return nil, errors.New("ledger: empty data directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: data directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("ledger: data directory: %w", err)
	}
	q := url.Values{"_pragma": sqlitePragmas}
	// A file: URI keeps a data directory containing '?' or '#' unambiguous.
	u := url.URL{Scheme: "file", Path: filepath.Join(abs, SQLiteFile), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("ledger: open sqlite: %w", err)
	}
	s := &sqliteStore{db: db}
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if s.w, err = db.Conn(ctx); err != nil {
		return nil, fmt.Errorf("ledger: open sqlite %s: %w", u.Path, err)
	}
	if err := setWAL(ctx, s.w); err != nil {
		return nil, fmt.Errorf("ledger: sqlite %s: %w", u.Path, err)
	}
	// The pragmas run at connection open; confirm they took effect, because
	// a silently weaker setting would void the durability promise.
	var mode string
	var syncLevel int
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("ledger: sqlite: %w", err)
	}
	if err := s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncLevel); err != nil {
		return nil, fmt.Errorf("ledger: sqlite: %w", err)
	}
	if mode != "wal" || syncLevel != 2 {
		return nil, fmt.Errorf("ledger: sqlite: journal_mode=%s synchronous=%d, want wal and 2 (FULL)", mode, syncLevel)
	}
	return s, nil
}

// setWAL switches the database file to WAL mode. Converting a new file needs
// an exclusive lock, and SQLite reports SQLITE_BUSY for it at once instead
// of calling the busy handler, so when several processes open a new ledger
// together the losers wait here, for up to sqliteBusyTimeout.
func setWAL(ctx context.Context, c *sql.Conn) error {
	deadline := time.Now().Add(sqliteBusyTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		var mode string
		err := c.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		if err == nil {
			return nil // the caller checks the resulting mode
		}
		if !isBusy(err) || time.Now().After(deadline) {
			return fmt.Errorf("set WAL mode: %w", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// isBusy reports whether err is SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqliteBusy
}

func (s *sqliteStore) backend() string { return "sqlite" }

func (s *sqliteStore) migrate(ctx context.Context, migs []migration, sd seed) (err error) {
	// BEGIN IMMEDIATE takes the write lock up front, so two processes opening
	// a fresh file at once run the migrations one after the other.
	if _, err := s.w.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("ledger: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = s.w.ExecContext(context.Background(), "ROLLBACK")
			err = fmt.Errorf("ledger: migrate: %w", err)
		}
	}()
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TEXT    NOT NULL
	) STRICT`); err != nil {
		return err
	}
	applied := map[int]bool{}
	rs, err := s.w.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return err
	}
	for rs.Next() {
		var v int
		if err := rs.Scan(&v); err != nil {
			rs.Close()
			return err
		}
		applied[v] = true
	}
	if err := rs.Close(); err != nil {
		return err
	}
	todo, err := pending(migs, applied)
	if err != nil {
		return err
	}
	for _, m := range todo {
		if _, err := s.w.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := s.w.ExecContext(ctx,
			"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.version, m.name, sd.at.Format(timeLayout)); err != nil {
			return err
		}
	}

	var seeded int
	if err := s.w.QueryRowContext(ctx,
		"SELECT count(*) FROM ledger_meta WHERE key = 'seeded_at'").Scan(&seeded); err != nil {
		return err
	}
	if seeded == 0 {
		// "WHERE true" resolves SQLite's INSERT … SELECT … ON CONFLICT parsing ambiguity.
		if _, err := s.w.ExecContext(ctx, `
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO accounts (id, opening_balance, balance, credit_limit, created_at)
			SELECT printf('ACC-%03d', i), ?, ?, ?, ? FROM n WHERE true
			ON CONFLICT (id) DO NOTHING`,
			sd.accounts, int64(sd.opening), int64(sd.opening), int64(sd.limit), sd.at.Format(timeLayout)); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if _, err := s.w.ExecContext(ctx,
			"INSERT INTO ledger_meta (key, value) VALUES ('seeded_at', ?)", sd.at.Format(timeLayout)); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	if _, err := s.w.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	return s.prepareWriter(ctx)
}

// prepareWriter prepares the writer's statements once; every batch reuses
// them.
//
// Each statement handles a whole batch: the batch's ids and rows travel as
// one JSON array, which json_each() unpacks inside SQLite. Per row that costs
// a b-tree operation in the engine instead of a full statement execution
// through database/sql, which makes the writer several times faster; the
// writer is the one serial part of group commit, so its speed is the
// ledger's throughput.
func (s *sqliteStore) prepareWriter(ctx context.Context) error {
	prep := func(dst **sql.Stmt, q string) error {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("ledger: prepare %q: %w", q, err)
		}
		*dst = st
		return nil
	}
	if err := prep(&s.ws.account, `SELECT a.id, a.balance, a.credit_limit
		FROM json_each(?) AS j JOIN accounts AS a ON a.id = j.value`); err != nil {
		return err
	}
	// UPDATE … FROM needs SQLite 3.33, ->> 3.38; the bundled engine is newer.
	if err := prep(&s.ws.setBalance, `UPDATE accounts SET balance = j.value ->> 1
		FROM json_each(?) AS j WHERE accounts.id = j.value ->> 0`); err != nil {
		return err
	}
	for k, t := range tables {
		if err := prep(&s.ws.find[k], `SELECT e.txn_id, e.account_id, e.amount, e.created_at
			FROM json_each(?) AS j JOIN `+t+` AS e ON e.txn_id = j.value`); err != nil {
			return err
		}
		// json_each yields rows in array order, so seq follows queue order.
		// "WHERE true" resolves SQLite's INSERT … SELECT … ON CONFLICT
		// parsing ambiguity; RETURNING lists the rows actually inserted.
		if err := prep(&s.ws.insert[k], `INSERT INTO `+t+` (txn_id, account_id, amount, created_at)
			SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, ? FROM json_each(?) AS j WHERE true
			ON CONFLICT (txn_id) DO NOTHING
			RETURNING txn_id`); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqliteStore) begin(ctx context.Context) (batchTx, error) {
	// IMMEDIATE: take the write lock before reading balances, so no other
	// process can change them between our check and our update.
	if _, err := s.w.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, err
	}
	return &sqliteTx{s: s}, nil
}

func (s *sqliteStore) retryable(err error) bool { return isBusy(err) }

func (s *sqliteStore) createAccount(ctx context.Context, a Account) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO accounts (id, opening_balance, balance, credit_limit, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		a.ID, int64(a.OpeningBalance), int64(a.Balance), int64(a.CreditLimit), a.CreatedAt.Format(timeLayout))
	if err != nil {
		return false, fmt.Errorf("ledger: create account: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *sqliteStore) account(ctx context.Context, id string) (Account, bool, error) {
	a := Account{ID: id}
	var created string
	err := s.db.QueryRowContext(ctx,
		"SELECT opening_balance, balance, credit_limit, created_at FROM accounts WHERE id = ?", id).
		Scan(&a.OpeningBalance, &a.Balance, &a.CreditLimit, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, false, nil
	}
	if err != nil {
		return Account{}, false, fmt.Errorf("ledger: read account: %w", err)
	}
	a.CreatedAt, err = time.Parse(timeLayout, created)
	return a, err == nil, err
}

func (s *sqliteStore) findOne(ctx context.Context, k opKind, txnID string) (record, bool, error) {
	var rec record
	var at string
	err := s.db.QueryRowContext(ctx,
		"SELECT account_id, amount, created_at FROM "+tables[k]+" WHERE txn_id = ?", txnID).
		Scan(&rec.account, &rec.amount, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("ledger: read %s: %w", k, err)
	}
	rec.atMilli, err = parseMilli(at)
	return rec, err == nil, err
}

func (s *sqliteStore) recent(ctx context.Context, n int) ([]Receipt, error) {
	rs, err := s.db.QueryContext(ctx,
		"SELECT txn_id, account_id, amount, created_at FROM charges ORDER BY seq DESC LIMIT ?", n)
	if err != nil {
		return nil, fmt.Errorf("ledger: recent: %w", err)
	}
	defer rs.Close()
	var out []Receipt
	for rs.Next() {
		var (
			id  string
			rec record
			at  string
		)
		if err := rs.Scan(&id, &rec.account, &rec.amount, &at); err != nil {
			return nil, fmt.Errorf("ledger: recent: %w", err)
		}
		if rec.atMilli, err = parseMilli(at); err != nil {
			return nil, err
		}
		out = append(out, rec.receipt(id, false))
	}
	return out, rs.Err()
}

func (s *sqliteStore) snapshot(ctx context.Context, fn func(q querier) error) error {
	// A deferred transaction reads one consistent WAL snapshot and never
	// blocks the writer.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return fn(sqlQuerier{tx})
}

func (s *sqliteStore) integrityQuery() string { return "PRAGMA quick_check" }

func (s *sqliteStore) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.ws.account, s.ws.setBalance, s.ws.find[0], s.ws.find[1], s.ws.insert[0], s.ws.insert[1]} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

// parseMilli parses a stored timestamp into Unix milliseconds.
func parseMilli(s string) (int64, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return 0, fmt.Errorf("ledger: bad timestamp %q: %w", s, err)
	}
	return t.UnixMilli(), nil
}

// sqliteTx is a batch on the writer connection.
type sqliteTx struct {
	s    *sqliteStore
	done bool
	buf  []byte
}

// jsonStrings encodes ids as a JSON array of strings.
func (t *sqliteTx) jsonStrings(ids []string) string {
	b := append(t.buf[:0], '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
	}
	b = append(b, ']')
	t.buf = b
	return string(b)
}

func (t *sqliteTx) loadAccounts(ctx context.Context, ids []string) (map[string]*acctState, error) {
	rs, err := t.s.ws.account.QueryContext(ctx, t.jsonStrings(ids))
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

func (t *sqliteTx) find(ctx context.Context, k opKind, txnIDs []string) (map[string]record, error) {
	rs, err := t.s.ws.find[k].QueryContext(ctx, t.jsonStrings(txnIDs))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]record{}
	for rs.Next() {
		var (
			id, at string
			rec    record
		)
		if err := rs.Scan(&id, &rec.account, &rec.amount, &at); err != nil {
			return nil, err
		}
		if rec.atMilli, err = parseMilli(at); err != nil {
			return nil, err
		}
		out[id] = rec
	}
	return out, rs.Err()
}

func (t *sqliteTx) insert(ctx context.Context, k opKind, reqs []*request, at time.Time) ([]string, error) {
	b := append(t.buf[:0], '[')
	for i, r := range reqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendJSONString(b, r.txnID)
		b = append(b, ',')
		b = appendJSONString(b, r.account)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(r.amount), 10)
		b = append(b, ']')
	}
	b = append(b, ']')
	t.buf = b
	rs, err := t.s.ws.insert[k].QueryContext(ctx, at.Format(timeLayout), string(b))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	inserted := make(map[string]bool, len(reqs))
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, err
		}
		inserted[id] = true
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	var skipped []string
	for _, r := range reqs {
		if !inserted[r.txnID] {
			skipped = append(skipped, r.txnID)
		}
	}
	return skipped, nil
}

func (t *sqliteTx) setBalances(ctx context.Context, bal map[string]money.Amount) error {
	b := append(t.buf[:0], '[')
	first := true
	for id, v := range bal {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '[')
		b = appendJSONString(b, id)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(v), 10)
		b = append(b, ']')
	}
	b = append(b, ']')
	t.buf = b
	_, err := t.s.ws.setBalance.ExecContext(ctx, string(b))
	return err
}

// appendJSONString appends s as a JSON string. Ids are validated UTF-8
// without control characters, so only quote and backslash need escaping;
// control characters are escaped anyway so that the output is always JSON.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func (t *sqliteTx) commit(ctx context.Context) error {
	if _, err := t.s.w.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	t.done = true
	return nil
}

func (t *sqliteTx) rollback() {
	if !t.done {
		t.done = true
		// Ignored: after a failed COMMIT SQLite may already have rolled back.
		_, _ = t.s.w.ExecContext(context.Background(), "ROLLBACK")
	}
}

// sqlQuerier adapts a database/sql transaction to querier.
type sqlQuerier struct{ tx *sql.Tx }

func (q sqlQuerier) query(ctx context.Context, s string) (rows, error) {
	rs, err := q.tx.QueryContext(ctx, s)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

// sqlRows gives *sql.Rows the error-less Close of the rows interface; the
// error Close could report is also returned by Err.
type sqlRows struct{ *sql.Rows }

// Close closes the rows; a close error also surfaces through Err.
func (r sqlRows) Close() { _ = r.Rows.Close() }
