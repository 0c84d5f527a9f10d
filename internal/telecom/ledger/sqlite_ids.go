package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// Where the SQLite ledger indexes txnIDs.
//
// A charge appends its row to charges, whose b-tree is ordered by seq, so a
// batch of charges writes a few pages at the end of the table. The index
// that makes a txnID unique, charge_ids, is ordered by txnID, and txnIDs
// arrive in no useful order: written with each batch, it cost one index page
// per charge, anywhere in the index, and the more charges the ledger held
// the more pages (and bytes, and fsync time) each batch wrote.
//
// So the writer fills charge_ids in the background. The txnIDs of charges
// not yet in charge_ids wait in memory (chargeIDs.pending), where every
// lookup sees them first; no txnID can be charged twice, because the writer
// looks each new txnID up in pending and in charge_ids, inside the
// write-locked transaction that charges it. Once mergeAt of them have
// gathered, the writer sorts them and merges them into charge_ids a chunk at
// a time, in txnID order: a page of the index is then written once for all
// the txnIDs of the chunk that fall into it, not once per charge. The
// writer merges while it waits for the previous batch's fsync (mergeAlone),
// which takes the work out of the batches' way; if that falls behind, the
// batches' transactions merge too (merge).
//
// Everything pending is also in charges, so nothing is lost with the
// memory: ledger_meta's charge_ids_through says that every charge up to
// that seq is in charge_ids, and the writer rebuilds pending from the
// charges after it (load) when it starts, and whenever another connection
// has written to the database. A txnID found twice then is reported, and
// the ledger takes no more charges: `observer ledger verify` names it.

// Defaults of chargeIDs' thresholds.
const (
	// defaultMergeAt is how many pending txnIDs start a merge. The more
	// there are, the more of them share an index page; each costs about
	// 100 bytes of memory until merged.
	defaultMergeAt = 1 << 15
	// minMergeChunk is the fewest txnIDs a batch's transaction merges
	// when the merging has fallen behind (see merge). A batch merges
	// twice as many txnIDs as it charges, if that is more, so merging
	// catches up with charging.
	minMergeChunk = 256
)

// chargeIDs is the writer's record of the charges not yet in charge_ids.
type chargeIDs struct {
	mu      sync.RWMutex // the writer holds it to change pending; findOne to read it
	pending map[string]pendingCharge
	through int64 // charge_ids holds every charge with seq <= through
	loaded  bool  // pending was read from the database
	failed  bool  // a merge in the writer's spare time failed: only batches merge
	version int64 // the data_version it was read at
	mergeAt int

	// The merge in progress: pending's txnIDs when it started, sorted, of
	// which gen[:next] are in charge_ids. Every charge up to genMax is in
	// gen or merged already.
	gen    []string
	genMax int64
	next   int
	// sorted delivers the next merge's txnIDs, sorted on a goroutine of
	// its own so that the writer does not stop for it; nil while none is
	// being sorted. A load discards the one in flight (epoch).
	sorted chan sortedIDs
	epoch  uint64
	// credit is how many txnIDs mergeAlone may merge now (see mergePace).
	credit int

	// filter tells the txnIDs certainly not in charge_ids (see
	// sqlite_filter.go).
	filter chargeFilter

	buf []byte
}

// sortedIDs is a merge's txnIDs, sorted, as of epoch.
type sortedIDs struct {
	ids   []string
	max   int64
	epoch uint64
}

// pendingCharge is a committed charge whose txnID is not in charge_ids.
type pendingCharge struct {
	rec record
	seq int64
}

// addedCharge is a charge a batch wrote, for pending once committed.
type addedCharge struct {
	txnID string
	pendingCharge
}

func newChargeIDs() *chargeIDs {
	return &chargeIDs{pending: map[string]pendingCharge{}, mergeAt: defaultMergeAt}
}

// get returns the pending charge txnID names, for readers other than the
// writer.
func (c *chargeIDs) get(txnID string) (record, bool) {
	c.mu.RLock()
	p, ok := c.pending[txnID]
	c.mu.RUnlock()
	return p.rec, ok
}

