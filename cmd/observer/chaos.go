package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/supervisor"
	"observer/internal/telecom"
	"observer/internal/telecom/chaos"
	"observer/internal/telecom/ledger"
)

func init() {
	register(command{name: "chaos", summary: "run fault scenarios under load and check that the system recovers", run: runChaos})
}

// chaosScenarios are the scenarios of --scenario, in the order all runs
// them; each injects the chaos monkey's fault kind of the same name.
var chaosScenarios = []string{"kill", "supervisor", "flood", "memory", "cpu", "partition"}

// chaosRecovered is the share of the throughput before the faults that
// counts as recovered.
const chaosRecovered = 0.9

// chaosCDRDeadline is how long a completed call's charge is retried, as the
// system's own billing of CDRs does.
const chaosCDRDeadline = 5 * time.Second

// chaosStopBound is how long a system may take to stop beyond its drain
// before it counts as stuck.
const chaosStopBound = 30 * time.Second

// chaosSettle bounds the wait for goroutines to end after a stop: timers
// that fire late and processes killed in their code finish within it.
const chaosSettle = 10 * time.Second

// chaosParkedWorker is the function a runtime worker goroutine parks in
// between drains (see maxIdleWorkers in internal/runtime/sched.go): a node
// keeps up to that many for reuse, and they outlive the node.
const chaosParkedWorker = "observer/internal/runtime.(*Node).worker"

func runChaos(e *env, args []string) error {
	fs := newFlags(e, "chaos", "", "Runs a fault scenario under load: measures the throughput, switches the chaos monkey on for --duration,\n"+
		"switches it off, waits for recovery, stops the system and checks the invariants: the ledger verifies, every\n"+
		"acknowledged charge is in it, no txnID is charged twice, every permanent process runs again, the throughput\n"+
		"is back to 90% and no goroutine is left behind. It prints a report (--json for a machine) and exits 1 if an\n"+
		"invariant is violated. The ledger is kept in a temporary directory unless --data-dir or --ledger is given.")
	cf := addConfigFlags(fs)
	scenario := fs.String("scenario", "", "`scenario` to run: "+strings.Join(chaosScenarios, ", ")+", or all (each in turn)")
	duration := fs.Duration("duration", 60*time.Second, "how long faults are injected, per scenario")
	rate := fs.Float64("rate", 0, "faults per second (default from the config: 2)")
	load := fs.Float64("load", 0, "calls per second the load generator offers (default from the config: 50)")
	recovery := fs.Duration("recovery-timeout", 30*time.Second, "how long the system may take to recover after the faults stop")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	withUI := fs.Bool("ui", false, "also run the UI over the system, drawn off-screen, every view in turn")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected argument %q", pos[0])
	}
	var scenarios []string
	switch {
	case *scenario == "":
		return usageError("--scenario is required: %s or all", strings.Join(chaosScenarios, ", "))
	case *scenario == "all":
		scenarios = chaosScenarios
	case slices.Contains(chaosScenarios, *scenario):
		scenarios = []string{*scenario}
	default:
		return usageError("unknown scenario %q (want %s or all)", *scenario, strings.Join(chaosScenarios, ", "))
	}
	if *duration <= 0 || *recovery <= 0 {
		return usageError("--duration and --recovery-timeout must be positive")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	var own bool
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "rate":
			cfg.Chaos.Rate = *rate
		case "load":
			cfg.Load.Rate = *load
		case "data-dir", "ledger":
			own = true
		}
	})
	if !(cfg.Load.Rate > 0) {
		return usageError("the chaos scenarios need load: --load must be positive, got %v", cfg.Load.Rate)
	}
	set := chaos.Settings{Rate: cfg.Chaos.Rate, Targets: cfg.Chaos.Targets, Kinds: []chaos.Kind{chaos.Kill}}
	if err := set.Validate(); err != nil {
		return usageError("%v", err)
	}
	if !own {
		dir, err := os.MkdirTemp("", "observer-chaos-")
		if err != nil {
			return err
		}
		cfg.Billing.DataDir, cfg.Billing.Ledger = dir, ""
	}
	// Created before the goroutines are counted: the signal watcher lives on.
	ctx, cancel := signalContext()
	defer cancel()
	plan := chaosPlan{
		cfg: cfg, scenarios: scenarios, duration: *duration, settings: set, load: cfg.Load.Rate,
		warmup: time.Second, measure: 2 * time.Second, window: 500 * time.Millisecond,
		recovery: *recovery, drain: 3 * time.Second, progress: e.stderr,
	}
	if *withUI {
		plan.observe = func(sys *telecom.System) func() { return watchOffScreen(e, sys) }
	}
	rep, err := plan.run(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.print(e.stdout)
	}
	if !own {
		if rep.OK {
			_ = os.RemoveAll(cfg.Billing.DataDir)
		} else {
			fmt.Fprintf(e.stderr, "observer chaos: the ledger is kept in %s\n", cfg.Billing.DataDir)
		}
	}
	if !rep.OK {
		return &exitError{code: 1, err: errors.New("invariants violated: " + rep.violations())}
	}
	return nil
}

