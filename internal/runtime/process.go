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
// mailbox), a Watch (a channel) or a pending call (its reply slot).
type downReceiver interface{ deliverDown(DownMsg) }

// Process is a running process. Its methods that act as the process (Send,
// Receive, Link, Monitor, Exit, TrapExit, Call, Spawn) may be called only
// from the process's own code; the rest are safe from anywhere.
type Process struct {
	id      uint64
	node    *Node
	parent  PID
	mode    procMode
	beh     Behaviour
	body    func(*Process)
	started int64

	mu          sync.Mutex
	mb          mailbox
	sysq        []any
	dead        bool
	scheduled   bool // behaviour: a goroutine is draining the mailbox
	inHandler   bool // code of this process is running
	waiting     bool // body: blocked in Receive
	suspended   bool
	hibernating bool
	zombie      bool
	name        string
	links       map[*Process]struct{}
	monitors    map[uint64]downReceiver // monitors on this process, by ref
	watching    map[uint64]*Process     // monitors this process holds, by ref
	ctx         context.Context
	cancel      context.CancelFunc
	wake        chan struct{}
	reason      any
	statsBase   *statsBase

	deadFlag     atomic.Bool
	trapExit     atomic.Bool
	tracing      atomic.Bool
	mbLen        atomic.Int64
	msgsIn       atomic.Uint64
	msgsOut      atomic.Uint64
	handlerNanos atomic.Int64
	module       atomic.Pointer[ModuleInfo]
}

type initMsg struct{}

func (n *Node) spawn(parent *Process, mode procMode, body func(*Process), beh Behaviour, opts SpawnOpts) (*Process, error) {
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
		body:    body,
		beh:     beh,
		started: time.Now().UnixNano(),
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
			p.deadFlag.Store(true)
			return nil, err
		}
	}
	if opts.Link {
		p.links = map[*Process]struct{}{parent: {}}
		parent.mu.Lock()
		if parent.links == nil {
			parent.links = make(map[*Process]struct{})
		}
		parent.links[p] = struct{}{}
		parent.mu.Unlock()
	}
	n.publish(Event{Kind: EventSpawn, PID: PID{p}, Other: p.parent, Name: opts.Name})
	if mode == modeBody {
		p.wake = make(chan struct{}, 1)
		p.inHandler = true
		go p.runBody()
	} else {
		p.mb.push(initMsg{})
		p.mbLen.Add(1)
		p.scheduled = true
		p.node.schedule(p)
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
	if p.ctx == nil {
		p.ctx, p.cancel = context.WithCancel(context.Background())
		if p.dead {
			p.cancel()
		}
	}
	return p.ctx
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
	p.mu.Unlock()
}

func (p *Process) isDead() bool { return p.deadFlag.Load() }

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
	p.mu.Lock()
	if p.dead || from != nil && from.deadFlag.Load() {
		p.mu.Unlock()
		return false
	}
	p.mb.push(msg)
	p.mbLen.Add(1)
	p.msgsIn.Add(1)
	start, wake := p.wakeLocked()
	p.mu.Unlock()
	p.node.messages.Add(1)
	if start {
		p.node.schedule(p)
	} else if wake {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// enqueueSys appends a system message; it is served even while suspended.
func (p *Process) enqueueSys(msg any) bool {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return false
	}
	p.sysq = append(p.sysq, msg)
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

// drain is the goroutine of a behaviour process while it has messages.
func (p *Process) drain() {
	p.mu.Lock()
	for {
		if p.dead {
			p.scheduled = false
			p.mu.Unlock()
			return
		}
		var msg any
		ok, sys := false, false
		if len(p.sysq) > 0 {
			msg, ok, sys = p.sysq[0], true, true
			p.sysq[0] = nil
			p.sysq = p.sysq[1:]
			if len(p.sysq) == 0 {
				p.sysq = nil
			}
		} else if !p.suspended {
			if msg, ok = p.mb.pop(); ok {
				p.mbLen.Add(-1)
			}
		}
		if !ok {
			p.scheduled = false
			if p.hibernating && p.mb.n == 0 {
				p.mb.release()
			}
			p.mu.Unlock()
			return
		}
		p.hibernating = false
		p.inHandler = true
		p.mu.Unlock()
		p.invoke(msg, sys)
		p.mu.Lock()
		p.inHandler = false
		if p.zombie {
			p.zombie = false
			p.node.zombies.Add(-1)
		}
	}
}

// invoke runs one callback, turning a panic or an Exit into the process's
// death.
func (p *Process) invoke(msg any, sys bool) {
	// Since on the node's start time reads only the monotonic clock,
	// about half the cost of time.Now.
	start := time.Since(p.node.started)
	defer func() {
		p.handlerNanos.Add(int64(time.Since(p.node.started) - start))
		if r := recover(); r != nil {
			p.exitFromOwnCode(r)
		}
	}()
	if p.tracing.Load() && !sys {
		p.node.publish(Event{Kind: EventTrace, PID: PID{p}, Text: "receive", Data: msg})
	}
	switch m := msg.(type) {
	case initMsg:
		p.beh.Init(p)
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
	p.body(p)
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
		for i := 0; i < p.mb.n; i++ {
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
		if timer != nil {
			select {
			case <-p.wake:
			case <-timer.C:
				expired = true
			}
		} else {
			<-p.wake
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
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return work
	}
	p.dead = true
	p.deadFlag.Store(true)
	p.reason = reason
	if p.inHandler && !p.waiting {
		p.zombie = true
		p.node.zombies.Add(1)
	}
	name := p.name
	links, monitors, watching := p.links, p.monitors, p.watching
	p.links, p.monitors, p.watching = nil, nil, nil
	p.mb.release()
	p.sysq = nil
	p.mbLen.Store(0)
	cancel := p.cancel
	wake := p.waiting
	p.mu.Unlock()

	if name != "" {
		p.node.unregisterDead(name, p)
	}
	p.node.remove(p)
	p.node.count.Add(-1)
	p.node.exited.Add(1)
	if cancel != nil {
		cancel()
	}
	if wake {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	for ref, t := range watching {
		t.removeMonitor(ref)
	}
	self := PID{p}
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
	if flush {
		for i := 0; i < p.mb.n; i++ {
			if d, isDown := p.mb.at(i).(DownMsg); isDown && d.Ref == ref {
				p.mb.removeAt(i)
				p.mbLen.Add(-1)
				break
			}
		}
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
func (p *Process) Alive() bool { return !p.deadFlag.Load() }

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
