package runtime

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

// The lifecycle events the runtime and the behaviours publish.
const (
	EventSpawn EventKind = iota + 1
	EventExit
	EventLink
	EventUnlink
	EventRegister
	EventUnregister
	EventCodeChange
	EventSupervisor
	EventTrace
	EventSys
	EventApplication
)

var eventNames = [...]string{"", "spawn", "exit", "link", "unlink", "register", "unregister", "code_change", "supervisor", "trace", "sys", "application"}

// String names the kind.
func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one entry of the lifecycle stream. Fields a kind does not use
// are zero. Supervisor reports put the report's name in Text (child_exited,
// child_restarted, shutdown, reached_max_restart_intensity, ...) and its
// details in Data.
type Event struct {
	Seq    uint64
	Time   time.Time
	Kind   EventKind
	PID    PID
	Other  PID
	Name   string
	Reason any
	Text   string
	Data   any
}

// Subscription receives events on C. A subscriber that falls behind loses
// events rather than slowing the runtime; Lost counts them.
type Subscription struct {
	C    <-chan Event
	ch   chan Event
	lost atomic.Uint64
	bus  *eventBus
}

// Lost is how many events were dropped because C was full.
func (s *Subscription) Lost() uint64 { return s.lost.Load() }

// Close stops the subscription.
func (s *Subscription) Close() { s.bus.unsubscribe(s) }

type eventBus struct {
	mu   sync.Mutex
	subs atomic.Pointer[[]*Subscription]
	seq  atomic.Uint64
}

// Subscribe returns a subscription whose channel buffers up to buffer events.
func (n *Node) Subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = 1024
	}
	ch := make(chan Event, buffer)
	s := &Subscription{C: ch, ch: ch, bus: &n.events}
	b := &n.events
	b.mu.Lock()
	var next []*Subscription
	if cur := b.subs.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	b.subs.Store(&next)
	b.mu.Unlock()
	return s
}

func (b *eventBus) unsubscribe(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.subs.Load()
	if cur == nil {
		return
	}
	next := make([]*Subscription, 0, len(*cur))
	for _, x := range *cur {
		if x != s {
			next = append(next, x)
		}
	}
	b.subs.Store(&next)
}

// Publish sends an event to every subscriber without blocking. Behaviours
// use it for their reports.
func (n *Node) Publish(e Event) { n.publish(e) }

func (n *Node) publish(e Event) {
	subs := n.events.subs.Load()
	if subs == nil || len(*subs) == 0 {
		return
	}
	e.Seq = n.events.seq.Add(1)
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	for _, s := range *subs {
		select {
		case s.ch <- e:
		default:
			s.lost.Add(1)
		}
	}
}
