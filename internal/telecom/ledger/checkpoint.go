package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpointing (SQLite). A commit appends the pages it changed to the WAL;
// a checkpoint copies them back into the database file, after which the WAL
// can start over from its beginning. SQLite's default has the committing
// connection checkpoint whenever the WAL exceeds 1000 pages, which, with a
// batch of charges changing a page per charge, meant the writer copied
// every batch a second time, and fsync'd the database file, before it could
// acknowledge it.
//
// Here the writer only appends. A checkpointer goroutine, on a connection
// of its own, copies the WAL back at most every ckptInterval, so that a
// page changed by many batches meanwhile is copied once; that never blocks
// the writer. A pass is work the writer shares two CPUs with: four short
// ones a second disturb the batches less than one long one (the charges'
// P99 at 50,000 a second, median of 7 runs, 24.8 against 31.3 ms), and
// copy hardly more, since most pages a pass copies (charge_ids', behind
// the merge) were changed once since the previous one anyway.
//
// What it cannot do alone is let the WAL start over: SQLite restarts the
// WAL when a writer begins a transaction with every frame copied back,
// and the writer never stops appending. So once the WAL is
// longer than walRestartBytes, the checkpointer copies until little is left
// and the writer, between two batches, copies that little itself; its next
// transaction then starts the WAL over.
//
// A pass fsyncs the WAL before it copies. A pass that copies every frame
// there is, such as the writer's, also fsyncs the database file after, and
// SQLite starts the WAL over only after such a pass: a restarted WAL never
// held the only copy of an acknowledged charge. (The other passes leave
// what they copied for the kernel to write back; until the WAL starts
// over, it holds those pages too. So the writer's pass waits for whatever
// of it has not reached the disk yet, and the batches with it: left to the
// kernel, everything copied since the last restart, up to 30 ms on a busy
// disk. So after each of its passes the checkpointer has the kernel start
// writing back what it copied, without waiting for it (startWriteback):
// the charges' P99 at 50,000 a second, median of 7 runs, went from 24.9
// to 18.1 ms. Fdatasyncing the database file instead, waiting, did not
// help: the WAL's fsyncs, which the batches' callers wait for, then queued
// behind those.)
const (
	// ckptInterval is the least time between two background passes.
	ckptInterval = 250 * time.Millisecond
	// walRestartBytes is the WAL size beyond which it is made to start over.
	walRestartBytes = 256 << 20
	// ckptConverged is how short a background pass must have been for the
	// rest to be left to the writer: the writer's pass copies what was
	// committed since that one started, about as much.
	ckptConverged = 5 * time.Millisecond
	// ckptMaxPasses bounds the passes spent converging at one time.
	ckptMaxPasses = 8
)

// sqliteCheckpointer is the SQLite store's checkpointer goroutine.
type sqliteCheckpointer struct {
	conn *sql.Conn // the checkpointer's own
	w    *sql.Conn // the writer's, for the writer's passes
	db   *os.File  // the database file, to start writing back what a pass copied

	// ckptInterval and walRestartBytes, in frames (tests change them).
	interval      atomic.Int64 // time.Duration
	restartFrames atomic.Int64

	mu    sync.Mutex    // held during a pass, the checkpointer's or the writer's
	ready atomic.Bool   // little is left to copy: the writer should finish
	kick  chan struct{} // a token: the writer committed
	quit  chan struct{}
	done  chan struct{}

	passes  atomic.Int64 // passes run, by either side
	endings atomic.Int64 // passes the writer ran to let the WAL start over
}

func newSQLiteCheckpointer(ctx context.Context, s *sqliteStore) (*sqliteCheckpointer, error) {
	var pageSize int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return nil, fmt.Errorf("ledger: sqlite: %w", err)
	}
	db, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("ledger: sqlite checkpointer: %w", err)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ledger: sqlite checkpointer: %w", err)
	}
	c := &sqliteCheckpointer{conn: conn, w: s.w, db: db,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	c.interval.Store(int64(ckptInterval))
	c.restartFrames.Store(walRestartBytes / max(pageSize, 512))
	go c.run()
	return c, nil
}

// pass runs one PASSIVE checkpoint on conn, which copies whatever no reader
// still needs and never waits for a lock. It returns the WAL's length in
// frames.
func (c *sqliteCheckpointer) pass(conn *sql.Conn) (walFrames int64, err error) {
	c.passes.Add(1)
	var busy, copied int64
	err = conn.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walFrames, &copied)
	return walFrames, err
}

func (c *sqliteCheckpointer) run() {
	defer close(c.done)
	pause := time.NewTimer(time.Duration(c.interval.Load()))
	for {
		select {
		case <-c.quit:
			return
		case <-c.kick:
		}
		c.mu.Lock()
		frames, err := c.pass(c.conn)
		startWriteback(c.db)
		if err == nil && frames >= c.restartFrames.Load() && !c.ready.Load() {
			for range ckptMaxPasses {
				start := time.Now()
				if _, err = c.pass(c.conn); err != nil || time.Since(start) < ckptConverged {
					break
				}
			}
			// A failed pass is left for the next round: the WAL only
			// grows meanwhile.
			c.ready.Store(err == nil)
		}
		c.mu.Unlock()
		pause.Reset(time.Duration(c.interval.Load()))
		select {
		case <-c.quit:
			return
		case <-pause.C:
		}
	}
}

// afterBatch is called by the writer between batches, outside any
// transaction.
func (c *sqliteCheckpointer) afterBatch() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
	if c.ready.Load() && c.mu.TryLock() {
		c.ready.Store(false)
		c.endings.Add(1)
		_, _ = c.pass(c.w) // if it fails, the WAL restarts another time
		c.mu.Unlock()
	}
}

// close stops the goroutine and releases its connection.
func (c *sqliteCheckpointer) close() error {
	close(c.quit)
	<-c.done
	return errors.Join(c.conn.Close(), c.db.Close())
}
