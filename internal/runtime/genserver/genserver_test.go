package genserver_test

import (
	"errors"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/sys"
)

const wait = 5 * time.Second

// counter is a small gen_server whose requests exercise each result kind.
type counter struct {
	terminated chan any      // receives terminate's reason
	timeouts   chan struct{} // signalled when the idle timeout fires
}

type (
	get        struct{}
	incr       struct{ by int }
	replyLater struct{}
	stopWith   struct{ reason any }
	idle       struct{ d time.Duration }
	crash      struct{}
)

func (c *counter) Init(p *runtime.Process, arg any) genserver.Result {
	switch a := arg.(type) {
	case string:
		switch a {
		case "ignore":
			return genserver.Ignore()
		case "stop":
			return genserver.Stop(runtime.Atom("bad_config"), nil)
		case "panic":
			panic("init exploded")
		case "continue":
			return genserver.Ok(0).Continue(100)
		}
	}
	return genserver.Ok(0)
}

func (c *counter) HandleCall(p *runtime.Process, req any, from runtime.From, state any) genserver.Result {
	n := state.(int)
	switch r := req.(type) {
	case get:
		return genserver.Reply(n, n)
	case incr:
		return genserver.Reply(n+r.by, n+r.by)
	case replyLater:
		go func() { from.Reply("later") }()
		return genserver.NoReply(n)
	case stopWith:
		return genserver.StopReply(r.reason, "bye", n)
	case idle:
		return genserver.Reply("ok", n).WithTimeout(r.d)
	case crash:
		var m map[int]int
		m[0] = 1
	}
	return genserver.Reply(nil, n)
}

func (c *counter) HandleCast(p *runtime.Process, msg any, state any) genserver.Result {
	if i, ok := msg.(incr); ok {
		return genserver.NoReply(state.(int) + i.by)
	}
	return genserver.NoReply(state).Hibernate()
}

func (c *counter) HandleInfo(p *runtime.Process, msg any, state any) genserver.Result {
	if _, ok := msg.(runtime.TimeoutMsg); ok {
		if c.timeouts != nil {
			c.timeouts <- struct{}{}
		}
		return genserver.NoReply(-1)
	}
	return genserver.NoReply(state)
}

func (c *counter) HandleContinue(p *runtime.Process, cont any, state any) genserver.Result {
	return genserver.NoReply(state.(int) + cont.(int))
}

func (c *counter) Terminate(p *runtime.Process, reason any, state any) {
	if c.terminated != nil {
		c.terminated <- reason
	}
}

// slowContinue's HandleContinue waits for release.
type slowContinue struct {
	counter
	release chan struct{}
}

func (c *slowContinue) Init(p *runtime.Process, arg any) genserver.Result {
	return genserver.Ok(0).Continue(1)
}

func (c *slowContinue) HandleContinue(p *runtime.Process, cont any, state any) genserver.Result {
	<-c.release
	return genserver.NoReply(cont)
}

// counterV2 stores the count as a struct, migrated by CodeChange.
type counterV2 struct {
	counter
	fail bool
}

type v2State struct{ Count int }

func (c *counterV2) CodeChange(old string, state any, extra any) (any, error) {
	if c.fail {
		return nil, errors.New("migration failed")
	}
	return v2State{Count: state.(int)}, nil
}

func (c *counterV2) HandleCall(p *runtime.Process, req any, from runtime.From, state any) genserver.Result {
	s := state.(v2State)
	return genserver.Reply(s.Count*1000, s)
}

