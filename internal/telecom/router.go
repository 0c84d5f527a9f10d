package telecom

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/telecom/routing"
)

// RouterName is the registered name of the call router process.
const RouterName = "call_router"

// Errors of the call router beyond routing's own.
var (
	// ErrRouterDown: the router process is not running (it is restarting),
	// so its table does not exist; the call fails rather than waits.
	ErrRouterDown = errors.New("call router is down")
	// ErrOverload: the router's queue is past its limit; the call is dropped.
	ErrOverload = errors.New("call router overloaded: call dropped")
)

// Router is the handle through which the system routes calls. The fast
// path (Route) reads the table that the router process owns, without
// queueing behind that process, as ETS with read_concurrency is used in
// Erlang. Like an ETS table, the table dies with its owner: while the
// router process restarts, calls fail with ErrRouterDown, and the new
// process builds the table again from its configuration.
type Router struct {
	node *runtime.Node
	cfg  RouterConfig

	cur atomic.Pointer[routerInstance]

	mu     sync.Mutex
	table  *routing.Table     // the table a new router process loads
	rates  map[string]float64 // trunk failure rates set at run time
	base   routing.Metrics    // counters of router processes before prev
	prev   *routing.Router    // the running (or last) process's router
	onDrop func()             // tests observe drops

	lcr leastCostConfig // version 2's costs and the module registry: see routerv2.go
}

type routerInstance struct {
	owner runtime.PID
	r     *routing.Router
	// base is the counters of the router processes before this one,
	// published with r so that a reader adds the old processes' counts
	// to r's exactly once; it is never written after publication.
	base *routing.Metrics
}

// NewRouter prepares the router handle; the process is started by the
// supervision tree with StartRouter.
func NewRouter(n *runtime.Node, cfg RouterConfig) (*Router, error) {
	table := routing.DefaultTable()
	if cfg.Routes != "" {
		t, err := routing.ParseFile(cfg.Routes)
		if err != nil {
			return nil, err
		}
		table = t
	}
	return &Router{node: n, cfg: cfg, table: table, rates: map[string]float64{}}, nil
}

// Route routes a call on the fast path.
func (rt *Router) Route(callID, number string) (routing.Result, error) {
	inst := rt.cur.Load()
	if inst == nil || !inst.owner.Alive() {
		return routing.Result{}, ErrRouterDown
	}
	return inst.r.Route(callID, number)
}

type routeReq struct{ callID, number string }
type routeReply struct {
	res routing.Result
	err error
}
type loadTableReq struct{ table *routing.Table }
type failureRateReq struct {
	trunk string
	rate  float64
}
type tickMsg struct{}

// RouteViaServer routes a call through the router process (the slow path,
// as a gen_server:call would), dropping it when the router's queue is past
// the overload limit.
func (rt *Router) RouteViaServer(c runtime.Caller, callID, number string, timeout time.Duration) (routing.Result, error) {
	inst := rt.cur.Load()
	if inst == nil || !inst.owner.Alive() {
		return routing.Result{}, ErrRouterDown
	}
	if inst.owner.MailboxLen() >= rt.cfg.OverloadLimit {
		inst.r.AddDropped(1)
		if rt.onDrop != nil {
			rt.onDrop()
		}
		return routing.Result{}, ErrOverload
	}
	v, err := c.Call(inst.owner, routeReq{callID, number}, timeout)
	if err != nil {
		return routing.Result{}, err
	}
	rep := v.(routeReply)
	return rep.res, rep.err
}

// LoadTable parses a routing table file and hands it to the router process;
// a bad file is refused with its line numbers and the running table stays.
func (rt *Router) LoadTable(c runtime.Caller, path string, timeout time.Duration) error {
	t, err := routing.ParseFile(path)
	if err != nil {
		return err
	}
	v, err := c.Call(Name(RouterName), loadTableReq{t}, timeout)
	if err != nil {
		return err
	}
	if e, ok := v.(error); ok {
		return e
	}
	return nil
}

