package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sample is a result with every part filled in: a service level, checks,
// figures, a phase and two windows.
func sample() Result {
	lat := Latency{Count: 3000, Min: 200 * time.Nanosecond, Mean: 900 * time.Nanosecond, P50: 800 * time.Nanosecond,
		P95: 2 * time.Microsecond, P99: 5500 * time.Nanosecond, P999: 40 * time.Microsecond, Max: 3 * time.Millisecond}
	phase := Result{Scenario: "charge", Phase: "idempotent-retry", Op: "charge_retry", Mode: "closed", Concurrency: 4,
		Ops: 10, Elapsed: time.Second, Latency: Latency{Count: 10, P50: time.Millisecond, P99: 2 * time.Millisecond, Max: 2 * time.Millisecond},
		Windows: []Window{{End: 3 * time.Second, Length: time.Second, Latency: Latency{Count: 10, P50: time.Millisecond}}},
		Checks:  []Check{{Name: "retries that charged again", Pass: true, Detail: "0 vs 0"}}}
	return Result{
		Scenario: "charge", Op: "charge", Mode: "closed", Concurrency: 4, Ops: 3000, Errors: 2, Elapsed: 2 * time.Second,
		Latency: lat,
		Windows: []Window{
			{End: time.Second, Length: 600 * time.Millisecond, Latency: Latency{Count: 1000, Min: time.Microsecond, P50: 2 * time.Microsecond}, Errors: 2},
			{End: 2 * time.Second, Length: time.Second, Latency: Latency{Count: 2000, Max: 1500 * time.Nanosecond}},
		},
		SLA:     &Verdict{Name: "billing P99 < 100 ms", Quantile: "p99", Target: 100 * time.Millisecond, Value: 5500 * time.Nanosecond, Pass: true},
		Checks:  []Check{{Name: "charges in the ledger == acknowledged charges", Pass: true, Detail: "3000 vs 3000"}},
		Metrics: map[string]float64{"mean_batch_size": 12.5},
		Phases:  []Result{phase},
	}
}

func TestWriteJSONHasTheDocumentedFields(t *testing.T) {
	var buf bytes.Buffer
	m := Machine{GOOS: "linux", GOARCH: "amd64", CPUs: 2, GOMAXPROCS: 2, GoVersion: "go1.26"}
	if err := WriteJSON(&buf, []Result{sample()}, m); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if len(got) != 1 {
		t.Fatalf("%d objects, want 1", len(got))
	}
	o := got[0]
	for _, k := range []string{"scenario", "op", "mode", "concurrency", "ops", "errors", "seconds", "ops_per_sec",
		"latency_us", "sla", "checks", "metrics", "phases", "machine"} {
		if _, ok := o[k]; !ok {
			t.Errorf("no %q in %v", k, o)
		}
	}
	if o["scenario"] != "charge" || o["ops"] != 3000.0 || o["seconds"] != 2.0 || o["ops_per_sec"] != 1500.0 {
		t.Errorf("scenario, ops, seconds, ops_per_sec = %v, %v, %v, %v", o["scenario"], o["ops"], o["seconds"], o["ops_per_sec"])
	}
	lat := o["latency_us"].(map[string]any)
	want := map[string]float64{"p50": 0.8, "p95": 2, "p99": 5.5, "p999": 40, "max": 3000}
	for k, v := range want {
		if lat[k] != v {
			t.Errorf("latency_us.%s = %v, want %v", k, lat[k], v)
		}
	}
	sla := o["sla"].(map[string]any)
	if sla["name"] != "billing P99 < 100 ms" || sla["target"] != 100000.0 || sla["value"] != 5.5 || sla["pass"] != true {
		t.Errorf("sla = %v", sla)
	}
	if mach := o["machine"].(map[string]any); mach["goos"] != "linux" || mach["cpus"] != 2.0 || mach["go_version"] != "go1.26" {
		t.Errorf("machine = %v", mach)
	}
	phases := o["phases"].([]any)
	if p := phases[0].(map[string]any); p["phase"] != "idempotent-retry" || p["op"] != "charge_retry" {
		t.Errorf("phase = %v", p)
	}
	if _, ok := phases[0].(map[string]any)["sla"]; ok {
		t.Error("a phase without an SLA has an sla field")
	}
	if _, ok := o["start_lag_us"]; ok {
		t.Error("a closed-loop result has start_lag_us")
	}
}

