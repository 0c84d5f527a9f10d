// Package statem is OTP's gen_statem behaviour on the observer runtime.
//
// A state machine is a Module (its callbacks), a state and a data value.
// The callback mode follows from the methods the module has:
// handle_event_function if it implements EventHandler (one HandleEvent for
// every state), state_functions if it implements StateFunctions (a function
// per state, looked up in the States map). A module that implements
// StateEnterer and returns true gets state enter calls.
//
// Events are handled one at a time, as gen_statem's manual describes: the
// callback's actions run in order (replies are sent at once), the state
// enter call follows a state change, then postponed events are retried
// (after a state change), inserted events are put first in the queue, and
// the timers are set. Events the machine queued itself (inserted and
// retried ones, then timeouts that expire at once) are all handled before
// the next message is taken from the mailbox.
//
// Timeouts are durations. runtime.Infinity never expires, so setting a
// timer to it cancels the timer; zero, or any other negative duration,
// expires at once, delivering its event after the events already queued
// but before any message not yet received.
//
// States are compared with ==; use comparable values (in the
// state_functions mode they are the States map's keys).
package statem

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"observer/internal/runtime"
)

// Module is a gen_statem callback module. Besides Init it implements
// exactly one of EventHandler and StateFunctions.
type Module interface {
	// Init returns Ok(state, data, actions...), Ignore(), or
	// StopMachine(reason, nil).
	Init(p *runtime.Process, arg any) Result
}

// EventHandler is the handle_event_function callback mode: one callback
// for every state. For a state enter call et.Kind is KindEnter and content
// is the old state.
type EventHandler interface {
	HandleEvent(p *runtime.Process, et EventType, content any, state, data any) Result
}

// StateFunc handles the events of one state (Module:StateName/3). For a
// state enter call et.Kind is KindEnter and content is the old state.
type StateFunc func(p *runtime.Process, et EventType, content any, data any) Result

// States maps each state to its function.
type States map[any]StateFunc

// StateFunctions is the state_functions callback mode. States is read once
// at start and once after each code change.
type StateFunctions interface {
	States() States
}

// StateEnterer is implemented by modules that choose whether to get state
// enter calls (callback_mode's state_enter).
type StateEnterer interface {
	StateEnter() bool
}

// Terminator is implemented by modules with a terminate/3 callback. It runs
// when a callback returns StopMachine or StopAndReply, when a callback
// panics or returns something invalid, on Stop, and on a parent's exit
// signal only if the machine traps exits.
type Terminator interface {
	Terminate(p *runtime.Process, reason any, state, data any)
}

// CodeChanger is implemented by modules that migrate state and data on a
// code change (code_change/4). The new module's CodeChange receives the old
// version, state and data. Renaming the state is not a state change: no
// enter call runs and postponed events stay postponed.
type CodeChanger interface {
	CodeChange(oldVersion string, state, data, extra any) (newState, newData any, err error)
}

// StateData is what sys.GetState returns for a state machine and what a
// sys.ReplaceState function receives and must return.
type StateData struct {
	State any
	Data  any
}

// Errors that Start returns or a machine exits with. An exit reason reaches
// a caller wrapped in a *runtime.ExitError, through which errors.Is sees it.
var (
	// ErrIgnore is the start result of an Init that returned Ignore.
	ErrIgnore = errors.New("ignore")
	// ErrBadCallbackMode: the module implements neither or both of
	// EventHandler and StateFunctions, or its States map is empty.
	ErrBadCallbackMode = errors.New("statem: bad callback mode")
	// ErrBadResult: a callback returned a Result not allowed where it was
	// returned, such as a state change from a state enter call.
	ErrBadResult = errors.New("statem: bad callback result")
	// ErrBadAction: a callback returned an Action not allowed where it was
	// returned, such as Postpone from a state enter call.
	ErrBadAction = errors.New("statem: bad action")
	// ErrUnknownState: in the state_functions mode, the state has no function.
	ErrUnknownState = errors.New("statem: no function for state")
)

// StartError is a start that failed: Init returned StopMachine, returned
// something invalid, or crashed.
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
	// Name registers the machine.
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

// Start starts a state machine not linked to any process
// (gen_statem:start/4).
func Start(n *runtime.Node, mod Module, arg any, opts Options) (runtime.PID, error) {
	m, err := newMachine(mod, arg, opts)
	if err != nil {
		return runtime.PID{}, err
	}
	so := runtime.SpawnOpts{Name: opts.Name, TrapExit: opts.TrapExit}
	if opts.Timeout <= 0 {
		return m.started(n.SpawnInit(m, so))
	}
	pid, err := n.SpawnBehaviour(m, so)
	return m.wait(n, pid, err, opts)
}

