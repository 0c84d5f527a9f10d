package runtime

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Request is the message a synchronous call delivers: the caller's request
// Body and the From to reply to. Behaviours receive it in Handle.
type Request struct {
	From From
	Body any
}

// From identifies a pending call; Reply answers it, now or later, from any
// goroutine (gen_server:reply/2). A reply after the caller gave up is dropped.
type From struct {
	slot   *callSlot
	gen    uint64
	caller PID
}

// Caller returns the calling process, or the zero PID for a caller outside
// any process.
func (f From) Caller() PID { return f.caller }

// Reply answers the call.
func (f From) Reply(v any) {
	if f.slot != nil {
		f.slot.put(f.gen, callResult{value: v})
	}
}

// IsZero reports whether f is unset.
func (f From) IsZero() bool { return f.slot == nil }

type callOutcome uint8

const (
	callReplied callOutcome = iota
	callDown                // the callee exited; value is its reason
	callTimedOut
	callCallerExited
)

type callResult struct {
	value any
	kind  callOutcome
}

// callSlot is where a caller waits for a call's outcome. A slot serves one
// call at a time and is reused: a process keeps its own, callers outside
// processes take one from a pool. Every call has a new generation; the
// outcome of a call is claimed by a compare-and-swap on (generation, done),
// so the first of reply, callee's DOWN, timeout or caller's exit wins, and
// whatever comes later, including a reply to an earlier call, is dropped.
// Only the winner sends on ch, which therefore never blocks.
type callSlot struct {
	ch    chan callResult
	state atomic.Uint64 // gen<<1, |1 once the outcome is claimed
	gen   uint64        // written by the caller while the slot is idle
	busy  atomic.Bool   // a process's slot is in use by a call

	// The callee's pending calls (the monitors calls hold on it) form a
	// list guarded by the callee's lock. callee is set while the slot is
	// in the list; the caller may read it without the lock.
	callee     atomic.Pointer[Process]
	prev, next *callSlot

	// A short timeout's deadline is in a shard's heap (guarded by the
	// shard's lock); a long one is swept (see callSweeper) and its fields
	// are guarded by the callee's lock.
	deadline int64
	hidx     int
	coarse   bool
	epoch    uint64
	timeout  time.Duration
}

func newCallSlot() *callSlot {
	s := &callSlot{ch: make(chan callResult, 1), hidx: -1}
	s.state.Store(1) // generation 0, done: nothing pending
	return s
}

var slotPool = sync.Pool{New: func() any { return newCallSlot() }}

// begin starts a new call on the slot and returns its generation.
func (s *callSlot) begin() uint64 {
	s.gen++
	s.state.Store(s.gen << 1)
	return s.gen
}

// put delivers the outcome of call gen if it is still pending.
func (s *callSlot) put(gen uint64, r callResult) bool {
	if !s.state.CompareAndSwap(gen<<1, gen<<1|1) {
		return false
	}
	s.ch <- r
	return true
}

// cancel gives up call gen before anyone could have answered it; an
// outcome that was delivered meanwhile is consumed.
func (s *callSlot) cancel(gen uint64) {
	if !s.state.CompareAndSwap(gen<<1, gen<<1|1) {
		<-s.ch
	}
}

// putAny delivers r to whatever call is pending on the slot, if any.
func (s *callSlot) putAny(r callResult) {
	for {
		st := s.state.Load()
		if st&1 != 0 {
			return
		}
		if s.state.CompareAndSwap(st, st|1) {
			s.ch <- r
			return
		}
	}
}

// The pending calls of a process are a list, oldest first, linked through
// next; the first call's prev is the last call, so calls are appended in
// constant time.

// linkCallLocked records a pending call on p (p.mu held): it is p's monitor
// for the duration of the call.
func (p *Process) linkCallLocked(s *callSlot) {
	s.callee.Store(p)
	s.next = nil
	if first := p.calls; first == nil {
		s.prev = s
		p.calls = s
	} else {
		last := first.prev
		last.next = s
		s.prev = last
		first.prev = s
	}
}

func (p *Process) unlinkCallLocked(s *callSlot) {
	first := p.calls
	switch {
	case s == first:
		p.calls = s.next
		if s.next != nil {
			s.next.prev = s.prev
		}
	case s.next == nil: // the last call
		s.prev.next = nil
		first.prev = s.prev
	default:
		s.prev.next = s.next
		s.next.prev = s.prev
	}
	s.prev, s.next = nil, nil
	s.callee.Store(nil)
}

// unlinkCall removes a finished call from p's pending calls, unless p
// already did (see unlinkDoneCallsLocked) or p's death took it.
func (p *Process) unlinkCall(s *callSlot) {
	if s.callee.Load() == nil {
		return
	}
	p.mu.Lock()
	if s.callee.Load() == p {
		p.unlinkCallLocked(s)
	}
	p.mu.Unlock()
}

