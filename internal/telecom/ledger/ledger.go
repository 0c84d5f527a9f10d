// Package ledger is the durable billing ledger: it charges completed calls
// against prepaid accounts exactly once and never loses an acknowledged
// charge, whatever crashes.
//
// Guarantees:
//
//   - A charge is acknowledged only after the transaction holding it has
//     been committed durably (SQLite: its WAL fsync'd, as synchronous=FULL
//     would, see sqliteWriterPragmas; PostgreSQL with synchronous_commit=on).
//   - The charge row and the account balance change in the same
//     transaction, so after a crash at any moment they still agree.
//   - Every charge carries a caller-chosen transaction id (txnID). The
//     charges table has a UNIQUE constraint on it, so the database, not only
//     this process, guarantees a txnID is charged at most once, even with
//     several nodes sharing one PostgreSQL database. Repeating a charge with
//     the same txnID, account and amount returns the original receipt and
//     charges nothing; repeating it with different values is an
//     ErrIdempotencyConflict.
//
// Throughput comes from group commit: a single writer goroutine takes every
// queued request, applies them all in one transaction and pays for one fsync
// per batch, which a second goroutine waits for while the writer goes on
// with the next batch. Retries of txnIDs already seen by this process are
// answered from an in-memory index without touching the database at all.
// ChargeAsync lets a single process keep any number of charges in flight.
//
// Storage: Open takes either a PostgreSQL URL, shared by every node, or a
// data directory holding the SQLite file ledger.db. Both hold the same
// tables (accounts, charges, topups, schema_migrations, ledger_meta; SQLite
// also charge_ids, see sqlite_ids.go), with amounts in integer minor units,
// so the SQLite file can be inspected with the stock shell, e.g.
//
//	sqlite3 data/ledger.db 'SELECT * FROM charges ORDER BY seq DESC LIMIT 10'
package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"observer/internal/telecom/money"
)

// Seeding: on first start the ledger creates SeedAccounts accounts named
// SeedAccountID(1) … SeedAccountID(SeedAccounts), each with the same opening
// balance and credit limit, so every node and every test starts from the same
// deterministic state.
const (
	// SeedAccounts is the number of accounts created on first start.
	SeedAccounts = 10000
	// SeedOpeningBalance is each seeded account's opening balance (1000.00).
	SeedOpeningBalance money.Amount = 100000
	// SeedCreditLimit is each seeded account's credit limit (500.00): a
	// seeded account can be charged up to 1500.00 in total.
	SeedCreditLimit money.Amount = 50000
)

// Limits on identifiers, so that every id fits any index and log line.
const (
	// MaxTxnIDLen is the longest accepted transaction id, in bytes.
	MaxTxnIDLen = 128
	// MaxAccountIDLen is the longest accepted account id, in bytes.
	MaxAccountIDLen = 64
)

// Defaults for the Options.
const (
	// DefaultMaxBatch bounds how many requests one transaction applies, which
	// bounds both the transaction size and the latency of its callers.
	DefaultMaxBatch = 4096
	// DefaultIndexCapacity is how many recent charges are kept in memory to
	// answer retries without reading the database.
	DefaultIndexCapacity = 1 << 20
)

// SeedAccountID returns the id of the i-th seeded account, e.g. "ACC-001".
func SeedAccountID(i int) string { return fmt.Sprintf("ACC-%03d", i) }

// Receipt acknowledges a durable charge or top-up.
type Receipt struct {
	TxnID    string
	Account  string
	Amount   money.Amount
	At       time.Time // commit time of the original request (UTC, ms precision)
	Replayed bool      // true when an earlier identical request was answered again
}

// Account is one account's stored state.
type Account struct {
	ID             string
	OpeningBalance money.Amount
	Balance        money.Amount
	CreditLimit    money.Amount
	CreatedAt      time.Time
}

