// Package supervisor is OTP's supervisor behaviour on the observer runtime.
//
// A supervisor starts its children in order, restarts them by its strategy
// when they exit, gives up with reason shutdown when restarts exceed its
// intensity, and stops its children in reverse start order. Every decision
// follows lib/stdlib/src/supervisor.erl; the one extension is an opt-in
// restart Backoff. The supervisor publishes its reports on the node's event
// stream and its state through Inspect, which the observer polls without
// ever calling into the supervisor process.
package supervisor

import (
	"errors"
	"time"

	"observer/internal/runtime"
)

// Options are start options.
type Options struct {
	// Name registers the supervisor.
	Name string
	// Module and Version name the supervisor's code for the observer;
	// Module defaults to Name, then to "supervisor", and Version to "1".
	Module  string
	Version string
	// Clock replaces time.Now for the restart intensity window, so tests
	// can move time across whole-second boundaries without sleeping. With
	// a Clock, restart times are its Unix seconds; without one they are
	// whole seconds of the monotonic clock, as erlang:monotonic_time(1).
	Clock func() time.Time
}

// epoch anchors the default clock: restart times are whole monotonic
// seconds since it.
var epoch = time.Now()

type clock struct{ now func() time.Time }

// time reads the clock. The default reads only the monotonic clock, which
// costs half of time.Now.
func (c clock) time() time.Time {
	if c.now != nil {
		return c.now()
	}
	return epoch.Add(time.Since(epoch))
}

// second truncates t, read from this clock, to a whole second.
func (c clock) second(t time.Time) time.Time {
	if c.now != nil {
		return time.Unix(t.Unix(), 0)
	}
	return epoch.Add(t.Sub(epoch).Truncate(time.Second))
}

// child is one child: a static child's record or one dynamic child of a
// simple_one_for_one supervisor.
type child struct {
	spec ChildSpec
	// pid is the running process, zero when there is none.
	pid runtime.PID
	// restarting marks OTP's {restarting, OldPid}: a retry is pending.
	restarting bool
	// key is the PID a dynamic child is filed under: its current pid, or
	// while restarting its last one, as OTP keys {restarting, OldPid}.
	key  runtime.PID
	args any
	idx  int
	// removed is set once the child is forgotten, so that a retry message
	// or timer still in flight for it is dropped.
	removed bool
	retry   uint64
	timer   *time.Timer

	restarts    int
	lastExit    any
	lastRestart time.Time
	started     time.Time
	level       int
}

// childList keeps children in start order. Removal leaves a hole that is
// compacted away later, so removing is O(1) and indexes stay valid while a
// group restart walks the list.
type childList struct {
	items []*child
	live  int
}

func (l *childList) push(c *child) {
	c.idx = len(l.items)
	l.items = append(l.items, c)
	l.live++
}

func (l *childList) remove(c *child) {
	l.items[c.idx] = nil
	c.idx = -1
	l.live--
}

func (l *childList) compact() {
	holes := len(l.items) - l.live
	if holes < 16 || holes < l.live {
		return
	}
	out := l.items[:0]
	for _, c := range l.items {
		if c != nil {
			c.idx = len(out)
			out = append(out, c)
		}
	}
	clear(l.items[len(out):])
	l.items = out
}

// sup is the supervisor process's state.
type sup struct {
	node   *runtime.Node
	self   runtime.PID
	parent runtime.PID
	flags  Flags
	specs  []ChildSpec
	opts   Options
	mod    runtime.ModuleInfo
	clk    clock
	ack    chan error
	entry  *entry

	children childList
	byID     map[string]*child
	byPID    map[runtime.PID]*child
	template ChildSpec
	dynamic  childList

	// restarts is the intensity window, one entry per whole second that
	// saw restarts, oldest first; inWindow is their total. Equal
	// timestamps share an entry, so a restart storm under a large
	// intensity costs O(1) per restart and at most period+1 entries.
	restarts []RestartSecond
	inWindow int

	dirty        bool
	flushPending bool
	published    time.Time

	// now caches one clock reading per message: a restart needs the time
	// three or four times, and a reading is not free.
	now    time.Time
	hasNow bool
}

type retryMsg struct {
	c     *child
	token uint64
}

type delayedMsg struct {
	c     *child
	token uint64
}

