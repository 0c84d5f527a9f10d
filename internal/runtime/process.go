package runtime

import (
	"context"
	goruntime "runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

type procMode uint8

const (
	modeBody procMode = iota
	modeBehaviour
)

// Behaviour is a message-driven process body, the shape gen_server,
// gen_statem and supervisor take. Init runs first, in the new process; then
// Handle runs once per message, one at a time. To exit, either call
// Process.Exit (which unwinds) or return after arranging state; a panic is an
// abnormal exit carrying the panic value and stack.
type Behaviour interface {
	Init(p *Process)
	Handle(p *Process, msg any)
}

// SpawnOpts are the options of spawn_opt: link to and monitor the new
// process from the spawning one, and register a name. The zero value
// spawns a plain unlinked, unnamed process.
type SpawnOpts struct {
	Link     bool
	Monitor  bool
	Name     string
	TrapExit bool
}

// ModuleInfo says which behaviour and code version a process runs.
type ModuleInfo struct {
	Behaviour string
	Module    string
	Version   string
}

// downReceiver is who a monitor notifies: a process (a DownMsg in its
// mailbox) or a Watch (a channel). Pending calls are kept apart, in the
// callee's calls list.
type downReceiver interface{ deliverDown(DownMsg) }

// Process is a running process. Its methods that act as the process (Send,
// Receive, Link, Monitor, Exit, TrapExit, Call, Spawn) may be called only
// from the process's own code; the rest are safe from anywhere.
//
// The struct holds what every process needs; what only some use (a body's
// function and wake channel, a context, system messages, a call slot) is in
// procExt, allocated on first use, which keeps a spawn to one 240-byte
// object.
type Process struct {
	// The fields are laid out for the cache. Senders write the lock, the
	// mailbox and its counters, the middle of the struct; the drainer reads
	// beh, tracing and flags for every message, so they share the first
	// line with fields that never change; and the first and last 64 bytes,
	// which may share a cache line with the neighbouring process, are
	// written rarely.
	id      uint64
	node    *Node
	parent  PID
	beh     Behaviour
	started int64

	trapExit atomic.Bool
	tracing  atomic.Bool
	flags    atomic.Uint32 // flagDead, flagSys, flagHibernate

	mode        procMode    // set at spawn, then read-only
	exitReq     *exitUnwind // ExitOnReturn's reason; the process's own goroutine only
	zombie      bool        // guarded by mu, like the bools below
	initPending bool        // behaviour: Init has not run yet
	contPending bool        // behaviour: InitContinue is to run before any message
	swept       bool        // on the node's call sweeper's list

	mu          sync.Mutex // guards the fields down to links, and the bools above
	dead        bool
	dying       bool // die has begun: the name is being freed
	scheduled   bool // behaviour: a goroutine is draining the mailbox
	inHandler   bool // code of this process is running
	waiting     bool // body: blocked in Receive
	suspended   bool
	hibernating bool
	mb          mailbox
	mbLen       atomic.Int64
	msgsIn      atomic.Uint64
	calls       *callSlot // pending calls to this process (their monitors)
	ext         atomic.Pointer[procExt]

	msgsOut      atomic.Uint64
	handlerNanos atomic.Int64

	links     map[*Process]struct{}
	monitors  map[uint64]downReceiver // monitors on this process, by ref
	watching  map[uint64]*Process     // monitors this process holds, by ref
	statsBase *statsBase
	module    atomic.Pointer[ModuleInfo]
	name      string
	reason    any
}

// procExt is the part of a process that only some processes use. A body
// process gets it at spawn; others when first needed, under the lock.
type procExt struct {
	body   func(*Process)           // body process: its function
	wake   chan struct{}            // body process: wakes Receive
	ctx    context.Context          // guarded by mu
	cancel context.CancelFunc       // guarded by mu
	sysq   []any                    // system messages, guarded by mu
	slot   atomic.Pointer[callSlot] // where the process's own calls wait
}

// extLocked returns p's procExt, allocating it (p.mu held).
func (p *Process) extLocked() *procExt {
	x := p.ext.Load()
	if x == nil {
		x = new(procExt)
		p.ext.Store(x)
	}
	return x
}

// flags mirror state that the drainer checks between a batch's messages
// without taking the lock.
const (
	flagDead      uint32 = 1 << iota // the process is dead (dead)
	flagSys                          // system messages are queued
	flagHibernate                    // the code asked to hibernate (hibernating)
	flagExit                         // the code asked to exit when it returns (exitReq)
)

// initMsg is the message a behaviour's Init runs for in traces.
type initMsg struct{}

// continueMsg stands for the InitContinue step in invoke.
type continueMsg struct{}

// An InitContinuer is a Behaviour whose start has a second step, run as
// the process's next step after Init when Init asks for it with
// ContinueAfterInit: what follows the start's acknowledgement, such as
// gen_server's handle_continue after init or the actions of gen_statem's
// init. It runs before any message, system messages included.
type InitContinuer interface {
	InitContinue(p *Process)
}

// ContinueAfterInit, called from Init, makes the process's InitContinue
// (see InitContinuer) its next step. Run by SpawnInit, Init returns to
// its starter first and the step runs on a worker, as the code after
// proc_lib:init_ack runs after the starter has its answer.
func (p *Process) ContinueAfterInit() {
	if _, ok := p.beh.(InitContinuer); !ok {
		panic("runtime: ContinueAfterInit from a behaviour without InitContinue")
	}
	p.mu.Lock()
	p.contPending = true
	p.mu.Unlock()
}

func (n *Node) spawn(parent *Process, mode procMode, body func(*Process), beh Behaviour, opts SpawnOpts) (*Process, error) {
	return n.spawnStart(parent, mode, body, beh, opts, true)
}

// spawnStart is spawn; a behaviour process is handed to the scheduler only
// if schedule is set, and is otherwise left to its spawner to start with
// runInit.
func (n *Node) spawnStart(parent *Process, mode procMode, body func(*Process), beh Behaviour, opts SpawnOpts, schedule bool) (*Process, error) {
	if mode == modeBody && body == nil || mode == modeBehaviour && beh == nil {
		return nil, ErrBadArg
	}
	if (opts.Link || opts.Monitor) && parent == nil {
		return nil, ErrBadArg
	}
	if c := n.count.Add(1); c > int64(n.maxProcs) {
		n.count.Add(-1)
		return nil, &ProcessLimitError{Limit: n.maxProcs}
	}
	p := &Process{
		id:      n.nextID.Add(1),
		node:    n,
		mode:    mode,
		beh:     beh,
		started: n.startedUnix + n.monoNow(), // one clock read, not time.Now's two
	}
	// The process is visible (table, name, events) before it starts: a
	// message sent meanwhile is queued behind Init, which the first
	// drain runs, or waits for the body's first Receive.
	if mode == modeBody {
		p.ext.Store(&procExt{body: body, wake: make(chan struct{}, 1)})
		p.inHandler = true
	} else {
		p.initPending = true
		p.scheduled = true
	}
	if parent != nil {
		p.parent = PID{parent}
	}
	if opts.TrapExit {
		p.trapExit.Store(true)
	}
	n.insert(p)
	n.spawned.Add(1)
	if opts.Name != "" {
		if err := n.register(opts.Name, p); err != nil {
			n.remove(p)
			n.count.Add(-1)
			p.dead = true
			p.flags.Or(flagDead)
			return nil, err
		}
	}
	var parentReason any
	parentDead := false
	if opts.Link {
		p.links = map[*Process]struct{}{parent: {}}
		parent.mu.Lock()
		if parent.dead {
			// A parent killed while its code still runs (a zombie) gets no
			// link; the child gets the parent's exit at once, as a link to a
			// dead process would, so it cannot outlive it unnoticed.
			parentDead, parentReason = true, parent.reason
			delete(p.links, parent)
		} else {
			if parent.links == nil {
				parent.links = make(map[*Process]struct{})
			}
			parent.links[p] = struct{}{}
		}
		parent.mu.Unlock()
	}
	n.publish(Event{Kind: EventSpawn, PID: PID{p}, Other: p.parent, Name: opts.Name})
	if mode == modeBody {
		go p.runBody()
	} else if schedule {
		p.node.schedule(p)
	}
	if parentDead {
		p.signal(parent, parentReason, true)
	}
	return p, nil
}

// Spawn starts a body process from this process (spawn_opt/2).
func (p *Process) Spawn(fn func(*Process), opts SpawnOpts) (PID, Ref, error) {
	return p.spawnOpt(modeBody, fn, nil, opts)
}

// SpawnBehaviour starts a behaviour process from this process.
func (p *Process) SpawnBehaviour(b Behaviour, opts SpawnOpts) (PID, Ref, error) {
	return p.spawnOpt(modeBehaviour, nil, b, opts)
}

func (p *Process) spawnOpt(mode procMode, fn func(*Process), b Behaviour, opts SpawnOpts) (PID, Ref, error) {
	monitor := opts.Monitor
	opts.Monitor = false
	c, err := p.node.spawn(p, mode, fn, b, opts)
	if err != nil {
		return PID{}, Ref{}, err
	}
	var ref Ref
	if monitor {
		ref = p.Monitor(PID{c})
	}
	return PID{c}, ref, nil
}

// SpawnInit spawns a behaviour process as SpawnBehaviour does, and runs its
// Init on the calling goroutine before it returns. It is for a starter that
// would wait for the new process's Init anyway (proc_lib:start_link): the
// wait then costs no hand-off to a worker and no wake-up. Only Init runs
// here: messages that reach the new process meanwhile wait behind it and
// are handled on a worker afterwards. If the process is dead when Init
// returns, exited reports it and reason is its exit reason. opts.Monitor
// is refused (ErrBadArg).
func (p *Process) SpawnInit(b Behaviour, opts SpawnOpts) (pid PID, exited bool, reason any, err error) {
	if opts.Monitor {
		return PID{}, false, nil, ErrBadArg // the caller learns how Init ended
	}
	return p.node.spawnInit(p, b, opts)
}

func (n *Node) spawnInit(parent *Process, b Behaviour, opts SpawnOpts) (pid PID, exited bool, reason any, err error) {
	c, err := n.spawnStart(parent, modeBehaviour, nil, b, opts, false)
	if err != nil {
		return PID{}, false, nil, err
	}
	exited, reason = c.runInit()
	return PID{c}, exited, reason, nil
}

// runInit runs Init for a process that spawnStart left unscheduled (it is
// marked scheduled, so no sender hands it to a worker meanwhile), then
// hands the process to the scheduler if anything waits in its mailbox.
func (p *Process) runInit() (exited bool, reason any) {
	p.mu.Lock()
	if !p.dead && p.initPending {
		p.initPending = false
		p.invokeLocked(initMsg{}, false)
	}
	if !p.dead && (p.contPending || p.mb.n > 0 && !p.suspended || p.flags.Load()&flagSys != 0) {
		p.mu.Unlock()
		p.node.schedule(p)
		return false, nil
	}
	exited, reason = p.dead, p.reason
	p.unscheduleLocked()
	return exited, reason
}

// Self returns the process's PID (self/0).
func (p *Process) Self() PID { return PID{p} }

// Node returns the node the process runs on.
func (p *Process) Node() *Node { return p.node }

// Parent returns the process that spawned this one, or the zero PID.
func (p *Process) Parent() PID { return p.parent }

// Context is cancelled when the process dies, including when it is killed
// while its code is still running: handlers pass it to blocking calls.
func (p *Process) Context() context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	x := p.extLocked()
	if x.ctx == nil {
		x.ctx, x.cancel = context.WithCancel(context.Background())
		if p.dead {
			x.cancel()
		}
	}
	return x.ctx
}

