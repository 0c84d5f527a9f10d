package telecom

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/code"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/sys"
	"observer/internal/telecom/routing"
)

// loaded returns a quiet config with the load generator on at rate, with
// calls short enough that many complete during a test.
func loaded(t *testing.T, rate float64) Config {
	cfg := quiet(t)
	cfg.Load.Enabled = true
	cfg.Load.Rate = rate
	cfg.Load.Duration = Duration{time.Millisecond}
	cfg.Load.RingTime = Duration{time.Millisecond}
	return cfg
}

// moreCompleted waits until n more calls have completed.
func moreCompleted(t *testing.T, s *System, n uint64) {
	t.Helper()
	target := s.Sessions.Stats().Completed + n
	eventually(t, func() bool { return s.Sessions.Stats().Completed >= target })
}

func runsVersion(t *testing.T, s *System, name, vsn string) {
	t.Helper()
	if v := mustWhereis(t, s, name).Info().Version; v != vsn {
		t.Fatalf("%s runs version %s, want %s", name, v, vsn)
	}
}

// awaitEvent waits for an event that matches, failing the test if none
// comes within the long bound only a bug reaches.
func awaitEvent(t *testing.T, sub *runtime.Subscription, match func(runtime.Event) bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case e := <-sub.C:
			if match(e) {
				return
			}
		case <-deadline:
			t.Fatal("the event never came")
		}
	}
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func exec(t *testing.T, s *System, line, want string) string {
	t.Helper()
	out, err := s.Exec(line)
	if err != nil || !strings.Contains(out, want) {
		t.Fatalf("%s: %q, %v; want %q", line, out, err, want)
	}
	return out
}

func TestUpgradeAndDowngradeUnderLoadLoseNoCallAndNoCharge(t *testing.T) {
	cfg := loaded(t, 300)
	s := startSystem(t, cfg)
	sub := s.Node.Subscribe(1 << 14)
	defer sub.Close()
	moreCompleted(t, s, 100)
	failed := maps.Clone(s.Sessions.Stats().Failed)

	reps, err := s.UpgradeAll("2")
	if err != nil || len(reps) != 2 || len(reps[0].Upgraded) != 1 || len(reps[1].Upgraded) != 1 {
		t.Fatalf("upgrade: %+v %v", reps, err)
	}
	runsVersion(t, s, RouterName, "2")
	runsVersion(t, s, BillingName, "2")
	if !s.Billing.RatesByRules() {
		t.Fatal("billing 2 does not rate by the rules")
	}
	// The event log shows the module's upgrade.
	awaitEvent(t, sub, func(e runtime.Event) bool {
		return e.Kind == runtime.EventCodeChange && e.PID.IsZero() && e.Text == "call_router_server 1 -> 2 (1 process)"
	})
	moreCompleted(t, s, 100)

	if _, err := s.UpgradeAll("1"); err != nil {
		t.Fatalf("downgrade: %v", err)
	}
	runsVersion(t, s, RouterName, "1")
	runsVersion(t, s, BillingName, "1")
	if s.Billing.RatesByRules() {
		t.Fatal("billing 1 still rates by the rules")
	}
	moreCompleted(t, s, 100)
	if now := s.Sessions.Stats().Failed; !maps.Equal(now, failed) {
		t.Fatalf("calls failed during the upgrades: before %v, after %v", failed, now)
	}

	s.Stop(5 * time.Second)
	l, err := OpenLedger(cfg.Billing)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep, err := l.Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", rep, err)
	}
	completed, st := s.Sessions.Stats().Completed, s.Billing.Stats()
	if st.Free == 0 {
		t.Fatal("no call was rated free under version 2")
	}
	if st.Unbilled != 0 || uint64(rep.Charges) != completed-st.Free || st.Charged != uint64(rep.Charges) || s.CDRs() != completed {
		t.Fatalf("%d completed calls (%d records, %d free, %d unbilled), %d charged, %d charges in the ledger",
			completed, s.CDRs(), st.Free, st.Unbilled, st.Charged, rep.Charges)
	}
}

// failingMigration is a test-only module version whose code_change fails.
type failingMigration struct{ genserver.Module }

func (failingMigration) CodeChange(string, any, any) (any, error) {
	return nil, errors.New("cannot migrate this state")
}

// keepingMigration is a test-only module version that keeps the state.
type keepingMigration struct{ genserver.Module }

