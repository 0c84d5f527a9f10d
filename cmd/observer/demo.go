package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/term"

	"observer/internal/runtime"
	"observer/internal/runtime/code"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/supervisor"
	"observer/internal/runtime/sys"
	"observer/internal/telecom/chaos"
	"observer/internal/ui"
)

func init() {
	register(command{name: "demo", summary: "a guided tour of OTP's restart behaviour, step by step, for a talk", run: runDemo})
}

// demoWait bounds every wait of the demo for an event or a call; only a
// runtime that behaves wrongly reaches it.
const demoWait = 5 * time.Second

func runDemo(e *env, args []string) error {
	fs := newFlags(e, "demo", "",
		"Walks through OTP's restart behaviour on small supervisors it builds on its own node: each step shows\n"+
			"a caption (what is about to happen and why OTP does it), does it, and shows the events it caused.\n"+
			"In a terminal it shows the live UI with the caption below it, and space advances; q quits.\n"+
			"When standard output is not a terminal it prints the captions and events as text, without pausing.")
	auto := fs.Bool("auto", false, "run unattended, pausing --pause before and after each step's action")
	pause := fs.Duration("pause", 2*time.Second, "pause between moves with --auto")
	text := fs.Bool("text", false, "print text even in a terminal, instead of the live UI")
	theme := fs.String("theme", "auto", "UI colours: auto, dark, light or high-contrast")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected argument %q", pos[0])
	}
	if *pause < 0 {
		return usageError("--pause must not be negative, got %v", *pause)
	}
	ctx, cancel := signalContext()
	defer cancel()

	stdoutTTY := demoIsTerminal(e.stdout)
	interactive := !*auto && stdoutTTY && demoIsTerminal(os.Stdin)
	wait := func(ctx context.Context) error { return nil }
	switch {
	case *auto:
		wait = func(ctx context.Context) error { return demoSleep(ctx, *pause) }
	case interactive && *text:
		wait = demoWaitForKey
	}
	if stdoutTTY && !*text {
		return runDemoUI(ctx, e, *theme, interactive, *pause)
	}
	d := newDemo(&demoTextOut{w: e.stdout, pause: wait})
	fmt.Fprintf(e.stdout, "observer demo: OTP's restart behaviour, step by step (%d steps)\n", len(d.steps))
	if interactive {
		fmt.Fprintln(e.stdout, "space: next · q: quit")
	}
	return d.run(ctx)
}

// demoIsTerminal reports whether w is a terminal.
func demoIsTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

func demoSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errDemoQuit ends the demo early at the presenter's request.
var errDemoQuit = errors.New("quit")

// demoKeys delivers the bytes read from standard input, by one reader for
// the life of the program, so that no key is lost between two waits.
var demoKeys = sync.OnceValue(func() <-chan byte {
	keys := make(chan byte, 16)
	go func() {
		defer close(keys)
		var b [1]byte
		for {
			if n, err := os.Stdin.Read(b[:]); n == 0 || err != nil {
				return
			}
			keys <- b[0]
		}
	}()
	return keys
})

// demoWaitForKey waits for space or enter on a terminal's standard input; q,
// escape and ctrl+c quit.
func demoWaitForKey(ctx context.Context) error {
	fd := os.Stdin.Fd()
	st, err := term.MakeRaw(fd)
	if err != nil {
		return nil // not a terminal after all: do not wait
	}
	defer term.Restore(fd, st)
	keys := demoKeys()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case k, ok := <-keys:
			switch {
			case !ok:
				return nil
			case k == ' ', k == '\r', k == '\n':
				return nil
			case k == 'q', k == 3, k == 27:
				return errDemoQuit
			}
		}
	}
}

// demoOut is where the demo shows itself: text or the live UI.
type demoOut interface {
	// step announces step i of total before it is set up.
	step(i, total int, s *demoStep)
	// line shows one line of what happens; kind is "tree", "do", "event",
	// "see" or "fail".
	line(kind, text string)
	// wait holds the demo until the presenter (or the --pause) moves on.
	wait(ctx context.Context) error
}

// demoTextOut prints the demo as text.
type demoTextOut struct {
	w     io.Writer
	pause func(ctx context.Context) error
}

func (o *demoTextOut) step(i, total int, s *demoStep) {
	fmt.Fprintf(o.w, "\n[%d/%d] #%s %s\n", i, total, s.id, s.title)
	fmt.Fprintf(o.w, "      %s\n", s.caption)
}

func (o *demoTextOut) line(kind, text string) { fmt.Fprintf(o.w, "  %-5s %s\n", kind, text) }

func (o *demoTextOut) wait(ctx context.Context) error { return o.pause(ctx) }

// demoStep is one step of the walk.
type demoStep struct {
	// id is the step's number in the restart-behaviour walk (1..13), or a
	// name for the steps beyond it.
	id      string
	title   string
	caption string // one line: what is about to happen and why OTP does it
	// setup builds the step's tree; act does the step and checks what
	// the audience should see.
	setup, act func(s *demoStage) error
}