// Start starts a supervisor that is not linked to any process. Exit
// signals sent from outside any process (Node.Exit) count as its parent's:
// it stops its children and exits with their reason. Start returns once
// every child has started; if child k fails, children 1..k-1 are stopped
// in reverse order, the supervisor exits, and the error is a
// *ChildStartError.
func Start(n *runtime.Node, spec Spec, opts Options) (runtime.PID, error) {
	s, err := newSup(n, spec, opts)
	if err != nil {
		return runtime.PID{}, err
	}
	pid, err := n.SpawnBehaviour(s, runtime.SpawnOpts{Name: opts.Name, TrapExit: true})
	return s.wait(n, pid, err)
}

// StartLink starts a supervisor linked to parent (supervisor:start_link/3),
// typically from a ChildSpec's Start. If start-up fails the link is
// removed first, so parent gets no EXIT (OTP 26 and later).
func StartLink(parent *runtime.Process, spec Spec, opts Options) (runtime.PID, error) {
	s, err := newSup(parent.Node(), spec, opts)
	if err != nil {
		return runtime.PID{}, err
	}
	s.parent = parent.Self()
	pid, _, err := parent.SpawnBehaviour(s, runtime.SpawnOpts{Name: opts.Name, Link: true, TrapExit: true})
	return s.wait(parent.Node(), pid, err)
}

func newSup(n *runtime.Node, spec Spec, opts Options) (*sup, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	mod := runtime.ModuleInfo{Behaviour: "supervisor", Module: opts.Module, Version: opts.Version}
	if mod.Module == "" {
		mod.Module = opts.Name
	}
	if mod.Module == "" {
		mod.Module = "supervisor"
	}
	if mod.Version == "" {
		mod.Version = "1"
	}
	return &sup{
		node:  n,
		flags: spec.Flags,
		specs: spec.Children,
		opts:  opts,
		mod:   mod,
		clk:   clock{opts.Clock},
		ack:   make(chan error, 1),
		byID:  make(map[string]*child, len(spec.Children)),
		byPID: make(map[runtime.PID]*child, len(spec.Children)),
	}, nil
}

func (s *sup) wait(n *runtime.Node, pid runtime.PID, err error) (runtime.PID, error) {
	if err != nil {
		return runtime.PID{}, err
	}
	w := n.Monitor(pid)
	defer w.Cancel()
	select {
	case err := <-s.ack:
		if err != nil {
			// The supervisor exits right after a failure: return once
			// it has, so its name is free again (as in OTP 26).
			<-w.C
			return runtime.PID{}, err
		}
		return pid, nil
	case d := <-w.C:
		// The supervisor may have acknowledged and then died at once.
		select {
		case err := <-s.ack:
			if err != nil {
				return runtime.PID{}, err
			}
			return pid, nil
		default:
		}
		return runtime.PID{}, &runtime.ExitError{PID: pid, Reason: d.Reason}
	}
}

// Init starts the children in order, inside the supervisor process.
func (s *sup) Init(p *runtime.Process) {
	s.hasNow = false
	s.self = p.Self()
	p.SetModule(s.mod)
	s.entry = &entry{node: s.node, clk: s.clk}
	if s.flags.Strategy == SimpleOneForOne {
		s.template = s.specs[0]
	} else {
		for _, spec := range s.specs {
			c := &child{spec: spec}
			s.children.push(c)
			s.byID[spec.ID] = c
		}
	}
	s.entry.info.Store(s.buildInfo(s.time()))
	register(s.self, s.entry)
	for _, c := range s.children.items {
		pid, err := s.startProc(p, c)
		switch {
		case err == nil:
			s.setPID(c, pid)
			s.report(ReportChildStarted, c, pid, nil)
		case errors.Is(err, ErrIgnore):
			if c.spec.Restart == Temporary {
				s.forget(c)
			}
		default:
			s.report(ReportStartFailed, c, runtime.PID{}, err)
			s.terminateChildren(p)
			// Unlinking before the acknowledgement leaves the parent no
			// EXIT to receive, as OTP 26 does.
			p.Unlink(s.parent)
			cerr := &ChildStartError{ID: c.spec.ID, Reason: err}
			s.ack <- cerr
			s.exit(p, runtime.ShutdownReason{Term: cerr})
		}
	}
	s.ack <- nil
	s.changed()
	s.publish()
	if s.flags.Strategy != SimpleOneForOne {
		// A static supervisor rarely works; OTP hibernates it too.
		p.Hibernate()
	}
}

