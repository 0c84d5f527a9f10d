package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// openSQLiteLedger opens the SQLite ledger in dir, which the test closes
// itself, and returns it with its record of unmerged txnIDs.
func openSQLiteLedger(t *testing.T, dir string) (*Ledger, *chargeIDs) {
	t.Helper()
	l, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return l, sqliteIDs(t, l)
}

// awaitSort waits for the sort of a merge's txnIDs, if one is running, and
// leaves its result for the writer. The writer must be idle.
func awaitSort(ids *chargeIDs) bool {
	if ids.sorted == nil {
		return false
	}
	g := <-ids.sorted
	ids.sorted <- g
	return true
}

// awaitFilter waits until the filter of charge_ids is read, if it is not
// in use yet, and leaves it for the writer, which must be idle.
func awaitFilter(t *testing.T, ids *chargeIDs) {
	t.Helper()
	if ids.filter.ready {
		return
	}
	if ids.filter.built == nil {
		t.Fatal("the txnID filter is not being read")
	}
	b := <-ids.filter.built
	if b.err != nil {
		t.Fatal(b.err)
	}
	ids.filter.built <- b
}

// sqliteIDs returns the SQLite ledger's record of unmerged txnIDs.
func sqliteIDs(t *testing.T, l *Ledger) *chargeIDs {
	t.Helper()
	s, ok := l.st.(*sqliteStore)
	if !ok {
		t.Fatalf("store is %T; want SQLite", l.st)
	}
	return s.ids
}

// pendingLen reads how many txnIDs wait to be merged.
func pendingLen(ids *chargeIDs) int {
	ids.mu.RLock()
	defer ids.mu.RUnlock()
	return len(ids.pending)
}

// chargeN charges txnIDs prefix0..prefix(n-1), one at a time.
func chargeN(t *testing.T, l *Ledger, prefix string, n int) {
	t.Helper()
	for i := range n {
		if _, err := l.Charge(context.Background(), fmt.Sprintf("%s%d", prefix, i), SeedAccountID(1+i%50), 1); err != nil {
			t.Fatal(err)
		}
	}
}

