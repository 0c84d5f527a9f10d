package runtime

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxProcesses is the process limit of a node whose Options leave it
// unset, the same as Erlang's default +P.
const DefaultMaxProcesses = 1 << 20

// Infinity is the timeout that never expires.
const Infinity time.Duration = -1

// Options configure a Node. The zero value is a node with the default limit.
type Options struct {
	// MaxProcesses caps the number of live processes, as +P does.
	MaxProcesses int
}

const tableShards = 64

// The process table maps a process number to its process. Numbers are
// handed out in order, so the table is made of pages of consecutive numbers,
// found by page number in a sharded map: a spawn writes one pointer into a
// page that is usually already there, which is cheaper and touches less
// memory than a map entry per process. A page is freed when its last
// process exits, once all its numbers have been handed out.
const (
	pageBits = 6
	pageSize = 1 << pageBits
)

type procPage struct {
	procs [pageSize]*Process
	live  int
}

type tableShard struct {
	mu    sync.RWMutex
	pages map[uint64]*procPage // by process number >> pageBits
	_     [40]byte             // keep shards on separate cache lines
}

// Node is one runtime instance: its processes, registry and event stream.
// Tests create a node each; the observer binary runs one.
type Node struct {
	maxProcs    int
	started     time.Time
	startedUnix int64 // started in Unix nanoseconds

	nextID  atomic.Uint64
	nextRef atomic.Uint64

	shards [tableShards]tableShard
	count  atomic.Int64

	zombies  atomic.Int64
	spawned  atomic.Uint64
	exited   atomic.Uint64
	messages atomic.Uint64

	regMu sync.RWMutex
	names map[string]*Process

	events    eventBus
	sched     scheduler
	deadlines [deadlineShards]deadlineShard
	sweeper   callSweeper
}

// NewNode starts an empty node.
func NewNode(opts Options) *Node {
	now := time.Now()
	n := &Node{maxProcs: opts.MaxProcesses, started: now, startedUnix: now.UnixNano(), names: make(map[string]*Process)}
	n.sched.work = make(chan *Process)
	if n.maxProcs <= 0 {
		n.maxProcs = DefaultMaxProcesses
	}
	for i := range n.shards {
		n.shards[i].pages = make(map[uint64]*procPage)
	}
	for i := range n.deadlines {
		n.deadlines[i].node = n
	}
	n.sweeper.node = n
	return n
}

// MaxProcesses returns the node's process limit.
func (n *Node) MaxProcesses() int { return n.maxProcs }

// MakeRef returns a reference unique on this node (make_ref/0).
func (n *Node) MakeRef() Ref { return Ref{n.nextRef.Add(1)} }

func (n *Node) shard(id uint64) *tableShard { return &n.shards[(id>>pageBits)%tableShards] }

// Lookup returns the live process with the given number.
func (n *Node) Lookup(id uint64) (PID, bool) {
	s := n.shard(id)
	s.mu.RLock()
	var p *Process
	if pg := s.pages[id>>pageBits]; pg != nil {
		p = pg.procs[id&(pageSize-1)]
	}
	s.mu.RUnlock()
	if p == nil {
		return PID{}, false
	}
	return PID{p}, true
}

// ParsePID finds the live process that "<0.42.0>" names.
func (n *Node) ParsePID(s string) (PID, error) {
	id, err := ParsePIDNumber(s)
	if err != nil {
		return PID{}, err
	}
	pid, ok := n.Lookup(id)
	if !ok {
		return PID{}, &ExitError{Reason: NoProc}
	}
	return pid, nil
}

// ProcessCount is the number of live processes.
func (n *Node) ProcessCount() int { return int(n.count.Load()) }

func (n *Node) insert(p *Process) {
	s := n.shard(p.id)
	key := p.id >> pageBits
	s.mu.Lock()
	pg := s.pages[key]
	if pg == nil {
		pg = new(procPage)
		s.pages[key] = pg
	}
	pg.procs[p.id&(pageSize-1)] = p
	pg.live++
	s.mu.Unlock()
}

func (n *Node) remove(p *Process) {
	s := n.shard(p.id)
	key := p.id >> pageBits
	s.mu.Lock()
	if pg := s.pages[key]; pg != nil && pg.procs[p.id&(pageSize-1)] == p {
		pg.procs[p.id&(pageSize-1)] = nil
		pg.live--
		// A page whose numbers are not all handed out yet stays, or a
		// process spawned and exiting alone would allocate it every time.
		if pg.live == 0 && (key+1)<<pageBits <= n.nextID.Load() {
			delete(s.pages, key)
		}
	}
	s.mu.Unlock()
}

// each calls fn for every live process, shard by shard, without stopping
// the node: processes spawned or exiting meanwhile may or may not be seen.
func (n *Node) each(fn func(*Process)) {
	var batch []*Process
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.RLock()
		batch = batch[:0]
		for _, pg := range s.pages {
			for _, p := range pg.procs {
				if p != nil {
					batch = append(batch, p)
				}
			}
		}
		s.mu.RUnlock()
		for _, p := range batch {
			fn(p)
		}
	}
}

