package statem_test

import (
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/statem"
)

// wait bounds every wait in these tests; only a broken machine reaches it.
const wait = 5 * time.Second

// trace collects what a machine's callbacks saw, one line per callback, in
// the order the machine ran them.
type trace chan string

func newTrace() trace { return make(trace, 1000) }

func (tr trace) add(format string, args ...any) { tr <- fmt.Sprintf(format, args...) }

// expect reads the next len(want) lines and fails unless they are want.
func (tr trace) expect(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	for range want {
		select {
		case line := <-tr:
			got = append(got, line)
		case <-time.After(wait):
			t.Fatalf("trace stopped after %d lines:\n got: %s\nwant: %s", len(got), strings.Join(got, " | "), strings.Join(want, " | "))
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("trace:\n got: %s\nwant: %s", strings.Join(got, " | "), strings.Join(want, " | "))
	}
}

// empty fails if a line is waiting. Callers make sure anything that could
// have been traced already has been (Terminate runs before the DOWN).
func (tr trace) empty(t *testing.T) {
	t.Helper()
	select {
	case line := <-tr:
		t.Fatalf("unexpected trace line %q", line)
	default:
	}
}

// drainLines yields the lines already traced, without waiting.
func (tr trace) drainLines() func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for {
			select {
			case line := <-tr:
				if !yield(line) {
					return
				}
			default:
				return
			}
		}
	}
}

// handler is a HandleEvent written inline by a test.
type handler func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result

// script is a machine in the handle_event_function mode whose behaviour a
// test writes inline. It traces every callback as "state: type content",
// answers the call "sync" in any state (a barrier for tests: once its line
// is traced, everything sent before it has been handled), and traces
// Terminate.
type script struct {
	trace   trace
	initial any             // the initial state; "idle" when nil
	init    []statem.Action // Init's actions
	enter   bool            // state enter calls
	handle  handler         // every other event; nil keeps state and data
}

func (s *script) Init(p *runtime.Process, arg any) statem.Result {
	initial := s.initial
	if initial == nil {
		initial = "idle"
	}
	return statem.Ok(initial, nil, s.init...)
}

func (s *script) StateEnter() bool { return s.enter }

func (s *script) HandleEvent(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
	s.trace.add("%v: %v %v", state, et, content)
	if et.Kind == statem.KindCall && content == "sync" {
		return statem.KeepStateAndData(statem.Reply(et.From, "ok"))
	}
	if s.handle == nil {
		return statem.KeepStateAndData()
	}
	return s.handle(p, et, content, state, data)
}

func (s *script) Terminate(p *runtime.Process, reason any, state, data any) {
	s.trace.add("terminate %s in %v", runtime.FormatReason(reason), state)
}

func start(t testing.TB, n *runtime.Node, mod statem.Module, opts statem.Options) runtime.PID {
	t.Helper()
	pid, err := statem.Start(n, mod, nil, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return pid
}

func cast(t *testing.T, n *runtime.Node, to runtime.Target, msg any) {
	t.Helper()
	if err := statem.Cast(n, to, msg); err != nil {
		t.Fatalf("cast %v: %v", msg, err)
	}
}

func call(t *testing.T, n *runtime.Node, to runtime.Target, req any) any {
	t.Helper()
	v, err := statem.Call(n, to, req, wait)
	if err != nil {
		t.Fatalf("call %v: %v", req, err)
	}
	return v
}

func down(t *testing.T, w *runtime.Watch) runtime.DownMsg {
	t.Helper()
	select {
	case d := <-w.C:
		return d
	case <-time.After(wait):
		t.Fatalf("no DOWN for %v", w.Ref)
		return runtime.DownMsg{}
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