func start(t *testing.T, n *runtime.Node, c *counter, arg any) runtime.PID {
	t.Helper()
	pid, err := genserver.Start(n, c, arg, genserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestInitResults(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	t.Run("ok starts the server", func(t *testing.T) {
		pid := start(t, n, &counter{}, nil)
		if v, err := genserver.Call(n, pid, get{}, wait); err != nil || v != 0 {
			t.Fatalf("%v %v", v, err)
		}
	})
	t.Run("ignore returns ErrIgnore and leaves no process", func(t *testing.T) {
		before := n.ProcessCount()
		if _, err := genserver.Start(n, &counter{}, "ignore", genserver.Options{Name: "ign"}); !errors.Is(err, genserver.ErrIgnore) {
			t.Fatalf("%v", err)
		}
		if _, ok := n.Whereis("ign"); ok || n.ProcessCount() != before {
			t.Fatal("ignored server left a trace")
		}
	})
	t.Run("stop returns the reason", func(t *testing.T) {
		_, err := genserver.Start(n, &counter{}, "stop", genserver.Options{})
		var se *genserver.StartError
		if !errors.As(err, &se) || se.Reason != runtime.Atom("bad_config") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("a panic in init is a start error with the panic", func(t *testing.T) {
		_, err := genserver.Start(n, &counter{}, "panic", genserver.Options{})
		var pe *runtime.PanicError
		if !errors.As(err, &pe) || pe.Value != "init exploded" {
			t.Fatalf("%v", err)
		}
	})
	t.Run("continue runs before the first message", func(t *testing.T) {
		pid := start(t, n, &counter{}, "continue")
		if v, _ := genserver.Call(n, pid, get{}, wait); v != 100 {
			t.Fatalf("state %v", v)
		}
	})
	t.Run("the starter does not wait for continue", func(t *testing.T) {
		for _, opts := range []genserver.Options{{}, {Timeout: wait}} {
			release := make(chan struct{})
			pid, err := genserver.Start(n, &slowContinue{release: release}, nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			close(release) // Start returned while HandleContinue waited for this
			if v, _ := genserver.Call(n, pid, get{}, wait); v != 1 {
				t.Fatalf("state %v", v)
			}
		}
	})
	t.Run("a failed start_link leaves no EXIT in the parent", func(t *testing.T) {
		res := make(chan any, 2)
		n.Spawn(func(p *runtime.Process) {
			p.TrapExit(true)
			_, err := genserver.StartLink(p, &counter{}, "stop", genserver.Options{})
			res <- err
			m, ok := p.Receive(50 * time.Millisecond)
			if ok {
				res <- m
			} else {
				res <- "no message"
			}
		}, runtime.SpawnOpts{})
		if err := <-res; err == nil {
			t.Fatal("start_link should fail")
		}
		if m := <-res; m != "no message" {
			t.Fatalf("parent got %v", m)
		}
	})
	t.Run("a name that is taken", func(t *testing.T) {
		pid := start(t, n, &counter{}, nil)
		n.Register("taken", pid)
		_, err := genserver.Start(n, &counter{}, nil, genserver.Options{Name: "taken"})
		var are *runtime.AlreadyRegisteredError
		if !errors.As(err, &are) || are.PID != pid {
			t.Fatalf("%v", err)
		}
	})
}

func TestCallsCastsAndReplies(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	pid := start(t, n, &counter{}, nil)
	if v, _ := genserver.Call(n, pid, incr{2}, wait); v != 2 {
		t.Fatalf("incr %v", v)
	}
	genserver.Cast(n, pid, incr{5})
	if v, _ := genserver.Call(n, pid, get{}, wait); v != 7 {
		t.Fatalf("after cast %v", v)
	}
	if v, _ := genserver.Call(n, pid, replyLater{}, wait); v != "later" {
		t.Fatalf("reply later %v", v)
	}
	n.Send(pid, "an info message")
	if v, _ := genserver.Call(n, pid, get{}, wait); v != 7 {
		t.Fatalf("info changed state: %v", v)
	}
}

func TestStopReplyRunsTerminate(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	c := &counter{terminated: make(chan any, 1)}
	pid := start(t, n, c, nil)
	w := n.Monitor(pid)
	v, err := genserver.Call(n, pid, stopWith{runtime.Atom("done")}, wait)
	if err != nil || v != "bye" {
		t.Fatalf("%v %v", v, err)
	}
	if r := <-c.terminated; r != runtime.Atom("done") {
		t.Fatalf("terminate reason %v", r)
	}
	if d := <-w.C; d.Reason != runtime.Atom("done") {
		t.Fatalf("exit reason %v", d.Reason)
	}
}

func TestCrashInCallbackRunsTerminateAndFailsTheCall(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	c := &counter{terminated: make(chan any, 1)}
	pid := start(t, n, c, nil)
	_, err := genserver.Call(n, pid, crash{}, wait)
	var ee *runtime.ExitError
	var pe *runtime.PanicError
	if !errors.As(err, &ee) || !errors.As(err, &pe) {
		t.Fatalf("%v", err)
	}
	if r := <-c.terminated; r != ee.Reason {
		t.Fatalf("terminate got %v", r)
	}
}

func TestTerminateOnParentShutdownOnlyWhenTrapping(t *testing.T) {
	for _, trap := range []bool{true, false} {
		name := "not trapping: no terminate"
		if trap {
			name = "trapping: terminate runs with the parent's reason"
		}
		t.Run(name, func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			c := &counter{terminated: make(chan any, 1)}
			child := make(chan runtime.PID, 1)
			parent, _ := n.Spawn(func(p *runtime.Process) {
				pid, err := genserver.StartLink(p, c, nil, genserver.Options{TrapExit: trap})
				if err != nil {
					panic(err)
				}
				child <- pid
				p.Receive(runtime.Infinity)
			}, runtime.SpawnOpts{})
			pid := <-child
			w := n.Monitor(pid)
			n.Exit(parent, runtime.Shutdown)
			if d := <-w.C; d.Reason != runtime.Shutdown {
				t.Fatalf("child reason %v", d.Reason)
			}
			select {
			case r := <-c.terminated:
				if !trap {
					t.Fatalf("terminate ran for a non-trapping server: %v", r)
				}
			default:
				if trap {
					t.Fatal("terminate did not run")
				}
			}
		})
	}
}

func TestIdleTimeoutAndHibernate(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	c := &counter{timeouts: make(chan struct{}, 1)}
	pid := start(t, n, c, nil)
	genserver.Call(n, pid, idle{time.Millisecond}, wait)
	<-c.timeouts
	if v, _ := genserver.Call(n, pid, get{}, wait); v != -1 {
		t.Fatalf("timeout not delivered as info: %v", v)
	}
	// A message before the timeout cancels it.
	genserver.Call(n, pid, idle{time.Hour}, wait)
	genserver.Call(n, pid, incr{1}, wait)
	genserver.Cast(n, pid, "hibernate")
	if v, _ := genserver.Call(n, pid, get{}, wait); v != 0 {
		t.Fatalf("state %v", v)
	}
}

func TestSys(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	pid, err := genserver.Start(n, &counter{}, nil, genserver.Options{Module: "counter", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("suspend queues messages until resume", func(t *testing.T) {
		if err := sys.Suspend(n, pid, wait); err != nil {
			t.Fatal(err)
		}
		if pid.Info().Status != runtime.StatusSuspended {
			t.Fatalf("status %v", pid.Info().Status)
		}
		genserver.Cast(n, pid, incr{1})
		if _, err := genserver.Call(n, pid, get{}, 20*time.Millisecond); !errors.Is(err, runtime.ErrTimeout) {
			t.Fatalf("a suspended server answered: %v", err)
		}
		if st, _ := sys.GetState(n, pid, wait); st != 0 {
			t.Fatalf("get_state while suspended: %v", st)
		}
		if err := sys.Resume(n, pid, wait); err != nil {
			t.Fatal(err)
		}
		if v, _ := genserver.Call(n, pid, get{}, wait); v != 1 {
			t.Fatalf("after resume %v", v)
		}
	})
	t.Run("replace_state", func(t *testing.T) {
		st, err := sys.ReplaceState(n, pid, func(s any) any { return s.(int) + 41 }, wait)
		if err != nil || st != 42 {
			t.Fatalf("%v %v", st, err)
		}
	})
	t.Run("change_code needs a suspended process", func(t *testing.T) {
		if err := sys.ChangeCode(n, pid, &counterV2{}, "2", nil, wait); !errors.Is(err, runtime.ErrNotSuspended) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("a failing code_change keeps the old code and state", func(t *testing.T) {
		sys.Suspend(n, pid, wait)
		if err := sys.ChangeCode(n, pid, &counterV2{fail: true}, "2", nil, wait); err == nil {
			t.Fatal("expected the migration error")
		}
		sys.Resume(n, pid, wait)
		if v, _ := genserver.Call(n, pid, get{}, wait); v != 42 || pid.Info().Version != "1" {
			t.Fatalf("state %v version %s", v, pid.Info().Version)
		}
	})
	t.Run("change_code migrates the state to the new version", func(t *testing.T) {
		sub := n.Subscribe(16)
		defer sub.Close()
		sys.Suspend(n, pid, wait)
		if err := sys.ChangeCode(n, pid, &counterV2{}, "2", nil, wait); err != nil {
			t.Fatal(err)
		}
		sys.Resume(n, pid, wait)
		if v, _ := genserver.Call(n, pid, get{}, wait); v != 42000 {
			t.Fatalf("v2 answered %v", v)
		}
		if pid.Info().Version != "2" {
			t.Fatalf("version %s", pid.Info().Version)
		}
		for e := range sub.C {
			if e.Kind == runtime.EventCodeChange {
				if e.Text != "counter 1 -> 2" {
					t.Fatalf("event %q", e.Text)
				}
				break
			}
		}
	})
	t.Run("statistics and trace", func(t *testing.T) {
		if err := sys.Statistics(n, pid, true, wait); err != nil {
			t.Fatal(err)
		}
		genserver.Call(n, pid, get{}, wait)
		st, ok := n.StatisticsOf(pid)
		if !ok || st.MessagesIn != 1 {
			t.Fatalf("%+v %v", st, ok)
		}
		sub := n.Subscribe(16)
		defer sub.Close()
		sys.Trace(n, pid, true, wait)
		genserver.Cast(n, pid, incr{0})
		for e := range sub.C {
			if e.Kind == runtime.EventTrace && e.Text == "receive" {
				break
			}
		}
		sys.Trace(n, pid, false, wait)
	})
	t.Run("sys on a body process is refused at once", func(t *testing.T) {
		raw, _ := n.Spawn(func(p *runtime.Process) { p.Receive(runtime.Infinity) }, runtime.SpawnOpts{})
		if _, err := sys.GetState(n, raw, wait); !errors.Is(err, runtime.ErrNotSys) {
			t.Fatalf("%v", err)
		}
	})
}

func TestStopServer(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	c := &counter{terminated: make(chan any, 1)}
	pid := start(t, n, c, nil)
	if err := genserver.StopServer(n, pid, runtime.Shutdown, wait); err != nil {
		t.Fatal(err)
	}
	if pid.Alive() || <-c.terminated != runtime.Shutdown {
		t.Fatal("stop did not terminate the server")
	}
	if err := genserver.StopServer(n, pid, runtime.Shutdown, wait); !errors.Is(err, runtime.ErrNoProc) {
		t.Fatalf("stop of a dead server: %v", err)
	}
}

// fragile counts Terminate calls and can make them panic.
type fragile struct {
	counter
	terminates chan any
	panicky    bool
}

type exitNow struct{ reason any }

func (f *fragile) HandleCall(p *runtime.Process, req any, from runtime.From, state any) genserver.Result {
	if e, ok := req.(exitNow); ok {
		p.Exit(e.reason)
	}
	return f.counter.HandleCall(p, req, from, state)
}

func (f *fragile) Terminate(p *runtime.Process, reason any, state any) {
	f.terminates <- reason
	if f.panicky {
		panic("terminate failed")
	}
}

func TestTerminateRunsOnce(t *testing.T) {
	t.Run("Exit inside a callback runs terminate with its reason", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		f := &fragile{terminates: make(chan any, 2)}
		pid, _ := genserver.Start(n, f, nil, genserver.Options{})
		w := n.Monitor(pid)
		genserver.Call(n, pid, exitNow{runtime.Atom("bye")}, wait)
		if d := <-w.C; d.Reason != runtime.Atom("bye") {
			t.Fatalf("reason %v", d.Reason)
		}
		if r := <-f.terminates; r != runtime.Atom("bye") {
			t.Fatalf("terminate got %v", r)
		}
		if len(f.terminates) != 0 {
			t.Fatal("terminate ran twice")
		}
	})
	t.Run("a terminate that panics runs once and the stop reports it", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		f := &fragile{terminates: make(chan any, 2), panicky: true}
		pid, _ := genserver.Start(n, f, nil, genserver.Options{})
		err := genserver.StopServer(n, pid, runtime.Shutdown, wait)
		var pe *runtime.PanicError
		if !errors.As(err, &pe) {
			t.Fatalf("stop returned %v", err)
		}
		<-f.terminates
		if len(f.terminates) != 0 {
			t.Fatal("terminate ran twice")
		}
	})
}

func TestReplaceStateThatPanicsKeepsTheServer(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	pid := start(t, n, &counter{}, nil)
	if _, err := sys.ReplaceState(n, pid, func(any) any { panic("no") }, wait); err == nil {
		t.Fatal("expected an error")
	}
	if v, err := genserver.Call(n, pid, get{}, wait); err != nil || v != 0 {
		t.Fatalf("server after a failed replace_state: %v %v", v, err)
	}
}

func TestFailedStartFreesTheNameBeforeReturning(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	for i := 0; i < 100; i++ {
		if _, err := genserver.Start(n, &counter{}, "stop", genserver.Options{Name: "svc"}); err == nil {
			t.Fatal("start should fail")
		}
		if _, ok := n.Whereis("svc"); ok {
			t.Fatal("name still registered after a failed start returned")
		}
	}
}

func TestFormatStateIsMadeInsideTheProcess(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	pid := start(t, n, &counter{}, nil)
	genserver.Call(n, pid, incr{41}, wait)
	if s, err := sys.FormatState(n, pid, wait); err != nil || s != "41" {
		t.Fatalf("%q %v", s, err)
	}
}
