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

// request is one Charge or TopUp travelling to the writer and back. Its
// caller either waits on done (Charge, TopUp) or is told through cpl
// (ChargeAsync).
type request struct {
	kind    opKind
	txnID   string
	account string
	amount  money.Amount
	ctx     context.Context // nil for ChargeAsync: nobody gives up on it
	done    chan struct{}   // closed by the writer once receipt/err are final
	cpl     Completion      // or told the outcome

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

// run is the single writer goroutine. It waits for a request, then takes
// every request queued by then (up to maxBatch) without waiting for more: a
// caller therefore waits for at most the batch in flight plus its own, and
// under load batches grow by themselves to whatever queued while the
// previous one committed.
func (l *Ledger) run() {
	// A committed batch is handed to a second goroutine, which makes it
	// durable (store.durable) and answers it (index, statistics, waking
	// every caller), while the writer goes on with the next batch: with
	// SQLite the fsync of one batch overlaps the next one's work. The
	// hand-over waits for that goroutine to be free: while it waits, what
	// arrives queues for the writer's next batch, and one larger batch
	// writes fewer pages than several small ones that would share an
	// fsync anyway.
	committed := make(chan []*request)
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		l.syncAndAnswer(committed)
	}()
	defer func() {
		close(committed)
		<-synced
		close(l.stopped)
	}()

	var batch []*request
	for {
		if !l.waitForWork() {
			return
		}
		l.gate.Lock()
		batch = l.take(batch[:0])
		live := l.commitBatch(batch)
		l.gate.Unlock()
		clear(batch) // let answered requests be collected
		if len(live) > 0 {
			l.handOver(committed, live)
		}
		l.st.idle()
	}
}

// handOver gives a committed batch to the goroutine that makes it durable,
// doing the store's upkeep while that goroutine is still busy with the
// previous one.
func (l *Ledger) handOver(committed chan<- []*request, live []*request) {
	for {
		select {
		case committed <- live:
			return
		default:
		}
		if !l.st.upkeep() {
			committed <- live
			return
		}
	}
}

// syncAndAnswer makes the batches received on committed durable, one fsync
// for all those committed by then, and answers them in commit order, until
// committed is closed.
func (l *Ledger) syncAndAnswer(committed <-chan []*request) {
	var pending [][]*request
	for reqs := range committed {
		pending = append(pending[:0], reqs)
	more:
		for {
			select {
			case reqs, ok := <-committed:
				if !ok {
					break more
				}
				pending = append(pending, reqs)
			default:
				break more
			}
		}
		// After a failed fsync nothing is trusted to be durable any more,
		// not even what a later fsync reports written (the kernel may have
		// dropped the pages it could not write): every later batch fails
		// too.
		if l.syncErr == nil {
			l.syncErr = l.st.durable()
		}
		for _, reqs := range pending {
			if l.syncErr != nil && !reqs[0].failed {
				for _, r := range reqs {
					r.receipt = Receipt{}
					r.err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, l.syncErr)
					r.failed = true
				}
			}
			l.answer(reqs)
		}
		clear(pending)
	}
}

// waitForWork blocks until the queue holds a request; it returns false once
// the ledger is closed and the queue drained.
func (l *Ledger) waitForWork() bool {
	l.qmu.Lock()
	for len(l.queue) == 0 {
		if l.qclosed {
			l.qmu.Unlock()
			return false
		}
		l.qmu.Unlock()
		<-l.wake
		l.qmu.Lock()
	}
	l.qmu.Unlock()
	return true
}

// take moves up to maxBatch queued requests, oldest first, into buf and
// returns it. Submitters waiting for room are woken.
func (l *Ledger) take(buf []*request) []*request {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	if len(l.queue) <= l.maxBatch {
		// Everything: swap buffers rather than copy.
		buf, l.queue = l.queue, buf
	} else {
		buf = append(buf, l.queue[:l.maxBatch]...)
		n := copy(l.queue, l.queue[l.maxBatch:])
		clear(l.queue[n:])
		l.queue = l.queue[:n]
	}
	if l.space != nil {
		close(l.space)
		l.space = nil
	}
	return buf
}

