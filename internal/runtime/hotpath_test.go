package runtime

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gate is a behaviour that records the messages it handles and, for the
// messages listed in block, waits until released.
type gate struct {
	mu      sync.Mutex
	handled []any
	block   map[any]chan struct{}
	entered chan any
	onMsg   func(p *Process, msg any)
}

func newGate(block ...any) *gate {
	g := &gate{block: map[any]chan struct{}{}, entered: make(chan any, 100)}
	for _, b := range block {
		g.block[b] = make(chan struct{})
	}
	return g
}

func (g *gate) Init(p *Process) {}
func (g *gate) Handle(p *Process, msg any) {
	r, isCall := msg.(*Request)
	if isCall {
		msg = r.Body
	}
	g.mu.Lock()
	g.handled = append(g.handled, msg)
	g.mu.Unlock()
	if g.onMsg != nil {
		g.onMsg(p, msg)
	}
	if c, ok := g.block[msg]; ok {
		g.entered <- msg
		<-c
	}
	if isCall {
		r.From.Reply(msg)
	}
}

// SysState makes gate a SysHandler so get_state works.
func (g *gate) SysState() any { return len(g.seen()) }
func (g *gate) SysReplaceState(fn func(any) any) (any, error) {
	return fn(len(g.seen())), nil
}
func (g *gate) SysChangeCode(*Process, any, string, any) error { return nil }

func (g *gate) seen() []any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]any(nil), g.handled...)
}

func (g *gate) release(msg any) { close(g.block[msg]) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestBatchedMessagesStayVisibleInTheMailbox(t *testing.T) {
	n := NewNode(Options{})
	g := newGate("m0", "m5")
	pid, _ := n.SpawnBehaviour(g, SpawnOpts{})
	n.Send(pid, "m0")
	<-g.entered
	// Sent while m0 runs: the drainer takes them in one batch once m0
	// returns.
	for i := 1; i <= 9; i++ {
		n.Send(pid, fmt.Sprintf("m%d", i))
	}
	if got := pid.MailboxLen(); got != 9 {
		t.Fatalf("mailbox len %d while m0 runs, want 9", got)
	}
	g.release("m0")
	<-g.entered // m5 blocks: m1..m4 done, m6..m9 in the batch, unstarted
	if got := pid.MailboxLen(); got != 4 {
		t.Fatalf("mailbox len %d while m5 runs, want 4", got)
	}
	d := pid.Detail(10)
	if fmt.Sprint(d.MailboxHead) != "[m6 m7 m8 m9]" {
		t.Fatalf("mailbox head %v", d.MailboxHead)
	}
	if d.Status != StatusRunning {
		t.Fatalf("status %v", d.Status)
	}
	n.Send(pid, "m10")
	if d := pid.Detail(2); fmt.Sprint(d.MailboxHead) != "[m6 m7]" || d.MailboxLen != 5 {
		t.Fatalf("head %v len %d", d.MailboxHead, d.MailboxLen)
	}
	if d := pid.Detail(10); fmt.Sprint(d.MailboxHead) != "[m6 m7 m8 m9 m10]" {
		t.Fatalf("head %v", d.MailboxHead)
	}
	g.release("m5")
	waitFor(t, "all messages", func() bool { return len(g.seen()) == 11 })
	if fmt.Sprint(g.seen()) != "[m0 m1 m2 m3 m4 m5 m6 m7 m8 m9 m10]" {
		t.Fatalf("order %v", g.seen())
	}
	waitFor(t, "idle", func() bool { return pid.Info().Status == StatusWaiting })
	if pid.MailboxLen() != 0 {
		t.Fatalf("len %d", pid.MailboxLen())
	}
}

func TestSystemMessageOvertakesTheRestOfABatch(t *testing.T) {
	n := NewNode(Options{})
	g := newGate("m0", "m1")
	pid, _ := n.SpawnBehaviour(g, SpawnOpts{})
	n.Send(pid, "m0")
	<-g.entered
	for i := 1; i <= 5; i++ {
		n.Send(pid, fmt.Sprintf("m%d", i))
	}
	g.release("m0")
	<-g.entered // m1 runs; m2..m5 wait in the batch
	got := make(chan any, 1)
	go func() {
		v, err := n.SysRequest(pid, SysGetState(), wait)
		if err != nil {
			got <- err
			return
		}
		got <- v
	}()
	waitFor(t, "the system message to queue", func() bool { return pid.p.flags.Load()&flagSys != 0 })
	g.release("m1")
	// get_state answers with the number of messages handled so far: m0
	// and m1, not the rest of the batch.
	if v := <-got; v != 2 {
		t.Fatalf("get_state saw %v messages handled, want 2", v)
	}
	waitFor(t, "all messages", func() bool { return len(g.seen()) == 6 })
}

func TestSuspendPutsTheBatchBack(t *testing.T) {
	n := NewNode(Options{})
	g := newGate("m0", "m1")
	pid, _ := n.SpawnBehaviour(g, SpawnOpts{})
	n.Send(pid, "m0")
	<-g.entered
	for i := 1; i <= 5; i++ {
		n.Send(pid, fmt.Sprintf("m%d", i))
	}
	g.release("m0")
	<-g.entered // m1 runs; m2..m5 wait in the batch
	done := make(chan error, 1)
	go func() {
		_, err := n.SysRequest(pid, SysSuspend(), wait)
		done <- err
	}()
	waitFor(t, "the system message to queue", func() bool { return pid.p.flags.Load()&flagSys != 0 })
	g.release("m1")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "suspended and idle", func() bool {
		i := pid.Info()
		return i.Status == StatusSuspended && pid.p.isIdleForTest()
	})
	n.Send(pid, "m6")
	if d := pid.Detail(10); d.MailboxLen != 5 || fmt.Sprint(d.MailboxHead) != "[m2 m3 m4 m5 m6]" {
		t.Fatalf("suspended: len %d head %v", d.MailboxLen, d.MailboxHead)
	}
	if len(g.seen()) != 2 {
		t.Fatalf("handled while suspended: %v", g.seen())
	}
	if _, err := n.SysRequest(pid, SysResume(), wait); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all messages", func() bool { return len(g.seen()) == 7 })
	if fmt.Sprint(g.seen()) != "[m0 m1 m2 m3 m4 m5 m6]" {
		t.Fatalf("order %v", g.seen())
	}
}