// SetModule records which behaviour, module and version the process runs.
func (p *Process) SetModule(info ModuleInfo) { p.module.Store(&info) }

// Module returns what SetModule recorded.
func (p *Process) Module() ModuleInfo {
	if m := p.module.Load(); m != nil {
		return *m
	}
	return ModuleInfo{}
}

// TrapExit sets process_flag(trap_exit, on) and returns the old value.
func (p *Process) TrapExit(on bool) bool { return p.trapExit.Swap(on) }

// TrappingExits reports the trap_exit flag.
func (p *Process) TrappingExits() bool { return p.trapExit.Load() }

// Hibernate releases the mailbox buffer until the next message arrives
// (erlang:hibernate/3). A behaviour process holds no goroutine while idle in
// any case, so this only trims memory.
func (p *Process) Hibernate() {
	p.mu.Lock()
	p.hibernating = true
	p.flags.Or(flagHibernate)
	p.mu.Unlock()
}

func (p *Process) isDead() bool { return p.flags.Load()&flagDead != 0 }

// Send sends msg from this process. Messages from one sender arrive in the
// order sent; a send to a dead PID is dropped; a send to an unregistered
// Name is ErrNotRegistered.
func (p *Process) Send(to Target, msg any) error {
	t := to.resolve(p.node)
	if t == nil {
		if _, ok := to.(Name); ok {
			return ErrNotRegistered
		}
		return nil
	}
	p.msgsOut.Add(1)
	if p.tracing.Load() {
		p.node.publish(Event{Kind: EventTrace, PID: PID{p}, Other: PID{t}, Text: "send", Data: msg})
	}
	t.enqueue(p, msg)
	return nil
}

