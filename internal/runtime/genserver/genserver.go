// Package genserver is OTP's gen_server behaviour on the observer runtime.
//
// A server is a Module (its callbacks) and a state value; the state is kept
// apart from the code so that sys can read it and a code change can migrate
// it to a new module version.
package genserver

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"observer/internal/runtime"
)

// DefaultCallTimeout is gen_server:call/2's 5 seconds.
const DefaultCallTimeout = 5 * time.Second

// Module is a gen_server callback module.
type Module interface {
	// Init returns Ok(state), Ignore(), or Stop(reason, nil); Continue and
	// timeouts may be added to Ok.
	Init(p *runtime.Process, arg any) Result
	// HandleCall answers a call: Reply, NoReply (reply later with
	// from.Reply), Stop or StopReply.
	HandleCall(p *runtime.Process, req any, from runtime.From, state any) Result
	// HandleCast handles a cast: NoReply or Stop.
	HandleCast(p *runtime.Process, msg any, state any) Result
	// HandleInfo handles any other message: NoReply or Stop.
	HandleInfo(p *runtime.Process, msg any, state any) Result
}

// Continuer is implemented by modules that use Continue (handle_continue/2).
type Continuer interface {
	HandleContinue(p *runtime.Process, cont any, state any) Result
}

// Terminator is implemented by modules with a terminate/2 callback. It runs
// when a callback returns Stop, when a callback panics, and on a parent's
// exit signal only if the server traps exits.
type Terminator interface {
	Terminate(p *runtime.Process, reason any, state any)
}

// CodeChanger is implemented by modules that migrate state on a code change
// (code_change/3). The new module's CodeChange receives the old version and
// the old state.
type CodeChanger interface {
	CodeChange(oldVersion string, state any, extra any) (any, error)
}

type action uint8

const (
	actNoReply action = iota
	actReply
	actStop
	actIgnore
)

// Result is what a callback returns.
type Result struct {
	action     action
	reply      any
	state      any
	reason     any
	timeout    time.Duration
	hasTimeout bool
	hibernate  bool
	hasReply   bool
	cont       any
	hasCont    bool
}

// Ok is init's {ok, State}.
func Ok(state any) Result { return Result{action: actNoReply, state: state} }

// Ignore is init's ignore: the start returns ErrIgnore and the process exits normally.
func Ignore() Result { return Result{action: actIgnore} }

// Reply is {reply, Reply, State}.
func Reply(reply, state any) Result { return Result{action: actReply, reply: reply, state: state} }

// NoReply is {noreply, State}.
func NoReply(state any) Result { return Result{action: actNoReply, state: state} }

// Stop is {stop, Reason, State}; from Init it is {stop, Reason}.
func Stop(reason, state any) Result { return Result{action: actStop, reason: reason, state: state} }

// StopReply is {stop, Reason, Reply, State}: reply, then terminate.
func StopReply(reason, reply, state any) Result {
	return Result{action: actStop, reason: reason, reply: reply, hasReply: true, state: state}
}

// WithTimeout adds an idle timeout: with no message within d, HandleInfo
// receives runtime.TimeoutMsg{}.
func (r Result) WithTimeout(d time.Duration) Result {
	r.timeout, r.hasTimeout = d, true
	return r
}

// Hibernate adds hibernate.
func (r Result) Hibernate() Result {
	r.hibernate = true
	return r
}

// Continue adds {continue, C}: HandleContinue runs before the next message.
func (r Result) Continue(c any) Result {
	r.cont, r.hasCont = c, true
	return r
}

// ErrIgnore is the start result of an Init that returned Ignore.
var ErrIgnore = errors.New("ignore")

// StartError is a start that failed: Init returned Stop or crashed.
type StartError struct{ Reason any }

// Error describes the failure.
func (e *StartError) Error() string {
	return "init failed: " + runtime.FormatReason(e.Reason)
}

