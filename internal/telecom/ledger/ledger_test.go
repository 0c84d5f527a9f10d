package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"modernc.org/sqlite"

	"observer/internal/telecom/money"
)

func TestOpenSeedsOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.newDSN(t)
		l := openLedger(t, dsn)

		a, err := l.Account(ctx, "ACC-001")
		if err != nil {
			t.Fatal(err)
		}
		if a.OpeningBalance != SeedOpeningBalance || a.Balance != SeedOpeningBalance || a.CreditLimit != SeedCreditLimit {
			t.Errorf("ACC-001 = %+v; want opening=balance=%s, limit %s", a, SeedOpeningBalance, SeedCreditLimit)
		}
		for _, id := range []string{"ACC-099", "ACC-100", "ACC-999", "ACC-1000", "ACC-10000"} {
			if _, err := l.Account(ctx, id); err != nil {
				t.Errorf("Account(%s): %v", id, err)
			}
		}
		for _, id := range []string{"ACC-0", "ACC-1", "ACC-10001", "ACC-0001"} {
			if _, err := l.Account(ctx, id); !errors.Is(err, ErrUnknownAccount) {
				t.Errorf("Account(%s) error = %v; want ErrUnknownAccount", id, err)
			}
		}
		rep := mustVerify(t, l)
		if want := "ledger OK: 10000 accounts, 0 charges, 0 violations"; rep.Verdict != want {
			t.Errorf("verdict %q; want %q", rep.Verdict, want)
		}

		if _, err := l.Charge(ctx, "t1", "ACC-001", amt("12.34")); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}

		// Reopening applies no migration again and does not re-seed.
		l2 := openLedger(t, dsn)
		if got, want := balance(t, l2, "ACC-001"), amt("987.66"); got != want {
			t.Errorf("balance after reopen = %s; want %s", got, want)
		}
		migs, err := loadMigrations(l2.Backend())
		if err != nil {
			t.Fatal(err)
		}
		if n := queryInt(t, l2, "SELECT COUNT(*) FROM schema_migrations"); n != int64(len(migs)) {
			t.Errorf("schema_migrations has %d rows; want %d", n, len(migs))
		}
		rep = mustVerify(t, l2)
		if rep.Accounts != SeedAccounts || rep.Charges != 1 {
			t.Errorf("report %+v; want 10000 accounts, 1 charge", rep)
		}
	})
}

func TestConcurrentOpen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		const nodes = 4
		var wg sync.WaitGroup
		ledgers := make([]*Ledger, nodes)
		errs := make([]error, nodes)
		for i := range nodes {
			wg.Go(func() { ledgers[i], errs[i] = Open(context.Background(), dsn) })
		}
		wg.Wait()
		for i := range nodes {
			if errs[i] != nil {
				t.Fatalf("node %d: Open: %v", i, errs[i])
			}
			t.Cleanup(func() { _ = ledgers[i].Close() })
		}
		rep := mustVerify(t, ledgers[0])
		if rep.Accounts != SeedAccounts {
			t.Errorf("%d accounts after concurrent first start; want %d", rep.Accounts, SeedAccounts)
		}
		if n := queryInt(t, ledgers[0], "SELECT COUNT(*) FROM ledger_meta WHERE key = 'seeded_at'"); n != 1 {
			t.Errorf("ledger_meta has %d seeded_at rows; want 1", n)
		}
	})
}

func TestSchemaTooNew(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		l := openLedger(t, dsn)
		execRaw(t, l, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future.sql', '2030-01-01T00:00:00.000Z')")
		_ = l.Close()
		l2, err := Open(context.Background(), dsn)
		if !errors.Is(err, ErrSchemaTooNew) {
			if l2 != nil {
				_ = l2.Close()
			}
			t.Fatalf("Open on a newer schema: error = %v; want ErrSchemaTooNew", err)
		}
	})
}

func TestChargeValidation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l := openLedger(t, b.newDSN(t))
		ctx := context.Background()
		tests := []struct {
			name    string
			txn     string
			account string
			amount  money.Amount
			want    error
		}{
			{"empty txn", "", "ACC-001", 100, ErrEmptyTxnID},
			{"long txn", strings.Repeat("x", MaxTxnIDLen+1), "ACC-001", 100, ErrTxnIDTooLong},
			{"NUL in txn", "a\x00b", "ACC-001", 100, ErrInvalidTxnID},
			{"invalid UTF-8 txn", "a\xffb", "ACC-001", 100, ErrInvalidTxnID},
			{"zero amount", "v1", "ACC-001", 0, ErrInvalidAmount},
			{"negative amount", "v2", "ACC-001", -100, ErrInvalidAmount},
			{"unknown account", "v3", "ACC-10001", 100, ErrUnknownAccount},
			{"empty account", "v4", "", 100, ErrUnknownAccount},
			{"invalid UTF-8 account", "v5", "ACC-\xff", 100, ErrUnknownAccount},
			{"more than balance + limit", "v6", "ACC-001", amt("1500.01"), ErrInsufficientFunds},
		}
		for _, tt := range tests {
			_, err := l.Charge(ctx, tt.txn, tt.account, tt.amount)
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: error = %v; want %v", tt.name, err, tt.want)
			}
		}
		if _, err := l.Charge(ctx, strings.Repeat("x", MaxTxnIDLen), "ACC-001", 1); err != nil {
			t.Errorf("txnID of exactly %d bytes: %v", MaxTxnIDLen, err)
		}
		if _, err := l.Charge(ctx, "ünïcode-☎", "ACC-001", 1); err != nil {
			t.Errorf("unicode txnID: %v", err)
		}
		if got := balance(t, l, "ACC-001"); got != SeedOpeningBalance-2 {
			t.Errorf("balance = %s; want only the two valid charges applied", got)
		}
		mustVerify(t, l)
	})
}

