package statem_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/statem"
	"observer/internal/runtime/sys"
)

// session is a telephone call as a state machine in the state_functions
// mode with state enter calls:
//
//	setup --dial--> routing --routed--> ringing --answer--> connected --hangup--> completed
//	                   |                   |
//	                   +--state timeout----+------------> failed
//
// Every callback is traced as "state: type content". A caller may wait for
// the answer with the call "await_answer", which is postponed until the
// session is connected, completed or failed; "bye" ends a finished session.
type session struct {
	trace    trace
	routeFor time.Duration // the routing state timeout
	ringFor  time.Duration // the ringing state timeout
}

// callData is the session's data.
type callData struct {
	reason string // why the session failed
	tariff string // added by sessionV2's code change
}

func (s *session) Init(p *runtime.Process, arg any) statem.Result {
	return statem.Ok("setup", &callData{})
}

func (s *session) StateEnter() bool { return true }

func (s *session) States() statem.States {
	return statem.States{
		"setup":     s.setup,
		"routing":   s.routing,
		"ringing":   s.ringing,
		"connected": s.connected,
		"completed": s.completed,
		"failed":    s.failed,
	}
}

func (s *session) Terminate(p *runtime.Process, reason any, state, data any) {
	s.trace.add("terminate %s in %v", runtime.FormatReason(reason), state)
}

func (s *session) saw(state string, et statem.EventType, content any) {
	s.trace.add("%s: %v %v", state, et, content)
}

func (s *session) setup(p *runtime.Process, et statem.EventType, content any, data any) statem.Result {
	s.saw("setup", et, content)
	if et.Kind == statem.KindCall && content == "dial" {
		return statem.NextState("routing", data, statem.Reply(et.From, "dialling"))
	}
	return s.anyState("setup", et, content, data)
}

func (s *session) routing(p *runtime.Process, et statem.EventType, content any, data any) statem.Result {
	s.saw("routing", et, content)
	switch {
	case et.Kind == statem.KindEnter:
		return statem.KeepStateAndData(statem.StateTimeout(s.routeFor, "no_route"))
	case et.Kind == statem.KindCast && content == "routed":
		return statem.NextState("ringing", data)
	case et.Kind == statem.KindCast && content == "answer":
		// The far end can answer before routing reports back: handle the
		// answer once the session rings.
		return statem.KeepStateAndData(statem.Postpone())
	case et.Kind == statem.KindStateTimeout:
		return s.fail(content, data)
	}
	return s.anyState("routing", et, content, data)
}

func (s *session) ringing(p *runtime.Process, et statem.EventType, content any, data any) statem.Result {
	s.saw("ringing", et, content)
	switch {
	case et.Kind == statem.KindEnter:
		return statem.KeepStateAndData(statem.StateTimeout(s.ringFor, "no_answer"))
	case et.Kind == statem.KindCast && content == "answer":
		return statem.NextState("connected", data)
	case et.Kind == statem.KindStateTimeout:
		return s.fail(content, data)
	}
	return s.anyState("ringing", et, content, data)
}

func (s *session) connected(p *runtime.Process, et statem.EventType, content any, data any) statem.Result {
	s.saw("connected", et, content)
	switch {
	case et.Kind == statem.KindCast && content == "hangup":
		return statem.NextState("completed", data)
	case et.Kind == statem.KindCall && content == "await_answer":
		return statem.KeepStateAndData(statem.Reply(et.From, "connected"))
	}
	return s.anyState("connected", et, content, data)
}

func (s *session) completed(p *runtime.Process, et statem.EventType, content any, data any) statem.Result {
	s.saw("completed", et, content)
	return s.finished("completed", "completed", et, content, data)
}

func (s *session) failed(p *runtime.Process, et statem.EventType, content any, data any) statem.Result {
	s.saw("failed", et, content)
	return s.finished("failed", data.(*callData).reason, et, content, data)
}

// finished answers waiting callers with the outcome and ends on "bye".
func (s *session) finished(state, outcome string, et statem.EventType, content any, data any) statem.Result {
	switch {
	case et.Kind == statem.KindCall && content == "await_answer":
		return statem.KeepStateAndData(statem.Reply(et.From, outcome))
	case et.Kind == statem.KindCall && content == "bye":
		return statem.StopAndReply(runtime.Normal, data, statem.Reply(et.From, "bye"))
	}
	return s.anyState(state, et, content, data)
}