// demo runs the steps on one node.
type demo struct {
	n     *runtime.Node
	out   demoOut
	steps []demoStep
}

func newDemo(out demoOut) *demo {
	return &demo{n: runtime.NewNode(runtime.Options{}), out: out, steps: demoSteps()}
}

// run walks every step. A step whose events differ from OTP's is reported
// and the walk goes on; the error at the end names them.
func (d *demo) run(ctx context.Context) error {
	var failed []string
	for i := range d.steps {
		st := &d.steps[i]
		d.out.step(i+1, len(d.steps), st)
		s := &demoStage{d: d, labels: map[runtime.PID]string{}}
		err := st.setup(s)
		if err == nil {
			if err = d.out.wait(ctx); err == nil {
				s.listen()
				if err = st.act(s); err == nil {
					err = d.out.wait(ctx)
				}
			}
		}
		s.teardown()
		switch {
		case errors.Is(err, errDemoQuit), ctx.Err() != nil:
			return nil
		case err != nil:
			d.out.line("fail", err.Error())
			failed = append(failed, st.id)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("the runtime did not behave as OTP does in step %s", strings.Join(failed, ", "))
	}
	return nil
}

// demoStage is one step in progress: the supervisors it started and the
// events it watches.
type demoStage struct {
	d      *demo
	sub    *runtime.Subscription
	labels map[runtime.PID]string // watched supervisors
	code   bool                   // also watch code changes
	sups   []runtime.PID          // stopped by teardown
}

// listen starts reading events now, so the step's action sees only its own.
func (s *demoStage) listen() {
	if s.sub != nil {
		s.sub.Close()
	}
	s.sub = s.d.n.Subscribe(1 << 12)
}

// startSup starts a supervisor named name, watched and stopped at the end
// of the step.
func (s *demoStage) startSup(name string, flags supervisor.Flags, children ...supervisor.ChildSpec) (runtime.PID, error) {
	pid, err := supervisor.Start(s.d.n, supervisor.Spec{Flags: flags, Children: children}, supervisor.Options{Name: name})
	if err != nil {
		return pid, err
	}
	s.sups = append(s.sups, pid)
	s.labels[pid] = name
	return pid, nil
}

// teardown stops what the step started.
func (s *demoStage) teardown() {
	clear(s.labels)
	for _, pid := range slices.Backward(s.sups) {
		if pid.Alive() {
			_ = supervisor.Stop(s.d.n, pid, runtime.Shutdown, demoWait)
		}
	}
	if s.sub != nil {
		s.sub.Close()
	}
}

// eventLine renders an event the way the steps expect it: the supervisor's
// label, the report, the child's ID and the reason; an exit is
// "label: EXIT reason"; a code change is "code_change text".
func (s *demoStage) eventLine(e runtime.Event) string {
	if e.Kind == runtime.EventCodeChange {
		return "code_change " + e.Text
	}
	parts := []string{s.labels[e.PID] + ":"}
	if e.Kind == runtime.EventExit {
		return strings.Join(append(parts, "EXIT", runtime.FormatReason(e.Reason)), " ")
	}
	parts = append(parts, e.Text)
	if e.Name != "" {
		parts = append(parts, e.Name)
	}
	if e.Reason != nil {
		parts = append(parts, runtime.FormatReason(e.Reason))
	}
	return strings.Join(parts, " ")
}

// next returns the next event the step watches.
func (s *demoStage) next() (runtime.Event, bool) {
	deadline := time.After(demoWait)
	for {
		select {
		case e := <-s.sub.C:
			if e.Kind == runtime.EventCodeChange && s.code {
				return e, true
			}
			if _, ok := s.labels[e.PID]; ok && (e.Kind == runtime.EventSupervisor || e.Kind == runtime.EventExit) {
				return e, true
			}
		case <-deadline:
			return runtime.Event{}, false
		}
	}
}

// expect shows the next events as they come and checks that they are
// want, in order.
func (s *demoStage) expect(want ...string) ([]runtime.Event, error) {
	var got []runtime.Event
	for i, w := range want {
		e, ok := s.next()
		if !ok {
			return got, fmt.Errorf("no event within %v; want %q", demoWait, strings.Join(want[i:], ", "))
		}
		got = append(got, e)
		l := s.eventLine(e)
		shown := l
		if (e.Text == supervisor.ReportChildRestarted || e.Text == supervisor.ReportChildStarted) && !e.Other.IsZero() {
			shown += " " + e.Other.String()
		}
		s.d.out.line("event", shown)
		if l != w {
			return got, fmt.Errorf("event %q, want %q", l, w)
		}
	}
	return got, nil
}

// do shows an action.
func (s *demoStage) do(format string, args ...any) { s.d.out.line("do", fmt.Sprintf(format, args...)) }

// see shows what the audience should notice.
func (s *demoStage) see(format string, args ...any) {
	s.d.out.line("see", fmt.Sprintf(format, args...))
}

// children returns a supervisor's children in start order.
func (s *demoStage) children(sup runtime.PID) ([]supervisor.Child, error) {
	cs, err := supervisor.WhichChildren(s.d.n, sup, demoWait)
	slices.Reverse(cs) // which_children is newest first
	return cs, err
}

// pids maps a supervisor's child IDs to their PIDs.
func (s *demoStage) pids(sup runtime.PID) (map[string]runtime.PID, error) {
	cs, err := s.children(sup)
	m := make(map[string]runtime.PID, len(cs))
	for _, c := range cs {
		m[c.ID] = c.PID
	}
	return m, err
}

// tree shows a supervisor and its children.
func (s *demoStage) tree(sup runtime.PID) error {
	cs, err := s.children(sup)
	if err != nil {
		return err
	}
	info, _ := supervisor.Inspect(sup)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v %v:", s.labels[sup], sup, info.Strategy)
	for _, c := range cs {
		fmt.Fprintf(&b, "  %s %s", c.ID, demoPIDText(c.PID))
	}
	s.d.out.line("tree", b.String())
	return nil
}

func demoPIDText(pid runtime.PID) string {
	if pid.IsZero() {
		return "undefined"
	}
	return pid.String()
}

// compare shows which children kept their PID; it fails unless exactly
// the children in changed got new ones.
func (s *demoStage) compare(before, after map[string]runtime.PID, ids []string, changed ...string) error {
	var parts []string
	var wrong []string
	for _, id := range ids {
		b, a := before[id], after[id]
		if b == a {
			parts = append(parts, fmt.Sprintf("%s %v kept", id, a))
		} else {
			parts = append(parts, fmt.Sprintf("%s %v → %v", id, b, a))
		}
		if (b != a) != slices.Contains(changed, id) || !a.Alive() {
			wrong = append(wrong, id)
		}
	}
	s.see("%s", strings.Join(parts, ", "))
	if len(wrong) > 0 {
		return fmt.Errorf("children %v: want new PIDs for exactly %v", wrong, changed)
	}
	return nil
}

// demoWorker is the gen_server the steps supervise.
type demoWorker struct {
	// slow traps exits and blocks in Terminate until it is killed.
	slow bool
}

// demoStopWith makes a worker stop itself with reason.
type demoStopWith struct{ reason any }

func (w demoWorker) Init(p *runtime.Process, _ any) genserver.Result {
	if w.slow {
		p.TrapExit(true)
	}
	return genserver.Ok(nil)
}

func (w demoWorker) HandleCall(_ *runtime.Process, req any, _ runtime.From, st any) genserver.Result {
	return genserver.Reply(req, st)
}

func (w demoWorker) HandleCast(_ *runtime.Process, msg any, st any) genserver.Result {
	if m, ok := msg.(demoStopWith); ok {
		return genserver.Stop(m.reason, st)
	}
	return genserver.NoReply(st)
}

func (w demoWorker) HandleInfo(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

func (w demoWorker) Terminate(p *runtime.Process, _ any, _ any) {
	if w.slow {
		<-p.Context().Done() // stuck until the supervisor kills it
	}
}

// demoWorkerSpec is a permanent demoWorker child.
func demoWorkerSpec(id string) supervisor.ChildSpec {
	return supervisor.ChildSpec{ID: id, Module: "worker", Start: func(p *runtime.Process) (runtime.PID, error) {
		return genserver.StartLink(p, demoWorker{}, nil, genserver.Options{Module: "worker"})
	}}
}

// crash makes a worker stop itself with reason crash, as a bug would.
func (s *demoStage) crash(id string, pid runtime.PID) error {
	s.do("%s %v crashes (exits with reason crash)", id, pid)
	return genserver.Cast(s.d.n, pid, demoStopWith{runtime.Atom("crash")})
}

// demoStrategyStep is steps 1 to 3: a flat tree, one child dies.
func demoStrategyStep(strategy supervisor.Strategy, ids []string, kill bool, changed []string, want ...string) (setup, act func(*demoStage) error) {
	var sup runtime.PID
	var before map[string]runtime.PID
	setup = func(s *demoStage) error {
		specs := make([]supervisor.ChildSpec, len(ids))
		for i, id := range ids {
			specs[i] = demoWorkerSpec(id)
		}
		var err error
		if sup, err = s.startSup("demo_sup", supervisor.Flags{Strategy: strategy, Intensity: 1}, specs...); err != nil {
			return err
		}
		if before, err = s.pids(sup); err != nil {
			return err
		}
		return s.tree(sup)
	}
	act = func(s *demoStage) error {
		if kill {
			s.do("exit(%v, kill): b is killed", before["b"])
			s.d.n.Exit(before["b"], runtime.Kill)
		} else if err := s.crash("b", before["b"]); err != nil {
			return err
		}
		if _, err := s.expect(want...); err != nil {
			return err
		}
		after, err := s.pids(sup)
		if err != nil {
			return err
		}
		return s.compare(before, after, ids, changed...)
	}
	return setup, act
}

func demoSteps() []demoStep {
	var steps []demoStep
	add := func(id, title, caption string, setup, act func(*demoStage) error) {
		steps = append(steps, demoStep{id: id, title: title, caption: caption, setup: setup, act: act})
	}

	setup, act := demoStrategyStep(supervisor.OneForOne, []string{"a", "b", "c"}, true, []string{"b"},
		"demo_sup: child_exited b killed", "demo_sup: child_restarted b")
	add("1", "one_for_one [a b c]: kill b",
		"b gets the untrappable kill and exits killed; one_for_one restarts only b, because its siblings do not depend on it.",
		setup, act)

	setup, act = demoStrategyStep(supervisor.OneForAll, []string{"a", "b", "c"}, false, []string{"a", "b", "c"},
		"demo_sup: child_exited b crash",
		"demo_sup: child_terminated c shutdown", "demo_sup: child_terminated a shutdown",
		"demo_sup: child_restarted a", "demo_sup: child_restarted b", "demo_sup: child_restarted c")
	add("2", "one_for_all [a b c]: crash b",
		"children that cannot work without each other: one_for_all stops the rest in reverse start order (c, then a) with shutdown, then starts all three.",
		setup, act)

	setup, act = demoStrategyStep(supervisor.RestForOne, []string{"a", "b", "c", "d"}, false, []string{"b", "c", "d"},
		"demo_sup: child_exited b crash",
		"demo_sup: child_terminated d shutdown", "demo_sup: child_terminated c shutdown",
		"demo_sup: child_restarted b", "demo_sup: child_restarted c", "demo_sup: child_restarted d")
	add("3", "rest_for_one [a b c d]: crash b",
		"children started after b may depend on it, those before may not: rest_for_one stops d then c, restarts b, c, d, and leaves a alone.",
		setup, act)

	setup, act = demoIntensityStep()
	add("4", "intensity 2 in 5 s [a b]: crash a three times",
		"restarting forever fixes nothing: a third restart within 5 s makes the supervisor give up, stop b and exit shutdown, for its parent to decide.",
		setup, act)
	setup, act = demoTransientStep()
	add("7", "transient t: exit {shutdown,x}, then kill",
		"a transient child is restarted only after an abnormal exit: {shutdown,x} is clean, so t stays undefined; killed is not, so t restarts.",
		setup, act)
	setup, act = demoSlowStep()
	add("9", "stop the supervisor; slow has shutdown 300 ms",
		"a supervisor stops its children one at a time in reverse start order, giving each its shutdown time; slow, stuck in terminate, is killed at 300 ms.",
		setup, act)
	setup, act = demoEscalationStep()
	add("13", "escalation: demo_sub gives up inside demo_top",
		"demo_sub (intensity 1) crashes twice and exits shutdown; demo_top restarts it from its spec, so dyn, added later with start_child, is gone.",
		setup, act)
	setup, act = demoReloadStep()
	add("reload", "hot code reload: demo_counter 1 → 2",
		"a release upgrade suspends each process, runs code_change to carry its state to the new version and resumes it: same PIDs, same counts.",
		setup, act)
	setup, act = demoChaosStep(5)
	add("chaos", "chaos burst: chaos_monkey kills 5 random workers",
		"let it crash at scale: each killed worker is restarted on its own, and 5 restarts stay within demo_chaos's intensity of 10, so the tree stands.",
		setup, act)
	return steps
}

// demoIntensityStep is step 4.
func demoIntensityStep() (setup, act func(*demoStage) error) {
	var sup runtime.PID
	setup = func(s *demoStage) error {
		var err error
		sup, err = s.startSup("demo_sup", supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 2, Period: 5},
			demoWorkerSpec("a"), demoWorkerSpec("b"))
		if err != nil {
			return err
		}
		return s.tree(sup)
	}
	act = func(s *demoStage) error {
		w := s.d.n.Monitor(sup)
		defer w.Cancel()
		pids, err := s.pids(sup)
		if err != nil {
			return err
		}
		a := pids["a"]
		for range 2 {
			if err := s.crash("a", a); err != nil {
				return err
			}
			e, err := s.expect("demo_sup: child_exited a crash", "demo_sup: child_restarted a")
			if err != nil {
				return err
			}
			a = e[1].Other
		}
		if err := s.crash("a", a); err != nil {
			return err
		}
		if _, err := s.expect("demo_sup: child_exited a crash",
			"demo_sup: reached_max_restart_intensity a shutdown",
			"demo_sup: shutdown shutdown",
			"demo_sup: child_terminated b shutdown",
			"demo_sup: EXIT shutdown"); err != nil {
			return err
		}
		select {
		case d := <-w.C:
			s.see("demo_sup exited %s, not crash: its parent sees a supervisor that gave up", runtime.FormatReason(d.Reason))
			if d.Reason != runtime.Shutdown {
				return fmt.Errorf("demo_sup exited %v, want shutdown", d.Reason)
			}
		case <-time.After(demoWait):
			return errors.New("demo_sup did not exit")
		}
		return nil
	}
	return setup, act
}

// demoTransientStep is step 7.
func demoTransientStep() (setup, act func(*demoStage) error) {
	var sup runtime.PID
	setup = func(s *demoStage) error {
		t := demoWorkerSpec("t")
		t.Restart = supervisor.Transient
		var err error
		if sup, err = s.startSup("demo_sup", supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1}, t); err != nil {
			return err
		}
		return s.tree(sup)
	}
	act = func(s *demoStage) error {
		n := s.d.n
		pids, err := s.pids(sup)
		if err != nil {
			return err
		}
		s.do("t %v exits {shutdown,x}", pids["t"])
		if err := genserver.Cast(n, pids["t"], demoStopWith{runtime.ShutdownReason{Term: runtime.Atom("x")}}); err != nil {
			return err
		}
		if _, err := s.expect("demo_sup: child_exited t {shutdown,x}"); err != nil {
			return err
		}
		c, err := supervisor.WhichChild(n, sup, "t", demoWait)
		if err != nil {
			return err
		}
		s.see("t is %s: a clean exit is not restarted", demoPIDText(c.PID))
		if !c.PID.IsZero() {
			return fmt.Errorf("t is %v after {shutdown,x}, want undefined", c.PID)
		}
		s.do("restart_child(demo_sup, t)")
		pid, err := supervisor.RestartChild(n, sup, "t", demoWait)
		if err != nil {
			return err
		}
		if _, err := s.expect("demo_sup: child_started t"); err != nil {
			return err
		}
		s.do("exit(%v, kill)", pid)
		n.Exit(pid, runtime.Kill)
		e, err := s.expect("demo_sup: child_exited t killed", "demo_sup: child_restarted t")
		if err != nil {
			return err
		}
		s.see("t %v → %v: killed is abnormal, so the transient child restarts", pid, e[1].Other)
		return nil
	}
	return setup, act
}

