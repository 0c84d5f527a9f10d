package bench

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/supervisor"
)

// opTimeout bounds one operation: a benchmark that hangs measures nothing.
const opTimeout = 10 * time.Second

// echo is a gen_server that replies with the request and counts the calls.
type echo struct{ handled *atomic.Uint64 }

func (e echo) Init(*runtime.Process, any) genserver.Result { return genserver.Ok(nil) }

func (e echo) HandleCall(_ *runtime.Process, req any, _ runtime.From, st any) genserver.Result {
	e.handled.Add(1)
	return genserver.Reply(req, st)
}

func (echo) HandleCast(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

func (echo) HandleInfo(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

func genserverCall(ctx context.Context, r *Runner) (Result, error) {
	const name = "genserver-call"
	n := runtime.NewNode(runtime.Options{})
	var handled atomic.Uint64
	srv, err := genserver.Start(n, echo{&handled}, nil, genserver.Options{Module: "bench_echo"})
	if err != nil {
		return Result{}, err
	}
	defer genserver.StopServer(n, srv, runtime.Shutdown, opTimeout)
	var mismatched atomic.Uint64
	pl := plan{scenario: name, op: "genserver_call", node: n, workers: r.concurrency(name),
		do: func(p *runtime.Process, _ int, seq uint64, _ time.Time) (time.Time, error) {
			v, err := genserver.Call(p, srv, seq, opTimeout)
			if err != nil {
				return time.Time{}, err
			}
			if v != seq {
				mismatched.Add(1)
				return time.Time{}, fmt.Errorf("reply %v to request %d", v, seq)
			}
			return time.Time{}, nil
		}}
	s := r.newSeries()
	pl.series = s
	out, err := r.drive(ctx, pl)
	res := out.Result
	res.Checks = append(r.checkErrors(s, res), checkOps(res),
		checkEq("calls handled by the server == calls made", handled.Load(), out.issued),
		checkEq("replies that differ from their request", mismatched.Load(), 0))
	return res, err
}

// sendMsg is one message of the send scenario: who sent it, its place in
// that sender's sequence and when it was sent (since the Runner's epoch).
type sendMsg struct {
	from  int
	seq   uint64
	stamp time.Duration
}

// counter is an atomic count on its own cache line, so that a consumer
// publishing one producer's count does not slow the others.
type counter struct {
	atomic.Uint64
	_ [56]byte
}

// sink is the consumer of the send scenario: it records each message's
// latency and checks that each sender's messages arrive in order, the
// ordering Erlang guarantees between one pair of processes.
type sink struct {
	epoch    time.Time
	rec      *recorder
	next     []uint64  // per sender: 1 + the last seq seen
	got      []uint64  // per sender: messages handled
	handled  []counter // got, published to the senders
	reorders uint64
}

func (k *sink) Init(*runtime.Process) {}

func (k *sink) Handle(_ *runtime.Process, msg any) {
	m, ok := msg.(sendMsg)
	if !ok {
		return
	}
	now := time.Now()
	if m.seq+1 <= k.next[m.from] {
		k.reorders++
	}
	k.next[m.from] = m.seq + 1
	k.rec.record(now, now.Sub(k.epoch)-m.stamp, nil)
	k.got[m.from]++
	k.handled[m.from].Store(k.got[m.from])
}

// sendWindow bounds the messages in flight: Erlang has no back-pressure
// on send, so producers outrunning the consumer would otherwise grow its
// mailbox, and the memory, for as long as the run lasts. Each producer
// looks at its share only every sendCheck messages, since reading the
// consumer's count moves a cache line between cores.
const (
	sendWindow = 8192
	sendCheck  = 64
)

func send(ctx context.Context, r *Runner) (Result, error) {
	const name = "send"
	n := runtime.NewNode(runtime.Options{})
	workers := r.concurrency(name)
	s := r.newSeries()
	k := &sink{epoch: r.epoch, rec: s.recorder(), next: make([]uint64, workers), got: make([]uint64, workers),
		handled: make([]counter, workers)}
	dst, err := n.SpawnBehaviour(k, runtime.SpawnOpts{})
	if err != nil {
		return Result{}, err
	}
	defer n.Exit(dst, runtime.Kill)
	share := uint64(max(sendWindow/workers, sendCheck))
	sent := make([]uint64, workers) // each written by its producer only
	totals := func() (sum, handled uint64) {
		for w := range sent {
			sum += sent[w]
			handled += k.handled[w].Load()
		}
		return sum, handled
	}
	pl := plan{scenario: name, op: "send", node: n, workers: workers, async: true, series: s,
		do: func(p *runtime.Process, w int, seq uint64, start time.Time) (time.Time, error) {
			if sent[w]%sendCheck == 0 {
				for spins := 0; sent[w]-k.handled[w].Load() >= share; spins++ {
					if spins < 64 {
						goruntime.Gosched()
					} else {
						time.Sleep(20 * time.Microsecond)
					}
				}
				if !r.open() {
					start = time.Now() // in closed loop the wait for room is not the message's latency
				}
			}
			sent[w]++
			return time.Time{}, p.Send(dst, sendMsg{from: w, seq: seq, stamp: start.Sub(r.epoch)})
		},
		drain: func(ctx context.Context) error {
			deadline := time.Now().Add(opTimeout)
			for {
				total, handled := totals()
				if handled >= total {
					break
				}
				if ctx.Err() != nil || time.Now().After(deadline) {
					return fmt.Errorf("%s: consumer handled %d of %d messages", name, handled, total)
				}
				time.Sleep(50 * time.Microsecond)
			}
			// The consumer's last record happened before its counts
			// reached the totals, so its buffer can be flushed from here.
			k.rec.flush()
			return nil
		}}
	out, err := r.drive(ctx, pl)
	res := out.Result
	total, handled := totals()
	var reorders uint64
	if handled == total { // the consumer is idle: its own fields can be read
		reorders = k.reorders
	}
	res.Checks = append(r.checkErrors(s, res), checkOps(res),
		checkEq("messages received == messages sent", handled, total),
		checkEq("messages sent == operations", total, out.issued),
		checkEq("messages recorded == messages received", res.Ops, handled),
		checkEq("messages out of order per sender", reorders, 0))
	return res, err
}

type spawned struct{}

// child is the body of each process the spawn scenario starts: it tells
// its parent it runs, and exits.
func child(p *runtime.Process) { _ = p.Send(p.Parent(), spawned{}) }

func spawn(ctx context.Context, r *Runner) (Result, error) {
	const name = "spawn"
	n := runtime.NewNode(runtime.Options{})
	base := n.ProcessCount()
	before := n.Stats()
	pl := plan{scenario: name, op: "spawn", node: n, workers: r.concurrency(name),
		do: func(p *runtime.Process, _ int, _ uint64, _ time.Time) (time.Time, error) {
			if _, _, err := p.Spawn(child, runtime.SpawnOpts{}); err != nil {
				return time.Time{}, err
			}
			m, ok := p.Receive(opTimeout)
			if !ok {
				return time.Time{}, errors.New("no message from the new process")
			}
			if _, ok := m.(spawned); !ok {
				return time.Time{}, fmt.Errorf("unexpected message %T", m)
			}
			return time.Time{}, nil
		}}
	s := r.newSeries()
	pl.series = s
	out, err := r.drive(ctx, pl)
	res := out.Result
	left := waitProcesses(n, base, opTimeout)
	after := n.Stats()
	workers := uint64(pl.workers)
	res.Checks = append(r.checkErrors(s, res), checkOps(res),
		checkEq("processes spawned == operations + workers", after.Spawned-before.Spawned, out.issued+workers),
		checkEq("processes left once every one has exited", uint64(left), uint64(base)))
	return res, err
}

// waitProcesses waits for n's process count to fall to want, re-counting
// as exit events arrive, and returns the count it ended with.
func waitProcesses(n *runtime.Node, want int, timeout time.Duration) int {
	sub := n.Subscribe(1024)
	defer sub.Close()
	deadline := time.After(timeout)
	for {
		if c := n.ProcessCount(); c <= want {
			return c
		}
		select {
		case <-sub.C:
		case <-time.After(10 * time.Millisecond): // exits before the subscription sent no event
		case <-deadline:
			return n.ProcessCount()
		}
	}
}

// started reports a restartable worker's Init.
type started struct{ pid runtime.PID }

// victim is the permanent gen_server the restart scenario kills.
type victim struct{ inits chan<- started }

func (v victim) Init(p *runtime.Process, _ any) genserver.Result {
	v.inits <- started{p.Self()}
	return genserver.Ok(nil)
}

func (victim) HandleCall(_ *runtime.Process, _ any, _ runtime.From, st any) genserver.Result {
	return genserver.Reply(nil, st)
}

func (victim) HandleCast(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

func (victim) HandleInfo(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

func restart(ctx context.Context, r *Runner) (Result, error) {
	const name = "restart"
	n := runtime.NewNode(runtime.Options{})
	workers := r.concurrency(name)
	// One supervisor per worker, so that concurrent kills measure
	// independent recoveries rather than queue behind one supervisor.
	type slot struct {
		sup     runtime.PID
		inits   chan started
		current runtime.PID
		kills   uint64
		fresh   uint64 // replacements with a new PID while the old one is dead
	}
	slots := make([]*slot, workers)
	for w := range slots {
		sl := &slot{inits: make(chan started, 4)}
		sup, err := supervisor.Start(n, supervisor.Spec{
			// Restarts are the workload here, not a fault: the intensity
			// must never be reached.
			Flags: supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1 << 30, Period: 1},
			Children: []supervisor.ChildSpec{{
				ID: "victim", Restart: supervisor.Permanent, Module: "bench_victim",
				Start: func(p *runtime.Process) (runtime.PID, error) {
					return genserver.StartLink(p, victim{sl.inits}, nil, genserver.Options{Module: "bench_victim"})
				},
			}},
		}, supervisor.Options{Name: fmt.Sprintf("bench_sup_%d", w)})
		if err != nil {
			return Result{}, err
		}
		defer supervisor.Stop(n, sup, runtime.Shutdown, opTimeout)
		sl.sup, sl.current = sup, (<-sl.inits).pid
		slots[w] = sl
	}
	pl := plan{scenario: name, op: "restart", node: n, workers: workers,
		do: func(p *runtime.Process, w int, _ uint64, _ time.Time) (time.Time, error) {
			sl := slots[w]
			old := sl.current
			sl.kills++
			p.ExitSignal(old, runtime.Kill)
			var s started
			select {
			case s = <-sl.inits:
			case <-time.After(opTimeout):
				return time.Time{}, errors.New("no replacement started")
			}
			done := time.Now()
			sl.current = s.pid
			if s.pid != old && !old.Alive() {
				sl.fresh++
			}
			// Untimed: let the supervisor finish its bookkeeping, so
			// the next kill does not queue behind it.
			if _, err := supervisor.CountChildren(p, sl.sup, opTimeout); err != nil {
				return done, err
			}
			return done, nil
		}}
	s := r.newSeries()
	pl.series = s
	out, err := r.drive(ctx, pl)
	res := out.Result
	res.Checks = append(r.checkErrors(s, res), checkOps(res))
	var kills, fresh, stray uint64
	alive := true
	for _, sl := range slots {
		kills += sl.kills
		fresh += sl.fresh
		stray += uint64(len(sl.inits))
		ch, cerr := supervisor.WhichChild(n, sl.sup, "victim", opTimeout)
		alive = alive && cerr == nil && ch.PID == sl.current && sl.current.Alive()
	}
	res.Checks = append(res.Checks,
		checkEq("replacements with a new PID == kills", fresh, kills),
		checkEq("restarts nobody asked for", stray, 0),
		checkTrue("each supervisor's child is the last replacement, alive", alive, "%d supervisors", workers))
	res.SLA = recoverySLA(res.Latency)
	return res, err
}