// anyState handles what every state handles alike.
func (s *session) anyState(state string, et statem.EventType, content any, data any) statem.Result {
	switch {
	case et.Kind == statem.KindCall && content == "state":
		return statem.KeepStateAndData(statem.Reply(et.From, state))
	case et.Kind == statem.KindCall && content == "await_answer":
		return statem.KeepStateAndData(statem.Postpone())
	}
	return statem.KeepStateAndData()
}

func (s *session) fail(reason any, data any) statem.Result {
	c := data.(*callData)
	c.reason = reason.(string)
	return statem.NextState("failed", c)
}

func TestCallSessionLifecycle(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	s := &session{trace: newTrace(), routeFor: time.Hour, ringFor: time.Hour}
	pid := start(t, n, s, statem.Options{})
	w := n.Monitor(pid)
	s.trace.expect(t, "setup: enter setup")

	answered := make(chan any, 1)
	go func() {
		v, err := statem.Call(n, pid, "await_answer", wait)
		if err != nil {
			v = err
		}
		answered <- v
	}()
	s.trace.expect(t, "setup: call await_answer")

	if got := call(t, n, pid, "dial"); got != "dialling" {
		t.Fatalf("dial: %v", got)
	}
	cast(t, n, pid, "routed")
	cast(t, n, pid, "answer")
	if got := <-answered; got != "connected" {
		t.Fatalf("await_answer: %v", got)
	}
	cast(t, n, pid, "hangup")
	if got := call(t, n, pid, "bye"); got != "bye" {
		t.Fatalf("bye: %v", got)
	}
	if d := down(t, w); d.Reason != runtime.Normal {
		t.Fatalf("exit %v", d.Reason)
	}
	// The waiting call is retried after each state change, and answered
	// once connected.
	s.trace.expect(t,
		"setup: call dial",
		"routing: enter setup",
		"routing: call await_answer",
		"routing: cast routed",
		"ringing: enter routing",
		"ringing: call await_answer",
		"ringing: cast answer",
		"connected: enter ringing",
		"connected: call await_answer",
		"connected: cast hangup",
		"completed: enter connected",
		"completed: call bye",
		"terminate normal in completed",
	)
}

func TestCallSessionAnswerDuringRoutingIsHandledOnceRinging(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	s := &session{trace: newTrace(), routeFor: time.Hour, ringFor: time.Hour}
	pid := start(t, n, s, statem.Options{})
	call(t, n, pid, "dial")
	cast(t, n, pid, "answer")
	cast(t, n, pid, "routed")
	if got := call(t, n, pid, "state"); got != "connected" {
		t.Fatalf("state %v", got)
	}
	s.trace.expect(t,
		"setup: enter setup",
		"setup: call dial",
		"routing: enter setup",
		"routing: cast answer",
		"routing: cast routed",
		"ringing: enter routing",
		"ringing: cast answer",
		"connected: enter ringing",
		"connected: call state",
	)
}

func TestCallSessionFailsWhenNobodyAnswers(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	s := &session{trace: newTrace(), routeFor: time.Hour, ringFor: time.Millisecond}
	pid := start(t, n, s, statem.Options{})
	call(t, n, pid, "dial")
	cast(t, n, pid, "routed")
	s.trace.expect(t,
		"setup: enter setup",
		"setup: call dial",
		"routing: enter setup",
		"routing: cast routed",
		"ringing: enter routing",
		"ringing: state_timeout no_answer",
		"failed: enter ringing",
	)
	if got := call(t, n, pid, "await_answer"); got != "no_answer" {
		t.Fatalf("await_answer: %v", got)
	}
}

// sessionV2 is the next version of session: connected calls carry a
// tariff, set by the code change, and hanging up reports it.
type sessionV2 struct {
	*session
	failChange bool
}

func (s *sessionV2) States() statem.States {
	states := s.session.States()
	states["connected"] = s.connected
	return states
}

func (s *sessionV2) connected(p *runtime.Process, et statem.EventType, content any, data any) statem.Result {
	r := s.session.connected(p, et, content, data)
	if et.Kind == statem.KindCast && content == "hangup" {
		s.trace.add("billed at %s", data.(*callData).tariff)
	}
	return r
}

func (s *sessionV2) CodeChange(oldVersion string, state, data, extra any) (any, any, error) {
	s.trace.add("code_change from version %s in %v", oldVersion, state)
	if s.failChange {
		return nil, nil, errors.New("tariff table missing")
	}
	next := *data.(*callData)
	next.tariff = extra.(string)
	return state, &next, nil
}