// demoSlowStep is step 9.
func demoSlowStep() (setup, act func(*demoStage) error) {
	var sup runtime.PID
	setup = func(s *demoStage) error {
		slow := supervisor.ChildSpec{ID: "slow", Module: "worker", Shutdown: 300 * time.Millisecond,
			Start: func(p *runtime.Process) (runtime.PID, error) {
				return genserver.StartLink(p, demoWorker{slow: true}, nil, genserver.Options{Module: "worker"})
			}}
		var err error
		if sup, err = s.startSup("demo_sup", supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1},
			demoWorkerSpec("a"), slow, demoWorkerSpec("c")); err != nil {
			return err
		}
		return s.tree(sup)
	}
	act = func(s *demoStage) error {
		s.do("exit(demo_sup, shutdown): the supervisor is told to stop")
		s.d.n.Exit(sup, runtime.Shutdown)
		e, err := s.expect("demo_sup: shutdown shutdown",
			"demo_sup: child_terminated c shutdown",
			"demo_sup: child_terminated slow killed",
			"demo_sup: child_terminated a shutdown",
			"demo_sup: EXIT shutdown")
		if err != nil {
			return err
		}
		waited := e[2].Time.Sub(e[1].Time)
		s.see("slow was killed %v after c stopped; then a stopped at once", waited.Round(time.Millisecond))
		if waited < 300*time.Millisecond {
			return fmt.Errorf("slow was killed after %v, before its 300ms", waited)
		}
		return nil
	}
	return setup, act
}

