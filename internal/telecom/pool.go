package telecom

import (
	"container/list"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/supervisor"
)

// PoolName is the registered name of the database pool.
const PoolName = "db_pool"

// ErrPoolFull is Checkout's answer when no worker is free and the caller
// asked not to wait.
var ErrPoolFull = errors.New("db_pool: no worker free")

// PoolConfig configures a Pool: poolboy's size and max_overflow, and how
// to start one worker (linked to p).
type PoolConfig struct {
	Size        int
	MaxOverflow int
	NewWorker   func(p *runtime.Process) (runtime.PID, error)
}

// PoolStats is what the observer shows of the pool.
type PoolStats struct {
	Size, MaxOverflow int
	Busy, Idle        int
	Overflow          int
	Waiting           int
	Checkouts         uint64
	Timeouts          uint64
	Replaced          uint64 // workers that crashed and were replaced
}

// Pool is db_pool, with poolboy's semantics: a fixed set of worker
// processes plus up to MaxOverflow extra ones under load; Checkout blocks
// callers in arrival order until a worker is free or their timeout passes;
// a borrower that dies has its worker returned (the pool monitors it); a
// worker that crashes is replaced.
type Pool struct {
	cfg   PoolConfig
	stats atomic.Pointer[PoolStats]
	outs  atomic.Uint64
	tos   atomic.Uint64
	repl  atomic.Uint64
}

// NewPool prepares a pool; SupervisorSpec starts it.
func NewPool(cfg PoolConfig) *Pool {
	p := &Pool{cfg: cfg}
	p.stats.Store(&PoolStats{Size: cfg.Size, MaxOverflow: cfg.MaxOverflow})
	return p
}

// Stats reads the last published counts without calling the pool.
func (pl *Pool) Stats() PoolStats {
	s := *pl.stats.Load()
	s.Checkouts, s.Timeouts, s.Replaced = pl.outs.Load(), pl.tos.Load(), pl.repl.Load()
	return s
}

type checkoutReq struct {
	ref   runtime.Ref
	block bool
}
type checkinMsg struct{ worker runtime.PID }
type cancelMsg struct{ ref runtime.Ref }

// Checkout borrows a worker (poolboy:checkout/3). With block, the caller
// waits in line up to timeout; a caller that gives up is taken out of the
// line, and a worker handed to it just then is returned.
func (pl *Pool) Checkout(c runtime.Caller, block bool, timeout time.Duration) (runtime.PID, error) {
	ref := runtime.Ref{}
	if n, ok := c.(interface{ MakeRef() runtime.Ref }); ok {
		ref = n.MakeRef()
	} else if p, ok := c.(*runtime.Process); ok {
		ref = p.Node().MakeRef()
	}
	v, err := c.Call(runtime.Name(PoolName), checkoutReq{ref: ref, block: block}, timeout)
	if err != nil {
		if errors.Is(err, runtime.ErrTimeout) {
			pl.tos.Add(1)
			_ = c.Send(runtime.Name(PoolName), cancelMsg{ref})
		}
		return runtime.PID{}, err
	}
	if e, ok := v.(error); ok {
		return runtime.PID{}, e
	}
	pl.outs.Add(1)
	return v.(runtime.PID), nil
}

// Checkin returns a borrowed worker (poolboy:checkin/2).
func (pl *Pool) Checkin(c runtime.Caller, worker runtime.PID) {
	_ = c.Send(runtime.Name(PoolName), checkinMsg{worker})
}

// Transaction checks a worker out, runs fn with it and checks it in,
// whatever fn returns (poolboy:transaction/3).
func (pl *Pool) Transaction(c runtime.Caller, timeout time.Duration, fn func(worker runtime.PID) error) error {
	w, err := pl.Checkout(c, true, timeout)
	if err != nil {
		return fmt.Errorf("db_pool: checkout: %w", err)
	}
	defer pl.Checkin(c, w)
	return fn(w)
}