// Handle serves one message: a child's or the parent's EXIT, an API call,
// or a retry the supervisor sent itself.
func (s *sup) Handle(p *runtime.Process, msg any) {
	s.hasNow = false
	switch m := msg.(type) {
	case runtime.ExitMsg:
		s.handleExit(p, m)
	case *runtime.Request:
		s.handleCall(p, m)
	case retryMsg:
		if s.pending(m.c, m.token) {
			s.restart(p, m.c)
		}
	case delayedMsg:
		if s.pending(m.c, m.token) {
			m.c.timer = nil
			s.restartNow(p, m.c)
		}
	case flushMsg:
		s.flushPending = false
		if s.dirty {
			s.forcePublish()
		}
	}
	s.children.compact()
	s.dynamic.compact()
	s.publish()
}

// pending reports whether a retry for c is still wanted: the child may have
// been terminated, deleted or restarted since the retry was scheduled.
func (s *sup) pending(c *child, token uint64) bool {
	return !c.removed && c.restarting && c.retry == token
}

func (s *sup) handleExit(p *runtime.Process, m runtime.ExitMsg) {
	if m.From == s.parent {
		// gen_server's rule: the parent's exit signal stops the process
		// with the same reason, after terminate stops the children.
		s.shutdown(p, m.Reason)
	}
	c := s.byPID[m.From]
	if c == nil || c.pid != m.From {
		// An EXIT of a child already stopped by the supervisor, or of a
		// process that is not a child: OTP ignores both.
		return
	}
	s.childExited(p, c, m.Reason)
}

// childExited is OTP's restart_child/3 and do_restart/3.
func (s *sup) childExited(p *runtime.Process, c *child, reason any) {
	pid := c.pid
	s.detach(c)
	c.lastExit = reason
	if b := s.flags.Backoff; b.Initial > 0 && s.time().Sub(c.started) > max(b.Max, b.Initial) {
		c.level = 0
	}
	s.changed()
	s.report(ReportChildExited, c, pid, reason)
	if c.spec.Restart == Permanent || c.spec.Restart == Transient && !runtime.IsClean(reason) {
		s.restart(p, c)
		return
	}
	s.delChild(c)
	s.autoShutdown(p, c)
}

// restart counts a restart against the intensity and restarts c by the
// strategy, at once or after the backoff.
func (s *sup) restart(p *runtime.Process, c *child) {
	if !s.addRestart() {
		s.report(ReportMaxIntensity, c, runtime.PID{}, runtime.Shutdown)
		s.delChild(c)
		s.shutdown(p, runtime.Shutdown) // does not return
	}
	if d := s.backoff(c); d > 0 {
		// Siblings a group restart would stop are stopped now, so that
		// none runs on beside a dead peer while the restart waits.
		s.stopGroup(p, c)
		c.restarting = true
		c.retry++
		msg, self, n := delayedMsg{c, c.retry}, s.self, s.node
		c.timer = time.AfterFunc(d, func() { _ = n.Send(self, msg) })
		s.node.Publish(runtime.Event{Kind: runtime.EventSupervisor, PID: s.self, Text: ReportRestartDelayed,
			Name: c.spec.ID, Data: Report{ID: c.spec.ID, Restart: c.spec.Restart, Type: c.spec.Type, Delay: d}})
		return
	}
	s.restartNow(p, c)
}

// addRestart is OTP's add_restart/1: record a restart at the current whole
// second, keep those at or after now-period, and report whether the count
// is still within the intensity.
func (s *sup) addRestart() bool {
	now := s.clk.second(s.time())
	threshold := now.Add(-time.Duration(s.flags.period()) * time.Second)
	i := 0
	for i < len(s.restarts) && s.restarts[i].At.Before(threshold) {
		s.inWindow -= s.restarts[i].Count
		i++
	}
	s.restarts = s.restarts[i:]
	if last := len(s.restarts) - 1; last >= 0 && s.restarts[last].At.Equal(now) {
		s.restarts[last].Count++
	} else {
		s.restarts = append(s.restarts, RestartSecond{At: now, Count: 1})
	}
	s.inWindow++
	s.changed()
	return s.inWindow <= s.flags.Intensity
}

// backoff returns the delay before c's restart, zero without Backoff.
func (s *sup) backoff(c *child) time.Duration {
	b := s.flags.Backoff
	if b.Initial <= 0 {
		return 0
	}
	limit := max(b.Max, b.Initial)
	d := b.Initial
	for range c.level {
		if d > limit/2 {
			return limit // also keeps the doubling from overflowing
		}
		d *= 2
	}
	c.level++
	return min(d, limit)
}

