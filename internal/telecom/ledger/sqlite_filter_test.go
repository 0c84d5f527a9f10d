package ledger

import (
	"context"
	"fmt"
	"testing"
)

// TestTxnFilter fills a filter past several parts: it holds everything
// added, and excludes nearly everything else.
func TestTxnFilter(t *testing.T) {
	var f txnFilter
	const n = 5 * firstFilterPart
	for i := range n {
		f.add(fmt.Sprintf("TXN-%d", i))
	}
	if len(f.parts) != 3 {
		t.Errorf("%d parts for %d txnIDs; want 3 (each twice the last)", len(f.parts), n)
	}
	for i := range n {
		if id := fmt.Sprintf("TXN-%d", i); !f.mayHold(id) {
			t.Fatalf("%s was added, but the filter excludes it", id)
		}
	}
	held := 0
	for i := range n {
		if f.mayHold(fmt.Sprintf("OTHER-%d", i)) {
			held++
		}
	}
	// Each part's false-positive rate, once per part.
	if limit := 3 * filterFalsePositives * n * 2; float64(held) > limit {
		t.Errorf("%d of %d txnIDs never added pass the filter; want at most %.0f", held, n, limit)
	}
}

// TestChargeFilterOtherProcess has another process charge and merge a
// txnID after this one's filter was read: the writer learns of it when it
// sees the other's commit, and a retry here charges nothing twice.
func TestChargeFilterOtherProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, ids := openSQLiteLedger(t, dir)
	defer a.Close()
	chargeN(t, a, "a", 3) // txnIDs of a's own in the filter's first part
	awaitFilter(t, ids)

	b, _ := openSQLiteLedger(t, dir)
	if _, err := b.Charge(ctx, "y1", SeedAccountID(4), 9); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil { // merges y1 into charge_ids
		t.Fatal(err)
	}
	if got := queryInt(t, a, "SELECT count(*) FROM charge_ids WHERE txn_id = 'y1'"); got != 1 {
		t.Fatalf("charge_ids holds y1 %d times; the test wants it merged", got)
	}

	before := balance(t, a, SeedAccountID(4))
	r, err := a.Charge(ctx, "y1", SeedAccountID(4), 9)
	if err != nil || !r.Replayed {
		t.Fatalf("retry of y1 = %+v, %v; want the original receipt", r, err)
	}
	if after := balance(t, a, SeedAccountID(4)); after != before {
		t.Errorf("balance %v after the retry; want %v", after, before)
	}
	if !ids.filter.ready {
		t.Error("the retry did not pass through the filter")
	}
	mustVerify(t, a)
}

// TestChargeFilterUnbuilt stops the filter's reading before the writer
// takes it up, as a failed read leaves it: every txnID is then looked up in
// charge_ids, and retries of merged charges are still replays.
func TestChargeFilterUnbuilt(t *testing.T) {
	l, ids := openSQLiteLedger(t, mergedLedger(t, "u", 20))
	defer l.Close()
	ids.filter.close()
	retryN(t, l, "u", 20)
	if ids.filter.ready || ids.filter.active() {
		t.Error("the stopped filter is in use")
	}
	mustVerify(t, l)
}
