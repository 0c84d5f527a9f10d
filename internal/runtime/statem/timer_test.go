package statem

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"observer/internal/runtime"
)

const wait = 5 * time.Second

// fakeClock gives a machine timers that fire only when a test fires them,
// so a test can make a timer's message race its cancel deterministically.
type fakeClock struct{ started chan *fakeTimer }

type fakeTimer struct {
	d       time.Duration
	fire    func() // sends the timer's message, as an expiry does
	stopped atomic.Bool
}

func (t *fakeTimer) Stop() bool { return !t.stopped.Swap(true) }

func (c *fakeClock) afterFunc(d time.Duration, f func()) stopper {
	t := &fakeTimer{d: d, fire: f}
	c.started <- t
	return t
}

func (c *fakeClock) next(t *testing.T) *fakeTimer {
	t.Helper()
	select {
	case ft := <-c.started:
		return ft
	case <-time.After(wait):
		t.Fatal("no timer started")
		return nil
	}
}

// timerMachine applies a cast of []Action in its state, moves to "away" on
// "leave", answers "sync", and reports the timeout events it gets.
type timerMachine struct{ timeouts chan string }

func (timerMachine) Init(*runtime.Process, any) Result { return Ok("here", nil) }

func (m timerMachine) HandleEvent(p *runtime.Process, et EventType, content, state, data any) Result {
	switch c := content.(type) {
	case []Action:
		return KeepStateAndData(c...)
	case string:
		switch c {
		case "leave":
			return NextState("away", nil)
		case "sync":
			return KeepStateAndData(Reply(et.From, nil))
		}
	}
	if et.Kind == KindTimeout || et.Kind == KindStateTimeout || et.Kind == KindGenericTimeout {
		m.timeouts <- fmt.Sprintf("%v: %v %v", state, et, content)
	}
	return KeepStateAndData()
}

func startFake(t *testing.T) (*runtime.Node, runtime.PID, *fakeClock, chan string) {
	t.Helper()
	n := runtime.NewNode(runtime.Options{})
	timeouts := make(chan string, 16)
	m, err := newMachine(timerMachine{timeouts}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{started: make(chan *fakeTimer, 16)}
	m.after = clock.afterFunc
	pid, err := n.SpawnBehaviour(m, runtime.SpawnOpts{})
	if pid, err = m.wait(n, pid, err, Options{}); err != nil {
		t.Fatal(err)
	}
	return n, pid, clock, timeouts
}

func send(t *testing.T, n *runtime.Node, pid runtime.PID, msgs ...any) {
	t.Helper()
	for _, msg := range msgs {
		if err := Cast(n, pid, msg); err != nil {
			t.Fatal(err)
		}
	}
	// Every cast above has been handled once the call is answered.
	if _, err := Call(n, pid, "sync", wait); err != nil {
		t.Fatal(err)
	}
}

func TestTimerMessages(t *testing.T) {
	t.Run("a running timer's message delivers its event", func(t *testing.T) {
		n, pid, clock, timeouts := startFake(t)
		send(t, n, pid, []Action{GenericTimeout("keepalive", time.Hour, "ping")})
		ft := clock.next(t)
		if ft.d != time.Hour {
			t.Fatalf("timer of %v", ft.d)
		}
		ft.fire()
		send(t, n, pid)
		if got := <-timeouts; got != "here: {timeout,keepalive} ping" {
			t.Fatalf("got %q", got)
		}
	})

	// Each case cancels a running timer, then fires it anyway, as a timer
	// that expired just before its cancel does: the timer must have been
	// stopped and its message ignored.
	tests := []struct {
		name   string
		set    Action
		cancel any
	}{
		{"a state change cancels the state timeout", StateTimeout(time.Hour, "late"), "leave"},
		{"any event cancels the event timeout", EventTimeout(time.Hour, "idle"), "poke"},
		{"cancel stops a named timeout", GenericTimeout("g", time.Hour, "late"), []Action{CancelGenericTimeout("g")}},
		{"infinity stops a named timeout", GenericTimeout("g", time.Hour, "late"), []Action{GenericTimeout("g", runtime.Infinity, nil)}},
		{"cancel stops the state timeout", StateTimeout(time.Hour, "late"), []Action{CancelStateTimeout()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, pid, clock, timeouts := startFake(t)
			send(t, n, pid, []Action{tt.set})
			ft := clock.next(t)
			send(t, n, pid, tt.cancel)
			if !ft.stopped.Load() {
				t.Fatal("the timer was not stopped")
			}
			ft.fire()
			send(t, n, pid)
			select {
			case got := <-timeouts:
				t.Fatalf("a cancelled timer delivered %q", got)
			default:
			}
		})
	}

	t.Run("setting a timer again stops the old one, whose message is ignored", func(t *testing.T) {
		n, pid, clock, timeouts := startFake(t)
		send(t, n, pid, []Action{StateTimeout(time.Hour, "first")})
		first := clock.next(t)
		send(t, n, pid, []Action{StateTimeout(time.Hour, "second")})
		second := clock.next(t)
		if !first.stopped.Load() || second.stopped.Load() {
			t.Fatalf("stopped: first %v, second %v", first.stopped.Load(), second.stopped.Load())
		}
		first.fire()
		second.fire()
		send(t, n, pid)
		if got := <-timeouts; got != "here: state_timeout second" {
			t.Fatalf("got %q", got)
		}
		select {
		case got := <-timeouts:
			t.Fatalf("also got %q", got)
		default:
		}
	})

	t.Run("stopping the machine stops its timers", func(t *testing.T) {
		n, pid, clock, _ := startFake(t)
		send(t, n, pid, []Action{StateTimeout(time.Hour, "s"), GenericTimeout("g", time.Hour, "g"), EventTimeout(time.Hour, "e")})
		timers := []*fakeTimer{clock.next(t), clock.next(t), clock.next(t)}
		if err := Stop(n, pid, runtime.Shutdown, wait); err != nil {
			t.Fatal(err)
		}
		for _, ft := range timers {
			if !ft.stopped.Load() {
				t.Fatalf("timer of %v left running", ft.d)
			}
		}
	})
}
