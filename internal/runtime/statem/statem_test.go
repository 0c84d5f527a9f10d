package statem_test

import (
	"errors"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"observer/internal/runtime"
	"observer/internal/runtime/statem"
)

// keep is a handler result for events a case does not care about.
var keep = statem.KeepStateAndData()

func TestEventOrder(t *testing.T) {
	// busyUntilFree postpones every cast in "busy" but "free", which opens.
	busyUntilFree := func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
		switch {
		case et.Kind == statem.KindEnter:
			return keep
		case state == "busy" && content == "free":
			return statem.NextState("open", nil)
		case state == "busy":
			return statem.KeepStateAndData(statem.Postpone())
		}
		return keep
	}
	tests := []struct {
		name   string
		m      *script
		casts  []any
		expect []string
	}{
		{
			name: "inserted events run in the order given, before messages already queued",
			m: &script{handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
				switch content {
				case "go":
					return statem.KeepStateAndData(
						statem.NextEvent(statem.KindInternal, "a"),
						statem.NextEvent(statem.KindInternal, "b"))
				case "a":
					return statem.KeepStateAndData(statem.NextEvent(statem.KindInternal, "a1"))
				}
				return keep
			}},
			casts: []any{"go", "later"},
			expect: []string{
				"idle: cast go",
				"idle: internal a",
				"idle: internal a1",
				"idle: internal b",
				"idle: cast later",
			},
		},
		{
			name:  "postponed events are retried in arrival order after a state change, before newer messages",
			m:     &script{initial: "busy", handle: busyUntilFree},
			casts: []any{1, 2, "free", 3},
			expect: []string{
				"busy: cast 1",
				"busy: cast 2",
				"busy: cast free",
				"open: cast 1",
				"open: cast 2",
				"open: cast 3",
			},
		},
		{
			name: "keeping or repeating the state does not retry postponed events",
			m: &script{initial: "busy", handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
				switch content {
				case "stay":
					return statem.KeepStateAndData()
				case "again":
					return statem.RepeatStateAndData()
				case "same":
					return statem.NextState("busy", nil)
				}
				return busyUntilFree(p, et, content, state, data)
			}},
			casts: []any{1, "stay", "again", "same", "free"},
			expect: []string{
				"busy: cast 1",
				"busy: cast stay",
				"busy: cast again",
				"busy: cast same",
				"busy: cast free",
				"open: cast 1",
			},
		},
		{
			name: "inserted events come before retried postponed events",
			m: &script{initial: "busy", handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
				if content == "free" {
					return statem.NextState("open", nil, statem.NextEvent(statem.KindInternal, "first"))
				}
				return busyUntilFree(p, et, content, state, data)
			}},
			casts: []any{1, "free"},
			expect: []string{
				"busy: cast 1",
				"busy: cast free",
				"open: internal first",
				"open: cast 1",
			},
		},
		{
			name:  "the state enter call comes before the retried events",
			m:     &script{initial: "busy", enter: true, handle: busyUntilFree},
			casts: []any{1, "free"},
			expect: []string{
				"busy: enter busy",
				"busy: cast 1",
				"busy: cast free",
				"open: enter busy",
				"open: cast 1",
			},
		},
		{
			name: "an event postponed again waits for the next state change",
			m: &script{initial: "busy", handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
				switch {
				case content == "half":
					return statem.NextState("half", nil)
				case state == "half" && content == "free":
					return statem.NextState("open", nil)
				case state == "half":
					return statem.KeepStateAndData(statem.Postpone())
				}
				return busyUntilFree(p, et, content, state, data)
			}},
			casts: []any{1, "half", "free"},
			expect: []string{
				"busy: cast 1",
				"busy: cast half",
				"half: cast 1",
				"half: cast free",
				"open: cast 1",
			},
		},
		{
			name: "a timeout of zero fires after queued events but before the next message",
			m: &script{handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
				if content == "go" {
					return statem.KeepStateAndData(
						statem.StateTimeout(0, "now"),
						statem.NextEvent(statem.KindInternal, "queued"))
				}
				return keep
			}},
			casts: []any{"go", "later"},
			expect: []string{
				"idle: cast go",
				"idle: internal queued",
				"idle: state_timeout now",
				"idle: cast later",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			tt.m.trace = newTrace()
			pid := start(t, n, tt.m, statem.Options{})
			for _, c := range tt.casts {
				cast(t, n, pid, c)
			}
			tt.m.trace.expect(t, tt.expect...)
		})
	}

	t.Run("an inserted event may be a call, answered from where it is handled", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		m := &script{trace: newTrace(), handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
			switch {
			case et.Kind == statem.KindCall && state == "idle":
				// Handle the same call again in "open".
				return statem.NextState("open", nil, statem.NextEventType(et, content))
			case et.Kind == statem.KindCall:
				return statem.KeepStateAndData(statem.Reply(et.From, "answered in open"))
			}
			return keep
		}}
		pid := start(t, n, m, statem.Options{})
		if got := call(t, n, pid, "ask"); got != "answered in open" {
			t.Fatalf("call got %v", got)
		}
		m.trace.expect(t, "idle: call ask", "open: call ask")
	})
}