// demoEscalationStep is step 13.
func demoEscalationStep() (setup, act func(*demoStage) error) {
	var top, sub runtime.PID
	setup = func(s *demoStage) error {
		spec := supervisor.ChildSpec{ID: "demo_sub", Type: supervisor.Supervisor, Module: "demo_sub",
			Start: func(p *runtime.Process) (runtime.PID, error) {
				return supervisor.StartLink(p, supervisor.Spec{
					Flags:    supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1},
					Children: []supervisor.ChildSpec{demoWorkerSpec("w")},
				}, supervisor.Options{Name: "demo_sub"})
			}}
		var err error
		if top, err = s.startSup("demo_top", supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1}, spec); err != nil {
			return err
		}
		c, err := supervisor.WhichChild(s.d.n, top, "demo_sub", demoWait)
		if err != nil {
			return err
		}
		sub = c.PID
		s.labels[sub] = "demo_sub"
		s.do("start_child(demo_sub, dyn)")
		if _, err := supervisor.StartChild(s.d.n, sub, demoWorkerSpec("dyn"), demoWait); err != nil {
			return err
		}
		if err := s.tree(top); err != nil {
			return err
		}
		return s.tree(sub)
	}
	act = func(s *demoStage) error {
		pids, err := s.pids(sub)
		if err != nil {
			return err
		}
		if err := s.crash("w", pids["w"]); err != nil {
			return err
		}
		e, err := s.expect("demo_sub: child_exited w crash", "demo_sub: child_restarted w")
		if err != nil {
			return err
		}
		if err := s.crash("w", e[1].Other); err != nil {
			return err
		}
		e, err = s.expect("demo_sub: child_exited w crash",
			"demo_sub: reached_max_restart_intensity w shutdown",
			"demo_sub: shutdown shutdown",
			"demo_sub: child_terminated dyn shutdown",
			"demo_sub: EXIT shutdown",
			"demo_top: child_exited demo_sub shutdown",
			"demo_top: child_restarted demo_sub")
		if err != nil {
			return err
		}
		newSub := e[6].Other
		s.labels[newSub] = "demo_sub"
		if err := s.tree(newSub); err != nil {
			return err
		}
		cs, err := s.children(newSub)
		if err != nil {
			return err
		}
		if len(cs) != 1 || cs[0].ID != "w" {
			return fmt.Errorf("the restarted demo_sub has %v, want only w", cs)
		}
		s.see("demo_sub %v → %v, started from its spec: w is back, dyn is lost", sub, newSub)
		return nil
	}
	return setup, act
}

