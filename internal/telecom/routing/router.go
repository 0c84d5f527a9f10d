package routing

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Errors reported by the Router; Route wraps them in a *RouteError.
var (
	// ErrNoRoute reports a number that matches no prefix of the table.
	ErrNoRoute = errors.New("no route")
	// ErrAllTrunksDown reports that every trunk of the destination was
	// refused by its breaker or failed.
	ErrAllTrunksDown = errors.New("all trunks down")
	// ErrBadFailureRate is returned by SetFailureRate for a rate outside [0, 1].
	ErrBadFailureRate = errors.New("failure rate must be within [0, 1]")
)

// RouteError describes a call that could not be routed.
type RouteError struct {
	CallID      string
	Number      string // as dialed
	Destination string // set when the number matched a route
	Err         error  // a *NumberError, ErrNoRoute or ErrAllTrunksDown
}

// Error names the call and the reason.
func (e *RouteError) Error() string {
	var detail string
	var ne *NumberError
	switch {
	case errors.As(e.Err, &ne):
		detail = ne.detail()
	case e.Err == ErrNoRoute:
		detail = "no route for " + strconv.Quote(e.Number)
	case e.Err == ErrAllTrunksDown:
		detail = "all trunks down for destination " + strconv.Quote(e.Destination)
	default:
		detail = e.Err.Error()
	}
	if e.CallID == "" {
		return "routing: " + detail
	}
	return "routing: call " + strconv.Quote(e.CallID) + ": " + detail
}

// Unwrap returns the underlying error.
func (e *RouteError) Unwrap() error { return e.Err }

// Result describes a routed call.
type Result struct {
	CallID      string
	URI         string // SIP URI the call is sent to, e.g. sip:fortune@telecom.example.com
	Destination string
	Trunk       string
	Prefix      string // the table prefix that matched
	Attempts    int    // trunks tried, including the one that took the call; > 1 after failover
}

// Config tunes a Router. The zero value is usable.
type Config struct {
	// FailureThreshold is the number of consecutive failed attempts that
	// opens a trunk's breaker. Zero means 5.
	FailureThreshold uint32

	// CoolDown is how long an open breaker refuses calls before it lets
	// probe calls through (half-open). Zero means 10s.
	CoolDown time.Duration

	// HalfOpenProbes is how many calls a half-open breaker lets through;
	// that many consecutive successes close it, one failure reopens it.
	// Zero means 1.
	HalfOpenProbes uint32

	// OnStateChange, if set, is called on every breaker transition. It runs
	// on whichever goroutine caused the transition while that trunk's
	// breaker is locked, so it must return quickly and must not call the
	// Router; hand the event off instead, e.g. with a non-blocking send.
	OnStateChange func(trunk string, from, to BreakerState)
}

// Router routes calls over a routing table.
//
// Route may be called from any number of goroutines without locks: the
// table and its compiled form are immutable and published through an
// atomic pointer, and trunk state and counters live in atomics spread over
// shards that concurrent callers rarely share. Updates (LoadTable,
// SetFailureRate, Tick) are meant to come from a single owner goroutine,
// but every method is safe for concurrent use.
type Router struct {
	cfg   Config
	epoch time.Time

	snap atomic.Pointer[snapshot]
	mu   sync.Mutex // serializes LoadTable

	dropped atomic.Uint64
	shards  []*shard
	pool    sync.Pool // *shard; see shard
	next    atomic.Uint32

	agg     aggregate
	latency atomic.Pointer[latencyView]
}

// snapshot is everything Route needs, compiled from one Table.
type snapshot struct {
	table  *Table
	dests  []destination // parallel to table.dests
	trunks []*trunk      // parallel to table.trunks
	byName map[string]*trunk
}

// destination holds a destination's trunks grouped by ascending priority.
type destination struct {
	name   string
	groups []trunkGroup
}

type trunkGroup struct {
	total   uint32 // sum of member weights
	members []member
}