func (p *Process) isIdleForTest() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.scheduled
}

func TestKillInTheMiddleOfABatch(t *testing.T) {
	n := NewNode(Options{})
	g := newGate("m0", "m1")
	pid, _ := n.SpawnBehaviour(g, SpawnOpts{})
	n.Send(pid, "m0")
	<-g.entered
	for i := 1; i <= 5; i++ {
		n.Send(pid, fmt.Sprintf("m%d", i))
	}
	g.release("m0")
	<-g.entered // m1 runs; m2..m5 wait in the batch
	w := n.Monitor(pid)
	n.Exit(pid, Kill)
	if d := recvDown(t, w); d.Reason != Killed {
		t.Fatalf("DOWN %v", d.Reason)
	}
	if got := pid.MailboxLen(); got != 0 {
		t.Fatalf("a dead process's mailbox len %d", got)
	}
	if n.Stats().Zombies != 1 || pid.Info().Status != StatusZombie {
		t.Fatalf("zombies %d status %v", n.Stats().Zombies, pid.Info().Status)
	}
	g.release("m1")
	waitFor(t, "the zombie to end", func() bool { return n.Stats().Zombies == 0 })
	time.Sleep(time.Millisecond)
	if fmt.Sprint(g.seen()) != "[m0 m1]" {
		t.Fatalf("messages handled after the kill: %v", g.seen())
	}
	if got := pid.MailboxLen(); got != 0 {
		t.Fatalf("mailbox len %d", got)
	}
}

func TestHibernateInABatchKeepsGoing(t *testing.T) {
	n := NewNode(Options{})
	g := newGate("m0")
	g.onMsg = func(p *Process, msg any) {
		if msg == "m2" {
			p.Hibernate()
		}
	}
	pid, _ := n.SpawnBehaviour(g, SpawnOpts{})
	n.Send(pid, "m0")
	<-g.entered
	for i := 1; i <= 4; i++ {
		n.Send(pid, fmt.Sprintf("m%d", i))
	}
	g.release("m0")
	waitFor(t, "all messages", func() bool { return len(g.seen()) == 5 })
	waitFor(t, "idle", func() bool { return pid.p.isIdleForTest() })
	// m2 asked to hibernate but m3 and m4 came after it: the process is
	// not hibernating.
	if st := pid.Info().Status; st != StatusWaiting {
		t.Fatalf("status %v", st)
	}
	g.onMsg = nil
	n.Send(pid, Atom("last"))
	waitFor(t, "last", func() bool { return len(g.seen()) == 6 })
}