func TestChargeFunds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l := openLedger(t, b.newDSN(t))
		ctx := context.Background()
		r, err := l.Charge(ctx, "f1", "ACC-002", amt("1000.00"))
		if err != nil {
			t.Fatal(err)
		}
		if r.TxnID != "f1" || r.Account != "ACC-002" || r.Amount != amt("1000.00") || r.Replayed || r.At.IsZero() {
			t.Errorf("receipt = %+v", r)
		}
		// The credit limit lets the balance go down to -500.00, exactly.
		if _, err := l.Charge(ctx, "f2", "ACC-002", amt("500.00")); err != nil {
			t.Fatal(err)
		}
		_, err = l.Charge(ctx, "f3", "ACC-002", amt("0.01"))
		var ife *InsufficientFundsError
		if !errors.As(err, &ife) || ife.Available != 0 || ife.Amount != 1 || ife.Account != "ACC-002" {
			t.Fatalf("error = %v; want InsufficientFundsError with 0.00 available", err)
		}
		if got := balance(t, l, "ACC-002"); got != amt("-500.00") {
			t.Errorf("balance = %s; want -500.00", got)
		}
		// A rejected txnID is not recorded: it may succeed later.
		if _, err := l.TopUp(ctx, "top-f", "ACC-002", amt("0.01")); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Charge(ctx, "f3", "ACC-002", amt("0.01")); err != nil {
			t.Errorf("retry after top-up: %v", err)
		}
		mustVerify(t, l)
	})
}

func TestChargeIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.newDSN(t)
		l := openLedger(t, dsn)
		orig, err := l.Charge(ctx, "call-1", "ACC-003", amt("2.50"))
		if err != nil {
			t.Fatal(err)
		}
		again, err := l.Charge(ctx, "call-1", "ACC-003", amt("2.50"))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Replayed || again.TxnID != orig.TxnID || again.Account != orig.Account ||
			again.Amount != orig.Amount || !again.At.Equal(orig.At) {
			t.Errorf("replay = %+v; want original %+v with Replayed", again, orig)
		}
		checkConflicts := func(l *Ledger) {
			t.Helper()
			_, err := l.Charge(ctx, "call-1", "ACC-003", amt("2.51"))
			var ce *ConflictError
			if !errors.As(err, &ce) || ce.ExistingAmount != amt("2.50") || ce.Amount != amt("2.51") ||
				ce.ExistingAccount != "ACC-003" || !errors.Is(err, ErrIdempotencyConflict) {
				t.Errorf("different amount: error = %v; want ConflictError", err)
			}
			_, err = l.Charge(ctx, "call-1", "ACC-004", amt("2.50"))
			if !errors.Is(err, ErrIdempotencyConflict) {
				t.Errorf("different account: error = %v; want ErrIdempotencyConflict", err)
			}
		}
		checkConflicts(l)
		if s := l.Stats(); s.ChargesCommitted != 1 || s.IdempotentHits != 1 || s.IndexHits != 1 || s.Conflicts != 2 {
			t.Errorf("stats = %+v; want 1 charge, 1 idempotent hit from the index, 2 conflicts", s)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}

		// After a restart the in-memory index is empty: the database answers.
		l2 := openLedger(t, dsn)
		again, err = l2.Charge(ctx, "call-1", "ACC-003", amt("2.50"))
		if err != nil || !again.Replayed || !again.At.Equal(orig.At) {
			t.Errorf("replay after restart = %+v, %v; want original receipt", again, err)
		}
		checkConflicts(l2)
		if got, want := balance(t, l2, "ACC-003"), amt("997.50"); got != want {
			t.Errorf("balance = %s; want %s (charged once)", got, want)
		}
		if s := l2.Stats(); s.ChargesCommitted != 0 || s.IdempotentHits != 1 {
			t.Errorf("stats after restart = %+v; want 0 charges, 1 idempotent hit", s)
		}
		mustVerify(t, l2)
	})
}

