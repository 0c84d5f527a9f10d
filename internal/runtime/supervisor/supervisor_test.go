package supervisor

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/sys"
)

func TestIntensityWindowCountsWholeSeconds(t *testing.T) {
	at := func(sec, ms int64) time.Time { return time.Unix(sec, ms*int64(time.Millisecond)) }
	for _, tc := range []struct {
		name          string
		first, second time.Time
		survives      bool
	}{
		{"a restart exactly period old is kept", at(1000, 0), at(1001, 0), false},
		{"1.8 s apart in neighbouring seconds still count together", at(1000, 100), at(1001, 900), false},
		{"1.1 s apart across two second boundaries do not", at(1000, 900), at(1002, 0), true},
		{"2 s apart do not", at(1000, 0), at(1002, 0), true},
		{"the same second counts twice", at(1000, 0), at(1000, 999), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			clk := newFakeClock(tc.first)
			sup := mustStart(t, n, Spec{
				Flags:    Flags{Intensity: 1, Period: 1},
				Children: []ChildSpec{spec("a")},
			}, Options{Clock: clk.Now})
			r := record(t, n).watch(sup, "sup")
			crash(t, n, pidOf(t, n, sup, "a"))
			pid := r.expect("child_exited a crash", "child_restarted a")[1].Other
			clk.Set(tc.second)
			crash(t, n, pid)
			if tc.survives {
				r.expect("child_exited a crash", "child_restarted a")
			} else {
				r.expect("child_exited a crash", "reached_max_restart_intensity a shutdown", "shutdown shutdown", "EXIT shutdown")
			}
		})
	}

	t.Run("intensity 0 allows no restart at all", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		sup := mustStart(t, n, Spec{Children: []ChildSpec{spec("a")}}, Options{})
		r := record(t, n).watch(sup, "sup")
		crash(t, n, pidOf(t, n, sup, "a"))
		r.expect("child_exited a crash", "reached_max_restart_intensity a shutdown", "shutdown shutdown", "EXIT shutdown")
	})
}

func TestStartupFailure(t *testing.T) {
	t.Run("child c fails: b then a stop, d never starts, the parent gets no EXIT", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		r := record(t, n).watchAny()
		var dStarted atomic.Bool
		failing := ChildSpec{ID: "c", Start: func(*runtime.Process) (runtime.PID, error) {
			return runtime.PID{}, errors.New("no config")
		}}
		d := ChildSpec{ID: "d", Start: func(*runtime.Process) (runtime.PID, error) {
			dStarted.Store(true)
			return runtime.PID{}, errors.New("d must not start")
		}}
		type result struct {
			err    error
			linked []runtime.PID
		}
		out := make(chan result, 1)
		n.Spawn(func(p *runtime.Process) {
			_, err := StartLink(p, Spec{Children: []ChildSpec{spec("a"), spec("b"), failing, d}}, Options{})
			out <- result{err, p.Self().Detail(0).LinkedTo}
		}, runtime.SpawnOpts{TrapExit: true})
		res := recv(t, out)

		var cse *ChildStartError
		if !errors.As(res.err, &cse) || cse.ID != "c" || runtime.FormatReason(cse.Reason) != "no config" {
			t.Fatalf("StartLink = %v, want {failed_to_start_child,c,no config}", res.err)
		}
		if len(res.linked) != 0 {
			t.Errorf("the parent is still linked to %v", res.linked)
		}
		e := r.expect(
			"child_started a",
			"child_started b",
			"start_failed c no config",
			"child_terminated b shutdown",
			"child_terminated a shutdown",
			"EXIT {shutdown,{failed_to_start_child,c,no config}}",
		)
		if !runtime.IsClean(e[5].Reason) {
			t.Errorf("exit reason %v is not a clean {shutdown, _}", e[5].Reason)
		}
		if dStarted.Load() {
			t.Error("d was started after c failed")
		}
	})

	t.Run("a gen_server child whose init stops is a start error that unwraps", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		bad := ChildSpec{ID: "bad", Start: func(p *runtime.Process) (runtime.PID, error) {
			return genserver.StartLink(p, &stopInit{reason: runtime.Atom("eacces")}, nil, genserver.Options{})
		}}
		_, err := Start(n, Spec{Children: []ChildSpec{bad}}, Options{Name: "sup"})
		var cse *ChildStartError
		var gse *genserver.StartError
		if !errors.As(err, &cse) || !errors.As(err, &gse) || gse.Reason != runtime.Atom("eacces") {
			t.Fatalf("Start = %v, want a ChildStartError wrapping the gen_server's StartError", err)
		}
		if pid, ok := n.Whereis("sup"); ok {
			t.Errorf("the name is still held by %v after the failed start", pid)
		}
	})

	t.Run("a start function that panics is a start error", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		bad := ChildSpec{ID: "bad", Start: func(*runtime.Process) (runtime.PID, error) { panic("oops") }}
		_, err := Start(n, Spec{Children: []ChildSpec{bad}}, Options{})
		var pe *runtime.PanicError
		if !errors.As(err, &pe) || pe.Value != "oops" {
			t.Fatalf("Start = %v, want a panic start error", err)
		}
	})
}

