package telecom

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
)

// LoadGenName is the registered name of the load generator.
const LoadGenName = "load_generator"

// loadTick is how often the open-loop generator starts the calls that are
// due; calls keep their intended start times, so latency is measured from
// when a call should have started, without coordinated omission.
const loadTick = 10 * time.Millisecond

// LoadGen is the handle of the load generator process.
type LoadGen struct {
	cfg      LoadConfig
	sessions *Sessions
	prefix   string // unique to this start of the node

	rate     atomic.Uint64 // float64 bits: calls/s, read by the observer
	closed   atomic.Bool
	issued   atomic.Uint64
	startErr atomic.Uint64
	lagged   atomic.Uint64 // calls skipped because the generator fell behind
}

// NewLoadGen prepares the load generator.
func NewLoadGen(cfg LoadConfig, sessions *Sessions) *LoadGen {
	// Call IDs become billing txnIDs, so they must never repeat across
	// starts of the node on the same ledger: each start gets its own prefix.
	g := &LoadGen{cfg: cfg, sessions: sessions, prefix: strconv.FormatInt(time.Now().UnixNano(), 36)}
	rate := cfg.Rate
	if !cfg.Enabled {
		rate = 0
	}
	g.rate.Store(math.Float64bits(rate))
	g.closed.Store(cfg.Mode == "closed")
	return g
}

// Rate is the open-loop rate in calls per second.
func (g *LoadGen) Rate() float64 { return math.Float64frombits(g.rate.Load()) }

// LoadStats are the generator's counters.
type LoadStats struct {
	Rate        float64
	Closed      bool
	Concurrency int
	Issued      uint64
	StartFailed uint64
	Lagged      uint64
}

// Stats reads the counters.
func (g *LoadGen) Stats() LoadStats {
	return LoadStats{Rate: g.Rate(), Closed: g.closed.Load(), Concurrency: g.cfg.Concurrency,
		Issued: g.issued.Load(), StartFailed: g.startErr.Load(), Lagged: g.lagged.Load()}
}

type setRateReq struct{ rate float64 }
type setModeReq struct {
	closed      bool
	concurrency int
}

// SetRate changes the open-loop rate while running; 0 pauses the load.
func (g *LoadGen) SetRate(c runtime.Caller, rate float64) error {
	if !(rate >= 0 && rate <= 10_000_000) {
		return fmt.Errorf("load rate must be within 0..10000000 calls/s, got %v", rate)
	}
	_, err := c.Call(runtime.Name(LoadGenName), setRateReq{rate}, CallTimeout)
	return err
}

// Adjust steps the rate up (×1.25) or down (×0.8), as the UI's + and - do.
func (g *LoadGen) Adjust(c runtime.Caller, up bool) (float64, error) {
	r := g.Rate()
	switch {
	case up && r < 8:
		r = 10
	case up:
		r *= 1.25
	default:
		r *= 0.8
		if r < 1 {
			r = 0
		}
	}
	r = math.Round(r)
	return r, g.SetRate(c, r)
}

// SetClosedLoop switches to closed loop with n calls kept in flight, or
// back to open loop (n == 0).
func (g *LoadGen) SetClosedLoop(c runtime.Caller, n int) error {
	if n < 0 {
		return fmt.Errorf("concurrency must not be negative, got %d", n)
	}
	_, err := c.Call(runtime.Name(LoadGenName), setModeReq{closed: n > 0, concurrency: n}, CallTimeout)
	return err
}

// Start is the child start function of the load generator.
func (g *LoadGen) Start(p *runtime.Process) (runtime.PID, error) {
	return genserver.StartLink(p, &loadGen{g: g}, nil, genserver.Options{Name: LoadGenName, Module: LoadGenName, Version: "1"})
}

type loadGen struct{ g *LoadGen }

type loadState struct {
	t0          time.Time
	sinceT0     uint64 // calls issued since t0
	rate        float64
	closed      bool
	concurrency int
	inflight    int
	rng         *rand.Rand
	cum         []int // cumulative number weights
	next        uint64
}

type loadTickMsg struct{}