func (keepingMigration) CodeChange(_ string, state, _ any) (any, error) { return state, nil }

func TestFailingCodeChangeRollsBackUnderLoad(t *testing.T) {
	s := startSystem(t, loaded(t, 300))
	if err := errors.Join(
		s.Code.Register(RouterModule, code.Version{Name: "3", Module: keepingMigration{&routerServer{rt: s.Router}}}),
		s.Code.Register(BillingName, code.Version{Name: "3", Module: failingMigration{&billingServer{b: s.Billing}}}),
	); err != nil {
		t.Fatal(err)
	}
	moreCompleted(t, s, 100)
	failed := maps.Clone(s.Sessions.Stats().Failed)

	_, err := s.Code.Upgrade(BillingName, "3", nil, UpgradeTimeout)
	var pe *code.ProcessError
	if !errors.As(err, &pe) || pe.Step != "code_change" || !strings.Contains(err.Error(), "cannot migrate") {
		t.Fatalf("upgrade to the failing version: %v", err)
	}
	if cur := s.Code.Current(BillingName).Name; cur != "1" {
		t.Fatalf("current billing version %s after a failed upgrade", cur)
	}
	runsVersion(t, s, BillingName, "1")

	// Across modules: the router moves to 3, billing fails, and the router
	// is moved back, so both stay on 1.
	reps, err := s.UpgradeAll("3")
	if err == nil || len(reps) != 3 || len(reps[0].Upgraded) != 1 || reps[2].To != "1" || len(reps[2].Upgraded) != 1 {
		t.Fatalf("upgrade all: %+v %v", reps, err)
	}
	if cur := s.Code.Current(RouterModule).Name; cur != "1" {
		t.Fatalf("current router version %s after a failed upgrade", cur)
	}
	runsVersion(t, s, RouterName, "1")
	moreCompleted(t, s, 100)
	if now := s.Sessions.Stats().Failed; !maps.Equal(now, failed) {
		t.Fatalf("calls failed during the upgrades: before %v, after %v", failed, now)
	}
	if _, err := s.Billing.Charge(s.Node, "TXN-AFTER", "ACC-001", mustAmount(t, "1.00"), wait); err != nil {
		t.Fatalf("charge after the rollback: %v", err)
	}
}

const tollFree = "1-888-555-0100" // destination tollfree: tel-core-1:1:70 tel-core-2:1:30

// trunksUsed routes 200 toll-free calls and counts them by trunk.
func trunksUsed(t *testing.T, route func(callID, number string) (routing.Result, error)) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := range 200 {
		res, err := route(fmt.Sprintf("LCR-%d", i), tollFree)
		if err != nil {
			t.Fatal(err)
		}
		seen[res.Trunk]++
	}
	return seen
}