// restartNow is OTP's restart/3 for each strategy.
func (s *sup) restartNow(p *runtime.Process, c *child) {
	switch s.flags.Strategy {
	case OneForOne, SimpleOneForOne:
		c.restarting = false
		s.startOne(p, c)
	case OneForAll:
		s.stopGroup(p, c)
		s.startFrom(p, 0)
	case RestForOne:
		s.stopGroup(p, c)
		s.startFrom(p, c.idx)
	}
	s.changed()
}

// startOne restarts a single child; a failure is retried asynchronously.
func (s *sup) startOne(p *runtime.Process, c *child) {
	pid, err := s.startProc(p, c)
	switch {
	case err == nil:
		s.setPID(c, pid)
		s.restarted(c)
	case errors.Is(err, ErrIgnore):
		if s.flags.Strategy == SimpleOneForOne {
			s.forget(c)
		}
	default:
		s.report(ReportRestartFailed, c, runtime.PID{}, err)
		s.tryAgain(p, c)
	}
}

// stopGroup stops the children a group restart of c replaces: all others
// for one_for_all, the ones started after c for rest_for_one. Temporary
// children among them are forgotten, as OTP's terminate_children does.
func (s *sup) stopGroup(p *runtime.Process, c *child) {
	from := 0
	switch s.flags.Strategy {
	case RestForOne:
		from = c.idx
	case OneForAll:
	default:
		return
	}
	items := s.children.items
	for i := len(items) - 1; i >= from; i-- {
		x := items[i]
		if x == nil {
			continue
		}
		s.stopChild(p, x)
		s.cancelRetry(x)
		if x.spec.Restart == Temporary {
			s.forget(x)
		}
	}
}

// startFrom starts the children from index i on in start order. When one
// fails it is marked restarting and retried; the retry restarts the group
// again: all of it for one_for_all, from the failed child for rest_for_one.
func (s *sup) startFrom(p *runtime.Process, i int) {
	for ; i < len(s.children.items); i++ {
		x := s.children.items[i]
		if x == nil {
			continue
		}
		pid, err := s.startProc(p, x)
		switch {
		case err == nil:
			s.setPID(x, pid)
			s.restarted(x)
		case errors.Is(err, ErrIgnore):
			if x.spec.Restart == Temporary {
				s.forget(x)
			}
		default:
			s.report(ReportRestartFailed, x, runtime.PID{}, err)
			s.tryAgain(p, x)
			return
		}
	}
}

// tryAgain marks c restarting and sends the retry to the supervisor's own
// mailbox, so calls and exit signals already queued are served first.
func (s *sup) tryAgain(p *runtime.Process, c *child) {
	c.restarting = true
	c.retry++
	_ = p.Send(s.self, retryMsg{c, c.retry})
}

