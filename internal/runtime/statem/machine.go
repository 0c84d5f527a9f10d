package statem

import (
	"fmt"
	"time"
	"weak"

	"observer/internal/runtime"
)

// stopper is a running timer: a *time.Timer, or a fake in tests.
type stopper interface{ Stop() bool }

func afterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }

// callbacks are what a module's callback mode resolves to.
type callbacks struct {
	mod     Module
	handler EventHandler // handle_event_function
	states  States       // state_functions
	enter   bool         // state enter calls
}

// resolve finds a module's callback mode, which gen_statem asks
// callback_mode/0 for at start and after a code change.
func resolve(mod Module) (callbacks, error) {
	h, isHandler := mod.(EventHandler)
	s, isStates := mod.(StateFunctions)
	if isHandler == isStates {
		return callbacks{}, fmt.Errorf("%w: %T must implement exactly one of HandleEvent and States", ErrBadCallbackMode, mod)
	}
	cb := callbacks{mod: mod, handler: h}
	if isStates {
		if cb.states = s.States(); len(cb.states) == 0 {
			return callbacks{}, fmt.Errorf("%w: %T.States returned no states", ErrBadCallbackMode, mod)
		}
	}
	if e, ok := mod.(StateEnterer); ok {
		cb.enter = e.StateEnter()
	}
	return cb, nil
}

type event struct {
	et      EventType
	content any
}

// timer is a running timeout. Its content lives here rather than in the
// timer's message so that an update reaches a timer that has already fired
// but whose message is still in the mailbox.
type timer struct {
	ref     uint64
	key     timerKey
	content any
	d       time.Duration // how long it runs, from when it is armed
	t       stopper       // nil until armed, and for a timer that expires at once
	unarmed bool
}

// timeoutMsg is what a timer sends its machine; ref tells a live timer from
// one cancelled or restarted after it fired, whose message is ignored.
type timeoutMsg struct {
	key timerKey
	ref uint64
}

// address is where the machine's timers send. They hold it weakly: a
// machine killed without running Terminate (which stops its timers) must
// not be kept alive, with its data, by timers that have not yet expired.
type address struct {
	node *runtime.Node
	self runtime.PID
}

// origin says which callback a Result came from, which decides what it may
// contain.
type origin uint8

const (
	fromInit origin = iota
	fromEvent
	fromEnter
)

var originNames = [...]string{"Init", "a state callback", "a state enter call"}

// transition collects what a callback's actions ask for; it is carried out
// once the event and any state enter calls are done.
type transition struct {
	postpone  bool
	hibernate bool
	next      []event
	timeouts  []Action
}

// machine is the runtime.Behaviour that runs a Module. All its fields
// belong to the process's own goroutine; timers only send it messages.
type machine struct {
	callbacks
	info   runtime.ModuleInfo
	arg    any
	parent runtime.PID
	ack    chan startAck
	after  func(time.Duration, func()) stopper
	addr   *address // held here so that the timers' weak pointer lives as long as the machine
	weak   weak.Pointer[address]

	state any
	data  any

	initActions     []Action // Init's actions, carried out by InitContinue
	queue           []event  // inserted and retried events, handled before the mailbox
	postponed       []event  // oldest first
	timers          []timer  // at most one per key; a machine has few
	timerBuf        [1]timer
	queueBuf        []event      // the queue's space while it is empty
	expiredBuf      []timeoutMsg // the same for expired
	scratchNext     []event      // see newTransition
	scratchTimeouts []Action
	expired         []timeoutMsg // timers that expire at once, delivered when queue drains
	unarmed         int          // timers set in this callback, armed when it ends
	refs            uint64
	hibernate       bool
	terminating     bool
	stopped         bool // the machine stopped; the process exits when its callback returns
}