func TestWriteJSONOfOpenLoopHasRateAndStartLag(t *testing.T) {
	res := sample()
	res.Mode, res.Rate = "open", 5000
	res.StartLag = &Latency{Count: 10, P50: 30 * time.Microsecond, P99: 700 * time.Microsecond, Max: time.Millisecond}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, []Result{res}, ThisMachine()); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Mode       string             `json:"mode"`
		Rate       float64            `json:"rate"`
		StartLagUS map[string]float64 `json:"start_lag_us"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if g := got[0]; g.Mode != "open" || g.Rate != 5000 || g.StartLagUS["p99"] != 700 || g.StartLagUS["max"] != 1000 {
		t.Errorf("got %+v", g)
	}
	buf.Reset()
	if err := WriteText(&buf, []Result{res}, ThisMachine()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"open 5.00k/s", "start lag of the load generator    p50 30.0µs, p99 700µs, max 1.00ms"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no %q in\n%s", want, buf.String())
		}
	}
}

func TestWriteJSONOfNothingIsAnEmptyArray(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, nil, ThisMachine()); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(buf.String()); got != "[]" {
		t.Errorf("got %q", got)
	}
}

func TestWriteCSVIsBashoBenchLayout(t *testing.T) {
	dir := t.TempDir()
	if err := WriteCSV(dir, []Result{sample()}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	summary := read("summary.csv")
	wantSummary := []string{
		"elapsed, window, total, successful, failed",
		"1.000, 0.600, 1002, 1000, 2",
		"2.000, 1.000, 2000, 2000, 0",
		"3.000, 1.000, 10, 10, 0",
	}
	if strings.Join(summary, "\n") != strings.Join(wantSummary, "\n") {
		t.Errorf("summary.csv:\n%s\nwant:\n%s", strings.Join(summary, "\n"), strings.Join(wantSummary, "\n"))
	}
	lat := read("charge_latencies.csv")
	if lat[0] != "elapsed, window, n, min, mean, median, 95th, 99th, 99_9th, max, errors" {
		t.Errorf("header %q", lat[0])
	}
	if want := "1.000, 0.600, 1000, 1.000, 0.000, 2.000, 0.000, 0.000, 0.000, 0.000, 2"; lat[1] != want {
		t.Errorf("row %q, want %q", lat[1], want)
	}
	if want := "2.000, 1.000, 2000, 0.000, 0.000, 0.000, 0.000, 0.000, 0.000, 1.500, 0"; lat[2] != want {
		t.Errorf("row %q, want %q", lat[2], want)
	}
	if retry := read("charge_retry_latencies.csv"); len(retry) != 2 {
		t.Errorf("charge_retry_latencies.csv has %d lines, want a header and one row", len(retry))
	}
}

func TestWriteTextShowsTableSLAsAndFailures(t *testing.T) {
	res := sample()
	res.Checks = append(res.Checks, Check{Name: "received == sent", Pass: false, Detail: "9 vs 10"})
	var buf bytes.Buffer
	if err := WriteText(&buf, []Result{res}, ThisMachine()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"scenario", "charge (idempotent-retry)", "800ns", "5.50µs", "3.00ms",
		"billing P99 < 100 ms", "PASS: p99 = 5.50µs (target < 100ms)",
		"mean_batch_size", "12.50",
		"FAILED correctness checks (1 of 3)", "received == sent (9 vs 10): FAILED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{850 * time.Nanosecond, "850ns"},
		{1234 * time.Nanosecond, "1.23µs"},
		{12345 * time.Nanosecond, "12.3µs"},
		{123456 * time.Nanosecond, "123µs"},
		{4560 * time.Microsecond, "4.56ms"},
		{1200 * time.Millisecond, "1.20s"},
	} {
		if got := FormatDuration(c.d); got != c.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestVerdictComparesTheNamedFigure(t *testing.T) {
	l := Latency{Count: 5, P99: 400 * time.Millisecond, Max: 600 * time.Millisecond}
	if v := recoverySLA(l); v.Pass || v.Value != l.Max {
		t.Errorf("recovery judged on %v, pass %v; want the max, failing", v.Value, v.Pass)
	}
	if v := billingSLA(Latency{Count: 5, P99: 99 * time.Millisecond}); !v.Pass {
		t.Error("billing at 99ms P99 failed its 100ms target")
	}
	if v := routeSLA(Latency{}); v.Pass {
		t.Error("a service level passed with nothing measured")
	}
}

// TestSeriesSplitsWindows records operations at known times and checks
// that they land in the windows of the Runner's timeline, latencies kept
// only for successes.
func TestSeriesSplitsWindows(t *testing.T) {
	r, err := NewRunner(Options{Window: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := r.newSeries()
	rc := s.recorder()
	at := func(ms int) time.Time { return r.epoch.Add(time.Duration(ms) * time.Millisecond) }
	rc.lag(3 * time.Microsecond) // as an open-loop worker does before its first operation
	rc.record(at(50), 10*time.Microsecond, nil)
	rc.record(at(60), 30*time.Microsecond, nil)
	rc.record(at(150), 20*time.Microsecond, nil)
	rc.record(at(160), time.Second, errors.New("boom"))
	rc.flush()
	res := s.result(at(40), at(170))
	if res.Ops != 3 || res.Errors != 1 {
		t.Fatalf("ops %d errors %d, want 3 and 1", res.Ops, res.Errors)
	}
	if len(res.Windows) != 2 {
		t.Fatalf("%d windows, want 2: %+v", len(res.Windows), res.Windows)
	}
	w0, w1 := res.Windows[0], res.Windows[1]
	if w0.End != 100*time.Millisecond || w0.Length != 60*time.Millisecond || w0.Latency.Count != 2 || w0.Errors != 0 {
		t.Errorf("first window %+v", w0)
	}
	if w1.End != 170*time.Millisecond || w1.Length != 70*time.Millisecond || w1.Latency.Count != 1 || w1.Errors != 1 {
		t.Errorf("second window %+v", w1)
	}
	if res.Latency.Max > 31*time.Microsecond {
		t.Errorf("max %v: a failed operation's latency was kept", res.Latency.Max)
	}
	if ops, errs := s.counts(); ops != 3 || errs != 1 {
		t.Errorf("progress counts %d, %d", ops, errs)
	}
	if res.StartLag == nil || res.StartLag.Count != 1 {
		t.Errorf("start lag %+v, want one sample", res.StartLag)
	}
}
