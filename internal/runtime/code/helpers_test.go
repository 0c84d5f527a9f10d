package code_test

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/code"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/statem"
)

// wait bounds every wait in these tests; only a broken upgrade reaches it.
const wait = 5 * time.Second

// The counter's requests, and its answer, which says which code answered.
type (
	get  struct{}
	incr struct{}
	// block keeps the process busy in a call: it closes entered once the
	// call's handler runs, then waits until until is closed.
	block struct{ entered, until chan struct{} }
)

type answer struct {
	Version string
	N       int
}

// counterV1 is the counter's first version: its state is an int.
type counterV1 struct{}

func (counterV1) Init(_ *runtime.Process, arg any) genserver.Result {
	return genserver.Ok(arg.(int))
}

func (counterV1) HandleCall(_ *runtime.Process, req any, _ runtime.From, state any) genserver.Result {
	n := state.(int)
	switch r := req.(type) {
	case incr:
		n++
	case block:
		close(r.entered)
		<-r.until
	}
	return genserver.Reply(answer{"1", n}, n)
}

func (counterV1) HandleCast(_ *runtime.Process, _ any, state any) genserver.Result {
	return genserver.NoReply(state)
}

func (counterV1) HandleInfo(_ *runtime.Process, _ any, state any) genserver.Result {
	return genserver.NoReply(state)
}

// CodeChange takes version 2's state back; version 1 is the oldest, so it
// is only ever switched to by a downgrade.
func (counterV1) CodeChange(oldVersion string, state, extra any) (any, error) {
	if _, ok := extra.(code.Down); !ok {
		return nil, fmt.Errorf("counter 1 cannot upgrade from %s", oldVersion)
	}
	s, ok := state.(counterState)
	if !ok {
		return nil, fmt.Errorf("counter 1: unexpected state %T", state)
	}
	return s.N, nil
}

// counterState is version 2's state.
type counterState struct {
	N    int
	From string // the version it was migrated from
}

// counterV2 is the counter's second version. Migrate, if set, runs in each
// process's code_change with its count, and its error fails the change.
type counterV2 struct {
	migrate func(n int) error
}

func (*counterV2) Init(_ *runtime.Process, arg any) genserver.Result {
	return genserver.Ok(counterState{N: arg.(int)})
}

func (*counterV2) HandleCall(_ *runtime.Process, req any, _ runtime.From, state any) genserver.Result {
	s := state.(counterState)
	if _, ok := req.(incr); ok {
		s.N++
	}
	return genserver.Reply(answer{"2", s.N}, s)
}

func (*counterV2) HandleCast(_ *runtime.Process, _ any, state any) genserver.Result {
	return genserver.NoReply(state)
}

func (*counterV2) HandleInfo(_ *runtime.Process, _ any, state any) genserver.Result {
	return genserver.NoReply(state)
}

func (c *counterV2) CodeChange(oldVersion string, state, extra any) (any, error) {
	if d, ok := extra.(code.Down); ok {
		return nil, fmt.Errorf("counter 2 is the newest version, not a downgrade from %s", d.FromVersion)
	}
	n, ok := state.(int)
	if !ok {
		return nil, fmt.Errorf("counter 2: unexpected state %T", state)
	}
	if c.migrate != nil {
		if err := c.migrate(n); err != nil {
			return nil, err
		}
	}
	return counterState{N: n, From: oldVersion}, nil
}

var errMigrate = errors.New("cannot migrate this count")

// preparedCounter is the counter's version 2 code with work to do before
// an upgrade to it: prepare runs as its PrepareUpgrade.
type preparedCounter struct {
	*counterV2
	prepare func() error
}

func (c preparedCounter) PrepareUpgrade() error { return c.prepare() }

var errPrepare = errors.New("cannot prepare")

// newCounters starts a node, registers the counter with v2 as its second
// version, and starts count counters on version 1, counter i counting from i.
func newCounters(t testing.TB, v2 *counterV2, count int) (*runtime.Node, *code.Registry, []runtime.PID) {
	t.Helper()
	n := runtime.NewNode(runtime.Options{})
	r := code.NewRegistry(n)
	if err := r.Register("counter",
		code.Version{Name: "1", Module: counterV1{}, Notes: "an int"},
		code.Version{Name: "2", Module: v2, Notes: "a struct"},
	); err != nil {
		t.Fatal(err)
	}
	pids := make([]runtime.PID, count)
	for i := range pids {
		pids[i] = startCounter(t, n, r, i)
	}
	return n, r, pids
}

