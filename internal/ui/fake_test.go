package ui

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"observer/internal/runtime"
)

// idle is a behaviour that does nothing: the cheapest process there is.
type idle struct{}

func (idle) Init(*runtime.Process)        {}
func (idle) Handle(*runtime.Process, any) {}

// fakeSource is a Source over a real node with invented telecom figures.
// With a fixed env it also freezes the clock, the process figures, the
// events and the host, so that frames are the same on every run.
type fakeSource struct {
	node *runtime.Node
	env  *fixedEnv // nil: read the live node

	mu       sync.Mutex
	tree     func(now time.Time) []SupervisorView
	calls    []string
	chaos    bool
	load     int
	readOnly bool
	mods     []ModuleView // nil: fakeModules
}

func (f *fakeSource) Node() *runtime.Node { return f.node }

func (f *fakeSource) Tree() []SupervisorView {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tree == nil {
		return nil
	}
	return f.tree(f.now())
}

func (f *fakeSource) now() time.Time {
	if f.env != nil {
		return f.env.now()
	}
	return time.Now()
}

// Telecom grows its counters with the clock so that rates and charts move.
func (f *fakeSource) Telecom() TelecomView {
	f.mu.Lock()
	defer f.mu.Unlock()
	secs := uint64(max(f.now().Sub(epoch)/time.Second, 0))
	wave := func(period, amp uint64) uint64 { // a triangle wave, integer-exact
		x := secs % period
		if x > period/2 {
			x = period - x
		}
		return amp * x / (period / 2)
	}
	var routed, failed, charges uint64
	for s := uint64(0); s < secs; s++ {
		// Summing per second keeps the counters monotonic with a varying rate.
		x := s % 20
		if x > 10 {
			x = 20 - x
		}
		routed += 900 + 30*x
		failed += 5 + x%3
		charges += 400 + 10*x
	}
	return TelecomView{
		Routing: RoutingView{
			Routed: routed, Failed: failed, Dropped: secs / 10,
			P50:  time.Duration(800+wave(30, 400)) * time.Microsecond,
			P99:  time.Duration(4000+wave(30, 3000)) * time.Microsecond,
			P999: time.Duration(9000+wave(30, 8000)) * time.Microsecond,
		},
		Ledger: LedgerView{
			Backend: "sqlite", Charges: charges, IdempotentHits: secs / 4,
			Recent: []ChargeView{
				{TxnID: "call-000981", Account: "ACC-017", Amount: "0.42", At: epoch.Add(59 * time.Second)},
				{TxnID: "call-000980", Account: "ACC-003", Amount: "1.05", At: epoch.Add(58 * time.Second)},
				{TxnID: "call-000979", Account: "ACC-017", Amount: "0.42", At: epoch.Add(58 * time.Second), Replayed: true},
				{TxnID: "call-000978", Account: "ACC-009", Amount: "12.00", At: epoch.Add(57 * time.Second)},
			},
			Busiest: []AccountView{{ID: "ACC-017", Balance: "88.12", Charges: 412}, {ID: "ACC-003", Balance: "140.00", Charges: 388}},
			Lowest:  []AccountView{{ID: "ACC-042", Balance: "-3.50", Charges: 12}, {ID: "ACC-009", Balance: "0.75", Charges: 96}},
			Pool:    PoolView{Busy: 3, Idle: 5, Waiting: 1},
			Verify:  VerifyView{Done: true, OK: true, Verdict: "OK: 100 accounts balanced, 0 violations", At: epoch.Add(30 * time.Second)},
		},
		Routes: []RouteView{
			{Prefix: "+44", Destination: "uk", Trunks: "carrier-a p1 w70, carrier-b p1 w30"},
			{Prefix: "+4420", Destination: "london", Trunks: "carrier-a p1 w100"},
			{Prefix: "+1", Destination: "nanp", Trunks: "carrier-c p1 w100, carrier-b p2 w100"},
			{Prefix: "+33", Destination: "france", Trunks: "carrier-b p1 w100"},
		},
		Trunks: []TrunkView{
			{Name: "carrier-a", Host: "sip.a.example:5060", State: "closed", FailureRate: 0.02, Attempts: 51234, Failures: 1020, Rejected: 0},
			{Name: "carrier-b", Host: "sip.b.example", State: "open", FailureRate: 0.61, Attempts: 8123, Failures: 4955, Rejected: 312},
			{Name: "carrier-c", Host: "sip.c.example", State: "half-open", FailureRate: 0.2, Attempts: 3001, Failures: 600, Rejected: 40},
		},
		LoadRate: float64(1000 + 100*f.load),
		Chaos:    f.chaos,
	}
}

