package supervisor

import (
	"fmt"
	goruntime "runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/sys"
)

// wait bounds every wait in the tests; only a broken supervisor reaches it.
const wait = 5 * time.Second

// started is what a worker's Init announces.
type started struct {
	id  string
	pid runtime.PID
}

// stopWith makes a worker stop itself with reason (a crash or a clean exit).
type stopWith struct{ reason any }

// worker is the gen_server the tests supervise.
type worker struct {
	id      string
	started chan<- started
	// trap makes the worker trap exits, so a shutdown runs Terminate.
	trap bool
	// slowStop makes Terminate block until the worker is killed.
	slowStop bool
	// terminated receives the reason each time Terminate runs.
	terminated chan<- any
}

func (w *worker) Init(p *runtime.Process, _ any) genserver.Result {
	if w.trap {
		p.TrapExit(true)
	}
	if w.started != nil {
		w.started <- started{w.id, p.Self()}
	}
	return genserver.Ok(nil)
}

func (w *worker) HandleCall(_ *runtime.Process, req any, _ runtime.From, st any) genserver.Result {
	return genserver.Reply(req, st)
}

func (w *worker) HandleCast(_ *runtime.Process, msg any, st any) genserver.Result {
	if m, ok := msg.(stopWith); ok {
		return genserver.Stop(m.reason, st)
	}
	return genserver.NoReply(st)
}