// chaosPlan is one run of the chaos command.
type chaosPlan struct {
	cfg       telecom.Config // the ledger's location; load and chaos are set per scenario
	scenarios []string
	duration  time.Duration  // of the faults, per scenario
	settings  chaos.Settings // rate, targets and sizes; the kind is the scenario's
	load      float64        // calls/s offered

	warmup   time.Duration // before the throughput is measured
	measure  time.Duration // each throughput measurement, before and after
	window   time.Duration // the throughput window while waiting for recovery
	recovery time.Duration // bound of the wait for recovery
	drain    time.Duration // calls in flight may finish at the stop
	progress io.Writer     // phase lines; nil for none

	// observe, if set, watches each incarnation of the system until the
	// function it returns is called, before the incarnation stops.
	observe func(sys *telecom.System) (stop func())
}

// chaosReport is the command's report.
type chaosReport struct {
	OK        bool                  `json:"ok"`
	Scenarios []chaosScenarioReport `json:"scenarios"`
}

// chaosScenarioReport is one scenario's measurements and verdicts.
type chaosScenarioReport struct {
	Scenario     string            `json:"scenario"`
	Duration     float64           `json:"duration_s"`
	Rate         float64           `json:"rate"` // faults/s
	Load         float64           `json:"load"` // calls/s offered
	Faults       map[string]uint64 `json:"faults"`
	Skipped      uint64            `json:"faults_skipped"`
	NodeRestarts int               `json:"node_restarts"`
	Before       float64           `json:"throughput_before"` // routed calls/s
	After        float64           `json:"throughput_after"`
	Recovered    bool              `json:"recovered"`
	Recovery     float64           `json:"recovery_s"` // from the faults' stop to recovery
	Charges      chaosCharges      `json:"charges"`
	Ledger       string            `json:"ledger"`
	Goroutines   chaosGoroutines   `json:"goroutines"`
	Invariants   []chaosInvariant  `json:"invariants"`
	OK           bool              `json:"ok"`
}

type chaosCharges struct {
	CDRs         uint64 `json:"cdrs"`         // completed calls
	Acknowledged int    `json:"acknowledged"` // charges billing confirmed durable
	Found        int    `json:"found"`        // of those, found in the ledger
	Retried      uint64 `json:"retried"`
	Unbilled     uint64 `json:"unbilled"`
	Rejected     uint64 `json:"rejected"`
}

type chaosGoroutines struct {
	Before int      `json:"before"`
	After  int      `json:"after"`
	Parked int      `json:"parked_workers"` // started since, the runtime's parked workers, which outlive their node
	Left   []string `json:"left_behind,omitempty"`
}

// chaosInvariant is one checked invariant.
type chaosInvariant struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// The invariants, by the names reports use.
const (
	invLedger     = "ledger-verify"
	invAcked      = "acknowledged-charges"
	invOnce       = "charged-once"
	invPermanent  = "permanent-running"
	invThroughput = "throughput"
	invStop       = "clean-stop"
	invGoroutines = "no-goroutine-left"
)