func (f *fakeSource) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeSource) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeSource) Actions() Actions {
	return Actions{
		SetLoadRate: func(d int) (string, error) {
			f.record(fmt.Sprintf("load %+d", d))
			f.mu.Lock()
			defer f.mu.Unlock()
			f.load += d
			return fmt.Sprintf("load %d calls/s", 1000+100*f.load), nil
		},
		ToggleChaos: func() (string, error) {
			f.record("chaos")
			f.mu.Lock()
			defer f.mu.Unlock()
			f.chaos = !f.chaos
			if f.chaos {
				return "chaos on", nil
			}
			return "chaos off", nil
		},
		Upgrade: func(pid runtime.PID) (string, error) {
			f.record("upgrade " + pid.String())
			return "upgraded " + pid.String() + " to v2", nil
		},
		RunCommand: func(line string) (string, error) {
			f.record("run " + line)
			if line == "fail" {
				return "", errors.New("no such command")
			}
			return "ran " + line + "\nline two", nil
		},
		Modules: func() ([]ModuleView, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.mods == nil {
				f.mods = fakeModules()
			}
			out := slices.Clone(f.mods)
			for i := range out {
				out[i].Versions = slices.Clone(out[i].Versions)
			}
			return out, nil
		},
		UpgradeModule: func(module, version string) (UpgradeReport, error) {
			f.record("upgrade module " + module + " " + version)
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.upgradeModule(module, version)
		},
	}
}

// fakeModules are the code modules the fake system carries: billing on
// one version, the router with a canary on version 2, sessions whose
// version 2 fails its code_change, and a verifier that runs a version no
// longer carried, so that it cannot move.
func fakeModules() []ModuleView {
	return []ModuleView{
		{Name: "billing_engine_server", Current: "1", Versions: []VersionView{
			{Name: "1", Notes: "flat tariff", Current: true, Available: true, Processes: 1},
			{Name: "2", Notes: "rating rules", Available: true},
		}},
		{Name: "call_router_server", Current: "1", Old: []string{"2"}, Versions: []VersionView{
			{Name: "1", Notes: "routes by weight", Current: true, Available: true, Processes: 2},
			{Name: "2", Notes: "least-cost routing", Available: true, Processes: 1},
		}},
		{Name: "session", Current: "1", Versions: []VersionView{
			{Name: "1", Notes: "call session", Current: true, Available: true, Processes: 60},
			{Name: "2", Notes: "fails its code_change", Available: true},
		}},
		{Name: "verifier", Current: "1", Old: []string{"0"}, Versions: []VersionView{
			{Name: "1", Notes: "checks the ledger", Current: true, Available: true},
			{Name: "2", Notes: "checks in batches", Available: true},
			{Name: "0", Processes: 1},
		}},
	}
}

// upgradeModule moves a fake module as the code registry would, all or
// nothing; f.mu is held.
func (f *fakeSource) upgradeModule(module, version string) (UpgradeReport, error) {
	if f.mods == nil {
		f.mods = fakeModules()
	}
	i := slices.IndexFunc(f.mods, func(m ModuleView) bool { return m.Name == module })
	if i < 0 {
		return UpgradeReport{Module: module, To: version}, fmt.Errorf("code: unknown module %q", module)
	}
	mod := &f.mods[i]
	rep := UpgradeReport{Module: module, From: mod.Current, To: version}
	to := slices.IndexFunc(mod.Versions, func(v VersionView) bool { return v.Name == version && v.Available })
	if to < 0 {
		return rep, fmt.Errorf("code: unknown version: %s %q", module, version)
	}
	moving := 0
	for _, v := range mod.Versions {
		if v.Name == version {
			continue
		}
		if !v.Available && v.Processes > 0 {
			return rep, fmt.Errorf("code: a process runs %s version %q, which is not registered: it could not be moved back", module, v.Name)
		}
		moving += v.Processes
	}
	if version == "2" && module == "session" {
		rep.RolledBack, rep.Failed = moving-1, 1
		return rep, errors.New("code: session 1 -> 2 aborted: <0.9.0>: code_change: cannot convert state")
	}
	mod.Old = nil
	for j := range mod.Versions {
		v := &mod.Versions[j]
		v.Current = j == to
		if j == to {
			v.Processes += moving
		} else {
			v.Processes = 0
		}
	}
	mod.Current = version
	rep.Upgraded, rep.MaxPause = moving, 120*time.Microsecond
	return rep, nil
}