// demoChaosStep lets the chaos monkey kill burst workers, one after another.
func demoChaosStep(burst int) (setup, act func(*demoStage) error) {
	var (
		sup    runtime.PID
		monkey *chaos.Monkey
	)
	const workers, intensity = 6, 10
	setup = func(s *demoStage) error {
		var err error
		monkey, err = chaos.New(s.d.n, chaos.Settings{Targets: []string{"worker"}, Kinds: []chaos.Kind{chaos.Kill}}, chaos.Options{})
		if err != nil {
			return err
		}
		specs := []supervisor.ChildSpec{monkey.ChildSpec()}
		for i := range workers {
			specs = append(specs, demoWorkerSpec(fmt.Sprintf("w%d", i+1)))
		}
		if sup, err = s.startSup("demo_chaos", supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: intensity, Period: 5}, specs...); err != nil {
			return err
		}
		return s.tree(sup)
	}
	act = func(s *demoStage) error {
		pids, err := s.pids(sup)
		if err != nil {
			return err
		}
		ids := make(map[runtime.PID]string, len(pids))
		for id, pid := range pids {
			ids[pid] = id
		}
		for range burst {
			f, err := monkey.Inject(chaos.Kill)
			if err != nil {
				return err
			}
			id, ok := ids[f.Target]
			if !ok {
				return fmt.Errorf("chaos_monkey hit %v, which is not one of the workers", f.Target)
			}
			s.do("chaos_monkey: %v (%s)", f, id)
			e, err := s.expect("demo_chaos: child_exited "+id+" killed", "demo_chaos: child_restarted "+id)
			if err != nil {
				return err
			}
			ids[e[1].Other] = id
		}
		if _, err := sys.GetState(s.d.n, sup, demoWait); err != nil { // publishes its Info now
			return err
		}
		info, ok := supervisor.Inspect(sup)
		if !ok {
			return errors.New("demo_chaos is gone")
		}
		running := 0
		for _, c := range info.Children {
			if c.PID.Alive() {
				running++
			}
		}
		s.see("demo_chaos survived: %d restarts in its window, %d left; %d of %d children running",
			info.RestartCount, info.BudgetLeft, running, len(info.Children))
		if info.RestartCount != burst || running != len(info.Children) {
			return fmt.Errorf("demo_chaos counted %d restarts with %d of %d children running, want %d and all",
				info.RestartCount, running, len(info.Children), burst)
		}
		return nil
	}
	return setup, act
}

