package ui

import "time"

// histPoint is one second of the Overview's charts.
type histPoint struct {
	at                      time.Time
	routed, failed, dropped float64 // calls per second
	p50, p99, p999          float64 // route latency, milliseconds
	charges                 float64 // charges per second
	heap, rss               float64 // bytes
	msgs                    float64 // runtime messages per second
}

// historyLen is how many samples the charts keep: ten minutes at one a second.
const historyLen = 600

// history is a ring of the last historyLen points.
type history struct {
	pts  [historyLen]histPoint
	head int // next slot to write
	n    int
}

func (h *history) add(p histPoint) {
	h.pts[h.head] = p
	h.head = (h.head + 1) % historyLen
	h.n = min(h.n+1, historyLen)
}

// series appends the last n values of field, oldest first, to dst.
func (h *history) series(dst []float64, n int, field func(*histPoint) float64) []float64 {
	n = min(n, h.n)
	for i := n; i > 0; i-- {
		j := (h.head - i + historyLen) % historyLen
		dst = append(dst, field(&h.pts[j]))
	}
	return dst
}

// last is the newest point, or the zero point.
func (h *history) last() histPoint {
	if h.n == 0 {
		return histPoint{}
	}
	return h.pts[(h.head-1+historyLen)%historyLen]
}

// evRing keeps the newest events, a fixed number of them.
type evRing struct {
	rows []evRow
	head int // next slot to write
	n    int
}

func newEvRing(size int) evRing { return evRing{rows: make([]evRow, size)} }

func (r *evRing) push(e evRow) {
	r.rows[r.head] = e
	r.head = (r.head + 1) % len(r.rows)
	r.n = min(r.n+1, len(r.rows))
}

// at returns the i-th newest row (0 is the newest).
func (r *evRing) at(i int) *evRow {
	return &r.rows[(r.head-1-i+2*len(r.rows))%len(r.rows)]
}

func (r *evRing) len() int { return r.n }