// stopInit is a gen_server whose Init fails.
type stopInit struct {
	worker
	reason any
}

func (s *stopInit) Init(*runtime.Process, any) genserver.Result { return genserver.Stop(s.reason, nil) }

// ignoreOnce returns a permanent child that ignores its first start.
func ignoreOnce(id string) ChildSpec {
	var calls atomic.Int32
	c := spec(id)
	start := c.Start
	c.Start = func(p *runtime.Process) (runtime.PID, error) {
		if calls.Add(1) == 1 {
			return runtime.PID{}, ErrIgnore
		}
		return start(p)
	}
	return c
}

func TestIgnoredChildren(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	ignoring := ChildSpec{ID: "gs", Start: func(p *runtime.Process) (runtime.PID, error) {
		return genserver.StartLink(p, &ignoreInit{}, nil, genserver.Options{})
	}}
	tmp := with(ignoreOnce("tmp"), func(c *ChildSpec) { c.Restart = Temporary })
	sup := mustStart(t, n, Spec{Children: []ChildSpec{spec("a"), ignoreOnce("ig"), ignoring, tmp}}, Options{})

	if got := describe(children(t, n, sup)); got != "gs=undefined ig=undefined a=running" {
		t.Errorf("children %s: ignored children keep their spec with an undefined pid, temporary ones vanish", got)
	}
	pid, err := StartChild(n, sup, with(ignoreOnce("late"), func(c *ChildSpec) {}), wait)
	if err != nil || !pid.IsZero() {
		t.Errorf("StartChild of an ignoring child = %v, %v; want {ok, undefined}", pid, err)
	}
	pid, err = StartChild(n, sup, with(ignoreOnce("latetmp"), func(c *ChildSpec) { c.Restart = Temporary }), wait)
	if err != nil || !pid.IsZero() {
		t.Errorf("StartChild of an ignoring temporary child = %v, %v; want {ok, undefined}", pid, err)
	}
	if got := describe(children(t, n, sup)); got != "late=undefined gs=undefined ig=undefined a=running" {
		t.Errorf("children %s", got)
	}
	if pid, err := RestartChild(n, sup, "ig", wait); err != nil || !pid.Alive() {
		t.Errorf("RestartChild(ig) = %v, %v", pid, err)
	}
}

// ignoreInit is a gen_server whose Init returns ignore.
type ignoreInit struct{ worker }

func (*ignoreInit) Init(*runtime.Process, any) genserver.Result { return genserver.Ignore() }

func TestGroupRestartStartsStoppedAndIgnoredSiblings(t *testing.T) {
	for _, strategy := range []Strategy{OneForAll, RestForOne} {
		t.Run(strategy.String(), func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			sup := mustStart(t, n, Spec{
				Flags:    Flags{Strategy: strategy, Intensity: 1},
				Children: []ChildSpec{spec("a"), ignoreOnce("b"), spec("c")},
			}, Options{})
			if err := TerminateChild(n, sup, "c", wait); err != nil {
				t.Fatal(err)
			}
			if got := describe(children(t, n, sup)); got != "c=undefined b=undefined a=running" {
				t.Fatalf("before: %s", got)
			}
			r := record(t, n).watch(sup, "sup")
			crash(t, n, pidOf(t, n, sup, "a"))
			r.expect("child_exited a crash", "child_restarted a", "child_restarted b", "child_restarted c")
			if got := describe(children(t, n, sup)); got != "c=running b=running a=running" {
				t.Errorf("after: %s", got)
			}
		})
	}
}

// failOnce returns a permanent child whose second start fails.
func failOnce(id string) ChildSpec {
	var calls atomic.Int32
	c := spec(id)
	start := c.Start
	c.Start = func(p *runtime.Process) (runtime.PID, error) {
		if calls.Add(1) == 2 {
			return runtime.PID{}, errors.New("busy")
		}
		return start(p)
	}
	return c
}