// SetFailureRate sets a trunk's simulated failure rate, through the router
// process, which owns trunk state; the rate survives router restarts.
func (rt *Router) SetFailureRate(c runtime.Caller, trunk string, rate float64, timeout time.Duration) error {
	v, err := c.Call(Name(RouterName), failureRateReq{trunk, rate}, timeout)
	if err != nil {
		return err
	}
	if e, ok := v.(error); ok {
		return e
	}
	return nil
}

// Metrics returns routed, failed, dropped and latency figures, including
// those of router processes that have exited, in newly allocated memory.
// Pollers should keep a routing.Metrics and use MetricsInto instead.
func (rt *Router) Metrics() routing.Metrics {
	var m routing.Metrics
	rt.MetricsInto(&m)
	return m
}

// MetricsInto overwrites *m with what Metrics returns, reusing m's map and
// slice, so that repeated reads into the same m allocate nothing. It takes
// no lock: it reads the running process's counters (see
// routing.Router.MetricsInto) and adds those of the processes before it,
// published together with it. Trunks and latency are the running (or last)
// process's. Concurrent calls must not share m.
func (rt *Router) MetricsInto(m *routing.Metrics) {
	inst := rt.cur.Load()
	if inst == nil {
		// No router process has started yet.
		failed := m.Failed
		if failed == nil {
			failed = map[routing.Reason]uint64{}
		}
		clear(failed)
		*m = routing.Metrics{Failed: failed, Trunks: m.Trunks[:0]}
		return
	}
	inst.r.MetricsInto(m)
	if b := inst.base; b != nil {
		m.Routed += b.Routed
		m.Dropped += b.Dropped
		for k, v := range b.Failed {
			m.Failed[k] += v // every Reason is already in m.Failed
		}
	}
}

// Table returns the routing table as configured, the one last loaded from
// its file. Router version 2 routes over a cost-ordered copy of it, which
// would show its priorities rewritten.
func (rt *Router) Table() *routing.Table {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.table
}

// Trunks reports trunk states; none while the router process is down.
func (rt *Router) Trunks() []routing.TrunkStatus {
	if inst := rt.cur.Load(); inst != nil && inst.owner.Alive() {
		return inst.r.Trunks()
	}
	return nil
}

// Name is a registered name as a call target.
type Name = runtime.Name

// StartRouter is the child start function of call_router_server. It
// starts the module's current version, so a restart after an upgrade
// comes back upgraded.
func (rt *Router) StartRouter(p *runtime.Process) (runtime.PID, error) {
	mod, vsn := rt.current()
	return genserver.StartLink(p, mod, nil, genserver.Options{
		Name: RouterName, Module: RouterModule, Version: vsn,
	})
}

// routerServer is call_router_server: it owns the routing table, trunk
// state and metrics, and serves the slow path.
type routerServer struct{ rt *Router }

func (s *routerServer) Init(p *runtime.Process, _ any) genserver.Result {
	r, err := s.rt.startRouting(p, nil)
	if err != nil {
		return genserver.Stop(err, nil)
	}
	return genserver.Ok(r)
}

// startRouting builds a router process's routing.Router over the
// configured table, passed through order when set (version 2 orders trunks
// by cost), and publishes it for the fast path.
func (rt *Router) startRouting(p *runtime.Process, order func(*routing.Table) (*routing.Table, error)) (*routing.Router, error) {
	r := routing.New(nil, routing.Config{
		FailureThreshold: uint32(rt.cfg.FailureThreshold),
		CoolDown:         rt.cfg.CoolDown.Duration,
	})
	rt.mu.Lock()
	table := rt.table
	for trunk, rate := range rt.rates {
		_ = r.SetFailureRate(trunk, rate)
	}
	rt.mu.Unlock()
	if order != nil {
		var err error
		if table, err = order(table); err != nil {
			return nil, err
		}
	}
	if err := r.LoadTable(table); err != nil {
		return nil, err
	}
	rt.publish(p.Self(), r)
	scheduleTick(p)
	return r, nil
}

