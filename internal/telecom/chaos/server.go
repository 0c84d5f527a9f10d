package chaos

import (
	"errors"
	"fmt"
	"math/rand/v2"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/sys"
)

// server is chaos_monkey. Faults that take time (a flood, a memory hog, a
// spinning handler) run in helper processes linked to it, so that the
// monkey itself stays responsive and its timer keeps the rate.
type server struct{ m *Monkey }

type monkeyState struct {
	rng      *rand.Rand
	gen      uint64 // generation of the fault timer: ticks of an older one are stale
	checking bool   // a partition check is scheduled
	helpers  map[runtime.PID]Kind
	procs    []runtime.ProcessInfo // reused snapshot buffer
}

type tickMsg struct{ gen uint64 }
type partitionCheckMsg struct{}

func (s *server) Init(p *runtime.Process, _ any) genserver.Result {
	st := &monkeyState{rng: s.m.newRand(), helpers: map[runtime.PID]Kind{}}
	s.arm(p, st)
	if s.m.Partitioned() {
		s.armCheck(p, st, 0) // a partition outlives a restart of the monkey
	}
	return genserver.Ok(st)
}

// arm restarts the fault timer from the current settings.
func (s *server) arm(p *runtime.Process, st *monkeyState) {
	st.gen++
	if set := s.m.Settings(); s.m.Running() && set.Rate > 0 {
		after(p, set.interval(), tickMsg{st.gen})
	}
}

func (s *server) armCheck(p *runtime.Process, st *monkeyState, d time.Duration) {
	if !st.checking {
		st.checking = true
		after(p, d, partitionCheckMsg{})
	}
}

// after sends msg to the process after d, as erlang:send_after/3 does.
func after(p *runtime.Process, d time.Duration, msg any) {
	self, n := p.Self(), p.Node()
	time.AfterFunc(d, func() { _ = n.Send(self, msg) })
}

func (s *server) HandleCall(p *runtime.Process, req any, _ runtime.From, state any) genserver.Result {
	st := state.(*monkeyState)
	if r, ok := req.(injectReq); ok {
		f, err := s.inject(p, st, r.kind)
		return genserver.Reply(injectReply{f, err}, st)
	}
	return genserver.Reply(injectReply{err: fmt.Errorf("%s: unknown request %T", Name, req)}, st)
}

func (s *server) HandleCast(p *runtime.Process, _ any, state any) genserver.Result {
	return genserver.NoReply(state)
}

func (s *server) HandleInfo(p *runtime.Process, msg any, state any) genserver.Result {
	st := state.(*monkeyState)
	switch m := msg.(type) {
	case wakeMsg:
		s.arm(p, st)
	case haltMsg:
		for pid := range st.helpers {
			p.ExitSignal(pid, runtime.Kill)
		}
	case tickMsg:
		if m.gen != st.gen {
			break
		}
		set := s.m.Settings()
		if !s.m.Running() || set.Rate <= 0 {
			break
		}
		after(p, set.interval(), tickMsg{st.gen}) // first, so that the rate holds whatever the fault costs
		_, _ = s.inject(p, st, set.Kinds[st.rng.IntN(len(set.Kinds))])
	case partitionCheckMsg:
		st.checking = false
		if next, on := s.m.checkPartition(); on {
			s.armCheck(p, st, next)
		}
	case runtime.ExitMsg:
		delete(st.helpers, m.From) // a helper finished (or was killed)
	}
	return genserver.NoReply(st)
}

// Terminate heals a partition when the monkey stops, so that no fault
// outlives it. A monkey killed by someone else cannot; its successor
// carries the partition on to its end.
func (s *server) Terminate(p *runtime.Process, _ any, _ any) { s.m.heal() }

var errBusy = errors.New("the previous one is still running")

