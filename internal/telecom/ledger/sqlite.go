package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
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
// The writer's connection then changes some of them (sqliteWriterPragmas),
// and fsyncs the WAL itself before a batch is acknowledged.
//
// journal_mode=WAL (readers never block the writer; a commit appends to the
// log) is a property of the file instead, set once by setWAL.
var sqlitePragmas = []string{
	"busy_timeout(" + strconv.Itoa(int(sqliteBusyTimeout/time.Millisecond)) + ")",
	"synchronous(FULL)",
	"foreign_keys(ON)",
}

// sqlitePageSize is the page size of a new database file. A commit writes
// every page it changed to the WAL, whole, with two system calls. A batch of
// charges changes the pages of the accounts it names, scattered over the
// accounts table, the last pages of charges, and, while a merge runs, the
// charge_ids leaves of one range of txnIDs (see sqlite_ids.go). With
// 32 KiB pages the writer spends about 10% less CPU time per charge than
// with SQLite's default of 4 KiB, for about 15% more bytes written
// (BenchmarkWriterBatch: 13.7 against 15.2-15.7 µs and 1,035 against 900
// bytes per charge). An existing file keeps the page size it was made with.
const sqlitePageSize = 32768

// sqliteBusyTimeout is how long a connection waits for another one's lock.
const sqliteBusyTimeout = 10 * time.Second

// sqliteBusy is SQLITE_BUSY: the write lock stayed taken past busy_timeout.
const sqliteBusy = 5

// sqliteStore is the single-node backend: a database/sql pool for readers,
// one dedicated connection, with prepared statements, for the writer, and one
// for the checkpointer.
type sqliteStore struct {
	db *sql.DB
	w  *sql.Conn
	ws struct {
		account      *sql.Stmt
		setBalance   *sql.Stmt
		setMarks     *sql.Stmt
		dataVersion  *sql.Stmt
		find, insert [2]*sql.Stmt // by opKind
	}
	ck   *sqliteCheckpointer // nil until the writer is prepared
	ids  *chargeIDs          // the charges not yet in charge_ids
	path string              // the database file
	wal  *os.File            // its WAL, which durable fsyncs

	// The writer's: what it knows of the accounts, which balances rows
	// lag (see sqlite_fold.go), and scratch space reused from batch to
	// batch.
	accts acctCache
	folds balanceFolds
	buf   []byte
	sc    struct {
		accts  map[string]*acctState
		states []acctState
		added  []addedCharge
	}
}

// acctCache holds accounts as committed, so that a batch need not read the
// accounts it names back from the database. It is only trusted while no
// other connection has committed since the writer last looked: PRAGMA
// data_version, read in each batch's write-locked transaction, tells.
// Another process on the same file, or a CreateAccount on another of this
// process's connections, therefore costs one cache flush, never a stale
// balance.
type acctCache struct {
	version int64 // data_version when last checked
	m       map[string]acctState
}

// maxCachedAccounts bounds the account cache; beyond it, it starts over.
const maxCachedAccounts = 1 << 20

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
	// SQLite syncs with fdatasync(2) where its build finds it, as on every
	// Linux distribution; the pure-Go build keeps fsync(2) unless told.
	// fdatasync skips the timestamps, whose journal commit a checkpoint's
	// fsync of the database file waited for (its ftruncate touches them
	// even when the size stays). Where there is no fdatasync nothing
	// changes.
	_, _ = sqlite.Fdatasync(true)
	q := url.Values{"_pragma": sqlitePragmas}
	// A file: URI keeps a data directory containing '?' or '#' unambiguous.
	u := url.URL{Scheme: "file", Path: filepath.Join(abs, SQLiteFile), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("ledger: open sqlite: %w", err)
	}
	s := &sqliteStore{db: db, path: u.Path, ids: newChargeIDs()}
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()
	// The writer and the checkpointer hold one connection each, every
	// db_pool worker another (its size plus overflow, 8 by default), and
	// the ledger's own reads need a few more.
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(16)
	if s.w, err = db.Conn(ctx); err != nil {
		return nil, fmt.Errorf("ledger: open sqlite %s: %w", u.Path, err)
	}
	// Before anything is written: a new file takes this page size, an
	// existing one keeps its own.
	if _, err := s.w.ExecContext(ctx, "PRAGMA page_size = "+strconv.Itoa(sqlitePageSize)); err != nil {
		return nil, fmt.Errorf("ledger: sqlite %s: %w", u.Path, err)
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

// sqliteConstraintUnique is SQLITE_CONSTRAINT_UNIQUE.
const sqliteConstraintUnique = 19 | 8<<8

// isUniqueViolation reports whether err is a UNIQUE constraint failure.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqliteConstraintUnique
}