func (w *worker) HandleInfo(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

func (w *worker) Terminate(p *runtime.Process, reason any, _ any) {
	if w.terminated != nil {
		w.terminated <- reason
	}
	if w.slowStop {
		<-p.Context().Done()
	}
}

// spec is a permanent worker child.
func spec(id string) ChildSpec { return workerSpec(&worker{id: id}) }

func workerSpec(w *worker) ChildSpec {
	return ChildSpec{
		ID:     w.id,
		Module: "worker",
		Start: func(p *runtime.Process) (runtime.PID, error) {
			return genserver.StartLink(p, w, nil, genserver.Options{Module: "worker"})
		},
	}
}

func with(c ChildSpec, f func(*ChildSpec)) ChildSpec {
	f(&c)
	return c
}

// crash makes a child stop itself with reason crash.
func crash(t *testing.T, n *runtime.Node, pid runtime.PID) {
	t.Helper()
	stop(t, n, pid, runtime.Atom("crash"))
}

func stop(t *testing.T, n *runtime.Node, pid runtime.PID, reason any) {
	t.Helper()
	if pid.IsZero() {
		t.Fatal("no pid to stop")
	}
	if err := genserver.Cast(n, pid, stopWith{reason}); err != nil {
		t.Fatal(err)
	}
}

func mustStart(t *testing.T, n *runtime.Node, s Spec, opts Options) runtime.PID {
	t.Helper()
	pid, err := Start(n, s, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { n.Exit(pid, runtime.Kill) })
	return pid
}

// recorder reads the supervisor reports and exits of the watched
// supervisors from the node's event stream.
type recorder struct {
	t     *testing.T
	sub   *runtime.Subscription
	names map[runtime.PID]string
	// any records every supervisor on the node, for a supervisor whose
	// PID the test never learns (a failed start-up).
	any bool
}

func record(t *testing.T, n *runtime.Node) *recorder {
	sub := n.Subscribe(1 << 16)
	t.Cleanup(sub.Close)
	return &recorder{t: t, sub: sub, names: make(map[runtime.PID]string)}
}

// watch records events of sup; with more than one supervisor watched,
// each line starts with its label.
func (r *recorder) watch(sup runtime.PID, label string) *recorder {
	r.names[sup] = label
	return r
}

// watchAny records the reports of every supervisor and their exits.
func (r *recorder) watchAny() *recorder {
	r.any = true
	return r
}

// line renders an event the way the scenarios spell it: the report name,
// the child's ID and the reason; an exit is "EXIT reason".
func (r *recorder) line(e runtime.Event) string {
	var parts []string
	if len(r.names) > 1 && !r.any {
		parts = append(parts, r.names[e.PID]+":")
	}
	if e.Kind == runtime.EventExit {
		parts = append(parts, "EXIT", runtime.FormatReason(e.Reason))
		return strings.Join(parts, " ")
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

// next returns the next event of a watched supervisor.
func (r *recorder) next() (runtime.Event, bool) {
	deadline := time.After(wait)
	for {
		select {
		case e := <-r.sub.C:
			if r.any && e.Kind == runtime.EventSupervisor {
				r.names[e.PID] = ""
			}
			if _, ok := r.names[e.PID]; !ok {
				continue
			}
			if e.Kind == runtime.EventSupervisor || e.Kind == runtime.EventExit {
				return e, true
			}
		case <-deadline:
			return runtime.Event{}, false
		}
	}
}

// expect asserts that the next events of the watched supervisors are
// exactly want, in order, and returns them.
func (r *recorder) expect(want ...string) []runtime.Event {
	r.t.Helper()
	var got []string
	var events []runtime.Event
	for range want {
		e, ok := r.next()
		if !ok {
			r.t.Fatalf("events:\n got %s\nwant %s\n(no more events within %v)", fmtLines(got), fmtLines(want), wait)
		}
		events = append(events, e)
		got = append(got, r.line(e))
	}
	if !slices.Equal(got, want) {
		r.t.Fatalf("events:\n got %s\nwant %s", fmtLines(got), fmtLines(want))
	}
	if r.sub.Lost() > 0 {
		r.t.Fatalf("the recorder lost %d events", r.sub.Lost())
	}
	return events
}

// until skips events up to and including the first whose line is want.
func (r *recorder) until(want string) runtime.Event {
	r.t.Helper()
	var seen []string
	for {
		e, ok := r.next()
		if !ok {
			r.t.Fatalf("no %q; saw %s", want, fmtLines(seen))
		}
		if l := r.line(e); l == want {
			return e
		} else {
			seen = append(seen, l)
		}
	}
}

func fmtLines(ls []string) string {
	if len(ls) == 0 {
		return "[]"
	}
	return "[\n\t" + strings.Join(ls, "\n\t") + "\n]"
}

// fakeClock is a settable clock for the intensity window.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(start time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(start.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *fakeClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }

// children returns WhichChildren, newest first.
func children(t *testing.T, n *runtime.Node, sup runtime.PID) []Child {
	t.Helper()
	cs, err := WhichChildren(n, sup, wait)
	if err != nil {
		t.Fatalf("WhichChildren: %v", err)
	}
	return cs
}

func pidOf(t *testing.T, n *runtime.Node, sup runtime.PID, id string) runtime.PID {
	t.Helper()
	c, err := WhichChild(n, sup, id, wait)
	if err != nil {
		t.Fatalf("WhichChild(%s): %v", id, err)
	}
	return c.PID
}

func pids(t *testing.T, n *runtime.Node, sup runtime.PID) map[string]runtime.PID {
	t.Helper()
	m := make(map[string]runtime.PID)
	for _, c := range children(t, n, sup) {
		m[c.ID] = c.PID
	}
	return m
}

// awaitDown waits for the process to exit and returns its reason.
func awaitDown(t *testing.T, w *runtime.Watch) any {
	t.Helper()
	select {
	case d := <-w.C:
		return d.Reason
	case <-time.After(wait):
		t.Fatalf("no DOWN within %v", wait)
		return nil
	}
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		var zero T
		t.Fatalf("nothing on %T within %v", ch, wait)
		return zero
	}
}

func describe(cs []Child) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(" ")
		}
		switch {
		case c.Restarting:
			fmt.Fprintf(&b, "%s=restarting", c.ID)
		case c.PID.IsZero():
			fmt.Fprintf(&b, "%s=undefined", c.ID)
		default:
			fmt.Fprintf(&b, "%s=running", c.ID)
		}
	}
	return b.String()
}

// inspect returns Inspect(sup) once the supervisor has published what it
// has done so far: sys.GetState, served after the message in progress,
// publishes at once what a burst of changes would publish a little later.
func inspect(t *testing.T, n *runtime.Node, sup runtime.PID) Info {
	t.Helper()
	if _, err := sys.GetState(n, sup, wait); err != nil {
		t.Fatalf("sys.GetState: %v", err)
	}
	info, ok := Inspect(sup)
	if !ok {
		t.Fatalf("Inspect(%v): not a live supervisor", sup)
	}
	return info
}

// awaitMailbox waits until pid has k messages queued. The tests use it
// only while pid cannot take messages (blocked in a start function they
// hold, or suspended), so the count can only grow: it is how a test knows
// a message is queued behind the work in progress.
func awaitMailbox(t *testing.T, pid runtime.PID, k int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for pid.MailboxLen() < k {
		if time.Now().After(deadline) {
			t.Fatalf("%v has %d messages queued, want %d", pid, pid.MailboxLen(), k)
		}
		goruntime.Gosched()
	}
}