// SupervisorSpec is db_pool's child spec: the pool process, which starts
// its workers linked to itself as poolboy does.
func (pl *Pool) SupervisorSpec() supervisor.ChildSpec {
	return supervisor.ChildSpec{
		ID: PoolName, Restart: supervisor.Permanent, Module: PoolName, Version: "1",
		Start: func(p *runtime.Process) (runtime.PID, error) {
			return genserver.StartLink(p, &poolServer{pl: pl}, nil, genserver.Options{Name: PoolName, Module: PoolName, Version: "1", TrapExit: true})
		},
	}
}

type waiter struct {
	from runtime.From
	ref  runtime.Ref
	mon  runtime.Ref
}

type poolState struct {
	idle     []runtime.PID
	borrowed map[runtime.PID]borrow // worker -> borrower
	byMon    map[runtime.Ref]runtime.PID
	byRef    map[runtime.Ref]runtime.PID
	overflow map[runtime.PID]bool
	waiting  *list.List // of *waiter, in arrival order
	workers  map[runtime.PID]bool
}

type borrow struct {
	mon runtime.Ref
	ref runtime.Ref
}

type poolServer struct{ pl *Pool }

func (s *poolServer) Init(p *runtime.Process, _ any) genserver.Result {
	st := &poolState{borrowed: map[runtime.PID]borrow{}, byMon: map[runtime.Ref]runtime.PID{},
		byRef: map[runtime.Ref]runtime.PID{}, overflow: map[runtime.PID]bool{}, waiting: list.New(), workers: map[runtime.PID]bool{}}
	for i := 0; i < s.pl.cfg.Size; i++ {
		w, err := s.pl.cfg.NewWorker(p)
		if err != nil {
			return genserver.Stop(fmt.Errorf("db_pool: starting worker %d: %w", i+1, err), nil)
		}
		st.workers[w] = true
		st.idle = append(st.idle, w)
	}
	s.publish(st)
	return genserver.Ok(st)
}

func (s *poolServer) publish(st *poolState) {
	s.pl.stats.Store(&PoolStats{
		Size: s.pl.cfg.Size, MaxOverflow: s.pl.cfg.MaxOverflow,
		Busy: len(st.borrowed), Idle: len(st.idle), Overflow: len(st.overflow), Waiting: st.waiting.Len(),
	})
}

// lend gives worker w to the caller behind from, monitoring the borrower.
func (s *poolServer) lend(p *runtime.Process, st *poolState, w runtime.PID, from runtime.From, ref runtime.Ref) {
	b := borrow{ref: ref}
	if caller := from.Caller(); !caller.IsZero() {
		b.mon = p.Monitor(caller)
		st.byMon[b.mon] = w
	}
	st.borrowed[w] = b
	if !ref.IsZero() {
		st.byRef[ref] = w
	}
	s.publish(st) // a borrower reading Stats sees its own checkout
	from.Reply(w)
}

func (s *poolServer) HandleCall(p *runtime.Process, req any, from runtime.From, state any) genserver.Result {
	st := state.(*poolState)
	defer s.publish(st)
	r, ok := req.(checkoutReq)
	if !ok {
		return genserver.Reply(fmt.Errorf("db_pool: unknown request %T", req), st)
	}
	switch {
	case len(st.idle) > 0:
		w := st.idle[len(st.idle)-1]
		st.idle = st.idle[:len(st.idle)-1]
		s.lend(p, st, w, from, r.ref)
	case len(st.overflow) < s.pl.cfg.MaxOverflow:
		w, err := s.pl.cfg.NewWorker(p)
		if err != nil {
			return genserver.Reply(err, st)
		}
		st.workers[w] = true
		st.overflow[w] = true
		s.lend(p, st, w, from, r.ref)
	case r.block:
		wt := &waiter{from: from, ref: r.ref}
		if caller := from.Caller(); !caller.IsZero() {
			wt.mon = p.Monitor(caller)
		}
		st.waiting.PushBack(wt)
	default:
		return genserver.Reply(ErrPoolFull, st)
	}
	return genserver.NoReply(st)
}