// isBusy reports whether err is SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqliteBusy
}

func (s *sqliteStore) backend() string { return "sqlite" }

func (s *sqliteStore) migrate(ctx context.Context, migs []migration, sd seed) (err error) {
	// Off while migrating, as SQLite prescribes for a migration that
	// rebuilds a table others refer to (the pragma is a no-op inside a
	// transaction); foreign_key_check confirms the result before it
	// commits. The writer's connection keeps foreign_keys off anyway: see
	// sqliteWriterPragmas.
	if _, err := s.w.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return fmt.Errorf("ledger: migrate: %w", err)
	}
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
			INSERT INTO accounts (id, opening_balance, created_at)
			SELECT printf('ACC-%03d', i), ?, ? FROM n WHERE true
			ON CONFLICT (id) DO NOTHING`,
			sd.accounts, int64(sd.opening), sd.at.Format(timeLayout)); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if _, err := s.w.ExecContext(ctx, `INSERT INTO balances (account, balance, credit_limit)
			SELECT a.num, ?, ? FROM accounts AS a WHERE NOT EXISTS (SELECT 1 FROM balances AS b WHERE b.account = a.num)`,
			int64(sd.opening), int64(sd.limit)); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if _, err := s.w.ExecContext(ctx,
			"INSERT INTO ledger_meta (key, value) VALUES ('seeded_at', ?)", sd.at.Format(timeLayout)); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	if len(todo) > 0 {
		// What the migrations rebuilt refers to what it should. (An entry
		// without its account, say written by hand, is Verify's to report:
		// it does not stop the ledger from opening.)
		var broken int64
		switch err := s.w.QueryRowContext(ctx, "SELECT rowid FROM pragma_foreign_key_check('balances') LIMIT 1").Scan(&broken); {
		case err == nil:
			return fmt.Errorf("balances row %d names no account", broken)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
	}
	if _, err := s.w.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	return s.prepareWriter(ctx)
}

// Settings of the writer's connection, on top of sqlitePragmas:
//
//   - cache_size: a batch of charges with unrelated txnIDs changes one page
//     of the txn_id index per charge, all over the index; a cache that holds
//     the hot part of the database spares the writer reading pages back.
//   - foreign_keys=OFF: the writer loads every account a batch names, in the
//     batch's write-locked transaction, and writes no entry for an account
//     it did not find, so the charges' and top-ups' REFERENCES cannot be
//     broken by it; SQLite's own check would only repeat that lookup, and it
//     would make every batch insert keep a statement journal (see
//     prepareWriter). Every other connection keeps foreign_keys=ON, and
//     Verify reports an entry without its account.
//   - wal_autocheckpoint=0: the checkpointer copies the WAL back into the
//     database file in the background instead of the committing writer
//     (see checkpoint.go).
//   - synchronous=NORMAL: COMMIT writes the batch to the WAL without
//     waiting for the disk, and durable then fsyncs the WAL before the
//     batch is acknowledged, as synchronous=FULL would have inside COMMIT;
//     meanwhile the writer is already on the next batch. The WAL is
//     written in order and recovery stops at the first frame that did not
//     make it to disk, so no batch can survive a crash without the ones
//     before it, and a checkpoint still fsyncs the WAL before copying it
//     and the database file after.
var sqliteWriterPragmas = []string{
	"PRAGMA cache_size = -65536", // KiB
	"PRAGMA foreign_keys = OFF",
	"PRAGMA wal_autocheckpoint = 0",
	"PRAGMA synchronous = NORMAL",
}

// prepareWriter sets the writer's connection up and prepares its statements
// once; every batch reuses them.
//
// Each statement handles a whole batch: the batch's ids and rows travel as
// one JSON document, which json_each() unpacks inside SQLite. Per row that
// costs a b-tree operation in the engine instead of a full statement
// execution through database/sql, which makes the writer several times
// faster; the writer is the one serial part of group commit, so its speed
// is the ledger's throughput.
//
// The statements that write take their rows as JSON objects whose keys and
// values are the columns, {"txn":{"account":amount},…} and
// {"num":balance,…}, read with json_each alone, and use OR FAIL: no
// function call (such as ->>) and no ABORT constraint. A statement that
// changes many rows and has either has SQLite copy every page it is about
// to change to a statement journal first, to undo its own half should it
// stop half way; a batch changes one index page per charge, so that doubled
// the writer's page writes. These cannot stop half way except on a broken
// constraint, and then the batch's whole transaction is rolled back anyway.
func (s *sqliteStore) prepareWriter(ctx context.Context) error {
	for _, q := range sqliteWriterPragmas {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("ledger: sqlite writer: %q: %w", q, err)
		}
	}
	// The WAL exists: migrate ran a transaction in WAL mode, and SQLite
	// removes it only when the last connection closes, which the writer's
	// is not until close.
	wal, err := os.OpenFile(s.path+"-wal", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("ledger: sqlite writer: %w", err)
	}
	s.wal = wal
	prep := func(dst **sql.Stmt, q string) error {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("ledger: prepare %q: %w", q, err)
		}
		*dst = st
		return nil
	}
	// j.key is the id's place in the array: no id travels back.
	if err := prep(&s.ws.account, `SELECT j.key, a.num, b.balance, b.credit_limit
		FROM json_each(?) AS j JOIN accounts AS a ON a.id = j.value JOIN balances AS b ON b.account = a.num`); err != nil {
		return err
	}
	if err := prep(&s.ws.dataVersion, "PRAGMA data_version"); err != nil {
		return err
	}
	// UPDATE … FROM needs SQLite 3.33; the bundled engine is newer.
	if err := prep(&s.ws.setBalance, `UPDATE OR FAIL balances SET balance = j.value
		FROM json_each(?) AS j WHERE balances.account = j.key`); err != nil {
		return err
	}
	if err := prep(&s.ws.setMarks, `UPDATE balance_marks SET
		charges_through = coalesce((SELECT max(seq) FROM charges), 0),
		topups_through = coalesce((SELECT max(seq) FROM topups), 0)
		WHERE slice >= ? AND slice < ?`); err != nil {
		return err
	}
	// A charge's txnID is found through charge_ids (the pending ones are
	// in memory), a top-up's in topups' own UNIQUE index.
	if err := prep(&s.ws.find[opCharge], `SELECT i.txn_id, e.account_id, e.amount, e.created_at
		FROM json_each(?) AS j JOIN charge_ids AS i ON i.txn_id = j.value JOIN charges AS e ON e.seq = i.seq`); err != nil {
		return err
	}
	if err := prep(&s.ws.find[opTopUp], `SELECT e.txn_id, e.account_id, e.amount, e.created_at
		FROM json_each(?) AS j JOIN topups AS e ON e.txn_id = j.value`); err != nil {
		return err
	}
	for k, t := range tables {
		// json_each yields members in document order, so seq follows queue
		// order. OR FAIL: a top-up's txnID recorded already fails it.
		if err := prep(&s.ws.insert[k], `INSERT OR FAIL INTO `+t+` (txn_id, account_id, amount, created_at)
			SELECT j.key, e.key, e.value, ? FROM json_each(?) AS j, json_each(j.value) AS e`); err != nil {
			return err
		}
	}
	// The charges whose txnIDs are not in charge_ids yet, now, so that
	// findOne sees them from the start. data_version first: a commit in
	// between makes the first batch read them again.
	if err := s.ws.dataVersion.QueryRowContext(ctx).Scan(&s.ids.version); err != nil {
		return fmt.Errorf("ledger: sqlite: %w", err)
	}
	if err := s.ids.load(ctx, s.w); err != nil {
		return err
	}
	fc, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("ledger: sqlite: txnID filter: %w", err)
	}
	s.ids.filter.build(fc)
	ck, err := newSQLiteCheckpointer(ctx, s)
	if err != nil {
		return err
	}
	s.ck = ck
	return nil
}

func (s *sqliteStore) begin(ctx context.Context) (batchTx, error) {
	// IMMEDIATE: take the write lock before reading balances, so no other
	// process can change them between our check and our update.
	if _, err := s.w.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, err
	}
	clear(s.sc.added)
	t := &sqliteTx{s: s, added: s.sc.added[:0]}
	var v int64
	if err := s.ws.dataVersion.QueryRowContext(ctx).Scan(&v); err != nil {
		t.rollback()
		return nil, err
	}
	if v != s.accts.version || s.accts.m == nil || len(s.accts.m) > maxCachedAccounts {
		s.accts.version = v
		s.accts.m = make(map[string]acctState)
		s.folds.all = true // only the cache knew which balances lag
	}
	if !s.ids.loaded || v != s.ids.version {
		if err := s.ids.load(ctx, s.w); err != nil {
			t.rollback()
			return nil, err
		}
		s.ids.version = v
	}
	if s.folds.all {
		// Before any balance is read; done once this commits.
		if err := s.foldAll(ctx); err != nil {
			t.rollback()
			return nil, err
		}
		t.foldedAll = true
	}
	return t, nil
}

func (s *sqliteStore) retryable(err error) bool { return isBusy(err) }

// insertFindsTaken is false: a charge's txnID is made unique by
// charge_ids only later (see sqlite_ids.go), so the writer looks every
// txnID up first.
func (s *sqliteStore) insertFindsTaken() bool { return false }

func (s *sqliteStore) durable() error {
	if err := syncData(s.wal); err != nil {
		return fmt.Errorf("ledger: sqlite: fsync %s: %w", s.wal.Name(), err)
	}
	return nil
}

// upkeep merges a chunk of pending txnIDs into charge_ids, at the pace
// the charges set (see sqlite_ids.go).
func (s *sqliteStore) upkeep() bool {
	if s.ids.failed || !s.ids.due() || !s.ids.paced() {
		return false
	}
	if err := s.ids.mergeAlone(context.Background(), s.w, s.ws.dataVersion); err != nil {
		// Left to the batches, whose transactions merge too and report
		// what fails to their callers.
		s.ids.failed = true
	}
	return true
}

func (s *sqliteStore) idle() {
	if s.ck != nil {
		s.ck.afterBatch()
	}
}

func (s *sqliteStore) createAccount(ctx context.Context, a Account) (created bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("ledger: create account: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// The first statement writes, so the transaction takes the write lock
	// at once, waiting for it as long as the busy timeout allows.
	var num int64
	err = tx.QueryRowContext(ctx, `INSERT INTO accounts (id, opening_balance, created_at)
		VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING num`,
		a.ID, int64(a.OpeningBalance), a.CreatedAt.Format(timeLayout)).Scan(&num)
	if errors.Is(err, sql.ErrNoRows) {
		return false, tx.Rollback()
	}
	if err != nil {
		return false, fmt.Errorf("ledger: create account: %w", err)
	}
	if _, err = tx.ExecContext(ctx, "INSERT INTO balances (account, balance, credit_limit) VALUES (?, ?, ?)",
		num, int64(a.Balance), int64(a.CreditLimit)); err != nil {
		return false, fmt.Errorf("ledger: create account: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return false, fmt.Errorf("ledger: create account: %w", err)
	}
	return true, nil
}

func (s *sqliteStore) account(ctx context.Context, id string) (Account, bool, error) {
	a := Account{ID: id}
	var created string
	err := s.db.QueryRowContext(ctx,
		"SELECT opening_balance, balance, credit_limit, created_at FROM account_balances WHERE id = ?", id).
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
	q := "SELECT account_id, amount, created_at FROM topups WHERE txn_id = ?"
	if k == opCharge {
		if rec, ok := s.ids.get(txnID); ok {
			return rec, true, nil
		}
		// Not pending here, but another process on the file may have
		// charged it and not merged it yet: after charge_ids, the charges
		// past charge_ids_through (at most a few merges' worth) are read.
		q = `SELECT e.account_id, e.amount, e.created_at
				FROM charge_ids AS i JOIN charges AS e ON e.seq = i.seq WHERE i.txn_id = ?1
			UNION ALL
			SELECT account_id, amount, created_at FROM charges
				WHERE seq > (SELECT CAST(value AS INTEGER) FROM ledger_meta WHERE key = 'charge_ids_through')
				AND txn_id = ?1
			LIMIT 1`
	}
	var rec record
	var at string
	err := s.db.QueryRowContext(ctx, q, txnID).Scan(&rec.account, &rec.amount, &at)
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

// snapshotCacheKiB is the page cache of a snapshot's connection while it
// runs. Verify reads every table and looks each charge up in charge_ids; with
// SQLite's default of 2 MiB it would read most pages from the file again and
// again (about 5 times as long for 250,000 charges).
const snapshotCacheKiB = 65536

func (s *sqliteStore) snapshot(ctx context.Context, fn func(q querier) error) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var cache int64
	if err := c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, "PRAGMA cache_size = -"+strconv.Itoa(snapshotCacheKiB)); err != nil {
		return err
	}
	// The connection goes back to the pool with its own cache size, and
	// the memory of the larger one freed.
	defer func() {
		_, _ = c.ExecContext(context.Background(), "PRAGMA cache_size = "+strconv.FormatInt(cache, 10))
	}()
	// A deferred transaction reads one consistent WAL snapshot and never
	// blocks the writer.
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return fn(sqlQuerier{tx})
}

func (s *sqliteStore) integrityQuery() string { return "PRAGMA quick_check" }

// indexChecks: every entry of charge_ids names a charge with its txnID,
// every charge up to charge_ids_through is in charge_ids, and every account
// has one row in balances and every row there an account (the view
// account_balances, which Verify reads, shows only the accounts that do).
func (s *sqliteStore) indexChecks() []string {
	return []string{
		`SELECT a.id, 'account has no row in balances' FROM accounts AS a
			WHERE NOT EXISTS (SELECT 1 FROM balances AS b WHERE b.account = a.num) ORDER BY a.id`,
		`SELECT 'balances row ' || b.account, 'names no account' FROM balances AS b
			WHERE NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.num = b.account) ORDER BY b.account`,
		`SELECT i.txn_id, 'charge_ids points at charge ' || i.seq || ', which ' ||
			CASE WHEN c.seq IS NULL THEN 'does not exist' ELSE 'is ' || c.txn_id END
			FROM charge_ids AS i LEFT JOIN charges AS c ON c.seq = i.seq
			WHERE c.txn_id IS NOT i.txn_id ORDER BY i.txn_id`,
		`SELECT c.txn_id, 'charge ' || c.seq || ' is missing from charge_ids'
			FROM charges AS c
			WHERE c.seq <= (SELECT CAST(value AS INTEGER) FROM ledger_meta WHERE key = 'charge_ids_through')
			AND NOT EXISTS (SELECT 1 FROM charge_ids AS i WHERE i.txn_id = c.txn_id AND i.seq = c.seq)
			ORDER BY c.seq`,
	}
}

func (s *sqliteStore) close() error {
	var errs []error
	s.ids.filter.close()
	if s.w != nil && s.ws.dataVersion != nil {
		if err := s.ids.flush(context.Background(), s.w, s.ws.dataVersion); err != nil {
			errs = append(errs, fmt.Errorf("ledger: sqlite: merge pending txnIDs: %w", err))
		}
		if err := s.foldOnClose(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("ledger: sqlite: fold balances: %w", err))
		}
	}
	if s.ck != nil {
		errs = append(errs, s.ck.close())
	}
	if s.wal != nil {
		errs = append(errs, s.wal.Close())
	}
	for _, st := range []*sql.Stmt{s.ws.account, s.ws.setBalance, s.ws.setMarks, s.ws.dataVersion,
		s.ws.find[0], s.ws.find[1], s.ws.insert[0], s.ws.insert[1]} {
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
	s       *sqliteStore
	done    bool
	written map[string]*acctState // balances to remember once committed
	added   []addedCharge         // charges for s.ids.pending once committed
	charges int                   // charges written
	// The slices whose balances it wrote, [foldFrom, foldTo), and whether
	// it folded them all first (see sqlite_fold.go).
	foldFrom, foldTo int64
	foldedAll        bool
}

// jsonStrings encodes ids as a JSON array of strings.
func (t *sqliteTx) jsonStrings(ids []string) string {
	b := append(t.s.buf[:0], '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
	}
	b = append(b, ']')
	t.s.buf = b
	return string(b)
}

func (t *sqliteTx) loadAccounts(ctx context.Context, ids []string) (map[string]*acctState, error) {
	// Copies: the batch changes them, the cache learns the outcome only
	// once committed. The map and the copies are the writer's scratch:
	// the batch is done with them before the next one begins.
	sc := &t.s.sc
	if sc.accts == nil {
		sc.accts = make(map[string]*acctState, len(ids))
	}
	clear(sc.accts)
	out := sc.accts
	sc.states = slices.Grow(sc.states[:0], len(ids))[:len(ids)]
	states := sc.states
	var missing []string
	for i, id := range ids {
		if a, ok := t.s.accts.m[id]; ok {
			states[i] = a
			out[id] = &states[i]
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	rs, err := t.s.ws.account.QueryContext(ctx, t.jsonStrings(missing))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	fetched := make([]acctState, 0, len(missing))
	for rs.Next() {
		var i, num, bal, lim int64
		if err := rs.Scan(&i, &num, &bal, &lim); err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(missing)) {
			return nil, fmt.Errorf("ledger: sqlite: account %d of %d", i, len(missing))
		}
		a := acctState{balance: money.Amount(bal), limit: money.Amount(lim), num: num}
		// Read in the write-locked transaction: committed, and stays so
		// whatever becomes of this batch.
		t.s.accts.m[missing[i]] = a
		fetched = append(fetched, a)
		out[missing[i]] = &fetched[len(fetched)-1]
	}
	return out, rs.Err()
}

func (t *sqliteTx) find(ctx context.Context, k opKind, txnIDs []string) (map[string]record, error) {
	out := map[string]record{}
	if k == opCharge {
		// The writer's own map: no lock needed to read it.
		rest := txnIDs[:0:0]
		for _, id := range txnIDs {
			if p, ok := t.s.ids.pending[id]; ok {
				out[id] = p.rec
			} else if !t.s.ids.filter.excludes(id) {
				rest = append(rest, id)
			}
		}
		if txnIDs = rest; len(txnIDs) == 0 {
			return out, nil
		}
	}
	rs, err := t.s.ws.find[k].QueryContext(ctx, t.jsonStrings(txnIDs))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
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
	b := append(t.s.buf[:0], '{')
	for i, r := range reqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, r.txnID)
		b = append(b, ':', '{')
		b = appendJSONString(b, r.account)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(r.amount), 10)
		b = append(b, '}')
	}
	b = append(b, '}')
	t.s.buf = b
	res, err := t.s.ws.insert[k].ExecContext(ctx, at.Format(timeLayout), string(b))
	if isUniqueViolation(err) {
		// charges and topups have no other UNIQUE column: the rowid is
		// assigned.
		return nil, fmt.Errorf("%w: %w", errTxnTaken, err)
	}
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(reqs)) {
		return nil, fmt.Errorf("ledger: sqlite: %d of %d %ss written (%v)", n, len(reqs), k, err)
	}
	if k == opCharge {
		// The single statement gave its rows consecutive seqs, in
		// document order, ending at the last insert rowid: the writer
		// holds the write lock, and seq is the rowid.
		last, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("ledger: sqlite: charges written: %w", err)
		}
		first := last - int64(len(reqs)) + 1
		for i, r := range reqs {
			t.added = append(t.added, addedCharge{txnID: r.txnID,
				pendingCharge: pendingCharge{rec: r.orig, seq: first + int64(i)}})
		}
		t.charges += len(reqs)
	}
	return nil, nil
}

// setBalances writes the balances of the slices whose turn it is (see
// sqlite_fold.go): those the batch changed, and those earlier batches left
// lagging, with the slices' new marks. The others the batch changed are
// left to their slices' turns.
func (t *sqliteTx) setBalances(ctx context.Context, accts map[string]*acctState) error {
	t.written = accts
	f := &t.s.folds
	from, to := f.turn()
	t.foldFrom, t.foldTo = from, to
	// A slice without marks (none can be, short of a bug) has every
	// balance up to date, and keeps it so.
	due := func(num int64) bool { s := sliceOf(num); return s >= from && s < to || s >= f.slices }
	b := append(t.s.buf[:0], '{')
	add := func(num int64, balance money.Amount) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, num, 10)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, int64(balance), 10)
	}
	for _, a := range accts {
		if a.dirty && due(a.num) {
			add(a.num, a.balance)
		}
	}
	for s := from; s < to; s++ {
		for id := range f.unfolded[s] {
			if a, ok := accts[id]; ok && a.dirty {
				continue // written above
			}
			a := t.s.accts.m[id]
			add(a.num, a.balance)
		}
	}
	b = append(b, '}')
	t.s.buf = b
	if len(b) > 2 {
		if _, err := t.s.ws.setBalance.ExecContext(ctx, string(b)); err != nil {
			return err
		}
	}
	if to > from {
		if _, err := t.s.ws.setMarks.ExecContext(ctx, from, to); err != nil {
			return err
		}
	}
	return nil
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
	merged, err := t.s.ids.merge(ctx, t.s.w, t.charges)
	if err != nil {
		return err
	}
	if _, err := t.s.w.ExecContext(ctx, "COMMIT"); err != nil {
		// Whatever the database now holds, read it again.
		t.s.accts.m = nil
		t.s.ids.loaded = false
		return err
	}
	t.done = true
	t.s.ids.committed(t.added, merged)
	t.s.sc.added = t.added
	f := &t.s.folds
	if t.foldedAll {
		f.all = false
	}
	for id, a := range t.written {
		if a.dirty {
			t.s.accts.m[id] = acctState{balance: a.balance, limit: a.limit, num: a.num}
			if s := sliceOf(a.num); (s < t.foldFrom || s >= t.foldTo) && s < f.slices {
				f.lag(id, a.num)
			}
		}
	}
	f.folded(t.foldFrom, t.foldTo)
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