func TestRouterV2PicksTheCheapestHealthyTrunk(t *testing.T) {
	cfg := quiet(t)
	cfg.Router.CoolDown = Duration{time.Millisecond}
	s := startSystem(t, cfg)
	fast := s.Router.Route
	slow := func(id, number string) (routing.Result, error) {
		return s.Router.RouteViaServer(s.Node, id, number, wait)
	}

	// Version 1 splits toll-free calls between the trunks by weight.
	if seen := trunksUsed(t, fast); seen["tel-core-1"] == 0 || seen["tel-core-2"] == 0 {
		t.Fatalf("version 1: %v", seen)
	}
	exec(t, s, "upgrade call_router_server 2", "call_router_server 1 -> 2: 1 process moved")
	for name, route := range map[string]func(string, string) (routing.Result, error){"fast path": fast, "slow path": slow} {
		if seen := trunksUsed(t, route); seen["tel-core-2"] != 200 {
			t.Fatalf("version 2, %s: %v, want every call on tel-core-2, the cheaper", name, seen)
		}
	}
	// The configured table keeps the file's priorities.
	for _, d := range s.Router.Table().Destinations() {
		if d.Name == "tollfree" && (d.Trunks[0].Priority != 1 || d.Trunks[1].Priority != 1) {
			t.Fatalf("table shows %v", d.Trunks)
		}
	}

	// New costs take effect at once, and survive a restart, which comes
	// back on the current version.
	costs := writeFile(t, filepath.Join(t.TempDir(), "costs.txt"), "tel-core-1 0.001\ntel-core-2 0.003\n")
	exec(t, s, "costs "+costs, "trunk costs reloaded")
	if seen := trunksUsed(t, fast); seen["tel-core-1"] != 200 {
		t.Fatalf("after the costs reload: %v", seen)
	}
	old := mustWhereis(t, s, RouterName)
	s.Node.Exit(old, runtime.Kill)
	eventually(t, func() bool {
		pid, ok := s.Node.Whereis(RouterName)
		_, err := s.Router.Route("PROBE", tollFree)
		return ok && pid != old && err == nil
	})
	runsVersion(t, s, RouterName, "2")
	if seen := trunksUsed(t, fast); seen["tel-core-1"] != 200 {
		t.Fatalf("after a restart: %v", seen)
	}

	// The cheapest trunk failing, calls fail over to the next cheapest.
	exec(t, s, "trunk tel-core-1 1", "failure rate 1")
	if seen := trunksUsed(t, fast); seen["tel-core-2"] != 200 {
		t.Fatalf("with tel-core-1 failing: %v", seen)
	}
	exec(t, s, "trunk tel-core-1 0", "failure rate 0")
	// Its breaker closes again once a probe call gets through.
	eventually(t, func() bool {
		res, err := s.Router.Route("PROBE", tollFree)
		return err == nil && res.Trunk == "tel-core-1"
	})

	// A downgrade goes back to weighted random.
	exec(t, s, "upgrade call_router_server 1", "call_router_server 2 -> 1: 1 process moved")
	runsVersion(t, s, RouterName, "1")
	if seen := trunksUsed(t, fast); seen["tel-core-1"] == 0 || seen["tel-core-2"] == 0 {
		t.Fatalf("after the downgrade: %v", seen)
	}
}

func TestTheFastPathNeverWaitsForARouterUpgrade(t *testing.T) {
	s := startSystem(t, quiet(t))
	n, router := s.Node, mustWhereis(t, s, RouterName)
	// An upgrade's steps, one at a time: suspend, code_change, resume.
	if err := sys.Suspend(n, router, wait); err != nil {
		t.Fatal(err)
	}
	type reply struct {
		res routing.Result
		err error
	}
	slow := make(chan reply, 1)
	go func() {
		res, err := s.Router.RouteViaServer(n, "SLOW", tollFree, wait)
		slow <- reply{res, err}
	}()
	// A call through the suspended router process waits in its mailbox,
	eventually(t, func() bool { return router.MailboxLen() == 1 })
	// while the fast path routes at once, on the table version 1 published.
	if seen := trunksUsed(t, s.Router.Route); seen["tel-core-1"] == 0 || seen["tel-core-2"] == 0 {
		t.Fatalf("fast path while suspended on version 1: %v", seen)
	}
	// code_change publishes version 2's table, and the fast path follows
	// it at once, the router process still suspended.
	if err := sys.ChangeCode(n, router, &routerServerV2{rt: s.Router}, "2", nil, wait); err != nil {
		t.Fatal(err)
	}
	if seen := trunksUsed(t, s.Router.Route); seen["tel-core-2"] != 200 {
		t.Fatalf("fast path while suspended on version 2: %v, want every call on tel-core-2", seen)
	}
	if st, queued := router.Info().Status, router.MailboxLen(); st != runtime.StatusSuspended || queued != 1 {
		t.Fatalf("router %v with %d queued, want suspended with the slow call queued", st, queued)
	}
	if err := sys.Resume(n, router, wait); err != nil {
		t.Fatal(err)
	}
	if r := <-slow; r.err != nil || r.res.Trunk != "tel-core-2" {
		t.Fatalf("the queued call: %+v, want it routed by version 2", r)
	}
}

