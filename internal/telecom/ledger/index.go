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
// entry, or not caching one, costs one lookup in the writer, never
// correctness.
//
// Its memory holds no pointers. With a string per txnID and per account, a
// full index was millions of pointers, all of which the garbage collector
// traced at every cycle while the writer and its callers waited on its
// assists: each cycle stalled the charges for tens of milliseconds. Here a
// shard maps a hash of the txnID to its entry, and keeps the entry's txnID
// and account as bytes in an arena, against which every hit is checked.
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
	m    map[uint64]uint32 // hash of a txnID → its entry in ring
	ring []indexEntry
	next int      // the oldest entry, once ring is full
	text []byte   // the entries' txnIDs and accounts, appended
	dead int      // bytes of text that evicted entries left behind
	_    [64]byte // keep neighbouring shards' locks off one cache line
}

// indexEntry is one cached record; its txnID and then its account are
// text[off:off+idLen+acctLen].
type indexEntry struct {
	hash    uint64
	amount  money.Amount
	atMilli int64
	off     uint32
	idLen   uint8 // at most MaxTxnIDLen
	acctLen uint8 // at most MaxAccountIDLen
}

// newTxnIndex returns an index holding about capacity entries.
func newTxnIndex(capacity int) *txnIndex {
	per := max(capacity/indexShards, 1)
	ix := &txnIndex{seed: maphash.MakeSeed(), perShard: per}
	for i := range ix.shards {
		ix.shards[i].m = make(map[uint64]uint32)
	}
	return ix
}

func (ix *txnIndex) locate(txnID string) (*indexShard, uint64) {
	h := maphash.String(ix.seed, txnID)
	return &ix.shards[h%indexShards], h
}

// find returns txnID's entry in s, which the caller has locked.
func (s *indexShard) find(h uint64, txnID string) (*indexEntry, bool) {
	i, ok := s.m[h]
	if !ok {
		return nil, false
	}
	e := &s.ring[i]
	return e, string(s.text[e.off:e.off+uint32(e.idLen)]) == txnID
}

// get returns the record for txnID, if cached. Its account is the caller's
// account string when the two are equal, so that the usual hit, a retry
// naming the same account, allocates nothing.
func (ix *txnIndex) get(txnID, account string) (record, bool) {
	s, h := ix.locate(txnID)
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.find(h, txnID)
	if !ok {
		return record{}, false
	}
	r := record{account: account, amount: e.amount, atMilli: e.atMilli}
	start := e.off + uint32(e.idLen)
	if acct := s.text[start : start+uint32(e.acctLen)]; string(acct) != account {
		r.account = string(acct)
	}
	return r, true
}

// put caches the record for txnID, evicting the shard's oldest entry when
// full. A txnID whose hash another cached txnID has is left out.
func (ix *txnIndex) put(txnID string, r record) {
	if len(txnID) > MaxTxnIDLen || len(r.account) > MaxAccountIDLen {
		return // never accepted; the checks keep the lengths in a uint8
	}
	s, h := ix.locate(txnID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.m[h]; taken {
		return // this txnID, whose entry never changes, or a collision
	}
	e := indexEntry{hash: h, amount: r.amount, atMilli: r.atMilli, off: uint32(len(s.text)),
		idLen: uint8(len(txnID)), acctLen: uint8(len(r.account))}
	var i int
	if len(s.ring) < ix.perShard {
		i = len(s.ring)
		s.ring = append(s.ring, indexEntry{})
	} else {
		i = s.next
		old := &s.ring[i]
		delete(s.m, old.hash)
		s.dead += int(old.idLen) + int(old.acctLen)
		s.next = (s.next + 1) % ix.perShard
		if s.dead > len(s.text)/2 {
			s.compact(i)
			e.off = uint32(len(s.text))
		}
	}
	s.text = append(append(s.text, txnID...), r.account...)
	s.ring[i] = e
	s.m[h] = uint32(i)
}

// compact drops the text of evicted entries, leaving out ring[skip], which
// is being replaced.
func (s *indexShard) compact(skip int) {
	text := make([]byte, 0, 2*(len(s.text)-s.dead))
	for i := range s.ring {
		if i == skip {
			continue
		}
		e := &s.ring[i]
		n := uint32(e.idLen) + uint32(e.acctLen)
		off := uint32(len(text))
		text = append(text, s.text[e.off:e.off+n]...)
		e.off = off
	}
	s.text, s.dead = text, 0
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
