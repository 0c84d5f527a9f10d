package supervisor

import (
	"errors"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
)

// TestDemoWalk runs every step of the live demo of restart behaviour in
// OTP_SEMANTICS.md: a tree, an action, and the reports the audience sees,
// in order.
func TestDemoWalk(t *testing.T) {
	t.Run("01 one_for_one: kill b, only b gets a new pid and its reason is killed", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Strategy: OneForOne, Intensity: 1},
			Children: []ChildSpec{spec("a"), spec("b"), spec("c")},
		}, Options{})
		r := record(t, n).watch(sup, "sup")
		before := pids(t, n, sup)

		n.Exit(before["b"], runtime.Kill)

		r.expect("child_exited b killed", "child_restarted b")
		after := pids(t, n, sup)
		if after["a"] != before["a"] || after["c"] != before["c"] {
			t.Errorf("a or c changed: before %v after %v", before, after)
		}
		if after["b"] == before["b"] || !after["b"].Alive() {
			t.Errorf("b was not replaced: before %v after %v", before["b"], after["b"])
		}
	})

	t.Run("02 one_for_all: crash b, c then a stop with shutdown, then a b c start", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Strategy: OneForAll, Intensity: 1},
			Children: []ChildSpec{spec("a"), spec("b"), spec("c")},
		}, Options{})
		r := record(t, n).watch(sup, "sup")
		before := pids(t, n, sup)

		crash(t, n, before["b"])

		r.expect(
			"child_exited b crash",
			"child_terminated c shutdown",
			"child_terminated a shutdown",
			"child_restarted a",
			"child_restarted b",
			"child_restarted c",
		)
		after := pids(t, n, sup)
		for id, pid := range before {
			if after[id] == pid {
				t.Errorf("%s kept its pid %v", id, pid)
			}
		}
	})

	t.Run("03 rest_for_one: crash b, d then c stop, b c d start, a unchanged", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Strategy: RestForOne, Intensity: 1},
			Children: []ChildSpec{spec("a"), spec("b"), spec("c"), spec("d")},
		}, Options{})
		r := record(t, n).watch(sup, "sup")
		before := pids(t, n, sup)

		crash(t, n, before["b"])

		r.expect(
			"child_exited b crash",
			"child_terminated d shutdown",
			"child_terminated c shutdown",
			"child_restarted b",
			"child_restarted c",
			"child_restarted d",
		)
		after := pids(t, n, sup)
		if after["a"] != before["a"] {
			t.Errorf("a changed: %v -> %v", before["a"], after["a"])
		}
	})

	t.Run("04 intensity 2: the third fast crash stops b and the supervisor exits shutdown", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		clk := newFakeClock(time.Unix(1000, 0)) // frozen: every crash in the same second
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Strategy: OneForOne, Intensity: 2, Period: 5},
			Children: []ChildSpec{spec("a"), spec("b")},
		}, Options{Clock: clk.Now})
		r := record(t, n).watch(sup, "sup")
		w := n.Monitor(sup)

		crash(t, n, pidOf(t, n, sup, "a"))
		e := r.expect("child_exited a crash", "child_restarted a")
		crash(t, n, e[1].Other)
		e = r.expect("child_exited a crash", "child_restarted a")
		crash(t, n, e[1].Other)
		r.expect(
			"child_exited a crash",
			"reached_max_restart_intensity a shutdown",
			"shutdown shutdown",
			"child_terminated b shutdown",
			"EXIT shutdown",
		)
		if reason := awaitDown(t, w); reason != runtime.Shutdown {
			t.Fatalf("supervisor exited %v, want shutdown (not the child's reason)", reason)
		}
	})

	t.Run("05 intensity 1 period 1: crashing every 2.1 s the supervisor survives", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		clk := newFakeClock(time.Unix(1000, 0))
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Strategy: OneForOne, Intensity: 1, Period: 1},
			Children: []ChildSpec{spec("a")},
		}, Options{Clock: clk.Now})
		r := record(t, n).watch(sup, "sup")

		pid := pidOf(t, n, sup, "a")
		for i := range 10 {
			crash(t, n, pid)
			pid = r.expect("child_exited a crash", "child_restarted a")[1].Other
			info := inspect(t, n, sup)
			// The window holds only the restart just made: the one 2.1 s
			// earlier is older than now-period in whole seconds.
			if info.RestartCount != 1 || info.BudgetLeft != 0 {
				t.Fatalf("crash %d at %v: window %v budget %d, want one restart and no budget",
					i+1, clk.Now(), info.Restarts, info.BudgetLeft)
			}
			clk.Advance(2100 * time.Millisecond)
		}
	})

	t.Run("06 a restart that always fails: restarting, restart_child says restarting, then shutdown", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		clk := newFakeClock(time.Unix(1000, 0))
		attempts := make(chan int)
		proceed := make(chan struct{})
		var calls int
		broken := ChildSpec{ID: "a", Start: func(p *runtime.Process) (runtime.PID, error) {
			calls++
			if calls == 1 {
				return genserver.StartLink(p, &worker{id: "a"}, nil, genserver.Options{})
			}
			// Each failing attempt waits for the test, so the test
			// decides when the retry loop moves on.
			attempts <- calls - 1
			<-proceed
			return runtime.PID{}, errors.New("database down")
		}}
		const intensity = 3
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Strategy: OneForOne, Intensity: intensity},
			Children: []ChildSpec{broken, spec("b")},
		}, Options{Clock: clk.Now})
		r := record(t, n).watch(sup, "sup")
		w := n.Monitor(sup)

		n.Exit(pidOf(t, n, sup, "a"), runtime.Kill)
		if k := recv(t, attempts); k != 1 {
			t.Fatalf("attempt %d, want 1", k)
		}
		// Two calls queue behind the running attempt; they are answered
		// before the retry, while the child is restarting.
		whichResult := make(chan []Child, 1)
		restartResult := make(chan error, 1)
		go func() {
			cs, _ := WhichChildren(n, sup, wait)
			whichResult <- cs
		}()
		go func() {
			_, err := RestartChild(n, sup, "a", wait)
			restartResult <- err
		}()
		awaitMailbox(t, sup, 2)
		proceed <- struct{}{}
		if got := describe(recv(t, whichResult)); got != "b=running a=restarting" {
			t.Errorf("which_children = %s, want b=running a=restarting", got)
		}
		if err := recv(t, restartResult); !errors.Is(err, ErrRestarting) {
			t.Errorf("restart_child = %v, want restarting", err)
		}
		for k := 2; k <= intensity; k++ {
			if got := recv(t, attempts); got != k {
				t.Fatalf("attempt %d, want %d", got, k)
			}
			proceed <- struct{}{}
		}
		if reason := awaitDown(t, w); reason != runtime.Shutdown {
			t.Fatalf("supervisor exited %v, want shutdown", reason)
		}
		r.expect(
			"child_exited a killed",
			"restart_failed a database down",
			"restart_failed a database down",
			"restart_failed a database down",
			"reached_max_restart_intensity a shutdown",
			"shutdown shutdown",
			"child_terminated b shutdown",
			"EXIT shutdown",
		)
	})

	t.Run("07 transient: exit {shutdown,x} is not restarted, kill is", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Strategy: OneForOne, Intensity: 1},
			Children: []ChildSpec{with(spec("t"), func(c *ChildSpec) { c.Restart = Transient })},
		}, Options{})
		r := record(t, n).watch(sup, "sup")

		stop(t, n, pidOf(t, n, sup, "t"), runtime.ShutdownReason{Term: runtime.Atom("x")})
		r.expect("child_exited t {shutdown,x}")
		if got := describe(children(t, n, sup)); got != "t=undefined" {
			t.Fatalf("after {shutdown,x}: %s, want t=undefined", got)
		}

		pid, err := RestartChild(n, sup, "t", wait)
		if err != nil {
			t.Fatal(err)
		}
		r.expect("child_started t")
		n.Exit(pid, runtime.Kill)
		r.expect("child_exited t killed", "child_restarted t")
		if got := describe(children(t, n, sup)); got != "t=running" {
			t.Fatalf("after kill: %s, want t=running", got)
		}
	})

	t.Run("08 temporary child in one_for_all: removed, and its exit spends no intensity", func(t *testing.T) {
		tree := func(t *testing.T) (*runtime.Node, runtime.PID) {
			n := runtime.NewNode(runtime.Options{})
			return n, mustStart(t, n, Spec{
				Flags: Flags{Strategy: OneForAll, Intensity: 1},
				Children: []ChildSpec{
					spec("a"),
					with(spec("tmp"), func(c *ChildSpec) { c.Restart = Temporary }),
					spec("c"),
				},
			}, Options{})
		}
		t.Run("the temporary child crashes: it is gone, nothing restarts", func(t *testing.T) {
			n, sup := tree(t)
			r := record(t, n).watch(sup, "sup")
			before := pids(t, n, sup)
			crash(t, n, before["tmp"])
			r.expect("child_exited tmp crash")
			after := pids(t, n, sup)
			if got := describe(children(t, n, sup)); got != "c=running a=running" {
				t.Errorf("children %s, want c=running a=running", got)
			}
			if after["a"] != before["a"] || after["c"] != before["c"] {
				t.Errorf("siblings restarted: %v -> %v", before, after)
			}
			if info := inspect(t, n, sup); info.RestartCount != 0 {
				t.Errorf("restarts %v, want none spent", info.Restarts)
			}
		})
		t.Run("a permanent sibling crashes: the temporary child is stopped and forgotten", func(t *testing.T) {
			n, sup := tree(t)
			r := record(t, n).watch(sup, "sup")
			crash(t, n, pidOf(t, n, sup, "a"))
			r.expect(
				"child_exited a crash",
				"child_terminated c shutdown",
				"child_terminated tmp shutdown",
				"child_restarted a",
				"child_restarted c",
			)
			if got := describe(children(t, n, sup)); got != "c=running a=running" {
				t.Errorf("children %s, want c=running a=running", got)
			}
			if info := inspect(t, n, sup); info.RestartCount != 1 {
				t.Errorf("restarts %v, want the one for a", info.Restarts)
			}
		})
	})

	t.Run("09 stopping with a slow child: reverse order, the slow one killed after 300 ms", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		slow := with(workerSpec(&worker{id: "slow", trap: true, slowStop: true}), func(c *ChildSpec) {
			c.Shutdown = 300 * time.Millisecond
		})
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Strategy: OneForOne},
			Children: []ChildSpec{spec("a"), slow, spec("c")},
		}, Options{})
		r := record(t, n).watch(sup, "sup")
		w := n.Monitor(sup)

		n.Exit(sup, runtime.Shutdown)

		e := r.expect(
			"shutdown shutdown",
			"child_terminated c shutdown",
			"child_terminated slow killed",
			"child_terminated a shutdown",
			"EXIT shutdown",
		)
		if waited := e[2].Time.Sub(e[1].Time); waited < 300*time.Millisecond {
			t.Errorf("slow was killed after %v, before its 300 ms", waited)
		}
		if reason := awaitDown(t, w); reason != runtime.Shutdown {
			t.Errorf("supervisor exited %v, want shutdown", reason)
		}
	})

	t.Run("10 admin errors: not_found, running, already_present, already_started", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		sup := mustStart(t, n, Spec{
			Flags:    Flags{Strategy: OneForOne},
			Children: []ChildSpec{spec("a"), spec("b")},
		}, Options{})
		a := pidOf(t, n, sup, "a")

		if err := TerminateChild(n, sup, "nope", wait); !errors.Is(err, ErrNotFound) {
			t.Errorf("terminate_child(nope) = %v, want not_found", err)
		}
		if _, err := RestartChild(n, sup, "nope", wait); !errors.Is(err, ErrNotFound) {
			t.Errorf("restart_child(nope) = %v, want not_found", err)
		}
		if err := DeleteChild(n, sup, "nope", wait); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete_child(nope) = %v, want not_found", err)
		}
		if _, err := RestartChild(n, sup, "a", wait); !errors.Is(err, ErrRunning) {
			t.Errorf("restart_child(a) = %v, want running", err)
		}
		if err := DeleteChild(n, sup, "a", wait); !errors.Is(err, ErrRunning) {
			t.Errorf("delete_child(a) = %v, want running", err)
		}
		var started *AlreadyStartedError
		if _, err := StartChild(n, sup, spec("a"), wait); !errors.As(err, &started) || started.PID != a {
			t.Errorf("start_child(a) = %v, want {already_started,%v}", err, a)
		}
		if err := TerminateChild(n, sup, "a", wait); err != nil {
			t.Fatal(err)
		}
		if _, err := StartChild(n, sup, spec("a"), wait); !errors.Is(err, ErrAlreadyPresent) {
			t.Errorf("start_child(a) after terminate = %v, want already_present", err)
		}
		if err := DeleteChild(n, sup, "a", wait); err != nil {
			t.Errorf("delete_child(a) after terminate = %v", err)
		}
		if _, err := StartChild(n, sup, spec("a"), wait); err != nil {
			t.Errorf("start_child(a) after delete = %v", err)
		}
	})

	t.Run("11 auto_shutdown any_significant: a significant exit stops all, terminate_child does not", func(t *testing.T) {
		tree := func(t *testing.T) (*runtime.Node, runtime.PID) {
			n := runtime.NewNode(runtime.Options{})
			return n, mustStart(t, n, Spec{
				Flags: Flags{Strategy: OneForOne, AutoShutdown: AnySignificant},
				Children: []ChildSpec{
					spec("w"),
					with(spec("sig"), func(c *ChildSpec) { c.Restart, c.Significant = Transient, true }),
				},
			}, Options{})
		}
		t.Run("sig exits normal", func(t *testing.T) {
			n, sup := tree(t)
			r := record(t, n).watch(sup, "sup")
			w := n.Monitor(sup)
			stop(t, n, pidOf(t, n, sup, "sig"), runtime.Normal)
			r.expect(
				"child_exited sig normal",
				"auto_shutdown sig shutdown",
				"shutdown shutdown",
				"child_terminated w shutdown",
				"EXIT shutdown",
			)
			if reason := awaitDown(t, w); reason != runtime.Shutdown {
				t.Errorf("supervisor exited %v, want shutdown", reason)
			}
		})
		t.Run("sig stopped with terminate_child", func(t *testing.T) {
			n, sup := tree(t)
			r := record(t, n).watch(sup, "sup")
			if err := TerminateChild(n, sup, "sig", wait); err != nil {
				t.Fatal(err)
			}
			r.expect("child_terminated sig shutdown")
			if got := describe(children(t, n, sup)); got != "sig=undefined w=running" {
				t.Errorf("children %s, want sig=undefined w=running", got)
			}
		})
	})

	t.Run("12 gen_server calls: a dead server is noproc; a timeout leaves no late reply", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		dead, err := genserver.Start(n, &worker{}, nil, genserver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := genserver.StopServer(n, dead, runtime.Normal, wait); err != nil {
			t.Fatal(err)
		}
		if _, err := genserver.Call(n, dead, "ping", wait); !errors.Is(err, runtime.ErrNoProc) {
			t.Fatalf("call to a dead server = %v, want noproc", err)
		}

		froms := make(chan runtime.From, 1)
		srv, err := genserver.Start(n, &lateServer{froms: froms}, nil, genserver.Options{})
		if err != nil {
			t.Fatal(err)
		}
		type outcome struct {
			first, second error
			reply, stray  any
			strayed       bool
		}
		timedOut := make(chan error, 1)
		done := make(chan outcome, 1)
		caller, _ := n.Spawn(func(p *runtime.Process) {
			var o outcome
			_, o.first = genserver.Call(p, srv, "slow", 20*time.Millisecond)
			timedOut <- o.first
			p.Receive(runtime.Infinity) // the test has sent the late reply
			o.reply, o.second = genserver.Call(p, srv, "ping", wait)
			o.stray, o.strayed = p.Receive(0)
			done <- o
		}, runtime.SpawnOpts{})
		if err := recv(t, timedOut); !errors.Is(err, runtime.ErrTimeout) {
			t.Fatalf("slow call = %v, want timeout", err)
		}
		recv(t, froms).Reply("late")
		_ = n.Send(caller, "go on")
		o := recv(t, done)
		if o.second != nil || o.reply != "ping" {
			t.Errorf("next call = %v, %v; want the reply ping", o.reply, o.second)
		}
		if o.strayed {
			t.Errorf("a stray message reached the caller: %v", o.stray)
		}
	})

	t.Run("13 escalation: a child supervisor gives up, its parent restarts it without its dynamic children", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		clk := newFakeClock(time.Unix(1000, 0))
		subSpec := Spec{Flags: Flags{Strategy: OneForOne, Intensity: 1}, Children: []ChildSpec{spec("w")}}
		top := mustStart(t, n, Spec{
			Flags: Flags{Strategy: OneForOne, Intensity: 1},
			Children: []ChildSpec{{
				ID:   "sub",
				Type: Supervisor,
				Start: func(p *runtime.Process) (runtime.PID, error) {
					return StartLink(p, subSpec, Options{Module: "sub", Clock: clk.Now})
				},
			}},
		}, Options{Module: "top", Clock: clk.Now})
		sub := pidOf(t, n, top, "sub")
		if _, err := StartChild(n, sub, spec("dyn"), wait); err != nil {
			t.Fatal(err)
		}
		r := record(t, n).watch(top, "top").watch(sub, "sub")

		crash(t, n, pidOf(t, n, sub, "w"))
		e := r.expect("sub: child_exited w crash", "sub: child_restarted w")
		crash(t, n, e[1].Other)
		e = r.expect(
			"sub: child_exited w crash",
			"sub: reached_max_restart_intensity w shutdown",
			"sub: shutdown shutdown",
			"sub: child_terminated dyn shutdown",
			"sub: EXIT shutdown",
			"top: child_exited sub shutdown",
			"top: child_restarted sub",
		)
		newSub := e[6].Other
		if got := describe(children(t, n, newSub)); got != "w=running" {
			t.Errorf("restarted sub has %s, want only w=running (dyn is lost)", got)
		}

		t.Run("a transient child supervisor that gives up is not restarted", func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			top := mustStart(t, n, Spec{
				Flags: Flags{Strategy: OneForOne, Intensity: 1},
				Children: []ChildSpec{{
					ID: "sub", Type: Supervisor, Restart: Transient,
					Start: func(p *runtime.Process) (runtime.PID, error) {
						return StartLink(p, Spec{Children: []ChildSpec{spec("w")}}, Options{Clock: clk.Now})
					},
				}},
			}, Options{Clock: clk.Now})
			sub := pidOf(t, n, top, "sub")
			r := record(t, n).watch(top, "top").watch(sub, "sub")
			crash(t, n, pidOf(t, n, sub, "w"))
			r.expect(
				"sub: child_exited w crash",
				"sub: reached_max_restart_intensity w shutdown",
				"sub: shutdown shutdown",
				"sub: EXIT shutdown",
				"top: child_exited sub shutdown",
			)
			if got := describe(children(t, n, top)); got != "sub=undefined" {
				t.Errorf("top has %s, want sub=undefined", got)
			}
		})
	})
}

// lateServer hands the From of a "slow" call to the test instead of replying.
type lateServer struct{ froms chan<- runtime.From }

func (s *lateServer) Init(*runtime.Process, any) genserver.Result { return genserver.Ok(nil) }

func (s *lateServer) HandleCall(_ *runtime.Process, req any, from runtime.From, st any) genserver.Result {
	if req == "slow" {
		s.froms <- from
		return genserver.NoReply(st)
	}
	return genserver.Reply(req, st)
}

func (s *lateServer) HandleCast(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

func (s *lateServer) HandleInfo(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}
