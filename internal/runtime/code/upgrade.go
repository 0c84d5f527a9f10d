package code

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/sys"
)

// Report is what an upgrade did.
type Report struct {
	Module string
	// From is the module's current version before an Upgrade, or the
	// process's version for UpgradeProcess.
	From string
	To   string
	// Upgraded run To now because of this call, by PID number.
	Upgraded []runtime.PID
	// RolledBack were moved to To and back after another process failed.
	RolledBack []runtime.PID
	// Skipped exited during the upgrade.
	Skipped []runtime.PID
	// MaxPause is the longest time any process was suspended, measured
	// from its suspend request to its resume's answer.
	MaxPause time.Duration
	// Errors lists every step that failed, by PID number, including any
	// that did not abort the upgrade (a resume that timed out).
	Errors []*ProcessError
}

// ProcessError is the failure of one process's step in an upgrade.
type ProcessError struct {
	PID runtime.PID
	// Step is "suspend", "code_change", "rollback" or "resume".
	Step string
	Err  error
}

// Error names the process, the step and the reason.
func (e *ProcessError) Error() string { return fmt.Sprintf("%v: %s: %v", e.PID, e.Step, e.Err) }

// Unwrap returns the reason.
func (e *ProcessError) Unwrap() error { return e.Err }

// UpgradeProcess moves one process to version to of the module it runs:
// it suspends the process, runs code_change and resumes it, also when
// code_change fails (which leaves the old code and state in place). The
// module's current version does not change, so this suits a canary.
// Timeout bounds each of the three system calls; zero is sys's default.
// A Preparer's PrepareUpgrade runs first, as for Upgrade.
func (r *Registry) UpgradeProcess(pid runtime.PID, to string, extra any, timeout time.Duration) (Report, error) {
	info := pid.Info()
	rep := Report{Module: info.Module, From: info.Version, To: to}
	if !pid.Alive() {
		return rep, fmt.Errorf("code: %v: %w", pid, runtime.ErrNoProc)
	}
	m, err := r.module(info.Module)
	if err != nil {
		return rep, err
	}
	r.lock(m)
	defer m.upgrade.Unlock()
	// An upgrade of the whole module may have moved the process while this
	// call waited for the lock.
	info = pid.Info()
	rep.From = info.Version
	if !pid.Alive() {
		return rep, fmt.Errorf("code: %v: %w", pid, runtime.ErrNoProc)
	}
	if info.Version == to {
		return rep, r.checkVersion(m, info.Module, to)
	}
	rep, err = r.move(m, rep, []runtime.ProcessInfo{info}, extra, timeout)
	if err == nil && len(rep.Skipped) > 0 {
		err = fmt.Errorf("code: %v: %w", pid, runtime.ErrNoProc)
	}
	return rep, err
}

// Upgrade moves every process running the named module to version to, as
// a release upgrade does: it suspends them all, runs code_change in each,
// and resumes them all. It is all or nothing: if any process fails to
// suspend or its code_change fails, the processes already moved are moved
// back (a downgrade, see Down), every process resumes on its old version,
// the current version stays, and the error names the process and reason.
// Processes that exit meanwhile are skipped; one whose code_change panics
// fails the upgrade. A version older than the current one downgrades.
// Upgrades of one module run one at a time. On success the module's
// current version becomes to. Timeout bounds each system call to each
// process; zero is sys's default.
//
// If version to's module is a Preparer, its PrepareUpgrade runs first,
// while the processes still serve; its error aborts the upgrade before any
// process is suspended. The pause callers see is then the suspend, the
// rest of code_change and the resume.
func (r *Registry) Upgrade(name, to string, extra any, timeout time.Duration) (Report, error) {
	m, err := r.module(name)
	if err != nil {
		return Report{Module: name, To: to}, err
	}
	r.lock(m)
	defer m.upgrade.Unlock()
	rep := Report{Module: name, From: r.Current(name).Name, To: to}
	if err := r.checkVersion(m, name, to); err != nil {
		return rep, err
	}
	var targets []runtime.ProcessInfo
	snap, _ := r.snapshots.Get().(*[]runtime.ProcessInfo)
	if snap == nil {
		snap = new([]runtime.ProcessInfo)
	}
	*snap = r.node.Snapshot(*snap)
	for _, p := range *snap {
		if p.Module == name && p.Version != to {
			targets = append(targets, p)
		}
	}
	clear(*snap) // holds no process for longer than the upgrade
	r.snapshots.Put(snap)
	rep, err = r.move(m, rep, targets, extra, timeout)
	text := fmt.Sprintf("%s %s -> %s (%s)", name, rep.From, to, plural(len(rep.Upgraded), "process", "processes"))
	if err != nil {
		text = fmt.Sprintf("%s %s -> %s aborted (%s rolled back)", name, rep.From, to, plural(len(rep.RolledBack), "process", "processes"))
	} else {
		r.mu.Lock()
		m.current = m.index(to)
		r.mu.Unlock()
	}
	r.node.Publish(runtime.Event{Kind: runtime.EventCodeChange, Name: name, Text: text, Reason: err, Data: rep})
	return rep, err
}