func TestFailureInTheMiddleOfAGroupRestart(t *testing.T) {
	for _, tc := range []struct {
		strategy Strategy
		want     []string
	}{
		{OneForAll, []string{
			"child_exited a crash",
			"child_terminated c shutdown",
			"child_terminated b shutdown",
			"child_restarted a",
			"restart_failed b busy",
			// The retry restarts the whole group, a included.
			"child_terminated a shutdown",
			"child_restarted a",
			"child_restarted b",
			"child_restarted c",
		}},
		{RestForOne, []string{
			"child_exited a crash",
			"child_terminated c shutdown",
			"child_terminated b shutdown",
			"child_restarted a",
			"restart_failed b busy",
			// The retry resumes from b; a keeps running.
			"child_restarted b",
			"child_restarted c",
		}},
	} {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			sup := mustStart(t, n, Spec{
				Flags:    Flags{Strategy: tc.strategy, Intensity: 5},
				Children: []ChildSpec{spec("a"), failOnce("b"), spec("c")},
			}, Options{})
			r := record(t, n).watch(sup, "sup")
			crash(t, n, pidOf(t, n, sup, "a"))
			r.expect(tc.want...)
			if got := describe(children(t, n, sup)); got != "c=running b=running a=running" {
				t.Errorf("after: %s", got)
			}
			if info := inspect(t, n, sup); info.RestartCount != 2 {
				t.Errorf("restarts %v, want 2: the failed restart counts too", info.Restarts)
			}
		})
	}
}

func TestTemporaryAndCleanExitsSpendNoIntensity(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	sup := mustStart(t, n, Spec{
		Flags: Flags{Intensity: 0},
		Children: []ChildSpec{
			spec("p"),
			with(spec("tmp"), func(c *ChildSpec) { c.Restart = Temporary }),
			with(spec("tr"), func(c *ChildSpec) { c.Restart = Transient }),
		},
	}, Options{})
	r := record(t, n).watch(sup, "sup")
	crash(t, n, pidOf(t, n, sup, "tmp"))
	r.expect("child_exited tmp crash")
	stop(t, n, pidOf(t, n, sup, "tr"), runtime.Shutdown)
	r.expect("child_exited tr shutdown")
	if got := describe(children(t, n, sup)); got != "tr=undefined p=running" {
		t.Errorf("children %s", got)
	}
	crash(t, n, pidOf(t, n, sup, "p"))
	r.expect("child_exited p crash", "reached_max_restart_intensity p shutdown", "shutdown shutdown", "EXIT shutdown")
}

func TestShutdownOfAChild(t *testing.T) {
	for _, tc := range []struct {
		name          string
		shutdown      time.Duration
		trap          bool
		wantReason    any
		wantTerminate bool
	}{
		{"brutal_kill kills at once and never runs terminate", BrutalKill, true, runtime.Killed, false},
		{"a timeout sends shutdown and a trapping worker runs terminate", time.Minute, true, runtime.Shutdown, true},
		{"infinity waits for a trapping worker's terminate", Infinity, true, runtime.Shutdown, true},
		{"a worker that does not trap dies of the shutdown signal without terminate", time.Minute, false, runtime.Shutdown, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			terminated := make(chan any, 1)
			w := workerSpec(&worker{id: "w", trap: tc.trap, terminated: terminated})
			w.Shutdown = tc.shutdown
			sup := mustStart(t, n, Spec{Children: []ChildSpec{w}}, Options{})
			r := record(t, n).watch(sup, "sup")
			if err := TerminateChild(n, sup, "w", wait); err != nil {
				t.Fatal(err)
			}
			e := r.expect("child_terminated w " + runtime.FormatReason(tc.wantReason))
			if e[0].Reason != tc.wantReason {
				t.Errorf("reason %v, want %v", e[0].Reason, tc.wantReason)
			}
			select {
			case reason := <-terminated:
				if !tc.wantTerminate {
					t.Errorf("terminate ran with %v", reason)
				}
			default:
				if tc.wantTerminate {
					t.Error("terminate did not run")
				}
			}
		})
	}
}

func TestSimpleOneForOneStopsItsChildrenInParallel(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	entered := make(chan runtime.PID)
	release := make(chan struct{})
	tmpl := ChildSpec{
		Shutdown: Infinity,
		StartArgs: func(p *runtime.Process, _ any) (runtime.PID, error) {
			return genserver.StartLink(p, &barrierWorker{entered: entered, release: release}, nil, genserver.Options{})
		},
	}
	sup := mustStart(t, n, Spec{Flags: Flags{Strategy: SimpleOneForOne}, Children: []ChildSpec{tmpl}}, Options{})
	const count = 20
	for i := range count {
		if _, err := StartDynamicChild(n, sup, i, wait); err != nil {
			t.Fatal(err)
		}
	}
	w := n.Monitor(sup)
	n.Exit(sup, runtime.Shutdown)
	// Every child is inside terminate at once; stopped one at a time, the
	// first would wait forever for the others.
	for range count {
		recv(t, entered)
	}
	close(release)
	if reason := awaitDown(t, w); reason != runtime.Shutdown {
		t.Errorf("supervisor exited %v", reason)
	}
}