// Register associates name with pid (register/2).
func (n *Node) Register(name string, pid PID) error {
	if name == "" || pid.p == nil {
		return ErrBadArg
	}
	return n.register(name, pid.p)
}

func (n *Node) register(name string, p *Process) error {
	n.regMu.Lock()
	if owner, ok := n.names[name]; ok {
		n.regMu.Unlock()
		return &AlreadyRegisteredError{Name: name, PID: PID{owner}}
	}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		n.regMu.Unlock()
		return &ExitError{PID: PID{p}, Reason: NoProc}
	}
	if p.name != "" {
		old := p.name
		p.mu.Unlock()
		n.regMu.Unlock()
		return &AlreadyRegisteredError{Name: old, PID: PID{p}}
	}
	p.name = name
	p.mu.Unlock()
	n.names[name] = p
	n.regMu.Unlock()
	n.publish(Event{Kind: EventRegister, PID: PID{p}, Name: name})
	return nil
}

// Unregister removes a registered name (unregister/1).
func (n *Node) Unregister(name string) error {
	n.regMu.Lock()
	p, ok := n.names[name]
	if !ok {
		n.regMu.Unlock()
		return ErrNotRegistered
	}
	delete(n.names, name)
	p.mu.Lock()
	if p.name == name {
		p.name = ""
	}
	p.mu.Unlock()
	n.regMu.Unlock()
	n.publish(Event{Kind: EventUnregister, PID: PID{p}, Name: name})
	return nil
}

// unregisterDead frees a dead process's name.
func (n *Node) unregisterDead(name string, p *Process) {
	n.regMu.Lock()
	if n.names[name] == p {
		delete(n.names, name)
	}
	n.regMu.Unlock()
}

// Whereis returns the process registered under name (whereis/1).
func (n *Node) Whereis(name string) (PID, bool) {
	p := n.lookupName(name)
	if p == nil {
		return PID{}, false
	}
	return PID{p}, true
}

func (n *Node) lookupName(name string) *Process {
	n.regMu.RLock()
	p := n.names[name]
	n.regMu.RUnlock()
	return p
}

// Registered lists the registered names (registered/0).
func (n *Node) Registered() []string {
	n.regMu.RLock()
	out := make([]string, 0, len(n.names))
	for name := range n.names {
		out = append(out, name)
	}
	n.regMu.RUnlock()
	return out
}

// Send delivers msg to a process from outside any process. Sending to a
// dead PID is silently dropped, as in Erlang; sending to an unregistered
// name is ErrNotRegistered (badarg).
func (n *Node) Send(to Target, msg any) error {
	t := to.resolve(n)
	if t == nil {
		if _, ok := to.(Name); ok {
			return ErrNotRegistered
		}
		return nil
	}
	t.enqueue(nil, msg)
	return nil
}

// Exit sends an exit signal from outside any process (exit/2 with an
// undefined sender).
func (n *Node) Exit(to PID, reason any) {
	if to.p != nil {
		to.p.signal(nil, reason, false)
	}
}

// Call makes a synchronous request from outside any process.
func (n *Node) Call(to Target, req any, timeout time.Duration) (any, error) {
	return call(n, nil, to, req, timeout, false)
}

// Spawn starts a body process: fn runs in its own goroutine and receives
// with Receive. A PID is returned once the process exists.
func (n *Node) Spawn(fn func(p *Process), opts SpawnOpts) (PID, error) {
	p, err := n.spawn(nil, modeBody, fn, nil, opts)
	return PID{p}, err
}

// SpawnBehaviour starts a message-driven process running b.
func (n *Node) SpawnBehaviour(b Behaviour, opts SpawnOpts) (PID, error) {
	p, err := n.spawn(nil, modeBehaviour, nil, b, opts)
	return PID{p}, err
}

// SpawnInit starts a message-driven process running b, and runs its Init
// on the calling goroutine before it returns, as Process.SpawnInit does.
func (n *Node) SpawnInit(b Behaviour, opts SpawnOpts) (pid PID, exited bool, reason any, err error) {
	if opts.Link || opts.Monitor {
		return PID{}, false, nil, ErrBadArg
	}
	return n.spawnInit(nil, b, opts)
}

// Watch is a monitor held by code outside any process.
type Watch struct {
	Ref Ref
	// C receives the single DownMsg.
	C      <-chan DownMsg
	ch     chan DownMsg
	target *Process
}

func (w *Watch) deliverDown(d DownMsg) {
	select {
	case w.ch <- d:
	default:
	}
}

// Cancel removes the monitor (demonitor/1).
func (w *Watch) Cancel() {
	if w.target != nil {
		w.target.removeMonitor(w.Ref.id)
	}
}

// Monitor watches a process from outside any process; the DownMsg arrives
// on the returned Watch's channel, at once with noproc if it is not alive.
func (n *Node) Monitor(to Target) *Watch {
	ch := make(chan DownMsg, 1)
	w := &Watch{Ref: n.MakeRef(), C: ch, ch: ch}
	t := to.resolve(n)
	if t == nil || !t.addMonitor(w.Ref.id, w) {
		pid := PID{t}
		w.deliverDown(DownMsg{Ref: w.Ref, PID: pid, Reason: NoProc})
		return w
	}
	w.target = t
	return w
}