func (r *Registry) module(name string) (*module, error) {
	r.mu.RLock()
	m := r.modules[name]
	r.mu.RUnlock()
	if m == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownModule, name)
	}
	return m, nil
}

func (r *Registry) lock(m *module) {
	if r.hookLock != nil {
		r.hookLock()
	}
	m.upgrade.Lock()
}

func (r *Registry) checkVersion(m *module, name, vsn string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if m.index(vsn) < 0 {
		return fmt.Errorf("%w: %s %q", ErrUnknownVersion, name, vsn)
	}
	return nil
}

// moving is one process's part in an upgrade.
type moving struct {
	pid        runtime.PID
	from       string
	fromIdx    int
	start, end time.Time
	changed    bool // runs the new version
	rolledBack bool
	exited     bool
	unsure     bool // code_change timed out: it may still run and succeed
	failure    *ProcessError
	errs       []*ProcessError
}

// step records a system call's outcome: an exit is a skip, any other error
// a failure of the step.
func (mv *moving) step(step string, err error) bool {
	if err == nil {
		return true
	}
	var ee *runtime.ExitError
	if errors.As(err, &ee) {
		mv.exited = true
		return false
	}
	mv.fail(step, err)
	return false
}

func (mv *moving) fail(step string, err error) {
	pe := &ProcessError{PID: mv.pid, Step: step, Err: err}
	if mv.failure == nil && (step == "suspend" || step == "code_change") {
		mv.failure = pe
	}
	mv.errs = append(mv.errs, pe)
}