// barrierWorker traps exits and, in terminate, waits for release.
type barrierWorker struct {
	worker
	entered chan<- runtime.PID
	release <-chan struct{}
}

func (b *barrierWorker) Init(p *runtime.Process, _ any) genserver.Result {
	p.TrapExit(true)
	return genserver.Ok(nil)
}

func (b *barrierWorker) Terminate(p *runtime.Process, _ any, _ any) {
	b.entered <- p.Self()
	<-b.release
}

func TestParentExitSignal(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	supc := make(chan runtime.PID, 1)
	parent, _ := n.Spawn(func(p *runtime.Process) {
		sup, err := StartLink(p, Spec{Children: []ChildSpec{spec("a"), spec("b")}}, Options{})
		if err != nil {
			panic(err)
		}
		supc <- sup
		p.Receive(runtime.Infinity)
		p.Exit(runtime.Atom("bye"))
	}, runtime.SpawnOpts{})
	sup := recv(t, supc)
	r := record(t, n).watch(sup, "sup")
	w := n.Monitor(sup)

	// An exit signal from a process that is not the parent is an EXIT
	// message of no child, which the supervisor ignores.
	n.Exit(sup, runtime.Shutdown)
	if got := describe(children(t, n, sup)); got != "b=running a=running" {
		t.Fatalf("children %s", got)
	}

	_ = n.Send(parent, "die")
	r.expect("shutdown bye", "child_terminated b shutdown", "child_terminated a shutdown", "EXIT bye")
	if reason := awaitDown(t, w); reason != runtime.Atom("bye") {
		t.Errorf("supervisor exited %v, want the parent's reason bye", reason)
	}
}

func TestSimpleOneForOne(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	args := make(chan any, 8)
	tmpl := ChildSpec{
		Module: "conn",
		StartArgs: func(p *runtime.Process, a any) (runtime.PID, error) {
			args <- a
			if a == "ignore" {
				return runtime.PID{}, ErrIgnore
			}
			return genserver.StartLink(p, &worker{}, nil, genserver.Options{})
		},
	}
	sup := mustStart(t, n, Spec{Flags: Flags{Strategy: SimpleOneForOne, Intensity: 5}, Children: []ChildSpec{tmpl}}, Options{})
	r := record(t, n).watch(sup, "sup")

	one, err := StartDynamicChild(n, sup, "one", wait)
	if err != nil || recv(t, args) != "one" {
		t.Fatal(err)
	}
	two, _ := StartDynamicChild(n, sup, "two", wait)
	recv(t, args)
	if pid, err := StartDynamicChild(n, sup, "ignore", wait); err != nil || !pid.IsZero() {
		t.Errorf("ignored dynamic child: %v, %v", pid, err)
	}
	recv(t, args)
	r.expect("child_started", "child_started")

	cs := children(t, n, sup)
	if len(cs) != 2 || cs[0].PID != two || cs[1].PID != one || cs[0].ID != "" {
		t.Errorf("which_children %+v, want two then one, without ids", cs)
	}
	if c, _ := CountChildren(n, sup, wait); c != (Counts{Specs: 1, Active: 2, Workers: 2}) {
		t.Errorf("count_children %+v", c)
	}

	crash(t, n, one)
	e := r.expect("child_exited crash", "child_restarted")
	if a := recv(t, args); a != "one" {
		t.Errorf("restarted with %v, want the original arguments", a)
	}
	if err := TerminateDynamicChild(n, sup, e[1].Other, wait); err != nil {
		t.Errorf("terminate_child(pid) = %v", err)
	}
	r.expect("child_terminated shutdown")
	stranger, _ := genserver.Start(n, &worker{}, nil, genserver.Options{})
	if err := TerminateDynamicChild(n, sup, stranger, wait); !errors.Is(err, ErrNotFound) {
		t.Errorf("terminate_child(alive stranger) = %v, want not_found", err)
	}
	n.Exit(stranger, runtime.Kill)
	if err := TerminateDynamicChild(n, sup, stranger, wait); err != nil {
		t.Errorf("terminate_child(dead pid) = %v, want ok as OTP says", err)
	}

	for name, err := range map[string]error{
		"terminate_child(id)": TerminateChild(n, sup, "x", wait),
		"delete_child":        DeleteChild(n, sup, "x", wait),
		"restart_child":       second(RestartChild(n, sup, "x", wait)),
		"start_child(spec)":   second(StartChild(n, sup, spec("x"), wait)),
		"which_child":         second(WhichChild(n, sup, "x", wait)),
	} {
		if !errors.Is(err, ErrSimpleOneForOne) {
			t.Errorf("%s = %v, want simple_one_for_one", name, err)
		}
	}
	static := mustStart(t, n, Spec{Children: []ChildSpec{spec("a")}}, Options{})
	if _, err := StartDynamicChild(n, static, nil, wait); !errors.Is(err, ErrNotSimpleOneForOne) {
		t.Errorf("StartDynamicChild on one_for_one = %v", err)
	}
	if err := TerminateDynamicChild(n, static, pidOf(t, n, static, "a"), wait); !errors.Is(err, ErrNotFound) {
		t.Errorf("terminate_child(pid) on one_for_one = %v, want not_found", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestTemporaryDynamicChildrenVanish(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	tmpl := with(spec(""), func(c *ChildSpec) { c.Restart = Temporary })
	sup := mustStart(t, n, Spec{Flags: Flags{Strategy: SimpleOneForOne}, Children: []ChildSpec{tmpl}}, Options{})
	r := record(t, n).watch(sup, "sup")
	pid, err := StartDynamicChild(n, sup, nil, wait)
	if err != nil {
		t.Fatal(err)
	}
	crash(t, n, pid)
	r.expect("child_started", "child_exited crash")
	if cs := children(t, n, sup); len(cs) != 0 {
		t.Errorf("children %+v, want none", cs)
	}
}

func TestSpecValidation(t *testing.T) {
	start := func(*runtime.Process) (runtime.PID, error) { return runtime.PID{}, ErrIgnore }
	w := ChildSpec{ID: "w", Start: start}
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"auto_shutdown with simple_one_for_one", Spec{Flags: Flags{Strategy: SimpleOneForOne, AutoShutdown: AnySignificant}, Children: []ChildSpec{w}}},
		{"a significant child with auto_shutdown never", Spec{Children: []ChildSpec{with(w, func(c *ChildSpec) { c.Significant, c.Restart = true, Transient })}}},
		{"a permanent significant child", Spec{Flags: Flags{AutoShutdown: AnySignificant}, Children: []ChildSpec{with(w, func(c *ChildSpec) { c.Significant = true })}}},
		{"duplicate ids", Spec{Children: []ChildSpec{w, w}}},
		{"simple_one_for_one with two specs", Spec{Flags: Flags{Strategy: SimpleOneForOne}, Children: []ChildSpec{w, w}}},
		{"a child without a start function", Spec{Children: []ChildSpec{{ID: "x"}}}},
		{"a child without an id", Spec{Children: []ChildSpec{{Start: start}}}},
		{"negative intensity", Spec{Flags: Flags{Intensity: -1}}},
		{"a bad shutdown", Spec{Children: []ChildSpec{with(w, func(c *ChildSpec) { c.Shutdown = -7 })}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			if _, err := Start(n, tc.spec, Options{}); !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("Start = %v, want ErrInvalidSpec", err)
			}
		})
	}
	t.Run("start_child checks the spec against the flags", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		sup := mustStart(t, n, Spec{}, Options{})
		sig := with(spec("s"), func(c *ChildSpec) { c.Significant, c.Restart = true, Transient })
		if _, err := StartChild(n, sup, sig, wait); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("StartChild = %v, want ErrInvalidSpec", err)
		}
	})
}

