package telecom

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"observer/internal/runtime"
	"observer/internal/runtime/statem"
	"observer/internal/runtime/supervisor"
	"observer/internal/telecom/routing"
)

// CallSupName is the registered name of the call sessions' supervisor.
const CallSupName = "call_sup"

// CallSpec describes one call to place.
type CallSpec struct {
	ID       string
	Caller   string // the calling party, e.g. ACC-042's line
	Number   string // the dialled number
	Account  string // the account billed for the call
	Ring     time.Duration
	Talk     time.Duration
	Intended time.Time // when the load generator meant the call to start
}

// CDR is a call detail record: what billing rates and charges.
type CDR struct {
	CallID      string
	Caller      string
	Callee      string
	Account     string
	Destination string
	Trunk       string
	URI         string
	Start       time.Time
	Duration    time.Duration
}

// The states of a call session.
type callState string

const (
	stateSetup     callState = "setup"
	stateRouting   callState = "routing"
	stateRinging   callState = "ringing"
	stateConnected callState = "connected"
)

// Failure reasons of calls, as counted in SessionStats.Failed.
const (
	FailNoRoute       = "no_route"
	FailAllTrunksDown = "all_trunks_down"
	FailInvalidNumber = "invalid_number"
	FailRouterDown    = "router_down"
	FailNoAnswer      = "no_answer"
	FailTimeout       = "timeout"
	FailCancelled     = "cancelled"
)

var failReasons = []string{FailNoRoute, FailAllTrunksDown, FailInvalidNumber, FailRouterDown, FailNoAnswer, FailTimeout, FailCancelled}

// Sessions runs the call sessions: one gen_statem per call under the
// simple_one_for_one call_sup.
type Sessions struct {
	cfg    SessionsConfig
	router *Router
	sink   func(p *runtime.Process, cdr CDR)

	started   atomic.Uint64
	completed atomic.Uint64
	failed    map[string]*atomic.Uint64

	mu    sync.Mutex
	setup *hdrhistogram.Histogram // intended start -> routed, in µs
}

// SessionStats are the call counters the observer shows.
type SessionStats struct {
	Started, Completed uint64
	Failed             map[string]uint64
	SetupP50, SetupP99 time.Duration
}

// NewSessions prepares the sessions; sink receives each completed call's
// record in the call's own process (nil counts them only).
func NewSessions(cfg SessionsConfig, router *Router, sink func(p *runtime.Process, cdr CDR)) *Sessions {
	s := &Sessions{cfg: cfg, router: router, sink: sink, failed: map[string]*atomic.Uint64{},
		setup: hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 2)}
	for _, r := range failReasons {
		s.failed[r] = new(atomic.Uint64)
	}
	return s
}

// SetSink sets where completed calls' records go.
func (s *Sessions) SetSink(sink func(p *runtime.Process, cdr CDR)) { s.sink = sink }

// Stats reads the counters.
func (s *Sessions) Stats() SessionStats {
	st := SessionStats{Started: s.started.Load(), Completed: s.completed.Load(), Failed: map[string]uint64{}}
	for r, c := range s.failed {
		st.Failed[r] = c.Load()
	}
	s.mu.Lock()
	st.SetupP50 = time.Duration(s.setup.ValueAtQuantile(50)) * time.Microsecond
	st.SetupP99 = time.Duration(s.setup.ValueAtQuantile(99)) * time.Microsecond
	s.mu.Unlock()
	return st
}

// SupervisorSpec is call_sup's child spec under telecom_sup.
func (s *Sessions) SupervisorSpec() supervisor.ChildSpec {
	return supervisor.ChildSpec{
		ID:   CallSupName,
		Type: supervisor.Supervisor,
		Start: func(p *runtime.Process) (runtime.PID, error) {
			return supervisor.StartLink(p, supervisor.Spec{
				// Calls are independent and temporary: a crashed call is not
				// redialled, and a burst of crashes must not take the node
				// down, hence a high intensity.
				Flags: supervisor.Flags{Strategy: supervisor.SimpleOneForOne, Intensity: s.cfg.Intensity, Period: s.cfg.Period},
				Children: []supervisor.ChildSpec{{
					ID:        "call_session",
					StartArgs: s.startSession,
					Restart:   supervisor.Temporary,
					Shutdown:  time.Second,
					Module:    "call_session",
					Version:   "1",
				}},
			}, supervisor.Options{Name: CallSupName, Module: CallSupName})
		},
	}
}

// Active counts the calls in progress: call_sup's live children.
func (s *Sessions) Active(c runtime.Caller) int {
	n, err := supervisor.CountChildren(c, runtime.Name(CallSupName), CallTimeout)
	if err != nil {
		return 0
	}
	return n.Active
}

// StartCall places a call: a new session under call_sup.
func (s *Sessions) StartCall(c runtime.Caller, spec CallSpec) (runtime.PID, error) {
	return supervisor.StartDynamicChild(c, runtime.Name(CallSupName), spec, CallTimeout)
}

