package telecom

import (
	"errors"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/supervisor"
)

type nullWorker struct{}

func (nullWorker) Init(p *runtime.Process, _ any) genserver.Result { return genserver.Ok(nil) }
func (nullWorker) HandleCall(p *runtime.Process, req any, _ runtime.From, s any) genserver.Result {
	return genserver.Reply(req, s)
}
func (nullWorker) HandleCast(p *runtime.Process, _ any, s any) genserver.Result {
	return genserver.NoReply(s)
}
func (nullWorker) HandleInfo(p *runtime.Process, _ any, s any) genserver.Result {
	return genserver.NoReply(s)
}

func startPool(t *testing.T, size, overflow int) (*runtime.Node, *Pool) {
	t.Helper()
	n := runtime.NewNode(runtime.Options{})
	pl := NewPool(PoolConfig{Size: size, MaxOverflow: overflow, NewWorker: func(p *runtime.Process) (runtime.PID, error) {
		return genserver.StartLink(p, nullWorker{}, nil, genserver.Options{Module: "db_worker"})
	}})
	sup, err := supervisor.Start(n, supervisor.Spec{
		Flags:    supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 10, Period: 1},
		Children: []supervisor.ChildSpec{pl.SupervisorSpec()},
	}, supervisor.Options{Name: "db_sup"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { supervisor.Stop(n, sup, runtime.Shutdown, wait) })
	return n, pl
}

// poolSync makes a call to the pool so that every message sent to it
// before has been handled.
func poolSync(t *testing.T, n *runtime.Node, pl *Pool) {
	t.Helper()
	w, err := pl.Checkout(n, false, wait)
	if err == nil {
		pl.Checkin(n, w)
	}
}

func TestPoolCheckoutOverflowAndOrder(t *testing.T) {
	n, pl := startPool(t, 2, 1)
	a, _ := pl.Checkout(n, true, wait)
	b, _ := pl.Checkout(n, true, wait)
	c, err := pl.Checkout(n, true, wait)
	if err != nil || a == b || b == c {
		t.Fatalf("three distinct workers expected: %v %v %v %v", a, b, c, err)
	}
	if st := pl.Stats(); st.Busy != 3 || st.Overflow != 1 || st.Idle != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := pl.Checkout(n, false, wait); !errors.Is(err, ErrPoolFull) {
		t.Fatalf("non-blocking checkout on a full pool: %v", err)
	}
	// Two blocked callers are served in arrival order.
	got := make(chan string, 2)
	for _, name := range []string{"first", "second"} {
		n.Spawn(func(p *runtime.Process) {
			if _, err := pl.Checkout(p, true, wait); err == nil {
				got <- name
			}
			p.Receive(runtime.Infinity) // keep the worker
		}, runtime.SpawnOpts{})
		for pl.Stats().Waiting < map[string]int{"first": 1, "second": 2}[name] {
			poolSync(t, n, pl)
		}
	}
	pl.Checkin(n, a)
	if g := <-got; g != "first" {
		t.Fatalf("%s was served first", g)
	}
	pl.Checkin(n, b)
	if g := <-got; g != "second" {
		t.Fatalf("%s was served second", g)
	}
	// The overflow worker is stopped on checkin when nobody waits.
	w := n.Monitor(c)
	pl.Checkin(n, c)
	if d := <-w.C; d.Reason != runtime.Shutdown {
		t.Fatalf("overflow worker exit %v", d.Reason)
	}
}

func TestPoolCheckoutTimeoutLeavesNoTrace(t *testing.T) {
	n, pl := startPool(t, 1, 0)
	a, _ := pl.Checkout(n, true, wait)
	if _, err := pl.Checkout(n, true, 10*time.Millisecond); !errors.Is(err, runtime.ErrTimeout) {
		t.Fatalf("%v", err)
	}
	pl.Checkin(n, a)
	// The cancelled waiter did not take the worker: it is idle again.
	b, err := pl.Checkout(n, false, wait)
	if err != nil || b != a {
		t.Fatalf("%v %v", b, err)
	}
}

func TestPoolBorrowerDeathReturnsTheWorker(t *testing.T) {
	n, pl := startPool(t, 1, 0)
	took := make(chan runtime.PID, 1)
	borrower, _ := n.Spawn(func(p *runtime.Process) {
		w, _ := pl.Checkout(p, true, wait)
		took <- w
		p.Receive(runtime.Infinity)
	}, runtime.SpawnOpts{})
	w := <-took
	n.Exit(borrower, runtime.Kill)
	got, err := pl.Checkout(n, true, wait)
	if err != nil || got != w {
		t.Fatalf("worker not returned: %v %v", got, err)
	}
}

func TestPoolReplacesACrashedWorker(t *testing.T) {
	n, pl := startPool(t, 1, 0)
	w, _ := pl.Checkout(n, true, wait)
	n.Exit(w, runtime.Atom("crash"))
	var fresh runtime.PID
	for fresh.IsZero() || fresh == w {
		fresh, _ = pl.Checkout(n, true, wait)
	}
	if v, err := n.Call(fresh, "ping", wait); err != nil || v != "ping" {
		t.Fatalf("replacement: %v %v", v, err)
	}
	if pl.Stats().Replaced != 1 {
		t.Fatalf("replaced %d", pl.Stats().Replaced)
	}
}
