// Package bench measures the runtime and the telecom system under load:
// gen_server calls, message sends, spawns, supervisor restarts, the call
// router's two paths, whole calls and durable charges.
//
// Each scenario runs its operation from worker processes for a set
// duration, either in closed loop (each worker starts its next operation as
// soon as the previous one ends: maximum throughput) or in open loop (a
// set rate, with latency measured from each operation's intended start, so
// a stall is charged to every operation it delays rather than hidden: no
// coordinated omission). Latencies go into HDR histograms, per reporting
// window and in total. Every scenario checks its own accounting (what was
// sent was received, what was acknowledged is in the ledger) and reports a
// failed check as an error, since a fast wrong answer is no result.
package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"observer/internal/telecom"
	"observer/internal/telecom/ledger"
)

// DefaultDuration is how long a scenario runs when Options leave it unset.
const DefaultDuration = 2 * time.Second

// DefaultWindow is the reporting window of the time series (the CSV rows).
const DefaultWindow = time.Second

// DefaultHeldCalls is the fewest calls call-lifecycle holds alive to
// measure their memory: the node's own allocations meanwhile (timers,
// histograms, the ledger's writer) come to a few hundred kilobytes, noise
// that only many calls average out.
const DefaultHeldCalls = 10_000

// Options configure a Runner. The zero value runs each scenario for
// DefaultDuration in closed loop with the scenario's own concurrency.
type Options struct {
	// Duration is how long each scenario (and each phase of one) runs.
	Duration time.Duration
	// Concurrency is the number of worker processes; zero takes the
	// scenario's default (see Scenario.Concurrency).
	Concurrency int
	// Warmup, when positive, has the charge scenario charge for that long
	// before each measurement, unmeasured: the ledger's caches, the heap
	// and the workers' stacks then start the measurement grown, as in a
	// system that has been running.
	Warmup time.Duration
	// Rate, when positive, runs in open loop at Rate operations per
	// second shared by all workers; Concurrency then bounds how many
	// operations may be in progress at once.
	Rate float64
	// Window is the length of a reporting window; zero means DefaultWindow.
	Window time.Duration
	// HeldCalls is how many connected calls call-lifecycle holds to
	// measure the memory of a live call; zero means the larger of
	// DefaultHeldCalls and the concurrency.
	HeldCalls int
	// Config is the telecom system's configuration; nil means
	// telecom.DefaultConfig.
	Config *telecom.Config
	// ConfiguredLedger makes the scenarios that charge use the ledger
	// Config names. Otherwise they use a new embedded ledger in a
	// temporary directory, removed afterwards, so a benchmark never
	// charges a real ledger by accident.
	ConfiguredLedger bool
	// CompareLedger, a PostgreSQL URL, makes the charge scenario run a
	// second time on that ledger, right after the first, so that the two
	// backends are measured side by side; its results are phases named
	// "postgres".
	CompareLedger string
	// Observe, if set, is called with each whole telecom system a scenario
	// starts, once it runs; the function it returns is called before the
	// system stops. It lets a scenario run with the UI watching.
	Observe func(sys *telecom.System) (stop func())
	// Progress, if set, is called every ProgressInterval while a scenario runs.
	Progress func(Progress)
	// ProgressInterval defaults to 200ms.
	ProgressInterval time.Duration
}

// Progress is a reading of a running scenario.
type Progress struct {
	Scenario string
	Phase    string // empty for the main measurement
	Elapsed  time.Duration
	Duration time.Duration
	Ops      uint64  // successful operations so far
	Errors   uint64  // failed operations so far
	Rate     float64 // operations per second since the previous reading
}

// Runner runs scenarios with one set of Options. Its creation time is the
// origin of the time series, so consecutive scenarios share one timeline.
type Runner struct {
	opts  Options
	cfg   telecom.Config
	epoch time.Time
	runID string // makes call IDs and txnIDs unique across runs
}