func newMachine(mod Module, arg any, opts Options) (*machine, error) {
	cb, err := resolve(mod)
	if err != nil {
		return nil, err
	}
	return &machine{callbacks: cb, info: moduleInfo(mod, opts), arg: arg, ack: make(chan startAck, 1), after: afterFunc}, nil
}

// Init runs the module's Init inside the new process, acks the start, and
// then enters the initial state: Init's actions, the state enter call, and
// any events they queued.
func (m *machine) Init(p *runtime.Process) {
	p.SetModule(m.info)
	var r Result
	func() {
		defer func() {
			if x := recover(); x != nil {
				r = StopMachine(runtime.RecoveredReason(x), nil)
			}
		}()
		r = m.mod.Init(p, m.arg)
	}()
	switch r.kind {
	case resOk:
	case resIgnore:
		p.Unlink(m.parent)
		m.ack <- startAck{ignore: true}
		p.Exit(runtime.Normal)
	default:
		reason := r.reason
		if r.kind != resStop {
			reason = badResult(r, originNames[fromInit])
		}
		p.Unlink(m.parent)
		m.ack <- startAck{err: &StartError{Reason: reason}}
		p.Exit(reason)
	}
	m.state, m.data = r.state, r.data
	m.ack <- startAck{}
	if len(r.actions) > 0 || m.enter {
		// The actions and the state enter call come after the ack, as
		// in gen_statem's init: the starter need not wait for them.
		m.initActions = r.actions
		p.ContinueAfterInit()
	}
}

// InitContinue carries out Init's actions and the first state enter call,
// then handles the events they queued.
func (m *machine) InitContinue(p *runtime.Process) {
	defer m.recoverCrash(p)
	tr := m.newTransition()
	actions := m.initActions
	m.initActions = nil
	for _, a := range actions {
		m.action(p, a, &tr, fromInit)
	}
	m.enterState(p, m.state, &tr)
	if m.stopped {
		return
	}
	m.finish(m.state, nil, &tr)
	m.drain(p)
}

// Handle turns one message into an event and handles it, with every event
// the machine queues meanwhile.
func (m *machine) Handle(p *runtime.Process, msg any) {
	defer m.recoverCrash(p)
	var ev event
	switch msg := msg.(type) {
	case *runtime.Request:
		if st, ok := msg.Body.(stopMsg); ok {
			m.terminate(p, st.reason)
			msg.From.Reply(nil)
			p.Exit(st.reason)
		}
		ev = event{EventType{Kind: KindCall, From: msg.From}, msg.Body}
	case castMsg:
		ev = event{EventType{Kind: KindCast}, msg.msg}
	case timeoutMsg:
		content, ok := m.fire(msg)
		if !ok {
			return // cancelled or restarted after it fired
		}
		ev = event{msg.key.eventType(), content}
	case runtime.ExitMsg:
		if msg.From == m.parent && !m.parent.IsZero() {
			// A trapping machine stops with its parent's reason, running
			// Terminate first, as gen_statem does.
			m.terminate(p, msg.Reason)
			p.Exit(msg.Reason)
		}
		ev = event{EventType{Kind: KindInfo}, msg}
	default:
		ev = event{EventType{Kind: KindInfo}, msg}
	}
	m.hibernate = false
	m.handle(p, ev)
	m.drain(p)
}

// drain handles the events the machine queued itself, then the timeouts
// that expired at once, before the process goes back to its mailbox.
func (m *machine) drain(p *runtime.Process) {
	for !m.stopped {
		if len(m.queue) > 0 {
			ev := m.queue[0]
			m.queue[0] = event{}
			m.queue = m.queue[1:]
			m.handle(p, ev)
			continue
		}
		if len(m.expired) == 0 {
			break
		}
		msg := m.expired[0]
		m.expired = m.expired[1:]
		if content, ok := m.fire(msg); ok {
			m.handle(p, event{msg.key.eventType(), content})
		}
	}
	if m.stopped {
		return
	}
	if m.unarmed > 0 {
		m.armTimers(p)
	}
	if m.hibernate {
		p.Hibernate()
	}
}