func (s *poolServer) HandleCast(p *runtime.Process, msg any, state any) genserver.Result {
	return genserver.NoReply(state)
}

// release takes w back from its borrower: to the first waiter, or idle, or
// stopped if it was an overflow worker and nobody waits.
func (s *poolServer) release(p *runtime.Process, st *poolState, w runtime.PID) {
	b, ok := st.borrowed[w]
	if !ok {
		return
	}
	delete(st.borrowed, w)
	if !b.mon.IsZero() {
		p.Demonitor(b.mon, true)
		delete(st.byMon, b.mon)
	}
	if !b.ref.IsZero() {
		delete(st.byRef, b.ref)
	}
	if e := st.waiting.Front(); e != nil {
		wt := st.waiting.Remove(e).(*waiter)
		if !wt.mon.IsZero() {
			p.Demonitor(wt.mon, true)
		}
		s.lend(p, st, w, wt.from, wt.ref)
		return
	}
	if st.overflow[w] {
		delete(st.overflow, w)
		delete(st.workers, w)
		p.Unlink(w)
		p.ExitSignal(w, runtime.Shutdown)
		return
	}
	st.idle = append(st.idle, w)
}

func (s *poolServer) HandleInfo(p *runtime.Process, msg any, state any) genserver.Result {
	st := state.(*poolState)
	defer s.publish(st)
	switch m := msg.(type) {
	case checkinMsg:
		s.release(p, st, m.worker)
	case cancelMsg:
		for e := st.waiting.Front(); e != nil; e = e.Next() {
			if wt := e.Value.(*waiter); wt.ref == m.ref {
				if !wt.mon.IsZero() {
					p.Demonitor(wt.mon, true)
				}
				st.waiting.Remove(e)
				return genserver.NoReply(st)
			}
		}
		if w, ok := st.byRef[m.ref]; ok {
			s.release(p, st, w) // handed over just as the caller gave up
		}
	case runtime.DownMsg:
		if w, ok := st.byMon[m.Ref]; ok {
			s.release(p, st, w) // the borrower died: its worker comes back
			return genserver.NoReply(st)
		}
		for e := st.waiting.Front(); e != nil; e = e.Next() {
			if wt := e.Value.(*waiter); wt.mon == m.Ref {
				st.waiting.Remove(e)
				break
			}
		}
	case runtime.ExitMsg:
		if !st.workers[m.From] {
			// Not a worker: the parent's exit, handled by genserver, or an
			// unrelated linked process.
			return genserver.NoReply(st)
		}
		s.replace(p, st, m.From)
	}
	return genserver.NoReply(st)
}

// replace forgets a crashed worker and starts another unless it was an
// overflow worker.
func (s *poolServer) replace(p *runtime.Process, st *poolState, w runtime.PID) {
	delete(st.workers, w)
	if b, ok := st.borrowed[w]; ok {
		delete(st.borrowed, w)
		if !b.mon.IsZero() {
			p.Demonitor(b.mon, true)
			delete(st.byMon, b.mon)
		}
		delete(st.byRef, b.ref)
	}
	for i, x := range st.idle {
		if x == w {
			st.idle = append(st.idle[:i], st.idle[i+1:]...)
			break
		}
	}
	if st.overflow[w] {
		delete(st.overflow, w)
		return
	}
	s.pl.repl.Add(1)
	nw, err := s.pl.cfg.NewWorker(p)
	if err != nil {
		p.Exit(fmt.Errorf("db_pool: replacing a worker: %w", err))
	}
	st.workers[nw] = true
	// The new worker serves the first waiter, if any, as a checkin would.
	st.borrowed[nw] = borrow{}
	s.release(p, st, nw)
}
