package runtime

import (
	"container/heap"
	"time"
)

// Status is what a process is doing, as the observer shows it.
type Status uint8

// Process statuses.
const (
	StatusWaiting     Status = iota // idle, waiting for a message
	StatusRunning                   // its code is running
	StatusSuspended                 // suspended by sys
	StatusHibernating               // idle with its buffers released
	StatusExiting                   // dead, its exit being delivered
	StatusZombie                    // killed while its code still runs
)

var statusNames = [...]string{"waiting", "running", "suspended", "hibernating", "exiting", "zombie"}

// String names the status.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// ProcessInfo is one process as a snapshot sees it.
type ProcessInfo struct {
	PID         PID
	Name        string
	Behaviour   string
	Module      string
	Version     string
	Status      Status
	MailboxLen  int
	MessagesIn  uint64
	MessagesOut uint64
	HandlerTime time.Duration
	Links       int
	Monitors    int // monitors held on this process
	Watching    int // monitors this process holds
	Parent      PID
	Started     time.Time
	TrapExit    bool
	Tracing     bool
}

// ProcessDetail adds what the observer shows for one selected process.
type ProcessDetail struct {
	ProcessInfo
	LinkedTo    []PID
	MonitoredBy []PID // processes monitoring this one (monitors held by code outside processes are counted, not listed)
	MonitorsOn  []PID
	MailboxHead []any
	ExitReason  any
	Alive       bool
}

func (p *Process) infoLocked() ProcessInfo {
	info := ProcessInfo{
		PID:         PID{p},
		Name:        p.name,
		MailboxLen:  int(p.mbLen.Load()),
		MessagesIn:  p.msgsIn.Load(),
		MessagesOut: p.msgsOut.Load(),
		HandlerTime: time.Duration(p.handlerNanos.Load()),
		Links:       len(p.links),
		Monitors:    len(p.monitors),
		Watching:    len(p.watching),
		Parent:      p.parent,
		Started:     time.Unix(0, p.started),
		TrapExit:    p.trapExit.Load(),
		Tracing:     p.tracing.Load(),
	}
	if m := p.module.Load(); m != nil {
		info.Behaviour, info.Module, info.Version = m.Behaviour, m.Module, m.Version
	}
	switch {
	case p.zombie:
		info.Status = StatusZombie
	case p.dead:
		info.Status = StatusExiting
	case p.suspended:
		info.Status = StatusSuspended
	case p.inHandler:
		info.Status = StatusRunning
	case p.hibernating:
		info.Status = StatusHibernating
	default:
		info.Status = StatusWaiting
	}
	return info
}

// Info returns one process's snapshot.
func (pid PID) Info() ProcessInfo {
	if pid.p == nil {
		return ProcessInfo{}
	}
	pid.p.mu.Lock()
	defer pid.p.mu.Unlock()
	return pid.p.infoLocked()
}

// Detail returns everything the observer shows of one process, with up to
// head messages from the front of its mailbox (copied, the queue untouched).
func (pid PID) Detail(head int) ProcessDetail {
	p := pid.p
	if p == nil {
		return ProcessDetail{ExitReason: NoProc}
	}
	p.mu.Lock()
	d := ProcessDetail{ProcessInfo: p.infoLocked(), Alive: !p.dead, ExitReason: p.reason}
	for l := range p.links {
		d.LinkedTo = append(d.LinkedTo, PID{l})
	}
	for _, r := range p.monitors {
		if o, ok := r.(*Process); ok {
			d.MonitoredBy = append(d.MonitoredBy, PID{o})
		}
	}
	for _, t := range p.watching {
		d.MonitorsOn = append(d.MonitorsOn, PID{t})
	}
	if head > 0 {
		d.MailboxHead = p.mb.peek(head)
	}
	p.mu.Unlock()
	return d
}

// MailboxLen reads the mailbox length without locking.
func (pid PID) MailboxLen() int {
	if pid.p == nil {
		return 0
	}
	return int(pid.p.mbLen.Load())
}

// Snapshot appends every live process to buf[:0] and returns it. It takes
// each process's lock briefly, one at a time, never the whole node.
func (n *Node) Snapshot(buf []ProcessInfo) []ProcessInfo {
	buf = buf[:0]
	n.each(func(p *Process) {
		p.mu.Lock()
		if !p.dead {
			buf = append(buf, p.infoLocked())
		}
		p.mu.Unlock()
	})
	return buf
}

// SortKey chooses the order of a Top query.
type SortKey uint8

// Keys a Top query can rank by; each is read from atomics, without locks.
const (
	ByMailbox SortKey = iota
	ByMessagesIn
	ByMessagesOut
	ByHandlerTime
	ByAge
)

type ranked struct {
	p   *Process
	key int64
}

type rankHeap []ranked

func (h rankHeap) Len() int           { return len(h) }
func (h rankHeap) Less(i, j int) bool { return h[i].less(h[j]) }

// less orders by key, then by process number, older processes ranking
// higher among equals, so the same query gives the same rows every time.
func (r ranked) less(o ranked) bool {
	if r.key != o.key {
		return r.key < o.key
	}
	return r.p.id > o.p.id
}
func (h rankHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *rankHeap) Push(x any)   { *h = append(*h, x.(ranked)) }
func (h *rankHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (p *Process) rankKey(k SortKey, now int64) int64 {
	switch k {
	case ByMessagesIn:
		return int64(p.msgsIn.Load())
	case ByMessagesOut:
		return int64(p.msgsOut.Load())
	case ByHandlerTime:
		return p.handlerNanos.Load()
	case ByAge:
		return now - p.started
	}
	return p.mbLen.Load()
}

// Top returns the k processes with the largest key, largest first, keeping a
// k-sized heap rather than copying or sorting every process.
func (n *Node) Top(k int, key SortKey) []ProcessInfo {
	if k <= 0 {
		return nil
	}
	now := time.Now().UnixNano()
	h := make(rankHeap, 0, k)
	n.each(func(p *Process) {
		v := p.rankKey(key, now)
		if len(h) < k {
			heap.Push(&h, ranked{p, v})
		} else if c := (ranked{p, v}); h[0].less(c) {
			h[0] = c
			heap.Fix(&h, 0)
		}
	})
	out := make([]ProcessInfo, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		r := heap.Pop(&h).(ranked)
		out[i] = PID{r.p}.Info()
	}
	return out
}

// NodeStats are the node-wide counters the observer's overview shows.
type NodeStats struct {
	Processes    int
	MaxProcesses int
	Zombies      int
	Spawned      uint64
	Exited       uint64
	Messages     uint64
	Registered   int
	Uptime       time.Duration
	EventsLost   uint64
}

// Stats reads the node's counters.
func (n *Node) Stats() NodeStats {
	n.regMu.RLock()
	reg := len(n.names)
	n.regMu.RUnlock()
	var lost uint64
	if subs := n.events.subs.Load(); subs != nil {
		for _, s := range *subs {
			lost += s.Lost()
		}
	}
	return NodeStats{
		Processes:    int(n.count.Load()),
		MaxProcesses: n.maxProcs,
		Zombies:      int(n.zombies.Load()),
		Spawned:      n.spawned.Load(),
		Exited:       n.exited.Load(),
		Messages:     n.messages.Load(),
		Registered:   reg,
		Uptime:       time.Since(n.started),
		EventsLost:   lost,
	}
}