// unlinkDoneCallsLocked removes the oldest calls that have their outcome
// (p.mu held), stopping at the first still pending. The callee's drainer
// does it after running its code, which is usually where the reply came
// from, so that the caller, woken by the reply, finds its slot already
// unlinked and need not take the callee's lock. A call answered out of
// order is unlinked by its caller.
func (p *Process) unlinkDoneCallsLocked() {
	for s := p.calls; s != nil && s.state.Load()&1 != 0; s = p.calls {
		p.unlinkCallLocked(s)
	}
}

// pendingCall is a call a dying callee owes a DOWN.
type pendingCall struct {
	slot *callSlot
	gen  uint64
}

// takeCallsLocked detaches p's pending calls (p.mu held) for die to fail.
func (p *Process) takeCallsLocked() []pendingCall {
	var out []pendingCall
	for s := p.calls; s != nil; {
		next := s.next
		out = append(out, pendingCall{s, s.gen})
		s.prev, s.next = nil, nil
		s.callee.Store(nil)
		s = next
	}
	p.calls = nil
	return out
}

// ownSlot returns the slot p's own calls use, or nil if it is busy (a
// call made from some goroutine other than the process's own).
func (p *Process) ownSlot() *callSlot {
	x := p.ext.Load()
	if x == nil {
		p.mu.Lock()
		x = p.extLocked()
		p.mu.Unlock()
	}
	s := x.slot.Load()
	if s == nil {
		s = newCallSlot()
		if !x.slot.CompareAndSwap(nil, s) {
			s = x.slot.Load()
		}
	}
	if !s.busy.CompareAndSwap(false, true) {
		return nil
	}
	return s
}

const deadlineShards = 16

// deadlineShard holds the deadlines of pending calls in a min-heap, with
// one timer armed for the earliest. A call adds its deadline and removes it
// when answered, two short critical sections, instead of arming and
// stopping a runtime timer of its own; the timer fires only when a deadline
// may have passed, and then fails the calls whose deadline has.
type deadlineShard struct {
	mu    sync.Mutex
	heap  []*callSlot
	timer *time.Timer
	armed int64 // deadline the timer is set for; 0 when not armed
	node  *Node
	_     [24]byte
}

// coarseTimeout is the shortest call timeout the sweeper handles; shorter
// ones get an exact deadline in a shard's heap.
const coarseTimeout = time.Second

// sweepTick is the sweeper's period: a long timeout fails at most about two
// ticks after its deadline, never before.
const sweepTick = 5 * time.Millisecond

// callSweeper fails calls with long timeouts. A call records only the
// sweeper's epoch, under the callee's lock it takes anyway; the callee joins
// the sweeper's list if it is not on it yet. Every tick, while the list is
// not empty, the sweeper starts a new epoch, reads the clock, and walks each
// listed callee's pending calls: a call from an earlier epoch started before
// this reading, so its deadline is stamped as this reading plus its timeout
// (never early); a call whose deadline has passed fails. A callee without
// pending calls leaves the list. So a call with a long timeout reads no
// clock and takes no extra lock.
type callSweeper struct {
	mu      sync.Mutex
	callees []*Process
	spare   []*Process
	timer   *time.Timer
	running bool
	epoch   atomic.Uint64
	node    *Node
}

// add puts a callee on the list (its swept flag was just set).
func (sw *callSweeper) add(p *Process) {
	sw.mu.Lock()
	sw.callees = append(sw.callees, p)
	if !sw.running {
		sw.running = true
		if sw.timer == nil {
			sw.timer = time.AfterFunc(sweepTick, sw.sweep)
		} else {
			sw.timer.Reset(sweepTick)
		}
	}
	sw.mu.Unlock()
}

func (sw *callSweeper) sweep() {
	sw.mu.Lock()
	list := sw.callees
	sw.callees, sw.spare = sw.spare[:0], nil
	sw.mu.Unlock()

	k := sw.epoch.Add(1)
	now := sw.node.monoNow()
	keep := list[:0]
	for _, t := range list {
		t.mu.Lock()
		for s := t.calls; s != nil; s = s.next {
			if !s.coarse {
				continue
			}
			if s.deadline == 0 {
				if s.epoch >= k {
					continue // started after the clock was read
				}
				s.deadline = now + int64(s.timeout)
				if s.deadline < now {
					s.deadline = math.MaxInt64
				}
			}
			if now >= s.deadline {
				s.put(s.gen, callResult{kind: callTimedOut})
			}
		}
		if t.calls != nil {
			keep = append(keep, t)
		} else {
			t.swept = false
		}
		t.mu.Unlock()
	}

	sw.mu.Lock()
	sw.callees = append(sw.callees, keep...)
	clear(list)
	sw.spare = list[:0]
	if len(sw.callees) > 0 {
		sw.timer.Reset(sweepTick)
	} else {
		sw.running = false
	}
	sw.mu.Unlock()
}

// monoNow is the node's monotonic clock in nanoseconds.
func (n *Node) monoNow() int64 { return int64(time.Since(n.started)) }