// move runs the upgrade of targets, the caller holding the module's lock.
func (r *Registry) move(m *module, rep Report, targets []runtime.ProcessInfo, extra any, timeout time.Duration) (Report, error) {
	if timeout == 0 {
		timeout = sys.DefaultTimeout
	}
	r.mu.RLock()
	versions := slices.Clone(m.versions)
	toIdx := m.index(rep.To)
	r.mu.RUnlock()
	if toIdx < 0 {
		return rep, fmt.Errorf("%w: %s %q", ErrUnknownVersion, rep.Module, rep.To)
	}
	slices.SortFunc(targets, func(a, b runtime.ProcessInfo) int { return comparePIDs(a.PID, b.PID) })
	moves := make([]moving, len(targets))
	for i, t := range targets {
		moves[i] = moving{pid: t.PID, from: t.Version, fromIdx: slices.IndexFunc(versions, func(v Version) bool { return v.Name == t.Version })}
		// Moving back is what makes the upgrade all or nothing, and it
		// needs the version each process runs now.
		if moves[i].fromIdx < 0 {
			return rep, fmt.Errorf("code: %v runs %s version %q, which is not registered: it could not be moved back", t.PID, rep.Module, t.Version)
		}
	}
	n := r.node
	to := versions[toIdx]
	if pr, ok := to.Module.(Preparer); ok && len(moves) > 0 {
		if err := prepare(pr); err != nil {
			return rep, fmt.Errorf("code: %s %s -> %s aborted before suspending: prepare: %w", rep.Module, rep.From, rep.To, err)
		}
	}

	each(moves, func(mv *moving) {
		mv.start = time.Now()
		mv.step("suspend", sys.Suspend(n, mv.pid, timeout))
	})
	if r.hookSuspended != nil {
		r.hookSuspended()
	}
	failed := slices.ContainsFunc(moves, func(mv moving) bool { return mv.failure != nil })
	if !failed {
		each(moves, func(mv *moving) {
			if mv.exited {
				return
			}
			err := sys.ChangeCode(n, mv.pid, to.Module, to.Name, direction(extra, mv.fromIdx, toIdx, mv.from), timeout)
			var pe *runtime.PanicError
			switch {
			case err == nil:
				mv.changed = true
			case errors.As(err, &pe):
				// The process died of its own code_change: the new code
				// cannot take its state, which fails the upgrade.
				mv.exited = true
				mv.fail("code_change", err)
			default:
				mv.unsure = errors.Is(err, runtime.ErrTimeout)
				mv.step("code_change", err)
			}
		})
		failed = slices.ContainsFunc(moves, func(mv moving) bool { return mv.failure != nil })
	}
	if failed {
		each(moves, func(mv *moving) {
			if mv.exited || !mv.changed && !mv.unsure {
				return
			}
			r.moveBack(mv, versions, toIdx, extra, timeout)
		})
	}
	each(moves, func(mv *moving) {
		if !mv.exited {
			mv.step("resume", sys.Resume(n, mv.pid, timeout))
		}
		mv.end = time.Now()
	})

	var cause *ProcessError
	for i := range moves {
		mv := &moves[i]
		switch {
		case mv.exited:
			rep.Skipped = append(rep.Skipped, mv.pid)
		case mv.changed:
			rep.Upgraded = append(rep.Upgraded, mv.pid)
		case mv.rolledBack:
			rep.RolledBack = append(rep.RolledBack, mv.pid)
		}
		if !mv.exited {
			rep.MaxPause = max(rep.MaxPause, mv.end.Sub(mv.start))
		}
		rep.Errors = append(rep.Errors, mv.errs...)
		if cause == nil {
			cause = mv.failure
		}
	}
	if cause == nil {
		return rep, nil
	}
	err := fmt.Errorf("code: %s %s -> %s aborted: %w", rep.Module, rep.From, rep.To, cause)
	errs := []error{err}
	for _, pe := range rep.Errors {
		if pe.Step == "rollback" {
			errs = append(errs, pe)
		}
	}
	return rep, errors.Join(errs...)
}

// prepare runs a module's PrepareUpgrade; a panic is its error.
func prepare(pr Preparer) (err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("panic: %v", x)
		}
	}()
	return pr.PrepareUpgrade()
}

// moveBack returns a process that took the new version to its old one.
func (r *Registry) moveBack(mv *moving, versions []Version, toIdx int, extra any, timeout time.Duration) {
	n := r.node
	if mv.unsure {
		// System messages are served in order, so once this answers, the
		// code_change that timed out has finished one way or the other.
		_, err := sys.GetState(n, mv.pid, timeout)
		var ee *runtime.ExitError
		switch {
		case errors.As(err, &ee):
			mv.exited = true
			return
		case err != nil:
			mv.fail("rollback", fmt.Errorf("code_change still running, version unknown: %w", err))
			return
		case mv.pid.Info().Version != versions[toIdx].Name:
			return
		}
		mv.changed = true
	}
	back := versions[mv.fromIdx]
	if mv.step("rollback", sys.ChangeCode(n, mv.pid, back.Module, back.Name, direction(extra, toIdx, mv.fromIdx, versions[toIdx].Name), timeout)) {
		mv.changed, mv.rolledBack = false, true
	}
}

// direction is the extra for a move between two versions: Down wraps it
// when the target is older.
func direction(extra any, fromIdx, toIdx int, from string) any {
	if toIdx < fromIdx {
		return Down{FromVersion: from, Extra: extra}
	}
	return extra
}

// workers bounds the system calls in flight: each is a round trip to a
// process, so a few per CPU keep them all busy without a goroutine for
// each of a module's processes.
var workers = 8 * goruntime.GOMAXPROCS(0)

// each runs fn on every element, spread over up to workers goroutines.
func each(moves []moving, fn func(*moving)) {
	w := min(len(moves), workers)
	if w <= 1 {
		for i := range moves {
			fn(&moves[i])
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range w {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(moves) {
					return
				}
				fn(&moves[i])
			}
		})
	}
	wg.Wait()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