func TestIndexEviction(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := openLedger(t, b.newDSN(t), WithIndexCapacity(indexShards))
		const n = 300
		for i := range n {
			if _, err := l.Charge(ctx, fmt.Sprintf("e%d", i), SeedAccountID(1+i%7), 1); err != nil {
				t.Fatal(err)
			}
		}
		if size := l.Stats().IndexSize; size > 2*indexShards {
			t.Errorf("index holds %d entries; want it bounded near %d", size, indexShards)
		}
		for i := range n {
			r, err := l.Charge(ctx, fmt.Sprintf("e%d", i), SeedAccountID(1+i%7), 1)
			if err != nil || !r.Replayed {
				t.Fatalf("retry e%d = %+v, %v; want replay", i, r, err)
			}
		}
		if s := l.Stats(); s.ChargesCommitted != n || s.IdempotentHits != n {
			t.Errorf("stats = %+v; want %d charges and %d idempotent hits", s, n, n)
		}
		if rep := mustVerify(t, l); rep.Charges != n {
			t.Errorf("%d charges recorded; want %d", rep.Charges, n)
		}
	})
}

// TestBatchRules commits one hand-built batch and checks that every rule is
// applied in queue order and that rejected requests do not affect the rest.
func TestBatchRules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := openLedger(t, b.newDSN(t))
		if _, err := l.Charge(ctx, "old", "ACC-010", amt("1.00")); err != nil {
			t.Fatal(err)
		}
		// Forget "old" so that its replay below is resolved by the batch
		// from the database, as after a restart. The writer is idle and
		// the gate orders this write before its next batch.
		l.index = newTxnIndex(DefaultIndexCapacity)
		batchesBefore := l.Stats().Batches

		charge := func(txn, acct, a string) func() (Receipt, error) {
			return func() (Receipt, error) { return l.Charge(ctx, txn, acct, amt(a)) }
		}
		topUp := func(txn, acct, a string) func() (Receipt, error) {
			return func() (Receipt, error) { return l.TopUp(ctx, txn, acct, amt(a)) }
		}
		resume := pauseWriter(l)
		outs := submitInOrder(t, l,
			charge("b1", "ACC-011", "1000.00"),  // 0 ok: balance 0.00
			charge("b2", "ACC-011", "400.00"),   // 1 ok: -400.00
			charge("b3", "ACC-011", "200.00"),   // 2 insufficient: only 100.00 left
			charge("b4", "ACC-011", "100.00"),   // 3 ok: -500.00, exactly the limit
			charge("b1", "ACC-011", "1000.00"),  // 4 in-batch retry: replay of 0
			charge("b2", "ACC-011", "1.00"),     // 5 in-batch conflict with 1
			charge("b5", "NOPE-1", "1.00"),      // 6 unknown account
			topUp("t1", "ACC-011", "50.00"),     // 7 ok: -450.00
			charge("b6", "ACC-011", "50.00"),    // 8 ok thanks to 7: -500.00
			charge("b3", "ACC-011", "0.01"),     // 9 insufficient again (2 was not recorded)
			charge("old", "ACC-010", "1.00"),    // 10 replay of a committed charge
			charge("b7", "ACC-012", "1500.00"),  // 11 ok on another account
			charge("b8", "ACC-012", "0.01"),     // 12 insufficient
			topUp("b1", "ACC-012", "1.00"),      // 13 ok: top-ups are their own namespace
			charge("b8", "ACC-012", "1.01"),     // 14 insufficient: 13 gave 1.00 of headroom
			charge("b9", "ACC-012", "1.00"),     // 15 ok: exactly the top-up
			charge("b10", "ACC-013", "1500.01"), // 16 insufficient
		)
		resume()
		res := make([]outcome, len(outs))
		for i, ch := range outs {
			res[i] = <-ch
		}

		ok := func(i int, replayed bool) {
			t.Helper()
			if res[i].err != nil || res[i].r.Replayed != replayed {
				t.Errorf("request %d: %+v, %v; want success (replayed=%v)", i, res[i].r, res[i].err, replayed)
			}
		}
		fails := func(i int, want error) {
			t.Helper()
			if !errors.Is(res[i].err, want) {
				t.Errorf("request %d: error %v; want %v", i, res[i].err, want)
			}
		}
		ok(0, false)
		ok(1, false)
		fails(2, ErrInsufficientFunds)
		ok(3, false)
		ok(4, true)
		if !res[4].r.At.Equal(res[0].r.At) {
			t.Errorf("in-batch replay At %v; want %v", res[4].r.At, res[0].r.At)
		}
		fails(5, ErrIdempotencyConflict)
		fails(6, ErrUnknownAccount)
		ok(7, false)
		ok(8, false)
		fails(9, ErrInsufficientFunds)
		ok(10, true)
		ok(11, false)
		fails(12, ErrInsufficientFunds)
		ok(13, false)
		fails(14, ErrInsufficientFunds)
		ok(15, false)
		fails(16, ErrInsufficientFunds)

		s := l.Stats()
		if s.Batches != batchesBefore+1 || s.MaxBatch != int64(len(outs)) {
			t.Errorf("stats %+v; want all %d requests in one more batch", s, len(outs))
		}
		for id, want := range map[string]string{"ACC-010": "999.00", "ACC-011": "-500.00", "ACC-012": "-500.00", "ACC-013": "1000.00"} {
			if got := balance(t, l, id); got != amt(want) {
				t.Errorf("%s balance = %s; want %s", id, got, want)
			}
		}
		if _, found, err := l.FindCharge(ctx, "b3"); err != nil || found {
			t.Errorf("FindCharge(b3) found=%v err=%v; a rejected charge must not be recorded", found, err)
		}
		if rep := mustVerify(t, l); rep.Charges != 7 || rep.TopUps != 2 {
			t.Errorf("report %+v; want 7 charges, 2 top-ups", rep)
		}
	})
}

func TestGroupCommitConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := openLedger(t, b.newDSN(t))
		const workers, per, accounts = 32, 50, 40
		var wg sync.WaitGroup
		errs := make(chan error, workers*per)
		for w := range workers {
			wg.Go(func() {
				for i := range per {
					acct := SeedAccountID(1 + (w*per+i)%accounts)
					if _, err := l.Charge(ctx, fmt.Sprintf("w%d-%d", w, i), acct, amt("0.25")); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		total := money.Amount(0)
		for i := 1; i <= accounts; i++ {
			total += SeedOpeningBalance - balance(t, l, SeedAccountID(i))
		}
		if want := money.Amount(workers * per * 25); total != want {
			t.Errorf("total charged %s; want %s", total, want)
		}
		s := l.Stats()
		if s.ChargesCommitted != workers*per || s.BatchedRequests != workers*per || s.Batches > workers*per {
			t.Errorf("stats %+v", s)
		}
		if rep := mustVerify(t, l); rep.Charges != workers*per {
			t.Errorf("%d charges recorded; want %d", rep.Charges, workers*per)
		}
	})
}

// TestConcurrentDuplicates races many callers on the same txnIDs: each txnID
// must be charged once, and every caller must get the same receipt.
func TestConcurrentDuplicates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := openLedger(t, b.newDSN(t))
		const callers, txns = 8, 100
		receipts := make([][]Receipt, callers)
		var wg sync.WaitGroup
		for c := range callers {
			receipts[c] = make([]Receipt, txns)
			wg.Go(func() {
				for i := range txns {
					r, err := l.Charge(ctx, fmt.Sprintf("dup-%d", i), "ACC-020", amt("1.00"))
					if err != nil {
						t.Errorf("caller %d txn %d: %v", c, i, err)
					}
					receipts[c][i] = r
				}
			})
		}
		wg.Wait()
		for i := range txns {
			fresh := 0
			for c := range callers {
				r := receipts[c][i]
				if !r.Replayed {
					fresh++
				}
				if !r.At.Equal(receipts[0][i].At) {
					t.Errorf("txn %d: receipts differ: %+v vs %+v", i, r, receipts[0][i])
				}
			}
			if fresh != 1 {
				t.Errorf("txn %d: %d callers got a fresh receipt; want exactly 1", i, fresh)
			}
		}
		if got, want := balance(t, l, "ACC-020"), amt("900.00"); got != want {
			t.Errorf("balance = %s; want %s", got, want)
		}
		s := l.Stats()
		if s.ChargesCommitted != txns || s.IdempotentHits != (callers-1)*txns {
			t.Errorf("stats %+v; want %d charges, %d idempotent hits", s, txns, (callers-1)*txns)
		}
		mustVerify(t, l)
	})
}