// publish makes r, owned by the process owner, the router of the fast path
// and of Metrics. The previous process's final counters are folded into
// the totals at the moment its router is replaced, and the totals are
// published with the new router in one pointer store, so a reader counts
// the old process's calls once: before the store from its router, after
// it from the totals. (Calls that had passed the old process's liveness
// check before it died and finish after the fold are not counted.) If a
// new process fails to start, the old router and its counts stay
// published.
func (rt *Router) publish(owner runtime.PID, r *routing.Router) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.prev != nil {
		var old routing.Metrics
		rt.prev.MetricsInto(&old)
		rt.base.Routed += old.Routed
		rt.base.Dropped += old.Dropped
		if rt.base.Failed == nil {
			rt.base.Failed = map[routing.Reason]uint64{}
		}
		for k, v := range old.Failed {
			rt.base.Failed[k] += v
		}
	}
	rt.prev = r
	base := rt.base
	base.Failed = maps.Clone(rt.base.Failed)
	rt.cur.Store(&routerInstance{owner: owner, r: r, base: &base})
}

func scheduleTick(p *runtime.Process) {
	self, n := p.Self(), p.Node()
	time.AfterFunc(100*time.Millisecond, func() { _ = n.Send(self, tickMsg{}) })
}

func (s *routerServer) HandleCall(p *runtime.Process, req any, _ runtime.From, state any) genserver.Result {
	r := state.(*routing.Router)
	switch q := req.(type) {
	case routeReq:
		res, err := r.Route(q.callID, q.number)
		return genserver.Reply(routeReply{res, err}, r)
	case loadTableReq:
		if err := r.LoadTable(q.table); err != nil {
			return genserver.Reply(err, r)
		}
		s.rt.mu.Lock()
		s.rt.table = q.table
		s.rt.mu.Unlock()
		return genserver.Reply(nil, r)
	case failureRateReq:
		if err := r.SetFailureRate(q.trunk, q.rate); err != nil {
			return genserver.Reply(err, r)
		}
		s.rt.mu.Lock()
		s.rt.rates[q.trunk] = q.rate
		s.rt.mu.Unlock()
		return genserver.Reply(nil, r)
	case costsReq:
		// Version 1 routes by weight; it keeps the costs for version 2.
		s.rt.setCosts(q.costs)
		return genserver.Reply(nil, r)
	}
	return genserver.Reply(fmt.Errorf("call_router_server: unknown request %T", req), r)
}

func (s *routerServer) HandleCast(p *runtime.Process, msg any, state any) genserver.Result {
	return genserver.NoReply(state)
}

func (s *routerServer) HandleInfo(p *runtime.Process, msg any, state any) genserver.Result {
	if _, ok := msg.(tickMsg); ok {
		state.(*routing.Router).Tick()
		scheduleTick(p)
	}
	return genserver.NoReply(state)
}

// CallTimeout bounds calls made by the shell commands.
const CallTimeout = 5 * time.Second

// StartStandalone runs one child start function under a plain parent
// process, for shell commands that need a single server and not the whole
// tree. stop ends both.
func StartStandalone(n *runtime.Node, start func(p *runtime.Process) (runtime.PID, error)) (stop func(), err error) {
	started := make(chan error, 1)
	parent, err := n.Spawn(func(p *runtime.Process) {
		p.TrapExit(true)
		_, err := start(p)
		started <- err
		if err != nil {
			return
		}
		p.Receive(runtime.Infinity)
	}, runtime.SpawnOpts{})
	if err != nil {
		return nil, err
	}
	if err := <-started; err != nil {
		return nil, err
	}
	return func() {
		w := n.Monitor(parent)
		n.Exit(parent, runtime.Shutdown)
		<-w.C
	}, nil
}