// startCounter starts a counter on the module's current version, as a
// supervisor's start function would.
func startCounter(t testing.TB, n *runtime.Node, r *code.Registry, from int) runtime.PID {
	t.Helper()
	v := r.Current("counter")
	pid, err := genserver.Start(n, v.Module.(genserver.Module), from, genserver.Options{Module: "counter", Version: v.Name})
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func ask(t testing.TB, n *runtime.Node, pid runtime.PID, req any) answer {
	t.Helper()
	v, err := genserver.Call(n, pid, req, wait)
	if err != nil {
		t.Fatalf("call %v: %v", pid, err)
	}
	return v.(answer)
}

// expectAll fails unless every process answers from version vsn with its
// expected count and reports vsn, running.
func expectAll(t *testing.T, n *runtime.Node, pids []runtime.PID, vsn string, count func(i int) int) {
	t.Helper()
	for i, pid := range pids {
		if got, want := ask(t, n, pid, get{}), (answer{vsn, count(i)}); got != want {
			t.Fatalf("%v answered %+v, want %+v", pid, got, want)
		}
		if info := pid.Info(); info.Version != vsn || info.Status == runtime.StatusSuspended {
			t.Fatalf("%v: version %q, status %v; want version %q, not suspended", pid, info.Version, info.Status, vsn)
		}
	}
}

// summary waits for an upgrade's summary event (the one without a PID).
func summary(t *testing.T, sub *runtime.Subscription) runtime.Event {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e := <-sub.C:
			if e.Kind == runtime.EventCodeChange && e.PID.IsZero() {
				return e
			}
		case <-timeout:
			t.Fatal("no code change summary event")
		}
	}
}

// waitFor spins until cond holds, for states that no message or event
// reports. It yields rather than sleeps, so it returns as soon as it can.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		goruntime.Gosched()
	}
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// light is a state machine that flips between "off" and "on", counting
// flips. Version 1 keeps the count as an int, version 2 in a flips struct.
type (
	flip     struct{}
	lightGet struct{}
	lightAns struct {
		Version string
		State   any
		Flips   int
	}
	flips struct{ N int }
)

type lightV1 struct{}

func (lightV1) Init(*runtime.Process, any) statem.Result { return statem.Ok("off", 0) }

func (lightV1) HandleEvent(_ *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
	n := data.(int)
	if et.Kind != statem.KindCall {
		return statem.KeepStateAndData()
	}
	if _, ok := content.(flip); ok {
		next := map[any]any{"off": "on", "on": "off"}[state]
		return statem.NextState(next, n+1, statem.Reply(et.From, lightAns{"1", next, n + 1}))
	}
	return statem.KeepStateAndData(statem.Reply(et.From, lightAns{"1", state, n}))
}

func (lightV1) CodeChange(_ string, state, data, extra any) (any, any, error) {
	if _, ok := extra.(code.Down); !ok {
		return nil, nil, errors.New("light 1 is the oldest version")
	}
	return state, data.(flips).N, nil
}

type lightV2 struct{}

func (lightV2) Init(*runtime.Process, any) statem.Result { return statem.Ok("off", flips{}) }

func (lightV2) HandleEvent(_ *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
	f := data.(flips)
	if et.Kind != statem.KindCall {
		return statem.KeepStateAndData()
	}
	if _, ok := content.(flip); ok {
		next := map[any]any{"off": "on", "on": "off"}[state]
		f.N++
		return statem.NextState(next, f, statem.Reply(et.From, lightAns{"2", next, f.N}))
	}
	return statem.KeepStateAndData(statem.Reply(et.From, lightAns{"2", state, f.N}))
}

func (lightV2) CodeChange(_ string, state, data, extra any) (any, any, error) {
	if _, ok := extra.(code.Down); ok {
		return nil, nil, errors.New("light 2 is the newest version")
	}
	return state, flips{N: data.(int)}, nil
}