// Unwrap exposes an error reason.
func (e *StartError) Unwrap() error {
	if err, ok := e.Reason.(error); ok {
		return err
	}
	return nil
}

// Options are start options.
type Options struct {
	// Name registers the server.
	Name string
	// Module and Version name the code for the observer; Module defaults
	// to the Go type's name and Version to "1".
	Module  string
	Version string
	// Timeout bounds Init; zero waits forever, as OTP's default does.
	Timeout time.Duration
	// TrapExit sets trap_exit before Init runs.
	TrapExit bool
}

type castMsg struct{ msg any }
type timeoutMsg struct{ gen uint64 }
type stopMsg struct{ reason any }

type startAck struct {
	ignore bool
	err    error
}

type server struct {
	info   runtime.ModuleInfo
	mod    Module
	arg    any
	state  any
	parent runtime.PID
	ack    chan startAck
	tgen   uint64
	timer  *time.Timer

	initResult Result // Init's, when InitContinue is to act on it

	terminating bool // Terminate has been called; it runs at most once
}

// Start starts a server not linked to any process (gen_server:start/4).
func Start(n *runtime.Node, mod Module, arg any, opts Options) (runtime.PID, error) {
	s := &server{mod: mod, arg: arg, ack: make(chan startAck, 1), info: moduleInfo(mod, opts)}
	so := runtime.SpawnOpts{Name: opts.Name, TrapExit: opts.TrapExit}
	if opts.Timeout <= 0 {
		return s.started(n.SpawnInit(s, so))
	}
	pid, err := n.SpawnBehaviour(s, so)
	return s.wait(n, pid, err, opts)
}

// StartLink starts a server linked to parent (gen_server:start_link/4). If
// Init fails the link is removed first, so parent gets no EXIT message (as
// in OTP 26 and later).
func StartLink(parent *runtime.Process, mod Module, arg any, opts Options) (runtime.PID, error) {
	s := &server{mod: mod, arg: arg, parent: parent.Self(), ack: make(chan startAck, 1), info: moduleInfo(mod, opts)}
	so := runtime.SpawnOpts{Name: opts.Name, Link: true, TrapExit: opts.TrapExit}
	if opts.Timeout <= 0 {
		// No timeout to enforce: Init runs here, where the start would
		// wait for it anyway.
		return s.started(parent.SpawnInit(s, so))
	}
	pid, _, err := parent.SpawnBehaviour(s, so)
	return s.wait(parent.Node(), pid, err, opts)
}

// started answers a start whose Init ran on the starter's goroutine: the
// ack is in, or the process died before it could ack.
func (s *server) started(pid runtime.PID, exited bool, reason any, err error) (runtime.PID, error) {
	if err != nil {
		return runtime.PID{}, err
	}
	select {
	case a := <-s.ack:
		return a.result(pid)
	default:
	}
	if exited {
		return runtime.PID{}, &StartError{Reason: reason}
	}
	// Init acks or exits; a process alive without an ack cannot be.
	return runtime.PID{}, &StartError{Reason: errNoAck}
}

var errNoAck = errors.New("genserver: Init ended without acknowledging the start")

func moduleInfo(mod Module, opts Options) runtime.ModuleInfo {
	name, vsn := opts.Module, opts.Version
	if name == "" {
		t := reflect.TypeOf(mod)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		name = t.Name()
	}
	if vsn == "" {
		vsn = "1"
	}
	return runtime.ModuleInfo{Behaviour: "gen_server", Module: name, Version: vsn}
}