// NewRunner returns a Runner, filling in the defaults of opts.
func NewRunner(opts Options) (*Runner, error) {
	if opts.Duration <= 0 {
		opts.Duration = DefaultDuration
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 200 * time.Millisecond
	}
	if opts.Concurrency < 0 {
		return nil, fmt.Errorf("bench: concurrency must not be negative, got %d", opts.Concurrency)
	}
	if opts.Warmup < 0 {
		return nil, fmt.Errorf("bench: warm-up must not be negative, got %v", opts.Warmup)
	}
	if opts.HeldCalls < 0 {
		return nil, fmt.Errorf("bench: held calls must not be negative, got %d", opts.HeldCalls)
	}
	if opts.Rate < 0 || math.IsInf(opts.Rate, 0) || math.IsNaN(opts.Rate) {
		return nil, fmt.Errorf("bench: rate must be a number of operations per second, got %v", opts.Rate)
	}
	if opts.CompareLedger != "" && !ledger.IsPostgresURL(opts.CompareLedger) {
		return nil, fmt.Errorf("bench: the ledger to compare with must be a PostgreSQL URL (postgres://...), got %q", opts.CompareLedger)
	}
	cfg := telecom.DefaultConfig()
	if opts.Config != nil {
		cfg = *opts.Config
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := time.Now()
	return &Runner{opts: opts, cfg: cfg, epoch: now, runID: strconv.FormatInt(now.UnixNano(), 36)}, nil
}

// Func runs one scenario.
type Func func(ctx context.Context, r *Runner) (Result, error)

// Scenario is a named benchmark.
type Scenario struct {
	Name    string
	Summary string
	// Concurrency is the number of workers when Options leave it unset.
	Concurrency int
	// Hold, if set, is about how long an operation keeps its worker at
	// worst under load. In open loop without a set concurrency, the
	// scenario then gets enough workers for the rate, rate × Hold, if
	// that is more than Concurrency: too few, and operations that are
	// due wait for a worker (which the latency counts), so the run
	// measures the load generator instead of the system.
	Hold time.Duration
	// Run measures the scenario.
	Run Func
}

// scenarios are in the order "all" runs them: the runtime's primitives
// first, then the system built on them. They are set in init because the
// scenario functions look their defaults up here.
var scenarios []Scenario

func init() {
	scenarios = []Scenario{
		{Name: "genserver-call", Concurrency: 1, Run: genserverCall,
			Summary: "gen_server:call round trips from client processes to an echo server"},
		{Name: "send", Concurrency: 1, Run: send,
			Summary: "messages from producer processes to one consumer; latency is send to handled"},
		{Name: "spawn", Concurrency: 1, Run: spawn,
			Summary: "spawn a process and receive its first message; every process exits"},
		{Name: "restart", Concurrency: 1, Run: restart,
			Summary: "kill a permanent gen_server worker; latency is the kill to its replacement running Init"},
		{Name: "route-fast", Concurrency: goruntime.GOMAXPROCS(0), Run: routeFast,
			Summary: "route calls on the fast path, reading the router's table without queueing"},
		{Name: "route-server", Concurrency: 2, Run: routeServer,
			Summary: "route calls through call_router_server (the slow path, a gen_server call each)"},
		{Name: "metrics-read", Concurrency: 1, Run: metricsRead,
			Summary: "read the router's metrics while a process keeps routing"},
		{Name: "call-lifecycle", Concurrency: 1000, Run: func(ctx context.Context, r *Runner) (Result, error) { return callLifecycle(ctx, r, false) },
			Summary: "whole calls: session process, routing, state machine, call record; then calls held alive for their memory"},
		{Name: "call-lifecycle-billed", Concurrency: 1000, Run: func(ctx context.Context, r *Runner) (Result, error) { return callLifecycle(ctx, r, true) },
			Summary: "whole calls as call-lifecycle, each record also charged durably before its session ends"},
		{Name: "charge", Concurrency: 64, Hold: 40 * time.Millisecond, Run: charge,
			Summary: "durable charges through billing_engine_server, then the same charges retried (idempotent path)"},
		{Name: "upgrade", Concurrency: 4, Run: upgrade,
			Summary: "hot-upgrade the router and billing 1<->2 while routing 100,000 calls/s and charging: no call dropped, no charge lost or doubled"},
	}
}

// Scenarios returns every scenario, in the order "all" runs them.
func Scenarios() []Scenario { return append([]Scenario(nil), scenarios...) }

// Lookup finds a scenario by name.
func Lookup(name string) (Scenario, bool) {
	for _, s := range scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Run runs the named scenario.
func (r *Runner) Run(ctx context.Context, name string) (Result, error) {
	s, ok := Lookup(name)
	if !ok {
		return Result{}, fmt.Errorf("bench: unknown scenario %q", name)
	}
	res, err := s.Run(ctx, r)
	res.Scenario = s.Name
	if err == nil {
		err = res.checkError()
	}
	return res, err
}

// concurrency is the number of workers for scenario name.
func (r *Runner) concurrency(name string) int {
	if r.opts.Concurrency > 0 {
		return r.opts.Concurrency
	}
	s, _ := Lookup(name)
	n := s.Concurrency
	if r.open() && s.Hold > 0 {
		n = max(n, int(math.Ceil(r.opts.Rate*s.Hold.Seconds())))
	}
	return max(n, 1)
}

// open reports whether the runner drives at a set rate.
func (r *Runner) open() bool { return r.opts.Rate > 0 }

// billing returns the billing config the charging scenarios use, and a
// cleanup that removes the temporary ledger if one was made.
func (r *Runner) billing() (telecom.BillingConfig, func(), error) {
	cfg := r.cfg.Billing
	if r.opts.ConfiguredLedger {
		return cfg, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "observer-bench-")
	if err != nil {
		return cfg, nil, fmt.Errorf("bench: temporary ledger: %w", err)
	}
	cfg.DataDir, cfg.Ledger = dir, ""
	return cfg, func() { _ = os.RemoveAll(dir) }, nil
}

// CheckError reports the correctness checks a scenario failed.
type CheckError struct {
	Scenario string
	Failed   []Check
}

// Error lists the failed checks.
func (e *CheckError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, c := range e.Failed {
		parts[i] = c.String()
	}
	return fmt.Sprintf("%s: correctness check failed: %s", e.Scenario, strings.Join(parts, "; "))
}

func (res Result) checkError() error {
	var failed []Check
	collect := func(x Result) {
		for _, c := range x.Checks {
			if !c.Pass {
				failed = append(failed, c)
			}
		}
	}
	collect(res)
	for _, p := range res.Phases {
		collect(p)
	}
	if len(failed) == 0 {
		return nil
	}
	return &CheckError{Scenario: res.Scenario, Failed: failed}
}
