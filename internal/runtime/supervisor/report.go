package supervisor

import (
	"fmt"
	"time"

	"observer/internal/runtime"
)

// The names of the supervisor's reports: the Text of the runtime.Event
// (Kind runtime.EventSupervisor) that each publishes. The event's PID is the
// supervisor, Other the child, Name the child's ID, Reason the exit or error
// reason, and Data a Report.
const (
	// ReportChildStarted: a child started at start-up, by StartChild,
	// StartDynamicChild or RestartChild (OTP's progress report).
	ReportChildStarted = "child_started"
	// ReportChildExited: a child exited on its own; Reason is its exit reason
	// (OTP's child_terminated error report, published for every reason).
	ReportChildExited = "child_exited"
	// ReportChildRestarted: the supervisor restarted a child, the one that
	// exited or a sibling in a one_for_all or rest_for_one group.
	ReportChildRestarted = "child_restarted"
	// ReportChildTerminated: the supervisor stopped a child; Reason is what
	// the child's monitor reported (shutdown, or killed after the timeout).
	ReportChildTerminated = "child_terminated"
	// ReportStartFailed: a child failed to start during start-up (OTP's start_error).
	ReportStartFailed = "start_failed"
	// ReportRestartFailed: a restart failed and will be retried (OTP's start_error).
	ReportRestartFailed = "restart_failed"
	// ReportRestartDelayed: with Backoff, a restart waits Report.Delay (extension).
	ReportRestartDelayed = "restart_delayed"
	// ReportShutdown: the supervisor is stopping its children and exiting with Reason.
	ReportShutdown = "shutdown"
	// ReportMaxIntensity: more restarts than Intensity within Period; the
	// supervisor gives up and exits with shutdown.
	ReportMaxIntensity = "reached_max_restart_intensity"
	// ReportAutoShutdown: significant children exited and AutoShutdown stops the supervisor.
	ReportAutoShutdown = "auto_shutdown"
)

// Report is the Data of a supervisor event: the child it is about.
type Report struct {
	ID      string
	Child   runtime.PID
	Restart Restart
	Type    ChildType
	// Delay is the backoff of a ReportRestartDelayed.
	Delay time.Duration
}

// String prints the report for event logs.
func (r Report) String() string {
	s := fmt.Sprintf("id=%s pid=%v restart=%v type=%v", r.ID, r.Child, r.Restart, r.Type)
	if r.Delay > 0 {
		s += " delay=" + r.Delay.String()
	}
	return s
}

// report publishes a report about child c (nil for reports about the
// supervisor alone). Publish costs nothing when nobody subscribes.
func (s *sup) report(text string, c *child, pid runtime.PID, reason any) {
	e := runtime.Event{Kind: runtime.EventSupervisor, PID: s.self, Other: pid, Text: text, Reason: reason}
	if c != nil {
		e.Name = c.spec.ID
		e.Data = Report{ID: c.spec.ID, Child: pid, Restart: c.spec.Restart, Type: c.spec.Type}
	}
	s.node.Publish(e)
}