// testEnv hands the probe the fixed env, or the live one.
func (f *fakeSource) testEnv() env {
	if f.env != nil {
		return f.env
	}
	return newLiveEnv(f.node)
}

// epoch is the fixed clock's start.
var epoch = time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

// fixedEnv serves invented process figures for real PIDs, on a clock that
// moves only when told to.
type fixedEnv struct {
	mu     sync.Mutex
	t      time.Time
	procs  []runtime.ProcessInfo
	rates  []uint64 // messages per second per process
	mq     func(i int, t time.Time) int
	queued []runtime.Event
	lost   uint64
	state  any
}

func (e *fixedEnv) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.t
}

func (e *fixedEnv) sleep(d time.Duration) {
	e.mu.Lock()
	e.t = e.t.Add(d)
	e.mu.Unlock()
}

// current returns every process with its counters at the present time.
func (e *fixedEnv) current() []runtime.ProcessInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	secs := uint64(max(e.t.Sub(epoch)/time.Second, 0))
	out := slices.Clone(e.procs)
	for i := range out {
		out[i].MessagesIn += e.rates[i] * secs
		out[i].MessagesOut += e.rates[i] * secs / 2
		if e.mq != nil {
			out[i].MailboxLen = e.mq(i, e.t)
		}
	}
	return out
}

func (e *fixedEnv) stats() runtime.NodeStats {
	procs := e.current()
	var msgs uint64
	for _, p := range procs {
		msgs += p.MessagesIn
	}
	now := e.now()
	return runtime.NodeStats{
		Processes: len(procs), MaxProcesses: 1 << 20, Spawned: uint64(len(procs)) + 17, Exited: 17,
		Messages: msgs, Registered: 6, Uptime: now.Sub(epoch) + time.Hour,
	}
}

func rankOf(p *runtime.ProcessInfo, key runtime.SortKey, now time.Time) int64 {
	switch key {
	case runtime.ByMessagesIn:
		return int64(p.MessagesIn)
	case runtime.ByMessagesOut:
		return int64(p.MessagesOut)
	case runtime.ByHandlerTime:
		return int64(p.HandlerTime)
	case runtime.ByAge:
		return int64(now.Sub(p.Started))
	}
	return int64(p.MailboxLen)
}

func (e *fixedEnv) top(k int, key runtime.SortKey) []runtime.ProcessInfo {
	procs := e.current()
	now := e.now()
	slices.SortStableFunc(procs, func(a, b runtime.ProcessInfo) int {
		if c := cmp.Compare(rankOf(&b, key, now), rankOf(&a, key, now)); c != 0 {
			return c
		}
		return cmp.Compare(a.PID.ID(), b.PID.ID())
	})
	return procs[:min(k, len(procs))]
}

func (e *fixedEnv) scan(buf []runtime.ProcessInfo) []runtime.ProcessInfo {
	return append(buf[:0], e.current()...)
}

func (e *fixedEnv) info(pid runtime.PID) runtime.ProcessInfo {
	for _, p := range e.current() {
		if p.PID == pid {
			return p
		}
	}
	return runtime.ProcessInfo{}
}

func (e *fixedEnv) alive(pid runtime.PID) bool { return !e.info(pid).PID.IsZero() }

func (e *fixedEnv) detail(pid runtime.PID, head int) runtime.ProcessDetail {
	info := e.info(pid)
	if info.PID.IsZero() {
		return runtime.ProcessDetail{ExitReason: runtime.Killed}
	}
	procs := e.current()
	d := runtime.ProcessDetail{ProcessInfo: info, Alive: true}
	d.LinkedTo = []runtime.PID{procs[0].PID}
	d.MonitoredBy = []runtime.PID{procs[2].PID}
	d.MonitorsOn = []runtime.PID{procs[3].PID}
	for i := range min(head, info.MailboxLen, 3) {
		d.MailboxHead = append(d.MailboxHead, struct {
			Call string
			N    int
		}{"route", i})
	}
	return d
}

