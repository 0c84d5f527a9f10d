package chaos_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/supervisor"
	"observer/internal/telecom"
	"observer/internal/telecom/chaos"
	"observer/internal/telecom/money"
)

// bound is far above what any wait below needs on a healthy system.
const bound = 10 * time.Second

// quiet starts the system without load, its ledger in a temporary
// directory.
func quiet(t *testing.T) *telecom.System {
	t.Helper()
	cfg := telecom.DefaultConfig()
	cfg.Load.Enabled = false
	cfg.Billing.DataDir = t.TempDir()
	s, err := telecom.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(0) })
	return s
}

func subscribe(t *testing.T, s *telecom.System) *runtime.Subscription {
	sub := s.Node.Subscribe(1 << 16)
	t.Cleanup(sub.Close)
	return sub
}

// waitEvent returns the first event that matches.
func waitEvent(t *testing.T, sub *runtime.Subscription, what string, match func(runtime.Event) bool) runtime.Event {
	t.Helper()
	deadline := time.After(bound)
	for {
		select {
		case e := <-sub.C:
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("no event: %s", what)
		}
	}
}

func chaosEvent(prefix string) func(runtime.Event) bool {
	return func(e runtime.Event) bool {
		return e.Kind == runtime.EventSys && strings.HasPrefix(e.Text, chaos.EventPrefix+prefix)
	}
}

func restarted(id string) func(runtime.Event) bool {
	return func(e runtime.Event) bool {
		return e.Kind == runtime.EventSupervisor && e.Text == supervisor.ReportChildRestarted && e.Name == id
	}
}

// eventually waits for cond, looking again at each event and each tick.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(bound)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("never: %s", what)
		}
	}
}

// allRunning reports whether the top supervisor and every permanent child
// in the tree are alive.
func allRunning(s *telecom.System) bool {
	if _, ok := s.Node.Whereis(telecom.TopSupName); !ok {
		return false
	}
	for _, info := range supervisor.All(s.Node) {
		for _, c := range info.Children {
			if c.Restart == supervisor.Permanent && (c.Status != supervisor.StatusRunning || !c.PID.Alive()) {
				return false
			}
		}
	}
	return true
}

func set(t *testing.T, s *telecom.System, st chaos.Settings) {
	t.Helper()
	if err := s.Chaos.SetSettings(st); err != nil {
		t.Fatal(err)
	}
}

func TestTheMonkeyIsInTheTreeAndIdle(t *testing.T) {
	s := quiet(t)
	pid, ok := s.Node.Whereis(chaos.Name)
	if !ok {
		t.Fatal("chaos_monkey is not running")
	}
	if got := pid.Info().Parent; got != mustWhereis(t, s, telecom.TopSupName) {
		t.Fatalf("chaos_monkey's parent is %v, not telecom_sup", got)
	}
	if s.Chaos.Running() {
		t.Fatal("the monkey starts switched on")
	}
	if st := s.Chaos.Settings(); st.Rate != 2 || len(st.Kinds) != 1 || st.Kinds[0] != chaos.Kill {
		t.Fatalf("settings from the default config: %+v", st)
	}
}

func mustWhereis(t *testing.T, s *telecom.System, name string) runtime.PID {
	t.Helper()
	pid, ok := s.Node.Whereis(name)
	if !ok {
		t.Fatalf("%s is not registered", name)
	}
	return pid
}

func TestKillRestartsTheTarget(t *testing.T) {
	s := quiet(t)
	sub := subscribe(t, s)
	old := mustWhereis(t, s, telecom.RouterName)
	set(t, s, chaos.Settings{Rate: 1, Kinds: []chaos.Kind{chaos.Kill}, Targets: []string{"call_router"}})
	f, err := s.Chaos.Inject(chaos.Kill)
	if err != nil {
		t.Fatal(err)
	}
	if f.Target != old || f.Name != telecom.RouterName {
		t.Fatalf("killed %v %s, want the router %v", f.Target, f.Name, old)
	}
	e := waitEvent(t, sub, "the kill", chaosEvent("kill"))
	if e.PID != old || e.Data.(chaos.Fault).Kind != chaos.Kill {
		t.Fatalf("event %+v", e)
	}
	waitEvent(t, sub, "the router's restart", restarted(telecom.RouterName))
	if pid := mustWhereis(t, s, telecom.RouterName); pid == old {
		t.Fatal("the router kept its PID")
	}
	if st := s.Chaos.Stats(); st.Injected[chaos.Kill] != 1 || st.Last.Target != old {
		t.Fatalf("stats %+v", st)
	}
}