// inject injects one fault of kind and publishes it, or counts it skipped.
func (s *server) inject(p *runtime.Process, st *monkeyState, kind Kind) (Fault, error) {
	f, err := s.prepare(p, st, kind)
	if err != nil {
		s.m.skip(kind, err)
		return Fault{}, fmt.Errorf("chaos: %s: %w", kind, err)
	}
	return f, nil
}

func (s *server) prepare(p *runtime.Process, st *monkeyState, kind Kind) (Fault, error) {
	set := s.m.Settings()
	f := Fault{Kind: kind, At: time.Now()}
	switch kind {
	case Kill, Exit, Supervisor:
		target, err := s.pick(p, st, kind, set.Targets)
		if err != nil {
			return f, err
		}
		f.Target, f.Name = target.PID, label(target)
		var reason any = runtime.Kill
		if kind == Exit {
			reason = ExitReason
			f.Detail = "exit signal " + string(ExitReason)
		}
		// Published first: the signal may end the monkey itself.
		s.m.record(f)
		p.ExitSignal(target.PID, reason)
		return f, nil
	case Flood:
		if s.busy(st, Flood) {
			return f, errBusy
		}
		targets := s.candidates(p, st, Flood, set.Targets)
		if len(targets) == 0 {
			return f, noTarget(kind, set.Targets)
		}
		pids := make([]runtime.PID, len(targets))
		for i, t := range targets {
			pids[i] = t.PID
		}
		n := set.floodMessages()
		f.Detail = fmt.Sprintf("%d messages to each of %d workers", n, len(pids))
		f.Target, f.Name = s.spawn(p, st, Flood, func(h *runtime.Process) { flood(h, pids, n) }), Name
	case Memory:
		if s.busy(st, Memory) {
			return f, errBusy
		}
		size, hold := set.memoryBytes(), set.memoryHold()
		f.Detail = fmt.Sprintf("%s held for %v", formatBytes(size), hold)
		f.Target, f.Name = s.spawn(p, st, Memory, func(h *runtime.Process) { hog(h, size, hold) }), Name
	case CPU:
		if s.busy(st, CPU) {
			return f, errBusy
		}
		target, err := s.pick(p, st, kind, set.Targets)
		if err != nil {
			return f, err
		}
		spin := set.cpuSpin()
		f.Target, f.Name, f.Detail = target.PID, label(target), fmt.Sprintf("its handler spins for %v", spin)
		s.spawn(p, st, CPU, func(h *runtime.Process) {
			// sys:replace_state runs the function inside the target, between
			// its messages: the target itself is busy, its mailbox waits.
			_, _ = sys.ReplaceState(h.Node(), target.PID, spinner(spin), spin+10*time.Second)
		})
	case Partition:
		if s.m.opts.Partition == nil {
			return f, errors.New("this system has no partition switch")
		}
		d := set.partitionFor()
		f.Detail = fmt.Sprintf("the ledger's database is unreachable for %v", d)
		switch err := s.m.partition(d); {
		case errors.Is(err, errPartitioned) || errors.Is(err, errReachable):
			return f, err
		case err != nil:
			// The switch is on; the cut is applied again at the next check.
			f.Detail += " (" + err.Error() + ")"
		}
		s.armCheck(p, st, 0)
	default:
		return f, fmt.Errorf("unknown fault kind %q", kind)
	}
	s.m.record(f)
	return f, nil
}

func (s *server) busy(st *monkeyState, kind Kind) bool {
	for _, k := range st.helpers {
		if k == kind {
			return true
		}
	}
	return false
}

// spawn starts a helper process linked to the monkey: it dies with the
// monkey, and its end arrives as an ExitMsg.
func (s *server) spawn(p *runtime.Process, st *monkeyState, kind Kind, fn func(h *runtime.Process)) runtime.PID {
	pid, _, err := p.Spawn(func(h *runtime.Process) {
		h.SetModule(runtime.ModuleInfo{Module: Name, Version: "1"})
		fn(h)
	}, runtime.SpawnOpts{Link: true})
	if err != nil {
		return runtime.PID{}
	}
	st.helpers[pid] = kind
	return pid
}

