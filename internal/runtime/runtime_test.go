package runtime

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const wait = 5 * time.Second

// recvDown waits for a watch's DOWN, failing the test after a long bound
// that only a broken runtime reaches.
func recvDown(t *testing.T, w *Watch) DownMsg {
	t.Helper()
	select {
	case d := <-w.C:
		return d
	case <-time.After(wait):
		t.Fatalf("no DOWN for %v", w.Ref)
		return DownMsg{}
	}
}

// echo is a body process that answers Requests and forwards other
// messages to a channel.
func echo(out chan<- any) func(*Process) {
	return func(p *Process) {
		for {
			m, _ := p.Receive(Infinity)
			if r, ok := m.(*Request); ok {
				r.From.Reply(r.Body)
				continue
			}
			if out != nil {
				out <- m
			}
		}
	}
}

func mustSpawn(t *testing.T, n *Node, fn func(*Process), opts SpawnOpts) PID {
	t.Helper()
	pid, err := n.Spawn(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestPIDPrintsTheErlangWay(t *testing.T) {
	n := NewNode(Options{})
	pid := mustSpawn(t, n, echo(nil), SpawnOpts{})
	if got, want := pid.String(), fmt.Sprintf("<0.%d.0>", pid.ID()); got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if (PID{}).String() != "undefined" {
		t.Fatal("zero pid should print undefined")
	}
	back, err := n.ParsePID(pid.String())
	if err != nil || back != pid {
		t.Fatalf("ParsePID(%s) = %v, %v", pid, back, err)
	}
	for _, bad := range []string{"", "<1.2.3>", "abc", "<0.x.0>", "0"} {
		if _, err := ParsePIDNumber(bad); err == nil {
			t.Errorf("ParsePIDNumber(%q) accepted", bad)
		}
	}
}

func TestMessagesFromOneSenderArriveInOrder(t *testing.T) {
	n := NewNode(Options{})
	out := make(chan any, 1000)
	recv := mustSpawn(t, n, echo(out), SpawnOpts{})
	const total = 1000
	mustSpawn(t, n, func(p *Process) {
		for i := 0; i < total; i++ {
			p.Send(recv, i)
		}
	}, SpawnOpts{})
	for i := 0; i < total; i++ {
		if got := <-out; got != i {
			t.Fatalf("message %d arrived as %v", i, got)
		}
	}
}

func TestMailboxPeekAndLength(t *testing.T) {
	n := NewNode(Options{})
	block := make(chan struct{})
	pid := mustSpawn(t, n, func(p *Process) { <-block; p.Receive(Infinity) }, SpawnOpts{})
	for i := 0; i < 100; i++ {
		n.Send(pid, i)
	}
	if pid.MailboxLen() != 100 {
		t.Fatalf("len %d", pid.MailboxLen())
	}
	d := pid.Detail(3)
	if len(d.MailboxHead) != 3 || d.MailboxHead[0] != 0 || d.MailboxHead[2] != 2 {
		t.Fatalf("head %v", d.MailboxHead)
	}
	if pid.MailboxLen() != 100 {
		t.Fatal("peek consumed messages")
	}
	close(block)
}

func TestMailboxRing(t *testing.T) {
	var m mailbox
	for round := 0; round < 3; round++ {
		for i := 0; i < 10; i++ {
			m.push(i)
		}
		if v := m.removeAt(3); v != 3 {
			t.Fatalf("removeAt got %v", v)
		}
		for _, want := range []int{0, 1, 2, 4, 5, 6, 7, 8, 9} {
			if v, _ := m.pop(); v != want {
				t.Fatalf("round %d: pop %v want %d", round, v, want)
			}
		}
		if _, ok := m.pop(); ok {
			t.Fatal("mailbox should be empty")
		}
	}
}

func TestExitReasons(t *testing.T) {
	tests := []struct {
		name     string
		trap     bool
		reason   any
		dies     bool
		seenAs   any
		getsExit bool
	}{
		{"normal is ignored by a non-trapping process", false, Normal, false, nil, false},
		{"kill is untrappable and seen as killed", true, Kill, true, Killed, false},
		{"kill kills a non-trapping process as killed", false, Kill, true, Killed, false},
		{"shutdown kills a non-trapping process", false, Shutdown, true, Shutdown, false},
		{"an abnormal reason kills a non-trapping process", false, Atom("boom"), true, Atom("boom"), false},
		{"a trapping process gets shutdown as a message", true, Shutdown, false, nil, true},
		{"a trapping process gets normal as a message", true, Normal, false, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := NewNode(Options{})
			out := make(chan any, 1)
			pid := mustSpawn(t, n, echo(out), SpawnOpts{TrapExit: tc.trap})
			w := n.Monitor(pid)
			n.Exit(pid, tc.reason)
			if tc.dies {
				d := recvDown(t, w)
				if !SameReason(d.Reason, tc.seenAs) {
					t.Fatalf("DOWN reason %v, want %v", d.Reason, tc.seenAs)
				}
				return
			}
			if tc.getsExit {
				m := <-out
				em, ok := m.(ExitMsg)
				if !ok || !SameReason(em.Reason, tc.reason) {
					t.Fatalf("got %#v", m)
				}
			}
			// Still alive: a call round trip proves it.
			if v, err := n.Call(pid, "ping", wait); err != nil || v != "ping" {
				t.Fatalf("process should be alive: %v %v", v, err)
			}
		})
	}
}

func TestCleanReasons(t *testing.T) {
	for _, r := range []any{Normal, Shutdown, ShutdownReason{"x"}} {
		if !IsClean(r) {
			t.Errorf("%v should be clean", r)
		}
	}
	for _, r := range []any{Killed, Kill, Atom("boom"), errors.New("x"), &PanicError{Value: 1}} {
		if IsClean(r) {
			t.Errorf("%v should not be clean", r)
		}
	}
}

func TestLinksPropagateExits(t *testing.T) {
	n := NewNode(Options{})
	childCh := make(chan PID, 1)
	parent := mustSpawn(t, n, func(p *Process) {
		c, _, _ := p.Spawn(echo(nil), SpawnOpts{Link: true})
		childCh <- c
		p.Receive(Infinity)
	}, SpawnOpts{})
	child := <-childCh
	w := n.Monitor(parent)
	n.Exit(child, Atom("crash"))
	if d := recvDown(t, w); d.Reason != Atom("crash") {
		t.Fatalf("parent died with %v", d.Reason)
	}
}

func TestKilledPropagatesAsKilledThroughLinks(t *testing.T) {
	n := NewNode(Options{})
	exits := make(chan any, 1)
	childCh := make(chan PID, 1)
	mustSpawn(t, n, func(p *Process) {
		p.TrapExit(true)
		c, _, _ := p.Spawn(echo(nil), SpawnOpts{Link: true})
		childCh <- c
		m, _ := p.Receive(Infinity)
		exits <- m
	}, SpawnOpts{})
	child := <-childCh
	n.Exit(child, Kill)
	m := (<-exits).(ExitMsg)
	if m.From != child || m.Reason != Killed {
		t.Fatalf("got %#v", m)
	}
}

func TestPanicIsAnAbnormalExitWithStack(t *testing.T) {
	n := NewNode(Options{})
	ready := make(chan struct{})
	pid := mustSpawn(t, n, func(p *Process) {
		<-ready
		var m map[string]int
		m["x"] = 1 // panics
	}, SpawnOpts{})
	w := n.Monitor(pid)
	close(ready)
	d := recvDown(t, w)
	pe, ok := d.Reason.(*PanicError)
	if !ok {
		t.Fatalf("reason %#v", d.Reason)
	}
	if !strings.Contains(fmt.Sprint(pe.Value), "nil map") || !strings.Contains(pe.Stack, "TestPanicIsAnAbnormalExitWithStack") {
		t.Fatalf("panic reason lacks value or stack: %v\n%s", pe.Value, pe.Stack)
	}
}

func TestMonitorDemonitorAndFlush(t *testing.T) {
	n := NewNode(Options{})
	target := mustSpawn(t, n, echo(nil), SpawnOpts{})
	results := make(chan string, 4)
	mustSpawn(t, n, func(p *Process) {
		ref := p.Monitor(target)
		if !p.Demonitor(ref, false) {
			results <- "demonitor of an active monitor reported false"
		}
		ref2 := p.Monitor(target)
		n.Exit(target, Kill)
		// Wait for the DOWN to be in the mailbox, leaving it there.
		for p.Self().MailboxLen() == 0 {
			p.Receive(time.Millisecond) // nothing else is sent; wakes on the DOWN
		}
		if p.Demonitor(ref2, true) {
			results <- "demonitor after DOWN reported true"
		}
		if m, ok := p.Receive(0); ok {
			results <- fmt.Sprintf("flush left %v", m)
		}
		ref3 := p.Monitor(target)
		m, _ := p.Receive(wait)
		d, ok := m.(DownMsg)
		if !ok || d.Ref != ref3 || d.Reason != NoProc {
			results <- fmt.Sprintf("monitor of a dead process: %#v", m)
		}
		results <- "done"
	}, SpawnOpts{})
	if r := <-results; r != "done" {
		t.Fatal(r)
	}
}

func TestRegistry(t *testing.T) {
	n := NewNode(Options{})
	out := make(chan any, 1)
	pid := mustSpawn(t, n, echo(out), SpawnOpts{Name: "svc"})
	if got, ok := n.Whereis("svc"); !ok || got != pid {
		t.Fatalf("whereis %v %v", got, ok)
	}
	if _, err := n.Spawn(echo(nil), SpawnOpts{Name: "svc"}); err == nil {
		t.Fatal("duplicate name accepted")
	} else {
		var are *AlreadyRegisteredError
		if !errors.As(err, &are) || are.PID != pid {
			t.Fatalf("err %v", err)
		}
	}
	if err := n.Send(Name("svc"), "hello"); err != nil || <-out != "hello" {
		t.Fatalf("send by name: %v", err)
	}
	if err := n.Send(Name("nobody"), "x"); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("send to unknown name: %v", err)
	}
	if err := n.Unregister("svc"); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Whereis("svc"); ok {
		t.Fatal("name still registered")
	}
	if err := n.Unregister("svc"); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("unregister twice: %v", err)
	}
}

