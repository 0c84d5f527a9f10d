package routing

import (
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Reason classifies a failed route in metrics.
type Reason string

// Failure reasons.
const (
	// ReasonInvalidNumber counts numbers rejected by Normalize.
	ReasonInvalidNumber Reason = "invalid_number"
	// ReasonNoRoute counts numbers matching no prefix.
	ReasonNoRoute Reason = "no_route"
	// ReasonAllTrunksDown counts calls no trunk of the destination took.
	ReasonAllTrunksDown Reason = "all_trunks_down"
)

// ReasonOf classifies an error returned by Route; it returns "" for nil or
// an unrelated error.
func ReasonOf(err error) Reason {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrInvalidNumber):
		return ReasonInvalidNumber
	case errors.Is(err, ErrNoRoute):
		return ReasonNoRoute
	case errors.Is(err, ErrAllTrunksDown):
		return ReasonAllTrunksDown
	}
	return ""
}

// failure indexes per-reason counters; failNone means routed.
type failure uint8

const (
	failInvalidNumber failure = iota
	failNoRoute
	failAllTrunksDown
	numFailures
	failNone failure = numFailures
)

var reasons = [numFailures]Reason{ReasonInvalidNumber, ReasonNoRoute, ReasonAllTrunksDown}

// maxLatency caps recorded route latencies; anything slower is recorded as
// this value rather than lost.
const maxLatency = time.Minute

// shard holds the counters and latency histogram of the calls routed by,
// mostly, one P.
//
// HdrHistogram is not safe for concurrent use, and a single shared one
// behind a mutex would make every call contend on that mutex and its cache
// lines. Router keeps a fixed set of shards and hands them out through a
// sync.Pool, whose per-P caching returns a goroutine the shard last used on
// the same P, so a shard's mutex and lines are normally touched by one CPU.
// The pool may drop shards at garbage collection and two Ps may then
// receive the same one from New; the mutex keeps that correct, only slower.
type shard struct {
	mu   sync.Mutex
	hist *hdrhistogram.Histogram // guarded by mu; swapped out by Tick
	idx  int                     // index of this shard's slot in per-trunk counters

	routed atomic.Uint64
	failed [numFailures]atomic.Uint64

	_ [128 - 8 - 8 - 8 - 8 - 8*numFailures]byte // keep shards on separate cache lines
}

func (s *shard) record(d time.Duration, why failure) {
	if why == failNone {
		s.routed.Add(1)
	} else {
		s.failed[why].Add(1)
	}
	s.mu.Lock()
	_ = s.hist.RecordValue(int64(min(d, maxLatency))) // cannot fail: clamped to the histogram's range
	s.mu.Unlock()
}

// aggregate is the owner's side of latency recording, guarded by mu.
type aggregate struct {
	mu     sync.Mutex
	spare  *hdrhistogram.Histogram // empty; swapped into the next shard
	window *hdrhistogram.Histogram // calls since the previous Tick
	total  *hdrhistogram.Histogram // calls since New
}

// latencyView is what Tick publishes for Metrics to read.
type latencyView struct {
	at            time.Time
	total, recent LatencySummary
}

// LatencySummary summarizes route latencies.
// Values have two significant digits (1% resolution).
type LatencySummary struct {
	Count int64 // calls measured
	P50   time.Duration
	P99   time.Duration
	P999  time.Duration // 99.9th percentile
	Max   time.Duration
}

// Metrics is a copy of a Router's counters, read by Metrics or MetricsInto.
//
// The read takes no lock and is not one atomic snapshot: each counter is
// exact as of some instant during the read, and every counter only grows,
// so successive reads never see one go backwards (unless LoadTable drops a
// trunk from the table, which drops its counters from Trunks). Counters are
// read in field order, Routed and Failed first and the trunks last; since a
// call's trunk attempt is counted before the call's outcome, the trunks'
// Successes never lag behind a Routed that was read before them.
type Metrics struct {
	Routed  uint64            // calls routed to a trunk
	Failed  map[Reason]uint64 // calls Route rejected, by reason (every Reason is present)
	Dropped uint64            // calls refused before routing; see Router.AddDropped

	// Latency covers every Route call since the Router was created and
	// RecentLatency those between the last two calls of Tick. Both are
	// as of LatencyAt, the time of the last Tick (zero before the first):
	// percentiles come from HdrHistograms that Tick merges and scans, and
	// publishes with one atomic pointer store, so the two summaries and
	// LatencyAt always belong together.
	Latency       LatencySummary
	RecentLatency LatencySummary
	LatencyAt     time.Time

	// Trunks are those of the table in use, in table order. Their State is
	// read from the router's lock-free mirror of each breaker rather than
	// from the breaker itself (see trunk), so the read never waits on a
	// breaker's mutex; an open breaker whose cool-down has run out shows
	// as half-open, as the breaker would report it.
	Trunks []TrunkStatus
}