func TestRouterV2LoadsTheTablePreparedBeforeTheUpgrade(t *testing.T) {
	s := startSystem(t, quiet(t))
	rt := s.Router
	// The upgrade builds the least-cost table before it suspends the
	// router; code_change loads that very table.
	if err := (&routerServerV2{rt: rt}).PrepareUpgrade(); err != nil {
		t.Fatal(err)
	}
	prepared, _, err := rt.leastCostOf(rt.Table())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Code.Upgrade(RouterModule, "2", nil, wait); err != nil {
		t.Fatal(err)
	}
	if got := rt.cur.Load().r.Table(); got != prepared {
		t.Fatal("version 2 routes over a table other than the one prepared")
	}
	// New costs make a new table, which a downgrade and upgrade then load.
	if err := rt.SetCosts(s.Node, TrunkCosts{"tel-core-1": 0.001, "tel-core-2": 0.003}, wait); err != nil {
		t.Fatal(err)
	}
	if seen := trunksUsed(t, rt.Route); seen["tel-core-1"] != 200 {
		t.Fatalf("after new costs: %v", seen)
	}
	for _, to := range []string{"1", "2"} {
		if _, err := s.Code.Upgrade(RouterModule, to, nil, wait); err != nil {
			t.Fatal(err)
		}
	}
	if got := rt.cur.Load().r.Table(); got == prepared {
		t.Fatal("version 2 still routes over the table prepared for the old costs")
	}
	if seen := trunksUsed(t, rt.Route); seen["tel-core-1"] != 200 {
		t.Fatalf("after a downgrade and upgrade: %v, want the new costs", seen)
	}
}

func TestRulesReloadChangesPricesAndABadFileIsRefused(t *testing.T) {
	s := startSystem(t, quiet(t))
	dir := t.TempDir()
	uk := cdrTo("uk", time.Minute)
	price := func(want string) {
		t.Helper()
		if got := s.Billing.Rate(uk).String(); got != want {
			t.Fatalf("a minute to the UK costs %s, want %s", got, want)
		}
	}

	// Version 1 charges the flat tariff and keeps loaded rules for later.
	rules := writeFile(t, filepath.Join(dir, "rating.txt"), "destination == \"uk\" => 1.00\ndefault => 0.20\n")
	exec(t, s, "rules "+rules, "runs version 1")
	price("0.10")
	exec(t, s, "upgrade billing_engine_server 2", "1 -> 2")
	price("1.00")

	// A file that does not compile is refused with its line and message,
	// and the running rules stay.
	sub := s.Node.Subscribe(64)
	defer sub.Close()
	bad := writeFile(t, filepath.Join(dir, "bad.txt"), "destination == \"uk\" => 2.00\ndestinaton == \"fr\" => 0.10\n")
	if _, err := s.Exec("rules " + bad); err == nil || !strings.Contains(err.Error(), bad+":2:1: unknown name destinaton") {
		t.Fatalf("bad rules: %v", err)
	}
	price("1.00")
	awaitEvent(t, sub, func(e runtime.Event) bool {
		return e.Kind == runtime.EventCodeChange && e.Name == BillingName && strings.Contains(e.Text, "refused")
	})

	// A good file changes prices from the next call on.
	writeFile(t, rules, "destination == \"uk\" => 0.50\ndestination == \"emergency\" => 0.00\n")
	exec(t, s, "rules "+rules, "(2 rules)")
	price("0.50")
	if got := s.Billing.Rate(cdrTo("nanp", time.Minute)).String(); got != "0.10" {
		t.Fatalf("a call no rule prices costs %s, want the flat 0.10", got)
	}
	// A free call is not charged, and counted as free.
	before, _ := s.Billing.Account(s.Node, "ACC-001")
	if err := s.Billing.ChargeCDR(s.Node, cdrTo("emergency", time.Minute), wait); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Billing.Account(s.Node, "ACC-001")
	if after.Balance != before.Balance || s.Billing.Stats().Free != 1 {
		t.Fatalf("free call: balance %v -> %v, %d free", before.Balance, after.Balance, s.Billing.Stats().Free)
	}

	exec(t, s, "upgrade billing_engine_server 1", "2 -> 1")
	price("0.10")
}