func TestAutoShutdownAllSignificant(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	sig := func(id string, r Restart) ChildSpec {
		return with(spec(id), func(c *ChildSpec) { c.Significant, c.Restart = true, r })
	}
	sup := mustStart(t, n, Spec{
		Flags:    Flags{AutoShutdown: AllSignificant, Intensity: 5},
		Children: []ChildSpec{spec("w"), sig("s1", Transient), sig("s2", Temporary)},
	}, Options{})
	r := record(t, n).watch(sup, "sup")

	// An abnormal exit of a transient significant child is restarted, so it
	// does not count as terminated.
	crash(t, n, pidOf(t, n, sup, "s1"))
	r.expect("child_exited s1 crash", "child_restarted s1")
	stop(t, n, pidOf(t, n, sup, "s1"), runtime.Normal)
	r.expect("child_exited s1 normal")
	// A temporary significant child terminates on any reason.
	crash(t, n, pidOf(t, n, sup, "s2"))
	r.expect(
		"child_exited s2 crash",
		"auto_shutdown s2 shutdown",
		"shutdown shutdown",
		"child_terminated w shutdown",
		"EXIT shutdown",
	)
}

func TestWhichChildrenAndCountChildren(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	sup := mustStart(t, n, Spec{Children: []ChildSpec{spec("a"), spec("b")}}, Options{})
	subSpec := ChildSpec{ID: "sub", Type: Supervisor, Start: func(p *runtime.Process) (runtime.PID, error) {
		return StartLink(p, Spec{}, Options{})
	}}
	if _, err := StartChild(n, sup, subSpec, wait); err != nil {
		t.Fatal(err)
	}
	if err := TerminateChild(n, sup, "a", wait); err != nil {
		t.Fatal(err)
	}
	cs := children(t, n, sup)
	var ids []string
	for _, c := range cs {
		ids = append(ids, fmt.Sprintf("%s/%v", c.ID, c.Type))
	}
	if want := []string{"sub/supervisor", "b/worker", "a/worker"}; !slices.Equal(ids, want) {
		t.Errorf("which_children %v, want newest first %v", ids, want)
	}
	if got := describe(cs); got != "sub=running b=running a=undefined" {
		t.Errorf("which_children %s", got)
	}
	c, err := CountChildren(n, sup, wait)
	if want := (Counts{Specs: 3, Active: 2, Supervisors: 1, Workers: 2}); err != nil || c != want {
		t.Errorf("count_children %+v, %v; want %+v", c, err, want)
	}
	got, err := GetChildSpec(n, sup, "sub", wait)
	if err != nil || got.ID != "sub" || got.Type != Supervisor {
		t.Errorf("get_childspec(sub) = %+v, %v", got, err)
	}
	if _, err := WhichChild(n, sup, "zzz", wait); !errors.Is(err, ErrNotFound) {
		t.Errorf("which_child(zzz) = %v, want not_found", err)
	}
}