// timed is a machine for the timeout cases: "go" changes to state "b"
// with the actions the case gives, "leave" changes to "c", and a cast of
// []statem.Action applies those actions in the current state.
func timed(onGo ...statem.Action) *script {
	return &script{handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
		switch c := content.(type) {
		case []statem.Action:
			return statem.KeepStateAndData(c...)
		case string:
			switch c {
			case "go":
				return statem.NextState("b", nil, onGo...)
			case "leave":
				return statem.NextState("c", nil)
			}
		}
		return keep
	}}
}

// acts reads better than []statem.Action{...} in a cast.
func acts(a ...statem.Action) []statem.Action { return a }

func TestTimeouts(t *testing.T) {
	const never = time.Hour // a timer a case expects to be cancelled or replaced; it never fires during a test
	const soon = time.Millisecond

	tests := []struct {
		name   string
		m      *script
		casts  []any
		expect []string
	}{
		{
			name:  "an event timeout fires when no event comes",
			m:     timed(),
			casts: []any{acts(statem.EventTimeout(soon, "idle"))},
			expect: []string{
				"idle: cast [timeout 1ms idle]",
				"idle: timeout idle",
			},
		},
		{
			name:  "any event cancels the event timeout, an inserted one too",
			m:     timed(),
			casts: []any{acts(statem.EventTimeout(0, "idle"), statem.NextEvent(statem.KindInternal, "poke"))},
			expect: []string{
				"idle: cast [timeout 0s idle next_event internal poke]",
				"idle: internal poke",
			},
		},
		{
			name:  "a state timeout set in a state change fires in the new state",
			m:     timed(statem.StateTimeout(soon, "late")),
			casts: []any{"go"},
			expect: []string{
				"idle: cast go",
				"b: state_timeout late",
			},
		},
		{
			// Update starts a timeout that fires at once only when none runs:
			// the probe's event shows the old one is gone.
			name:  "a state change cancels the state timeout",
			m:     timed(statem.StateTimeout(never, "never")),
			casts: []any{"go", "leave", acts(statem.UpdateStateTimeout("probe"))},
			expect: []string{
				"idle: cast go",
				"b: cast leave",
				"c: cast [state_timeout update probe]",
				"c: state_timeout probe",
			},
		},
		{
			name:  "keeping the state keeps the state timeout running",
			m:     timed(statem.StateTimeout(never, "never")),
			casts: []any{"go", "stay", acts(statem.UpdateStateTimeout("probe"))},
			expect: []string{
				"idle: cast go",
				"b: cast stay",
				"b: cast [state_timeout update probe]",
			},
		},
		{
			name:  "setting the state timeout again restarts it with the new content",
			m:     timed(statem.StateTimeout(never, "first")),
			casts: []any{"go", acts(statem.StateTimeout(soon, "second"))},
			expect: []string{
				"idle: cast go",
				"b: cast [state_timeout 1ms second]",
				"b: state_timeout second",
			},
		},
		{
			name:  "a state timeout of infinity cancels it",
			m:     timed(statem.StateTimeout(never, "never")),
			casts: []any{"go", acts(statem.StateTimeout(runtime.Infinity, "x")), acts(statem.UpdateStateTimeout("probe"))},
			expect: []string{
				"idle: cast go",
				"b: cast [state_timeout cancel]",
				"b: cast [state_timeout update probe]",
				"b: state_timeout probe",
			},
		},
		{
			// The state change is an inserted event, handled before the
			// timer's message can be.
			name: "a named timeout fires with its name and outlives state changes",
			m:    timed(),
			casts: []any{
				acts(statem.GenericTimeout("keepalive", soon, "ping"), statem.NextEvent(statem.KindInternal, "go")),
			},
			expect: []string{
				"idle: cast [{timeout,keepalive} 1ms ping next_event internal go]",
				"idle: internal go",
				"b: {timeout,keepalive} ping",
			},
		},
		{
			name: "named timeouts are separate timers",
			m:    timed(),
			casts: []any{
				acts(statem.GenericTimeout("a", never, "a"), statem.GenericTimeout("b", never, "b")),
				acts(statem.CancelGenericTimeout("a")),
				acts(statem.UpdateGenericTimeout("b", "b is running"), statem.UpdateGenericTimeout("a", "a was cancelled")),
			},
			expect: []string{
				"idle: cast [{timeout,a} 1h0m0s a {timeout,b} 1h0m0s b]",
				"idle: cast [{timeout,a} cancel]",
				"idle: cast [{timeout,b} update b is running {timeout,a} update a was cancelled]",
				"idle: {timeout,a} a was cancelled",
			},
		},
		{
			// The update runs before the machine reads its mailbox again, so
			// it lands even if the timer has fired and its message waits.
			name: "updating a named timeout changes what it delivers, not when",
			m: &script{handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
				switch content {
				case "arm":
					return statem.KeepStateAndData(
						statem.GenericTimeout("keepalive", soon, "ping"),
						statem.NextEvent(statem.KindInternal, "update"))
				case "update":
					return statem.KeepStateAndData(statem.UpdateGenericTimeout("keepalive", "pong"))
				}
				return keep
			}},
			casts: []any{"arm"},
			expect: []string{
				"idle: cast arm",
				"idle: internal update",
				"idle: {timeout,keepalive} pong",
			},
		},
		{
			name: "setting a named timeout to infinity cancels it",
			m:    timed(),
			casts: []any{
				acts(statem.GenericTimeout("t", never, "never")),
				acts(statem.GenericTimeout("t", runtime.Infinity, nil)),
				acts(statem.UpdateGenericTimeout("t", "probe")),
			},
			expect: []string{
				"idle: cast [{timeout,t} 1h0m0s never]",
				"idle: cast [{timeout,t} cancel]",
				"idle: cast [{timeout,t} update probe]",
				"idle: {timeout,t} probe",
			},
		},
		{
			name: "for one timer only the last action counts",
			m:    timed(),
			casts: []any{
				acts(statem.StateTimeout(0, "first"), statem.CancelStateTimeout(), statem.StateTimeout(0, "last")),
			},
			expect: []string{
				"idle: cast [state_timeout 0s first state_timeout cancel state_timeout 0s last]",
				"idle: state_timeout last",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			tt.m.trace = newTrace()
			pid := start(t, n, tt.m, statem.Options{})
			for _, c := range tt.casts {
				cast(t, n, pid, c)
			}
			tt.m.trace.expect(t, tt.expect...)
			// Nothing else was handled: no cancelled timer fired meanwhile.
			call(t, n, pid, "sync")
			tt.m.trace.expect(t, lastState(tt.expect)+": call sync")
		})
	}
}

