package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runBenchCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(&env{stdout: &out, stderr: &errb}, append([]string{"bench"}, args...))
	return code, out.String(), errb.String()
}

func TestBenchJSON(t *testing.T) {
	code, out, errs := runBenchCmd(t, "--scenario", "route-fast", "--duration", "100ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	var got []struct {
		Scenario  string  `json:"scenario"`
		Ops       uint64  `json:"ops"`
		Seconds   float64 `json:"seconds"`
		OpsPerSec float64 `json:"ops_per_sec"`
		LatencyUS struct {
			P50, P95, P99, P999, Max float64
		} `json:"latency_us"`
		SLA *struct {
			Name   string  `json:"name"`
			Target float64 `json:"target"`
			Pass   bool    `json:"pass"`
			Value  float64 `json:"value"`
		} `json:"sla"`
		Checks []struct {
			Name string `json:"name"`
			Pass bool   `json:"pass"`
		} `json:"checks"`
		Machine struct {
			GOOS      string `json:"goos"`
			GOARCH    string `json:"goarch"`
			CPUs      int    `json:"cpus"`
			GoVersion string `json:"go_version"`
		} `json:"machine"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got) != 1 {
		t.Fatalf("%d results, want 1", len(got))
	}
	r := got[0]
	if r.Scenario != "route-fast" || r.Ops == 0 || r.Seconds <= 0 || r.OpsPerSec <= 0 {
		t.Errorf("scenario %q ops %d seconds %v ops/s %v", r.Scenario, r.Ops, r.Seconds, r.OpsPerSec)
	}
	if l := r.LatencyUS; l.P50 <= 0 || l.P50 > l.P95 || l.P95 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
	if r.SLA == nil || r.SLA.Target != 1000 || r.SLA.Value != r.LatencyUS.P99 {
		t.Errorf("sla %+v", r.SLA)
	}
	for _, c := range r.Checks {
		if !c.Pass {
			t.Errorf("check failed: %s", c.Name)
		}
	}
	if r.Machine.GOOS == "" || r.Machine.CPUs == 0 || r.Machine.GoVersion == "" {
		t.Errorf("machine %+v", r.Machine)
	}
}

func TestBenchTextAndCSV(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runBenchCmd(t, "--scenario", "genserver-call,restart", "--duration", "50ms",
		"--window", "20ms", "--csv", dir, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	for _, want := range []string{"genserver-call", "restart", "recovery after a kill < 500 ms", "checks passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	for _, f := range []string{"summary.csv", "genserver_call_latencies.csv", "restart_latencies.csv"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Count(string(b), "\n"); lines < 2 {
			t.Errorf("%s has %d lines", f, lines)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"an unknown scenario", []string{"--scenario", "teleport"}},
		{"a positional argument", []string{"route-fast"}},
		{"a negative rate", []string{"--rate", "-1"}},
		{"an infinite rate", []string{"--rate", "+Inf"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, _, _ := runBenchCmd(t, c.args...); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
		})
	}
}