// The hot reload step: two versions of a counter compiled in, and the
// code server moving running processes from one to the other.

// demoCounterV1 keeps its count as an int.
type demoCounterV1 struct{}

// demoCounterV2 keeps the count and the version it was upgraded from.
type demoCounterV2 struct{}

type demoCounterState struct {
	Count    int
	Upgraded string // the version the state came from
}

type demoIncr struct{}
type demoGet struct{}

func (demoCounterV1) Init(_ *runtime.Process, _ any) genserver.Result { return genserver.Ok(0) }

func (demoCounterV1) HandleCall(_ *runtime.Process, req any, _ runtime.From, st any) genserver.Result {
	n := st.(int)
	if _, ok := req.(demoIncr); ok {
		n++
	}
	return genserver.Reply(fmt.Sprintf("%d", n), n)
}

func (demoCounterV1) HandleCast(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

func (demoCounterV1) HandleInfo(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

// CodeChange takes a version 2 state back on a downgrade.
func (demoCounterV1) CodeChange(_ string, st any, _ any) (any, error) {
	if c, ok := st.(demoCounterState); ok {
		return c.Count, nil
	}
	return st, nil
}

func (demoCounterV2) Init(_ *runtime.Process, _ any) genserver.Result {
	return genserver.Ok(demoCounterState{})
}

func (demoCounterV2) HandleCall(_ *runtime.Process, req any, _ runtime.From, st any) genserver.Result {
	c := st.(demoCounterState)
	if _, ok := req.(demoIncr); ok {
		c.Count++
	}
	return genserver.Reply(fmt.Sprintf("%d (state from v%s)", c.Count, c.Upgraded), c)
}

func (demoCounterV2) HandleCast(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

func (demoCounterV2) HandleInfo(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

// CodeChange is code_change/3: it turns version 1's int into version 2's state.
func (demoCounterV2) CodeChange(oldVersion string, st any, _ any) (any, error) {
	if n, ok := st.(int); ok {
		return demoCounterState{Count: n, Upgraded: oldVersion}, nil
	}
	return st, nil
}

// demoReloadStep upgrades three running counters from version 1 to 2.
func demoReloadStep() (setup, act func(*demoStage) error) {
	var (
		reg  *code.Registry
		sup  runtime.PID
		pids []runtime.PID
	)
	// counts shows each counter's reply to a get.
	counts := func(s *demoStage, label string) error {
		var parts []string
		for _, pid := range pids {
			v, err := genserver.Call(s.d.n, pid, demoGet{}, demoWait)
			if err != nil {
				return err
			}
			parts = append(parts, fmt.Sprintf("%v v%s count=%v", pid, pid.Info().Version, v))
		}
		s.see("%s: %s", label, strings.Join(parts, ", "))
		return nil
	}
	setup = func(s *demoStage) error {
		reg = code.NewRegistry(s.d.n)
		if err := reg.Register("demo_counter",
			code.Version{Name: "1", Module: demoCounterV1{}, Notes: "count as an int"},
			code.Version{Name: "2", Module: demoCounterV2{}, Notes: "count and the version it came from"},
		); err != nil {
			return err
		}
		counter := func(id string) supervisor.ChildSpec {
			return supervisor.ChildSpec{ID: id, Module: "demo_counter", Start: func(p *runtime.Process) (runtime.PID, error) {
				v := reg.Current("demo_counter")
				return genserver.StartLink(p, v.Module.(genserver.Module), nil, genserver.Options{Module: "demo_counter", Version: v.Name})
			}}
		}
		var err error
		if sup, err = s.startSup("demo_counters", supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1},
			counter("c1"), counter("c2"), counter("c3")); err != nil {
			return err
		}
		cs, err := s.children(sup)
		if err != nil {
			return err
		}
		for i, c := range cs {
			for range i + 1 {
				if _, err := genserver.Call(s.d.n, c.PID, demoIncr{}, demoWait); err != nil {
					return err
				}
			}
			pids = append(pids, c.PID)
		}
		if err := s.tree(sup); err != nil {
			return err
		}
		return counts(s, "before")
	}
	act = func(s *demoStage) error {
		s.code = true
		s.do("upgrade demo_counter to version 2")
		rep, err := reg.Upgrade("demo_counter", "2", nil, demoWait)
		if err != nil {
			return err
		}
		if _, err := s.expect("code_change demo_counter 1 -> 2", "code_change demo_counter 1 -> 2", "code_change demo_counter 1 -> 2",
			"code_change demo_counter 1 -> 2 (3 processes)"); err != nil {
			return err
		}
		s.see("%d processes upgraded, none suspended longer than %v", len(rep.Upgraded), rep.MaxPause.Round(time.Microsecond))
		if err := counts(s, "after"); err != nil {
			return err
		}
		cs, err := s.children(sup)
		if err != nil {
			return err
		}
		for i, c := range cs {
			if c.PID != pids[i] || c.PID.Info().Version != "2" {
				return fmt.Errorf("%s is %v on version %q, want %v on 2", c.ID, c.PID, c.PID.Info().Version, pids[i])
			}
		}
		return nil
	}
	return setup, act
}

// The live UI: the observer's own UI over the demo's node, with the
// caption and the latest events in three rows below it.

// demoSource is the UI's Source for the demo's bare node: its processes
// and supervisors, and no telecom system.
type demoSource struct{ n *runtime.Node }

func (s demoSource) Node() *runtime.Node { return s.n }

func (s demoSource) Telecom() ui.TelecomView { return ui.TelecomView{} }

func (s demoSource) Actions() ui.Actions { return ui.Actions{} }

func (s demoSource) Tree() []ui.SupervisorView {
	infos := supervisor.All(s.n)
	out := make([]ui.SupervisorView, 0, len(infos))
	for _, info := range infos {
		v := ui.SupervisorView{
			PID: info.PID, Name: info.Name, Module: info.Module, Version: info.Version,
			Strategy: info.Strategy.String(), Intensity: info.Intensity, Period: time.Duration(info.Period) * time.Second,
		}
		for _, r := range info.Restarts {
			for range r.Count {
				v.Restarts = append(v.Restarts, r.At)
			}
		}
		for _, c := range info.Children {
			v.Children = append(v.Children, ui.ChildView{
				ID: c.ID, PID: c.PID, Status: c.Status.String(), Type: c.Type.String(), Restarts: c.Restarts,
				LastExit: c.LastExit, LastRestart: c.LastRestart, Module: c.Module, Version: c.Version,
			})
		}
		out = append(out, v)
	}
	return out
}

// demoCaptionRows is the height of the caption area below the UI: the
// step's title, its caption on two rows, and the step's latest two lines.
const demoCaptionRows = 5

// Messages from the demo to the UI.
type (
	demoStepMsg struct{ title, caption string }
	demoLineMsg string
	demoHintMsg string
)

// demoModel wraps the observer's UI model: it gives the UI all rows but
// the last three, draws the caption there, and takes space to advance.
type demoModel struct {
	inner         tea.Model
	width, height int
	title         string
	caption       string
	lines         []string // the latest lines of the step, newest last
	hint          string
	advance       chan<- struct{}
}

func (m *demoModel) Init() tea.Cmd { return m.inner.Init() }

func (m *demoModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		msg.Height = max(msg.Height-demoCaptionRows, 0)
		return m.forward(msg)
	case tea.KeyPressMsg:
		if msg.String() == "space" {
			select {
			case m.advance <- struct{}{}:
			default:
			}
			return m, nil
		}
	case demoStepMsg:
		m.title, m.caption, m.lines = msg.title, msg.caption, nil
		return m, nil
	case demoLineMsg:
		m.lines = append(m.lines, string(msg))
		return m, nil
	case demoHintMsg:
		m.hint = string(msg)
		return m, nil
	}
	return m.forward(msg)
}

func (m *demoModel) forward(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	m.inner, cmd = m.inner.Update(msg)
	return m, cmd
}

func (m *demoModel) View() tea.View {
	v := m.inner.View()
	w := max(m.width, 1)
	fit := func(s string) string { return ansi.Truncate(s, w, "…") }
	title := " " + m.title
	if m.hint != "" {
		title += " · " + m.hint
	}
	title += strings.Repeat(" ", max(w-ansi.StringWidth(title), 0))
	rows := []string{"\x1b[7m" + fit(title) + "\x1b[0m"}
	caption := strings.Split(ansi.Wordwrap(m.caption, max(w-2, 1), ""), "\n")
	for i := range 2 {
		if i < len(caption) {
			rows = append(rows, fit(" "+caption[i]))
		} else {
			rows = append(rows, "")
		}
	}
	for i := len(m.lines) - 2; i < len(m.lines); i++ {
		if i >= 0 {
			rows = append(rows, fit(" "+m.lines[i]))
		} else {
			rows = append(rows, "")
		}
	}
	v.SetContent(v.Content + "\n" + strings.Join(rows, "\n"))
	return v
}

// demoUIOut shows the demo in the caption area of the running UI.
type demoUIOut struct {
	p           *tea.Program
	interactive bool
	pause       time.Duration
	advance     <-chan struct{}
}

func (o *demoUIOut) step(i, total int, s *demoStep) {
	o.p.Send(demoStepMsg{title: fmt.Sprintf("demo %d/%d · %s", i, total, s.title), caption: s.caption})
}

func (o *demoUIOut) line(kind, text string) { o.p.Send(demoLineMsg(kind + "  " + text)) }

func (o *demoUIOut) wait(ctx context.Context) error {
	if !o.interactive {
		return demoSleep(ctx, o.pause)
	}
	select {
	case <-o.advance:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runDemoUI runs the demo inside the observer's UI, on the Applications view.
func runDemoUI(ctx context.Context, e *env, theme string, interactive bool, pause time.Duration) error {
	th, err := ui.ParseTheme(theme)
	if err != nil {
		return usageError("%v", err)
	}
	d := newDemo(nil)
	opts := ui.Options{Theme: th, View: "applications", NoColor: os.Getenv("NO_COLOR") != ""}
	advance := make(chan struct{}, 1)
	m := &demoModel{inner: ui.New(demoSource{d.n}, opts), advance: advance, title: "observer demo"}
	if interactive {
		m.hint = "space: next · q: quit"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithOutput(e.stdout))
	d.out = &demoUIOut{p: p, interactive: interactive, pause: pause, advance: advance}

	walked := make(chan error, 1)
	go func() {
		err := d.run(ctx)
		if ctx.Err() == nil {
			if interactive {
				p.Send(demoHintMsg("the end · space or q quits"))
			}
			_ = d.out.wait(ctx)
		}
		walked <- err
		p.Quit()
	}()
	_, uiErr := p.Run()
	cancel()
	err = <-walked
	if uiErr != nil && !errors.Is(uiErr, tea.ErrProgramKilled) {
		return errors.Join(err, uiErr)
	}
	return err
}
