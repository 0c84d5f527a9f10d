package ledger

import (
	"context"
	"time"

	"observer/internal/telecom/money"
)

// store is what a database backend provides. The ledger logic (validation,
// idempotency, funds checks, group commit) lives above it and is shared, so
// both backends enforce exactly the same rules.
type store interface {
	// backend names the implementation: "sqlite" or "postgres".
	backend() string
	// migrate applies pending migrations and, on first start, seeds the
	// accounts, all in one transaction that concurrent nodes serialise on.
	migrate(ctx context.Context, migs []migration, s seed) error
	// begin starts the writer's transaction for one batch. Only the single
	// writer goroutine calls it, so there is at most one open at a time.
	begin(ctx context.Context) (batchTx, error)
	// durable makes every batch committed so far durable, if commit alone
	// does not; it may run while the writer commits the next batch.
	durable() error
	// idle is called by the writer after each batch, once its transaction
	// has ended, for upkeep that must not overlap a batch.
	idle()
	// upkeep does one step of deferred work, in a transaction of its own,
	// while the writer would otherwise wait for the previous batch's
	// fsync; it reports false if there is none to do.
	upkeep() bool
	// insertFindsTaken reports whether batchTx.insert fails with
	// errTxnTaken, writing nothing, if one of its txnIDs is recorded
	// already; the writer then need not look a batch's txnIDs up first.
	insertFindsTaken() bool
	// retryable reports whether a failed batch may simply be run again
	// (deadlock or serialisation failure between nodes).
	retryable(err error) bool
	// createAccount inserts an account; it returns false if the id exists.
	createAccount(ctx context.Context, a Account) (bool, error)
	// account reads one account; ok is false if it does not exist.
	account(ctx context.Context, id string) (a Account, ok bool, err error)
	// findOne reads one committed entry of kind k.
	findOne(ctx context.Context, k opKind, txnID string) (r record, ok bool, err error)
	// recent returns up to n charges, newest first.
	recent(ctx context.Context, n int) ([]Receipt, error)
	// snapshot runs fn on a read-only, consistent view of the database.
	snapshot(ctx context.Context, fn func(q querier) error) error
	// integrityQuery is the backend's own consistency check for Verify (one
	// row "ok" when healthy), or "" if it has none worth running.
	integrityQuery() string
	// indexChecks are queries for Verify that list, as rows of (txnID,
	// detail), the entries of the backend's own txnID index that disagree
	// with the journal (SQLite: charge_ids).
	indexChecks() []string
	// close releases all connections.
	close() error
}

// batchTx is one writer transaction. Every method takes a whole batch so that
// a backend with network round trips can do each step in one statement.
type batchTx interface {
	// loadAccounts returns the balance and credit limit of the ids that
	// exist, locking them against other writers until commit.
	loadAccounts(ctx context.Context, ids []string) (map[string]*acctState, error)
	// find returns the committed entries of kind k among txnIDs.
	find(ctx context.Context, k opKind, txnIDs []string) (map[string]record, error)
	// insert writes new entries of kind k stamped at, skipping any whose
	// txnID is already taken (by a concurrent node); it returns those
	// skipped. If the store's insertFindsTaken, it fails with errTxnTaken
	// instead.
	insert(ctx context.Context, k opKind, rows []*request, at time.Time) (skipped []string, err error)
	// setBalances stores the final balance of every dirty account in accts
	// (as loadAccounts returned them).
	setBalances(ctx context.Context, accts map[string]*acctState) error
	// commit ends the batch's transaction. The batch is durable once a
	// later store.durable has returned (SQLite: it fsyncs the WAL), or at
	// once (PostgreSQL: synchronous commit).
	commit(ctx context.Context) error
	// rollback abandons the batch; it is a no-op after commit.
	rollback()
}

// acctState is an account's state inside one batch: balance is updated in
// memory as charges are accepted and written once at the end.
type acctState struct {
	balance money.Amount
	limit   money.Amount
	dirty   bool
	num     int64 // SQLite: the account's key in balances
}

// querier runs portable, parameterless SQL for Verify.
type querier interface {
	query(ctx context.Context, sql string) (rows, error)
}

// rows is the subset of *sql.Rows and pgx.Rows that Verify needs.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// seed describes the accounts created on first start.
type seed struct {
	accounts int
	opening  money.Amount
	limit    money.Amount
	at       time.Time
}

// timeLayout is how SQLite stores timestamps: UTC with milliseconds, fixed
// width so that text order is time order.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"
