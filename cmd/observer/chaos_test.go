package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"observer/internal/telecom"
	"observer/internal/telecom/chaos"
)

// shortPlan is a plan whose phases last a fraction of a second, with short
// calls so that the stop drains quickly and small faults, on the ledger in
// dir.
func shortPlan(t *testing.T, scenario, dir string) chaosPlan {
	cfg := telecom.DefaultConfig()
	cfg.Billing.DataDir = dir
	cfg.Load.Duration = telecom.Duration{Duration: 20 * time.Millisecond}
	cfg.Load.RingTime = telecom.Duration{Duration: 5 * time.Millisecond}
	set := chaos.Settings{Rate: 20, FloodMessages: 1000, MemoryBytes: 16 << 20, MemoryHold: 50 * time.Millisecond,
		CPUSpin: 50 * time.Millisecond, PartitionFor: 100 * time.Millisecond}
	return chaosPlan{
		cfg: cfg, scenarios: []string{scenario}, duration: 300 * time.Millisecond, settings: set, load: 200,
		warmup: 300 * time.Millisecond, measure: 1500 * time.Millisecond, window: 300 * time.Millisecond,
		recovery: 10 * time.Second, drain: time.Second, progress: testProgress{t},
	}
}

// testProgress logs the phases with the test's output.
type testProgress struct{ t *testing.T }

func (p testProgress) Write(b []byte) (int, error) {
	p.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func TestChaosScenarios(t *testing.T) {
	dir := t.TempDir() // one ledger for all: each run's txnIDs are its own
	for _, name := range chaosScenarios {
		t.Run(name, func(t *testing.T) {
			rep, err := shortPlan(t, name, dir).run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.print(&out)
			s := rep.Scenarios[0]
			if !rep.OK || s.Faults[name] == 0 || len(s.Invariants) != 7 {
				t.Fatalf("report:\n%s", out.String())
			}
			if name == "partition" && s.Charges.Retried == 0 {
				t.Fatalf("no charge met the partition:\n%s", out.String())
			}
		})
	}
}

func TestChaosCommand(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "short.toml")
	if err := os.WriteFile(cfg, []byte("[load]\nduration = \"20ms\"\nring_time = \"5ms\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "chaos", "--scenario", "cpu", "--duration", "200ms", "--rate", "10", "--load", "100",
		"--json", "--config", cfg, "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var rep chaosReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if s := rep.Scenarios; !rep.OK || len(s) != 1 || s[0].Scenario != "cpu" || s[0].Rate != 10 || s[0].Load != 100 || !s[0].Recovered {
		t.Fatalf("report %+v", rep)
	}
	if !strings.Contains(errOut, "scenario cpu: faults stopped; waiting for recovery") {
		t.Fatalf("progress %q", errOut)
	}
	// The ledger was kept where it was asked for.
	if _, err := os.Stat(filepath.Join(dir, "ledger.db")); err != nil {
		t.Fatal(err)
	}
}

func TestChaosUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"chaos"}, "--scenario is required"},
		{[]string{"chaos", "--scenario", "meteor"}, `unknown scenario "meteor"`},
		{[]string{"chaos", "--scenario", "kill", "--duration", "0s"}, "must be positive"},
		{[]string{"chaos", "--scenario", "kill", "--load", "0"}, "need load"},
		{[]string{"chaos", "--scenario", "kill", "--rate=-1"}, "rate must be within"},
		{[]string{"chaos", "--scenario", "kill", "extra"}, "unexpected argument"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestChaosReportNamesTheViolatedInvariant(t *testing.T) {
	rep := chaosReport{Scenarios: []chaosScenarioReport{{
		Scenario: "kill", Before: 50, After: 20,
		Invariants: []chaosInvariant{
			{Name: invLedger, OK: true, Detail: "ledger OK"},
			{Name: invThroughput, OK: false, Detail: "20.0 routed calls/s after is 40% of 50.0 before (want at least 90%)"},
		},
	}}}
	if got := rep.violations(); got != "kill: throughput" {
		t.Fatalf("violations %q", got)
	}
	var out bytes.Buffer
	rep.print(&out)
	if !strings.Contains(out.String(), "FAIL throughput            20.0 routed calls/s after is 40%") {
		t.Fatalf("report:\n%s", out.String())
	}
}
