package supervisor

import (
	"cmp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
)

// ChildStatus is what a child's PID field of which_children would say.
type ChildStatus uint8

// Child statuses.
const (
	// StatusUndefined: no process (stopped, ignored, or not started yet).
	StatusUndefined ChildStatus = iota
	// StatusRunning: the child's process is alive.
	StatusRunning
	// StatusRestarting: a restart failed or waits for its backoff; it will be retried.
	StatusRestarting
)

var childStatusNames = [...]string{"undefined", "running", "restarting"}

// String names the status.
func (s ChildStatus) String() string {
	if int(s) < len(childStatusNames) {
		return childStatusNames[s]
	}
	return "unknown"
}

// ChildInfo is one child as the observer shows it.
type ChildInfo struct {
	ID          string
	PID         runtime.PID
	Status      ChildStatus
	Type        ChildType
	Restart     Restart
	Significant bool
	Shutdown    time.Duration
	// Restarts counts the supervisor's restarts of this child.
	Restarts int
	// LastExit is the reason of the child's last exit, nil if it never exited.
	LastExit    any
	LastRestart time.Time
	Module      string
	Version     string
}

// Info is a supervisor as the observer shows it. The supervisor publishes
// a new Info after each change; an Info and its slices are shared and must
// not be modified.
type Info struct {
	PID          runtime.PID
	Name         string
	Module       string
	Version      string
	Strategy     Strategy
	Intensity    int
	Period       int
	AutoShutdown AutoShutdown
	Backoff      Backoff
	// Restarts is the intensity window when the Info was read: the whole
	// seconds (as OTP times restarts) that saw restarts, oldest first.
	Restarts []RestartSecond
	// RestartCount is the number of restarts in the window.
	RestartCount int
	// BudgetLeft is how many more restarts the window allows; at zero the
	// next restart makes the supervisor give up.
	BudgetLeft int
	// Children are in start order (which_children lists them newest first).
	Children []ChildInfo
	// Published is when the supervisor published this Info.
	Published time.Time
}

// RestartSecond is one whole second of the intensity window: OTP's
// restart list holds its time Count times.
type RestartSecond struct {
	At    time.Time
	Count int
}

// entry is a live supervisor in the node-wide registry.
type entry struct {
	node *runtime.Node
	clk  clock
	info atomic.Pointer[Info]
}

var (
	// registry maps a supervisor's PID to its entry, so that Inspect never
	// calls into the supervisor process.
	registry sync.Map
	// entries counts the registry; sweepAt is the count at which dead
	// entries (supervisors killed without running their exit code) are swept.
	entries atomic.Int64
	sweepAt atomic.Int64
)

func register(pid runtime.PID, e *entry) {
	registry.Store(pid, e)
	n := entries.Add(1)
	if at := sweepAt.Load(); n >= max(at, 1024) && sweepAt.CompareAndSwap(at, 2*n) {
		sweep()
	}
}

func unregister(pid runtime.PID) {
	if _, ok := registry.LoadAndDelete(pid); ok {
		entries.Add(-1)
	}
}

// sweep drops the entries of supervisors that died without unregistering
// (killed with an untrappable kill).
func sweep() {
	registry.Range(func(k, _ any) bool {
		if pid := k.(runtime.PID); !pid.Alive() {
			unregister(pid)
		}
		return true
	})
}

// Inspect returns the latest Info of the supervisor pid, false if pid is
// not a live supervisor. It reads an atomically published value and never
// waits on the supervisor, so the observer may poll it at any rate.
func Inspect(pid runtime.PID) (Info, bool) {
	v, ok := registry.Load(pid)
	if !ok {
		return Info{}, false
	}
	if !pid.Alive() {
		unregister(pid)
		return Info{}, false
	}
	e := v.(*entry)
	return e.snapshot(), true
}

func (e *entry) snapshot() Info {
	info := *e.info.Load()
	// The window moves with time, so it is applied when read.
	threshold := e.clk.second(e.clk.time()).Add(-time.Duration(info.Period) * time.Second)
	i := sort.Search(len(info.Restarts), func(i int) bool { return !info.Restarts[i].At.Before(threshold) })
	info.Restarts = info.Restarts[i:len(info.Restarts):len(info.Restarts)]
	info.RestartCount = 0
	for _, r := range info.Restarts {
		info.RestartCount += r.Count
	}
	info.BudgetLeft = max(info.Intensity-info.RestartCount, 0)
	return info
}

// All returns every live supervisor of node n, ordered by PID, for the
// observer's tree view.
func All(n *runtime.Node) []Info {
	var out []Info
	registry.Range(func(k, v any) bool {
		pid, e := k.(runtime.PID), v.(*entry)
		if e.node != n {
			return true
		}
		if !pid.Alive() {
			unregister(pid)
			return true
		}
		out = append(out, e.snapshot())
		return true
	})
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.PID.ID(), b.PID.ID()) })
	return out
}

// publishInterval spaces out publications during bursts of changes.
// Rebuilding Info costs O(children) and an allocation; a restart storm
// should not pay that per restart when the observer reads it ten times a
// second. A change after a quiet spell is published at once; during a
// burst the last change is published at most publishInterval later.
const publishInterval = 20 * time.Millisecond

type flushMsg struct{}

// changed marks the published Info stale.
func (s *sup) changed() { s.dirty = true }

// publish republishes Info if something changed.
func (s *sup) publish() {
	if !s.dirty || s.entry == nil {
		return
	}
	if s.time().Sub(s.published) < publishInterval {
		if !s.flushPending {
			s.flushPending = true
			self, n := s.self, s.node
			time.AfterFunc(publishInterval, func() { _ = n.Send(self, flushMsg{}) })
		}
		return
	}
	s.forcePublish()
}

// forcePublish publishes Info now.
func (s *sup) forcePublish() {
	s.dirty = false
	s.published = s.time()
	s.entry.info.Store(s.buildInfo(s.published))
}

func (s *sup) buildInfo(now time.Time) *Info {
	info := &Info{
		PID:          s.self,
		Name:         s.opts.Name,
		Module:       s.mod.Module,
		Version:      s.mod.Version,
		Strategy:     s.flags.Strategy,
		Intensity:    s.flags.Intensity,
		Period:       s.flags.period(),
		AutoShutdown: s.flags.AutoShutdown,
		Backoff:      s.flags.Backoff,
		Restarts:     slices.Clone(s.restarts),
		RestartCount: s.inWindow,
		Published:    now,
	}
	list := &s.children
	if s.flags.Strategy == SimpleOneForOne {
		list = &s.dynamic
	}
	info.Children = make([]ChildInfo, 0, list.live)
	for _, c := range list.items {
		if c != nil {
			info.Children = append(info.Children, c.info())
		}
	}
	return info
}

func (c *child) status() ChildStatus {
	switch {
	case c.restarting:
		return StatusRestarting
	case c.pid.IsZero():
		return StatusUndefined
	}
	return StatusRunning
}

func (c *child) info() ChildInfo {
	return ChildInfo{
		ID:          c.spec.ID,
		PID:         c.pid,
		Status:      c.status(),
		Type:        c.spec.Type,
		Restart:     c.spec.Restart,
		Significant: c.spec.Significant,
		Shutdown:    c.spec.shutdown(),
		Restarts:    c.restarts,
		LastExit:    c.lastExit,
		LastRestart: c.lastRestart,
		Module:      c.spec.Module,
		Version:     c.spec.Version,
	}
}