// pick chooses one eligible process at random.
func (s *server) pick(p *runtime.Process, st *monkeyState, kind Kind, targets []string) (runtime.ProcessInfo, error) {
	c := s.candidates(p, st, kind, targets)
	if len(c) == 0 {
		return runtime.ProcessInfo{}, noTarget(kind, targets)
	}
	return c[st.rng.IntN(len(c))], nil
}

func noTarget(kind Kind, targets []string) error {
	what := "worker"
	if kind == Supervisor {
		what = "supervisor"
	}
	if len(targets) == 0 {
		return fmt.Errorf("no %s is running", what)
	}
	return fmt.Errorf("no %s matches the targets %s", what, strings.Join(targets, ", "))
}

// candidates lists the live processes a fault of kind may hit. Only the
// processes of the tree count: gen_servers, gen_statems and supervisors,
// not application masters or plain processes such as the monkey's helpers.
func (s *server) candidates(p *runtime.Process, st *monkeyState, kind Kind, targets []string) []runtime.ProcessInfo {
	st.procs = p.Node().Snapshot(st.procs)
	var out []runtime.ProcessInfo
	for _, pi := range st.procs {
		if eligible(kind, pi, p.Self(), targets) {
			out = append(out, pi)
		}
	}
	return out
}

func eligible(kind Kind, pi runtime.ProcessInfo, self runtime.PID, targets []string) bool {
	var sup bool
	switch pi.Behaviour {
	case "gen_server", "gen_statem":
	case "supervisor":
		sup = true
	default:
		return false
	}
	monkey := pi.PID == self || pi.Module == Name
	switch kind {
	case Kill, Exit:
		if named(pi, targets) {
			return true // the targets say so, even for a supervisor or the monkey
		}
		return !sup && !monkey && matches(pi, targets)
	case Flood, CPU:
		return !sup && !monkey && matches(pi, targets)
	case Supervisor:
		return sup && matches(pi, targets)
	}
	return false
}

func matches(pi runtime.ProcessInfo, targets []string) bool {
	if len(targets) == 0 {
		return true
	}
	for _, t := range targets {
		if pi.Name != "" && strings.HasPrefix(pi.Name, t) || pi.Module != "" && strings.HasPrefix(pi.Module, t) {
			return true
		}
	}
	return false
}

func named(pi runtime.ProcessInfo, targets []string) bool {
	for _, t := range targets {
		if pi.Name == t || pi.Module == t {
			return true
		}
	}
	return false
}

func label(pi runtime.ProcessInfo) string {
	if pi.Name != "" {
		return pi.Name
	}
	return pi.Module
}

// flood sends n messages to each target, stopping early if the helper is
// killed.
func flood(h *runtime.Process, targets []runtime.PID, n int) {
	for _, t := range targets {
		for i := range n {
			if i%1024 == 0 && !h.Alive() {
				return
			}
			_ = h.Send(t, FloodMsg)
		}
	}
}

// hog allocates size bytes, touching every page so that the memory is
// really taken, holds it for hold, then releases it to the OS.
func hog(h *runtime.Process, size int64, hold time.Duration) {
	const page = 4096
	buf := make([]byte, size)
	for i := 0; i < len(buf); i += page {
		if i%(1<<20) == 0 && !h.Alive() {
			return // killed: what was taken is garbage now
		}
		buf[i] = 1
	}
	// Messages are left alone: the hold lasts its time whatever arrives,
	// and a kill ends it at once.
	h.ReceiveMatch(func(any) bool { return false }, hold)
	goruntime.KeepAlive(buf) // held until here, then garbage
	debug.FreeOSMemory()
}

// spinner returns a replace_state function that keeps its process busy for
// d and leaves the state as it was.
func spinner(d time.Duration) func(any) any {
	return func(state any) any {
		for end := time.Now().Add(d); time.Now().Before(end); {
		}
		return state
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