func (sh *deadlineShard) add(s *callSlot, timeout time.Duration) {
	now := sh.node.monoNow()
	d := now + int64(timeout)
	if d < now {
		d = math.MaxInt64
	}
	sh.mu.Lock()
	s.deadline = d
	s.hidx = len(sh.heap)
	sh.heap = append(sh.heap, s)
	sh.up(s.hidx)
	if sh.armed == 0 || d < sh.armed {
		sh.armed = d
		if sh.timer == nil {
			sh.timer = time.AfterFunc(time.Duration(d-now), sh.fire)
		} else {
			sh.timer.Reset(time.Duration(d - now))
		}
	}
	sh.mu.Unlock()
}

func (sh *deadlineShard) remove(s *callSlot) {
	sh.mu.Lock()
	if i := s.hidx; i >= 0 {
		last := len(sh.heap) - 1
		if i != last {
			sh.swap(i, last)
		}
		sh.heap[last] = nil
		sh.heap = sh.heap[:last]
		s.hidx = -1
		if i != last {
			sh.down(i)
			sh.up(i)
		}
	}
	sh.mu.Unlock()
}

// fire fails the calls whose deadline has passed and re-arms the timer for
// the earliest remaining one.
func (sh *deadlineShard) fire() {
	sh.mu.Lock()
	now := sh.node.monoNow()
	for len(sh.heap) > 0 && sh.heap[0].deadline <= now {
		s := sh.heap[0]
		last := len(sh.heap) - 1
		sh.swap(0, last)
		sh.heap[last] = nil
		sh.heap = sh.heap[:last]
		s.hidx = -1
		sh.down(0)
		s.put(s.gen, callResult{kind: callTimedOut})
	}
	sh.armed = 0
	if len(sh.heap) > 0 {
		sh.armed = sh.heap[0].deadline
		sh.timer.Reset(time.Duration(sh.armed - now))
	}
	sh.mu.Unlock()
}

func (sh *deadlineShard) swap(i, j int) {
	h := sh.heap
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}

func (sh *deadlineShard) up(i int) {
	h := sh.heap
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].deadline <= h[i].deadline {
			return
		}
		sh.swap(i, parent)
		i = parent
	}
}

func (sh *deadlineShard) down(i int) {
	h := sh.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].deadline < h[l].deadline {
			m = r
		}
		if h[i].deadline <= h[m].deadline {
			return
		}
		sh.swap(i, m)
		i = m
	}
}

// call sends a request and waits for the reply, the callee's exit (the call
// is a monitor on the callee for its duration), the timeout, or the
// caller's own death.
func call(n *Node, caller *Process, to Target, body any, timeout time.Duration, sys bool) (any, error) {
	t := to.resolve(n)
	if t == nil {
		return nil, &ExitError{Reason: NoProc}
	}
	if t == caller {
		return nil, ErrCallingSelf
	}
	if sys && t.mode != modeBehaviour {
		return nil, ErrNotSys
	}
	var s *callSlot
	own := false
	if caller != nil {
		s = caller.ownSlot()
		own = s != nil
	}
	if s == nil {
		s = slotPool.Get().(*callSlot)
	}
	gen := s.begin()
	req := &Request{From: From{slot: s, gen: gen, caller: PID{caller}}, Body: body}
	s.coarse = timeout >= coarseTimeout
	s.timeout = timeout
	var res callResult
	switch t.enqueueCall(caller, s, req, sys) {
	case enqueued:
		if caller != nil && !sys {
			caller.msgsOut.Add(1)
		}
		var sh *deadlineShard
		if timeout >= 0 && !s.coarse {
			key := t.id
			if caller != nil {
				key = caller.id
			}
			sh = &n.deadlines[key%deadlineShards]
			sh.add(s, timeout)
		}
		res = <-s.ch
		if sh != nil && res.kind != callTimedOut {
			sh.remove(s)
		}
		if res.kind != callDown {
			t.unlinkCall(s)
		}
	case enqueueNoProc:
		s.cancel(gen)
		res = callResult{kind: callDown, value: NoProc}
	case enqueueCallerDead:
		s.cancel(gen)
		res = callResult{kind: callCallerExited}
	}
	if own {
		s.busy.Store(false)
	} else {
		slotPool.Put(s)
	}
	switch res.kind {
	case callDown:
		return nil, &ExitError{PID: PID{t}, Reason: res.value}
	case callTimedOut:
		return nil, ErrTimeout
	case callCallerExited:
		return nil, ErrCallerExited
	}
	return res.value, nil
}

// Call makes a synchronous request from this process. The failure kinds are
// told apart with errors.Is/As: ErrNoProc, ErrTimeout, ErrCallingSelf, and
// *ExitError with the callee's reason when it exits during the call.
func (p *Process) Call(to Target, req any, timeout time.Duration) (any, error) {
	return call(p.node, p, to, req, timeout, false)
}
