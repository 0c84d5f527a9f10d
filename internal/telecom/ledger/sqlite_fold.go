package ledger

import (
	"context"
	"fmt"
	"strconv"
)

// Where the SQLite ledger keeps balances up to date.
//
// SQLite writes every page a transaction changed to the WAL in full, and a
// batch of charges names accounts all over the balances table: writing
// every balance it changed cost a batch every page of the table, 200 KiB
// for 10,000 accounts, whatever its size, most of what the batch wrote.
//
// So the accounts are divided into slices of 1 << sliceShift by number, and
// a batch writes the balances of one slice in turn (more when there are
// many slices, so that each gets its turn within foldLag batches), with the
// last charge and top-up they include, its marks, in balance_marks. An
// account's balance is its row in balances plus its charges and top-ups
// past its slice's marks, which the view account_balances adds; see
// migrations/sqlite/0004_balance_marks.sql. The writer knows every
// balance, in its account cache, and remembers which accounts' rows lag
// (folds.unfolded), so that their slice's turn writes them.
//
// That memory is only as good as the cache: whenever the writer starts
// over with an empty cache (at start, after another connection wrote, after
// a failed commit) its next transaction first folds every slice from the
// database itself (foldAllSQL), before it reads a balance.

const (
	// sliceShift: an account's slice is its num >> sliceShift. The view
	// balance_tails computes the same.
	sliceShift = 10
	// foldLag is the most batches a slice waits for its turn.
	foldLag = 16
)

// balanceFolds is the writer's record of which balances lag.
type balanceFolds struct {
	all      bool  // the next transaction folds every slice first
	slices   int64 // the slices with marks are 0 to slices-1
	next     int64 // the next batch's first slice
	unfolded map[int64]map[string]struct{}
}

// sliceOf returns the slice of the account numbered num.
func sliceOf(num int64) int64 { return num >> sliceShift }

// turn returns the slices the next batch folds: [from, to).
func (f *balanceFolds) turn() (from, to int64) {
	if f.slices == 0 {
		return 0, 0
	}
	n := (f.slices + foldLag - 1) / foldLag
	return f.next, min(f.next+n, f.slices)
}

// lag records that the balances row of account id, numbered num, lags.
func (f *balanceFolds) lag(id string, num int64) {
	s := sliceOf(num)
	if f.unfolded[s] == nil {
		f.unfolded[s] = map[string]struct{}{}
	}
	f.unfolded[s][id] = struct{}{}
}

// folded records a committed transaction that folded slices [from, to).
func (f *balanceFolds) folded(from, to int64) {
	for s := from; s < to; s++ {
		clear(f.unfolded[s])
	}
	if to > from {
		f.next = to % f.slices
	}
}

// foldAllSQL brings every balances row up to date, sets every slice's marks
// to the last charge and top-up, and gives every slice with accounts its
// marks.
var foldAllSQL = []string{
	`UPDATE balances SET balance = balance + t.delta FROM balance_tails AS t WHERE balances.account = t.account`,
	`INSERT INTO balance_marks (slice, charges_through, topups_through)
		SELECT DISTINCT num >> ` + strconv.Itoa(sliceShift) + `,
			coalesce((SELECT max(seq) FROM charges), 0), coalesce((SELECT max(seq) FROM topups), 0)
		FROM accounts WHERE true
		ON CONFLICT (slice) DO UPDATE SET
			charges_through = excluded.charges_through, topups_through = excluded.topups_through`,
}

// foldAll runs foldAllSQL in the writer's transaction and starts the
// record of lagging balances over.
func (s *sqliteStore) foldAll(ctx context.Context) error {
	for _, q := range foldAllSQL {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("ledger: sqlite: fold balances: %w", err)
		}
	}
	f := &s.folds
	if err := s.w.QueryRowContext(ctx, "SELECT coalesce(max(slice) + 1, 0) FROM balance_marks").Scan(&f.slices); err != nil {
		return fmt.Errorf("ledger: sqlite: fold balances: %w", err)
	}
	f.next = 0
	f.unfolded = map[int64]map[string]struct{}{}
	return nil
}

// lagging reports whether the writer left balances rows lagging.
func (f *balanceFolds) lagging() bool {
	for _, ids := range f.unfolded {
		if len(ids) > 0 {
			return true
		}
	}
	return false
}

// foldOnClose brings every balances row up to date in a transaction of its
// own, if the writer left any lagging, so that a closed ledger's file can
// be read without the view. Like the merge of pending txnIDs at close, it
// is left to the next writer if another connection wrote meanwhile.
func (s *sqliteStore) foldOnClose(ctx context.Context) error {
	if !s.folds.lagging() {
		return nil
	}
	_, err := s.ids.ownTx(ctx, s.w, s.ws.dataVersion, func() error { return s.foldAll(ctx) })
	return err
}
