package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"observer/internal/telecom/money"
)

// envPostgres names the variable holding the PostgreSQL URL the tests use.
// With it unset the PostgreSQL cases are skipped, except under CI=true where
// they fail, so that CI cannot pass without exercising PostgreSQL.
const envPostgres = "OBSERVER_TEST_POSTGRES"

// backend is one database the whole suite runs against.
type backend struct {
	name string
	// newDSN returns the DSN of a fresh, empty ledger owned by tb.
	newDSN func(tb testing.TB) string
}

var backends = []backend{
	{name: "sqlite", newDSN: func(tb testing.TB) string { return tb.TempDir() }},
	{name: "postgres", newDSN: newPostgresDSN},
}

// forEachBackend runs fn as a subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// forEachBackendB is forEachBackend for benchmarks.
func forEachBackendB(b *testing.B, fn func(b *testing.B, be backend)) {
	b.Helper()
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) { fn(b, be) })
	}
}

// postgresURL returns the server to test against, skipping or failing tb
// when there is none.
func postgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(envPostgres)
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is not set but CI=true: PostgreSQL tests must run in CI (source .ci/postgres.sh)", envPostgres)
		}
		tb.Skipf("%s not set; PostgreSQL cases skipped", envPostgres)
	}
	return u
}

// newPostgresDSN creates a uniquely named schema and returns a DSN whose
// search_path points at it, so every test has its own empty ledger.
func newPostgresDSN(tb testing.TB) string {
	tb.Helper()
	base := postgresURL(tb)
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	schema := "ledger_test_" + hex.EncodeToString(buf[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect %s: %v", envPostgres, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse %s: %v", envPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// openLedger opens dsn and closes the ledger when tb ends.
func openLedger(tb testing.TB, dsn string, opts ...Option) *Ledger {
	tb.Helper()
	l, err := Open(context.Background(), dsn, opts...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return l
}

// mustVerify runs Verify and fails unless the ledger is consistent.
func mustVerify(tb testing.TB, l *Ledger) Report {
	tb.Helper()
	rep, err := l.Verify(context.Background())
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	if !rep.OK() {
		tb.Fatalf("Verify: %s", rep.Verdict)
	}
	return rep
}

// balance returns an account's balance or fails.
func balance(tb testing.TB, l *Ledger, id string) money.Amount {
	tb.Helper()
	b, err := l.Balance(context.Background(), id)
	if err != nil {
		tb.Fatalf("Balance(%s): %v", id, err)
	}
	return b
}

// amt parses a test amount or panics.
func amt(s string) money.Amount {
	a, err := money.ParseSigned(s)
	if err != nil {
		panic(err)
	}
	return a
}

// execRaw runs SQL directly on the ledger's database, bypassing the ledger,
// to simulate corruption or inspect the schema.
func execRaw(tb testing.TB, l *Ledger, sql string) {
	tb.Helper()
	ctx := context.Background()
	var err error
	switch s := l.st.(type) {
	case *sqliteStore:
		_, err = s.db.ExecContext(ctx, sql)
	case *pgStore:
		err = s.pool.with(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, sql)
			return err
		})
	}
	if err != nil {
		tb.Fatalf("exec %q: %v", sql, err)
	}
}

// queryInt runs a single-value integer query directly on the database.
func queryInt(tb testing.TB, l *Ledger, sql string) int64 {
	tb.Helper()
	ctx := context.Background()
	var n int64
	var err error
	switch s := l.st.(type) {
	case *sqliteStore:
		err = s.db.QueryRowContext(ctx, sql).Scan(&n)
	case *pgStore:
		err = s.pool.with(ctx, func(c *pgx.Conn) error { return c.QueryRow(ctx, sql).Scan(&n) })
	}
	if err != nil {
		tb.Fatalf("query %q: %v", sql, err)
	}
	return n
}

// pauseWriter stops the writer before its next batch; call the returned
// function to let it go. Requests submitted meanwhile queue up and are then
// committed together, in submission order, in one batch.
func pauseWriter(l *Ledger) (resume func()) {
	l.gate.Lock()
	return l.gate.Unlock
}

// outcome is the answer to one asynchronous call.
type outcome struct {
	r   Receipt
	err error
}

// submitInOrder starts each call in its own goroutine, waiting until it has
// reached the writer's queue before starting the next, so that the writer
// sees them in exactly this order. It returns one channel per call.
func submitInOrder(t *testing.T, l *Ledger, calls ...func() (Receipt, error)) []chan outcome {
	t.Helper()
	out := make([]chan outcome, len(calls))
	for i, call := range calls {
		before := l.Stats().Submitted
		ch := make(chan outcome, 1)
		out[i] = ch
		go func() {
			r, err := call()
			ch <- outcome{r, err}
		}()
		waitFor(t, func() bool {
			if l.Stats().Submitted > before {
				return true
			}
			select {
			case o := <-ch: // answered without queueing (validation, index)
				ch <- o
				return true
			default:
				return false
			}
		})
	}
	return out
}

// waitFor yields until cond holds. It polls a condition that another
// goroutine is about to make true, with no sleeping, and gives up after a
// generous deadline so that a bug fails the test instead of hanging it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 30s")
		}
		runtime.Gosched()
	}
}