func (s *server) wait(n *runtime.Node, pid runtime.PID, err error, opts Options) (runtime.PID, error) {
	if err != nil {
		return runtime.PID{}, err
	}
	w := n.Monitor(pid)
	defer w.Cancel()
	var timeout <-chan time.Time
	if opts.Timeout > 0 {
		t := time.NewTimer(opts.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case a := <-s.ack:
		if a.ignore || a.err != nil {
			// As in OTP 26, a failed start returns once the process is
			// gone, so its name is free again.
			<-w.C
			return runtime.PID{}, a.startErr()
		}
		return pid, nil
	case d := <-w.C:
		// The process may have acknowledged its start and exited at once.
		select {
		case a := <-s.ack:
			return a.result(pid)
		default:
		}
		return runtime.PID{}, &StartError{Reason: d.Reason}
	case <-timeout:
		n.Exit(pid, runtime.Kill)
		<-w.C
		return runtime.PID{}, &StartError{Reason: runtime.ErrTimeout}
	}
}

// result is the start's answer: pid, or the error the ack carries.
func (a startAck) result(pid runtime.PID) (runtime.PID, error) {
	if a.ignore || a.err != nil {
		return runtime.PID{}, a.startErr()
	}
	return pid, nil
}

func (a startAck) startErr() error {
	if a.ignore {
		return ErrIgnore
	}
	return a.err
}

// Init runs the module's Init inside the new process.
func (s *server) Init(p *runtime.Process) {
	p.SetModule(s.info)
	var r Result
	func() {
		defer func() {
			if x := recover(); x != nil {
				r = Stop(runtime.RecoveredReason(x), nil)
			}
		}()
		r = s.mod.Init(p, s.arg)
	}()
	switch r.action {
	case actIgnore:
		p.Unlink(s.parent)
		s.ack <- startAck{ignore: true}
		p.Exit(runtime.Normal)
	case actStop:
		p.Unlink(s.parent)
		s.ack <- startAck{err: &StartError{Reason: r.reason}}
		p.Exit(r.reason)
	}
	s.state = r.state
	s.ack <- startAck{}
	if r.hasCont {
		// handle_continue runs after the ack, as in gen_server: the
		// starter need not wait for it.
		s.initResult = r
		p.ContinueAfterInit()
		return
	}
	defer s.recoverCallback(p)
	s.after(p, r)
}

// InitContinue runs the HandleContinue that Init asked for.
func (s *server) InitContinue(p *runtime.Process) {
	r := s.initResult
	s.initResult = Result{}
	defer s.recoverCallback(p)
	s.after(p, r)
}

// recoverCallback turns a crash or an Exit in a callback into the server's
// exit, running Terminate first (once) as gen_server does.
func (s *server) recoverCallback(p *runtime.Process) {
	x := recover()
	if x == nil {
		return
	}
	reason := runtime.RecoveredReason(x)
	if !s.terminating {
		s.terminate(p, reason)
	}
	if runtime.IsExitPanic(x) {
		panic(x)
	}
	p.Exit(reason)
}

// Handle dispatches one message to the module.
func (s *server) Handle(p *runtime.Process, msg any) {
	if m, ok := msg.(timeoutMsg); ok && (m.gen != s.tgen || s.timer == nil) {
		return // a timeout that a later message already cancelled
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.tgen++
	var r Result
	var from runtime.From
	defer s.recoverCallback(p)
	switch m := msg.(type) {
	case *runtime.Request:
		if st, ok := m.Body.(stopMsg); ok {
			s.terminate(p, st.reason)
			m.From.Reply(nil)
			p.Exit(st.reason)
		}
		from = m.From
		r = s.mod.HandleCall(p, m.Body, m.From, s.state)
	case castMsg:
		r = s.mod.HandleCast(p, m.msg, s.state)
	case timeoutMsg:
		r = s.mod.HandleInfo(p, runtime.TimeoutMsg{}, s.state)
	case runtime.ExitMsg:
		if m.From == s.parent && !s.parent.IsZero() {
			// A trapping server stops with its parent's reason, running
			// terminate first, as gen_server does.
			s.terminate(p, m.Reason)
			p.Exit(m.Reason)
		}
		r = s.mod.HandleInfo(p, msg, s.state)
	default:
		r = s.mod.HandleInfo(p, msg, s.state)
	}
	if r.action == actReply || r.hasReply {
		from.Reply(r.reply)
	}
	s.after(p, r)
}

// after applies a result: stop, continue, hibernate or an idle timeout.
func (s *server) after(p *runtime.Process, r Result) {
	for {
		s.state = r.state
		if r.action == actStop {
			s.terminate(p, r.reason)
			p.Exit(r.reason)
		}
		if !r.hasCont {
			break
		}
		c, ok := s.mod.(Continuer)
		if !ok {
			reason := fmt.Errorf("%T returned Continue but has no HandleContinue", s.mod)
			s.terminate(p, reason)
			p.Exit(reason)
		}
		r = c.HandleContinue(p, r.cont, s.state)
	}
	if r.hibernate {
		p.Hibernate()
	}
	if r.hasTimeout && r.timeout >= 0 {
		gen := s.tgen
		self := p.Self()
		n := p.Node()
		s.timer = time.AfterFunc(r.timeout, func() { _ = n.Send(self, timeoutMsg{gen: gen}) })
	}
}

func (s *server) terminate(p *runtime.Process, reason any) {
	s.terminating = true
	if s.timer != nil {
		s.timer.Stop()
	}
	if t, ok := s.mod.(Terminator); ok && p.Alive() {
		t.Terminate(p, reason, s.state)
	}
}

// SysState returns the server's state.
func (s *server) SysState() any { return s.state }

// SysReplaceState replaces the state.
func (s *server) SysReplaceState(fn func(any) any) (next any, err error) {
	// A function that panics leaves the server running with its state
	// unchanged, as OTP's replace_state does.
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("replace_state function failed: %v", x)
		}
	}()
	next = fn(s.state)
	s.state = next
	return next, nil
}