func TestRestartLoopServesShutdownBetweenAttempts(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	attempts := make(chan int)
	proceed := make(chan struct{})
	var calls int
	broken := ChildSpec{ID: "a", Start: func(p *runtime.Process) (runtime.PID, error) {
		calls++
		if calls == 1 {
			return genserver.StartLink(p, &worker{}, nil, genserver.Options{})
		}
		attempts <- calls - 1
		<-proceed
		return runtime.PID{}, errors.New("down")
	}}
	sup := mustStart(t, n, Spec{Flags: Flags{Intensity: 100}, Children: []ChildSpec{broken, spec("b")}}, Options{})
	r := record(t, n).watch(sup, "sup")
	w := n.Monitor(sup)

	n.Exit(pidOf(t, n, sup, "a"), runtime.Kill)
	recv(t, attempts)
	// Queued while the first attempt runs, so served before the retry.
	n.Exit(sup, runtime.Shutdown)
	proceed <- struct{}{}
	if reason := awaitDown(t, w); reason != runtime.Shutdown {
		t.Errorf("supervisor exited %v", reason)
	}
	r.expect(
		"child_exited a killed",
		"restart_failed a down",
		"shutdown shutdown",
		"child_terminated b shutdown",
		"EXIT shutdown",
	)
}

func TestBackoff(t *testing.T) {
	t.Run("the delay doubles up to Max and starts over after a long run", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		clk := newFakeClock(time.Unix(1000, 0))
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Intensity: 100, Backoff: Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond}},
			Children: []ChildSpec{spec("a")},
		}, Options{Clock: clk.Now})
		r := record(t, n).watch(sup, "sup")
		pid := pidOf(t, n, sup, "a")
		var delays []time.Duration
		for range 5 {
			crash(t, n, pid)
			e := r.expect("child_exited a crash", "restart_delayed a", "child_restarted a")
			delays = append(delays, e[1].Data.(Report).Delay)
			pid = e[2].Other
		}
		clk.Advance(5 * time.Millisecond) // a ran longer than Max
		crash(t, n, pid)
		e := r.expect("child_exited a crash", "restart_delayed a", "child_restarted a")
		delays = append(delays, e[1].Data.(Report).Delay)
		ms := time.Millisecond
		if want := []time.Duration{ms, 2 * ms, 4 * ms, 4 * ms, 4 * ms, ms}; !slices.Equal(delays, want) {
			t.Errorf("delays %v, want %v", delays, want)
		}
	})

	t.Run("while a restart waits the child is restarting and the supervisor serves calls", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Strategy: OneForAll, Intensity: 5, Backoff: Backoff{Initial: time.Hour}},
			Children: []ChildSpec{spec("a"), spec("b")},
		}, Options{})
		r := record(t, n).watch(sup, "sup")
		crash(t, n, pidOf(t, n, sup, "a"))
		r.expect("child_exited a crash", "child_terminated b shutdown", "restart_delayed a")
		if got := describe(children(t, n, sup)); got != "b=undefined a=restarting" {
			t.Errorf("children %s", got)
		}
		if _, err := RestartChild(n, sup, "a", wait); !errors.Is(err, ErrRestarting) {
			t.Errorf("restart_child = %v, want restarting", err)
		}
		if err := TerminateChild(n, sup, "a", wait); err != nil {
			t.Fatal(err)
		}
		if got := describe(children(t, n, sup)); got != "b=undefined a=undefined" {
			t.Errorf("after terminate_child: %s", got)
		}
		w := n.Monitor(sup)
		n.Exit(sup, runtime.Shutdown)
		if reason := awaitDown(t, w); reason != runtime.Shutdown {
			t.Errorf("supervisor exited %v", reason)
		}
	})
}

