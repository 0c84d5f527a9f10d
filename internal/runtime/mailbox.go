package runtime

// mailbox is an unbounded FIFO ring buffer. It is guarded by its process's
// mutex; the length is mirrored in an atomic on the process so the observer
// can read it without the lock.
type mailbox struct {
	buf  []any
	head int
	n    int
}

func (m *mailbox) push(v any) {
	if m.n == len(m.buf) {
		m.grow()
	}
	i := m.head + m.n
	if i >= len(m.buf) {
		i -= len(m.buf)
	}
	m.buf[i] = v
	m.n++
}

func (m *mailbox) grow() {
	size := 2 * len(m.buf)
	if size == 0 {
		size = 4
	}
	nb := make([]any, size)
	m.copyTo(nb, m.n)
	m.buf = nb
	m.head = 0
}

// copyTo copies the first k messages into dst.
func (m *mailbox) copyTo(dst []any, k int) {
	if k > m.n {
		k = m.n
	}
	first := min(k, len(m.buf)-m.head)
	copy(dst, m.buf[m.head:m.head+first])
	copy(dst[first:], m.buf[:k-first])
}

func (m *mailbox) pop() (any, bool) {
	if m.n == 0 {
		return nil, false
	}
	v := m.buf[m.head]
	m.buf[m.head] = nil
	m.head++
	if m.head == len(m.buf) {
		m.head = 0
	}
	m.n--
	return v, true
}

// peek returns a copy of the first k messages without removing them.
func (m *mailbox) peek(k int) []any {
	k = min(k, m.n)
	out := make([]any, k)
	m.copyTo(out, k)
	return out
}

// at returns the i-th message (0 is the oldest).
func (m *mailbox) at(i int) any {
	j := m.head + i
	if j >= len(m.buf) {
		j -= len(m.buf)
	}
	return m.buf[j]
}

// removeAt removes the i-th message, keeping the order of the rest.
func (m *mailbox) removeAt(i int) any {
	v := m.at(i)
	for k := i; k < m.n-1; k++ {
		a := m.head + k
		if a >= len(m.buf) {
			a -= len(m.buf)
		}
		b := a + 1
		if b >= len(m.buf) {
			b -= len(m.buf)
		}
		m.buf[a] = m.buf[b]
	}
	last := m.head + m.n - 1
	if last >= len(m.buf) {
		last -= len(m.buf)
	}
	m.buf[last] = nil
	m.n--
	return v
}

// release drops the buffer, as a hibernating or dead process does.
func (m *mailbox) release() {
	m.buf, m.head, m.n = nil, 0, 0
}