// enqueue appends msg to the mailbox. A message from a sender that has died
// is dropped: the sender's liveness is checked under the receiver's lock,
// which orders it against the exit signals the sender's death delivers.
func (p *Process) enqueue(from *Process, msg any) bool {
	p.lock()
	if p.dead || from != nil && from.isDead() {
		p.mu.Unlock()
		return false
	}
	start, wake := p.pushLocked(msg)
	yield := p.mb.n >= yieldQueue && p.mb.n%yieldEvery == 0
	p.mu.Unlock()
	p.kick(start, wake)
	if yield {
		// A sender to a long mailbox gives up its time slice now and
		// then, so the receiver, which competes with its senders for
		// the CPU, can catch up (the BEAM charges such sends extra
		// reductions). It never blocks: there is no back-pressure.
		goruntime.Gosched()
	}
	return true
}

const (
	yieldQueue = 1024
	yieldEvery = 256
)

// lock takes p.mu for a sender or a caller. The lock is held for a few
// instructions, but sync.Mutex does not spin when goroutines outnumber
// processors: it parks the goroutine, and under steady contention it
// switches to handing the lock to parked waiters in turn, one wake-up per
// acquisition. So this first spins briefly, then yields the processor a few
// times (which lets the holder run if it was preempted), and only then
// waits in Lock.
func (p *Process) lock() {
	for i := 0; ; i++ {
		if p.mu.TryLock() {
			return
		}
		switch {
		case i < lockSpins:
		case i < lockSpins+lockYields:
			goruntime.Gosched()
		default:
			p.mu.Lock()
			return
		}
	}
}

