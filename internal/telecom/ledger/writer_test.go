package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"observer/internal/telecom/money"
)

// completion records what ChargeAsync reported.
type completion struct {
	ch chan outcome
}

func newCompletion() *completion { return &completion{ch: make(chan outcome, 2)} }

func (c *completion) Complete(r Receipt, err error) { c.ch <- outcome{r, err} }

// wait returns the one outcome and checks that there was only one.
func (c *completion) wait(t *testing.T) outcome {
	t.Helper()
	o := <-c.ch
	select {
	case again := <-c.ch:
		t.Fatalf("completed twice: %+v then %+v", o, again)
	default:
	}
	return o
}

func TestChargeAsync(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := openLedger(t, b.newDSN(t))
		before, err := l.Balance(ctx, "ACC-020")
		if err != nil {
			t.Fatal(err)
		}

		// Refused without queueing: answered before ChargeAsync returns.
		for _, tc := range []struct {
			txn, acct string
			a         money.Amount
			want      error
		}{
			{"", "ACC-020", 1, ErrEmptyTxnID},
			{"a-1", "ACC-020", 0, ErrInvalidAmount},
			{"a-1", "bad\x00id", 1, ErrUnknownAccount},
		} {
			c := newCompletion()
			l.ChargeAsync(tc.txn, tc.acct, tc.a, c)
			select {
			case o := <-c.ch:
				if !errors.Is(o.err, tc.want) {
					t.Errorf("%q/%q/%d: %v; want %v", tc.txn, tc.acct, tc.a, o.err, tc.want)
				}
			default:
				t.Errorf("%q/%q/%d: not answered at once", tc.txn, tc.acct, tc.a)
			}
		}

		// Queued while the writer is paused, then committed in one batch
		// with a synchronous charge, in submission order.
		resume := pauseWriter(l)
		c1, c2, c3 := newCompletion(), newCompletion(), newCompletion()
		l.ChargeAsync("a-1", "ACC-020", amt("1.00"), c1)
		l.ChargeAsync("a-1", "ACC-020", amt("1.00"), c2) // the same again: a replay of c1
		l.ChargeAsync("a-2", "ACC-NOPE", amt("1.00"), c3)
		syncCharge := submitInOrder(t, l, func() (Receipt, error) { return l.Charge(ctx, "a-3", "ACC-020", amt("2.00")) })
		batches := l.Stats().Batches
		resume()
		if o := c1.wait(t); o.err != nil || o.r.Replayed || o.r.Amount != amt("1.00") {
			t.Errorf("first: %+v, %v", o.r, o.err)
		}
		if o := c2.wait(t); o.err != nil || !o.r.Replayed {
			t.Errorf("in-batch repeat: %+v, %v; want a replay", o.r, o.err)
		}
		if o := c3.wait(t); !errors.Is(o.err, ErrUnknownAccount) {
			t.Errorf("unknown account: %v", o.err)
		}
		if o := <-syncCharge[0]; o.err != nil {
			t.Errorf("synchronous charge in the same batch: %v", o.err)
		}
		if got := l.Stats().Batches - batches; got != 1 {
			t.Errorf("%d batches; want the queued requests in one", got)
		}

		// Answered from the index: at once, and still exactly once.
		c4, c5 := newCompletion(), newCompletion()
		l.ChargeAsync("a-1", "ACC-020", amt("1.00"), c4)
		l.ChargeAsync("a-1", "ACC-020", amt("9.00"), c5)
		if o := c4.wait(t); o.err != nil || !o.r.Replayed {
			t.Errorf("retry: %+v, %v; want a replay", o.r, o.err)
		}
		if o := c5.wait(t); !errors.Is(o.err, ErrIdempotencyConflict) {
			t.Errorf("conflicting retry: %v", o.err)
		}
		after, err := l.Balance(ctx, "ACC-020")
		if err != nil || before-after != amt("3.00") {
			t.Errorf("balance moved by %v (%v); want 3.00", before-after, err)
		}

		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		c6 := newCompletion()
		l.ChargeAsync("a-9", "ACC-020", amt("1.00"), c6)
		if o := c6.wait(t); !errors.Is(o.err, ErrClosed) {
			t.Errorf("after Close: %v; want ErrClosed", o.err)
		}
	})
}