func TestDemonitorFlushReachesIntoTheBatch(t *testing.T) {
	n := NewNode(Options{})
	target, _ := n.SpawnBehaviour(newGate(), SpawnOpts{})
	var ref Ref
	g := newGate("m0")
	flushed := make(chan bool, 1)
	g.onMsg = func(p *Process, msg any) {
		switch msg {
		case "mon":
			ref = p.Monitor(target)
		case "flush":
			flushed <- p.Demonitor(ref, true)
		}
		if _, ok := msg.(DownMsg); ok {
			t.Errorf("flushed DOWN handled")
		}
	}
	pid, _ := n.SpawnBehaviour(g, SpawnOpts{})
	n.Send(pid, "mon")
	n.Send(pid, "m0")
	<-g.entered
	n.Send(pid, "flush")
	n.Exit(target, Kill) // the DOWN queues after "flush"
	waitFor(t, "the DOWN", func() bool { return pid.MailboxLen() == 2 })
	n.Send(pid, "after")
	g.release("m0")
	if <-flushed {
		t.Fatal("demonitor after DOWN reported true")
	}
	waitFor(t, "after", func() bool { return len(g.seen()) == 4 })
	waitFor(t, "idle", func() bool { return pid.p.isIdleForTest() })
	if fmt.Sprint(g.seen()) != "[mon m0 flush after]" || pid.MailboxLen() != 0 {
		t.Fatalf("handled %v, len %d", g.seen(), pid.MailboxLen())
	}
}

func TestCallTimeoutsShortAndLong(t *testing.T) {
	n := NewNode(Options{})
	g := newGate("stuck")
	pid, _ := n.SpawnBehaviour(g, SpawnOpts{})
	n.Send(pid, "stuck")
	<-g.entered
	defer g.release("stuck")
	for _, d := range []time.Duration{0, time.Millisecond, 20 * time.Millisecond, coarseTimeout} {
		start := time.Now()
		_, err := n.Call(pid, "x", d)
		el := time.Since(start)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("timeout %v: %v", d, err)
		}
		if el < d {
			t.Fatalf("timeout %v failed early, after %v", d, el)
		}
		if el > d+500*time.Millisecond {
			t.Fatalf("timeout %v failed late, after %v", d, el)
		}
	}
	// The timed-out calls hold no monitor on the callee.
	waitFor(t, "no pending calls", func() bool {
		pid.p.mu.Lock()
		defer pid.p.mu.Unlock()
		return pid.p.calls == nil
	})
}

func TestLongTimeoutsFromManyCallersFailTogether(t *testing.T) {
	n := NewNode(Options{})
	g := newGate("stuck")
	pid, _ := n.SpawnBehaviour(g, SpawnOpts{})
	n.Send(pid, "stuck")
	<-g.entered
	defer g.release("stuck")
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	start := time.Now()
	for i := 0; i < 20; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := n.Call(pid, i, coarseTimeout)
			errs <- err
		}()
		n.Spawn(func(p *Process) {
			defer wg.Done()
			_, err := p.Call(pid, i, coarseTimeout+time.Duration(i)*time.Millisecond)
			errs <- err
		}, SpawnOpts{})
	}
	wg.Wait()
	if el := time.Since(start); el < coarseTimeout || el > coarseTimeout+time.Second {
		t.Fatalf("took %v", el)
	}
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrTimeout) {
			t.Fatal(err)
		}
	}
}

func TestLateReplyDoesNotReachTheNextCall(t *testing.T) {
	n := NewNode(Options{})
	froms := make(chan From, 1)
	slow, _ := n.Spawn(func(p *Process) {
		m, _ := p.Receive(Infinity)
		froms <- m.(*Request).From
		p.Receive(Infinity)
	}, SpawnOpts{})
	fast, _ := n.SpawnBehaviour(newGate(), SpawnOpts{})
	res := make(chan string, 4)
	n.Spawn(func(p *Process) {
		if _, err := p.Call(slow, "x", 5*time.Millisecond); !errors.Is(err, ErrTimeout) {
			res <- fmt.Sprint("first call: ", err)
			return
		}
		f := <-froms
		f.Reply("late") // the same slot now serves the next calls
		for i := 0; i < 100; i++ {
			v, err := p.Call(fast, i, wait)
			if err != nil || v != i {
				res <- fmt.Sprint("call ", i, ": ", v, err)
				return
			}
			f.Reply("later")
		}
		res <- "ok"
	}, SpawnOpts{})
	if r := <-res; r != "ok" {
		t.Fatal(r)
	}
}