// TestTwoNodes runs two ledgers on one database, as two nodes would: neither
// knows the other's txnIDs, so the database must arbitrate.
func TestTwoNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.newDSN(t)
		nodes := []*Ledger{openLedger(t, dsn), openLedger(t, dsn)}
		const txns = 200
		type answer struct {
			r   Receipt
			err error
		}
		answers := make([][]answer, len(nodes))
		var wg sync.WaitGroup
		for n, l := range nodes {
			answers[n] = make([]answer, txns)
			wg.Go(func() {
				for i := range txns {
					// Even txnIDs: both nodes send the same charge (a
					// retry that failed over). Odd: node 1 sends another
					// amount (a bug upstream) and must be refused, or win.
					a := amt("1.00")
					if i%2 == 1 && n == 1 {
						a = amt("2.00")
					}
					r, err := l.Charge(ctx, fmt.Sprintf("n-%d", i), SeedAccountID(30+i%5), a)
					answers[n][i] = answer{r, err}
				}
			})
		}
		wg.Wait()

		for i := range txns {
			a0, a1 := answers[0][i], answers[1][i]
			stored, found, err := nodes[0].FindCharge(ctx, fmt.Sprintf("n-%d", i))
			if err != nil || !found {
				t.Fatalf("n-%d not stored: %v", i, err)
			}
			if i%2 == 0 {
				if a0.err != nil || a1.err != nil || a0.r.Replayed == a1.r.Replayed {
					t.Errorf("n-%d: answers %+v / %+v; want one fresh and one replayed receipt", i, a0, a1)
				}
				continue
			}
			// Exactly one node won; the other got a conflict naming the winner.
			var winner, loser answer
			switch {
			case a0.err == nil && a1.err != nil:
				winner, loser = a0, a1
			case a1.err == nil && a0.err != nil:
				winner, loser = a1, a0
			default:
				t.Errorf("n-%d: answers %+v / %+v; want one success and one conflict", i, a0, a1)
				continue
			}
			var ce *ConflictError
			if !errors.As(loser.err, &ce) || ce.ExistingAmount != winner.r.Amount || stored.Amount != winner.r.Amount {
				t.Errorf("n-%d: loser %v, winner %+v, stored %+v", i, loser.err, winner.r, stored)
			}
		}
		rep := mustVerify(t, nodes[1])
		if rep.Charges != txns {
			t.Errorf("%d charges; want %d", rep.Charges, txns)
		}
		var charged money.Amount
		for i := range 5 {
			charged += SeedOpeningBalance - balance(t, nodes[0], SeedAccountID(30+i))
		}
		var want money.Amount
		for i := range txns {
			r, _, _ := nodes[0].FindCharge(ctx, fmt.Sprintf("n-%d", i))
			want += r.Amount
		}
		if charged != want {
			t.Errorf("balances moved by %s; stored charges sum to %s", charged, want)
		}
	})
}

func TestTopUp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := openLedger(t, b.newDSN(t))
		r, err := l.TopUp(ctx, "top-1", "ACC-040", amt("100.00"))
		if err != nil || r.Replayed || r.Amount != amt("100.00") {
			t.Fatalf("TopUp = %+v, %v", r, err)
		}
		r, err = l.TopUp(ctx, "top-1", "ACC-040", amt("100.00"))
		if err != nil || !r.Replayed {
			t.Errorf("repeated TopUp = %+v, %v; want replay", r, err)
		}
		if _, err := l.TopUp(ctx, "top-1", "ACC-040", amt("99.00")); !errors.Is(err, ErrIdempotencyConflict) {
			t.Errorf("conflicting TopUp error = %v", err)
		}
		if _, err := l.TopUp(ctx, "top-2", "ACC-NOPE", amt("1.00")); !errors.Is(err, ErrUnknownAccount) {
			t.Errorf("TopUp unknown account error = %v", err)
		}
		if _, err := l.TopUp(ctx, "top-3", "ACC-040", 0); !errors.Is(err, ErrInvalidAmount) {
			t.Errorf("TopUp zero error = %v", err)
		}
		if _, err := l.TopUp(ctx, "", "ACC-040", 1); !errors.Is(err, ErrEmptyTxnID) {
			t.Errorf("TopUp empty txn error = %v", err)
		}
		if got := balance(t, l, "ACC-040"); got != amt("1100.00") {
			t.Errorf("balance = %s; want 1100.00", got)
		}

		if _, err := l.CreateAccount(ctx, "RICH", money.MaxAmount-10, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := l.TopUp(ctx, "top-4", "RICH", 11); !errors.Is(err, ErrBalanceOverflow) {
			t.Errorf("overflowing TopUp error = %v; want ErrBalanceOverflow", err)
		}
		if _, err := l.TopUp(ctx, "top-5", "RICH", 10); err != nil {
			t.Errorf("TopUp to MaxAmount: %v", err)
		}
		rep := mustVerify(t, l)
		if rep.TopUps != 2 {
			t.Errorf("%d top-ups recorded; want 2", rep.TopUps)
		}
	})
}

func TestCreateAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := openLedger(t, b.newDSN(t))
		a, err := l.CreateAccount(ctx, "NEW-1", 0, amt("10.00"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Account(ctx, "NEW-1")
		if err != nil || got.Balance != 0 || got.CreditLimit != amt("10.00") || !got.CreatedAt.Equal(a.CreatedAt) {
			t.Errorf("Account = %+v, %v; want %+v", got, err, a)
		}
		if _, err := l.Charge(ctx, "n1", "NEW-1", amt("10.00")); err != nil {
			t.Errorf("charge within the credit limit: %v", err)
		}
		if _, err := l.Charge(ctx, "n2", "NEW-1", amt("0.01")); !errors.Is(err, ErrInsufficientFunds) {
			t.Errorf("charge past the credit limit: %v", err)
		}
		tests := []struct {
			id           string
			opening, lim money.Amount
			want         error
		}{
			{"NEW-1", 0, 0, ErrAccountExists},
			{"ACC-001", 0, 0, ErrAccountExists},
			{"", 0, 0, ErrInvalidAccountID},
			{strings.Repeat("A", MaxAccountIDLen+1), 0, 0, ErrInvalidAccountID},
			{"BAD\n", 0, 0, ErrInvalidAccountID},
			{"NEW-2", 0, -1, ErrInvalidAmount},
			{"NEW-3", amt("-10.01"), amt("10.00"), ErrInvalidAmount},
		}
		for _, tt := range tests {
			if _, err := l.CreateAccount(ctx, tt.id, tt.opening, tt.lim); !errors.Is(err, tt.want) {
				t.Errorf("CreateAccount(%q, %s, %s) error = %v; want %v", tt.id, tt.opening, tt.lim, err, tt.want)
			}
		}
		if _, err := l.CreateAccount(ctx, "NEW-4", amt("-10.00"), amt("10.00")); err != nil {
			t.Errorf("opening balance at the credit limit: %v", err)
		}
		if rep := mustVerify(t, l); rep.Accounts != SeedAccounts+2 {
			t.Errorf("%d accounts; want %d", rep.Accounts, SeedAccounts+2)
		}
	})
}