func (r *chaosReport) violations() string {
	var parts []string
	for _, s := range r.Scenarios {
		var names []string
		for _, inv := range s.Invariants {
			if !inv.OK {
				names = append(names, inv.Name)
			}
		}
		if len(names) > 0 {
			parts = append(parts, s.Scenario+": "+strings.Join(names, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

func (r *chaosReport) print(w io.Writer) {
	for i, s := range r.Scenarios {
		if i > 0 {
			fmt.Fprintln(w)
		}
		s.print(w)
	}
	if len(r.Scenarios) > 1 {
		fmt.Fprintln(w, "\nsummary")
		for _, s := range r.Scenarios {
			rec := "not recovered"
			if s.Recovered {
				rec = "recovered in " + chaosSeconds(s.Recovery)
			}
			verdict := "ok"
			if !s.OK {
				verdict = "FAIL"
			}
			fmt.Fprintf(w, "  %-11s %4d faults  %-22s %s\n", s.Scenario, chaosTotal(s.Faults), rec, verdict)
		}
	}
}

func (s *chaosScenarioReport) print(w io.Writer) {
	fmt.Fprintf(w, "scenario %s: %s of %s faults at %g/s under %g calls/s\n",
		s.Scenario, chaosSeconds(s.Duration), s.Scenario, s.Rate, s.Load)
	kinds := make([]string, 0, len(s.Faults))
	for k, n := range s.Faults {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	injected := fmt.Sprintf("%d injected", chaosTotal(s.Faults))
	if len(kinds) > 0 {
		injected += " (" + strings.Join(kinds, ", ") + ")"
	}
	fmt.Fprintf(w, "  faults      %s, %d skipped, %d node restarts\n", injected, s.Skipped, s.NodeRestarts)
	pct := 0.0
	if s.Before > 0 {
		pct = 100 * s.After / s.Before
	}
	fmt.Fprintf(w, "  throughput  %.1f routed calls/s before, %.1f after (%.0f%%)\n", s.Before, s.After, pct)
	if s.Recovered {
		fmt.Fprintf(w, "  recovery    %s after the faults stopped\n", chaosSeconds(s.Recovery))
	} else {
		fmt.Fprintln(w, "  recovery    none within the timeout")
	}
	c := s.Charges
	fmt.Fprintf(w, "  charges     %d calls completed, %d charges acknowledged, %d of them in the ledger; %d retried, %d unbilled, %d rejected\n",
		c.CDRs, c.Acknowledged, c.Found, c.Retried, c.Unbilled, c.Rejected)
	fmt.Fprintf(w, "  ledger      %s\n", s.Ledger)
	g := s.Goroutines
	fmt.Fprintf(w, "  goroutines  %d before, %d after: %d parked runtime workers, %d left behind\n", g.Before, g.After, g.Parked, len(g.Left))
	for _, inv := range s.Invariants {
		mark := "ok  "
		if !inv.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-21s %s\n", mark, inv.Name, inv.Detail)
	}
}

func chaosTotal(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func chaosSeconds(s float64) string {
	if d := time.Duration(s * float64(time.Second)); d >= time.Millisecond {
		return d.Round(time.Millisecond).String()
	}
	return "under 1ms"
}

// run runs the plan's scenarios in turn, each on a system of its own.
func (p chaosPlan) run(ctx context.Context) (*chaosReport, error) {
	rep := &chaosReport{OK: true}
	for _, name := range p.scenarios {
		s, err := p.scenario(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", name, err)
		}
		rep.Scenarios = append(rep.Scenarios, s)
		rep.OK = rep.OK && s.OK
	}
	return rep, nil
}

func (p chaosPlan) logf(format string, args ...any) {
	if p.progress != nil {
		fmt.Fprintf(p.progress, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// chaosRun is one scenario in progress: the system under test, which is
// started again (as heart restarts a node) if its node terminates, and
// what is measured across its incarnations.
type chaosRun struct {
	plan     chaosPlan
	ctx      context.Context
	kind     chaos.Kind
	runID    string // makes the txnIDs of this run's calls unique in the ledger
	sys      *telecom.System
	unwatch  func() // ends plan.observe's watch of sys
	lives    int    // incarnations started
	faulting bool

	routedBase uint64 // routed calls of the incarnations before this one
	samples    []chaosSample
	probe      *chaosProbe

	// Counters of the incarnations that ended.
	faults                      map[string]uint64
	skipped                     uint64
	retried, unbilled, rejected uint64
}

type chaosSample struct {
	at     time.Time
	routed uint64
}

// scenario runs one scenario from start to verdict.
func (p chaosPlan) scenario(ctx context.Context, name string) (chaosScenarioReport, error) {
	rep := chaosScenarioReport{Scenario: name, Duration: p.duration.Seconds(), Rate: p.settings.Rate, Load: p.load}
	before := chaosGoroutineSnapshot()
	r := &chaosRun{plan: p, ctx: ctx, kind: chaos.Kind(name), runID: strconv.FormatInt(time.Now().UnixNano(), 36),
		probe: &chaosProbe{}, faults: map[string]uint64{}}
	if err := r.start(); err != nil {
		return rep, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = r.stop()
		}
	}()

	p.logf("scenario %s: warming up under %g calls/s", name, p.load)
	if err := r.wait(p.warmup); err != nil {
		return rep, err
	}
	var err error
	if rep.Before, err = r.throughput(p.measure); err != nil {
		return rep, err
	}
	// Calls the load generator makes up for after a stall are not
	// capacity: the system is held to the load it is offered, no more.
	rep.Before = min(rep.Before, p.load)
	p.logf("scenario %s: %.1f routed calls/s; injecting %s faults at %g/s for %v", name, rep.Before, name, p.settings.Rate, p.duration)
	r.faulting = true
	r.sys.Chaos.SetRunning(true)
	if err := r.wait(p.duration); err != nil {
		return rep, err
	}
	r.faulting = false
	r.sys.Chaos.SetRunning(false)
	stoppedAt := time.Now()
	p.logf("scenario %s: faults stopped; waiting for recovery", name)
	rec, down, err := r.recover(stoppedAt, rep.Before)
	if err != nil {
		return rep, err
	}
	rep.Recovered, rep.Recovery = down == "", rec.Seconds()
	if rep.Recovered {
		p.logf("scenario %s: recovered in %v", name, rec.Round(time.Millisecond))
	}
	if rep.After, err = r.throughput(p.measure); err != nil {
		return rep, err
	}
	r.fold()
	stopped = true
	stopErr := r.stop()
	p.logf("scenario %s: stopped; checking the ledger", name)

	rep.Faults, rep.Skipped, rep.NodeRestarts = r.faults, r.skipped, r.lives-1
	rep.Charges = chaosCharges{CDRs: r.probe.cdrs(), Retried: r.retried, Unbilled: r.unbilled, Rejected: r.rejected}
	acked := r.probe.acknowledged()
	rep.Charges.Acknowledged = len(acked)
	check := func(name string, ok bool, format string, args ...any) {
		rep.Invariants = append(rep.Invariants, chaosInvariant{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}

	verdict, dups, missing, found, lerr := chaosCheckLedger(ctx, p.cfg.Billing, acked)
	rep.Ledger, rep.Charges.Found = verdict, found
	if lerr != nil {
		rep.Ledger = lerr.Error()
		check(invLedger, false, "the ledger could not be verified: %v", lerr)
		check(invAcked, false, "the ledger could not be read: %v", lerr)
		check(invOnce, false, "the ledger could not be verified: %v", lerr)
	} else {
		check(invLedger, strings.HasPrefix(verdict, "ledger OK"), "%s", verdict)
		if len(missing) == 0 {
			check(invAcked, true, "all %d acknowledged charges are in the ledger", len(acked))
		} else {
			check(invAcked, false, "%d of %d acknowledged charges are not in the ledger, e.g. %s",
				len(missing), len(acked), strings.Join(missing[:min(len(missing), 3)], ", "))
		}
		check(invOnce, dups == 0, "%d txnIDs charged more than once", dups)
	}
	if rep.Recovered {
		check(invPermanent, true, "the top supervisor and every permanent child ran again %s after the faults stopped", chaosSeconds(rep.Recovery))
	} else {
		check(invPermanent, !strings.Contains(down, "not running"), "not recovered within %v: %s", p.recovery, down)
	}
	switch pct := 100 * rep.After / rep.Before; {
	case rep.After >= chaosRecovered*rep.Before:
		check(invThroughput, true, "%.1f routed calls/s after, %.0f%% of %.1f before", rep.After, pct, rep.Before)
	default:
		check(invThroughput, false, "%.1f routed calls/s after is %.0f%% of %.1f before (want at least %.0f%%)",
			rep.After, pct, rep.Before, 100*chaosRecovered)
	}
	if stopErr != nil {
		check(invStop, false, "%v", stopErr)
	} else {
		check(invStop, true, "the system stopped within %v", p.drain+chaosStopBound)
	}
	rep.Goroutines = chaosSettleGoroutines(ctx, before)
	if left := rep.Goroutines.Left; len(left) > 0 {
		check(invGoroutines, false, "%d goroutines left behind after the stop: %s", len(left), strings.Join(left[:min(len(left), 5)], "; "))
	} else {
		check(invGoroutines, true, "none left behind beyond %d parked runtime workers", rep.Goroutines.Parked)
	}
	rep.OK = true
	for _, inv := range rep.Invariants {
		rep.OK = rep.OK && inv.OK
	}
	return rep, nil
}

// start starts an incarnation of the system: load off until the CDR probe
// is in place, the monkey set to the scenario's fault and on if the faults
// are running.
func (r *chaosRun) start() error {
	cfg := r.plan.cfg
	cfg.Load.Enabled, cfg.Load.Mode = false, "open"
	set := r.plan.settings
	set.Kinds = []chaos.Kind{r.kind}
	cfg.Chaos.Rate, cfg.Chaos.Targets, cfg.Chaos.Kinds = set.Rate, set.Targets, []string{string(r.kind)}
	sys, err := telecom.Start(cfg)
	if err != nil {
		return err
	}
	r.lives++
	// No call runs yet, so the sink is replaced before any session reads it.
	sys.Sessions.SetSink(r.probe.sink(sys.Billing, cfg.Billing.ChargeCalls, fmt.Sprintf("%s.%d-", r.runID, r.lives)))
	if err := sys.Chaos.SetSettings(set); err != nil {
		sys.Stop(0)
		return err
	}
	sys.Chaos.SetRunning(r.faulting)
	if err := sys.Load.SetRate(sys.Node, r.plan.load); err != nil {
		sys.Stop(0)
		return err
	}
	r.sys = sys
	if r.plan.observe != nil {
		r.unwatch = r.plan.observe(sys)
	}
	return nil
}

// restart replaces an incarnation whose node terminated (the top
// supervisor was killed, or gave up), as heart restarts a node.
func (r *chaosRun) restart() error {
	r.plan.logf("the node terminated (%v); starting it again", r.sys.Apps.Err())
	r.fold()
	r.routedBase += r.sys.Router.Metrics().Routed
	if err := r.stop(); err != nil {
		return err
	}
	return r.start()
}

// fold adds the counters of the current incarnation to the run's.
func (r *chaosRun) fold() {
	st := r.sys.Chaos.Stats()
	for k, n := range st.Injected {
		r.faults[string(k)] += n
	}
	r.skipped += st.Skipped
	b := r.sys.Billing.Stats()
	r.retried += b.Retried
	r.unbilled += b.Unbilled
	r.rejected += b.Rejected
}

// stop stops the incarnation, giving up on a system that does not stop
// (its tree stuck): that goroutine is then left behind, which the
// goroutine invariant reports.
func (r *chaosRun) stop() error {
	if r.unwatch != nil {
		r.unwatch()
		r.unwatch = nil
	}
	sys, drain := r.sys, r.plan.drain
	done := make(chan struct{})
	go func() {
		sys.Stop(drain)
		close(done)
	}()
	t := time.NewTimer(drain + chaosStopBound)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("the system did not stop within %v (still running: %s)", drain+chaosStopBound, chaosDown(sys.Node))
	}
}

func (r *chaosRun) routed() uint64 { return r.routedBase + r.sys.Router.Metrics().Routed }

// step waits for d, then samples the throughput; a node that terminates
// meanwhile is started again.
func (r *chaosRun) step(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-r.sys.Apps.Done():
		return r.restart()
	case <-t.C:
	}
	now := time.Now()
	r.samples = append(r.samples, chaosSample{now, r.routed()})
	// Only the last few seconds are ever looked at.
	if i := sort.Search(len(r.samples), func(i int) bool { return now.Sub(r.samples[i].at) < 5*time.Second }); i > 0 {
		r.samples = append(r.samples[:0], r.samples[i:]...)
	}
	return nil
}

const chaosSampleEvery = 50 * time.Millisecond

func (r *chaosRun) wait(d time.Duration) error {
	for end := time.Now().Add(d); time.Now().Before(end); {
		if err := r.step(min(chaosSampleEvery, time.Until(end))); err != nil {
			return err
		}
	}
	return nil
}

// throughput measures routed calls per second over d.
func (r *chaosRun) throughput(d time.Duration) (float64, error) {
	t0, c0 := time.Now(), r.routed()
	if err := r.wait(d); err != nil {
		return 0, err
	}
	return float64(r.routed()-c0) / time.Since(t0).Seconds(), nil
}

// windowed is the throughput over the last window of samples.
func (r *chaosRun) windowed() (float64, bool) {
	if len(r.samples) < 2 {
		return 0, false
	}
	last := r.samples[len(r.samples)-1]
	for i := len(r.samples) - 2; i >= 0; i-- {
		if s := r.samples[i]; last.at.Sub(s.at) >= r.plan.window {
			return float64(last.routed-s.routed) / last.at.Sub(s.at).Seconds(), true
		}
	}
	return 0, false
}

// recover waits until the throughput is back to chaosRecovered of before
// and the top supervisor and every permanent child run, and says how long
// that took since the faults stopped; or, after the timeout, what is
// still wrong.
func (r *chaosRun) recover(stoppedAt time.Time, before float64) (time.Duration, string, error) {
	deadline := stoppedAt.Add(r.plan.recovery)
	for {
		down := chaosDown(r.sys.Node)
		tp, ok := r.windowed()
		if down == "" && ok && tp >= chaosRecovered*before {
			return time.Since(stoppedAt), "", nil
		}
		if time.Now().After(deadline) {
			var why []string
			if down != "" {
				why = append(why, down+" not running")
			}
			if !ok || tp < chaosRecovered*before {
				why = append(why, fmt.Sprintf("%.1f routed calls/s over the last %v", tp, r.plan.window))
			}
			return time.Since(stoppedAt), strings.Join(why, "; "), nil
		}
		if err := r.step(chaosSampleEvery); err != nil {
			return 0, "", err
		}
	}
}

// chaosDown lists the top supervisor, if it is not running, and every
// permanent child without a live process, as supervisor/child; "" if all run.
func chaosDown(n *runtime.Node) string {
	var down []string
	if _, ok := n.Whereis(telecom.TopSupName); !ok {
		down = append(down, telecom.TopSupName)
	}
	for _, info := range supervisor.All(n) {
		for _, c := range info.Children {
			if c.Restart == supervisor.Permanent && (c.Status != supervisor.StatusRunning || !c.PID.Alive()) {
				down = append(down, info.Name+"/"+c.ID)
			}
		}
	}
	sort.Strings(down)
	return strings.Join(down, ", ")
}

// chaosProbe replaces the system's CDR sink: it bills each completed call
// as the system does and records the txnIDs whose charge billing
// acknowledged.
type chaosProbe struct {
	mu    sync.Mutex
	acked []string
	n     uint64
}

// sink bills a completed call, unless the config says not to, under the
// txnID CDR-<tag><call id>, as Billing.ChargeCDR names it. Call IDs start
// again with each node, so the tag (the run and the incarnation) keeps
// them apart in the ledger.
func (pr *chaosProbe) sink(b *telecom.Billing, charge bool, tag string) func(*runtime.Process, telecom.CDR) {
	return func(p *runtime.Process, cdr telecom.CDR) {
		pr.mu.Lock()
		pr.n++
		pr.mu.Unlock()
		if !charge {
			return
		}
		cdr.CallID = tag + cdr.CallID
		free := b.Rate(cdr) == 0 // nothing to charge, so nothing acknowledged
		if err := b.ChargeCDR(p, cdr, chaosCDRDeadline); err == nil && !free {
			pr.mu.Lock()
			pr.acked = append(pr.acked, "CDR-"+cdr.CallID)
			pr.mu.Unlock()
		}
	}
}

func (pr *chaosProbe) acknowledged() []string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return slices.Clone(pr.acked)
}

func (pr *chaosProbe) cdrs() uint64 {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.n
}

// chaosCheckLedger opens the ledger afresh, verifies it and looks every
// acknowledged txnID up in the database.
func chaosCheckLedger(ctx context.Context, cfg telecom.BillingConfig, acked []string) (verdict string, dups int, missing []string, found int, err error) {
	l, err := telecom.OpenLedger(cfg)
	if err != nil {
		return "", 0, nil, 0, err
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	rep, err := l.Verify(ctx)
	if err != nil {
		return "", 0, nil, 0, err
	}
	for _, v := range rep.Violations {
		if v.Kind == ledger.DuplicateTxn {
			dups++
		}
	}
	for _, txn := range acked {
		_, ok, err := l.FindCharge(ctx, txn)
		if err != nil {
			return "", 0, nil, 0, err
		}
		if ok {
			found++
		} else {
			missing = append(missing, txn)
		}
	}
	return rep.Verdict, dups, missing, found, nil
}

type chaosG struct {
	state, fn string
}

// chaosGoroutineSnapshot lists the live goroutines by ID, with their state
// and the function they are in.
func chaosGoroutineSnapshot() map[uint64]chaosG {
	buf := make([]byte, 1<<20)
	for {
		n := goruntime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[uint64]chaosG{}
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		// goroutine 42 [chan receive, 3 minutes]:
		// observer/internal/runtime.(*Node).worker(0xc000123456, 0x0)
		head, rest, _ := strings.Cut(string(block), "\n")
		fn, _, _ := strings.Cut(rest, "\n")
		idText, state, ok := strings.Cut(strings.TrimPrefix(head, "goroutine "), " [")
		id, err := strconv.ParseUint(idText, 10, 64)
		if !ok || err != nil {
			continue
		}
		state, _, _ = strings.Cut(state, "]")
		if i := strings.LastIndex(fn, "("); i > 0 {
			fn = fn[:i]
		}
		out[id] = chaosG{state: state, fn: fn}
	}
	return out
}

// chaosSettleGoroutines waits, within chaosSettle, until every goroutine
// started since before has ended or is a parked runtime worker, and
// reports those left behind.
func chaosSettleGoroutines(ctx context.Context, before map[uint64]chaosG) chaosGoroutines {
	deadline := time.Now().Add(chaosSettle)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		now := chaosGoroutineSnapshot()
		g := chaosGoroutines{Before: len(before), After: len(now)}
		counts := map[string]int{}
		for id, x := range now {
			if _, old := before[id]; old {
				continue
			}
			if x.fn == chaosParkedWorker && strings.HasPrefix(x.state, "chan receive") {
				g.Parked++
			} else {
				counts[x.fn+" ["+x.state+"]"]++
			}
		}
		for what, n := range counts {
			g.Left = append(g.Left, fmt.Sprintf("%d× %s", n, what))
		}
		sort.Strings(g.Left)
		if len(g.Left) == 0 || time.Now().After(deadline) {
			return g
		}
		select {
		case <-ctx.Done():
			return g
		case <-tick.C:
		}
	}
}