// Metrics returns a copy of the router's metrics in newly allocated memory.
// Callers that read metrics often (a UI, an exporter, a benchmark) should
// keep one Metrics and use MetricsInto, which does not allocate.
func (r *Router) Metrics() Metrics {
	var m Metrics
	r.MetricsInto(&m)
	return m
}

// MetricsInto overwrites *m with the router's metrics (see Metrics for what
// a read guarantees). It reuses m.Failed and the array behind m.Trunks, so
// once m has held a reading of a table with as many trunks it allocates
// nothing: the counters are atomics read in place, and latency percentiles
// are the ones the most recent Tick published, because merging histograms
// and scanning them for percentiles takes far longer than reading counters
// and this must stay cheap enough to poll (well under 10µs).
//
// MetricsInto is safe for concurrent use with every other method, but
// concurrent calls must not share m, nor may m's map and slice be read
// while it runs.
func (r *Router) MetricsInto(m *Metrics) {
	var failed [numFailures]uint64
	var routed uint64
	for _, s := range r.shards {
		routed += s.routed.Load()
		for i := range s.failed {
			failed[i] += s.failed[i].Load()
		}
	}
	m.Routed = routed
	if m.Failed == nil {
		m.Failed = make(map[Reason]uint64, numFailures)
	} else if len(m.Failed) != int(numFailures) {
		clear(m.Failed) // keys put there by the caller
	}
	for i, n := range failed {
		m.Failed[reasons[i]] = n // an existing key: no allocation
	}
	m.Dropped = r.dropped.Load()
	if v := r.latency.Load(); v != nil {
		m.Latency, m.RecentLatency, m.LatencyAt = v.total, v.recent, v.at
	} else {
		m.Latency, m.RecentLatency, m.LatencyAt = LatencySummary{}, LatencySummary{}, time.Time{}
	}

	s := r.snap.Load()
	m.Trunks = slices.Grow(m.Trunks[:0], len(s.trunks))[:len(s.trunks)]
	now := int64(-1) // read once, and only if a breaker is open
	for i, t := range s.trunks {
		ts := &m.Trunks[i]
		*ts = TrunkStatus{
			Name:        t.name,
			Host:        s.table.trunks[i].Host,
			State:       BreakerState(t.state.Load()),
			FailureRate: math.Float64frombits(t.failureRate.Load()),
		}
		if ts.State == StateOpen {
			if now < 0 {
				now = int64(time.Since(t.epoch))
			}
			if now >= t.openUntil.Load() {
				// The breaker turns half-open when next asked.
				ts.State = StateHalfOpen
			}
		}
		for j := range t.counts {
			c := &t.counts[j]
			ts.Successes += c.successes.Load()
			ts.Failures += c.failures.Load()
			ts.Rejected += c.rejected.Load()
		}
		ts.Attempts = ts.Successes + ts.Failures
	}
}

// Tick folds the latencies recorded since the previous Tick into the
// published percentiles. The owner calls it periodically (e.g. once a
// second); each shard is locked only to swap its histogram for an empty
// one, so routing is not held up while histograms are merged and scanned.
func (r *Router) Tick() {
	a := &r.agg
	a.mu.Lock()
	defer a.mu.Unlock()
	a.window.Reset()
	for _, s := range r.shards {
		s.mu.Lock()
		h := s.hist
		s.hist = a.spare
		s.mu.Unlock()
		a.window.Merge(h)
		h.Reset()
		a.spare = h
	}
	a.total.Merge(a.window)
	r.latency.Store(&latencyView{at: time.Now(), total: summarize(a.total), recent: summarize(a.window)})
}

var percentiles = []float64{50, 99, 99.9}

func summarize(h *hdrhistogram.Histogram) LatencySummary {
	if h.TotalCount() == 0 {
		return LatencySummary{}
	}
	p := h.ValueAtPercentilesSlice(percentiles)
	return LatencySummary{
		Count: h.TotalCount(),
		P50:   time.Duration(p[0]),
		P99:   time.Duration(p[1]),
		P999:  time.Duration(p[2]),
		Max:   time.Duration(h.Max()),
	}
}