const (
	lockSpins  = 32
	lockYields = 8
)

// pushLocked queues msg and counts it (p.mu held).
func (p *Process) pushLocked(msg any) (start, wake bool) {
	p.mb.push(msg)
	p.mbLen.Add(1)
	p.msgsIn.Add(1)
	return p.wakeLocked()
}

// kick starts or wakes the process after a push.
func (p *Process) kick(start, wake bool) {
	p.node.messages.Add(1)
	if start {
		p.node.schedule(p)
	} else if wake {
		select {
		case p.ext.Load().wake <- struct{}{}:
		default:
		}
	}
}

type enqueueResult uint8

const (
	enqueued enqueueResult = iota
	enqueueNoProc
	enqueueCallerDead
)

// enqueueCall queues a call's request and records the call as a monitor on
// p, under one acquisition of p's lock.
func (p *Process) enqueueCall(from *Process, s *callSlot, req *Request, sys bool) enqueueResult {
	p.lock()
	if p.dead {
		p.mu.Unlock()
		return enqueueNoProc
	}
	if from != nil && from.isDead() {
		p.mu.Unlock()
		return enqueueCallerDead
	}
	p.linkCallLocked(s)
	sweep := false
	if s.coarse {
		s.epoch = p.node.sweeper.epoch.Load()
		s.deadline = 0
		if !p.swept {
			p.swept = true
			sweep = true
		}
	}
	if sys {
		x := p.extLocked()
		x.sysq = append(x.sysq, &sysRequest{req: req})
		p.flags.Or(flagSys)
		start := !p.scheduled
		p.scheduled = true
		p.mu.Unlock()
		if sweep {
			p.node.sweeper.add(p)
		}
		if start {
			p.node.schedule(p)
		}
		return enqueued
	}
	start, wake := p.pushLocked(req)
	p.mu.Unlock()
	if sweep {
		p.node.sweeper.add(p)
	}
	p.kick(start, wake)
	return enqueued
}

// enqueueSys appends a system message; it is served even while suspended.
func (p *Process) enqueueSys(msg any) bool {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return false
	}
	x := p.extLocked()
	x.sysq = append(x.sysq, msg)
	p.flags.Or(flagSys)
	start := false
	if !p.scheduled {
		p.scheduled = true
		start = true
	}
	p.mu.Unlock()
	if start {
		p.node.schedule(p)
	}
	return true
}

func (p *Process) wakeLocked() (start, wake bool) {
	if p.mode == modeBehaviour {
		if !p.scheduled && !p.suspended {
			p.scheduled = true
			return true, false
		}
		return false, false
	}
	if p.waiting {
		p.waiting = false
		return false, true
	}
	return false, false
}