// lastState is the state of the last expected trace line.
func lastState(lines []string) string {
	state, _, _ := strings.Cut(lines[len(lines)-1], ":")
	return state
}

func TestStateEnterCalls(t *testing.T) {
	t.Run("the initial state is entered from itself, and each state change enters the new state", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		m := &script{trace: newTrace(), enter: true, handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
			switch content {
			case "go":
				return statem.NextState("b", nil)
			case "same":
				return statem.NextState(state, nil)
			case "repeat":
				return statem.RepeatStateAndData()
			}
			return keep
		}}
		pid := start(t, n, m, statem.Options{})
		cast(t, n, pid, "go")
		cast(t, n, pid, "same")
		cast(t, n, pid, "repeat")
		call(t, n, pid, "sync")
		m.trace.expect(t,
			"idle: enter idle",
			"idle: cast go",
			"b: enter idle",
			"b: cast same",
			"b: cast repeat",
			"b: enter b",
			"b: call sync",
		)
	})

	t.Run("a state enter call may reply and set timers", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		m := &script{trace: newTrace(), enter: true, handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
			switch {
			case et.Kind == statem.KindEnter && state == "b":
				// Answer the call that moved the machine here.
				return statem.KeepStateAndData(statem.Reply(data.(runtime.From), "entered b"), statem.StateTimeout(0, "entered"))
			case et.Kind == statem.KindCall && content == "go":
				return statem.NextState("b", et.From)
			}
			return keep
		}}
		pid := start(t, n, m, statem.Options{})
		if got := call(t, n, pid, "go"); got != "entered b" {
			t.Fatalf("got %v", got)
		}
		m.trace.expect(t, "idle: enter idle", "idle: call go", "b: enter idle", "b: state_timeout entered")
	})

	// OTP's rules: an enter call may not change the state or add events.
	forbidden := []struct {
		name   string
		result statem.Result
		want   error
	}{
		{"a state enter call may not change the state", statem.NextState("elsewhere", nil), statem.ErrBadResult},
		{"a state enter call may not postpone", statem.KeepStateAndData(statem.Postpone()), statem.ErrBadAction},
		{"a state enter call may not insert events", statem.KeepStateAndData(statem.NextEvent(statem.KindInternal, "x")), statem.ErrBadAction},
	}
	for _, tt := range forbidden {
		t.Run(tt.name, func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			m := &script{trace: newTrace(), enter: true, handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
				switch {
				case et.Kind == statem.KindEnter && state == "b":
					return tt.result
				case content == "go":
					return statem.NextState("b", nil)
				}
				return keep
			}}
			pid := start(t, n, m, statem.Options{})
			w := n.Monitor(pid)
			cast(t, n, pid, "go")
			d := down(t, w)
			if err, _ := d.Reason.(error); !errors.Is(err, tt.want) {
				t.Fatalf("exit reason %v, want %v", d.Reason, tt.want)
			}
			m.trace.expect(t, "idle: enter idle", "idle: cast go", "b: enter idle", "terminate "+runtime.FormatReason(d.Reason)+" in b")
		})
	}
}

