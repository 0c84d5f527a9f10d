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
//
// Neither ring nor text is ever copied to grow while the shard fills: the
// shards fill at one pace, so slices grown by append doubled in all of them
// within the same few batches, and copying them all at once stalled the
// answers to those batches for milliseconds. ring is allocated whole at the
// start, and text is a circular buffer sized for typical txnIDs and
// accounts: as eviction is first in, first out, the live text is one run
// from the oldest entry's text to tail, and a new entry's text goes where
// evicted ones left room. Only txnIDs and accounts longer than that guess
// make text grow, copying it once per doubling. Memory allocated but not
// yet used costs address space only.
type indexShard struct {
	mu   sync.RWMutex
	m    map[uint64]uint32 // hash of a txnID → its entry in ring
	ring []indexEntry      // its capacity is the shard's
	next int               // the oldest entry, once ring is full
	text []byte            // circular: the entries' txnIDs and accounts
	tail uint32            // where the newest entry's text ends
	_    [64]byte          // keep neighbouring shards' locks off one cache line
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

// indexTextPerEntry is the text a shard starts with per entry: enough for a
// UUID (36 bytes) and an account of 9 such as ACC-00001.
const indexTextPerEntry = 48

// newTxnIndex returns an index holding about capacity entries.
func newTxnIndex(capacity int) *txnIndex {
	per := max(capacity/indexShards, 1)
	ix := &txnIndex{seed: maphash.MakeSeed(), perShard: per}
	for i := range ix.shards {
		s := &ix.shards[i]
		s.m = make(map[uint64]uint32)
		s.ring = make([]indexEntry, 0, per)
		s.text = make([]byte, per*indexTextPerEntry)
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
	var i int
	if len(s.ring) < ix.perShard {
		i = len(s.ring)
		s.ring = append(s.ring, indexEntry{})
	} else {
		i = s.next
		delete(s.m, s.ring[i].hash)
		s.next = (s.next + 1) % ix.perShard
	}
	n := len(txnID) + len(r.account)
	off := s.room(i, n)
	copy(s.text[off:], txnID)
	copy(s.text[off+len(txnID):], r.account)
	s.tail = uint32(off + n)
	s.ring[i] = indexEntry{hash: h, amount: r.amount, atMilli: r.atMilli, off: uint32(off),
		idLen: uint8(len(txnID)), acctLen: uint8(len(r.account))}
	s.m[h] = uint32(i)
}

// room returns where in text the n bytes of a new entry's text go, which
// ring[slot] is about to hold: after tail, or from the start of text if they
// do not fit before its end, without reaching the oldest live entry's text.
// If there is no such room it grows text first.
func (s *indexShard) room(slot, n int) int {
	oldest, live := s.oldest(slot)
	if !live {
		if n > len(s.text) {
			s.text = make([]byte, 2*n)
		}
		return 0
	}
	head, tail := int(s.ring[oldest].off), int(s.tail)
	switch {
	case head < tail && tail+n <= len(s.text):
		return tail
	case head < tail && n < head:
		return 0
	case head > tail && tail+n < head:
		return tail
	}
	return s.grow(slot, oldest, n)
}

// oldest returns the slot of the oldest entry other than slot, which is
// being replaced, and whether there is one.
func (s *indexShard) oldest(slot int) (int, bool) {
	o := 0
	if len(s.ring) == cap(s.ring) {
		o = (slot + 1) % len(s.ring) // the ring is full: slot was the oldest
	}
	if o == slot {
		return 0, false
	}
	return o, true
}

// grow copies the live text, oldest first, to the start of a text twice as
// large (or more, to make room for n bytes), and returns where the n bytes
// go.
func (s *indexShard) grow(slot, oldest, n int) int {
	text := make([]byte, 2*(len(s.text)+n))
	off := 0
	for j := oldest; j != slot; j = (j + 1) % len(s.ring) {
		e := &s.ring[j]
		k := int(e.idLen) + int(e.acctLen)
		copy(text[off:], s.text[e.off:int(e.off)+k])
		e.off = uint32(off)
		off += k
	}
	s.text = text
	return off
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