func TestRecentAndFind(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := openLedger(t, b.newDSN(t))
		for i := range 5 {
			if _, err := l.Charge(ctx, fmt.Sprintf("r%d", i), "ACC-050", money.Amount(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		rs, err := l.Recent(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 3 || rs[0].TxnID != "r4" || rs[1].TxnID != "r3" || rs[2].TxnID != "r2" || rs[0].Amount != 5 {
			t.Errorf("Recent(3) = %+v; want r4, r3, r2", rs)
		}
		if rs, _ := l.Recent(ctx, 0); len(rs) != 0 {
			t.Errorf("Recent(0) = %v", rs)
		}
		r, found, err := l.FindCharge(ctx, "r1")
		if err != nil || !found || r.Account != "ACC-050" || r.Amount != 2 {
			t.Errorf("FindCharge(r1) = %+v, %v, %v", r, found, err)
		}
		if _, found, err := l.FindCharge(ctx, "nope"); err != nil || found {
			t.Errorf("FindCharge(nope) found=%v err=%v", found, err)
		}
	})
}

func TestVerifyDetectsTampering(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := openLedger(t, b.newDSN(t))
		if _, err := l.Charge(ctx, "v1", "ACC-002", amt("10.00")); err != nil {
			t.Fatal(err)
		}
		// Balances edited behind the ledger's back, as a bad manual fix would.
		edit := "UPDATE accounts SET balance = balance + 1 WHERE id IN ('ACC-002', 'ACC-003')"
		if b.name == "sqlite" {
			edit = `UPDATE balances SET balance = balance + 1
				WHERE account IN (SELECT num FROM accounts WHERE id IN ('ACC-002', 'ACC-003'))`
		}
		execRaw(t, l, edit)
		rep, err := l.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || rep.ViolationCount != 2 || len(rep.Violations) != 2 {
			t.Fatalf("report %+v; want 2 violations", rep)
		}
		v := rep.Violations[0]
		if v.Kind != BalanceMismatch || v.Subject != "ACC-002" || !strings.Contains(v.Detail, "990.01") {
			t.Errorf("first violation %+v", v)
		}
		want := "ledger FAILED: 10000 accounts, 1 charges, 2 violations: balance-mismatch ACC-002: balance 990.01, expected 990.00"
		if !strings.HasPrefix(rep.Verdict, want) {
			t.Errorf("verdict %q; want prefix %q", rep.Verdict, want)
		}
	})
}

// TestCloseDrains closes the ledger while requests are queued: every one of
// them must still be committed and answered, and later calls refused.
func TestCloseDrains(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.newDSN(t)
		l, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		resume := pauseWriter(l)
		var calls []func() (Receipt, error)
		for i := range 20 {
			calls = append(calls, func() (Receipt, error) {
				return l.Charge(ctx, fmt.Sprintf("c%d", i), "ACC-060", amt("1.00"))
			})
		}
		outs := submitInOrder(t, l, calls...)
		closed := make(chan error, 1)
		go func() { closed <- l.Close() }()
		waitFor(t, l.closed.Load)
		if _, err := l.Charge(ctx, "late", "ACC-060", 1); !errors.Is(err, ErrClosed) {
			t.Errorf("Charge after Close: %v; want ErrClosed", err)
		}
		resume()
		for i, ch := range outs {
			if o := <-ch; o.err != nil {
				t.Errorf("queued charge %d: %v", i, o.err)
			}
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := l.Balance(ctx, "ACC-060"); !errors.Is(err, ErrClosed) {
			t.Errorf("Balance after Close: %v; want ErrClosed", err)
		}

		l2 := openLedger(t, dsn)
		if got := balance(t, l2, "ACC-060"); got != amt("980.00") {
			t.Errorf("balance after reopen = %s; want 980.00", got)
		}
		if _, found, _ := l2.FindCharge(ctx, "late"); found {
			t.Error("a charge refused after Close was recorded")
		}
	})
}