func TestCallerKilledDuringACall(t *testing.T) {
	n := NewNode(Options{})
	g := newGate("stuck")
	callee, _ := n.SpawnBehaviour(g, SpawnOpts{})
	res := make(chan error, 2)
	entered := make(chan struct{})
	caller, _ := n.Spawn(func(p *Process) {
		close(entered)
		_, err := p.Call(callee, "stuck", Infinity)
		res <- err
		// A zombie's further calls fail at once.
		_, err = p.Call(callee, "again", Infinity)
		res <- err
	}, SpawnOpts{})
	<-entered
	<-g.entered
	n.Exit(caller, Kill)
	for i := 0; i < 2; i++ {
		if err := <-res; !errors.Is(err, ErrCallerExited) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	g.release("stuck")
	waitFor(t, "no pending calls", func() bool {
		callee.p.mu.Lock()
		defer callee.p.mu.Unlock()
		return callee.p.calls == nil
	})
}

func TestCallsFromTwoGoroutinesOfOneProcess(t *testing.T) {
	// Not allowed by the API, but it must not mix up replies.
	n := NewNode(Options{})
	srv, _ := n.SpawnBehaviour(newGate(), SpawnOpts{})
	res := make(chan error, 1)
	n.Spawn(func(p *Process) {
		var wg sync.WaitGroup
		var bad atomic.Int32
		for k := 0; k < 4; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 500; i++ {
					v := k*1000 + i
					if got, err := p.Call(srv, v, wait); err != nil || got != v {
						bad.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if bad.Load() != 0 {
			res <- fmt.Errorf("%d mixed-up calls", bad.Load())
			return
		}
		res <- nil
	}, SpawnOpts{})
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

func TestCalleeDeathFailsEveryPendingCall(t *testing.T) {
	n := NewNode(Options{})
	g := newGate("stuck")
	pid, _ := n.SpawnBehaviour(g, SpawnOpts{})
	n.Send(pid, "stuck")
	<-g.entered
	errs := make(chan error, 30)
	for i := 0; i < 10; i++ {
		go func() { _, err := n.Call(pid, i, Infinity); errs <- err }()
		go func() { _, err := n.Call(pid, i, 20*time.Second); errs <- err }()
		go func() { _, err := n.Call(pid, i, 500*time.Millisecond+time.Duration(i)); errs <- err }()
	}
	waitFor(t, "the calls to queue", func() bool { return pid.MailboxLen() == 30 })
	n.Exit(pid, Atom("boom"))
	for i := 0; i < 30; i++ {
		var ee *ExitError
		if err := <-errs; !errors.As(err, &ee) || ee.Reason != Atom("boom") {
			t.Fatalf("%v", err)
		}
	}
	g.release("stuck")
}

// TestBlockedWorkersDoNotStallTheRunQueue spawns more processes than could
// ever be started from parked workers, each blocking in its first message
// until all have started: every one needs a goroutine of its own.
func TestBlockedWorkersDoNotStallTheRunQueue(t *testing.T) {
	n := NewNode(Options{})
	const count = 2000
	var started sync.WaitGroup
	started.Add(count)
	all := make(chan struct{})
	var done sync.WaitGroup
	done.Add(count)
	for i := 0; i < count; i++ {
		pid, _ := n.SpawnBehaviour(blocker{&started, all, &done}, SpawnOpts{})
		n.Send(pid, i)
	}
	ok := make(chan struct{})
	go func() { started.Wait(); close(ok) }()
	select {
	case <-ok:
	case <-time.After(wait):
		t.Fatal("the run queue stalled")
	}
	close(all)
	done.Wait()
}

type blocker struct {
	started *sync.WaitGroup
	all     chan struct{}
	done    *sync.WaitGroup
}

func (b blocker) Init(p *Process) {}
func (b blocker) Handle(p *Process, msg any) {
	b.started.Done()
	<-b.all
	b.done.Done()
}

func TestProcessTableAfterChurn(t *testing.T) {
	n := NewNode(Options{})
	var live []PID
	for round := 0; round < 5; round++ {
		var ws []*Watch
		for i := 0; i < 300; i++ {
			pid, _ := n.SpawnBehaviour(newGate(), SpawnOpts{})
			if i%3 == 0 {
				live = append(live, pid)
			} else {
				ws = append(ws, n.Monitor(pid))
				n.Exit(pid, Kill)
			}
		}
		for _, w := range ws {
			recvDown(t, w)
		}
	}
	if n.ProcessCount() != len(live) || len(n.Snapshot(nil)) != len(live) {
		t.Fatalf("count %d, snapshot %d, want %d", n.ProcessCount(), len(n.Snapshot(nil)), len(live))
	}
	for _, pid := range live {
		if got, ok := n.Lookup(pid.ID()); !ok || got != pid {
			t.Fatalf("lookup %v: %v %v", pid, got, ok)
		}
	}
	if _, ok := n.Lookup(live[len(live)-1].ID() + 1); ok {
		t.Fatal("lookup of a dead process")
	}
	pages := 0
	for i := range n.shards {
		n.shards[i].mu.RLock()
		pages += len(n.shards[i].pages)
		n.shards[i].mu.RUnlock()
	}
	if max := (1500/pageSize + 2); pages > max {
		t.Fatalf("%d pages for %d processes", pages, len(live))
	}
}

func TestMailboxUntakeAndFlush(t *testing.T) {
	var m mailbox
	var b batch
	for i := 0; i < 5; i++ {
		m.push(i)
	}
	m.take(&b)
	if b.n != 5 || m.size() != 0 {
		t.Fatalf("take: batch %d ring %d", b.n, m.size())
	}
	b.next.Store(2)
	m.push(5)
	m.push(DownMsg{Ref: Ref{7}})
	if fmt.Sprint(m.peek(10)) != fmt.Sprint([]any{2, 3, 4, 5, DownMsg{Ref: Ref{7}}}) {
		t.Fatalf("peek %v", m.peek(10))
	}
	if !m.flushDown(Ref{7}) || m.flushDown(Ref{7}) {
		t.Fatal("flush")
	}
	m.untake()
	for _, want := range []int{2, 3, 4, 5} {
		if v, _ := m.pop(); v != want {
			t.Fatalf("pop %v want %d", v, want)
		}
	}
	if m.size() != 0 || m.cur != nil {
		t.Fatal("not empty")
	}
}

// TestSchedulingFromManyGoroutines schedules processes from several
// goroutines at once, with handlers that sometimes block, and checks that
// every message is handled.
func TestSchedulingFromManyGoroutines(t *testing.T) {
	n := NewNode(Options{})
	const senders, procs, msgs = 8, 200, 5
	var handled sync.WaitGroup
	handled.Add(senders * procs * msgs)
	var wg sync.WaitGroup
	for k := 0; k < senders; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < procs; i++ {
				pid, _ := n.SpawnBehaviour(counter{&handled, i%17 == 0}, SpawnOpts{})
				for j := 0; j < msgs; j++ {
					n.Send(pid, j)
				}
			}
		}()
	}
	wg.Wait()
	ok := make(chan struct{})
	go func() { handled.Wait(); close(ok) }()
	select {
	case <-ok:
	case <-time.After(wait):
		t.Fatal("messages left unhandled")
	}
}

type counter struct {
	wg    *sync.WaitGroup
	sleep bool
}

func (c counter) Init(p *Process) {}
func (c counter) Handle(p *Process, msg any) {
	if c.sleep {
		time.Sleep(50 * time.Microsecond)
	}
	c.wg.Done()
}

func TestPendingCallList(t *testing.T) {
	var p Process
	slots := make([]*callSlot, 6)
	for i := range slots {
		slots[i] = newCallSlot()
		slots[i].gen = uint64(i)
		slots[i].state.Store(uint64(i) << 1) // pending
		p.linkCallLocked(slots[i])
	}
	order := func() string {
		var out []uint64
		for s := p.calls; s != nil; s = s.next {
			out = append(out, s.gen)
		}
		if p.calls != nil {
			last := p.calls
			for last.next != nil {
				last = last.next
			}
			if p.calls.prev != last {
				return "bad last"
			}
		}
		return fmt.Sprint(out)
	}
	if got := order(); got != "[0 1 2 3 4 5]" {
		t.Fatal(got)
	}
	p.unlinkCallLocked(slots[0]) // first
	p.unlinkCallLocked(slots[5]) // last
	p.unlinkCallLocked(slots[2]) // middle
	if got := order(); got != "[1 3 4]" {
		t.Fatal(got)
	}
	p.linkCallLocked(slots[0])
	// The oldest answered calls go, up to the first pending one.
	slots[1].state.Store(1<<1 | 1)
	slots[4].state.Store(4<<1 | 1)
	p.unlinkDoneCallsLocked()
	if got := order(); got != "[3 4 0]" {
		t.Fatal(got)
	}
	if slots[1].callee.Load() != nil || slots[4].callee.Load() != &p {
		t.Fatal("callee")
	}
	for _, i := range []int{4, 3, 0} {
		p.unlinkCallLocked(slots[i])
	}
	if p.calls != nil {
		t.Fatal("not empty")
	}
	p.linkCallLocked(slots[2])
	if got := order(); got != "[2]" {
		t.Fatal(got)
	}
}
