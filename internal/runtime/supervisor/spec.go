package supervisor

import (
	"fmt"
	"time"

	"observer/internal/runtime"
)

// Strategy is the restart strategy: which children restart when one exits.
type Strategy uint8

// The restart strategies of supervisor(3). The zero value is OneForOne, OTP's default.
const (
	// OneForOne restarts only the child that exited.
	OneForOne Strategy = iota
	// OneForAll stops every other child and restarts them all.
	OneForAll
	// RestForOne stops and restarts the children started after the one that exited.
	RestForOne
	// SimpleOneForOne is OneForOne for many dynamic children of one template.
	SimpleOneForOne
)

var strategyNames = [...]string{"one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"}

// String returns the strategy's Erlang name.
func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("strategy(%d)", uint8(s))
}

// AutoShutdown says whether the supervisor shuts itself down when
// significant children exit.
type AutoShutdown uint8

// The auto_shutdown settings. The zero value is Never, OTP's default.
const (
	// Never: significant children are not allowed.
	Never AutoShutdown = iota
	// AnySignificant: the supervisor shuts down when any significant child exits.
	AnySignificant
	// AllSignificant: the supervisor shuts down when no significant child is left.
	AllSignificant
)

var autoShutdownNames = [...]string{"never", "any_significant", "all_significant"}

// String returns the setting's Erlang name.
func (a AutoShutdown) String() string {
	if int(a) < len(autoShutdownNames) {
		return autoShutdownNames[a]
	}
	return fmt.Sprintf("auto_shutdown(%d)", uint8(a))
}

// Restart says when an exited child is restarted.
type Restart uint8

// The restart types. The zero value is Permanent, OTP's default.
const (
	// Permanent children are always restarted.
	Permanent Restart = iota
	// Transient children are restarted only after an abnormal exit (a reason
	// other than normal, shutdown or {shutdown, _}).
	Transient
	// Temporary children are never restarted and are forgotten once they exit.
	Temporary
)

var restartNames = [...]string{"permanent", "transient", "temporary"}

// String returns the restart type's Erlang name.
func (r Restart) String() string {
	if int(r) < len(restartNames) {
		return restartNames[r]
	}
	return fmt.Sprintf("restart(%d)", uint8(r))
}

// ChildType says whether a child is a worker or a supervisor.
type ChildType uint8

// The child types. The zero value is Worker, OTP's default.
const (
	// Worker is any child that is not a supervisor.
	Worker ChildType = iota
	// Supervisor is a child supervisor; its Shutdown defaults to Infinity.
	Supervisor
)

// String returns the child type's Erlang name.
func (t ChildType) String() string {
	if t == Supervisor {
		return "supervisor"
	}
	return "worker"
}

// Shutdown values of ChildSpec.Shutdown besides a positive timeout.
const (
	// BrutalKill stops the child with an untrappable kill at once.
	BrutalKill time.Duration = -2
	// Infinity waits for the child to stop however long it takes.
	Infinity time.Duration = runtime.Infinity
	// DefaultWorkerShutdown is the timeout a worker gets when Shutdown is zero.
	DefaultWorkerShutdown = 5 * time.Second
)

// Intensity and period defaults of OTP, for callers who want them spelled out.
const (
	// DefaultIntensity is OTP's default intensity.
	DefaultIntensity = 1
	// DefaultPeriod is OTP's default period in seconds, used when Period is zero.
	DefaultPeriod = 5
)

// Backoff delays restarts, doubling the delay from Initial up to Max for a
// child that keeps failing. It is an extension: OTP restarts at once, and
// the zero Backoff does the same. A child that has run longer than Max since
// its last start begins again at Initial. The restart still counts toward
// the intensity when the exit happens; during the delay the child shows as
// restarting and the supervisor keeps serving calls and shutdown.
type Backoff struct {
	Initial time.Duration
	// Max caps the delay; below Initial the delay stays at Initial.
	Max time.Duration
}

// Flags are the supervisor flags (sup_flags()).
type Flags struct {
	Strategy Strategy
	// Intensity is how many restarts are allowed within Period seconds;
	// one more and the supervisor gives up. Zero allows none (OTP's default
	// is DefaultIntensity).
	Intensity int
	// Period is the intensity window in whole seconds; zero means DefaultPeriod.
	Period       int
	AutoShutdown AutoShutdown
	// Backoff delays restarts (an extension; the zero value restarts at once).
	Backoff Backoff
}