// Stats are counters of this process's ledger since Open, for a status UI.
type Stats struct {
	Backend          string
	ChargesCommitted int64 // charges written by this process
	TopUpsCommitted  int64 // top-ups written by this process
	IdempotentHits   int64 // retries answered with the original receipt
	IndexHits        int64 // of which answered from memory
	Conflicts        int64 // requests rejected with ErrIdempotencyConflict
	Rejected         int64 // other rejections (funds, unknown account, ...)
	Submitted        int64 // requests handed to the writer
	Batches          int64 // transactions committed by the writer
	BatchedRequests  int64 // requests those transactions handled
	MaxBatch         int64 // largest batch so far
	QueueDepth       int   // requests waiting for the writer right now
	IndexSize        int   // txnIDs cached in memory
}

// MeanBatchSize returns BatchedRequests / Batches, or 0 before the first batch.
func (s Stats) MeanBatchSize() float64 {
	if s.Batches == 0 {
		return 0
	}
	return float64(s.BatchedRequests) / float64(s.Batches)
}

// Option configures Open.
type Option func(*config)

type config struct {
	maxBatch      int
	indexCapacity int
}

// WithMaxBatch sets how many requests one transaction applies at most; 1
// gives one transaction (and one fsync) per request.
func WithMaxBatch(n int) Option {
	return func(c *config) { c.maxBatch = max(n, 1) }
}

// WithIndexCapacity sets how many charges the in-memory retry index holds.
func WithIndexCapacity(n int) Option {
	return func(c *config) { c.indexCapacity = max(n, 1) }
}

// Ledger is a durable, idempotent billing ledger. It is safe for concurrent use.
type Ledger struct {
	st       store
	index    *txnIndex
	maxBatch int
	queueCap int // requests that may wait for the writer before submitters wait

	closed atomic.Bool // Close was called; read without qmu as a fast path

	// The writer's queue: submitters append under qmu, the writer takes
	// everything queued (up to maxBatch) at once. qclosed is closed under
	// qmu, so no request is queued after the writer's last look or left
	// unanswered in the queue.
	qmu     sync.Mutex
	queue   []*request    // waiting for the writer, in submission order
	qclosed bool          // Close was called: the queue takes nothing more
	space   chan struct{} // closed when the writer takes requests; nil unless a submitter waits for room
	wake    chan struct{} // a token tells the writer the queue is no longer empty
	stopped chan struct{} // closed when the writer has drained the queue
	gate    sync.Mutex    // held by the writer around each batch (tests pause it)
	scratch batchScratch  // the writer's, for apply
	syncErr error         // syncAndAnswer's: the first failure to make a batch durable

	closeOnce sync.Once
	closeErr  error

	stats struct {
		charges, topups, idem, indexHits, conflicts, rejected atomic.Int64
		submitted                                             atomic.Int64
		batches, batched, maxBatch                            atomic.Int64
	}
}