// load reads pending and through from the database, on conn, inside the
// writer's transaction. A txnID found in two charges fails it.
//
// Once the filter is in use, load also adds to it every charge after the
// charge_ids_through it knew: whatever another connection merged into
// charge_ids since is among them.
func (c *chargeIDs) load(ctx context.Context, conn *sql.Conn) error {
	var through int64
	err := conn.QueryRowContext(ctx,
		"SELECT CAST(value AS INTEGER) FROM ledger_meta WHERE key = 'charge_ids_through'").Scan(&through)
	if err != nil {
		return fmt.Errorf("ledger: sqlite: charge_ids_through: %w", err)
	}
	from, catchUp := through, c.filter.active()
	if catchUp {
		from = min(from, c.through)
	}
	rs, err := conn.QueryContext(ctx, `SELECT c.seq, c.txn_id, c.account_id, c.amount, c.created_at, i.seq
		FROM charges AS c LEFT JOIN charge_ids AS i ON i.txn_id = c.txn_id
		WHERE c.seq > ? ORDER BY c.seq`, from)
	if err != nil {
		return fmt.Errorf("ledger: sqlite: pending txnIDs: %w", err)
	}
	defer rs.Close()
	pending := map[string]pendingCharge{}
	for rs.Next() {
		var (
			p      pendingCharge
			id, at string
			merged sql.NullInt64
		)
		if err := rs.Scan(&p.seq, &id, &p.rec.account, &p.rec.amount, &at, &merged); err != nil {
			return fmt.Errorf("ledger: sqlite: pending txnIDs: %w", err)
		}
		if catchUp {
			c.filter.add(id)
		}
		if p.seq <= through {
			continue // read for the filter alone
		}
		if merged.Valid && merged.Int64 == p.seq {
			continue
		}
		if merged.Valid {
			return duplicateCharge(id, merged.Int64, p.seq)
		}
		if other, dup := pending[id]; dup {
			return duplicateCharge(id, other.seq, p.seq)
		}
		if p.rec.atMilli, err = parseMilli(at); err != nil {
			return err
		}
		pending[id] = p
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("ledger: sqlite: pending txnIDs: %w", err)
	}
	c.mu.Lock()
	c.pending, c.through, c.loaded, c.failed = pending, through, true, false
	c.gen, c.genMax, c.next = nil, 0, 0
	c.sorted = nil
	c.epoch++
	c.mu.Unlock()
	return nil
}

// duplicateCharge is the error for a txnID found in two charges, which the
// ledger never writes; someone else did.
func duplicateCharge(txnID string, seq1, seq2 int64) error {
	return fmt.Errorf("ledger: sqlite: txnID %q is charged twice (charges %d and %d); "+
		"no more charges are taken until it is resolved (see observer ledger verify)", txnID, seq1, seq2)
}

// merge writes the next chunk of the merge in progress to charge_ids, on
// conn inside a batch's transaction, if the merges done in the writer's
// spare time (mergeAlone) have fallen behind. batch is the number of
// charges the transaction writes. It returns how many txnIDs it merged, for
// committed.
func (c *chargeIDs) merge(ctx context.Context, conn *sql.Conn, batch int) (int, error) {
	if len(c.pending) < 2*c.mergeAt || !c.due() {
		return 0, nil
	}
	return c.mergeChunk(ctx, conn, max(minMergeChunk, 2*batch))
}

// due reports whether a merge is in progress, starting one if its txnIDs
// are sorted, or their sorting if enough are pending.
func (c *chargeIDs) due() bool {
	return c.loaded && (c.gen != nil || c.nextGen())
}

// aloneChunk is how many txnIDs mergeAlone merges in one transaction: well
// under a millisecond's work, so that the writer is soon back for the next
// batch.
const aloneChunk = 256

// The pace of merging in the writer's spare time: each charge committed
// lets mergeAlone merge mergePace txnIDs, and at most maxMergeCredit may
// be saved up. Merging as fast as the spare time allowed took a merge's
// 32,768 txnIDs in a fifth of the time the next one took to gather, and
// the writer, busy merging, made the batches of that fifth wait: every
// merge was a spike in the charges' latency. Paced at one txnID per
// charge, it spreads over the whole time the next merge's txnIDs take to
// gather, and the writer's load stays even: at two per charge it spread
// over half of it, and the batches of that half still waited (the
// charges' P99 at 50,000 a second, median of 7 runs, 27.6 against 31.3
// ms). Should it fall behind, the batches merge too (see merge).
const (
	mergePace      = 1
	maxMergeCredit = 4 * aloneChunk
)

// paced reports whether the charges committed have earned mergeAlone its
// next chunk of the merge in progress.
func (c *chargeIDs) paced() bool {
	return c.credit >= min(aloneChunk, len(c.gen)-c.next)
}

// mergeAlone merges the next chunk of the merge in progress in a
// transaction of its own, which need not be durable: a crash only leaves
// the txnIDs pending, to be read again. The writer runs it while it waits
// for the previous batch's fsync. If another connection wrote meanwhile it
// merges nothing and has the next batch read pending again.
func (c *chargeIDs) mergeAlone(ctx context.Context, conn *sql.Conn, dataVersion *sql.Stmt) error {
	var n int
	ok, err := c.ownTx(ctx, conn, dataVersion, func() (err error) {
		n, err = c.mergeChunk(ctx, conn, aloneChunk)
		return err
	})
	if !ok {
		c.loaded = false // the next batch reads pending again
		return err
	}
	c.credit -= n
	c.committed(nil, n)
	return nil
}