// drain is the goroutine of a behaviour process while it has messages. It
// serves system messages first, then takes ordinary messages in batches (see
// mailbox) and runs them without the lock until the batch ends, a system
// message arrives, the process dies, or its code asks to hibernate.
func (p *Process) drain(b *batch) {
	p.mu.Lock()
	for {
		if p.dead {
			p.release(b)
			return
		}
		// Init runs before anything else, system messages included, as
		// proc_lib does: sys must never see a state Init has not made.
		if p.initPending {
			p.initPending = false
			p.invokeLocked(initMsg{}, false)
			continue
		}
		if p.contPending {
			p.contPending = false
			p.invokeLocked(continueMsg{}, false)
			continue
		}
		if x := p.ext.Load(); x != nil && len(x.sysq) > 0 {
			msg := x.sysq[0]
			x.sysq[0] = nil
			x.sysq = x.sysq[1:]
			if len(x.sysq) == 0 {
				x.sysq = nil
				p.flags.And(^flagSys)
			}
			p.wakeUpLocked()
			p.invokeLocked(msg, true)
			continue
		}
		if p.suspended {
			p.mb.untake()
			p.release(b)
			return
		}
		if p.mb.cur != b || int(b.next.Load()) >= b.n {
			if p.mb.n == 0 {
				p.release(b)
				return
			}
			p.mb.take(b)
		}
		p.wakeUpLocked()
		p.inHandler = true
		p.mu.Unlock()
		p.runBatch(b)
		p.relock()
	}
}

// wakeUpLocked ends hibernation as a message is taken (p.mu held).
func (p *Process) wakeUpLocked() {
	if p.hibernating {
		p.hibernating = false
		p.flags.And(^flagHibernate)
	}
}

// invokeLocked runs one step of the process's code (p.mu held), without
// the lock, and takes the lock again.
func (p *Process) invokeLocked(msg any, sys bool) {
	p.inHandler = true
	p.mu.Unlock()
	p.invoke(msg, sys)
	p.relock()
}

// relock takes the lock again after the process's code ran. It spins but
// never yields as senders do: a drainer sent to the back of the run queue
// would leave its process marked running, and its messages waiting, for as
// long as the scheduler takes to come back to it.
func (p *Process) relock() {
	for i := 0; !p.mu.TryLock(); i++ {
		if i == lockSpins {
			p.mu.Lock()
			break
		}
	}
	if p.calls != nil {
		p.unlinkDoneCallsLocked()
	}
	p.inHandler = false
	if p.zombie {
		p.zombie = false
		p.node.zombies.Add(-1)
	}
}

// release ends a drain (p.mu held): the process holds no goroutine until
// the next message.
func (p *Process) release(b *batch) {
	if p.mb.cur == b {
		p.mb.cur = nil
	}
	p.unscheduleLocked()
	clear(b.msgs[:b.n]) // the next take resets the rest
	b.n = 0
}

// unscheduleLocked gives the process's goroutine back and unlocks p.mu.
func (p *Process) unscheduleLocked() {
	p.scheduled = false
	if p.hibernating && p.mb.n == 0 {
		p.mb.release()
	}
	p.mu.Unlock()
}

// runBatch runs the batch's messages in order, without the lock, until it
// ends, the process dies, a system message arrives or the code asks to
// hibernate. A message is started by advancing b.next with a
// compare-and-swap, which a dying process's die uses to claim the rest.
// Handler time is read from the clock once per batch rather than per
// message, and one deferred recover serves the batch: a panic ends the
// process anyway.
func (p *Process) runBatch(b *batch) {
	start := p.node.monoNow()
	defer func() {
		p.handlerNanos.Add(p.node.monoNow() - start)
		if r := recover(); r != nil {
			p.exitFromOwnCode(r)
		} else {
			p.exitRequested()
		}
	}()
	for i := int(b.next.Load()); i < b.n; i++ {
		if !b.next.CompareAndSwap(int32(i), int32(i+1)) {
			return
		}
		p.mbLen.Add(-1)
		msg := b.msgs[i]
		if p.tracing.Load() {
			p.node.publish(Event{Kind: EventTrace, PID: PID{p}, Text: "receive", Data: msg})
		}
		p.beh.Handle(p, msg)
		if p.flags.Load() != 0 {
			return
		}
	}
}

// invoke runs one system message's callback, timed on its own.
func (p *Process) invoke(msg any, sys bool) {
	start := p.node.monoNow()
	defer func() {
		p.handlerNanos.Add(p.node.monoNow() - start)
		if r := recover(); r != nil {
			p.exitFromOwnCode(r)
		} else {
			p.exitRequested()
		}
	}()
	if p.tracing.Load() && !sys {
		switch msg.(type) {
		case initMsg, continueMsg:
		default:
			p.node.publish(Event{Kind: EventTrace, PID: PID{p}, Text: "receive", Data: msg})
		}
	}
	switch m := msg.(type) {
	case initMsg:
		p.beh.Init(p)
	case continueMsg:
		p.beh.(InitContinuer).InitContinue(p)
	case *sysRequest:
		p.handleSys(m)
	default:
		p.beh.Handle(p, msg)
	}
}