func TestRoutesAndCostsReloadViaConsole(t *testing.T) {
	s := startSystem(t, quiet(t))
	dir := t.TempDir()
	exec(t, s, "upgrade all 2", "billing_engine_server 1 -> 2")
	costs := writeFile(t, filepath.Join(dir, "costs.txt"), "t1 0.5\nt2 0.1\n")
	exec(t, s, "costs "+costs, "trunk costs reloaded")
	routes := writeFile(t, filepath.Join(dir, "routes.txt"), `
trunk t1 a.example.com
trunk t2 b.example.com
destination d1 user t1:1:50 t2:1:50
555 -> d1
`)
	exec(t, s, "routes "+routes, "(1 route)")
	for _, route := range []func() (routing.Result, error){
		func() (routing.Result, error) { return s.Router.Route("C-1", "555 1234") },
		func() (routing.Result, error) { return s.Router.RouteViaServer(s.Node, "C-2", "555 1234", wait) },
	} {
		if res, err := route(); err != nil || res.URI != "sip:user@b.example.com" {
			t.Fatalf("after the reload: %+v %v, want t2, the cheaper", res, err)
		}
	}
	bad := writeFile(t, filepath.Join(dir, "bad.txt"), "trunk t1 a.example.com\n555 -> nowhere\n")
	if _, err := s.Exec("routes " + bad); err == nil || !strings.Contains(err.Error(), bad+":2:") {
		t.Fatalf("bad routes: %v", err)
	}
	if _, err := s.Router.Route("C-3", "555 1234"); err != nil {
		t.Fatalf("the running table did not stay: %v", err)
	}
	if _, err := s.Exec("costs " + bad); err == nil || !strings.Contains(err.Error(), bad+":1:") {
		t.Fatalf("bad costs: %v", err)
	}
}

func TestWatchReloadsChangedFiles(t *testing.T) {
	s := startSystem(t, quiet(t))
	exec(t, s, "upgrade billing_engine_server 2", "1 -> 2")
	dir := t.TempDir()
	rules := writeFile(t, filepath.Join(dir, "rating.txt"), "destination == \"uk\" => 10.00\n")
	routes := writeFile(t, filepath.Join(dir, "routes.txt"), "trunk t1 a.example.com\ndestination d1 user t1:1:1\n555 -> d1\n")
	logs := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Watch(ctx, ReloadFiles{Rules: rules, Routes: routes}, 5*time.Millisecond, func(msg string) { logs <- msg })
	next := func(want string) string {
		t.Helper()
		select {
		case msg := <-logs:
			if !strings.Contains(msg, want) {
				t.Fatalf("watch logged %q, want %q", msg, want)
			}
			return msg
		case <-time.After(wait):
			t.Fatalf("watch logged nothing, want %q", want)
		}
		return ""
	}
	// Each write changes the size, so a coarse mtime cannot hide it. The
	// files are replaced whole, as editors save them, so that the poll
	// never finds one half-written.
	writeFile := func(t *testing.T, path, text string) {
		t.Helper()
		tmp := writeFile(t, path+".new", text)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, rules, "destination == \"uk\" => 0.75\n")
	next("rating rules reloaded from " + rules)
	if got := s.Billing.Rate(cdrTo("uk", time.Minute)).String(); got != "0.75" {
		t.Fatalf("price %s after the reload", got)
	}
	writeFile(t, rules, "destination == \"uk\" =>\n")
	next(rules + ":1:")
	if got := s.Billing.Rate(cdrTo("uk", time.Minute)).String(); got != "0.75" {
		t.Fatalf("price %s after a refused reload", got)
	}
	writeFile(t, routes, "trunk t1 a.example.com\ndestination d1 user t1:1:1\n555 -> d1\n556 -> d1\n")
	next("routing table reloaded from " + routes + " (2 routes)")
	if _, err := s.Router.Route("C", "5560000"); err != nil {
		t.Fatal(err)
	}
}

func TestUpgradeOneProcessAndListModules(t *testing.T) {
	s := startSystem(t, quiet(t))
	router := mustWhereis(t, s, RouterName)
	out, err := s.UpgradeNext(router)
	if err != nil || !strings.Contains(out, "1 -> 2") || !strings.Contains(out, "new processes still start on 1") {
		t.Fatalf("r: %q %v", out, err)
	}
	runsVersion(t, s, RouterName, "2")
	if _, err := s.UpgradeNext(router); err == nil || !strings.Contains(err.Error(), "newest version") {
		t.Fatalf("r again: %v", err)
	}
	if _, err := s.UpgradeNext(mustWhereis(t, s, LoadGenName)); err == nil || !strings.Contains(err.Error(), "no versions registered") {
		t.Fatalf("r on the load generator: %v", err)
	}
	out = exec(t, s, "modules", "call_router_server: current 1, old code 2")
	if !strings.Contains(out, "billing_engine_server: current 1, old code none") || !strings.Contains(out, "*1   0 processes") {
		t.Fatalf("modules:\n%s", out)
	}
	if _, err := s.Exec("upgrade call_router_server 9"); !errors.Is(err, code.ErrUnknownVersion) {
		t.Fatalf("unknown version: %v", err)
	}
}