func TestARunningMonkeyKillsAndTheTreeRecovers(t *testing.T) {
	s := quiet(t)
	sub := subscribe(t, s)
	set(t, s, chaos.Settings{Rate: 20, Kinds: []chaos.Kind{chaos.Kill}, Targets: []string{"call_router", "load_generator"}})
	s.Chaos.SetRunning(true)
	waitEvent(t, sub, "chaos on", chaosEvent("on"))
	for i := 0; i < 5; i++ {
		e := waitEvent(t, sub, "a kill", chaosEvent("kill"))
		if f := e.Data.(chaos.Fault); f.Name != telecom.RouterName && f.Name != telecom.LoadGenName {
			t.Fatalf("killed %s, outside the targets", f.Name)
		}
	}
	s.Chaos.SetRunning(false)
	waitEvent(t, sub, "chaos off", chaosEvent("off"))
	eventually(t, "every permanent child running again", func() bool { return allRunning(s) })
	if s.Chaos.Stats().Injected[chaos.Kill] < 5 {
		t.Fatalf("stats %+v", s.Chaos.Stats())
	}
}

func TestToggleSurvivesARestartOfTheMonkey(t *testing.T) {
	s := quiet(t)
	sub := subscribe(t, s)
	set(t, s, chaos.Settings{Rate: 10, Kinds: []chaos.Kind{chaos.Kill}, Targets: []string{"call_router"}})
	msg, err := s.Chaos.Toggle()
	if err != nil || !strings.HasPrefix(msg, "chaos on: 10 faults/s (kill), targets call_router") || !s.Chaos.Running() {
		t.Fatalf("toggle on: %q %v", msg, err)
	}
	waitEvent(t, sub, "a kill", chaosEvent("kill"))
	// The monkey dies; its successor has the switch and the settings.
	monkey := mustWhereis(t, s, chaos.Name)
	s.Node.Exit(monkey, runtime.Kill)
	waitEvent(t, sub, "the monkey's restart", restarted(chaos.Name))
	waitEvent(t, sub, "a kill by the new monkey", chaosEvent("kill"))
	if msg, err := s.Chaos.Toggle(); err != nil || msg != "chaos off" || s.Chaos.Running() {
		t.Fatalf("toggle off: %q %v", msg, err)
	}
	waitEvent(t, sub, "chaos off", chaosEvent("off"))
}

