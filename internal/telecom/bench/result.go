package bench

import (
	"fmt"
	goruntime "runtime"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what one scenario (or one phase of it) measured.
type Result struct {
	Scenario string
	// Phase names a follow-on measurement inside a scenario, such as
	// charge's idempotent retries; empty for the main one.
	Phase string
	// Op names the measured operation; the CSV latency file is <Op>_latencies.csv.
	Op          string
	Mode        string  // "closed" or "open"
	Concurrency int     // worker processes
	Rate        float64 // open loop: the target rate in operations per second
	Ops         uint64  // successful operations
	Errors      uint64  // failed operations, and in open loop those never started
	Elapsed     time.Duration
	Latency     Latency // of the successful operations
	// StartLag is, in open loop, how late workers woke for the operations
	// they were early for: the load generator's own lateness, which the
	// latencies include. Nil in closed loop.
	StartLag *Latency
	Windows  []Window // the time series, one entry per reporting window
	SLA      *Verdict // the service level that applies, if any
	Checks   []Check  // correctness checks, all of which must pass
	// Metrics are figures particular to the scenario, such as the memory
	// of a live call; names are snake_case with their unit as a suffix.
	Metrics map[string]float64
	// Phases are follow-on measurements reported with this one.
	Phases []Result
}

// OpsPerSec is the throughput of successful operations.
func (res Result) OpsPerSec() float64 {
	if res.Elapsed <= 0 {
		return 0
	}
	return float64(res.Ops) / res.Elapsed.Seconds()
}

// Latency summarizes a latency histogram.
type Latency struct {
	Count                    int64
	Min, Mean                time.Duration
	P50, P95, P99, P999, Max time.Duration
}

// Window is one reporting window of the time series.
type Window struct {
	// End is the end of the window, measured from the Runner's creation.
	End time.Duration
	// Length is how much of the window the scenario ran: the first and
	// last windows of a scenario are usually partial.
	Length  time.Duration
	Latency Latency // Count is the number of successful operations
	Errors  uint64
}

// Verdict is a service level objective checked against a measurement.
type Verdict struct {
	Name     string        // e.g. "route P99 < 1 ms"
	Quantile string        // which figure is compared: "p99" or "max"
	Target   time.Duration // the figure must stay below this
	Value    time.Duration
	Pass     bool
}

// String prints the verdict on one line.
func (v Verdict) String() string {
	word := "PASS"
	if !v.Pass {
		word = "FAIL"
	}
	return fmt.Sprintf("%s: %s = %s (target < %s)", word, v.Quantile, FormatDuration(v.Value), FormatDuration(v.Target))
}

func verdict(name, quantile string, target time.Duration, l Latency) *Verdict {
	v := &Verdict{Name: name, Quantile: quantile, Target: target, Value: l.P99}
	if quantile == "max" {
		v.Value = l.Max
	}
	v.Pass = l.Count > 0 && v.Value < target
	return v
}

// The service levels of the telecom system.
var (
	routeSLA   = func(l Latency) *Verdict { return verdict("route P99 < 1 ms", "p99", time.Millisecond, l) }
	billingSLA = func(l Latency) *Verdict { return verdict("billing P99 < 100 ms", "p99", 100*time.Millisecond, l) }
	metricsSLA = func(l Latency) *Verdict {
		return verdict("metrics read P99 < 10 µs", "p99", 10*time.Microsecond, l)
	}
	recoverySLA = func(l Latency) *Verdict {
		return verdict("recovery after a kill < 500 ms", "max", 500*time.Millisecond, l)
	}
)

// Check is one correctness check of a scenario.
type Check struct {
	Name   string
	Pass   bool
	Detail string // the figures compared
}

// String prints the check on one line.
func (c Check) String() string {
	s := c.Name
	if c.Detail != "" {
		s += " (" + c.Detail + ")"
	}
	if !c.Pass {
		s += ": FAILED"
	}
	return s
}

// checkEq is a check that two counts agree.
func checkEq(name string, got, want uint64) Check {
	return Check{Name: name, Pass: got == want, Detail: fmt.Sprintf("%d vs %d", got, want)}
}

// checkTrue is a check of a condition, with what was seen.
func checkTrue(name string, ok bool, format string, args ...any) Check {
	return Check{Name: name, Pass: ok, Detail: fmt.Sprintf(format, args...)}
}

// Machine describes where the benchmark ran.
type Machine struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
}

// ThisMachine describes the running program's machine.
func ThisMachine() Machine {
	return Machine{GOOS: goruntime.GOOS, GOARCH: goruntime.GOARCH, CPUs: goruntime.NumCPU(),
		GOMAXPROCS: goruntime.GOMAXPROCS(0), GoVersion: goruntime.Version()}
}

// Histograms hold nanoseconds from 1 ns to an hour with three significant
// digits: sub-microsecond routes and second-long stalls in one histogram,
// each within 0.1%.
const (
	histMax    = int64(time.Hour)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, histDigits) }

func summarize(h *hdrhistogram.Histogram) Latency {
	n := h.TotalCount()
	if n == 0 {
		return Latency{}
	}
	p := h.ValueAtPercentilesSlice([]float64{50, 95, 99, 99.9})
	return Latency{
		Count: n,
		Min:   time.Duration(h.Min()),
		Mean:  time.Duration(h.Mean()),
		P50:   time.Duration(p[0]),
		P95:   time.Duration(p[1]),
		P99:   time.Duration(p[2]),
		P999:  time.Duration(p[3]),
		Max:   time.Duration(h.Max()),
	}
}

// FormatDuration prints a latency with three significant digits in the
// unit that suits it: 850ns, 12.3µs, 4.56ms, 1.20s.
func FormatDuration(d time.Duration) string {
	v := float64(d)
	unit := "ns"
	switch {
	case d >= time.Second:
		v, unit = v/1e9, "s"
	case d >= time.Millisecond:
		v, unit = v/1e6, "ms"
	case d >= time.Microsecond:
		v, unit = v/1e3, "µs"
	default:
		return fmt.Sprintf("%dns", d)
	}
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f%s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f%s", v, unit)
	}
	return fmt.Sprintf("%.2f%s", v, unit)
}

// FormatRate prints a throughput compactly: 950, 12.3k, 4.56M.
func FormatRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
