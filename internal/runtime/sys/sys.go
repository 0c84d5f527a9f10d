// Package sys is OTP's sys module: suspend and resume a behaviour process,
// read and replace its state, change its code, and switch its statistics
// and message tracing on and off. Every call takes a timeout and never
// blocks past it, so the observer can use them from its UI loop's commands.
package sys

import (
	"time"

	"observer/internal/runtime"
)

// DefaultTimeout is sys's default 5 seconds.
const DefaultTimeout = 5 * time.Second

// Suspend suspends the process: its messages queue until Resume; system
// messages are still served (sys:suspend/2).
func Suspend(n *runtime.Node, to runtime.Target, timeout time.Duration) error {
	_, err := n.SysRequest(to, runtime.SysSuspend(), timeout)
	return err
}

// Resume resumes a suspended process (sys:resume/2).
func Resume(n *runtime.Node, to runtime.Target, timeout time.Duration) error {
	_, err := n.SysRequest(to, runtime.SysResume(), timeout)
	return err
}

// GetState returns the behaviour's state (sys:get_state/2).
func GetState(n *runtime.Node, to runtime.Target, timeout time.Duration) (any, error) {
	return n.SysRequest(to, runtime.SysGetState(), timeout)
}

// FormatState returns the behaviour's state printed as text. The text is
// made inside the process, so reading it never races with the process
// changing its state, as formatting the value GetState returns could.
func FormatState(n *runtime.Node, to runtime.Target, timeout time.Duration) (string, error) {
	v, err := n.SysRequest(to, runtime.SysFormatState(), timeout)
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// ReplaceState replaces the state with fn(state) and returns the new state
// (sys:replace_state/3).
func ReplaceState(n *runtime.Node, to runtime.Target, fn func(any) any, timeout time.Duration) (any, error) {
	return n.SysRequest(to, runtime.SysReplaceState(fn), timeout)
}

// ChangeCode moves a suspended process to module at version, running the
// module's code_change with the old state (sys:change_code/5).
func ChangeCode(n *runtime.Node, to runtime.Target, module any, version string, extra any, timeout time.Duration) error {
	_, err := n.SysRequest(to, runtime.SysChangeCode(module, version, extra), timeout)
	return err
}

// Statistics switches the process's statistics on or off (sys:statistics/3).
// Read them with Node.StatisticsOf.
func Statistics(n *runtime.Node, to runtime.Target, on bool, timeout time.Duration) error {
	_, err := n.SysRequest(to, runtime.SysStatistics(on), timeout)
	return err
}

// Trace switches message tracing on or off (sys:trace/3): each message the
// process receives and sends appears on the event stream as EventTrace.
func Trace(n *runtime.Node, to runtime.Target, on bool, timeout time.Duration) error {
	_, err := n.SysRequest(to, runtime.SysTrace(on), timeout)
	return err
}
