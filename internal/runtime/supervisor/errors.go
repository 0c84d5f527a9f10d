package supervisor

import (
	"errors"
	"fmt"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
)

// The errors of the admin API, one per OTP {error, Reason}; tell them apart
// with errors.Is.
var (
	// ErrNotFound: no child has that ID (or that PID).
	ErrNotFound = errors.New("not_found")
	// ErrRunning: the child is running, so it cannot be restarted or deleted.
	ErrRunning = errors.New("running")
	// ErrRestarting: the child is in a restart loop.
	ErrRestarting = errors.New("restarting")
	// ErrAlreadyPresent: a stopped child with that ID exists.
	ErrAlreadyPresent = errors.New("already_present")
	// ErrSimpleOneForOne: the call is not allowed on a simple_one_for_one supervisor.
	ErrSimpleOneForOne = errors.New("simple_one_for_one")
	// ErrNotSimpleOneForOne: StartDynamicChild on a supervisor of another strategy.
	ErrNotSimpleOneForOne = errors.New("not a simple_one_for_one supervisor")
	// ErrInvalidSpec wraps every rejected flag or child specification.
	ErrInvalidSpec = errors.New("invalid supervisor spec")
)

// ErrIgnore is the start result that means ignore. It is genserver.ErrIgnore,
// so a gen_server whose Init returns Ignore is ignored without translation.
var ErrIgnore = genserver.ErrIgnore

// AlreadyStartedError is {error, {already_started, Child}}: a running child
// already has the ID given to StartChild.
type AlreadyStartedError struct{ PID runtime.PID }

// Error describes the clash.
func (e *AlreadyStartedError) Error() string { return fmt.Sprintf("already_started %v", e.PID) }

// ChildStartError is a start-up that failed because child ID could not
// start: Start returns it, and the supervisor exits with
// runtime.ShutdownReason{Term: it}, that is
// {shutdown, {failed_to_start_child, Id, Reason}}.
type ChildStartError struct {
	ID     string
	Reason any
}

// Error prints the Erlang term.
func (e *ChildStartError) Error() string {
	return fmt.Sprintf("{failed_to_start_child,%s,%s}", e.ID, runtime.FormatReason(e.Reason))
}

// Unwrap exposes an error reason, such as a *genserver.StartError.
func (e *ChildStartError) Unwrap() error {
	if err, ok := e.Reason.(error); ok {
		return err
	}
	return nil
}

// errNoPID is a start function that returned neither a PID nor an error.
var errNoPID = errors.New("start function returned no pid")