// handle runs one event through its callback and the transition that follows.
func (m *machine) handle(p *runtime.Process, ev event) {
	prev := m.state
	tr := m.newTransition()
	if m.result(p, m.call(p, ev.et, ev.content), &tr, fromEvent) {
		m.enterState(p, prev, &tr)
	}
	if m.stopped {
		return
	}
	m.finish(prev, &ev, &tr)
}

// enterState makes the state enter call, again for as long as it returns
// RepeatState.
func (m *machine) enterState(p *runtime.Process, old any, tr *transition) {
	for m.enter {
		if !m.result(p, m.call(p, EventType{Kind: KindEnter}, old), tr, fromEnter) {
			return
		}
	}
}

func (m *machine) call(p *runtime.Process, et EventType, content any) Result {
	if m.handler != nil {
		return m.handler.HandleEvent(p, et, content, m.state, m.data)
	}
	f := m.states[m.state]
	if f == nil {
		m.stop(p, fmt.Errorf("%w %v", ErrUnknownState, m.state))
	}
	return f(p, et, content, m.data)
}

// result applies a callback's Result: the new state and data, then the
// actions in order. It reports whether a state enter call is due.
func (m *machine) result(p *runtime.Process, r Result, tr *transition, from origin) (enter bool) {
	switch r.kind {
	case resNextState:
		changed := !sameState(r.state, m.state)
		if changed && from == fromEnter {
			m.stop(p, fmt.Errorf("%w: NextState(%v) from a state enter call in %v", ErrBadResult, r.state, m.state))
		}
		m.state, m.data = r.state, r.data
		enter = changed
	case resKeepState, resRepeatState:
		if !r.keepData {
			m.data = r.data
		}
		enter = r.kind == resRepeatState
	case resStop:
		m.data = r.data
		for _, a := range r.actions {
			if a.kind != actReply || a.from.IsZero() {
				m.stop(p, badAction(a, "StopAndReply"))
			}
			a.from.Reply(a.value)
		}
		m.stopOnReturn(p, r.reason)
		return false
	default:
		m.stop(p, badResult(r, originNames[from]))
	}
	for _, a := range r.actions {
		m.action(p, a, tr, from)
	}
	return enter
}

func badAction(a Action, where string) error {
	return fmt.Errorf("%w: %v from %s", ErrBadAction, a, where)
}

func (m *machine) action(p *runtime.Process, a Action, tr *transition, from origin) {
	switch a.kind {
	case actReply:
		if a.from.IsZero() {
			m.stop(p, badAction(a, originNames[from]+" (no caller to answer)"))
		}
		a.from.Reply(a.value)
	case actPostpone:
		switch from {
		case fromEvent:
			tr.postpone = true
		case fromEnter:
			m.stop(p, badAction(a, originNames[from]))
		}
	case actNextEvent:
		if from == fromEnter || !a.et.isEvent() {
			m.stop(p, badAction(a, originNames[from]))
		}
		tr.next = append(tr.next, event{a.et, a.value})
	case actHibernate:
		tr.hibernate = true
	case actTimeout:
		tr.timeouts = append(tr.timeouts, a)
	default:
		m.stop(p, badAction(a, originNames[from]))
	}
}

// newTransition returns a transition whose lists reuse the machine's
// scratch space: a machine handles one event at a time, and finish copies
// what it keeps.
func (m *machine) newTransition() transition {
	return transition{next: m.scratchNext[:0], timeouts: m.scratchTimeouts[:0]}
}

// doneWith takes the transition's lists back as scratch space, cleared so
// that they hold on to nothing.
func (m *machine) doneWith(tr *transition) {
	clear(tr.next)
	clear(tr.timeouts)
	m.scratchNext, m.scratchTimeouts = tr.next[:0], tr.timeouts[:0]
}