// mergedLedger makes a ledger in a new directory, charges txnIDs
// prefix0..prefix(n-1) into it and closes it, which merges them into
// charge_ids. It returns the directory.
func mergedLedger(t *testing.T, prefix string, n int) string {
	t.Helper()
	dir := t.TempDir()
	l, _ := openSQLiteLedger(t, dir)
	chargeN(t, l, prefix, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// retryN retries what chargeN charged and fails unless every retry is
// answered with the original receipt.
func retryN(t *testing.T, l *Ledger, prefix string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		r, err := l.Charge(context.Background(), id, SeedAccountID(1+i%50), 1)
		if err != nil || !r.Replayed {
			t.Fatalf("retry of %s = %+v, %v; want the original receipt", id, r, err)
		}
	}
}

// TestChargeIDsMerge charges past the merge threshold with merging in
// spare time turned off: the batches' own transactions merge, and the rest
// is merged when the ledger closes; after a restart every charge is still
// a replay.
func TestChargeIDsMerge(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	const n = 700
	l, ids := openSQLiteLedger(t, dir)
	ids.mergeAt = 100 // batches merge from 200 pending on
	ids.failed = true // no merging in spare time
	chargeN(t, l, "m", n)
	// Until the batches have caught up, charge on (the writer is idle in
	// between, so the test may wait for a sort it started).
	total := n
	for pendingLen(ids) >= 2*ids.mergeAt {
		awaitSort(ids)
		chargeN(t, l, fmt.Sprintf("m%d-", total), 1)
		total++
	}
	merged := queryInt(t, l, "SELECT count(*) FROM charge_ids")
	if merged == 0 || merged+int64(pendingLen(ids)) != int64(total) {
		t.Errorf("%d txnIDs merged, %d pending; want some merged and %d in all", merged, pendingLen(ids), total)
	}
	mustVerify(t, l) // charge_ids agrees with charges up to charge_ids_through
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLedger(t, dir)
	awaitFilter(t, sqliteIDs(t, l)) // the retries pass through it
	if got := queryInt(t, l, "SELECT count(*) FROM charge_ids"); got != int64(total) {
		t.Errorf("charge_ids holds %d txnIDs after a clean close; want %d", got, total)
	}
	if got := queryInt(t, l, "SELECT value FROM ledger_meta WHERE key = 'charge_ids_through'"); got != queryInt(t, l, "SELECT max(seq) FROM charges") {
		t.Errorf("charge_ids_through = %d; want the last charge's seq", got)
	}
	retryN(t, l, "m", n)
	_, err := l.Charge(ctx, "m1", SeedAccountID(2), 2)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.ExistingAmount != 1 {
		t.Errorf("m1 with another amount: %v; want a conflict with the stored charge", err)
	}
	if rep := mustVerify(t, l); rep.Charges != int64(total) {
		t.Errorf("%d charges; want %d", rep.Charges, total)
	}
}

// TestChargeIDsMergeInSpareTime merges with upkeep, as the writer does
// while it waits for an fsync, rather than inside batches.
func TestChargeIDsMergeInSpareTime(t *testing.T) {
	l := openLedger(t, t.TempDir())
	s, ids := l.st.(*sqliteStore), sqliteIDs(t, l)
	ids.mergeAt = 200
	// Fewer than 2*mergeAt: only upkeep merges, the writer's own while it
	// charges, or the test's. The writer is idle between these charges, so
	// the test may call upkeep and wait for the sorts it starts.
	const n = 250
	chargeN(t, l, "s", n)
	for s.upkeep() || awaitSort(ids) {
	}
	merged := queryInt(t, l, "SELECT count(*) FROM charge_ids")
	if merged < int64(ids.mergeAt) || merged+int64(pendingLen(ids)) != n || pendingLen(ids) >= ids.mergeAt {
		t.Errorf("%d txnIDs merged, %d pending; want at least %d merged, fewer than that pending", merged, pendingLen(ids), ids.mergeAt)
	}
	retryN(t, l, "s", n)
	mustVerify(t, l) // charge_ids agrees with charges up to charge_ids_through
}

// TestChargeIDsAfterCrash stops the ledger without merging, as a crash
// would: the txnIDs are only in charges, and the next start finds them
// there, so retries charge nothing.
func TestChargeIDsAfterCrash(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	const n = 100
	l, ids := openSQLiteLedger(t, dir)
	chargeN(t, l, "c", n)
	ids.loaded = false // Close merges nothing, as if the process died
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLedger(t, dir)
	if got := queryInt(t, l, "SELECT count(*) FROM charge_ids"); got != 0 {
		t.Fatalf("charge_ids holds %d txnIDs; the test wants them all unmerged", got)
	}
	retryN(t, l, "c", n)
	for _, id := range []string{"c0", "c99"} {
		if _, ok, err := l.FindCharge(ctx, id); err != nil || !ok {
			t.Errorf("FindCharge(%s) = %v, %v; want found", id, ok, err)
		}
	}
	if s := l.Stats(); s.ChargesCommitted != 0 || s.IdempotentHits != n {
		t.Errorf("stats %+v; want no charge and %d replays", s, n)
	}
	mustVerify(t, l)
}

// TestChargeIDsDuplicateStops writes a second charge under a txnID behind
// the ledger's back: the writer finds it when it reads what the other
// connection wrote, and takes no more charges rather than risk a third.
func TestChargeIDsDuplicateStops(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t, t.TempDir())
	if _, err := l.Charge(ctx, "d1", SeedAccountID(2), 5); err != nil {
		t.Fatal(err)
	}
	execRaw(t, l, `INSERT INTO charges (txn_id, account_id, amount, created_at)
		VALUES ('d1', 'ACC-002', 5, '2026-01-01T00:00:00.000Z')`)
	_, err := l.Charge(ctx, "d2", SeedAccountID(2), 5)
	if !errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), `"d1" is charged twice`) {
		t.Fatalf("charge after the duplicate: %v; want the duplicate named", err)
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Violations[0].Kind != DuplicateTxn || rep.Violations[0].Subject != "d1" {
		t.Errorf("verify: %s; want the duplicate d1", rep.Verdict)
	}
}