func TestCodeChange(t *testing.T) {
	connectedSession := func(t *testing.T, n *runtime.Node) (*session, runtime.PID) {
		s := &session{trace: newTrace(), routeFor: time.Hour, ringFor: time.Hour}
		pid := start(t, n, s, statem.Options{Version: "1"})
		call(t, n, pid, "dial")
		cast(t, n, pid, "routed")
		cast(t, n, pid, "answer")
		if got := call(t, n, pid, "state"); got != "connected" {
			t.Fatalf("state %v", got)
		}
		s.trace.expect(t, "setup: enter setup", "setup: call dial", "routing: enter setup", "routing: cast routed",
			"ringing: enter routing", "ringing: cast answer", "connected: enter ringing", "connected: call state")
		return s, pid
	}

	t.Run("the new module migrates the data of a suspended machine and runs from then on", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		s, pid := connectedSession(t, n)
		if err := sys.Suspend(n, pid, wait); err != nil {
			t.Fatal(err)
		}
		if err := sys.ChangeCode(n, pid, &sessionV2{session: s}, "2", "per-minute", wait); err != nil {
			t.Fatal(err)
		}
		if err := sys.Resume(n, pid, wait); err != nil {
			t.Fatal(err)
		}
		if v := pid.Info().Version; v != "2" {
			t.Fatalf("version %q", v)
		}
		got, err := sys.GetState(n, pid, wait)
		if err != nil {
			t.Fatal(err)
		}
		sd := got.(statem.StateData)
		if sd.State != "connected" || sd.Data.(*callData).tariff != "per-minute" {
			t.Fatalf("state after code change: %v %+v", sd.State, sd.Data)
		}
		cast(t, n, pid, "hangup")
		// No state enter call: a code change is not a state change.
		s.trace.expect(t,
			"code_change from version 1 in connected",
			"connected: cast hangup",
			"billed at per-minute",
			"completed: enter connected",
		)
	})

	t.Run("a failed code change keeps the old code and data", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		s, pid := connectedSession(t, n)
		if err := sys.Suspend(n, pid, wait); err != nil {
			t.Fatal(err)
		}
		err := sys.ChangeCode(n, pid, &sessionV2{session: s, failChange: true}, "2", "per-minute", wait)
		if err == nil || err.Error() != "tariff table missing" {
			t.Fatalf("got %v", err)
		}
		if err := sys.Resume(n, pid, wait); err != nil {
			t.Fatal(err)
		}
		if v := pid.Info().Version; v != "1" {
			t.Fatalf("version %q", v)
		}
		cast(t, n, pid, "hangup")
		s.trace.expect(t, "code_change from version 1 in connected", "connected: cast hangup", "completed: enter connected")
	})

	t.Run("code is changed only while suspended, and only to a gen_statem module", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		s, pid := connectedSession(t, n)
		if err := sys.ChangeCode(n, pid, &sessionV2{session: s}, "2", nil, wait); !errors.Is(err, runtime.ErrNotSuspended) {
			t.Fatalf("running: %v", err)
		}
		if err := sys.Suspend(n, pid, wait); err != nil {
			t.Fatal(err)
		}
		if err := sys.ChangeCode(n, pid, "not a module", "2", nil, wait); err == nil {
			t.Fatal("changed to a string")
		}
		if err := sys.ChangeCode(n, pid, initOnly{}, "2", nil, wait); !errors.Is(err, statem.ErrBadCallbackMode) {
			t.Fatalf("module without a callback mode: %v", err)
		}
	})
}

func TestSysState(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	s := &session{trace: newTrace(), routeFor: time.Hour, ringFor: time.Hour}
	pid := start(t, n, s, statem.Options{})

	got, err := sys.GetState(n, pid, wait)
	if err != nil || got.(statem.StateData).State != "setup" {
		t.Fatalf("get_state: %v, %v", got, err)
	}

	_, err = sys.ReplaceState(n, pid, func(v any) any {
		sd := v.(statem.StateData)
		return statem.StateData{State: "failed", Data: &callData{reason: fmt.Sprint("operator in ", sd.State)}}
	}, wait)
	if err != nil {
		t.Fatal(err)
	}
	if got := call(t, n, pid, "await_answer"); got != "operator in setup" {
		t.Fatalf("after replace_state: %v", got)
	}

	for _, bad := range []func(any) any{
		func(any) any { return "not StateData" },
		func(any) any { panic("broken fun") },
	} {
		if _, err := sys.ReplaceState(n, pid, bad, wait); err == nil {
			t.Fatal("a bad replace_state function was accepted")
		}
	}
	if got := call(t, n, pid, "await_answer"); got != "operator in setup" {
		t.Fatalf("a failed replace_state changed the machine: %v", got)
	}
	// Replacing the state is not a state change either.
	s.trace.expect(t, "setup: enter setup", "failed: call await_answer", "failed: call await_answer")
}