// TestCancelWhileQueued abandons a queued charge: the caller learns the
// outcome is unknown, and the writer, seeing the caller gone before the batch
// starts, does not apply it.
func TestCancelWhileQueued(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l := openLedger(t, b.newDSN(t))
		ctx, cancel := context.WithCancel(context.Background())
		resume := pauseWriter(l)
		outs := submitInOrder(t, l, func() (Receipt, error) { return l.Charge(ctx, "x1", "ACC-070", 1) })
		cancel()
		o := <-outs[0]
		resume()
		if !errors.Is(o.err, ErrOutcomeUnknown) || !errors.Is(o.err, context.Canceled) {
			t.Fatalf("error = %v; want ErrOutcomeUnknown wrapping context.Canceled", o.err)
		}
		// A fresh request is committed in a later batch than x1's, so once
		// it returns x1 has been dealt with.
		if _, err := l.Charge(context.Background(), "x2", "ACC-070", 1); err != nil {
			t.Fatal(err)
		}
		if _, found, err := l.FindCharge(context.Background(), "x1"); err != nil || found {
			t.Errorf("abandoned charge recorded: found=%v err=%v", found, err)
		}
		if _, err := l.Charge(context.Background(), "x1", "ACC-070", 1); err != nil {
			t.Errorf("retry of the abandoned charge: %v", err)
		}
		if got := balance(t, l, "ACC-070"); got != SeedOpeningBalance-2 {
			t.Errorf("balance %s; want two charges", got)
		}
	})
}

func TestSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	l := openLedger(t, dir)
	if _, err := l.Charge(context.Background(), "s1", "ACC-001", amt("1.50")); err != nil {
		t.Fatal(err)
	}
	s := l.st.(*sqliteStore)
	var mode string
	var syncLevel int
	ctx := context.Background()
	// Check a pooled reader connection, not only the writer's.
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncLevel); err != nil || syncLevel != 2 {
		t.Errorf("synchronous = %d, %v; want 2 (FULL)", syncLevel, err)
	}
	if goruntime.GOOS == "linux" && !sqlite.FdatasyncEnabled() {
		t.Error("SQLite syncs with fsync; want fdatasync, as its Linux builds do")
	}
	path := filepath.Join(dir, SQLiteFile)
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	// The database is meant to be inspected with the stock sqlite3 shell.
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Skip("sqlite3 shell not installed")
	}
	out, err := exec.Command("sqlite3", path,
		"SELECT txn_id, account_id, amount FROM charges; SELECT balance FROM account_balances WHERE id = 'ACC-001';").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	if got, want := string(out), "s1|ACC-001|150\n99850\n"; got != want {
		t.Errorf("sqlite3 printed %q; want %q", got, want)
	}
}

