package runtime

import (
	"sync"
	"sync/atomic"
)

// maxIdleWorkers bounds the goroutines kept parked for reuse. A behaviour
// process borrows a worker goroutine only while it has messages; reusing
// parked workers keeps their grown stacks and saves creating a goroutine
// (and growing its stack again) for every burst of messages.
const maxIdleWorkers = 256

// scheduler hands processes with messages to worker goroutines. A process
// goes straight to a parked worker when there is one and no other hand-off
// is under way. Otherwise it waits in a run queue, and one helper worker (a
// parked one woken, or a new one) is sent for the queue; workers that finish
// a drain take queued processes before parking. So a burst of processes to
// start costs queue operations rather than a wake-up or a goroutine each,
// and a queued process always has a worker on its way even if every running
// one blocks in a handler. While a hand-off is under way, sending the helper
// is left to the worker that receives it, so the goroutine that schedules a
// burst (a spawner, a broadcaster) wakes at most one worker.
type scheduler struct {
	work     chan *Process // parked workers receive a process, or nil to help with the queue
	idle     atomic.Int32
	inflight atomic.Int32 // processes handed to parked workers that have not started them yet
	deferred atomic.Bool  // the helper is to be sent by the next worker to start

	mu     sync.Mutex
	queue  []*Process // FIFO ring
	head   int
	qn     int
	qlen   atomic.Int32 // mirrors qn for a lock-free look
	helper bool         // a helper is on its way to the queue
}

// schedule runs p's drain on a parked worker, or queues it.
func (n *Node) schedule(p *Process) {
	s := &n.sched
	if s.inflight.Load() == 0 && s.qlen.Load() == 0 {
		s.inflight.Add(1)
		select {
		case s.work <- p:
			return
		default:
		}
		n.handedOff()
	}
	s.mu.Lock()
	s.push(p)
	call := !s.helper
	s.helper = true
	s.mu.Unlock()
	if call {
		if s.inflight.Load() > 0 {
			// A worker about to start sends the helper. If it started
			// meanwhile, whichever of it and us sees the other first does.
			s.deferred.Store(true)
			if s.inflight.Load() > 0 || !s.deferred.CompareAndSwap(true, false) {
				return
			}
		}
		n.callHelper()
	}
}

// handedOff ends a hand-off: the worker that received the process starts
// it, or the attempt found no parked worker. A helper whose sending was left
// to it is sent now.
func (n *Node) handedOff() {
	s := &n.sched
	s.inflight.Add(-1)
	if s.deferred.Load() && s.deferred.CompareAndSwap(true, false) {
		n.callHelper()
	}
}

// callHelper wakes a parked worker to serve the run queue, or starts one.
func (n *Node) callHelper() {
	select {
	case n.sched.work <- nil:
	default:
		go n.worker(nil)
	}
}

// takeQueued pops the run queue. A helper hands its role on: if processes
// remain queued, another helper is sent for them.
func (n *Node) takeQueued(helper bool) *Process {
	s := &n.sched
	s.mu.Lock()
	if helper {
		s.helper = false
	}
	p := s.pop()
	call := false
	if s.qn > 0 && !s.helper {
		s.helper = true
		call = true
	}
	s.mu.Unlock()
	if call {
		n.callHelper()
	}
	return p
}

func (n *Node) worker(p *Process) {
	s := &n.sched
	b := new(batch)
	helper := p == nil
	for {
		if p == nil && (helper || s.qlen.Load() > 0) {
			p = n.takeQueued(helper)
			helper = false
		}
		if p != nil {
			p.drain(b)
			p = nil
			continue
		}
		if s.idle.Add(1) > maxIdleWorkers {
			s.idle.Add(-1)
			return
		}
		p = <-s.work
		s.idle.Add(-1)
		helper = p == nil
		if !helper {
			n.handedOff()
		}
	}
}

func (s *scheduler) push(p *Process) {
	if s.qn == len(s.queue) {
		size := 2 * len(s.queue)
		if size == 0 {
			size = 16
		}
		q := make([]*Process, size)
		for i := 0; i < s.qn; i++ {
			q[i] = s.queue[(s.head+i)%len(s.queue)]
		}
		s.queue, s.head = q, 0
	}
	s.queue[(s.head+s.qn)%len(s.queue)] = p
	s.qn++
	s.qlen.Store(int32(s.qn))
}

func (s *scheduler) pop() *Process {
	if s.qn == 0 {
		return nil
	}
	p := s.queue[s.head]
	s.queue[s.head] = nil
	s.head = (s.head + 1) % len(s.queue)
	s.qn--
	s.qlen.Store(int32(s.qn))
	if s.qn == 0 && len(s.queue) > 1024 {
		s.queue, s.head = nil, 0 // a burst is over: drop its buffer
	}
	return p
}