func (e *fixedEnv) events(buf []runtime.Event, limit int) ([]runtime.Event, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := min(limit, len(e.queued))
	buf = append(buf, e.queued[:n]...)
	e.queued = e.queued[n:]
	return buf, e.lost
}

func (e *fixedEnv) getState(pid runtime.PID, timeout time.Duration) (any, error) {
	if e.state == nil {
		return nil, runtime.ErrTimeout
	}
	return e.state, nil
}

func (e *fixedEnv) statistics(pid runtime.PID) (runtime.Statistics, bool) {
	if pid != e.procs[3].PID {
		return runtime.Statistics{}, false
	}
	return runtime.Statistics{Since: epoch, MessagesIn: 120, MessagesOut: 80, HandlerTime: 15 * time.Millisecond}, true
}

func (e *fixedEnv) system() sysSample {
	now := e.now()
	secs := uint64(max(now.Sub(epoch)/time.Second, 0))
	return sysSample{
		at: now, goroutines: 1234, heapLive: 64<<20 + secs%30*(1<<20), heapGoal: 128 << 20, goTotal: 140 << 20,
		gcCycles: 42 + secs/5, gcPauseP99: 180 * time.Microsecond, gcPauseMax: 410 * time.Microsecond,
		hostCPU: 0.234, hostMemUsed: 3 << 30, hostMemTotal: 16 << 30, load1: 1.25, cpus: 8,
		procCPU: 0.45, procRSS: 150<<20 + secs%30*(1<<20),
	}
}

func (e *fixedEnv) close() {}

// fixture is a node with processes and a fixed env over them.
type fixture struct {
	src  *fakeSource
	env  *fixedEnv
	pids []runtime.PID
}

// names of the fixture's first processes; the rest are sessions and pool workers.
var fixtureNames = []string{"telecom_sup", "router", "ledger_sup", "ledger_writer", "verifier", "sessions_sup", "call_gen", "chaos_monkey"}

const fixtureProcs = 90

// newFixture spawns idle processes on a fresh node, so their PIDs are
// <0.1.0> onwards on every run, and describes them with fixed figures.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	n := runtime.NewNode(runtime.Options{})
	f := &fixture{env: &fixedEnv{t: epoch}}
	for range fixtureProcs {
		pid, err := n.SpawnBehaviour(idle{}, runtime.SpawnOpts{})
		if err != nil {
			t.Fatal(err)
		}
		f.pids = append(f.pids, pid)
	}
	t.Cleanup(func() {
		for _, pid := range f.pids {
			n.Exit(pid, runtime.Kill)
		}
	})
	for i, pid := range f.pids {
		info := runtime.ProcessInfo{
			PID:         pid,
			Status:      runtime.StatusWaiting,
			MailboxLen:  (i * 37) % 23,
			MessagesIn:  uint64(i * 1000),
			MessagesOut: uint64(i * 400),
			HandlerTime: time.Duration(i*i) * 137 * time.Microsecond,
			Links:       1,
			Started:     epoch.Add(-time.Duration(i) * time.Minute),
			Behaviour:   "gen_server",
		}
		switch {
		case i < len(fixtureNames):
			info.Name = fixtureNames[i]
			info.Module = fixtureNames[i]
			info.Version = "v1"
			if strings.HasSuffix(info.Name, "_sup") {
				info.Behaviour = "supervisor"
			}
		case i < 68:
			info.Module = "session"
			info.Behaviour = "gen_statem"
		default:
			info.Module = "pool_worker"
		}
		if i > 0 {
			info.Parent = f.pids[0]
		}
		if i == 3 {
			info.Status = runtime.StatusRunning
			info.MailboxLen = 1500
			info.TrapExit = true
		}
		f.env.procs = append(f.env.procs, info)
		f.env.rates = append(f.env.rates, uint64((i*13)%40))
	}
	f.env.state = map[string]any{"batch": 64, "pending": []string{"call-000981", "call-000982"}, "db": "sqlite"}
	f.env.lost = 3
	f.env.queued = f.fixtureEvents()
	f.src = &fakeSource{node: n, env: f.env, tree: f.tree}
	return f
}