func (l *loadGen) Init(p *runtime.Process, _ any) genserver.Result {
	cfg := l.g.cfg
	st := &loadState{t0: time.Now(), rate: l.g.Rate(), closed: l.g.closed.Load(), concurrency: cfg.Concurrency,
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	total := 0
	for i := range cfg.Numbers {
		w := 1
		if i < len(cfg.Weights) {
			w = cfg.Weights[i]
		}
		total += w
		st.cum = append(st.cum, total)
	}
	l.tick(p)
	if st.closed {
		l.topUp(p, st)
	}
	return genserver.Ok(st)
}

func (l *loadGen) tick(p *runtime.Process) {
	self, n := p.Self(), p.Node()
	time.AfterFunc(loadTick, func() { _ = n.Send(self, loadTickMsg{}) })
}

func (l *loadGen) HandleCall(p *runtime.Process, req any, _ runtime.From, state any) genserver.Result {
	st := state.(*loadState)
	switch r := req.(type) {
	case setRateReq:
		st.rate, st.t0, st.sinceT0 = r.rate, time.Now(), 0
		l.g.rate.Store(math.Float64bits(r.rate))
	case setModeReq:
		st.closed = r.closed
		l.g.closed.Store(r.closed)
		if r.closed {
			st.concurrency = r.concurrency
			l.topUp(p, st)
		} else {
			st.t0, st.sinceT0 = time.Now(), 0
		}
	}
	return genserver.Reply(nil, st)
}

func (l *loadGen) HandleCast(p *runtime.Process, msg any, state any) genserver.Result {
	return genserver.NoReply(state)
}

func (l *loadGen) HandleInfo(p *runtime.Process, msg any, state any) genserver.Result {
	st := state.(*loadState)
	switch msg.(type) {
	case loadTickMsg:
		if st.closed {
			l.topUp(p, st) // recovers after starts failed while call_sup restarted
		} else if st.rate > 0 {
			l.openLoop(p, st)
		}
		l.tick(p)
	case runtime.DownMsg:
		st.inflight--
		if st.closed {
			l.topUp(p, st)
		}
	}
	return genserver.NoReply(st)
}

// openLoop starts every call due by now at the set rate. If it has fallen
// more than a second behind it skips ahead and counts the calls it skipped,
// rather than bursting them all at once.
func (l *loadGen) openLoop(p *runtime.Process, st *loadState) {
	elapsed := time.Since(st.t0).Seconds()
	due := uint64(elapsed * st.rate)
	if due <= st.sinceT0 {
		return
	}
	if behind := due - st.sinceT0; float64(behind) > st.rate {
		skip := behind - uint64(st.rate)
		st.sinceT0 += skip
		l.g.lagged.Add(skip)
	}
	for ; st.sinceT0 < due; st.sinceT0++ {
		intended := st.t0.Add(time.Duration(float64(st.sinceT0) / st.rate * float64(time.Second)))
		l.place(p, st, intended, false)
	}
}

func (l *loadGen) topUp(p *runtime.Process, st *loadState) {
	for st.inflight < st.concurrency {
		if !l.place(p, st, time.Now(), true) {
			return
		}
	}
}

func (l *loadGen) place(p *runtime.Process, st *loadState, intended time.Time, monitor bool) bool {
	cfg := l.g.cfg
	st.next++
	k := st.rng.IntN(st.cum[len(st.cum)-1])
	i := 0
	for st.cum[i] <= k {
		i++
	}
	acct := fmt.Sprintf("ACC-%03d", 1+st.rng.IntN(cfg.Accounts))
	spec := CallSpec{
		ID:       fmt.Sprintf("CALL-%s-%d-%d", l.g.prefix, p.Self().ID(), st.next),
		Caller:   acct,
		Number:   cfg.Numbers[i],
		Account:  acct,
		Ring:     cfg.RingTime.Duration,
		Talk:     l.talkTime(st),
		Intended: intended,
	}
	pid, err := l.g.sessions.StartCall(p, spec)
	if err != nil {
		l.g.startErr.Add(1)
		return false
	}
	l.g.issued.Add(1)
	if monitor {
		p.Monitor(pid)
		st.inflight++
	}
	return true
}

func (l *loadGen) talkTime(st *loadState) time.Duration {
	mean := l.g.cfg.Duration.Duration
	switch l.g.cfg.Distribution {
	case "fixed":
		return mean
	case "uniform":
		return time.Duration(st.rng.Float64() * 2 * float64(mean))
	}
	return time.Duration(st.rng.ExpFloat64() * float64(mean))
}