// StartLink starts a state machine linked to parent
// (gen_statem:start_link/4). If Init fails the link is removed first, so
// parent gets no EXIT message (as in OTP 26 and later).
func StartLink(parent *runtime.Process, mod Module, arg any, opts Options) (runtime.PID, error) {
	m, err := newMachine(mod, arg, opts)
	if err != nil {
		return runtime.PID{}, err
	}
	m.parent = parent.Self()
	so := runtime.SpawnOpts{Name: opts.Name, Link: true, TrapExit: opts.TrapExit}
	if opts.Timeout <= 0 {
		// No timeout to enforce: Init runs here, where the start would
		// wait for it anyway.
		return m.started(parent.SpawnInit(m, so))
	}
	pid, _, err := parent.SpawnBehaviour(m, so)
	return m.wait(parent.Node(), pid, err, opts)
}

// started answers a start whose Init ran on the starter's goroutine: the
// ack is in, or the process died before it could ack.
func (m *machine) started(pid runtime.PID, exited bool, reason any, err error) (runtime.PID, error) {
	if err != nil {
		return runtime.PID{}, err
	}
	select {
	case a := <-m.ack:
		return ackResult(pid, a)
	default:
	}
	if exited {
		return runtime.PID{}, &StartError{Reason: reason}
	}
	// Init acks or exits; a process alive without an ack cannot be.
	return runtime.PID{}, &StartError{Reason: errNoAck}
}

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
	return runtime.ModuleInfo{Behaviour: "gen_statem", Module: name, Version: vsn}
}

type startAck struct {
	ignore bool
	err    error
}

func (m *machine) wait(n *runtime.Node, pid runtime.PID, err error, opts Options) (runtime.PID, error) {
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
	case a := <-m.ack:
		if a.ignore || a.err != nil {
			// The process exits right after a failed ack. Return once it
			// has, so that its name is free, as OTP 26's proc_lib does.
			<-w.C
		}
		return ackResult(pid, a)
	case d := <-w.C:
		// Init acks before the process can exit, so an ack here is the
		// answer: a failed Init's precise error, or a start that succeeded
		// before the machine stopped.
		select {
		case a := <-m.ack:
			return ackResult(pid, a)
		default:
		}
		return runtime.PID{}, &StartError{Reason: d.Reason}
	case <-timeout:
		n.Exit(pid, runtime.Kill)
		return runtime.PID{}, &StartError{Reason: runtime.ErrTimeout}
	}
}

var errNoAck = errors.New("statem: Init ended without acknowledging the start")

func ackResult(pid runtime.PID, a startAck) (runtime.PID, error) {
	switch {
	case a.ignore:
		return runtime.PID{}, ErrIgnore
	case a.err != nil:
		return runtime.PID{}, a.err
	}
	return pid, nil
}

type castMsg struct{ msg any }
type stopMsg struct{ reason any }

// Call makes a synchronous call, delivered as a KindCall event
// (gen_statem:call/3). Its failures are told apart with errors.Is/As:
// runtime.ErrNoProc, runtime.ErrTimeout, runtime.ErrCallingSelf, and
// *runtime.ExitError with the machine's reason when it exits during the
// call. OTP's call/2 waits forever: pass runtime.Infinity.
func Call(c runtime.Caller, to runtime.Target, req any, timeout time.Duration) (any, error) {
	return c.Call(to, req, timeout)
}

// Cast sends an asynchronous request, delivered as a KindCast event
// (gen_statem:cast/2); like OTP's it never fails for a dead PID.
func Cast(c runtime.Caller, to runtime.Target, msg any) error {
	return c.Send(to, castMsg{msg})
}

// Stop stops a state machine with reason (gen_statem:stop/3): Terminate
// runs, and Stop returns once the process is gone. If the machine exits
// some other way meanwhile (Terminate panics, or it was already exiting),
// Stop returns that exit as a *runtime.ExitError.
func Stop(n *runtime.Node, to runtime.Target, reason any, timeout time.Duration) error {
	w := n.Monitor(to)
	defer w.Cancel()
	if _, err := n.Call(to, stopMsg{reason}, timeout); err != nil {
		return err
	}
	<-w.C
	return nil
}

// sameState reports whether a and b are the same state; uncomparable
// states are never the same, rather than a panic.
func sameState(a, b any) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

func badResult(r Result, where string) error {
	return fmt.Errorf("%w: %v from %s", ErrBadResult, r.kind, where)
}
