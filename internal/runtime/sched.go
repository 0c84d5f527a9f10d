package runtime

import "sync/atomic"

// maxIdleWorkers bounds the goroutines kept parked for reuse. A behaviour
// process borrows a worker goroutine only while it has messages; reusing
// parked workers keeps their grown stacks and saves creating a goroutine
// (and growing its stack again) for every burst of messages.
const maxIdleWorkers = 256

type scheduler struct {
	work chan *Process
	idle atomic.Int32
}

// schedule runs p's drain on a parked worker, or on a new goroutine if
// none is parked.
func (n *Node) schedule(p *Process) {
	select {
	case n.sched.work <- p:
	default:
		go n.worker(p)
	}
}

func (n *Node) worker(p *Process) {
	for {
		p.drain()
		if n.sched.idle.Add(1) > maxIdleWorkers {
			n.sched.idle.Add(-1)
			return
		}
		p = <-n.sched.work
		n.sched.idle.Add(-1)
	}
}