func TestInspect(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	clk := newFakeClock(time.Unix(1000, 0))
	sub := ChildSpec{ID: "sub", Type: Supervisor, Module: "sub_sup", Start: func(p *runtime.Process) (runtime.PID, error) {
		return StartLink(p, Spec{Flags: Flags{Strategy: SimpleOneForOne}, Children: []ChildSpec{spec("")}}, Options{Module: "sub_sup"})
	}}
	a := with(spec("a"), func(c *ChildSpec) { c.Version = "2" })
	sup := mustStart(t, n, Spec{
		Flags:    Flags{Strategy: RestForOne, Intensity: 3, Period: 10},
		Children: []ChildSpec{a, sub},
	}, Options{Name: "top_sup", Clock: clk.Now})
	r := record(t, n).watch(sup, "sup")

	crash(t, n, pidOf(t, n, sup, "a"))
	r.expect("child_exited a crash", "child_terminated sub shutdown", "child_restarted a", "child_restarted sub")
	clk.Advance(4 * time.Second)
	info := inspect(t, n, sup)

	if info.Name != "top_sup" || info.Module != "top_sup" || info.Version != "1" ||
		info.Strategy != RestForOne || info.Intensity != 3 || info.Period != 10 {
		t.Errorf("header %+v", info)
	}
	if want := []RestartSecond{{At: time.Unix(1000, 0), Count: 1}}; !slices.Equal(info.Restarts, want) ||
		info.RestartCount != 1 || info.BudgetLeft != 2 {
		t.Errorf("window %v (%d) budget %d, want %v and 2 left", info.Restarts, info.RestartCount, info.BudgetLeft, want)
	}
	if len(info.Children) != 2 {
		t.Fatalf("children %+v", info.Children)
	}
	ca, cs := info.Children[0], info.Children[1]
	if ca.ID != "a" || ca.Status != StatusRunning || ca.Restarts != 1 || ca.LastExit != runtime.Atom("crash") ||
		!ca.LastRestart.Equal(time.Unix(1000, 0)) || ca.Version != "2" || ca.Module != "worker" || ca.Shutdown != DefaultWorkerShutdown {
		t.Errorf("child a %+v", ca)
	}
	if cs.ID != "sub" || cs.Type != Supervisor || cs.Restarts != 1 || cs.LastExit != nil || cs.Shutdown != Infinity {
		t.Errorf("child sub %+v", cs)
	}

	t.Run("the window moves when read, without the supervisor", func(t *testing.T) {
		clk.Advance(7 * time.Second) // the restart at 1000 is now older than 1011-10
		info, _ := Inspect(sup)
		if len(info.Restarts) != 0 || info.RestartCount != 0 || info.BudgetLeft != 3 {
			t.Errorf("window %v budget %d", info.Restarts, info.BudgetLeft)
		}
	})

	t.Run("it never waits on the supervisor process", func(t *testing.T) {
		if err := sys.Suspend(n, sup, wait); err != nil {
			t.Fatal(err)
		}
		defer sys.Resume(n, sup, wait)
		if _, ok := Inspect(sup); !ok {
			t.Error("Inspect failed on a suspended supervisor")
		}
	})

	t.Run("All lists the tree's supervisors by pid", func(t *testing.T) {
		all := All(n)
		if len(all) != 2 || all[0].PID != sup || all[1].Module != "sub_sup" || all[1].Strategy != SimpleOneForOne {
			t.Errorf("All = %+v", all)
		}
		if len(All(runtime.NewNode(runtime.Options{}))) != 0 {
			t.Error("another node's supervisors are listed")
		}
	})

	t.Run("sys sees the supervisor as a supervisor with Info for its state", func(t *testing.T) {
		st, err := sys.GetState(n, sup, wait)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := st.(Info); !ok || got.PID != sup || len(got.Children) != 2 {
			t.Errorf("state %#v", st)
		}
		if m := sup.Info(); m.Behaviour != "supervisor" || m.Module != "top_sup" {
			t.Errorf("module info %+v", m)
		}
		if _, err := sys.ReplaceState(n, sup, func(s any) any { return s }, wait); err == nil {
			t.Error("replace_state succeeded")
		}
	})

	t.Run("a supervisor that exits is no longer inspected", func(t *testing.T) {
		w := n.Monitor(sup)
		n.Exit(sup, runtime.Shutdown)
		awaitDown(t, w)
		if _, ok := Inspect(sup); ok {
			t.Error("a dead supervisor is still inspected")
		}
		if len(All(n)) != 0 {
			t.Errorf("All = %+v after the tree stopped", All(n))
		}
	})

	t.Run("a killed supervisor disappears too", func(t *testing.T) {
		s := mustStart(t, n, Spec{}, Options{})
		w := n.Monitor(s)
		n.Exit(s, runtime.Kill)
		awaitDown(t, w)
		if _, ok := Inspect(s); ok {
			t.Error("a killed supervisor is still inspected")
		}
	})
}