// Open opens (creating and migrating if needed) the ledger at dsn: a
// postgres:// or postgresql:// URL selects PostgreSQL, anything else is a
// directory holding the SQLite database file ledger.db. On first start the
// seeded accounts are created; later opens never re-seed.
func Open(ctx context.Context, dsn string, opts ...Option) (*Ledger, error) {
	cfg := config{maxBatch: DefaultMaxBatch, indexCapacity: DefaultIndexCapacity}
	for _, o := range opts {
		o(&cfg)
	}
	var (
		st  store
		err error
	)
	if IsPostgresURL(dsn) {
		st, err = openPostgres(ctx, dsn)
	} else {
		st, err = openSQLite(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	migs, err := loadMigrations(st.backend())
	if err == nil {
		err = st.migrate(ctx, migs, seed{
			accounts: SeedAccounts,
			opening:  SeedOpeningBalance,
			limit:    SeedCreditLimit,
			at:       now(),
		})
	}
	if err != nil {
		_ = st.close()
		return nil, err
	}
	l := &Ledger{
		st:       st,
		index:    newTxnIndex(cfg.indexCapacity),
		maxBatch: cfg.maxBatch,
		// A few batches of room let callers enqueue while a batch commits.
		queueCap: 4 * cfg.maxBatch,
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
	}
	go l.run()
	return l, nil
}

// IsPostgresURL reports whether dsn is a PostgreSQL URL (postgres:// or
// postgresql://), which Open takes for the PostgreSQL backend.
func IsPostgresURL(dsn string) bool {
	d := strings.ToLower(dsn)
	return strings.HasPrefix(d, "postgres://") || strings.HasPrefix(d, "postgresql://")
}

// now is the timestamp given to committed rows. Truncating to milliseconds
// makes a receipt identical whether replayed from memory or from either
// database (SQLite keeps ms, PostgreSQL µs).
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// Backend returns "sqlite" or "postgres".
func (l *Ledger) Backend() string { return l.st.backend() }

// Charge debits amt from account under the idempotency key txnID and returns
// once the charge is durable. A retry with the same txnID, account and
// amount returns the original receipt (Replayed set) and charges nothing,
// also across restarts and nodes. Errors match ErrEmptyTxnID,
// ErrTxnIDTooLong, ErrInvalidTxnID, ErrInvalidAmount, ErrUnknownAccount,
// ErrInsufficientFunds, ErrIdempotencyConflict, ErrClosed or
// ErrOutcomeUnknown (then retry with the same txnID to learn the outcome).
func (l *Ledger) Charge(ctx context.Context, txnID, account string, amt money.Amount) (Receipt, error) {
	if err := l.checkCharge(txnID, account, amt); err != nil {
		return Receipt{}, err
	}
	if rec, err, ok := l.fromIndex(txnID, account, amt); ok {
		return rec, err
	}
	return l.submit(ctx, &request{kind: opCharge, txnID: txnID, account: account, amount: amt})
}

// A Completion receives the outcome of a request submitted with
// ChargeAsync.
type Completion interface {
	// Complete is called exactly once with what Charge would have
	// returned. It runs on the ledger's own goroutine, or on the caller's
	// for a request answered without queueing, so it must not block; it
	// is called after the request is counted in Stats.
	Complete(Receipt, error)
}

// ChargeAsync is Charge without waiting: c is told the outcome once the
// charge is durable (or rejected). It returns at once except when the
// writer's queue is full, which it waits for like Charge. A request
// submitted this way cannot be cancelled: it is committed even if its
// submitter has stopped caring, and a retry with the same txnID finds it.
//
// It lets a single process, such as the billing server, keep thousands of
// charges in flight without a goroutine or a channel for each.
func (l *Ledger) ChargeAsync(txnID, account string, amt money.Amount, c Completion) {
	if err := l.checkCharge(txnID, account, amt); err != nil {
		c.Complete(Receipt{}, err)
		return
	}
	if rec, err, ok := l.fromIndex(txnID, account, amt); ok {
		c.Complete(rec, err)
		return
	}
	r := &request{kind: opCharge, txnID: txnID, account: account, amount: amt, cpl: c}
	if err := l.enqueue(nil, r); err != nil {
		c.Complete(Receipt{}, err)
	}
}

// checkCharge rejects a charge that can be refused without the database.
func (l *Ledger) checkCharge(txnID, account string, amt money.Amount) error {
	if err := validateTxnID(txnID); err != nil {
		return err
	}
	if amt <= 0 {
		return fmt.Errorf("%w: %s is not positive", ErrInvalidAmount, amt)
	}
	if !validID(account, MaxAccountIDLen) {
		// No such account can exist; answering here also keeps unstorable
		// text (e.g. invalid UTF-8) away from the batch transaction.
		return unknownAccount(account)
	}
	if l.closed.Load() {
		return ErrClosed
	}
	return nil
}

// fromIndex answers a charge whose txnID is in the index: ok is false if it
// is not.
func (l *Ledger) fromIndex(txnID, account string, amt money.Amount) (Receipt, error, bool) {
	rec, ok := l.index.get(txnID, account)
	if !ok {
		return Receipt{}, nil, false
	}
	r := request{kind: opCharge, txnID: txnID, account: account, amount: amt}
	r.resolve(rec)
	if r.err != nil {
		l.stats.conflicts.Add(1)
	} else {
		l.stats.idem.Add(1)
		l.stats.indexHits.Add(1)
	}
	return r.receipt, r.err, true
}

// TopUp credits amt to account under the idempotency key txnID, with the same
// idempotency rules as Charge. Top-up txnIDs are a separate namespace from
// charge txnIDs.
func (l *Ledger) TopUp(ctx context.Context, txnID, account string, amt money.Amount) (Receipt, error) {
	if err := validateTxnID(txnID); err != nil {
		return Receipt{}, err
	}
	if amt <= 0 {
		return Receipt{}, fmt.Errorf("%w: %s is not positive", ErrInvalidAmount, amt)
	}
	if !validID(account, MaxAccountIDLen) {
		return Receipt{}, unknownAccount(account)
	}
	return l.submit(ctx, &request{kind: opTopUp, txnID: txnID, account: account, amount: amt})
}

// CreateAccount creates an account with the given opening balance and credit
// limit (limit >= 0, opening >= -limit). It fails with ErrAccountExists if the
// id is taken.
func (l *Ledger) CreateAccount(ctx context.Context, id string, opening, creditLimit money.Amount) (Account, error) {
	if !validID(id, MaxAccountIDLen) {
		return Account{}, fmt.Errorf("%w: %q", ErrInvalidAccountID, id)
	}
	if creditLimit < 0 {
		return Account{}, fmt.Errorf("%w: credit limit %s is negative", ErrInvalidAmount, creditLimit)
	}
	if opening < -creditLimit {
		return Account{}, fmt.Errorf("%w: opening balance %s is below the credit limit %s", ErrInvalidAmount, opening, creditLimit)
	}
	if l.closed.Load() {
		return Account{}, ErrClosed
	}
	a := Account{ID: id, OpeningBalance: opening, Balance: opening, CreditLimit: creditLimit, CreatedAt: now()}
	created, err := l.st.createAccount(ctx, a)
	if err != nil {
		return Account{}, err
	}
	if !created {
		return Account{}, fmt.Errorf("%w: %q", ErrAccountExists, id)
	}
	return a, nil
}

// Account returns the committed state of one account.
func (l *Ledger) Account(ctx context.Context, id string) (Account, error) {
	if !validID(id, MaxAccountIDLen) {
		return Account{}, unknownAccount(id)
	}
	if l.closed.Load() {
		return Account{}, ErrClosed
	}
	a, ok, err := l.st.account(ctx, id)
	if err != nil {
		return Account{}, err
	}
	if !ok {
		return Account{}, unknownAccount(id)
	}
	return a, nil
}

// Balance returns the committed balance of one account.
func (l *Ledger) Balance(ctx context.Context, id string) (money.Amount, error) {
	a, err := l.Account(ctx, id)
	return a.Balance, err
}

// FindCharge looks a charge up in the database (not the in-memory index), so
// it tells whether txnID is durably charged, by any node.
func (l *Ledger) FindCharge(ctx context.Context, txnID string) (Receipt, bool, error) {
	if err := validateTxnID(txnID); err != nil {
		return Receipt{}, false, err
	}
	if l.closed.Load() {
		return Receipt{}, false, ErrClosed
	}
	rec, ok, err := l.st.findOne(ctx, opCharge, txnID)
	if err != nil || !ok {
		return Receipt{}, false, err
	}
	return rec.receipt(txnID, false), true, nil
}

// Recent returns up to n of the latest committed charges (of all nodes),
// newest first; n is capped at 1000.
func (l *Ledger) Recent(ctx context.Context, n int) ([]Receipt, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	if n <= 0 {
		return nil, nil
	}
	return l.st.recent(ctx, min(n, 1000))
}

// Stats returns this process's counters.
func (l *Ledger) Stats() Stats {
	return Stats{
		Backend:          l.st.backend(),
		ChargesCommitted: l.stats.charges.Load(),
		TopUpsCommitted:  l.stats.topups.Load(),
		IdempotentHits:   l.stats.idem.Load(),
		IndexHits:        l.stats.indexHits.Load(),
		Conflicts:        l.stats.conflicts.Load(),
		Rejected:         l.stats.rejected.Load(),
		Submitted:        l.stats.submitted.Load(),
		Batches:          l.stats.batches.Load(),
		BatchedRequests:  l.stats.batched.Load(),
		MaxBatch:         l.stats.maxBatch.Load(),
		QueueDepth:       l.queueDepth(),
		IndexSize:        l.index.len(),
	}
}

// queueDepth returns how many requests wait for the writer.
func (l *Ledger) queueDepth() int {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return len(l.queue)
}

// Close stops accepting requests, lets the writer commit and answer every
// request already queued, then closes the database. It is safe to call more
// than once; later calls return the first call's result.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		l.qmu.Lock()
		l.qclosed = true
		if l.space != nil {
			close(l.space) // submitters waiting for room learn of the close
			l.space = nil
		}
		l.qmu.Unlock()
		l.nudge()
		<-l.stopped
		l.closeErr = l.st.close()
	})
	return l.closeErr
}