// pushFront puts evs before the queued events. The queue takes its space
// from queueBuf while it is empty, so a machine that inserts an event at a
// time allocates once.
func (m *machine) pushFront(evs []event) {
	if len(m.queue) == 0 {
		m.queueBuf = append(m.queueBuf[:0], evs...)
		m.queue = m.queueBuf
		return
	}
	q := make([]event, 0, len(evs)+len(m.queue))
	m.queue = append(append(q, evs...), m.queue...)
}

// finish carries out a transition in gen_statem's order: postpone the
// event; after a state change retry the postponed events and cancel the
// state timeout; cancel the event timeout; put inserted events first; set
// the timers.
func (m *machine) finish(prev any, ev *event, tr *transition) {
	if tr.postpone && ev != nil {
		m.postponed = append(m.postponed, *ev)
	}
	changed := !sameState(prev, m.state)
	if changed && len(m.postponed) > 0 {
		m.pushFront(m.postponed)
		m.postponed = nil
	}
	m.cancel(eventTimeoutKey)
	if changed {
		m.cancel(stateTimeoutKey)
	}
	if len(tr.next) > 0 {
		m.pushFront(tr.next)
	}
	m.setTimers(tr.timeouts)
	if tr.hibernate {
		m.hibernate = true
	}
	m.doneWith(tr)
}

// setTimers applies timeout actions; for each timer only the last action
// counts, as in gen_statem.
func (m *machine) setTimers(ts []Action) {
	for i, a := range ts {
		if overridden(a.key, ts[i+1:]) {
			continue
		}
		switch a.op {
		case opCancel:
			m.cancel(a.key)
		case opUpdate:
			if i := m.timer(a.key); i >= 0 {
				m.timers[i].content = a.value
				continue
			}
			m.start(a.key, 0, a.value)
		default:
			m.cancel(a.key)
			m.start(a.key, a.timeout, a.value)
		}
	}
}

func overridden(key timerKey, later []Action) bool {
	for _, b := range later {
		if b.key == key {
			return true
		}
	}
	return false
}

// start sets a timer. One that runs for a while is armed only when the
// callback's events are all handled (see armTimers): a state timeout that
// the next inserted event's state change cancels, as a call's setup and
// routing timeouts mostly are, never costs a runtime timer.
func (m *machine) start(key timerKey, d time.Duration, content any) {
	m.refs++
	if d == 0 {
		if len(m.expired) == 0 {
			m.expired = m.expiredBuf[:0]
		}
		m.expired = append(m.expired, timeoutMsg{key: key, ref: m.refs})
	} else {
		m.unarmed++
	}
	if m.timers == nil {
		m.timers = m.timerBuf[:0]
	}
	m.timers = append(m.timers, timer{ref: m.refs, key: key, content: content, d: d, unarmed: d > 0})
}

// timer finds the timer of key, or returns -1.
func (m *machine) timer(key timerKey) int {
	for i := range m.timers {
		if m.timers[i].key == key {
			return i
		}
	}
	return -1
}

// fire takes the timer that sent msg, if it is still set.
func (m *machine) fire(msg timeoutMsg) (content any, ok bool) {
	i := m.timer(msg.key)
	if i < 0 || m.timers[i].ref != msg.ref {
		return nil, false
	}
	content = m.timers[i].content
	m.remove(i)
	return content, true
}

func (m *machine) remove(i int) {
	last := len(m.timers) - 1
	m.timers[i] = m.timers[last]
	m.timers[last] = timer{}
	m.timers = m.timers[:last]
}

