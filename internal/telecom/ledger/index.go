package ledger

import (
	"hash/maphash"
	"sync"

	"observer/internal/telecom/money"
)

// record is what the ledger remembers about a committed charge or top-up.
type record struct {
	account string
	amount  money.Amount
	atMilli int64 // commit time, Unix milliseconds
}

// indexShards spreads the index over independently locked maps so that
// concurrent idempotent retries rarely contend on one lock.
const indexShards = 64

// txnIndex is a bounded in-memory cache of committed charges (txnID →
// record). It lets a retried charge be answered without touching the disk.
// It is only a cache: the database stays the source of truth, so evicting an
// entry costs one lookup in the writer, never correctness.
type txnIndex struct {
	seed     maphash.Seed
	perShard int
	shards   [indexShards]indexShard
}

// indexShard is one lock's worth of the index. ring remembers insertion order
// so the oldest entry is evicted first (a FIFO is enough: retries cluster
// shortly after the original request).
type indexShard struct {
	mu   sync.RWMutex
	m    map[string]record
	ring []string
	next int
	_    [64]byte // keep neighbouring shards' locks off one cache line
}

// newTxnIndex returns an index holding about capacity entries.
func newTxnIndex(capacity int) *txnIndex {
	per := max(capacity/indexShards, 1)
	ix := &txnIndex{seed: maphash.MakeSeed(), perShard: per}
	for i := range ix.shards {
		ix.shards[i].m = make(map[string]record)
	}
	return ix
}

func (ix *txnIndex) shard(txnID string) *indexShard {
	return &ix.shards[maphash.String(ix.seed, txnID)%indexShards]
}

// get returns the record for txnID, if cached.
func (ix *txnIndex) get(txnID string) (record, bool) {
	s := ix.shard(txnID)
	s.mu.RLock()
	r, ok := s.m[txnID]
	s.mu.RUnlock()
	return r, ok
}

// put caches the record for txnID, evicting the shard's oldest entry when full.
func (ix *txnIndex) put(txnID string, r record) {
	s := ix.shard(txnID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[txnID]; ok {
		return
	}
	if len(s.ring) < ix.perShard {
		s.ring = append(s.ring, txnID)
	} else {
		delete(s.m, s.ring[s.next])
		s.ring[s.next] = txnID
		s.next = (s.next + 1) % ix.perShard
	}
	s.m[txnID] = r
}

// len returns the number of cached entries.
func (ix *txnIndex) len() int {
	n := 0
	for i := range ix.shards {
		s := &ix.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
