package runtime

import "sync/atomic"

// mailbox is an unbounded FIFO ring buffer. It is guarded by its process's
// mutex; the length is mirrored in an atomic on the process so the observer
// can read it without the lock.
//
// A behaviour's drainer takes messages from the front in batches, one lock
// acquisition for up to drainBatch messages. Until a batch's message is
// started it still counts as queued: the mailbox's front is the batch's
// unstarted messages (cur), then the ring.
type mailbox struct {
	buf  []any
	head int32
	n    int32
	cur  *batch
}

// drainBatch is how many messages a drainer takes per lock acquisition.
const drainBatch = 32

// batch belongs to a worker goroutine and holds the messages it took from
// the mailbox it drains. Its slots and n change only under the process's
// lock, and only from the draining goroutine (the drainer itself, or the
// process's own code running on it), which may therefore read them without
// the lock; next is the index of the first message not yet started.
type batch struct {
	msgs [drainBatch]any
	n    int
	next atomic.Int32
}

// size is the number of messages in the ring (not counting a batch).
func (m *mailbox) size() int { return int(m.n) }

// slot maps the i-th message to its index in buf.
func (m *mailbox) slot(i int) int {
	j := int(m.head) + i
	if j >= len(m.buf) {
		j -= len(m.buf)
	}
	return j
}

func (m *mailbox) push(v any) {
	if int(m.n) == len(m.buf) {
		m.grow()
	}
	m.buf[m.slot(int(m.n))] = v
	m.n++
}

func (m *mailbox) grow() {
	size := 2 * len(m.buf)
	if size == 0 {
		size = 2
	}
	nb := make([]any, size)
	m.copyTo(nb, int(m.n))
	m.buf = nb
	m.head = 0
}

// copyTo copies the first k messages of the ring into dst.
func (m *mailbox) copyTo(dst []any, k int) {
	k = min(k, int(m.n))
	first := min(k, len(m.buf)-int(m.head))
	copy(dst, m.buf[m.head:int(m.head)+first])
	copy(dst[first:], m.buf[:k-first])
}

func (m *mailbox) pop() (any, bool) {
	if m.n == 0 {
		return nil, false
	}
	v := m.buf[m.head]
	m.buf[m.head] = nil
	m.head = int32(m.slot(1))
	m.n--
	return v, true
}

// take moves up to drainBatch messages from the ring's front into b.
func (m *mailbox) take(b *batch) {
	clear(b.msgs[:b.n])
	k := min(int(m.n), drainBatch)
	m.copyTo(b.msgs[:k], k)
	for i := 0; i < k; i++ {
		m.buf[m.slot(i)] = nil
	}
	if k > 0 {
		m.head = int32(m.slot(k % len(m.buf)))
	}
	m.n -= int32(k)
	b.n = k
	b.next.Store(0)
	m.cur = b
}

// untake puts the batch's unstarted messages back at the ring's front, in
// order, and detaches the batch.
func (m *mailbox) untake() {
	b := m.cur
	if b == nil {
		return
	}
	m.cur = nil
	rest := b.msgs[b.next.Load():b.n]
	for int(m.n)+len(rest) > len(m.buf) {
		m.grow()
	}
	for i := len(rest) - 1; i >= 0; i-- {
		m.head--
		if m.head < 0 {
			m.head += int32(len(m.buf))
		}
		m.buf[m.head] = rest[i]
		m.n++
	}
	b.n = int(b.next.Load())
}

// peek returns a copy of the first k messages without removing them.
func (m *mailbox) peek(k int) []any {
	var pre []any
	if b := m.cur; b != nil {
		pre = b.msgs[b.next.Load():b.n]
	}
	k = min(k, len(pre)+int(m.n))
	out := make([]any, k)
	c := copy(out, pre)
	m.copyTo(out[c:], k-c)
	return out
}

// at returns the i-th message of the ring (0 is the oldest).
func (m *mailbox) at(i int) any { return m.buf[m.slot(i)] }

// removeAt removes the ring's i-th message, keeping the order of the rest.
func (m *mailbox) removeAt(i int) any {
	v := m.at(i)
	for k := i; k < int(m.n)-1; k++ {
		m.buf[m.slot(k)] = m.buf[m.slot(k+1)]
	}
	m.buf[m.slot(int(m.n)-1)] = nil
	m.n--
	return v
}

// release drops the buffer, as a hibernating or dead process does.
func (m *mailbox) release() {
	m.buf, m.head, m.n, m.cur = nil, 0, 0, nil
}

// flushDown removes the first DownMsg with ref, looking at the batch's
// unstarted messages first. It is called by the process's own code, which
// runs on the draining goroutine, so it may edit the batch.
func (m *mailbox) flushDown(ref Ref) bool {
	if b := m.cur; b != nil {
		for i := int(b.next.Load()); i < b.n; i++ {
			if d, ok := b.msgs[i].(DownMsg); ok && d.Ref == ref {
				copy(b.msgs[i:], b.msgs[i+1:b.n])
				b.n--
				b.msgs[b.n] = nil
				return true
			}
		}
	}
	for i := 0; i < int(m.n); i++ {
		if d, ok := m.at(i).(DownMsg); ok && d.Ref == ref {
			m.removeAt(i)
			return true
		}
	}
	return false
}