func TestNameIsFreeBeforeLinksAndMonitorsFire(t *testing.T) {
	n := NewNode(Options{})
	pid := mustSpawn(t, n, echo(nil), SpawnOpts{Name: "svc"})
	reRegistered := make(chan error, 1)
	mustSpawn(t, n, func(p *Process) {
		p.TrapExit(true)
		p.Link(pid)
		p.Receive(Infinity) // the EXIT
		reRegistered <- p.Register("svc")
	}, SpawnOpts{})
	w := n.Monitor(pid)
	n.Exit(pid, Kill)
	recvDown(t, w)
	if err := <-reRegistered; err != nil {
		t.Fatalf("replacement could not take the name: %v", err)
	}
}

func TestKillOfAStuckProcess(t *testing.T) {
	n := NewNode(Options{})
	entered := make(chan struct{})
	release := make(chan struct{})
	ctxDone := make(chan struct{})
	sentAfter := make(chan struct{})
	out := make(chan any, 10)
	observer := mustSpawn(t, n, echo(out), SpawnOpts{})
	pid := mustSpawn(t, n, func(p *Process) {
		ctx := p.Context()
		close(entered)
		<-ctx.Done()
		close(ctxDone)
		<-release
		p.Send(observer, "late")
		close(sentAfter)
	}, SpawnOpts{Name: "stuck"})
	<-entered
	w := n.Monitor(pid)
	n.Exit(pid, Kill)
	if d := recvDown(t, w); d.Reason != Killed {
		t.Fatalf("DOWN %v", d.Reason)
	}
	<-ctxDone
	if _, ok := n.Whereis("stuck"); ok {
		t.Fatal("name not freed")
	}
	if _, err := n.Call(pid, "x", wait); !errors.Is(err, ErrNoProc) {
		t.Fatalf("call to a killed process: %v", err)
	}
	if st := n.Stats(); st.Zombies != 1 {
		t.Fatalf("zombies %d, want 1", st.Zombies)
	}
	if got := pid.Info().Status; got != StatusZombie {
		t.Fatalf("status %v", got)
	}
	close(release)
	<-sentAfter
	// The late send was dropped: a marker sent afterwards arrives first.
	n.Send(observer, "marker")
	if m := <-out; m != "marker" {
		t.Fatalf("a dead process's send was delivered: %v", m)
	}
	zw := n.Subscribe(16)
	defer zw.Close()
	for n.Stats().Zombies != 0 {
		select { // the zombie count drops when the goroutine returns
		case <-zw.C:
		case <-time.After(time.Millisecond):
		}
	}
}