// StartFunc starts a child from inside the supervisor process p and must
// link it to p, as genserver.StartLink(p, ...) and StartLink(p, ...) do.
// Returning ErrIgnore (genserver.ErrIgnore) means ignore.
type StartFunc func(p *runtime.Process) (runtime.PID, error)

// ChildSpec is a child specification (child_spec()).
type ChildSpec struct {
	// ID names the child within its supervisor; ignored for the template of
	// a SimpleOneForOne supervisor.
	ID    string
	Start StartFunc
	// StartArgs starts a SimpleOneForOne child with StartDynamicChild's
	// argument, like apply(M, F, A ++ ExtraArgs); Start is used when nil.
	StartArgs func(p *runtime.Process, args any) (runtime.PID, error)
	Restart   Restart
	// Shutdown is BrutalKill, Infinity, or how long the child gets to stop
	// after the shutdown exit signal before it is killed. Zero means
	// DefaultWorkerShutdown for a worker and Infinity for a supervisor.
	Shutdown time.Duration
	Type     ChildType
	// Significant children trigger AutoShutdown; only for Transient and
	// Temporary children of a supervisor whose AutoShutdown is not Never.
	Significant bool
	// Module and Version name the child's code for the observer.
	Module  string
	Version string
}

// Spec is what a supervisor runs: its flags and its children in start
// order (the value Module:init/1 returns).
type Spec struct {
	Flags    Flags
	Children []ChildSpec
}

// period returns the window in seconds with the default applied.
func (f Flags) period() int {
	if f.Period == 0 {
		return DefaultPeriod
	}
	return f.Period
}

// shutdown returns the shutdown with the default applied.
func (c ChildSpec) shutdown() time.Duration {
	if c.Shutdown != 0 {
		return c.Shutdown
	}
	if c.Type == Supervisor {
		return Infinity
	}
	return DefaultWorkerShutdown
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidSpec}, args...)...)
}

func (f Flags) check() error {
	switch {
	case f.Strategy > SimpleOneForOne:
		return invalid("invalid_strategy %v", f.Strategy)
	case f.Intensity < 0:
		return invalid("invalid_intensity %d", f.Intensity)
	case f.Period < 0:
		return invalid("invalid_period %d", f.Period)
	case f.AutoShutdown > AllSignificant:
		return invalid("invalid_auto_shutdown %v", f.AutoShutdown)
	case f.AutoShutdown != Never && f.Strategy == SimpleOneForOne:
		// OTP 25 allowed it; newer releases reject it.
		return invalid("bad_combination strategy simple_one_for_one with auto_shutdown %v", f.AutoShutdown)
	case f.Backoff.Initial < 0 || f.Backoff.Max < 0:
		return invalid("negative backoff %v", f.Backoff)
	}
	return nil
}

func (c ChildSpec) check(f Flags) error {
	switch {
	case c.ID == "" && f.Strategy != SimpleOneForOne:
		return invalid("missing_id")
	case c.Start == nil && c.StartArgs == nil:
		return invalid("missing_start for child %q", c.ID)
	case c.StartArgs != nil && c.Start == nil && f.Strategy != SimpleOneForOne:
		return invalid("child %q has only StartArgs, which only simple_one_for_one uses", c.ID)
	case c.Restart > Temporary:
		return invalid("invalid_restart_type %v for child %q", c.Restart, c.ID)
	case c.Type > Supervisor:
		return invalid("invalid_child_type %v for child %q", c.Type, c.ID)
	case c.Significant && f.AutoShutdown == Never:
		return invalid("bad_combination auto_shutdown never with significant child %q", c.ID)
	case c.Significant && c.Restart == Permanent:
		return invalid("bad_combination restart permanent with significant child %q", c.ID)
	case c.Shutdown < 0 && c.Shutdown != BrutalKill && c.Shutdown != Infinity:
		return invalid("invalid_shutdown %v for child %q", c.Shutdown, c.ID)
	}
	return nil
}

// check validates the whole spec as init/1's result is validated.
func (s Spec) check() error {
	if err := s.Flags.check(); err != nil {
		return err
	}
	if s.Flags.Strategy == SimpleOneForOne && len(s.Children) != 1 {
		return invalid("bad_start_spec: simple_one_for_one needs exactly one child spec, got %d", len(s.Children))
	}
	seen := make(map[string]bool, len(s.Children))
	for _, c := range s.Children {
		if err := c.check(s.Flags); err != nil {
			return err
		}
		if seen[c.ID] {
			return invalid("duplicate_child_name %q", c.ID)
		}
		seen[c.ID] = true
	}
	return nil
}
