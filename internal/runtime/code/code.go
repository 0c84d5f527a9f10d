// Package code is OTP's code server and release_handler's module upgrade on
// the observer runtime: a registry of the behaviour module versions a binary
// carries, and hot code reload of the processes that run them.
//
// Go cannot load code at run time, so every version a binary can switch to
// is compiled in and registered here, oldest first. An upgrade suspends the
// processes running a module, moves each to the new version with sys's
// change_code (the new module's CodeChange migrates the state) and resumes
// them. Calls made meanwhile queue in the processes' mailboxes: callers see
// a pause, not an error. A module that implements Preparer does what work
// it can before anything is suspended, which shortens the pause.
package code

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"observer/internal/runtime"
)

// Version is one version of a behaviour module that the binary carries.
type Version struct {
	// Name is the version as processes report it ("1", "2", ...).
	Name string
	// Module is the callbacks: a genserver.Module, a statem.Module, or
	// whatever the behaviour's SysChangeCode accepts (a supervisor.Spec).
	Module any
	// Notes says what changed, for the observer's module list.
	Notes string
}

// Preparer is implemented by a Version's Module that has work to do
// before an upgrade moves processes to it. Upgrade and UpgradeProcess call
// PrepareUpgrade before they suspend any process, so work that CodeChange
// would otherwise do while the processes are suspended and their callers
// wait, such as compiling a table, is done while they still serve, and
// CodeChange finds it done. PrepareUpgrade must not change what running
// processes do, and CodeChange must still work without it, since state
// may change between the two. An error aborts the upgrade before anything
// is suspended.
type Preparer interface {
	PrepareUpgrade() error
}

// Down is the extra that CodeChange receives when a process moves to an
// older version, OTP's {down, Vsn}. In OTP the newer module converts its
// state back; here the module being switched to runs CodeChange, so the
// older module receives the newer state and must tell the direction apart.
type Down struct {
	// FromVersion is the newer version the process is leaving.
	FromVersion string
	// Extra is the extra passed to the upgrade call.
	Extra any
}

// Errors of the registry; an upgrade's per-process failures are *ProcessError.
var (
	// ErrUnknownModule: no module is registered under the name.
	ErrUnknownModule = errors.New("code: unknown module")
	// ErrUnknownVersion: the module has no such version registered.
	ErrUnknownVersion = errors.New("code: unknown version")
)

// module is one registered module. Registry.mu guards versions and current;
// upgrade is held for the whole of an upgrade of the module.
type module struct {
	upgrade  sync.Mutex
	versions []Version // oldest first
	current  int
}

func (m *module) index(vsn string) int {
	return slices.IndexFunc(m.versions, func(v Version) bool { return v.Name == vsn })
}

// Registry knows the module versions of one node and moves the node's
// processes between them. Create it with NewRegistry.
type Registry struct {
	node    *runtime.Node
	mu      sync.RWMutex
	modules map[string]*module

	// snapshots are buffers for the node snapshot each upgrade takes to
	// find its processes: reused, so frequent upgrades make no garbage
	// in proportion to the node's size.
	snapshots sync.Pool

	// Test hooks: called before taking a module's upgrade lock, and once
	// every process of an upgrade has been suspended.
	hookLock, hookSuspended func()
}

// NewRegistry returns an empty registry for the node's processes.
func NewRegistry(n *runtime.Node) *Registry {
	return &Registry{node: n, modules: make(map[string]*module)}
}

// Register adds versions of the named module, oldest first. The first
// version ever registered is current until an upgrade moves the module on.
// Moving a process to a version registered earlier than its own is a
// downgrade.
func (r *Registry) Register(name string, versions ...Version) error {
	if name == "" {
		return errors.New("code: module name is empty")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.modules[name]
	if m == nil {
		m = &module{}
	}
	for i, v := range versions {
		switch {
		case v.Name == "":
			return fmt.Errorf("code: %s: version %d has no name", name, i)
		case v.Module == nil:
			return fmt.Errorf("code: %s %s: no module", name, v.Name)
		case m.index(v.Name) >= 0 || slices.ContainsFunc(versions[:i], func(o Version) bool { return o.Name == v.Name }):
			return fmt.Errorf("code: %s %s: version registered twice", name, v.Name)
		}
	}
	m.versions = append(m.versions, versions...)
	r.modules[name] = m
	return nil
}

// Current returns the version of the named module that new processes
// should start with, or the zero Version for an unknown module.
func (r *Registry) Current(name string) Version {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := r.modules[name]
	if m == nil || len(m.versions) == 0 {
		return Version{}
	}
	return m.versions[m.current]
}

// ModuleInfo is one module as the observer's module list shows it.
type ModuleInfo struct {
	Name string
	// Current is the version new processes start with.
	Current string
	// Old lists the other versions that processes still run (old code).
	Old []string
	// Versions are the registered versions, oldest first, then any
	// version a process reports that was never registered.
	Versions []VersionInfo
}

// VersionInfo is one version of a module and the processes running it.
type VersionInfo struct {
	Version
	Current bool
	// Registered is false for a version that processes report but the
	// registry does not carry; such processes cannot be rolled back.
	Registered bool
	// Processes run this version, by PID number.
	Processes []runtime.PID
}

// Modules lists every registered module, by name, with the processes on
// each of its versions as a node snapshot finds them.
func (r *Registry) Modules() []ModuleInfo {
	procs := r.processes("")
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]ModuleInfo, 0, len(r.modules))
	for name, m := range r.modules {
		running := procs[name]
		mi := ModuleInfo{Name: name}
		if len(m.versions) > 0 {
			mi.Current = m.versions[m.current].Name
		}
		for i, v := range m.versions {
			mi.Versions = append(mi.Versions, VersionInfo{Version: v, Current: i == m.current, Registered: true, Processes: running[v.Name]})
		}
		for _, vsn := range sortedKeys(running) {
			if m.index(vsn) < 0 {
				mi.Versions = append(mi.Versions, VersionInfo{Version: Version{Name: vsn}, Processes: running[vsn]})
			}
		}
		for _, vi := range mi.Versions {
			if !vi.Current && len(vi.Processes) > 0 {
				mi.Old = append(mi.Old, vi.Name)
			}
		}
		out = append(out, mi)
	}
	slices.SortFunc(out, func(a, b ModuleInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Processes returns the live processes running the named module, by
// version, each list in PID number order.
func (r *Registry) Processes(name string) map[string][]runtime.PID {
	if name == "" {
		return map[string][]runtime.PID{}
	}
	running := r.processes(name)[name]
	if running == nil {
		running = map[string][]runtime.PID{}
	}
	return running
}

// processes groups the node's processes by module and version; only the
// named module's if name is set.
func (r *Registry) processes(name string) map[string]map[string][]runtime.PID {
	out := make(map[string]map[string][]runtime.PID)
	for _, p := range r.node.Snapshot(nil) {
		if p.Module == "" || name != "" && p.Module != name {
			continue
		}
		byVsn := out[p.Module]
		if byVsn == nil {
			byVsn = make(map[string][]runtime.PID)
			out[p.Module] = byVsn
		}
		byVsn[p.Version] = append(byVsn[p.Version], p.PID)
	}
	for _, byVsn := range out {
		for _, pids := range byVsn {
			slices.SortFunc(pids, comparePIDs)
		}
	}
	return out
}

func comparePIDs(a, b runtime.PID) int { return cmp.Compare(a.ID(), b.ID()) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
