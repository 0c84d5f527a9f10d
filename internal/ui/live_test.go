package ui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
)

// liveHarness drives the UI over a real node, read through the runtime's
// own introspection API.
func liveHarness(t *testing.T, w, h int) (*harness, *runtime.Node) {
	t.Helper()
	n := runtime.NewNode(runtime.Options{})
	src := &fakeSource{node: n}
	return newHarness(t, src, Options{NoColor: true}, w, h), n
}

// refresh asks for a snapshot now, as a tick would.
func (h *harness) refresh() {
	h.t.Helper()
	h.send(tickMsg{time.Now().Add(time.Hour)}) // far enough ahead to pass the refresh gap
}

// until waits on the node's event stream for an event matching ok; the
// UI's subscription, made earlier, has received it by then.
func until(t *testing.T, sub *runtime.Subscription, ok func(runtime.Event) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-sub.C:
			if ok(e) {
				return
			}
		case <-timeout:
			t.Fatal("the event never came")
		}
	}
}

type counter struct{ Calls int }

type counterServer struct{}

func (counterServer) Init(p *runtime.Process, arg any) genserver.Result {
	return genserver.Ok(&counter{Calls: 41})
}
func (counterServer) HandleCall(p *runtime.Process, req any, from runtime.From, s any) genserver.Result {
	s.(*counter).Calls++
	return genserver.Reply(s.(*counter).Calls, s)
}
func (counterServer) HandleCast(p *runtime.Process, msg any, s any) genserver.Result {
	return genserver.NoReply(s)
}
func (counterServer) HandleInfo(p *runtime.Process, msg any, s any) genserver.Result {
	return genserver.NoReply(s)
}

func TestLiveProcessesAreListedFilteredAndOpened(t *testing.T) {
	h, n := liveHarness(t, 120, 30)
	pid, err := genserver.Start(n, counterServer{}, nil, genserver.Options{Name: "counter", Module: "counter", Version: "v3"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Exit(pid, runtime.Kill)
	for range 20 {
		if _, err := n.SpawnBehaviour(idle{}, runtime.SpawnOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	h.key("3")
	h.mustShow("Processes 21")
	h.key("/")
	h.typeText("count")
	h.key("enter")
	h.mustShow(`filter "count" 1 match`)
	if got := h.line(pid.String()); !strings.Contains(got, "counter") || !strings.Contains(got, "counter v3") {
		t.Fatalf("row of the server is %q", got)
	}
	h.key("enter")
	h.mustShow("Process " + pid.String() + " counter")
	h.mustShow("Calls:41") // its state, read with sys:get_state
}

// blocker is a server whose handler waits for release: its state cannot
// be read meanwhile.
type blocker struct {
	counterServer
	entered, release chan struct{}
}

func (b blocker) HandleInfo(p *runtime.Process, msg any, s any) genserver.Result {
	close(b.entered)
	<-b.release
	return genserver.NoReply(s)
}

func TestStateOfABusyProcessTimesOutWithoutBlockingTheUI(t *testing.T) {
	h, n := liveHarness(t, 120, 30)
	b := blocker{entered: make(chan struct{}), release: make(chan struct{})}
	pid, err := genserver.Start(n, b, nil, genserver.Options{Name: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	defer close(b.release)
	if err := n.Send(pid, "work"); err != nil {
		t.Fatal(err)
	}
	<-b.entered
	h.key("3")
	h.key("/")
	h.typeText("busy")
	h.key("enter")
	// Update returns the state read as a command; it does not run it.
	_, cmd := h.m.Update(keyPress("enter"))
	h.mustShow("Process " + pid.String())
	h.mustShow("reading…")
	h.run(cmd) // the command waits for sys:get_state's timeout
	h.mustShow("timeout")
}

// crasher panics on any message.
type crasher struct{}

func (crasher) Init(*runtime.Process)        {}
func (crasher) Handle(*runtime.Process, any) { panic("boom") }

func TestCrashReportsReachTheEventsView(t *testing.T) {
	h, n := liveHarness(t, 120, 30)
	sub := n.Subscribe(64)
	defer sub.Close()
	pid, err := n.SpawnBehaviour(crasher{}, runtime.SpawnOpts{Name: "crasher"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(pid, "go"); err != nil {
		t.Fatal(err)
	}
	until(t, sub, func(e runtime.Event) bool { return e.Kind == runtime.EventExit && e.PID == pid })
	h.key("6")
	h.refresh()
	h.mustShow("crash")
	h.mustShow(pid.String() + " crasher exited: panic: boom")
	h.key("enter")
	h.mustShow("stack")
	h.mustShow("goroutine")
}

func TestTracedMessagesReachTheEventsView(t *testing.T) {
	h, n := liveHarness(t, 120, 30)
	sub := n.Subscribe(64)
	defer sub.Close()
	pid, err := genserver.Start(n, counterServer{}, nil, genserver.Options{Name: "traced"})
	if err != nil {
		t.Fatal(err)
	}
	h.key("3")
	h.key("/")
	h.typeText("traced")
	h.key("enter")
	h.key("t")
	h.mustShow("tracing on for " + pid.String())
	if err := n.Send(pid, "hello"); err != nil {
		t.Fatal(err)
	}
	until(t, sub, func(e runtime.Event) bool { return e.Kind == runtime.EventTrace && e.PID == pid && e.Data == "hello" })
	h.key("6")
	h.refresh()
	h.mustShow(pid.String() + " receive hello")
}

func TestTheOverviewReadsTheHost(t *testing.T) {
	h, _ := liveHarness(t, 120, 30)
	h.send(sampleTickMsg{time.Now()})
	if h.m.sh.sys.goroutines == 0 || h.m.sh.sys.heapLive == 0 {
		t.Errorf("no Go runtime figures: %+v", h.m.sh.sys)
	}
	h.mustShow("Goroutines")
}

func TestQuitEndsTheProgramAndTheSubscription(t *testing.T) {
	h, _ := liveHarness(t, 80, 24)
	h.key("q")
	if !h.quit {
		t.Fatal("q did not quit")
	}
}

func TestWindowSizeReflowsTheLayout(t *testing.T) {
	h, _ := liveHarness(t, 80, 24)
	h.mustShow("2 Apps")
	h.send(tea.WindowSizeMsg{Width: 160, Height: 48})
	h.mustShow("2 Applications")
}