// SysChangeCode switches to module mod, migrating the state with its
// CodeChange. On error the old code and state stay.
func (s *server) SysChangeCode(p *runtime.Process, mod any, _ string, extra any) (err error) {
	// A code_change that panics leaves the server on its old code, as
	// OTP's sys does.
	defer func() {
		if x := recover(); x != nil {
			if runtime.IsExitPanic(x) {
				panic(x)
			}
			err = fmt.Errorf("genserver: code_change panicked: %v", x)
		}
	}()
	next, ok := mod.(Module)
	if !ok {
		return fmt.Errorf("%T is not a gen_server module", mod)
	}
	state := s.state
	if cc, ok := next.(CodeChanger); ok {
		var err error
		oldVsn := p.Module().Version
		if state, err = cc.CodeChange(oldVsn, state, extra); err != nil {
			return err
		}
	}
	s.mod, s.state = next, state
	return nil
}

// Call makes a synchronous call (gen_server:call/3).
func Call(c runtime.Caller, to runtime.Target, req any, timeout time.Duration) (any, error) {
	return c.Call(to, req, timeout)
}

// Cast sends an asynchronous request (gen_server:cast/2); like OTP's it
// never fails for a dead PID.
func Cast(c runtime.Caller, to runtime.Target, msg any) error {
	return c.Send(to, castMsg{msg})
}

// StopServer stops a server with reason (gen_server:stop/3): terminate runs
// and StopServer returns once the process is gone.
func StopServer(n *runtime.Node, to runtime.Target, reason any, timeout time.Duration) error {
	w := n.Monitor(to)
	defer w.Cancel()
	if _, err := n.Call(to, stopMsg{reason}, timeout); err != nil {
		var ee *runtime.ExitError
		if !errors.As(err, &ee) || runtime.SameReason(ee.Reason, runtime.NoProc) {
			return err
		}
	}
	d := <-w.C
	if !runtime.SameReason(d.Reason, reason) {
		// terminate crashed: the server died of something else.
		return &runtime.ExitError{PID: d.PID, Reason: d.Reason}
	}
	return nil
}