// ownTx runs write in a write transaction of its own on conn and commits
// it, unless another connection has written since pending was read, which
// dataVersion, read under the write lock, tells. It reports whether write
// ran and was committed.
func (c *chargeIDs) ownTx(ctx context.Context, conn *sql.Conn, dataVersion *sql.Stmt, write func() error) (committed bool, err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return false, err
	}
	defer func() {
		if !committed {
			// Ignored: after a failed COMMIT SQLite may have rolled back.
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	var v int64
	if err := dataVersion.QueryRowContext(ctx).Scan(&v); err != nil {
		return false, err
	}
	if v != c.version {
		return false, nil
	}
	if err := write(); err != nil {
		return false, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return false, err
	}
	return true, nil
}

// mergeChunk writes up to size txnIDs of the merge in progress to
// charge_ids, and charge_ids_through with the last of them.
func (c *chargeIDs) mergeChunk(ctx context.Context, conn *sql.Conn, size int) (int, error) {
	chunk := c.gen[c.next:min(len(c.gen), c.next+size)]
	if err := c.insert(ctx, conn, chunk); err != nil {
		return 0, err
	}
	if c.next+len(chunk) == len(c.gen) {
		if err := c.setThrough(ctx, conn, c.genMax); err != nil {
			return 0, err
		}
	}
	return len(chunk), nil
}

// nextGen starts the next merge if its txnIDs are sorted, and starts
// sorting them once enough are pending. It reports whether a merge is in
// progress.
func (c *chargeIDs) nextGen() bool {
	if c.sorted == nil {
		if len(c.pending) < c.mergeAt {
			return false
		}
		ids := make([]string, 0, len(c.pending))
		var top int64
		for id, p := range c.pending {
			ids = append(ids, id)
			top = max(top, p.seq)
		}
		c.sorted = make(chan sortedIDs, 1)
		go func(out chan<- sortedIDs, epoch uint64) {
			slices.Sort(ids)
			out <- sortedIDs{ids: ids, max: top, epoch: epoch}
		}(c.sorted, c.epoch)
		return false
	}
	select {
	case g := <-c.sorted:
		c.sorted = nil
		if g.epoch != c.epoch {
			return false // pending was read again meanwhile
		}
		c.gen, c.genMax, c.next = g.ids, g.max, 0
		return true
	default:
		return false
	}
}

// flush merges every pending txnID, in one transaction of its own; the
// writer calls it when the ledger closes, so that the next start has
// nothing to read back. If another connection wrote since pending was
// read, it leaves them to the next start.
func (c *chargeIDs) flush(ctx context.Context, conn *sql.Conn, dataVersion *sql.Stmt) error {
	if !c.loaded || len(c.pending) == 0 {
		return nil
	}
	ids := make([]string, 0, len(c.pending))
	top := c.through
	for id, p := range c.pending {
		ids = append(ids, id)
		top = max(top, p.seq)
	}
	slices.Sort(ids)
	ok, err := c.ownTx(ctx, conn, dataVersion, func() error {
		if err := c.insert(ctx, conn, ids); err != nil {
			return err
		}
		return c.setThrough(ctx, conn, top)
	})
	if !ok {
		return err
	}
	c.mu.Lock()
	clear(c.pending)
	c.through, c.gen, c.next, c.sorted = top, nil, 0, nil
	c.mu.Unlock()
	return nil
}

// insert writes the pending txnIDs ids to charge_ids. Its PRIMARY KEY fails
// it for a txnID that is there already.
func (c *chargeIDs) insert(ctx context.Context, conn *sql.Conn, ids []string) error {
	b := append(c.buf[:0], '{')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
		b = append(b, ':')
		b = strconv.AppendInt(b, c.pending[id].seq, 10)
	}
	b = append(b, '}')
	c.buf = b
	res, err := conn.ExecContext(ctx,
		"INSERT OR FAIL INTO charge_ids (txn_id, seq) SELECT j.key, j.value FROM json_each(?) AS j", string(b))
	if isUniqueViolation(err) {
		return fmt.Errorf("ledger: sqlite: a pending txnID is in charge_ids already: %w", err)
	}
	if err != nil {
		return fmt.Errorf("ledger: sqlite: merge txnIDs: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(ids)) {
		return fmt.Errorf("ledger: sqlite: %d of %d txnIDs merged (%v)", n, len(ids), err)
	}
	return nil
}

func (c *chargeIDs) setThrough(ctx context.Context, conn *sql.Conn, seq int64) error {
	_, err := conn.ExecContext(ctx,
		"UPDATE ledger_meta SET value = ? WHERE key = 'charge_ids_through'", strconv.FormatInt(seq, 10))
	return err
}

// committed applies a committed transaction to pending: the charges it
// added, and the merged txnIDs of the merge in progress.
func (c *chargeIDs) committed(added []addedCharge, merged int) {
	if len(added) == 0 && merged == 0 {
		return
	}
	c.credit = min(c.credit+mergePace*len(added), maxMergeCredit)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range added {
		c.pending[a.txnID] = a.pendingCharge
	}
	if merged == 0 {
		return
	}
	for _, id := range c.gen[c.next : c.next+merged] {
		delete(c.pending, id)
		c.filter.add(id)
	}
	c.next += merged
	if c.next == len(c.gen) {
		c.through = c.genMax
		c.gen, c.genMax, c.next = nil, 0, 0
	}
}
