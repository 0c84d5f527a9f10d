package ledger

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"observer/internal/telecom/money"
)

// TestBalancesFoldBySlice follows one account through the turns of the
// slices: its balances row lags behind its charges and top-ups until its
// slice's turn, while Balance, account_balances and Verify always see
// them; another connection's write makes the writer fold every slice; and
// a closed ledger leaves no balances row behind.
func TestBalancesFoldBySlice(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLedger(t, dir)
	const acct, other = "ACC-5000", "ACC-001" // slices 4 and 0 of 10
	if sliceOf(5000) != 4 || sliceOf(1) != 0 {
		t.Fatalf("the test assumes slices of 1,024 accounts")
	}
	stored := func() money.Amount {
		return money.Amount(queryInt(t, l, `SELECT b.balance FROM balances AS b
			JOIN accounts AS a ON a.num = b.account WHERE a.id = '`+acct+`'`))
	}
	lagging := func() int64 { return queryInt(t, l, "SELECT count(*) FROM balance_tails WHERE delta <> 0") }
	check := func(when string, want money.Amount, lags bool) {
		t.Helper()
		if got := balance(t, l, acct); got != want {
			t.Fatalf("%s: Balance %v; want %v", when, got, want)
		}
		if got := money.Amount(queryInt(t, l, "SELECT balance FROM account_balances WHERE id = '"+acct+"'")); got != want {
			t.Fatalf("%s: account_balances shows %v; want %v", when, got, want)
		}
		if got := stored(); (got != want) != lags {
			t.Fatalf("%s: balances row %v against a balance of %v; want it lagging: %v", when, got, want, lags)
		}
		mustVerify(t, l)
	}
	charge := func(txnID, id string, a money.Amount) {
		t.Helper()
		if _, err := l.Charge(ctx, txnID, id, a); err != nil {
			t.Fatal(err)
		}
	}

	// The first batch folds every slice, then slice 0; the next ones
	// slices 1, 2 and 3.
	charge("c1", acct, amt("1.00"))
	charge("c2", acct, amt("2.00"))
	if _, err := l.TopUp(ctx, "t1", acct, amt("0.50")); err != nil {
		t.Fatal(err)
	}
	charge("c3", acct, amt("0.25"))
	want := SeedOpeningBalance - amt("2.75")
	check("before slice 4's turn", want, true)
	charge("c4", other, amt("0.01")) // slice 4's turn
	check("at slice 4's turn", want, false)

	// A write by another connection: the writer's next batch folds all.
	charge("c5", acct, amt("1.00"))
	want -= amt("1.00")
	check("after its turn", want, true)
	db, err := sql.Open("sqlite", filepath.Join(dir, SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "INSERT INTO ledger_meta (key, value) VALUES ('touched', 'by another connection')"); err != nil {
		t.Fatal(err)
	}
	charge("c6", other, amt("0.01"))
	check("after another connection wrote", want, false)
	if n := lagging(); n != 0 {
		t.Fatalf("%d balances rows lag after folding all", n)
	}

	// Closing folds what lags.
	charge("c7", acct, amt("1.00"))
	want -= amt("1.00")
	check("before closing", want, true)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLedger(t, dir)
	if got := stored(); got != want {
		t.Fatalf("balances row %v after closing; want %v", got, want)
	}
	if n := lagging(); n != 0 {
		t.Fatalf("%d balances rows lag after closing", n)
	}
	mustVerify(t, l)
}