func TestInit(t *testing.T) {
	t.Run("Init's actions run before the initial state enter call; inserted events follow it", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		m := &script{trace: newTrace(), enter: true, init: []statem.Action{
			statem.NextEvent(statem.KindInternal, "boot"),
			statem.Postpone(), // ignored: there is no event to postpone
			statem.StateTimeout(0, "booted"),
		}}
		pid := start(t, n, m, statem.Options{Name: "booting"})
		if where, _ := n.Whereis("booting"); where != pid {
			t.Fatalf("registered as %v, started %v", where, pid)
		}
		call(t, n, runtime.Name("booting"), "sync")
		m.trace.expect(t, "idle: enter idle", "idle: internal boot", "idle: state_timeout booted", "idle: call sync")
		if info := pid.Info(); info.Behaviour != "gen_statem" || info.Module != "script" || info.Version != "1" {
			t.Fatalf("module info %+v", info)
		}
	})

	failing := []struct {
		name  string
		init  func(p *runtime.Process, arg any) statem.Result
		check func(t *testing.T, err error)
	}{
		{
			name: "Ignore fails the start with ErrIgnore",
			init: func(*runtime.Process, any) statem.Result { return statem.Ignore() },
			check: func(t *testing.T, err error) {
				if !errors.Is(err, statem.ErrIgnore) {
					t.Fatalf("got %v", err)
				}
			},
		},
		{
			name: "StopMachine fails the start with its reason",
			init: func(*runtime.Process, any) statem.Result { return statem.StopMachine(runtime.Atom("no_config"), nil) },
			check: func(t *testing.T, err error) {
				var se *statem.StartError
				if !errors.As(err, &se) || se.Reason != runtime.Atom("no_config") {
					t.Fatalf("got %v", err)
				}
			},
		},
		{
			name: "a panic fails the start with the panic",
			init: func(*runtime.Process, any) statem.Result { panic("no database") },
			check: func(t *testing.T, err error) {
				var pe *runtime.PanicError
				if !errors.As(err, &pe) || pe.Value != "no database" {
					t.Fatalf("got %v", err)
				}
			},
		},
		{
			name: "a transition is not a result for Init",
			init: func(*runtime.Process, any) statem.Result { return statem.KeepStateAndData() },
			check: func(t *testing.T, err error) {
				if !errors.Is(err, statem.ErrBadResult) {
					t.Fatalf("got %v", err)
				}
			},
		},
	}
	for _, tt := range failing {
		t.Run(tt.name, func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			_, err := statem.Start(n, initFunc{tt.init}, nil, statem.Options{Name: "failing"})
			tt.check(t, err)
			if _, ok := n.Whereis("failing"); ok {
				t.Fatal("the name is still registered")
			}
			if c := n.ProcessCount(); c != 0 {
				t.Fatalf("%d processes left", c)
			}
		})
	}

	t.Run("a failed StartLink sends the parent no exit signal", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		got := make(chan any, 2)
		_, err := n.Spawn(func(p *runtime.Process) {
			_, err := statem.StartLink(p, initFunc{func(*runtime.Process, any) statem.Result {
				return statem.StopMachine(runtime.Atom("bad"), nil)
			}}, nil, statem.Options{})
			got <- err
			// An EXIT, had there been one, is in the mailbox once the
			// machine is gone.
			for p.Node().ProcessCount() > 1 {
				goruntime.Gosched()
			}
			p.Send(p.Self(), "marker")
			m, _ := p.Receive(runtime.Infinity)
			got <- m
		}, runtime.SpawnOpts{TrapExit: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-got; err == nil {
			t.Fatal("start succeeded")
		}
		if m := <-got; m != "marker" {
			t.Fatalf("parent received %v first", m)
		}
	})

	t.Run("a module must have exactly one callback mode", func(t *testing.T) {
		n := runtime.NewNode(runtime.Options{})
		for _, mod := range []statem.Module{initOnly{}, both{}, emptyStates{}} {
			if _, err := statem.Start(n, mod, nil, statem.Options{}); !errors.Is(err, statem.ErrBadCallbackMode) {
				t.Errorf("%T: got %v", mod, err)
			}
		}
	})
}