func (s *Sessions) startSession(p *runtime.Process, args any) (runtime.PID, error) {
	spec, ok := args.(CallSpec)
	if !ok {
		return runtime.PID{}, errors.New("call_session: start argument is not a CallSpec")
	}
	return statem.StartLink(p, &session{s: s}, spec, statem.Options{Module: "call_session", Version: "1"})
}

// session is the call_session gen_statem: setup -> routing -> ringing ->
// connected -> completed, or failed from any state.
type session struct{ s *Sessions }

type callData struct {
	spec      CallSpec
	route     routing.Result
	connected time.Time
}

type sessionEvent string

const (
	evRoute   sessionEvent = "route"
	evAnswer  sessionEvent = "answer"
	evNoAns   sessionEvent = "no_answer"
	evHangup  sessionEvent = "hangup"
	evTimeout sessionEvent = "timeout"
)

// Init starts a call in setup and moves it on at once with an inserted
// event, so that a session that never gets scheduled still times out.
func (m *session) Init(p *runtime.Process, arg any) statem.Result {
	spec := arg.(CallSpec)
	m.s.started.Add(1)
	return statem.Ok(stateSetup, &callData{spec: spec},
		statem.StateTimeout(m.s.cfg.SetupTimeout.Duration, evTimeout),
		statem.NextEvent(statem.KindInternal, evRoute))
}

// HandleEvent is the state machine.
func (m *session) HandleEvent(p *runtime.Process, et statem.EventType, content any, state, data any) statem.Result {
	d := data.(*callData)
	st := state.(callState)
	switch {
	case et.Kind == statem.KindCall:
		return statem.KeepStateAndData(statem.Reply(et.From, string(st)))
	case et.Kind == statem.KindCast && content == evHangup:
		if st == stateConnected {
			return m.complete(p, d)
		}
		return m.fail(p, d, FailCancelled)
	case et.Kind == statem.KindStateTimeout && content == evTimeout:
		return m.fail(p, d, FailTimeout)
	}
	switch st {
	case stateSetup:
		if et.Kind == statem.KindInternal && content == evRoute {
			return statem.NextState(stateRouting, d,
				statem.StateTimeout(m.s.cfg.RoutingTimeout.Duration, evTimeout),
				statem.NextEvent(statem.KindInternal, evRoute))
		}
	case stateRouting:
		if et.Kind == statem.KindInternal && content == evRoute {
			res, err := m.s.router.Route(d.spec.ID, d.spec.Number)
			if err != nil {
				return m.fail(p, d, failureOf(err))
			}
			if !d.spec.Intended.IsZero() {
				us := time.Since(d.spec.Intended).Microseconds()
				m.s.mu.Lock()
				_ = m.s.setup.RecordValue(max(us, 1))
				m.s.mu.Unlock()
			}
			d.route = res
			ring, ev := d.spec.Ring, evAnswer
			if rt := m.s.cfg.RingTimeout.Duration; ring >= rt {
				ring, ev = rt, evNoAns
			}
			return statem.NextState(stateRinging, d, statem.StateTimeout(ring, ev))
		}
	case stateRinging:
		if et.Kind == statem.KindStateTimeout {
			if content == evNoAns {
				return m.fail(p, d, FailNoAnswer)
			}
			d.connected = time.Now()
			talk := min(d.spec.Talk, m.s.cfg.MaxDuration.Duration)
			return statem.NextState(stateConnected, d, statem.StateTimeout(talk, evHangup))
		}
	case stateConnected:
		if et.Kind == statem.KindStateTimeout && content == evHangup {
			return m.complete(p, d)
		}
	}
	return statem.KeepStateAndData()
}

func (m *session) complete(p *runtime.Process, d *callData) statem.Result {
	m.s.completed.Add(1)
	if m.s.sink != nil {
		m.s.sink(p, CDR{
			CallID: d.spec.ID, Caller: d.spec.Caller, Callee: d.spec.Number, Account: d.spec.Account,
			Destination: d.route.Destination, Trunk: d.route.Trunk, URI: d.route.URI,
			Start: d.connected, Duration: time.Since(d.connected),
		})
	}
	return statem.StopMachine(runtime.Normal, d)
}

func (m *session) fail(p *runtime.Process, d *callData, reason string) statem.Result {
	m.s.failed[reason].Add(1)
	return statem.StopMachine(runtime.ShutdownReason{Term: reason}, d)
}

func failureOf(err error) string {
	switch {
	case errors.Is(err, ErrRouterDown):
		return FailRouterDown
	case errors.Is(err, routing.ErrNoRoute):
		return FailNoRoute
	case errors.Is(err, routing.ErrAllTrunksDown):
		return FailAllTrunksDown
	case errors.Is(err, routing.ErrInvalidNumber):
		return FailInvalidNumber
	}
	return FailNoRoute
}