func TestOpenSelectsBackend(t *testing.T) {
	for dsn, pg := range map[string]bool{
		"postgres://u@h/db":     true,
		"postgresql://u@h/db":   true,
		"POSTGRES://u@h/db":     true,
		"/var/lib/observer":     false,
		"data":                  false,
		"./postgres":            false,
		"postgres-data/ledger":  false,
		"file:postgres://x.txt": false,
	} {
		if got := IsPostgresURL(dsn); got != pg {
			t.Errorf("IsPostgresURL(%q) = %v; want %v", dsn, got, pg)
		}
	}
	if _, err := Open(context.Background(), ""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
}

func TestMigrationsEmbedded(t *testing.T) {
	for _, be := range []string{"sqlite", "postgres"} {
		migs, err := loadMigrations(be)
		if err != nil {
			t.Fatal(err)
		}
		if len(migs) == 0 {
			t.Fatalf("%s: no migrations", be)
		}
		for i, m := range migs {
			if m.version != i+1 || m.sql == "" {
				t.Errorf("%s: migration %d is %+v; want contiguous versions from 1", be, i, m.name)
			}
		}
		if _, err := pending(migs, map[int]bool{1: true, 99: true}); !errors.Is(err, ErrSchemaTooNew) {
			t.Errorf("pending with unknown version: %v", err)
		}
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"ACC-001":    true,
		"ünïcode":    true,
		"":           false,
		"tab\there":  false,
		"del\x7f":    false,
		"c1\u0085":   false,
		"bad\xc3":    false,
		"ok ☎ space": true,
	} {
		if got := validID(id, 64); got != want {
			t.Errorf("validID(%q) = %v; want %v", id, got, want)
		}
	}
}

func TestTxnIndex(t *testing.T) {
	ix := newTxnIndex(indexShards * 2)
	for i := range 1000 {
		ix.put(fmt.Sprint(i), record{account: "A", amount: money.Amount(i)})
	}
	if n := ix.len(); n > indexShards*2 {
		t.Errorf("index holds %d; want at most %d", n, indexShards*2)
	}
	r, ok := ix.get("999", "A")
	if !ok || r.amount != 999 {
		t.Errorf("newest entry = %+v, %v; want kept", r, ok)
	}
	ix.put("999", record{account: "B"})
	if r, _ := ix.get("999", "B"); r.account != "A" {
		t.Error("put replaced an existing entry; committed entries never change")
	}
}

// TestTxnIndexEvicts fills a small index many times over, with txnIDs and
// accounts of every length: the newest entries come back whole, the oldest
// are gone, and the shards' text stays within about twice the most they
// can hold.
func TestTxnIndexEvicts(t *testing.T) {
	const capacity = indexShards * 8
	ix := newTxnIndex(capacity)
	id := func(i int) string { return fmt.Sprintf("%0*d", 1+i%MaxTxnIDLen, i) }
	acct := func(i int) string { return strings.Repeat("A", 1+i%MaxAccountIDLen) }
	const n = 50 * capacity
	for i := range n {
		ix.put(id(i), record{account: acct(i), amount: money.Amount(i), atMilli: int64(i)})
	}
	if got := ix.len(); got > capacity {
		t.Errorf("index holds %d; want at most %d", got, capacity)
	}
	kept := 0
	for i := n - capacity; i < n; i++ {
		r, ok := ix.get(id(i), "other")
		if !ok {
			continue
		}
		kept++
		if r.account != acct(i) || r.amount != money.Amount(i) || r.atMilli != int64(i) {
			t.Fatalf("entry %s = %+v; want account %s, amount %d", id(i), r, acct(i), i)
		}
	}
	if kept < capacity/2 {
		t.Errorf("%d of the newest %d entries kept", kept, capacity)
	}
	if _, ok := ix.get(id(0), "x"); ok {
		t.Error("the oldest entry is still cached")
	}
	const most = (MaxTxnIDLen + MaxAccountIDLen) * (capacity/indexShards + 3)
	for i := range ix.shards {
		if n := len(ix.shards[i].text); n > 2*most {
			t.Fatalf("shard %d keeps %d bytes of text; want at most %d", i, n, 2*most)
		}
	}
}

// TestTxnIndexNeverCopies fills an index several times over with txnIDs and
// accounts of usual lengths: no shard's text or ring is ever reallocated,
// which would stall a batch's answer while all shards copied theirs.
func TestTxnIndexNeverCopies(t *testing.T) {
	const capacity = indexShards * 64
	ix := newTxnIndex(capacity)
	type arrays struct{ ring, text uintptr }
	start := make([]arrays, indexShards)
	at := func(s *indexShard) arrays {
		return arrays{uintptr(unsafe.Pointer(unsafe.SliceData(s.ring))), uintptr(unsafe.Pointer(unsafe.SliceData(s.text)))}
	}
	for i := range ix.shards {
		start[i] = at(&ix.shards[i])
	}
	for i := range 5 * capacity {
		// A UUID's length, then shorter and longer ones around it.
		id := fmt.Sprintf("%0*d", 30+i%13, i)
		ix.put(id, record{account: SeedAccountID(1 + i%SeedAccounts), amount: money.Amount(i)})
		if r, ok := ix.get(id, "x"); !ok || r.amount != money.Amount(i) {
			t.Fatalf("entry %s = %+v, %v; want just put", id, r, ok)
		}
	}
	for i := range ix.shards {
		if got := at(&ix.shards[i]); got != start[i] {
			t.Errorf("shard %d reallocated its ring or text", i)
		}
	}
}

// TestPostgresInsertRace makes another node commit a txnID after this node
// looked it up but before its insert: the insert must wait for the other
// transaction, find the txnID taken and answer with a conflict, undoing its
// own balance change.
func TestPostgresInsertRace(t *testing.T) {
	ctx := context.Background()
	dsn := newPostgresDSN(t)
	l := openLedger(t, dsn)
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// The other node charges race-1 to ACC-081 but has not committed yet.
	if _, err := tx.Exec(ctx, `INSERT INTO charges (txn_id, account_id, amount, created_at)
		VALUES ('race-1', 'ACC-081', 500, now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE accounts SET balance = balance - 500 WHERE id = 'ACC-081'`); err != nil {
		t.Fatal(err)
	}

	done := make(chan outcome, 1)
	go func() {
		r, err := l.Charge(ctx, "race-1", "ACC-080", amt("5.00"))
		done <- outcome{r, err}
	}()
	// Wait until our writer is blocked on the other node's uncommitted row.
	// The probe needs its own connection: inside a transaction PostgreSQL
	// keeps showing the activity snapshot it took first.
	probe, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close(ctx)
	waitFor(t, func() bool {
		var n int
		err := probe.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'observer-ledger' AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n > 0
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	o := <-done
	var ce *ConflictError
	if !errors.As(o.err, &ce) || ce.ExistingAccount != "ACC-081" || ce.ExistingAmount != amt("5.00") {
		t.Fatalf("Charge = %+v, %v; want a conflict with the other node's charge", o.r, o.err)
	}
	if got := balance(t, l, "ACC-080"); got != SeedOpeningBalance {
		t.Errorf("ACC-080 balance %s; the skipped charge must not move it", got)
	}
	if s := l.Stats(); s.ChargesCommitted != 0 || s.Conflicts != 1 {
		t.Errorf("stats %+v", s)
	}
	mustVerify(t, l)
}
