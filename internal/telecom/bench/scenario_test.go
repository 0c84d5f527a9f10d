package bench

import (
	"context"
	"testing"
	"time"
)

// TestScenarios runs every scenario briefly, in closed loop and in open
// loop, and requires work done and every correctness check passed. The
// open loop leaves out the scenarios that start the whole system: they
// drive their load the same way, and a system start costs a second under
// the race detector.
func TestScenarios(t *testing.T) {
	modes := []struct {
		name string
		opts Options
		skip map[string]bool
	}{
		{"closed loop", Options{Duration: 50 * time.Millisecond, Window: 20 * time.Millisecond}, nil},
		{"open loop", Options{Duration: 50 * time.Millisecond, Window: 20 * time.Millisecond, Rate: 2000},
			map[string]bool{"call-lifecycle": true, "call-lifecycle-billed": true, "upgrade": true}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			for _, s := range Scenarios() {
				if m.skip[s.Name] {
					continue
				}
				t.Run(s.Name, func(t *testing.T) {
					opts := m.opts
					if s.Concurrency > 64 {
						opts.Concurrency = 16 // a short run need not place a thousand calls at once
					}
					opts.HeldCalls = 200
					r, err := NewRunner(opts)
					if err != nil {
						t.Fatal(err)
					}
					res, err := r.Run(context.Background(), s.Name)
					if err != nil {
						t.Fatal(err)
					}
					checkResult(t, res, m.opts.Rate > 0)
					for _, p := range res.Phases {
						checkResult(t, p, m.opts.Rate > 0)
					}
				})
			}
		})
	}
}

func checkResult(t *testing.T, res Result, open bool) {
	t.Helper()
	if res.Ops == 0 {
		t.Errorf("%s %s: no operations", res.Scenario, res.Phase)
	}
	if len(res.Checks) < 2 {
		t.Errorf("%s %s: only %d checks", res.Scenario, res.Phase, len(res.Checks))
	}
	for _, c := range res.Checks {
		if !c.Pass {
			t.Errorf("%s %s: %s", res.Scenario, res.Phase, c)
		}
	}
	if res.Latency.Count != int64(res.Ops) || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
		t.Errorf("%s %s: latency %+v for %d ops", res.Scenario, res.Phase, res.Latency, res.Ops)
	}
	if len(res.Windows) == 0 {
		t.Errorf("%s %s: no windows", res.Scenario, res.Phase)
	}
	want := "closed"
	if open {
		want = "open"
	}
	if res.Phase == "" && res.Mode != want {
		t.Errorf("%s: mode %q, want %q", res.Scenario, res.Mode, want)
	}
	if res.Phase == "" && open != (res.StartLag != nil) {
		t.Errorf("%s: start lag %v in %s loop", res.Scenario, res.StartLag, want)
	}
}

func TestUnknownScenario(t *testing.T) {
	r, _ := NewRunner(Options{})
	if _, err := r.Run(context.Background(), "teleport"); err == nil {
		t.Error("an unknown scenario ran")
	}
}

func TestCompareLedgerMustBePostgres(t *testing.T) {
	for _, u := range []string{"/tmp/ledger", "sqlite://x", "mysql://db"} {
		if _, err := NewRunner(Options{CompareLedger: u}); err == nil {
			t.Errorf("NewRunner took %q as the ledger to compare with", u)
		}
	}
	if _, err := NewRunner(Options{CompareLedger: "postgres://db.example.com/observer"}); err != nil {
		t.Errorf("NewRunner refused a PostgreSQL URL: %v", err)
	}
}

// TestChargeWarmup charges unmeasured before the measurement: the result
// counts only the measured charges, and its checks, which compare the
// ledger before and after the measurement with what was acknowledged,
// still pass.
func TestChargeWarmup(t *testing.T) {
	const rate, d = 2000, 50 * time.Millisecond
	r, err := NewRunner(Options{Duration: d, Warmup: d, Rate: rate, Concurrency: 16, Window: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background(), "charge")
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, true)
	if due := uint64(rate * d.Seconds()); res.Ops+res.Errors > due {
		t.Errorf("%d charges measured; the measurement had %d due", res.Ops+res.Errors, due)
	}
	if got := res.Metrics["warmup_s"]; got != d.Seconds() {
		t.Errorf("warmup_s = %v; want %v", got, d.Seconds())
	}
	if _, err := NewRunner(Options{Warmup: -time.Second}); err == nil {
		t.Error("NewRunner took a negative warm-up")
	}
}

// TestOpenLoopChargeWorkers gives charge enough workers for its rate when
// none are set, and the set number otherwise.
func TestOpenLoopChargeWorkers(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want int
	}{
		{Options{}, 64},
		{Options{Rate: 1000}, 64},
		{Options{Rate: 50000}, 2000},
		{Options{Rate: 50000, Concurrency: 100}, 100},
	} {
		r, err := NewRunner(c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.concurrency("charge"); got != c.want {
			t.Errorf("%+v: %d charge workers; want %d", c.opts, got, c.want)
		}
	}
	r, _ := NewRunner(Options{Rate: 50000})
	if got := r.concurrency("genserver-call"); got != 1 {
		t.Errorf("genserver-call at 50,000/s: %d workers; want its own 1", got)
	}
}
