package runtime

import (
	"errors"
	"testing"
	"time"
)

// starter is a behaviour whose Init and InitContinue report where they run
// and can exit in each way under test.
type starter struct {
	initGoroutine chan string // "init" once Init has run
	cont          bool        // ask for InitContinue
	contRan       chan struct{}
	exitInInit    any // ExitOnReturn from Init with this reason
	exitOnMsg     any // ExitOnReturn from Handle on the message "stop"
	handled       chan any
}

func (s *starter) Init(p *Process) {
	s.initGoroutine <- "init"
	if s.exitInInit != nil {
		p.ExitOnReturn(s.exitInInit)
		return
	}
	if s.cont {
		p.ContinueAfterInit()
	}
}

func (s *starter) InitContinue(p *Process) { close(s.contRan) }

func (s *starter) Handle(p *Process, msg any) {
	s.handled <- msg
	if msg == "stop" {
		p.ExitOnReturn(s.exitOnMsg)
	}
}

func newStarter() *starter {
	return &starter{initGoroutine: make(chan string, 1), contRan: make(chan struct{}), handled: make(chan any, 16)}
}

// Init has run when SpawnInit returns, before any worker could have run it,
// and InitContinue runs after, before the messages already queued.
func TestSpawnInitRunsInitBeforeReturning(t *testing.T) {
	n := NewNode(Options{})
	s := newStarter()
	s.cont = true
	pid, exited, _, err := n.SpawnInit(s, SpawnOpts{Name: "starter"})
	if err != nil || exited {
		t.Fatalf("SpawnInit: exited %v, err %v", exited, err)
	}
	select {
	case <-s.initGoroutine:
	default:
		t.Fatal("Init had not run when SpawnInit returned")
	}
	if err := n.Send(pid, "hello"); err != nil {
		t.Fatal(err)
	}
	<-s.contRan
	if got := <-s.handled; got != "hello" {
		t.Fatalf("handled %v, want hello", got)
	}
	if w, ok := n.Whereis("starter"); !ok || w != pid {
		t.Fatalf("whereis starter = %v, %v", w, ok)
	}
}

// A process that exits in Init is dead, with its reason, when SpawnInit
// returns, and its name is free again.
func TestSpawnInitReportsAnExitInInit(t *testing.T) {
	n := NewNode(Options{})
	s := newStarter()
	why := errors.New("no config")
	s.exitInInit = why
	pid, exited, reason, err := n.SpawnInit(s, SpawnOpts{Name: "starter"})
	if err != nil {
		t.Fatal(err)
	}
	if !exited || reason != why {
		t.Fatalf("exited %v reason %v, want true %v", exited, reason, why)
	}
	if pid.Alive() {
		t.Fatal("process alive after exiting in Init")
	}
	if _, ok := n.Whereis("starter"); ok {
		t.Fatal("name still registered")
	}
	if _, _, _, err := n.SpawnInit(s, SpawnOpts{Monitor: true}); !errors.Is(err, ErrBadArg) {
		t.Fatalf("SpawnInit with Monitor: %v, want ErrBadArg", err)
	}
}

// ExitOnReturn ends the process with its reason once Handle returns; the
// messages queued behind are not handled, and monitors see the reason.
func TestExitOnReturnEndsTheProcessAfterTheHandler(t *testing.T) {
	n := NewNode(Options{})
	s := newStarter()
	s.exitOnMsg = ShutdownReason{Term: "done"}
	pid, _, _, err := n.SpawnInit(s, SpawnOpts{})
	if err != nil {
		t.Fatal(err)
	}
	w := n.Monitor(pid)
	for _, m := range []any{"a", "stop", "b"} {
		_ = n.Send(pid, m)
	}
	var d DownMsg
	select {
	case d = <-w.C:
	case <-time.After(10 * time.Second):
		t.Fatal("no DOWN")
	}
	if !SameReason(d.Reason, ShutdownReason{Term: "done"}) {
		t.Fatalf("reason %v", FormatReason(d.Reason))
	}
	close(s.handled)
	var got []any
	for m := range s.handled {
		got = append(got, m)
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "stop" {
		t.Fatalf("handled %v, want [a stop]", got)
	}
}