func TestSettingsAreValidated(t *testing.T) {
	s := quiet(t)
	kill := []chaos.Kind{chaos.Kill}
	for _, tc := range []struct {
		name string
		set  chaos.Settings
		want string
	}{
		{"negative rate", chaos.Settings{Rate: -1, Kinds: kill}, "rate must be within"},
		{"NaN rate", chaos.Settings{Rate: math.NaN(), Kinds: kill}, "rate must be within"},
		{"rate over the limit", chaos.Settings{Rate: chaos.MaxRate + 1, Kinds: kill}, "rate must be within"},
		{"no kinds", chaos.Settings{Rate: 1}, "at least one fault kind"},
		{"unknown kind", chaos.Settings{Rate: 1, Kinds: []chaos.Kind{"meteor"}}, `unknown fault kind "meteor"`},
		{"empty target", chaos.Settings{Rate: 1, Kinds: kill, Targets: []string{" "}}, "targets must not be empty"},
		{"negative size", chaos.Settings{Rate: 1, Kinds: kill, MemoryBytes: -1}, "must not be negative"},
		{"negative duration", chaos.Settings{Rate: 1, Kinds: kill, CPUSpin: -time.Second}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Chaos.SetSettings(tc.set)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if st := s.Chaos.Settings(); st.Rate != 2 {
		t.Fatalf("a refused setting changed the settings: %+v", st)
	}
	// Partition needs the system's switch.
	if _, err := chaos.New(s.Node, chaos.Settings{Rate: 1, Kinds: []chaos.Kind{chaos.Partition}}, chaos.Options{}); err == nil {
		t.Fatal("a monkey without a partition switch accepted the partition kind")
	}
	if kinds, err := chaos.ParseKinds("all"); err != nil || len(kinds) != len(chaos.AllKinds()) {
		t.Fatalf("all: %v %v", kinds, err)
	}
	if _, err := chaos.ParseKinds("kill,meteor"); err == nil {
		t.Fatal("meteor parsed")
	}
	// A config with an unknown kind does not start.
	cfg := telecom.DefaultConfig()
	cfg.Billing.DataDir = t.TempDir()
	cfg.Chaos.Kinds = []string{"meteor"}
	if _, err := telecom.Start(cfg); err == nil || !strings.Contains(err.Error(), "meteor") {
		t.Fatalf("start with kind meteor: %v", err)
	}
}

func TestExec(t *testing.T) {
	s := quiet(t)
	for _, tc := range []struct{ line, want string }{
		{"chaos rate 5", "chaos settings: 5 faults/s (kill), targets any worker"},
		{"kinds kill,flood", "chaos settings: 5 faults/s (kill, flood), targets any worker"},
		{"chaos targets call_router,load_", "targets call_router, load_"},
		{"chaos targets", "targets any worker"},
		{"chaos on", "chaos on: 5 faults/s"},
		{"chaos", "chaos on: "},
		{"chaos off", "chaos off: "},
		{"chaos help", "chaos inject KIND"},
	} {
		got, err := s.Chaos.Exec(tc.line)
		if err != nil || !strings.Contains(got, tc.want) {
			t.Fatalf("%q: %q %v, want %q", tc.line, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ line, want string }{
		{"chaos rate fast", "not a number"},
		{"chaos rate -1", "rate must be within"},
		{"chaos kinds meteor", "unknown fault kind"},
		{"chaos inject meteor", "unknown fault kind"},
		{"chaos dance", "unknown chaos command"},
	} {
		if _, err := s.Chaos.Exec(tc.line); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%q: %v, want %q", tc.line, err, tc.want)
		}
	}
	if got, err := s.Chaos.Exec("chaos inject kill"); err != nil || !strings.HasPrefix(got, "injected kill <0.") {
		t.Fatalf("inject: %q %v", got, err)
	}
}

func TestEachKind(t *testing.T) {
	s := quiet(t)
	sub := subscribe(t, s)
	router := func() runtime.PID { return mustWhereis(t, s, telecom.RouterName) }
	set(t, s, chaos.Settings{Rate: 1, Kinds: chaos.AllKinds(), Targets: []string{"call_router"},
		FloodMessages: 5000, MemoryBytes: 8 << 20, MemoryHold: 10 * time.Millisecond, CPUSpin: 20 * time.Millisecond})
	exited := func(pid runtime.PID) func(runtime.Event) bool {
		return func(e runtime.Event) bool { return e.Kind == runtime.EventExit && e.PID == pid }
	}

	t.Run("exit", func(t *testing.T) {
		f, err := s.Chaos.Inject(chaos.Exit)
		if err != nil {
			t.Fatal(err)
		}
		waitEvent(t, sub, "the router's restart", restarted(telecom.RouterName))
		if r, _ := f.Target.ExitReason(); !runtime.SameReason(r, chaos.ExitReason) {
			t.Fatalf("exit reason %v", r)
		}
	})
	t.Run("flood", func(t *testing.T) {
		before := router().Info().MessagesIn
		f, err := s.Chaos.Inject(chaos.Flood)
		if err != nil || f.Detail != "5000 messages to each of 1 workers" {
			t.Fatalf("%v %v", f, err)
		}
		waitEvent(t, sub, "the flood's end", exited(f.Target))
		if in := router().Info().MessagesIn; in < before+5000 {
			t.Fatalf("the router received %d messages", in-before)
		}
	})
	t.Run("memory", func(t *testing.T) {
		f, err := s.Chaos.Inject(chaos.Memory)
		if err != nil || f.Detail != "8 MiB held for 10ms" {
			t.Fatalf("%v %v", f, err)
		}
		waitEvent(t, sub, "the hog's release", exited(f.Target))
	})
	t.Run("cpu", func(t *testing.T) {
		f, err := s.Chaos.Inject(chaos.CPU)
		if err != nil || f.Target != router() {
			t.Fatalf("%v %v", f, err)
		}
		// The spin ran in the router, which is still the same process.
		eventually(t, "the router's handler spun", func() bool {
			return f.Target.Info().HandlerTime >= 20*time.Millisecond
		})
		if !f.Target.Alive() {
			t.Fatal("the router died of a spin")
		}
	})
	t.Run("one memory fault at a time", func(t *testing.T) {
		set(t, s, chaos.Settings{Rate: 1, Kinds: chaos.AllKinds(), MemoryBytes: 1 << 20, MemoryHold: time.Hour})
		f, err := s.Chaos.Inject(chaos.Memory)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Chaos.Inject(chaos.Memory); err == nil || !strings.Contains(err.Error(), "still running") {
			t.Fatalf("second memory fault: %v", err)
		}
		s.Node.Exit(f.Target, runtime.Kill) // ends the hold
		waitEvent(t, sub, "the hog's end", exited(f.Target))
		eventually(t, "a memory fault allowed again", func() bool {
			f, err := s.Chaos.Inject(chaos.Memory)
			if err == nil {
				s.Node.Exit(f.Target, runtime.Kill)
			}
			return err == nil
		})
	})
	t.Run("supervisor", func(t *testing.T) {
		set(t, s, chaos.Settings{Rate: 1, Kinds: chaos.AllKinds(), Targets: []string{telecom.CallSupName}})
		f, err := s.Chaos.Inject(chaos.Supervisor)
		if err != nil || f.Name != telecom.CallSupName {
			t.Fatalf("%v %v", f, err)
		}
		waitEvent(t, sub, "call_sup's restart", restarted(telecom.CallSupName))
		eventually(t, "every permanent child running again", func() bool { return allRunning(s) })
	})
	t.Run("no target", func(t *testing.T) {
		set(t, s, chaos.Settings{Rate: 1, Kinds: chaos.AllKinds(), Targets: []string{"nobody"}})
		if _, err := s.Chaos.Inject(chaos.Kill); err == nil || !strings.Contains(err.Error(), "no worker matches the targets nobody") {
			t.Fatalf("kill nobody: %v", err)
		}
		waitEvent(t, sub, "the skip", chaosEvent("kill skipped"))
		if s.Chaos.Stats().Skipped == 0 {
			t.Fatal("the skip is not counted")
		}
	})
}

func TestTheMonkeyKillsItselfOnlyWhenNamed(t *testing.T) {
	s := quiet(t)
	sub := subscribe(t, s)
	monkey := mustWhereis(t, s, chaos.Name)
	set(t, s, chaos.Settings{Rate: 1, Kinds: []chaos.Kind{chaos.Kill}, Targets: []string{"chaos"}})
	if _, err := s.Chaos.Inject(chaos.Kill); err == nil || !strings.Contains(err.Error(), "no worker matches") {
		t.Fatalf("a prefix of the monkey's name: %v", err)
	}
	set(t, s, chaos.Settings{Rate: 1, Kinds: []chaos.Kind{chaos.Kill}, Targets: []string{chaos.Name}})
	if _, err := s.Chaos.Inject(chaos.Kill); err == nil {
		t.Fatal("the monkey answered after killing itself")
	}
	waitEvent(t, sub, "the monkey's restart", restarted(chaos.Name))
	if mustWhereis(t, s, chaos.Name) == monkey {
		t.Fatal("the monkey kept its PID")
	}
}

func TestKillingTheTopSupervisorTerminatesTheNode(t *testing.T) {
	s := quiet(t)
	set(t, s, chaos.Settings{Rate: 1, Kinds: []chaos.Kind{chaos.Supervisor}, Targets: []string{telecom.TopSupName}})
	// The monkey answers before the exit of its supervisor reaches it.
	if f, err := s.Chaos.Inject(chaos.Supervisor); err != nil || f.Name != telecom.TopSupName {
		t.Fatalf("%v %v", f, err)
	}
	select {
	case <-s.Apps.Done():
	case <-time.After(bound):
		t.Fatal("the node did not terminate")
	}
	if err := s.Apps.Err(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("node exit: %v", err)
	}
}

func TestPartitionFailsChargesRetryablyAndHeals(t *testing.T) {
	s := quiet(t)
	sub := subscribe(t, s)
	set(t, s, chaos.Settings{Rate: 1, Kinds: []chaos.Kind{chaos.Partition}, PartitionFor: time.Hour})
	if _, err := s.Chaos.Inject(chaos.Partition); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, "the partition", chaosEvent("partition: the ledger's database is unreachable for 1h0m0s"))
	amt := money.Amount(123)
	_, err := s.Billing.Charge(s.Node, "TXN-P1", "ACC-001", amt, bound)
	if !errors.Is(err, telecom.ErrLedgerUnreachable) || !telecom.Retryable(err) {
		t.Fatalf("charge during the partition: %v", err)
	}
	// Calls keep routing.
	if _, err := s.Router.Route("CALL-P", "1-800-FORTUNE"); err != nil {
		t.Fatalf("routing during the partition: %v", err)
	}
	// A billing engine restarted meanwhile is cut off too.
	s.Node.Exit(mustWhereis(t, s, telecom.BillingName), runtime.Kill)
	waitEvent(t, sub, "billing's restart", restarted(telecom.BillingName))
	waitEvent(t, sub, "the cut loaded into the new billing engine", func(e runtime.Event) bool {
		return e.Kind == runtime.EventCodeChange && e.Name == telecom.BillingName
	})
	if _, err := s.Billing.Charge(s.Node, "TXN-P1", "ACC-001", amt, bound); !errors.Is(err, telecom.ErrLedgerUnreachable) {
		t.Fatalf("charge to the restarted billing engine: %v", err)
	}
	// Switching the monkey off heals; the retry with the same txnID charges once.
	s.Chaos.SetRunning(false)
	waitEvent(t, sub, "the heal", chaosEvent("partition healed"))
	rec, err := s.Billing.Charge(s.Node, "TXN-P1", "ACC-001", amt, bound)
	if err != nil || rec.Replayed {
		t.Fatalf("charge after the heal: %+v %v", rec, err)
	}
	if rec, err := s.Billing.Charge(s.Node, "TXN-P1", "ACC-001", amt, bound); err != nil || !rec.Replayed {
		t.Fatalf("retry after the heal: %+v %v", rec, err)
	}
}

func TestPartitionHealsByItself(t *testing.T) {
	s := quiet(t)
	sub := subscribe(t, s)
	set(t, s, chaos.Settings{Rate: 1, Kinds: []chaos.Kind{chaos.Partition}, PartitionFor: 300 * time.Millisecond})
	if _, err := s.Chaos.Inject(chaos.Partition); err != nil {
		t.Fatal(err)
	}
	if !s.Chaos.Partitioned() {
		t.Fatal("no partition")
	}
	// A completed call's charge fails, is retried with its txnID and goes
	// through once the partition heals.
	cdr := telecom.CDR{CallID: "CALL-HEAL", Account: "ACC-002", Duration: time.Minute}
	if err := s.Billing.ChargeCDR(s.Node, cdr, bound); err != nil {
		t.Fatalf("charge across the partition: %v", err)
	}
	waitEvent(t, sub, "the heal", chaosEvent("partition healed"))
	if st := s.Billing.Stats(); st.Retried == 0 || st.Unbilled != 0 {
		t.Fatalf("billing stats %+v", st)
	}
	if _, found, err := s.Billing.Ledger().FindCharge(t.Context(), "CDR-CALL-HEAL"); err != nil || !found {
		t.Fatalf("the charge is not in the ledger: %v %v", found, err)
	}
	// The database stays reachable for as long as it was cut off.
	if _, err := s.Chaos.Inject(chaos.Partition); err == nil || !strings.Contains(err.Error(), "stays reachable") {
		t.Fatalf("a partition right after the heal: %v", err)
	}
}