// exitFromOwnCode ends the process after its own code panicked or called
// Exit. If it was killed meanwhile, it is already dead and only its zombie
// goroutine ends.
func (p *Process) exitFromOwnCode(r any) {
	var reason any
	if u, ok := r.(exitUnwind); ok {
		reason = u.reason
	} else {
		reason = &PanicError{Value: r, Stack: string(debug.Stack())}
	}
	p.mu.Lock()
	p.inHandler = false
	if p.zombie {
		p.zombie = false
		p.node.zombies.Add(-1)
	}
	p.mu.Unlock()
	p.terminate(reason)
}

func (p *Process) runBody() {
	defer func() {
		reason := any(Normal)
		if r := recover(); r != nil {
			if u, ok := r.(exitUnwind); ok {
				reason = u.reason
			} else {
				reason = &PanicError{Value: r, Stack: string(debug.Stack())}
			}
		}
		p.mu.Lock()
		p.inHandler = false
		if p.zombie {
			p.zombie = false
			p.node.zombies.Add(-1)
		}
		p.mu.Unlock()
		p.terminate(reason)
	}()
	p.ext.Load().body(p)
}

// ExitOnReturn ends a behaviour process with reason as soon as its Init,
// Handle or InitContinue returns, as if it had called Exit then; nothing of
// its mailbox is handled after. A behaviour that is done saves unwinding
// its stack with Exit's panic. In a body process it is Exit.
func (p *Process) ExitOnReturn(reason any) {
	if p.mode == modeBody {
		p.Exit(reason)
	}
	p.exitReq = &exitUnwind{reason}
	p.flags.Or(flagExit)
}

// exitRequested ends the process if its code asked to with ExitOnReturn.
func (p *Process) exitRequested() {
	if u := p.exitReq; u != nil {
		p.exitReq = nil
		p.exitFromOwnCode(*u)
	}
}

// Exit ends the calling process with reason (exit/1): it unwinds the
// process's code, so nothing after it runs.
func (p *Process) Exit(reason any) {
	panic(exitUnwind{reason})
}

// Receive waits for the next message (body processes only). It returns
// false if timeout passes first; Infinity waits forever.
func (p *Process) Receive(timeout time.Duration) (any, bool) {
	return p.ReceiveMatch(nil, timeout)
}

// ReceiveMatch waits for the first message that match accepts, leaving the
// others in the mailbox in order (a selective receive).
func (p *Process) ReceiveMatch(match func(any) bool, timeout time.Duration) (any, bool) {
	if p.mode != modeBody {
		panic("runtime: Receive called from a behaviour process")
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.dead {
			p.inHandler = false
			p.mu.Unlock()
			goruntime.Goexit()
		}
		for i := 0; i < p.mb.size(); i++ {
			if match == nil || match(p.mb.at(i)) {
				v := p.mb.removeAt(i)
				p.mbLen.Add(-1)
				p.mu.Unlock()
				if p.tracing.Load() {
					p.node.publish(Event{Kind: EventTrace, PID: PID{p}, Text: "receive", Data: v})
				}
				return v, true
			}
		}
		if timeout == 0 {
			p.mu.Unlock()
			return nil, false
		}
		p.waiting = true
		p.inHandler = false
		p.mu.Unlock()
		if timeout > 0 && timer == nil {
			timer = time.NewTimer(timeout)
		}
		var expired bool
		wakeCh := p.ext.Load().wake
		if timer != nil {
			select {
			case <-wakeCh:
			case <-timer.C:
				expired = true
			}
		} else {
			<-wakeCh
		}
		p.mu.Lock()
		p.waiting = false
		p.inHandler = true
		p.mu.Unlock()
		if expired {
			timeout = 0 // one last look, then give up
		}
	}
}

// signal delivers an exit signal from `from` (nil: from outside) to p.
// A direct (non-link) kill is untrappable and seen as killed.
func (p *Process) signal(from *Process, reason any, link bool) {
	if dies, r := p.exitSignal(from, reason, link); dies {
		p.terminate(r)
	}
}