// armTimers starts the runtime timers of the timers set meanwhile that are
// still set. Each runs its full time from now: the events handled since it
// was set took no longer than one callback's batch.
func (m *machine) armTimers(p *runtime.Process) {
	m.unarmed = 0
	for i := range m.timers {
		t := &m.timers[i]
		if !t.unarmed {
			continue
		}
		t.unarmed = false
		if m.addr == nil {
			m.addr = &address{node: p.Node(), self: p.Self()}
			m.weak = weak.Make(m.addr)
		}
		to, msg := m.weak, timeoutMsg{key: t.key, ref: t.ref}
		t.t = m.after(t.d, func() {
			if a := to.Value(); a != nil {
				_ = a.node.Send(a.self, msg)
			}
		})
	}
}

func (m *machine) cancel(key timerKey) {
	if i := m.timer(key); i >= 0 {
		if t := m.timers[i].t; t != nil {
			t.Stop()
		}
		m.remove(i)
	}
}

// recoverCrash turns a panic in the module's code into the machine's exit,
// running Terminate first, as gen_statem does for a callback that crashes.
func (m *machine) recoverCrash(p *runtime.Process) {
	x := recover()
	if x == nil {
		return
	}
	if runtime.IsExitPanic(x) {
		panic(x) // a deliberate exit: Terminate has run, or is skipped on purpose
	}
	m.stop(p, runtime.RecoveredReason(x))
}

// stopOnReturn runs Terminate and has the process exit when its callback
// returns: the machine does nothing more (see stopped).
func (m *machine) stopOnReturn(p *runtime.Process, reason any) {
	m.terminate(p, reason)
	m.stopped = true
	p.ExitOnReturn(reason)
}

// stop runs Terminate and exits; it does not return.
func (m *machine) stop(p *runtime.Process, reason any) {
	m.terminate(p, reason)
	p.Exit(reason)
}

func (m *machine) terminate(p *runtime.Process, reason any) {
	for _, t := range m.timers {
		if t.t != nil {
			t.t.Stop()
		}
	}
	m.timers, m.queue, m.postponed, m.expired, m.unarmed = nil, nil, nil, nil, 0
	if m.terminating {
		return // Terminate itself panicked; it does not run twice
	}
	m.terminating = true
	if t, ok := m.mod.(Terminator); ok && p.Alive() {
		t.Terminate(p, reason, m.state, m.data)
	}
}

// SysState returns the machine's StateData.
func (m *machine) SysState() any { return StateData{State: m.state, Data: m.data} }

// SysReplaceState replaces state and data with fn(StateData), which must
// return a StateData; otherwise, or if fn panics, nothing changes.
func (m *machine) SysReplaceState(fn func(any) any) (any, error) {
	var next StateData
	err := protect(func() error {
		v := fn(StateData{State: m.state, Data: m.data})
		sd, ok := v.(StateData)
		if !ok {
			return fmt.Errorf("statem: the replace_state function returned %T, not a statem.StateData", v)
		}
		next = sd
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.state, m.data = next.State, next.Data
	return next, nil
}

// SysChangeCode switches to module mod, migrating state and data with its
// CodeChange. On error the old code, state and data stay.
func (m *machine) SysChangeCode(p *runtime.Process, mod any, _ string, extra any) error {
	next, ok := mod.(Module)
	if !ok {
		return fmt.Errorf("statem: %T is not a gen_statem module", mod)
	}
	var cb callbacks
	state, data := m.state, m.data
	err := protect(func() error {
		var err error
		if cb, err = resolve(next); err != nil {
			return err
		}
		if cc, ok := next.(CodeChanger); ok {
			state, data, err = cc.CodeChange(p.Module().Version, state, data, extra)
		}
		return err
	})
	if err != nil {
		return err
	}
	m.callbacks = cb
	m.state, m.data = state, data
	return nil
}

// protect runs fn, turning a panic into an error so that a failed sys
// request leaves the machine running, as sys does in OTP.
func protect(fn func() error) (err error) {
	defer func() {
		if x := recover(); x != nil {
			if runtime.IsExitPanic(x) {
				panic(x)
			}
			err = fmt.Errorf("statem: panic: %v", x)
		}
	}()
	return fn()
}