type member struct {
	t      *trunk
	weight uint32
	uri    string // precomputed so routing a call allocates nothing
}

// New returns a Router using table t, or DefaultTable if t is nil.
func New(t *Table, cfg Config) *Router {
	if cfg.FailureThreshold == 0 {
		cfg.FailureThreshold = 5
	}
	if cfg.CoolDown <= 0 {
		cfg.CoolDown = 10 * time.Second
	}
	if cfg.HalfOpenProbes == 0 {
		cfg.HalfOpenProbes = 1
	}
	if t == nil {
		t = DefaultTable()
	}
	r := &Router{cfg: cfg, epoch: time.Now()}
	// Two shards per P keep collisions rare when the pool hands the same
	// shard to two Ps (see shard).
	n := min(2*runtime.GOMAXPROCS(0), 64)
	r.shards = make([]*shard, n)
	for i := range r.shards {
		r.shards[i] = &shard{idx: i, hist: newHistogram()}
	}
	r.pool.New = func() any { return r.shards[int(r.next.Add(1)-1)%len(r.shards)] }
	r.agg = aggregate{spare: newHistogram(), window: newHistogram(), total: newHistogram()}
	_ = r.LoadTable(t) // fails only for a nil table
	return r
}

// LoadTable atomically replaces the routing table. Calls in flight finish
// on the old table. Trunks keep their breaker, failure rate and counters
// across loads as long as the new table declares a trunk of the same name.
// A table that failed to parse never reaches here, so a bad file leaves
// the running table unchanged.
func (r *Router) LoadTable(t *Table) error {
	if t == nil {
		return errors.New("routing: nil table")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var prev map[string]*trunk
	if old := r.snap.Load(); old != nil {
		prev = old.byName
	}
	s := &snapshot{
		table:  t,
		dests:  make([]destination, len(t.dests)),
		trunks: make([]*trunk, len(t.trunks)),
		byName: make(map[string]*trunk, len(t.trunks)),
	}
	hosts := make(map[string]string, len(t.trunks))
	for i, ts := range t.trunks {
		tr := prev[ts.Name]
		if tr == nil {
			tr = newTrunk(ts.Name, &r.cfg, len(r.shards), r.epoch)
		}
		s.trunks[i] = tr
		s.byName[ts.Name] = tr
		hosts[ts.Name] = ts.Host
	}
	for i, d := range t.dests {
		refs := slices.Clone(d.Trunks)
		slices.SortStableFunc(refs, func(a, b TrunkRef) int { return a.Priority - b.Priority })
		cd := destination{name: d.Name}
		for j, ref := range refs {
			if j == 0 || ref.Priority != refs[j-1].Priority {
				cd.groups = append(cd.groups, trunkGroup{})
			}
			g := &cd.groups[len(cd.groups)-1]
			g.total += uint32(ref.Weight)
			g.members = append(g.members, member{
				t:      s.byName[ref.Trunk],
				weight: uint32(ref.Weight),
				uri:    "sip:" + d.User + "@" + hosts[ref.Trunk],
			})
		}
		s.dests[i] = cd
	}
	r.snap.Store(s)
	return nil
}

// Table returns the table in use.
func (r *Router) Table() *Table { return r.snap.Load().table }

// Entries returns the routes of the table in use, in table order.
func (r *Router) Entries() []Entry { return r.Table().Entries() }

// SetFailureRate sets the probability, in [0, 1], that a call attempt on
// the named trunk fails. It takes effect immediately for all callers.
func (r *Router) SetFailureRate(trunk string, rate float64) error {
	if !(rate >= 0 && rate <= 1) { // also rejects NaN
		return fmt.Errorf("routing: trunk %q: %w, got %v", trunk, ErrBadFailureRate, rate)
	}
	t := r.snap.Load().byName[trunk]
	if t == nil {
		return fmt.Errorf("routing: %w %q", ErrUnknownTrunk, trunk)
	}
	t.failureRate.Store(math.Float64bits(rate))
	return nil
}

// TrunkStatus describes a trunk's breaker and traffic.
type TrunkStatus struct {
	Name        string
	Host        string
	State       BreakerState
	FailureRate float64
	Attempts    uint64 // calls tried on the trunk: Successes + Failures
	Successes   uint64
	Failures    uint64
	Rejected    uint64 // calls that skipped the trunk because its breaker was open or probing
}

// Trunks reports every trunk of the table in use, in table order.
func (r *Router) Trunks() []TrunkStatus {
	s := r.snap.Load()
	out := make([]TrunkStatus, len(s.trunks))
	for i, t := range s.trunks {
		out[i] = t.status(s.table.trunks[i].Host)
	}
	return out
}

// AddDropped counts n calls refused before routing, e.g. by overload
// protection in front of the Router.
func (r *Router) AddDropped(n uint64) { r.dropped.Add(n) }

// Route picks a trunk for a call to number and attempts it.
//
// The number is normalized and matched against the table by longest
// prefix. The destination's trunks are tried lowest priority number first,
// picking among equal priorities at random in proportion to weight and
// skipping trunks whose breaker is open; a failed attempt fails over to
// the next trunk. Errors are *RouteError values wrapping a *NumberError,
// ErrNoRoute or ErrAllTrunksDown.
func (r *Router) Route(callID, number string) (Result, error) {
	// Since on a Time with a monotonic reading reads only the monotonic
	// clock, about half the cost of time.Now, which also reads wall time.
	start := time.Since(r.epoch)
	sh := r.pool.Get().(*shard)
	res, why, err := r.route(callID, number, sh.idx)
	sh.record(time.Since(r.epoch)-start, why)
	r.pool.Put(sh)
	return res, err
}

func (r *Router) route(callID, number string, shard int) (Result, failure, error) {
	var buf [maxNormalized]byte
	n, err := normalize(&buf, number)
	if err != nil {
		return Result{}, failInvalidNumber, &RouteError{CallID: callID, Number: number, Err: err}
	}
	s := r.snap.Load()
	e := s.table.match(buf[:n])
	if e < 0 {
		return Result{}, failNoRoute, &RouteError{CallID: callID, Number: number, Err: ErrNoRoute}
	}
	d := &s.dests[s.table.entryDest[e]]
	attempts := 0
	for gi := range d.groups {
		g := &d.groups[gi]
		var tried uint64
		remaining := g.total
		for range g.members {
			i := g.pick(tried, remaining)
			m := &g.members[i]
			tried |= 1 << i
			remaining -= m.weight
			switch m.t.attempt(&m.t.counts[shard]) {
			case outcomeOK:
				return Result{
					CallID:      callID,
					URI:         m.uri,
					Destination: d.name,
					Trunk:       m.t.name,
					Prefix:      s.table.entries[e].Prefix,
					Attempts:    attempts + 1,
				}, failNone, nil
			case outcomeFailed:
				attempts++
			}
		}
	}
	return Result{}, failAllTrunksDown, &RouteError{CallID: callID, Number: number, Destination: d.name, Err: ErrAllTrunksDown}
}

// pick chooses an untried member at random in proportion to weight;
// remaining is the total weight of the untried members.
func (g *trunkGroup) pick(tried uint64, remaining uint32) int {
	if len(g.members) == 1 {
		return 0
	}
	x := rand.Uint32N(remaining)
	last := 0
	for i := range g.members {
		if tried&(1<<i) != 0 {
			continue
		}
		w := g.members[i].weight
		if x < w {
			return i
		}
		x -= w
		last = i
	}
	return last // unreachable while remaining matches the untried weights
}

// newHistogram returns a latency histogram in nanoseconds. Two significant
// digits (1% resolution) keep it at a few kilobytes, so every shard can
// have one and merging them stays cheap.
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(maxLatency), 2)
}