func TestProcessLimit(t *testing.T) {
	n := NewNode(Options{MaxProcesses: 3})
	for i := 0; i < 3; i++ {
		mustSpawn(t, n, echo(nil), SpawnOpts{})
	}
	_, err := n.Spawn(echo(nil), SpawnOpts{})
	var le *ProcessLimitError
	if !errors.As(err, &le) || le.Limit != 3 {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), "limit of 3") {
		t.Fatalf("unclear error: %v", err)
	}
}

func TestCallFailureKinds(t *testing.T) {
	n := NewNode(Options{})
	t.Run("noproc for a dead process", func(t *testing.T) {
		pid := mustSpawn(t, n, func(p *Process) {}, SpawnOpts{})
		w := n.Monitor(pid)
		recvDown(t, w)
		_, err := n.Call(pid, "x", wait)
		if !errors.Is(err, ErrNoProc) {
			t.Fatalf("%v", err)
		}
		_, err = n.Call(Name("nobody"), "x", wait)
		if !errors.Is(err, ErrNoProc) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("timeout, and the late reply is never delivered", func(t *testing.T) {
		froms := make(chan From, 1)
		slow := mustSpawn(t, n, func(p *Process) {
			m, _ := p.Receive(Infinity)
			froms <- m.(*Request).From
			p.Receive(Infinity)
		}, SpawnOpts{})
		res := make(chan error, 1)
		caller := mustSpawn(t, n, func(p *Process) {
			_, err := p.Call(slow, "x", 10*time.Millisecond)
			res <- err
			m, _ := p.Receive(Infinity)
			res <- fmt.Errorf("unexpected message %v", m)
		}, SpawnOpts{})
		if err := <-res; !errors.Is(err, ErrTimeout) {
			t.Fatalf("%v", err)
		}
		(<-froms).Reply("late")
		n.Send(caller, "marker")
		if err := <-res; err.Error() != "unexpected message marker" {
			t.Fatalf("late reply leaked: %v", err)
		}
	})
	t.Run("the callee exits during the call", func(t *testing.T) {
		got := make(chan struct{})
		dying := mustSpawn(t, n, func(p *Process) {
			p.Receive(Infinity)
			close(got)
			p.Exit(Atom("boom"))
		}, SpawnOpts{})
		_, err := n.Call(dying, "x", Infinity)
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Reason != Atom("boom") || ee.PID != dying {
			t.Fatalf("%v", err)
		}
	})
	t.Run("calling itself", func(t *testing.T) {
		res := make(chan error, 1)
		mustSpawn(t, n, func(p *Process) {
			_, err := p.Call(p.Self(), "x", wait)
			res <- err
		}, SpawnOpts{})
		if err := <-res; !errors.Is(err, ErrCallingSelf) {
			t.Fatalf("%v", err)
		}
	})
}

func TestEventsAndLostCount(t *testing.T) {
	n := NewNode(Options{})
	sub := n.Subscribe(4)
	defer sub.Close()
	pid := mustSpawn(t, n, echo(nil), SpawnOpts{Name: "e"})
	w := n.Monitor(pid)
	n.Exit(pid, Atom("bye"))
	recvDown(t, w)
	var kinds []EventKind
	for len(kinds) < 3 {
		e := <-sub.C
		kinds = append(kinds, e.Kind)
		if e.Kind == EventExit && e.Reason != Atom("bye") {
			t.Fatalf("exit event reason %v", e.Reason)
		}
	}
	if kinds[0] != EventRegister || kinds[1] != EventSpawn || kinds[2] != EventExit {
		t.Fatalf("kinds %v", kinds)
	}
	for i := 0; i < 10; i++ {
		mustSpawn(t, n, func(*Process) {}, SpawnOpts{})
	}
	if sub.Lost() == 0 {
		t.Fatal("a full subscriber should count lost events")
	}
}

func TestSnapshotAndTop(t *testing.T) {
	n := NewNode(Options{})
	var pids []PID
	block := make(chan struct{})
	defer close(block)
	for i := 0; i < 50; i++ {
		pid := mustSpawn(t, n, func(p *Process) { <-block }, SpawnOpts{})
		for j := 0; j < i; j++ {
			n.Send(pid, j)
		}
		pids = append(pids, pid)
	}
	snap := n.Snapshot(nil)
	if len(snap) != 50 {
		t.Fatalf("snapshot has %d", len(snap))
	}
	top := n.Top(5, ByMailbox)
	for i, want := range []int{49, 48, 47, 46, 45} {
		if top[i].MailboxLen != want || top[i].PID != pids[want] {
			t.Fatalf("top[%d] = %v with %d", i, top[i].PID, top[i].MailboxLen)
		}
	}
}

func TestChainOfLinksDies(t *testing.T) {
	n := NewNode(Options{})
	const length = 10000
	var mu sync.Mutex
	var last PID
	done := make(chan struct{})
	var build func(k int) func(*Process)
	build = func(k int) func(*Process) {
		return func(p *Process) {
			if k < length {
				p.Spawn(build(k+1), SpawnOpts{Link: true})
			} else {
				mu.Lock()
				last = p.Self()
				mu.Unlock()
				close(done)
			}
			p.Receive(Infinity)
		}
	}
	head := mustSpawn(t, n, build(1), SpawnOpts{})
	<-done
	mu.Lock()
	w := n.Monitor(last)
	mu.Unlock()
	n.Exit(head, Kill)
	if d := recvDown(t, w); d.Reason != Killed {
		t.Fatalf("tail died with %v", d.Reason)
	}
}

func TestTopIsStableAmongEqualKeys(t *testing.T) {
	n := NewNode(Options{})
	block := make(chan struct{})
	defer close(block)
	for i := 0; i < 200; i++ {
		mustSpawn(t, n, func(p *Process) { <-block }, SpawnOpts{})
	}
	first := n.Top(10, ByMailbox)
	for round := 0; round < 20; round++ {
		again := n.Top(10, ByMailbox)
		for i := range first {
			if again[i].PID != first[i].PID {
				t.Fatalf("round %d: row %d is %v, was %v", round, i, again[i].PID, first[i].PID)
			}
		}
	}
	for i := 1; i < len(first); i++ {
		if first[i].PID.ID() < first[i-1].PID.ID() {
			t.Fatalf("equal keys not ordered by age: %v after %v", first[i].PID, first[i-1].PID)
		}
	}
}
