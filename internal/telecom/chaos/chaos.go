// Package chaos is the chaos monkey: chaos_monkey, a gen_server in the
// supervision tree that injects faults into its own node at a set rate
// while it is switched on, so that the tree's recovery can be watched and
// checked.
//
// The Monkey handle keeps the settings and the on/off switch outside the
// process, as the load generator keeps its rate: a chaos_monkey that is
// killed (by itself, when the targets name it, or with its supervisor)
// comes back with the same settings and carries on.
package chaos

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/supervisor"
)

// Name is the registered name and module of the chaos monkey process.
const Name = "chaos_monkey"

// Kind is a kind of fault.
type Kind string

// The faults the monkey injects.
const (
	// Kill sends an untrappable kill to a random worker.
	Kill Kind = "kill"
	// Exit sends a trappable exit signal (reason ExitReason) to a random worker.
	Exit Kind = "exit"
	// Supervisor kills a random supervisor, the top one included.
	Supervisor Kind = "supervisor"
	// Flood sends FloodMessages messages to every worker.
	Flood Kind = "flood"
	// Memory allocates MemoryBytes in a process of its own, holds them for
	// MemoryHold, then releases them.
	Memory Kind = "memory"
	// CPU makes a random worker's handler spin for CPUSpin.
	CPU Kind = "cpu"
	// Partition makes the ledger's database unreachable for PartitionFor.
	Partition Kind = "partition"
)

var allKinds = []Kind{Kill, Exit, Supervisor, Flood, Memory, CPU, Partition}

// AllKinds lists every kind of fault.
func AllKinds() []Kind { return slices.Clone(allKinds) }

// ParseKinds parses kinds separated by commas or spaces; "all" is every kind.
func ParseKinds(list string) ([]Kind, error) {
	var out []Kind
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		if f == "all" {
			out = append(out, allKinds...)
			continue
		}
		k := Kind(f)
		if !slices.Contains(allKinds, k) {
			return nil, fmt.Errorf("unknown fault kind %q (want %s or all)", f, kindList(allKinds))
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("no fault kind given")
	}
	return out, nil
}