// TestChargeIDsMigration opens a ledger written with the first schema, in
// which charges carried their own UNIQUE txnID index: the upgrade moves
// every txnID to charge_ids and retries stay replays.
func TestChargeIDsMigration(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	migs, err := loadMigrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	// The first schema, as an older observer left it: one account charged
	// three times. Open seeds the other accounts.
	db, err := sql.Open("sqlite", filepath.Join(dir, SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		migs[0].sql,
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`,
		`INSERT INTO schema_migrations VALUES (1, '` + migs[0].name + `', '2026-01-01T00:00:00.000Z')`,
		fmt.Sprintf(`INSERT INTO accounts VALUES ('ACC-001', %d, %d, %d, '2026-01-01T00:00:00.000Z')`,
			SeedOpeningBalance, SeedOpeningBalance-3, SeedCreditLimit),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i := range 3 {
		if _, err := db.ExecContext(ctx, `INSERT INTO charges (txn_id, account_id, amount, created_at)
			VALUES (?, 'ACC-001', 1, '2026-01-01T00:00:00.000Z')`, fmt.Sprintf("old%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	l := openLedger(t, dir)
	if got := queryInt(t, l, "SELECT count(*) FROM charge_ids"); got != 3 {
		t.Errorf("charge_ids holds %d txnIDs after the upgrade; want 3", got)
	}
	if got := queryInt(t, l, "SELECT count(*) FROM pragma_index_list('charges')"); got != 0 {
		t.Errorf("charges still has %d indexes; want none", got)
	}
	for i := range 3 {
		r, err := l.Charge(ctx, fmt.Sprintf("old%d", i), "ACC-001", 1)
		if err != nil || !r.Replayed {
			t.Errorf("retry of old%d = %+v, %v; want the original receipt", i, r, err)
		}
	}
	if rep := mustVerify(t, l); rep.Charges != 3 {
		t.Errorf("%d charges; want 3", rep.Charges)
	}
	// The upgrade moved the balance to balances.
	if got, want := balance(t, l, "ACC-001"), SeedOpeningBalance-3; got != want {
		t.Errorf("ACC-001's balance %v after the upgrade; want %v", got, want)
	}
}

// TestChargeIDsOtherProcess finds a charge another process on the same file
// committed and has not merged yet, before this one's writer has read it.
func TestChargeIDsOtherProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := openLedger(t, dir), openLedger(t, dir)
	if _, err := a.Charge(ctx, "x1", SeedAccountID(3), 7); err != nil {
		t.Fatal(err)
	}
	r, ok, err := b.FindCharge(ctx, "x1")
	if err != nil || !ok || r.Account != SeedAccountID(3) || r.Amount != 7 {
		t.Fatalf("FindCharge on the other ledger = %+v, %v, %v; want the charge", r, ok, err)
	}
	r, err = b.Charge(ctx, "x1", SeedAccountID(3), 7)
	if err != nil || !r.Replayed {
		t.Fatalf("retry on the other ledger = %+v, %v; want the original receipt", r, err)
	}
}

// TestVerifyChecksChargeIDs edits charge_ids behind the ledger's back:
// Verify reports an entry that names the wrong charge and a merged charge
// whose entry is gone.
func TestVerifyChecksChargeIDs(t *testing.T) {
	l := openLedger(t, mergedLedger(t, "v", 3))
	mustVerify(t, l)
	execRaw(t, l, "DELETE FROM charge_ids WHERE txn_id = 'v1'")
	execRaw(t, l, "UPDATE charge_ids SET seq = 1 WHERE txn_id = 'v2'")
	want := []string{"v2: charge_ids points at charge 1, which is v0", "v1: charge 2 is missing from charge_ids", "v2: charge 3 is missing from charge_ids"}
	if got := violations(t, l); !slices.Equal(got, want) {
		t.Errorf("violations %q; want %q", got, want)
	}
}

// violations runs Verify and returns its violations as "subject: detail",
// failing the test for any that is not an index mismatch.
func violations(t *testing.T, l *Ledger) []string {
	t.Helper()
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range rep.Violations {
		if v.Kind != IndexMismatch {
			t.Errorf("violation %s; want only %s", v, IndexMismatch)
		}
		got = append(got, v.Subject+": "+v.Detail)
	}
	return got
}

// TestVerifyChecksBalances removes an account's row from balances and adds
// one for no account: Verify reports both, although the view it reads
// balances through shows neither.
func TestVerifyChecksBalances(t *testing.T) {
	l := openLedger(t, t.TempDir())
	execRaw(t, l, "DELETE FROM balances WHERE account = (SELECT num FROM accounts WHERE id = 'ACC-005')")
	// As the sqlite3 shell would, whose foreign_keys is off by default.
	execRaw(t, l, "PRAGMA foreign_keys = OFF; INSERT INTO balances (account, balance, credit_limit) VALUES (999999, 0, 0); PRAGMA foreign_keys = ON")
	want := []string{"ACC-005: account has no row in balances", "balances row 999999: names no account"}
	if got := violations(t, l); !slices.Equal(got, want) {
		t.Errorf("violations %q; want %q", got, want)
	}
}