// exitSignal applies an exit signal: a trapping process gets an ExitMsg,
// normal is ignored (except from the process itself), anything else kills.
func (p *Process) exitSignal(from *Process, reason any, link bool) (bool, any) {
	if !link {
		if a, ok := reason.(Atom); ok && a == Kill {
			return true, Killed
		}
	}
	if p.trapExit.Load() {
		p.enqueue(nil, ExitMsg{From: PID{from}, Reason: reason})
		return false, nil
	}
	if IsNormal(reason) && from != p {
		return false, nil
	}
	return true, reason
}

// ExitSignal sends an exit signal from this process (exit/2).
func (p *Process) ExitSignal(to PID, reason any) {
	if to.p == p {
		if dies, r := p.exitSignal(p, reason, false); dies {
			p.Exit(r)
		}
		return
	}
	if to.p != nil {
		to.p.signal(p, reason, false)
	}
}

type pendingExit struct {
	to     *Process
	from   *Process
	reason any
}

// terminate makes p dead to everyone at once: its name is freed first, then
// its links and monitors fire. If its code is still running (killed while
// stuck in a handler), that goroutine becomes a zombie until it returns.
// Deaths that cascade through links are handled in a loop, not recursion,
// so a chain of any length cannot overflow the stack.
func (p *Process) terminate(reason any) {
	work := p.die(reason, nil)
	for len(work) > 0 {
		w := work[len(work)-1]
		work = work[:len(work)-1]
		w.to.mu.Lock()
		delete(w.to.links, w.from)
		w.to.mu.Unlock()
		if dies, r := w.to.exitSignal(w.from, w.reason, true); dies {
			work = w.to.die(r, work)
		}
	}
}

func (p *Process) die(reason any, work []pendingExit) []pendingExit {
	// The name is freed before anyone can see the process dead: a monitor
	// or a call that finds it dead (noproc) also finds its name free, so a
	// replacement can register it at once.
	p.mu.Lock()
	if p.dead || p.dying {
		p.mu.Unlock()
		return work
	}
	p.dying = true
	early := p.name
	p.mu.Unlock()
	if early != "" {
		p.node.unregisterDead(early, p)
	}
	p.mu.Lock()
	p.dead = true
	p.flags.Or(flagDead)
	p.reason = reason
	if p.inHandler && !p.waiting {
		p.zombie = true
		p.node.zombies.Add(1)
	}
	name := p.name
	links, monitors, watching := p.links, p.monitors, p.watching
	p.links, p.monitors, p.watching = nil, nil, nil
	calls := p.takeCallsLocked()
	var own *callSlot
	var cancel context.CancelFunc
	x := p.ext.Load()
	if x != nil {
		own, cancel = x.slot.Load(), x.cancel
		x.sysq = nil
	}
	dropped := p.mb.size()
	if b := p.mb.cur; b != nil {
		// Claim the batch's unstarted messages; the drainer counts those
		// it started itself.
		for {
			next := b.next.Load()
			if int(next) >= b.n || b.next.CompareAndSwap(next, int32(b.n)) {
				dropped += max(b.n-int(next), 0)
				break
			}
		}
	}
	p.mb.release()
	p.flags.And(^flagSys)
	p.mbLen.Add(-int64(dropped))
	wake := p.waiting
	p.mu.Unlock()

	if name != "" && name != early {
		p.node.unregisterDead(name, p) // registered while it was dying
	}
	p.node.remove(p)
	p.node.count.Add(-1)
	p.node.exited.Add(1)
	if cancel != nil {
		cancel()
	}
	if own != nil {
		own.putAny(callResult{kind: callCallerExited})
	}
	if wake {
		select {
		case x.wake <- struct{}{}:
		default:
		}
	}
	for ref, t := range watching {
		t.removeMonitor(ref)
	}
	self := PID{p}
	for _, c := range calls {
		c.slot.put(c.gen, callResult{kind: callDown, value: reason})
	}
	for ref, r := range monitors {
		r.deliverDown(DownMsg{Ref: Ref{ref}, PID: self, Reason: reason})
	}
	p.node.publish(Event{Kind: EventExit, PID: self, Name: name, Reason: reason})
	for l := range links {
		work = append(work, pendingExit{to: l, from: p, reason: reason})
	}
	return work
}

// ExitReason returns the reason a dead process exited with.
func (pid PID) ExitReason() (any, bool) {
	if pid.p == nil {
		return NoProc, true
	}
	pid.p.mu.Lock()
	defer pid.p.mu.Unlock()
	return pid.p.reason, pid.p.dead
}