func kindList(kinds []Kind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// ExitReason is the reason of the exit signals of the exit kind.
const ExitReason runtime.Atom = "chaos"

// FloodMsg is the message a flood sends; every behaviour ignores it as an
// unexpected message, after it has waited its turn in the mailbox.
const FloodMsg runtime.Atom = "chaos_flood"

// Defaults and limits of the settings.
const (
	// MaxRate bounds the fault rate, in faults per second.
	MaxRate = 1000
	// DefaultFloodMessages is how many messages a flood sends to each worker.
	DefaultFloodMessages = 10_000
	// DefaultMemoryBytes is what a memory fault allocates: 1 GiB.
	DefaultMemoryBytes = 1 << 30
	// DefaultMemoryHold is how long a memory fault holds its allocation.
	DefaultMemoryHold = time.Second
	// DefaultCPUSpin is how long a cpu fault's handler spins.
	DefaultCPUSpin = 500 * time.Millisecond
	// DefaultPartitionFor is how long a partition lasts.
	DefaultPartitionFor = 2 * time.Second
)

// Settings say which faults the monkey injects, how often and where. They
// may be changed while it runs. Zero sizes take the defaults.
type Settings struct {
	// Rate is in faults per second; 0 keeps a running monkey idle.
	Rate float64
	// Targets are prefixes of the registered names or modules of the
	// processes the monkey may hit; empty means any worker. A target equal
	// to a name or module lets kill and exit hit that process even if it
	// is a supervisor or the monkey itself.
	Targets []string
	// Kinds are the faults to choose from, each with equal chance.
	Kinds []Kind

	FloodMessages int           // messages a flood sends to each worker
	MemoryBytes   int64         // bytes a memory fault allocates
	MemoryHold    time.Duration // how long it holds them
	CPUSpin       time.Duration // how long a cpu fault's handler spins
	PartitionFor  time.Duration // how long a partition lasts
}

// Validate checks the settings, naming the first bad one.
func (s Settings) Validate() error {
	switch {
	case math.IsNaN(s.Rate) || s.Rate < 0 || s.Rate > MaxRate:
		return fmt.Errorf("chaos rate must be within 0..%d faults/s, got %v", MaxRate, s.Rate)
	case len(s.Kinds) == 0:
		return fmt.Errorf("chaos needs at least one fault kind (%s)", kindList(allKinds))
	case s.FloodMessages < 0 || s.MemoryBytes < 0:
		return errors.New("chaos flood and memory sizes must not be negative")
	case s.MemoryHold < 0 || s.CPUSpin < 0 || s.PartitionFor < 0:
		return errors.New("chaos durations must not be negative")
	}
	for _, k := range s.Kinds {
		if !slices.Contains(allKinds, k) {
			return fmt.Errorf("unknown fault kind %q (want %s)", k, kindList(allKinds))
		}
	}
	for _, t := range s.Targets {
		if strings.TrimSpace(t) == "" {
			return errors.New("chaos targets must not be empty strings")
		}
	}
	return nil
}

func (s Settings) clone() Settings {
	s.Targets = slices.Clone(s.Targets)
	s.Kinds = slices.Clone(s.Kinds)
	return s
}

func orDefault[T int | int64 | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

func (s Settings) floodMessages() int          { return orDefault(s.FloodMessages, DefaultFloodMessages) }
func (s Settings) memoryBytes() int64          { return orDefault(s.MemoryBytes, DefaultMemoryBytes) }
func (s Settings) memoryHold() time.Duration   { return orDefault(s.MemoryHold, DefaultMemoryHold) }
func (s Settings) cpuSpin() time.Duration      { return orDefault(s.CPUSpin, DefaultCPUSpin) }
func (s Settings) partitionFor() time.Duration { return orDefault(s.PartitionFor, DefaultPartitionFor) }
func (s Settings) interval() time.Duration     { return time.Duration(float64(time.Second) / s.Rate) }
func (s Settings) targetsText() string {
	if len(s.Targets) == 0 {
		return "any worker"
	}
	return strings.Join(s.Targets, ", ")
}

// String summarises the settings for status lines.
func (s Settings) String() string {
	return fmt.Sprintf("%g faults/s (%s), targets %s", s.Rate, kindList(s.Kinds), s.targetsText())
}

// Options are what the system provides the monkey with.
type Options struct {
	// Partition cuts the ledger's database off (on) or heals the cut. It
	// is called again while a partition lasts, so that a billing process
	// restarted meanwhile is cut off too; it must be cheap when nothing
	// changed. Without it the partition kind is refused.
	Partition func(on bool) error
	// Seed seeds the choice of faults and targets; zero seeds from the clock.
	Seed uint64
}

// Fault is one injected fault, as published on the event stream.
type Fault struct {
	Kind   Kind
	At     time.Time
	Target runtime.PID // the process hit, or the one holding the fault; zero for a partition
	Name   string      // the target's registered name, else its module
	Detail string
}

// String describes the fault: "kill <0.42.0> call_router".
func (f Fault) String() string {
	var b strings.Builder
	b.WriteString(string(f.Kind))
	if !f.Target.IsZero() {
		fmt.Fprintf(&b, " %v", f.Target)
		if f.Name != "" {
			b.WriteString(" " + f.Name)
		}
	}
	if f.Detail != "" {
		b.WriteString(": " + f.Detail)
	}
	return b.String()
}

// Stats are the monkey's counters for the observer and reports.
type Stats struct {
	Running     bool
	Settings    Settings
	Injected    map[Kind]uint64
	Skipped     uint64 // faults due that found no target or a previous one still running
	Last        Fault
	Partitioned bool
}

// Total counts the faults injected.
func (s Stats) Total() uint64 {
	var n uint64
	for _, v := range s.Injected {
		n += v
	}
	return n
}

// EventPrefix starts the Text of every event the monkey publishes (Kind
// runtime.EventSys): "chaos: kill <0.42.0> call_router", "chaos: on ...",
// "chaos: off", "chaos: partition healed", "chaos: flood skipped: ...".
const EventPrefix = "chaos: "

// Monkey is the handle of the chaos monkey.
type Monkey struct {
	node *runtime.Node
	opts Options

	running atomic.Bool
	starts  atomic.Uint64 // process starts, to vary the random sequence

	mu       sync.Mutex
	settings Settings
	injected map[Kind]uint64
	skipped  uint64
	last     Fault

	// pmu orders partition switching: the deadline is read and the switch
	// set under it, so a heal never races with a re-cut.
	pmu            sync.Mutex
	partitionFrom  time.Time
	partitionUntil time.Time // zero when no partition is on
	reachableUntil time.Time // after a heal, no new partition before this
}

// New prepares the monkey of node n, switched off; ChildSpec puts its
// process in the tree.
func New(n *runtime.Node, s Settings, o Options) (*Monkey, error) {
	m := &Monkey{node: n, opts: o, injected: map[Kind]uint64{}}
	if m.opts.Seed == 0 {
		m.opts.Seed = uint64(time.Now().UnixNano())
	}
	if err := m.check(s); err != nil {
		return nil, err
	}
	m.settings = s.clone()
	return m, nil
}

func (m *Monkey) check(s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if m.opts.Partition == nil && slices.Contains(s.Kinds, Partition) {
		return errors.New("chaos: this system has no partition switch")
	}
	return nil
}

// ChildSpec is chaos_monkey's child spec: permanent, so that it is back
// with the same settings whenever it dies.
func (m *Monkey) ChildSpec() supervisor.ChildSpec {
	return supervisor.ChildSpec{ID: Name, Start: m.start, Restart: supervisor.Permanent, Module: Name, Version: "1"}
}

func (m *Monkey) start(p *runtime.Process) (runtime.PID, error) {
	// It traps exits so that its helpers' exits arrive as messages and so
	// that it heals a partition when the tree stops it.
	return genserver.StartLink(p, &server{m: m}, nil, genserver.Options{Name: Name, Module: Name, Version: "1", TrapExit: true})
}

func (m *Monkey) newRand() *rand.Rand {
	return rand.New(rand.NewPCG(m.opts.Seed, m.starts.Add(1)))
}

// Running reports whether the monkey is switched on.
func (m *Monkey) Running() bool { return m.running.Load() }

// SetRunning switches the monkey on or off. Switching off also ends the
// faults in progress, those injected by hand included: it heals a
// partition and kills the processes sending a flood or holding memory. A
// handler already spinning finishes its spin.
func (m *Monkey) SetRunning(on bool) {
	was := m.running.Swap(on)
	if !on {
		m.heal()
		_ = m.node.Send(runtime.Name(Name), haltMsg{})
	}
	if was == on {
		return
	}
	if on {
		m.publish(runtime.PID{}, "", EventPrefix+"on: "+m.Settings().String(), nil)
	} else {
		m.publish(runtime.PID{}, "", EventPrefix+"off", nil)
	}
	m.wake()
}

// Toggle switches the monkey on or off and says which, for the UI's c key.
func (m *Monkey) Toggle() (string, error) {
	on := !m.Running()
	m.SetRunning(on)
	if on {
		return "chaos on: " + m.Settings().String(), nil
	}
	return "chaos off", nil
}

// Settings returns a copy of the settings.
func (m *Monkey) Settings() Settings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settings.clone()
}

// SetSettings replaces the settings; a running monkey uses them from its
// next fault on.
func (m *Monkey) SetSettings(s Settings) error {
	if err := m.check(s); err != nil {
		return err
	}
	m.mu.Lock()
	m.settings = s.clone()
	m.mu.Unlock()
	m.wake()
	return nil
}

// Stats reads the counters.
func (m *Monkey) Stats() Stats {
	m.mu.Lock()
	st := Stats{Running: m.Running(), Settings: m.settings.clone(), Injected: make(map[Kind]uint64, len(m.injected)),
		Skipped: m.skipped, Last: m.last}
	for k, v := range m.injected {
		st.Injected[k] = v
	}
	m.mu.Unlock()
	st.Partitioned = m.Partitioned()
	return st
}

// Partitioned reports whether a partition is on.
func (m *Monkey) Partitioned() bool {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	return !m.partitionUntil.IsZero()
}

type injectReq struct{ kind Kind }
type injectReply struct {
	f   Fault
	err error
}

// Inject makes the monkey process inject one fault of kind now, whether it
// is running or not, with the current settings' targets and sizes.
func (m *Monkey) Inject(kind Kind) (Fault, error) {
	if !slices.Contains(allKinds, kind) {
		return Fault{}, fmt.Errorf("unknown fault kind %q (want %s)", kind, kindList(allKinds))
	}
	v, err := m.node.Call(runtime.Name(Name), injectReq{kind}, 10*time.Second)
	if err != nil {
		return Fault{}, fmt.Errorf("chaos: %w", err)
	}
	r := v.(injectReply)
	return r.f, r.err
}

type wakeMsg struct{}

// haltMsg tells the process to end the faults its helpers are running.
type haltMsg struct{}

// wake tells the process that the switch or the settings changed. A
// monkey that is restarting reads them when it starts.
func (m *Monkey) wake() { _ = m.node.Send(runtime.Name(Name), wakeMsg{}) }

func (m *Monkey) record(f Fault) {
	m.mu.Lock()
	m.injected[f.Kind]++
	m.last = f
	m.mu.Unlock()
	m.publish(f.Target, f.Name, EventPrefix+f.String(), f)
}

func (m *Monkey) skip(kind Kind, why error) {
	m.mu.Lock()
	m.skipped++
	m.mu.Unlock()
	m.publish(runtime.PID{}, "", fmt.Sprintf("%s%s skipped: %v", EventPrefix, kind, why), nil)
}

func (m *Monkey) publish(pid runtime.PID, name, text string, data any) {
	e := runtime.Event{Kind: runtime.EventSys, PID: pid, Name: name, Text: text}
	if data != nil {
		e.Data = data
	}
	m.node.Publish(e)
}

var (
	errPartitioned = errors.New("a partition is on")
	errReachable   = errors.New("the ledger stays reachable for as long as the last partition lasted")
)

// partition starts a partition lasting d. Partitions never overlap, and
// after one heals the database stays reachable for as long as it was cut
// off: without that, partitions due at every tick would join into one
// outage that no retry outlasts.
func (m *Monkey) partition(d time.Duration) error {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	now := time.Now()
	switch {
	case !m.partitionUntil.IsZero():
		return errPartitioned
	case now.Before(m.reachableUntil):
		return errReachable
	}
	m.partitionFrom, m.partitionUntil = now, now.Add(d)
	return m.opts.Partition(true)
}

// checkPartition heals a partition that is over, or cuts again (a billing
// process restarted meanwhile must be cut off too) and says when to look
// next.
func (m *Monkey) checkPartition() (next time.Duration, on bool) {
	const every = 100 * time.Millisecond
	m.pmu.Lock()
	defer m.pmu.Unlock()
	if m.partitionUntil.IsZero() {
		return 0, false
	}
	left := time.Until(m.partitionUntil)
	if left <= 0 {
		m.healLocked()
		return 0, false
	}
	_ = m.opts.Partition(true) // a billing process that is down is cut at the next look
	return min(left, every), true
}

// heal ends a partition now.
func (m *Monkey) heal() {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	m.healLocked()
}

func (m *Monkey) healLocked() {
	if m.partitionUntil.IsZero() {
		return
	}
	now := time.Now()
	m.partitionUntil, m.reachableUntil = time.Time{}, now.Add(now.Sub(m.partitionFrom))
	if err := m.opts.Partition(false); err != nil {
		m.publish(runtime.PID{}, "", EventPrefix+"partition heal failed: "+err.Error(), nil)
		return
	}
	m.publish(runtime.PID{}, "", EventPrefix+"partition healed", nil)
}