func (f *fixture) fixtureEvents() []runtime.Event {
	p := f.pids
	at := func(s int) time.Time { return epoch.Add(time.Duration(s) * time.Second) }
	return []runtime.Event{
		{Seq: 1, Time: at(1), Kind: runtime.EventSupervisor, PID: p[0], Other: p[1], Name: "router", Text: "child_started"},
		{Seq: 2, Time: at(2), Kind: runtime.EventSpawn, PID: p[8]}, // not kept
		{Seq: 3, Time: at(3), Kind: runtime.EventExit, PID: p[1], Name: "router", Reason: &runtime.PanicError{Value: "boom", Stack: "goroutine 7 [running]:\nrouter.route(...)\n\trouter.go:42"}},
		{Seq: 4, Time: at(3), Kind: runtime.EventSupervisor, PID: p[0], Other: p[1], Name: "router", Text: "child_restarted", Reason: "boom"},
		{Seq: 5, Time: at(4), Kind: runtime.EventExit, PID: p[9], Reason: runtime.Normal}, // not kept
		{Seq: 6, Time: at(5), Kind: runtime.EventCodeChange, PID: p[3], Name: "ledger_writer", Text: "ledger_writer v1 -> v2"},
		{Seq: 7, Time: at(6), Kind: runtime.EventExit, PID: p[10], Reason: runtime.Killed},
		{Seq: 8, Time: at(7), Kind: runtime.EventSys, PID: p[4], Text: "suspended"},
	}
}

// tree is the fixture's supervision tree at time now: the router restarts
// at 20 s and 40 s past the epoch.
func (f *fixture) tree(now time.Time) []SupervisorView {
	p := f.pids
	at := func(s int) time.Time { return epoch.Add(time.Duration(s) * time.Second) }
	var restarts []time.Time
	routerRestarts := 1
	for _, s := range []int{20, 40} {
		if !now.Before(at(s)) {
			restarts = append(restarts, at(s))
			routerRestarts++
		}
	}
	var window []time.Time
	for _, r := range append([]time.Time{at(3)}, restarts...) {
		if now.Sub(r) < 30*time.Second {
			window = append(window, r)
		}
	}
	sessions := make([]ChildView, 0, 60)
	for i := 8; i < 68; i++ {
		sessions = append(sessions, ChildView{PID: p[i], Status: "running", Type: "worker", Module: "session"})
	}
	return []SupervisorView{
		{PID: p[0], Name: "telecom_sup", Module: "telecom_sup", Version: "v1", Strategy: "one_for_one", Intensity: 5, Period: 30 * time.Second,
			Restarts: window,
			Children: []ChildView{
				{ID: "router", PID: p[1], Status: "running", Type: "worker", Restarts: routerRestarts, LastExit: &runtime.PanicError{Value: "boom"}, LastRestart: restartTime(restarts, at(3)), Module: "router", Version: "v1"},
				{ID: "ledger_sup", PID: p[2], Status: "running", Type: "supervisor", Module: "ledger_sup"},
				{ID: "sessions_sup", PID: p[5], Status: "running", Type: "supervisor", Module: "sessions_sup"},
				{ID: "call_gen", PID: p[6], Status: "running", Type: "worker", Module: "call_gen"},
				{ID: "chaos_monkey", Status: "undefined", Type: "worker", Module: "chaos_monkey"},
			}},
		{PID: p[2], Name: "ledger_sup", Module: "ledger_sup", Version: "v1", Strategy: "rest_for_one", Intensity: 3, Period: 5 * time.Second,
			Children: []ChildView{
				{ID: "ledger_writer", PID: p[3], Status: "running", Type: "worker", Module: "ledger_writer", Version: "v2"},
				{ID: "verifier", PID: p[4], Status: "running", Type: "worker", Restarts: 1, LastExit: runtime.Shutdown, LastRestart: at(-20), Module: "verifier"},
			}},
		{PID: p[5], Name: "sessions_sup", Module: "sessions_sup", Strategy: "simple_one_for_one", Intensity: 1000, Period: 5 * time.Second,
			Children: sessions},
	}
}

func restartTime(restarts []time.Time, first time.Time) time.Time {
	if len(restarts) == 0 {
		return first
	}
	return restarts[len(restarts)-1]
}