// TestCloseAnswersQueuedAsync checks that requests queued by ChargeAsync
// when Close is called are committed and answered.
func TestCloseAnswersQueuedAsync(t *testing.T) {
	dir := t.TempDir()
	l := openLedger(t, dir)
	resume := pauseWriter(l)
	cs := make([]*completion, 50)
	for i := range cs {
		cs[i] = newCompletion()
		l.ChargeAsync(fmt.Sprintf("q-%d", i), SeedAccountID(1+i), amt("0.10"), cs[i])
	}
	closed := make(chan error)
	go func() { closed <- l.Close() }()
	resume()
	for i, c := range cs {
		if o := c.wait(t); o.err != nil {
			t.Errorf("q-%d: %v", i, o.err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	l2 := openLedger(t, dir)
	if rep := mustVerify(t, l2); rep.Charges != int64(len(cs)) {
		t.Errorf("%d charges stored; want %d", rep.Charges, len(cs))
	}
}

// TestWriterSeesOtherConnections checks that the writer's account cache
// never outlives a change committed by another connection to the same file,
// as another node sharing it or the sqlite3 shell would make.
func TestWriterSeesOtherConnections(t *testing.T) {
	dir := t.TempDir()
	l := openLedger(t, dir)
	ctx := context.Background()
	if _, err := l.Charge(ctx, "c-1", "ACC-050", amt("0.01")); err != nil {
		t.Fatal(err) // ACC-050 is now in the writer's cache
	}
	other, err := sql.Open("sqlite", filepath.Join(dir, SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Leave 0.01 of headroom: balance -499.99 against a 500.00 limit.
	if _, err := other.ExecContext(ctx, "UPDATE balances SET balance = -49999 WHERE account = (SELECT num FROM accounts WHERE id = 'ACC-050')"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Charge(ctx, "c-2", "ACC-050", amt("0.02")); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("charge beyond what the other connection left: %v; want ErrInsufficientFunds", err)
	}
	if _, err := l.Charge(ctx, "c-3", "ACC-050", amt("0.01")); err != nil {
		t.Fatalf("charge within it: %v", err)
	}
	if bal, err := l.Balance(ctx, "ACC-050"); err != nil || bal != -amt("500.00") {
		t.Fatalf("balance %v, %v; want -500.00", bal, err)
	}
}

// TestSQLitePageSize checks that a new ledger file gets sqlitePageSize and
// that a file made with SQLite's default page size is used as it is.
func TestSQLitePageSize(t *testing.T) {
	pageSize := func(t *testing.T, l *Ledger) int {
		t.Helper()
		var n int
		if err := l.st.(*sqliteStore).db.QueryRowContext(context.Background(), "PRAGMA page_size").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := pageSize(t, openLedger(t, t.TempDir())); got != sqlitePageSize {
		t.Errorf("new ledger: page_size %d; want %d", got, sqlitePageSize)
	}

	dir := t.TempDir()
	old, err := sql.Open("sqlite", filepath.Join(dir, SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"PRAGMA page_size = 4096", "CREATE TABLE older (x INTEGER)"} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	l := openLedger(t, dir)
	if got := pageSize(t, l); got != 4096 {
		t.Errorf("existing file: page_size %d; want its own 4096", got)
	}
	for i := range 100 {
		if _, err := l.Charge(context.Background(), fmt.Sprintf("p-%d", i), SeedAccountID(1+i), amt("1.00")); err != nil {
			t.Fatal(err)
		}
	}
	if rep := mustVerify(t, l); rep.Charges != 100 {
		t.Errorf("%d charges; want 100", rep.Charges)
	}
}

// TestWALStartsOver checks that under a steady stream of batches the
// checkpointer and the writer make the WAL start over, so that it stays
// about as long as walRestartBytes however long the stream lasts, and that
// nothing is lost on the way.
func TestWALStartsOver(t *testing.T) {
	dir := t.TempDir()
	l := openLedger(t, dir)
	ck := l.st.(*sqliteStore).ck
	// From 16 pages on and every 10ms, rather than walRestartBytes and
	// ckptInterval: the test stays short.
	ck.restartFrames.Store(16)
	ck.interval.Store(int64(10 * time.Millisecond))
	ctx := context.Background()
	n := 0
	charge := func() {
		t.Helper()
		var wg sync.WaitGroup
		for range 20 {
			id, acct := fmt.Sprintf("w-%d", n), SeedAccountID(1+(n*7919)%SeedAccounts)
			n++
			wg.Go(func() {
				if _, err := l.Charge(ctx, id, acct, 1); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	waitFor(t, func() bool {
		charge()
		return ck.endings.Load() >= 3 && n >= 1000
	})
	// The WAL started over: it holds far fewer frames than the batches
	// wrote, about one per charge here.
	var busy, frames, copied int64
	if err := l.st.(*sqliteStore).db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		t.Fatal(err)
	}
	if frames > 250 {
		t.Errorf("WAL holds %d frames after %d charges and %d checkpoints; want it started over", frames, n, ck.passes.Load())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLedger(t, dir)
	if rep := mustVerify(t, l2); rep.Charges != int64(n) {
		t.Errorf("%d charges stored; want %d", rep.Charges, n)
	}
}
