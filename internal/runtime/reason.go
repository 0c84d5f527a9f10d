package runtime

import (
	"errors"
	"fmt"
)

// Atom is an Erlang atom used as a message or an exit reason.
type Atom string

// String returns the atom's text.
func (a Atom) String() string { return string(a) }

// The exit reasons that OTP gives a meaning to.
const (
	// Normal is the reason of a process that finished its work.
	Normal Atom = "normal"
	// Kill is the untrappable exit signal sent with Exit(pid, Kill).
	Kill Atom = "kill"
	// Killed is what links and monitors see of a process killed with Kill.
	Killed Atom = "killed"
	// Shutdown is the reason a supervisor uses to stop a child.
	Shutdown Atom = "shutdown"
	// NoProc is the reason of a monitor or link on a process that does not exist.
	NoProc Atom = "noproc"
)

// ShutdownReason is Erlang's {shutdown, Term}: a clean exit with a detail.
type ShutdownReason struct{ Term any }

// String prints {shutdown,Term}.
func (s ShutdownReason) String() string { return fmt.Sprintf("{shutdown,%v}", FormatReason(s.Term)) }

// PanicError is the exit reason of a process whose code panicked. It carries
// the panic value and the goroutine's stack at the panic.
type PanicError struct {
	Value any
	Stack string
}

// Error describes the panic.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// IsNormal reports whether reason is exactly normal.
func IsNormal(reason any) bool {
	a, ok := reason.(Atom)
	return ok && a == Normal
}

// IsClean reports whether reason is normal, shutdown or {shutdown, _}: the
// reasons a transient child is not restarted for and that are not logged as
// crashes.
func IsClean(reason any) bool {
	switch r := reason.(type) {
	case Atom:
		return r == Normal || r == Shutdown
	case ShutdownReason, *ShutdownReason:
		return true
	}
	return false
}

// SameReason compares two reasons without panicking on uncomparable values.
func SameReason(a, b any) bool {
	defer func() { _ = recover() }()
	return a == b
}

// FormatReason prints a reason for reports and the observer.
func FormatReason(reason any) string {
	switch r := reason.(type) {
	case nil:
		return "undefined"
	case Atom:
		return string(r)
	case *PanicError:
		return r.Error()
	case error:
		return r.Error()
	case fmt.Stringer:
		return r.String()
	}
	return fmt.Sprintf("%v", reason)
}

// Errors returned by the runtime; callers tell them apart with errors.Is.
var (
	// ErrNoProc: the process does not exist or is not alive.
	ErrNoProc = errors.New("noproc")
	// ErrTimeout: a call got no reply in time.
	ErrTimeout = errors.New("timeout")
	// ErrCallingSelf: a process called itself, which would deadlock.
	ErrCallingSelf = errors.New("calling_self")
	// ErrBadArg: an argument is invalid (badarg).
	ErrBadArg = errors.New("badarg")
	// ErrNotRegistered: the name is not registered.
	ErrNotRegistered = errors.New("not registered")
	// ErrNotSys: the process does not handle system messages (a body process).
	ErrNotSys = errors.New("process does not handle system messages")
	// ErrCallerExited: the calling process was killed while it waited.
	ErrCallerExited = errors.New("caller exited")
)

// ExitError is the failure of a call whose callee exited before replying.
// Its Reason is the callee's exit reason; errors.Is(err, ErrNoProc) holds
// when the callee was already dead.
type ExitError struct {
	PID    PID
	Reason any
}

// Error describes the exit.
func (e *ExitError) Error() string {
	return fmt.Sprintf("%v exited: %s", e.PID, FormatReason(e.Reason))
}

// Is lets errors.Is(err, ErrNoProc) match a callee that did not exist.
func (e *ExitError) Is(target error) bool {
	if target == ErrNoProc {
		a, ok := e.Reason.(Atom)
		return ok && a == NoProc
	}
	return false
}

// Unwrap exposes an error reason (such as a *PanicError) to errors.As.
func (e *ExitError) Unwrap() error {
	if err, ok := e.Reason.(error); ok {
		return err
	}
	return nil
}

// ProcessLimitError is returned when a spawn would exceed the node's process
// limit (Erlang's +P, system_limit).
type ProcessLimitError struct{ Limit int }

// Error describes the limit.
func (e *ProcessLimitError) Error() string {
	return fmt.Sprintf("system_limit: the process limit of %d processes is reached (raise it with the node's MaxProcesses)", e.Limit)
}

// AlreadyRegisteredError is returned when a name is taken; PID holds its owner.
type AlreadyRegisteredError struct {
	Name string
	PID  PID
}

// Error describes the clash.
func (e *AlreadyRegisteredError) Error() string {
	return fmt.Sprintf("name %q is already registered to %v", e.Name, e.PID)
}

// ExitMsg is the message a process trapping exits receives for an exit
// signal: {'EXIT', From, Reason}.
type ExitMsg struct {
	From   PID
	Reason any
}

// DownMsg is a monitor's message: {'DOWN', Ref, process, PID, Reason}.
type DownMsg struct {
	Ref    Ref
	PID    PID
	Reason any
}

// TimeoutMsg is delivered by a receive or behaviour timeout.
type TimeoutMsg struct{}

// exitUnwind is panicked by Process.Exit to unwind the process's code.
type exitUnwind struct{ reason any }