// commitBatch applies batch in one transaction and returns the requests it
// handled, their outcomes set but not yet delivered.
func (l *Ledger) commitBatch(batch []*request) []*request {
	live := make([]*request, 0, len(batch))
	for _, r := range batch {
		if r.ctx != nil && r.ctx.Err() != nil {
			// The caller gave up before the batch started; nothing was
			// written for it, so skipping it keeps its retry exact.
			r.err = r.ctx.Err()
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return nil
	}
	var err error
	lookup := !l.st.insertFindsTaken()
	for attempt := 1; ; attempt++ {
		err = l.apply(live, lookup)
		if !lookup && errors.Is(err, errTxnTaken) {
			// A txnID of the batch was recorded before (a retry the index
			// did not know, say after a restart): the insert failed and
			// the transaction was rolled back. Again, looking them up.
			lookup = true
			attempt--
			continue
		}
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

// answer records a handled batch in the index and statistics, then tells
// its callers. Statistics come first so that a caller who has its answer
// also sees it counted.
func (l *Ledger) answer(reqs []*request) {
	if !reqs[0].failed {
		l.tally(reqs)
	}
	for _, r := range reqs {
		if r.cpl != nil {
			r.cpl.Complete(r.receipt, r.err)
		} else {
			close(r.done)
		}
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

// batchScratch is the writer's working memory for apply, reused from batch
// to batch so that a batch costs few allocations whatever its size.
type batchScratch struct {
	txnIDs   [2][]string // distinct txnIDs by kind, in queue order
	seen     [2]map[string]struct{}
	acctIDs  []string // distinct accounts, in queue order
	seenAcct map[string]struct{}
	first    [2]map[string]*request // the request writing each new txnID
	fresh    [2][]*request          // the requests writing new entries
}

// reset empties the scratch for the next attempt.
func (sc *batchScratch) reset() {
	for k := range sc.seen {
		if sc.seen[k] == nil {
			sc.seen[k], sc.first[k] = map[string]struct{}{}, map[string]*request{}
		}
		clear(sc.seen[k])
		clear(sc.first[k])
		clear(sc.txnIDs[k])
		sc.txnIDs[k] = sc.txnIDs[k][:0]
		clear(sc.fresh[k])
		sc.fresh[k] = sc.fresh[k][:0]
	}
	if sc.seenAcct == nil {
		sc.seenAcct = map[string]struct{}{}
	}
	clear(sc.seenAcct)
	clear(sc.acctIDs)
	sc.acctIDs = sc.acctIDs[:0]
}

// apply runs one attempt at committing reqs in a single transaction. Every
// business rule is decided in memory, in queue order, so a rejected request
// never aborts the transaction for the others; only a database failure
// does, and then the whole batch reports ErrOutcomeUnknown.
func (l *Ledger) apply(reqs []*request, lookup bool) (err error) {
	ctx := context.Background() // a batch serves many callers; none may cancel it
	at := now()

	sc := &l.scratch
	sc.reset()
	txnIDs, first, fresh := &sc.txnIDs, &sc.first, &sc.fresh
	for _, r := range reqs {
		r.reset()
		if _, ok := sc.seen[r.kind][r.txnID]; !ok {
			sc.seen[r.kind][r.txnID] = struct{}{}
			txnIDs[r.kind] = append(txnIDs[r.kind], r.txnID)
		}
		if _, ok := sc.seenAcct[r.account]; !ok {
			sc.seenAcct[r.account] = struct{}{}
			sc.acctIDs = append(sc.acctIDs, r.account)
		}
	}
	acctIDs := sc.acctIDs

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
	// another node) take precedence over everything else. Without lookup,
	// the batch assumes there are none, and the insert fails if there are.
	var existing [2]map[string]record
	for k := range txnIDs {
		if lookup && len(txnIDs[k]) > 0 {
			if existing[k], err = tx.find(ctx, opKind(k), txnIDs[k]); err != nil {
				return err
			}
		}
	}

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

	for _, a := range accts {
		if a.dirty {
			if err = tx.setBalances(ctx, accts); err != nil {
				return err
			}
			break
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