// submit hands r to the writer and waits for its answer.
func (l *Ledger) submit(ctx context.Context, r *request) (Receipt, error) {
	if err := ctx.Err(); err != nil {
		return Receipt{}, err
	}
	r.ctx = ctx
	r.done = make(chan struct{})
	if err := l.enqueue(ctx, r); err != nil {
		return Receipt{}, err // never enqueued: nothing happened
	}
	select {
	case <-r.done:
		return r.receipt, r.err
	case <-ctx.Done():
		// The request is queued or being committed; it may still succeed.
		return Receipt{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	}
}

// enqueue appends r to the writer's queue, waiting while the queue is full
// until there is room, the ledger closes (ErrClosed) or ctx ends (its
// error); a nil ctx waits for room or the close only.
func (l *Ledger) enqueue(ctx context.Context, r *request) error {
	l.qmu.Lock()
	for len(l.queue) >= l.queueCap && !l.qclosed {
		if l.space == nil {
			l.space = make(chan struct{})
		}
		space := l.space
		l.qmu.Unlock()
		if ctx == nil {
			<-space
		} else {
			select {
			case <-space:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		l.qmu.Lock()
	}
	if l.qclosed {
		l.qmu.Unlock()
		return ErrClosed
	}
	wasEmpty := len(l.queue) == 0
	l.queue = append(l.queue, r)
	l.stats.submitted.Add(1)
	l.qmu.Unlock()
	if wasEmpty {
		l.nudge()
	}
	return nil
}

// nudge tells the writer to look at the queue.
func (l *Ledger) nudge() {
	select {
	case l.wake <- struct{}{}:
	default: // a token is already waiting
	}
}

// validateTxnID checks a transaction id before it reaches the database.
func validateTxnID(id string) error {
	switch {
	case id == "":
		return ErrEmptyTxnID
	case len(id) > MaxTxnIDLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTxnIDTooLong, len(id), MaxTxnIDLen)
	case !validID(id, MaxTxnIDLen):
		return fmt.Errorf("%w: %q", ErrInvalidTxnID, id)
	}
	return nil
}

// validID reports whether id is non-empty, at most maxLen bytes, valid UTF-8
// and free of control characters. PostgreSQL rejects NUL and invalid UTF-8
// in text, and one bad value must never fail a whole batch.
func validID(id string, maxLen int) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for i := 0; i < len(id); {
		if c := id[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(id[i:])
		if (r == utf8.RuneError && size == 1) || unicode.IsControl(r) {
			return false
		}
		i += size
	}
	return true
}
