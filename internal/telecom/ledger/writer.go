package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"observer/internal/telecom/money"
)

// opKind is the kind of a queued request.
type opKind uint8

const (
	opCharge opKind = iota
	opTopUp
)

// String names the kind for error messages.
func (k opKind) String() string {
	if k == opTopUp {
		return "top-up"
	}
	return "charge"
}

// maxAttempts bounds how often a batch is re-run after a retryable error
// (a deadlock or serialisation failure against another node).
const maxAttempts = 3

// request is one Charge or TopUp travelling to the writer and back.
type request struct {
	kind    opKind
	txnID   string
	account string
	amount  money.Amount
	ctx     context.Context
	done    chan struct{} // closed by the writer once receipt/err are final

	receipt Receipt
	err     error
	failed  bool // the batch's transaction failed: err is ErrOutcomeUnknown

	// Writer scratch, reset at the start of every attempt.
	accepted bool     // this request's own entry is written by the batch
	orig     record   // the entry its txnID resolves to, once known
	dupOf    *request // earlier request in the batch with the same txnID
}

// reset clears the outcome of a previous attempt.
func (r *request) reset() {
	r.receipt, r.err, r.failed = Receipt{}, nil, false
	r.accepted, r.orig, r.dupOf = false, record{}, nil
}

// resolve answers r from the entry already recorded under its txnID: the
// original receipt if account and amount match, a conflict otherwise.
func (r *request) resolve(rec record) {
	r.orig = rec
	if rec.account == r.account && rec.amount == r.amount {
		r.receipt, r.err = rec.receipt(r.txnID, true), nil
		return
	}
	r.receipt = Receipt{}
	r.err = &ConflictError{
		TxnID:           r.txnID,
		Account:         r.account,
		Amount:          r.amount,
		ExistingAccount: rec.account,
		ExistingAmount:  rec.amount,
	}
}

// receipt turns a stored record into the receipt for txnID.
func (rec record) receipt(txnID string, replayed bool) Receipt {
	return Receipt{
		TxnID:    txnID,
		Account:  rec.account,
		Amount:   rec.amount,
		At:       time.UnixMilli(rec.atMilli).UTC(),
		Replayed: replayed,
	}
}