// Link links this process to another (link/1). Linking to a process that is
// not alive delivers a noproc exit signal to the caller, as OTP does.
func (p *Process) Link(to PID) {
	t := to.p
	if t == nil || t == p {
		return
	}
	p.mu.Lock()
	if p.links == nil {
		p.links = make(map[*Process]struct{})
	}
	p.links[t] = struct{}{}
	p.mu.Unlock()
	t.mu.Lock()
	if t.dead {
		t.mu.Unlock()
		p.mu.Lock()
		delete(p.links, t)
		p.mu.Unlock()
		if dies, r := p.exitSignal(t, NoProc, true); dies {
			p.Exit(r)
		}
		return
	}
	if t.links == nil {
		t.links = make(map[*Process]struct{})
	}
	t.links[p] = struct{}{}
	t.mu.Unlock()
	p.node.publish(Event{Kind: EventLink, PID: PID{p}, Other: to})
}

// Unlink removes a link (unlink/1).
func (p *Process) Unlink(to PID) {
	t := to.p
	if t == nil {
		return
	}
	p.mu.Lock()
	delete(p.links, t)
	p.mu.Unlock()
	t.mu.Lock()
	delete(t.links, p)
	t.mu.Unlock()
	p.node.publish(Event{Kind: EventUnlink, PID: PID{p}, Other: to})
}

func (p *Process) deliverDown(d DownMsg) {
	p.mu.Lock()
	delete(p.watching, d.Ref.id)
	p.mu.Unlock()
	p.enqueue(nil, d)
}

// addMonitor records a monitor on p; false if p is already dead.
func (p *Process) addMonitor(ref uint64, r downReceiver) bool {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return false
	}
	if p.monitors == nil {
		p.monitors = make(map[uint64]downReceiver)
	}
	p.monitors[ref] = r
	p.mu.Unlock()
	return true
}

func (p *Process) removeMonitor(ref uint64) {
	p.mu.Lock()
	delete(p.monitors, ref)
	p.mu.Unlock()
}

// Monitor starts monitoring a process (monitor(process, Target)). A DownMsg
// with the reference arrives when it exits, at once with noproc if it is
// not alive.
func (p *Process) Monitor(to Target) Ref {
	ref := p.node.MakeRef()
	t := to.resolve(p.node)
	if t == nil {
		p.enqueue(nil, DownMsg{Ref: ref, Reason: NoProc})
		return ref
	}
	p.mu.Lock()
	if p.watching == nil {
		p.watching = make(map[uint64]*Process)
	}
	p.watching[ref.id] = t
	p.mu.Unlock()
	if !t.addMonitor(ref.id, p) {
		p.mu.Lock()
		delete(p.watching, ref.id)
		p.mu.Unlock()
		p.enqueue(nil, DownMsg{Ref: ref, PID: PID{t}, Reason: NoProc})
	}
	return ref
}

// Demonitor removes a monitor (demonitor/2). With flush, a DownMsg for it
// that already arrived is removed from the mailbox. It reports whether the
// monitor was still active.
func (p *Process) Demonitor(ref Ref, flush bool) bool {
	p.mu.Lock()
	t, ok := p.watching[ref.id]
	delete(p.watching, ref.id)
	if flush && p.mb.flushDown(ref) {
		p.mbLen.Add(-1)
	}
	p.mu.Unlock()
	if ok {
		t.removeMonitor(ref.id)
	}
	return ok
}

// Register registers this process under name.
func (p *Process) Register(name string) error {
	if name == "" {
		return ErrBadArg
	}
	return p.node.register(name, p)
}

// Name returns the registered name, or "".
func (p *Process) Name() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}

// Alive reports whether the process is alive; code of a process killed
// while it ran sees false and should return.
func (p *Process) Alive() bool { return !p.isDead() }

// Caller is what can send and make calls: a *Node (from outside any
// process) or a *Process (as that process).
type Caller interface {
	Send(to Target, msg any) error
	Call(to Target, req any, timeout time.Duration) (any, error)
}

// RecoveredReason turns a value recovered from a panic in a process's code
// into its exit reason: the reason given to Exit, or a *PanicError with the
// stack. Behaviours call it in their deferred recover to run terminate.
func RecoveredReason(r any) any {
	if u, ok := r.(exitUnwind); ok {
		return u.reason
	}
	return &PanicError{Value: r, Stack: string(debug.Stack())}
}

// IsExitPanic reports whether a recovered value is an Exit in progress
// rather than a crash; behaviours re-panic it after their own recover.
func IsExitPanic(r any) bool {
	_, ok := r.(exitUnwind)
	return ok
}
