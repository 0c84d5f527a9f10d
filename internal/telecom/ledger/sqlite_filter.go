package ledger

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/bits-and-blooms/bloom/v3"
)

// Which txnIDs charge_ids may hold (SQLite).
//
// Every new txnID of a batch must be looked up in charge_ids, and nearly
// all of them are new: the lookup found nothing, a b-tree descent per
// charge, and it cost more the larger charge_ids grew. A Bloom filter of
// charge_ids' txnIDs answers "certainly not there" from memory for all but
// a small share of them (its false positives), which are then looked up.
//
// The filter is only ever too full, never missing a txnID that charge_ids
// holds:
//   - At start a goroutine reads every txnID in charge_ids into filters of
//     its own (build); until it is done, every txnID is looked up.
//   - The writer adds the txnIDs it merges into charge_ids, from before
//     that goroutine starts reading.
//   - Whenever another connection has written, the writer adds every
//     charge after the charge_ids_through it knew (chargeIDs.load), which
//     covers whatever the other connection merged.

// filterFalsePositives is each part's false-positive rate; a lookup that
// sees one merely reads charge_ids.
const filterFalsePositives = 0.001

// firstFilterPart is the capacity of a filter's first part. Each next part
// takes twice as many: the filter grows with charge_ids, and a test reads
// one part per doubling.
const firstFilterPart = 1 << 16

// txnFilter is a growing Bloom filter of txnIDs: a list of parts, the last
// of which takes what is added until it is full.
type txnFilter struct {
	parts []*bloom.BloomFilter
	room  uint // how many more the last part takes
	next  uint // the capacity of the next part
}

func (f *txnFilter) add(txnID string) { f.last().AddString(txnID) }

// last returns the part that takes the next txnID, counting it.
func (f *txnFilter) last() *bloom.BloomFilter {
	if f.room == 0 {
		if f.next == 0 {
			f.next = firstFilterPart
		}
		f.parts = append(f.parts, bloom.NewWithEstimates(f.next, filterFalsePositives))
		f.room, f.next = f.next, 2*f.next
	}
	f.room--
	return f.parts[len(f.parts)-1]
}

// mayHold reports whether txnID may have been added; false is certain.
func (f *txnFilter) mayHold(txnID string) bool {
	for _, p := range f.parts {
		if p.TestString(txnID) {
			return true
		}
	}
	return false
}

// chargeFilter is the writer's filter of charge_ids.
type chargeFilter struct {
	own   txnFilter          // what the writer added
	read  txnFilter          // what the build read
	ready bool               // built: a txnID neither holds is not in charge_ids
	built chan builtFilter   // the build in progress, nil once received
	stop  context.CancelFunc // stops the build
}

// builtFilter is what build read from charge_ids.
type builtFilter struct {
	f   txnFilter
	err error
}

// build starts reading every txnID in charge_ids into filters of their
// own, on conn, which it closes when done. The writer must be adding the
// txnIDs it merges by then.
func (c *chargeFilter) build(conn *sql.Conn) {
	ctx, stop := context.WithCancel(context.Background())
	c.built, c.stop = make(chan builtFilter, 1), stop
	go func(out chan<- builtFilter) {
		defer conn.Close()
		var b builtFilter
		b.err = readTxnIDs(ctx, conn, &b.f)
		out <- b
	}(c.built)
}

// readTxnIDs adds every txnID in charge_ids to f.
func readTxnIDs(ctx context.Context, conn *sql.Conn, f *txnFilter) error {
	// txn_id is charge_ids' key: the scan reads the table alone, in order.
	rs, err := conn.QueryContext(ctx, "SELECT txn_id FROM charge_ids")
	if err != nil {
		return fmt.Errorf("ledger: sqlite: txnID filter: %w", err)
	}
	defer rs.Close()
	var id sql.RawBytes
	for rs.Next() {
		if err := rs.Scan(&id); err != nil {
			return fmt.Errorf("ledger: sqlite: txnID filter: %w", err)
		}
		f.last().Add(id)
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("ledger: sqlite: txnID filter: %w", err)
	}
	return nil
}

// add records that charge_ids holds txnID.
func (c *chargeFilter) add(txnID string) { c.own.add(txnID) }

// active reports whether the filter is built or being built, and so must
// be told of every txnID charge_ids takes.
func (c *chargeFilter) active() bool { return c.ready || c.built != nil }

// excludes reports whether txnID is certainly not in charge_ids. Until the
// build is done it never is.
func (c *chargeFilter) excludes(txnID string) bool {
	if !c.ready {
		if c.built == nil {
			return false
		}
		select {
		case b := <-c.built:
			c.built = nil
			if b.err != nil {
				// Left unbuilt: every txnID is looked up, as before.
				return false
			}
			c.read, c.ready = b.f, true
		default:
			return false
		}
	}
	return !c.own.mayHold(txnID) && !c.read.mayHold(txnID)
}

// close stops a build in progress and waits for it to end.
func (c *chargeFilter) close() {
	if c.built != nil {
		c.stop()
		<-c.built
		c.built = nil
	}
}