// run is the single writer goroutine. It blocks for one request, then takes
// every other request already queued (up to maxBatch) without waiting for
// more: a caller therefore waits for at most the batch in flight plus its
// own, and under load batches grow by themselves.
func (l *Ledger) run() {
	// Answering a batch (index, statistics, waking every caller) is handed
	// to a second goroutine so that the writer can start the next
	// transaction at once: the writer is the one serial stage, and its busy
	// time bounds the ledger's throughput.
	answers := make(chan []*request, 2)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		for reqs := range answers {
			l.answer(reqs)
		}
	}()
	defer func() {
		close(answers)
		<-answered
		close(l.stopped)
	}()

	batch := make([]*request, 0, l.maxBatch)
	for first := range l.queue {
		l.gate.Lock()
		batch = append(batch[:0], first)
	fill:
		for len(batch) < l.maxBatch {
			select {
			case r, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if live := l.commitBatch(batch); len(live) > 0 {
			answers <- live
		}
		l.gate.Unlock()
		clear(batch) // let answered requests be collected
	}
}

// commitBatch applies batch in one transaction and returns the requests it
// handled, their outcomes set but not yet delivered.
func (l *Ledger) commitBatch(batch []*request) []*request {
	live := make([]*request, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			// The caller gave up before the batch started; nothing was
			// written for it, so skipping it keeps its retry exact.
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return nil
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = l.apply(live)
		if err == nil || attempt >= maxAttempts || !l.st.retryable(err) {
			break
		}
	}
	if err != nil {
		for _, r := range live {
			r.receipt = Receipt{}
			r.err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
			r.failed = true
		}
	}
	return live
}

// answer records a handled batch in the index and statistics, then wakes
// its callers. Statistics come first so that a caller who has its answer
// also sees it counted.
func (l *Ledger) answer(reqs []*request) {
	if !reqs[0].failed {
		l.tally(reqs)
	}
	for _, r := range reqs {
		close(r.done)
	}
}

// tally updates the index and statistics after a successful commit.
func (l *Ledger) tally(reqs []*request) {
	var charges, topups, idem, conflicts, rejected int64
	for _, r := range reqs {
		isConflict := errors.Is(r.err, ErrIdempotencyConflict)
		if r.kind == opCharge && (r.accepted || r.err == nil || isConflict) {
			// Whatever the answer, r.orig is now a committed charge.
			l.index.put(r.txnID, r.orig)
		}
		switch {
		case r.accepted && r.kind == opCharge:
			charges++
		case r.accepted:
			topups++
		case r.err == nil:
			idem++
		case isConflict:
			conflicts++
		default:
			rejected++
		}
	}
	l.stats.charges.Add(charges)
	l.stats.topups.Add(topups)
	l.stats.idem.Add(idem)
	l.stats.conflicts.Add(conflicts)
	l.stats.rejected.Add(rejected)
	l.stats.batches.Add(1)
	n := int64(len(reqs))
	l.stats.batched.Add(n)
	for m := l.stats.maxBatch.Load(); n > m && !l.stats.maxBatch.CompareAndSwap(m, n); m = l.stats.maxBatch.Load() {
	}
}

// apply runs one attempt at committing reqs in a single transaction. Every
// business rule is decided in memory, in queue order, so a rejected request
// never aborts the transaction for the others; only a database failure
// does, and then the whole batch reports ErrOutcomeUnknown.
func (l *Ledger) apply(reqs []*request) (err error) {
	ctx := context.Background() // a batch serves many callers; none may cancel it
	at := now()

	var txnIDs [2][]string
	seen := [2]map[string]bool{{}, {}}
	var acctIDs []string
	seenAcct := map[string]bool{}
	for _, r := range reqs {
		r.reset()
		if !seen[r.kind][r.txnID] {
			seen[r.kind][r.txnID] = true
			txnIDs[r.kind] = append(txnIDs[r.kind], r.txnID)
		}
		if !seenAcct[r.account] {
			seenAcct[r.account] = true
			acctIDs = append(acctIDs, r.account)
		}
	}

	tx, err := l.st.begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.rollback()
		}
	}()

	accts, err := tx.loadAccounts(ctx, acctIDs)
	if err != nil {
		return err
	}
	// Entries committed earlier (by this node before a restart, or by
	// another node) take precedence over everything else.
	var existing [2]map[string]record
	for k := range txnIDs {
		if len(txnIDs[k]) > 0 {
			if existing[k], err = tx.find(ctx, opKind(k), txnIDs[k]); err != nil {
				return err
			}
		}
	}

	var fresh [2][]*request
	first := [2]map[string]*request{{}, {}}
	for _, r := range reqs {
		k := r.kind
		if rec, ok := existing[k][r.txnID]; ok {
			r.resolve(rec)
			continue
		}
		if o, ok := first[k][r.txnID]; ok {
			r.dupOf = o // answered once o's fate is known
			continue
		}
		a := accts[r.account]
		if a == nil {
			r.err = unknownAccount(r.account)
			continue
		}
		if k == opCharge {
			// balance + limit >= amount, arranged so nothing can overflow.
			if a.balance < r.amount-a.limit {
				avail, oerr := a.balance.Add(a.limit)
				if oerr != nil {
					avail = money.MaxAmount
				}
				r.err = &InsufficientFundsError{Account: r.account, Amount: r.amount, Available: avail}
				continue
			}
			a.balance -= r.amount
		} else {
			nb, oerr := a.balance.Add(r.amount)
			if oerr != nil {
				r.err = fmt.Errorf("%w: account %q", ErrBalanceOverflow, r.account)
				continue
			}
			a.balance = nb
		}
		a.dirty = true
		r.accepted = true
		r.orig = record{account: r.account, amount: r.amount, atMilli: at.UnixMilli()}
		first[k][r.txnID] = r
		fresh[k] = append(fresh[k], r)
	}

	for k := range fresh {
		if len(fresh[k]) == 0 {
			continue
		}
		skipped, err := tx.insert(ctx, opKind(k), fresh[k], at)
		if err != nil {
			return err
		}
		if len(skipped) == 0 {
			continue
		}
		// Another node committed these txnIDs after our lookup: the
		// database's UNIQUE constraint made our insert a no-op, so undo the
		// in-memory balance change and answer from the winning row.
		recs, err := tx.find(ctx, opKind(k), skipped)
		if err != nil {
			return err
		}
		for _, id := range skipped {
			r := first[k][id]
			rec, ok := recs[id]
			if r == nil || !ok {
				return fmt.Errorf("ledger: %s %q was neither inserted nor found", opKind(k), id)
			}
			a := accts[r.account]
			if r.kind == opCharge {
				a.balance += r.amount
			} else {
				a.balance -= r.amount
			}
			r.accepted = false
			r.resolve(rec)
		}
	}
	for _, r := range reqs {
		if r.dupOf != nil {
			r.resolve(r.dupOf.orig)
		}
	}

	bal := make(map[string]money.Amount)
	for id, a := range accts {
		if a.dirty {
			bal[id] = a.balance
		}
	}
	if len(bal) > 0 {
		if err = tx.setBalances(ctx, bal); err != nil {
			return err
		}
	}
	if err = tx.commit(ctx); err != nil {
		return err
	}
	for _, r := range reqs {
		if r.accepted {
			r.receipt = r.orig.receipt(r.txnID, false)
		}
	}
	return nil
}