// initOnly has an Init and no callback mode.
type initOnly struct {
	init func(p *runtime.Process, arg any) statem.Result
}

func (m initOnly) Init(p *runtime.Process, arg any) statem.Result { return m.init(p, arg) }

// initFunc is a machine whose Init a case writes inline.
type initFunc struct {
	init func(p *runtime.Process, arg any) statem.Result
}

func (m initFunc) Init(p *runtime.Process, arg any) statem.Result { return m.init(p, arg) }

func (initFunc) HandleEvent(*runtime.Process, statem.EventType, any, any, any) statem.Result {
	return keep
}

// both has both callback modes.
type both struct{ initOnly }

func (both) HandleEvent(*runtime.Process, statem.EventType, any, any, any) statem.Result {
	return keep
}
func (both) States() statem.States { return statem.States{"idle": nil} }

type emptyStates struct{ initOnly }

func (emptyStates) States() statem.States { return nil }

func TestCallFailureKinds(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})

	t.Run("noproc for a machine that is gone or a name nobody has", func(t *testing.T) {
		pid := start(t, n, &script{trace: newTrace()}, statem.Options{})
		if err := statem.Stop(n, pid, runtime.Normal, wait); err != nil {
			t.Fatal(err)
		}
		for _, to := range []runtime.Target{pid, runtime.Name("nobody")} {
			if _, err := statem.Call(n, to, "sync", wait); !errors.Is(err, runtime.ErrNoProc) {
				t.Errorf("call %v: %v", to, err)
			}
		}
	})

	t.Run("timeout when the machine does not answer in time", func(t *testing.T) {
		m := &script{trace: newTrace(), handle: func(*runtime.Process, statem.EventType, any, any, any) statem.Result {
			return statem.KeepStateAndData(statem.Postpone()) // never answered: the state never changes
		}}
		pid := start(t, n, m, statem.Options{})
		if _, err := statem.Call(n, pid, "hello", 10*time.Millisecond); !errors.Is(err, runtime.ErrTimeout) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("an exit error when the machine exits during the call", func(t *testing.T) {
		m := &script{trace: newTrace(), handle: func(*runtime.Process, statem.EventType, any, any, any) statem.Result {
			panic("dropped the call")
		}}
		pid := start(t, n, m, statem.Options{})
		_, err := statem.Call(n, pid, "hello", wait)
		var ee *runtime.ExitError
		var pe *runtime.PanicError
		if !errors.As(err, &ee) || ee.PID != pid || !errors.As(err, &pe) || pe.Value != "dropped the call" {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("calling_self when a machine calls itself", func(t *testing.T) {
		m := &script{trace: newTrace(), handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
			if content == "call yourself" {
				_, err := statem.Call(p, p.Self(), "sync", wait)
				return statem.KeepStateAndData(statem.Reply(et.From, err))
			}
			return keep
		}}
		pid := start(t, n, m, statem.Options{})
		if err, _ := call(t, n, pid, "call yourself").(error); !errors.Is(err, runtime.ErrCallingSelf) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestStopAndReply(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	m := &script{trace: newTrace(), handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
		switch content {
		case "first":
			return statem.KeepState(et.From) // answered when the machine stops
		case "last":
			return statem.StopAndReply(runtime.Shutdown, "replied",
				statem.Reply(data.(runtime.From), "bye first"),
				statem.Reply(et.From, "bye last"))
		}
		return keep
	}}
	pid := start(t, n, m, statem.Options{})
	w := n.Monitor(pid)
	firstReply := make(chan any, 1)
	go func() {
		v, err := statem.Call(n, pid, "first", wait)
		if err != nil {
			v = err
		}
		firstReply <- v
	}()
	m.trace.expect(t, "idle: call first")
	if got := call(t, n, pid, "last"); got != "bye last" {
		t.Fatalf("last got %v", got)
	}
	if got := <-firstReply; got != "bye first" {
		t.Fatalf("first got %v", got)
	}
	if d := down(t, w); d.Reason != runtime.Shutdown {
		t.Fatalf("exit %v", d.Reason)
	}
	m.trace.expect(t, "idle: call last", "terminate shutdown in idle")
}

func TestTerminate(t *testing.T) {
	// Each case makes a machine "m" exit; "parent" is the process it was
	// started linked to.
	tests := []struct {
		name      string
		trapExit  bool
		exit      func(n *runtime.Node, m, parent runtime.PID) error
		reason    string
		terminate bool
	}{
		{
			name:   "StopMachine runs terminate",
			exit:   func(n *runtime.Node, m, _ runtime.PID) error { return statem.Cast(n, m, "stop") },
			reason: "shutdown", terminate: true,
		},
		{
			name:   "a panic runs terminate with the panic",
			exit:   func(n *runtime.Node, m, _ runtime.PID) error { return statem.Cast(n, m, "panic") },
			reason: "panic: boom", terminate: true,
		},
		{
			name:   "an invalid result runs terminate",
			exit:   func(n *runtime.Node, m, _ runtime.PID) error { return statem.Cast(n, m, "zero") },
			reason: "statem: bad callback result: the zero Result from a state callback", terminate: true,
		},
		{
			name: "Stop runs terminate and returns once the machine is gone",
			exit: func(n *runtime.Node, m, _ runtime.PID) error {
				if err := statem.Stop(n, m, runtime.Atom("maintenance"), wait); err != nil {
					return err
				}
				if m.Alive() {
					return errors.New("alive after Stop")
				}
				return nil
			},
			reason: "maintenance", terminate: true,
		},
		{
			name:     "the parent's exit runs terminate when trapping exits",
			trapExit: true,
			exit: func(n *runtime.Node, _, parent runtime.PID) error {
				n.Exit(parent, runtime.Atom("parent_died"))
				return nil
			},
			reason: "parent_died", terminate: true,
		},
		{
			name: "the parent's exit skips terminate when not trapping exits",
			exit: func(n *runtime.Node, _, parent runtime.PID) error {
				n.Exit(parent, runtime.Atom("parent_died"))
				return nil
			},
			reason: "parent_died",
		},
		{
			name:     "another linked process's exit is only an info event to a trapping machine",
			trapExit: true,
			exit: func(n *runtime.Node, m, _ runtime.PID) error {
				return statem.Cast(n, m, "link to a dying process")
			},
			reason: "shutdown", terminate: true,
		},
		{
			name:   "Process.Exit skips terminate, as in genserver",
			exit:   func(n *runtime.Node, m, _ runtime.PID) error { return statem.Cast(n, m, "exit") },
			reason: "gone",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := runtime.NewNode(runtime.Options{})
			tr := newTrace()
			m := &script{trace: tr, handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
				switch c := content.(type) {
				case runtime.ExitMsg:
					return statem.StopMachine(runtime.Shutdown, nil)
				case string:
					switch c {
					case "stop":
						return statem.StopMachine(runtime.Shutdown, nil)
					case "panic":
						panic("boom")
					case "zero":
						return statem.Result{}
					case "exit":
						p.Exit(runtime.Atom("gone"))
					case "link to a dying process":
						p.Spawn(func(*runtime.Process) {}, runtime.SpawnOpts{Link: true})
					}
				}
				return keep
			}}
			pids := make(chan runtime.PID, 1)
			parent, err := n.Spawn(func(p *runtime.Process) {
				pid, err := statem.StartLink(p, m, nil, statem.Options{TrapExit: tt.trapExit})
				if err != nil {
					panic(err)
				}
				pids <- pid
				p.Receive(runtime.Infinity)
			}, runtime.SpawnOpts{})
			if err != nil {
				t.Fatal(err)
			}
			pid := <-pids
			w := n.Monitor(pid)
			if err := tt.exit(n, pid, parent); err != nil {
				t.Fatal(err)
			}
			d := down(t, w)
			if got := runtime.FormatReason(d.Reason); got != tt.reason {
				t.Fatalf("exit reason %q, want %q", got, tt.reason)
			}
			for line := range tr.drainLines() {
				if line == "terminate "+tt.reason+" in idle" {
					if !tt.terminate {
						t.Fatalf("terminate ran: %q", line)
					}
					return
				}
			}
			if tt.terminate {
				t.Fatal("terminate did not run")
			}
		})
	}
}

// cleanupFails is a script whose Terminate panics.
type cleanupFails struct{ *script }

func (m cleanupFails) Terminate(p *runtime.Process, reason any, state, data any) {
	m.script.Terminate(p, reason, state, data)
	panic("cleanup failed")
}

func TestTerminateThatPanicsRunsOnceAndStopReportsIt(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	m := cleanupFails{&script{trace: newTrace()}}
	pid := start(t, n, m, statem.Options{})
	w := n.Monitor(pid)
	err := statem.Stop(n, pid, runtime.Shutdown, wait)
	var pe *runtime.PanicError
	if !errors.As(err, &pe) || pe.Value != "cleanup failed" {
		t.Fatalf("Stop: %v", err)
	}
	down(t, w)
	m.trace.expect(t, "terminate shutdown in idle")
	m.trace.empty(t)
}

// payload is data whose collection a test watches.
type payload struct{ _ [64]byte }

// longTimers starts with an hour's state and named timeouts and hands out
// a weak pointer to its data.
type longTimers struct{ data chan weak.Pointer[payload] }

func (m longTimers) Init(*runtime.Process, any) statem.Result {
	d := &payload{}
	m.data <- weak.Make(d)
	return statem.Ok("idle", d, statem.StateTimeout(time.Hour, "s"), statem.GenericTimeout("g", time.Hour, "g"))
}

func (longTimers) HandleEvent(*runtime.Process, statem.EventType, any, any, any) statem.Result {
	return keep
}

func TestKilledMachineIsNotKeptAliveByItsTimers(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	data := make(chan weak.Pointer[payload], 1)
	func() {
		pid := start(t, n, longTimers{data}, statem.Options{})
		w := n.Monitor(pid)
		n.Exit(pid, runtime.Kill) // no Terminate, so the timers are not stopped
		down(t, w)
	}()
	d := <-data
	for range 10 {
		if d.Value() == nil {
			return
		}
		goruntime.GC()
	}
	t.Fatal("the killed machine's data is still reachable")
}

func TestHibernate(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	m := &script{trace: newTrace(), handle: func(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
		if content == "sleep" {
			return statem.KeepStateAndData(statem.Hibernate())
		}
		return keep
	}}
	pid := start(t, n, m, statem.Options{})
	cast(t, n, pid, "sleep")
	waitFor(t, "the machine hibernates", func() bool { return pid.Info().Status == runtime.StatusHibernating })
	if got := call(t, n, pid, "sync"); got != "ok" {
		t.Fatalf("after waking: %v", got)
	}
	if s := pid.Info().Status; s == runtime.StatusHibernating {
		t.Fatalf("status %v after a transition without Hibernate", s)
	}
}

// echo answers every call with its request, in either callback mode.
type echo struct{}

func (echo) Init(*runtime.Process, any) statem.Result { return statem.Ok("ready", nil) }

func (echo) HandleEvent(p *runtime.Process, et statem.EventType, content, state, data any) statem.Result {
	return statem.KeepStateAndData(statem.Reply(et.From, content))
}

type echoStates struct{}

func (echoStates) Init(*runtime.Process, any) statem.Result { return statem.Ok("ready", nil) }

func (echoStates) States() statem.States {
	return statem.States{"ready": func(p *runtime.Process, et statem.EventType, content, data any) statem.Result {
		return statem.KeepStateAndData(statem.Reply(et.From, content))
	}}
}

// BenchmarkCall measures a call's round trip through a state machine, from
// outside any process: request, callback, Reply action, reply.
func BenchmarkCall(b *testing.B) {
	for _, bc := range []struct {
		name string
		mod  statem.Module
	}{
		{"handle_event_function", echo{}},
		{"state_functions", echoStates{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := runtime.NewNode(runtime.Options{})
			pid := start(b, n, bc.mod, statem.Options{})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := statem.Call(n, pid, "ping", wait); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