func TestCodeChangeTakesANewSpec(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	sup := mustStart(t, n, Spec{Children: []ChildSpec{spec("a"), spec("old")}}, Options{})
	a := pidOf(t, n, sup, "a")
	if err := sys.Suspend(n, sup, wait); err != nil {
		t.Fatal(err)
	}
	next := Spec{Flags: Flags{Strategy: OneForAll, Intensity: 4}, Children: []ChildSpec{spec("new"), spec("a")}}
	if err := sys.ChangeCode(n, sup, next, "2", nil, wait); err != nil {
		t.Fatal(err)
	}
	if err := sys.Resume(n, sup, wait); err != nil {
		t.Fatal(err)
	}
	// New children come first in the new order, not started; those the
	// new spec dropped are kept after them.
	if got := describe(children(t, n, sup)); got != "old=running a=running new=undefined" {
		t.Errorf("children %s", got)
	}
	if pidOf(t, n, sup, "a") != a {
		t.Error("a lost its process")
	}
	info := inspect(t, n, sup)
	if info.Strategy != OneForAll || info.Intensity != 4 || info.Version != "2" {
		t.Errorf("info %+v", info)
	}
}

func TestStopRunsTheShutdownAndWaits(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	sup := mustStart(t, n, Spec{Children: []ChildSpec{spec("a"), spec("b")}}, Options{Name: "stoppable"})
	r := record(t, n).watch(sup, "sup")
	if err := Stop(n, runtime.Name("stoppable"), runtime.Shutdown, wait); err != nil {
		t.Fatal(err)
	}
	if sup.Alive() {
		t.Error("Stop returned before the supervisor exited")
	}
	r.expect("shutdown shutdown", "child_terminated b shutdown", "child_terminated a shutdown", "EXIT shutdown")
	if err := Stop(n, sup, runtime.Shutdown, wait); !errors.Is(err, runtime.ErrNoProc) {
		t.Errorf("Stop of a dead supervisor = %v, want noproc", err)
	}
}

func TestInfoOfABurstIsPublishedShortlyAfter(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	clk := newFakeClock(time.Unix(1000, 0))
	sup := mustStart(t, n, Spec{Flags: Flags{Intensity: 100}, Children: []ChildSpec{spec("a")}}, Options{Clock: clk.Now})
	r := record(t, n).watch(sup, "sup")
	pid := pidOf(t, n, sup, "a")
	const crashes = 5
	for range crashes {
		crash(t, n, pid)
		pid = r.expect("child_exited a crash", "child_restarted a")[1].Other
	}
	// Nothing asks the supervisor anything: the observer only reads.
	deadline := time.Now().Add(wait)
	for {
		info, _ := Inspect(sup)
		if info.RestartCount == crashes && info.Children[0].PID == pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Info still shows %d restarts and %v, want %d and %v", info.RestartCount, info.Children[0].PID, crashes, pid)
		}
		goruntime.Gosched()
	}
}

func TestASiblingThatAlreadyExitedIsReportedWithItsOwnReason(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	sup := mustStart(t, n, Spec{Flags: Flags{Strategy: OneForAll, Intensity: 5}, Children: []ChildSpec{spec("a"), spec("b")}}, Options{})
	r := record(t, n).watch(sup, "sup")
	ps := pids(t, n, sup)
	// Both exits wait in the mailbox of the suspended supervisor.
	if err := sys.Suspend(n, sup, wait); err != nil {
		t.Fatal(err)
	}
	// A dead process's monitors fire before its links deliver, so the
	// mailbox, not the DOWN, says that an EXIT has arrived.
	wb := n.Monitor(ps["b"])
	crash(t, n, ps["a"])
	awaitMailbox(t, sup, 1)
	stop(t, n, ps["b"], runtime.Atom("boom"))
	awaitMailbox(t, sup, 2)
	awaitDown(t, wb)
	if err := sys.Resume(n, sup, wait); err != nil {
		t.Fatal(err)
	}
	// a's EXIT restarts the group; b is found dead and its EXIT, handled
	// next, belongs to no child any more.
	r.expect("child_exited a crash", "child_terminated b boom", "child_restarted a", "child_restarted b")
	if got := describe(children(t, n, sup)); got != "b=running a=running" {
		t.Errorf("children %s", got)
	}
	if info := inspect(t, n, sup); info.RestartCount != 1 {
		t.Errorf("%d restarts, want 1", info.RestartCount)
	}
}