func (s *sup) cancelRetry(c *child) {
	c.restarting = false
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

func (s *sup) restarted(c *child) {
	c.restarts++
	c.lastRestart = s.time()
	s.report(ReportChildRestarted, c, c.pid, nil)
}

// time returns the clock's reading for the message being handled.
func (s *sup) time() time.Time {
	if !s.hasNow {
		s.now, s.hasNow = s.clk.time(), true
	}
	return s.now
}

// startProc runs c's start function in the supervisor process, turning a
// panic into an error as OTP's catch apply(M, F, A) does.
func (s *sup) startProc(p *runtime.Process, c *child) (pid runtime.PID, err error) {
	if !p.Alive() {
		// Killed while its code still runs (a start can block): starting
		// more children would only make orphans.
		s.exit(p, runtime.Killed)
	}
	defer func() {
		if x := recover(); x != nil {
			if runtime.IsExitPanic(x) {
				panic(x)
			}
			pid, err = runtime.PID{}, runtime.RecoveredReason(x).(*runtime.PanicError)
		}
	}()
	if s.flags.Strategy == SimpleOneForOne && c.spec.StartArgs != nil {
		pid, err = c.spec.StartArgs(p, c.args)
	} else {
		pid, err = c.spec.Start(p)
	}
	if err == nil && pid.IsZero() {
		err = errNoPID
	}
	return pid, err
}

func (s *sup) setPID(c *child, pid runtime.PID) {
	c.pid = pid
	c.restarting = false
	c.started = s.time()
	if s.flags.Strategy == SimpleOneForOne {
		delete(s.byPID, c.key)
		c.key = pid
	}
	s.byPID[pid] = c
	s.changed()
}

// detach forgets c's process, which has exited or is being stopped: an
// EXIT from it arriving later then matches no child.
func (s *sup) detach(c *child) {
	if s.flags.Strategy != SimpleOneForOne {
		delete(s.byPID, c.pid)
	}
	c.pid = runtime.PID{}
}

// delChild is OTP's del_child/2: a temporary or dynamic child is forgotten,
// any other keeps its spec with no process.
func (s *sup) delChild(c *child) {
	if c.spec.Restart == Temporary || s.flags.Strategy == SimpleOneForOne {
		s.forget(c)
		return
	}
	s.detach(c)
	s.cancelRetry(c)
	s.changed()
}

// forget removes c entirely.
func (s *sup) forget(c *child) {
	if c.removed {
		return
	}
	s.cancelRetry(c)
	c.removed = true
	if s.flags.Strategy == SimpleOneForOne {
		delete(s.byPID, c.key)
		s.dynamic.remove(c)
	} else {
		if !c.pid.IsZero() {
			delete(s.byPID, c.pid)
		}
		delete(s.byID, c.spec.ID)
		s.children.remove(c)
	}
	s.changed()
}

// autoShutdown is OTP's do_auto_shutdown/2, run after c exited and was
// not restarted.
func (s *sup) autoShutdown(p *runtime.Process, c *child) {
	if s.flags.AutoShutdown == Never || !c.spec.Significant {
		return
	}
	if s.flags.AutoShutdown == AllSignificant {
		for _, x := range s.children.items {
			if x != nil && x.spec.Significant && (!x.pid.IsZero() || x.restarting) {
				return
			}
		}
	}
	s.report(ReportAutoShutdown, c, runtime.PID{}, runtime.Shutdown)
	s.shutdown(p, runtime.Shutdown)
}

// shutdown stops every child in reverse start order and exits with
// reason; like Process.Exit, it does not return.
func (s *sup) shutdown(p *runtime.Process, reason any) {
	s.report(ReportShutdown, nil, runtime.PID{}, reason)
	s.terminateChildren(p)
	s.exit(p, reason)
}

// exit ends the supervisor process after leaving the registry.
func (s *sup) exit(p *runtime.Process, reason any) {
	unregister(s.self)
	for _, l := range [...]*childList{&s.children, &s.dynamic} {
		for _, c := range l.items {
			if c != nil && c.timer != nil {
				c.timer.Stop()
			}
		}
	}
	p.Exit(reason)
}

// SysState returns the supervisor's Info (sys:get_state/2).
func (s *sup) SysState() any {
	s.hasNow = false
	s.forcePublish()
	return s.entry.snapshot()
}

// errReplaceState: a supervisor's state is its children, which only the
// supervisor may change.
var errReplaceState = errors.New("supervisor: the state of a supervisor cannot be replaced")

// SysReplaceState refuses: see errReplaceState.
func (s *sup) SysReplaceState(func(any) any) (any, error) { return nil, errReplaceState }

// SysChangeCode takes a new Spec, as OTP's code_change/3 reruns init/1: the
// flags are replaced; children keep their processes and take their new
// specs; new children are added in the new order without being started;
// children missing from the new spec are kept after them.
func (s *sup) SysChangeCode(_ *runtime.Process, module any, version string, _ any) error {
	var spec Spec
	switch m := module.(type) {
	case Spec:
		spec = m
	case *Spec:
		spec = *m
	default:
		return errors.New("supervisor: code change needs a supervisor.Spec")
	}
	if err := spec.check(); err != nil {
		return err
	}
	s.hasNow = false
	if (s.flags.Strategy == SimpleOneForOne) != (spec.Flags.Strategy == SimpleOneForOne) {
		return invalid("cannot change to or from simple_one_for_one")
	}
	s.flags = spec.Flags
	s.specs = spec.Children
	s.mod.Version = version
	if s.flags.Strategy == SimpleOneForOne {
		s.template = spec.Children[0]
		for _, c := range s.dynamic.items {
			if c != nil {
				c.spec = s.template
			}
		}
	} else {
		old := s.children.items
		var next childList
		inNew := make(map[string]bool, len(spec.Children))
		for _, cs := range spec.Children {
			inNew[cs.ID] = true
			c := s.byID[cs.ID]
			if c == nil {
				c = &child{spec: cs}
				s.byID[cs.ID] = c
			}
			c.spec = cs
			next.push(c)
		}
		for _, c := range old {
			if c != nil && !inNew[c.spec.ID] {
				next.push(c)
			}
		}
		s.children = next
	}
	s.changed()
	s.publish()
	return nil
}
