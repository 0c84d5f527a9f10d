package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The JSON form of a Result; docs/reference/bench.md documents it.
type (
	jsonResult struct {
		Scenario    string             `json:"scenario"`
		Phase       string             `json:"phase,omitempty"`
		Op          string             `json:"op"`
		Mode        string             `json:"mode"`
		Concurrency int                `json:"concurrency"`
		Rate        float64            `json:"rate,omitempty"`
		Ops         uint64             `json:"ops"`
		Errors      uint64             `json:"errors"`
		Seconds     float64            `json:"seconds"`
		OpsPerSec   float64            `json:"ops_per_sec"`
		LatencyUS   jsonLatency        `json:"latency_us"`
		StartLagUS  *jsonLatency       `json:"start_lag_us,omitempty"`
		SLA         *jsonSLA           `json:"sla,omitempty"`
		Checks      []jsonCheck        `json:"checks"`
		Metrics     map[string]float64 `json:"metrics,omitempty"`
		Phases      []jsonResult       `json:"phases,omitempty"`
		Machine     *Machine           `json:"machine,omitempty"`
	}
	jsonLatency struct {
		Min  float64 `json:"min"`
		Mean float64 `json:"mean"`
		P50  float64 `json:"p50"`
		P95  float64 `json:"p95"`
		P99  float64 `json:"p99"`
		P999 float64 `json:"p999"`
		Max  float64 `json:"max"`
	}
	jsonSLA struct {
		Name     string  `json:"name"`
		Quantile string  `json:"quantile"`
		Target   float64 `json:"target"`
		Value    float64 `json:"value"`
		Unit     string  `json:"unit"`
		Pass     bool    `json:"pass"`
	}
	jsonCheck struct {
		Name   string `json:"name"`
		Pass   bool   `json:"pass"`
		Detail string `json:"detail,omitempty"`
	}
)

// us converts to microseconds, keeping nanosecond resolution.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func latencyJSON(l Latency) jsonLatency {
	return jsonLatency{Min: us(l.Min), Mean: us(l.Mean), P50: us(l.P50), P95: us(l.P95), P99: us(l.P99),
		P999: us(l.P999), Max: us(l.Max)}
}

func toJSON(res Result) jsonResult {
	j := jsonResult{
		Scenario: res.Scenario, Phase: res.Phase, Op: res.Op, Mode: res.Mode, Concurrency: res.Concurrency,
		Rate: res.Rate, Ops: res.Ops, Errors: res.Errors, Seconds: res.Elapsed.Seconds(), OpsPerSec: res.OpsPerSec(),
		LatencyUS: latencyJSON(res.Latency),
		Checks:    make([]jsonCheck, len(res.Checks)),
		Metrics:   res.Metrics,
	}
	if l := res.StartLag; l != nil {
		lag := latencyJSON(*l)
		j.StartLagUS = &lag
	}
	if v := res.SLA; v != nil {
		j.SLA = &jsonSLA{Name: v.Name, Quantile: v.Quantile, Target: us(v.Target), Value: us(v.Value), Unit: "us", Pass: v.Pass}
	}
	for i, c := range res.Checks {
		j.Checks[i] = jsonCheck(c)
	}
	for _, p := range res.Phases {
		j.Phases = append(j.Phases, toJSON(p))
	}
	return j
}

// WriteJSON writes results as a JSON array, one object per scenario, each
// carrying the machine it ran on.
func WriteJSON(w io.Writer, results []Result, m Machine) error {
	out := make([]jsonResult, len(results))
	for i, res := range results {
		out[i] = toJSON(res)
		out[i].Machine = &m
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // SLA names hold "<"
	return enc.Encode(out)
}

// flatten lists each result followed by its phases.
func flatten(results []Result) []Result {
	var all []Result
	for _, res := range results {
		all = append(all, res)
		all = append(all, res.Phases...)
	}
	return all
}

// label names a result in the text report.
func label(res Result) string {
	if res.Phase == "" {
		return res.Scenario
	}
	return res.Scenario + " (" + res.Phase + ")"
}

// WriteText writes results as a table, then the service levels, the
// scenario-specific figures and the outcome of the correctness checks.
func WriteText(w io.Writer, results []Result, m Machine) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s/%s, %d CPUs (GOMAXPROCS %d)\n\n", m.GoVersion, m.GOOS, m.GOARCH, m.CPUs, m.GOMAXPROCS)
	all := flatten(results)
	nw := 34 // the names' column, wider for a longer name
	for _, res := range all {
		nw = max(nw, len(label(res)))
	}
	const row = "%-*s %-12s %7s %10s %8s %8s %8s %8s %8s %8s %7s\n"
	fmt.Fprintf(&b, row, nw, "scenario", "mode", "workers", "ops", "ops/s", "p50", "p95", "p99", "p99.9", "max", "errors")
	var slas, extras, failed []string
	checks := 0
	for _, res := range all {
		name := label(res)
		mode := res.Mode
		if res.Rate > 0 {
			mode = fmt.Sprintf("open %s/s", FormatRate(res.Rate))
		}
		l := res.Latency
		fmt.Fprintf(&b, row, nw, name, mode, strconv.Itoa(res.Concurrency), strconv.FormatUint(res.Ops, 10),
			FormatRate(res.OpsPerSec()), FormatDuration(l.P50), FormatDuration(l.P95), FormatDuration(l.P99),
			FormatDuration(l.P999), FormatDuration(l.Max), strconv.FormatUint(res.Errors, 10))
		if v := res.SLA; v != nil {
			slas = append(slas, fmt.Sprintf("  %-34s %-*s %s", v.Name, nw, name, v))
		}
		keys := make([]string, 0, len(res.Metrics))
		for k := range res.Metrics {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			extras = append(extras, fmt.Sprintf("  %-*s %-34s %s", nw, name, k, formatMetric(res.Metrics[k])))
		}
		if l := res.StartLag; l != nil {
			extras = append(extras, fmt.Sprintf("  %-*s %-34s p50 %s, p99 %s, max %s", nw, name, "start lag of the load generator",
				FormatDuration(l.P50), FormatDuration(l.P99), FormatDuration(l.Max)))
		}
		checks += len(res.Checks)
		for _, c := range res.Checks {
			if !c.Pass {
				failed = append(failed, fmt.Sprintf("  %-*s %s", nw, name, c))
			}
		}
	}
	section := func(title string, lines []string) {
		if len(lines) > 0 {
			fmt.Fprintf(&b, "\n%s\n%s\n", title, strings.Join(lines, "\n"))
		}
	}
	section("Service levels", slas)
	section("Figures", extras)
	if len(failed) > 0 {
		section(fmt.Sprintf("FAILED correctness checks (%d of %d)", len(failed), checks), failed)
	} else {
		fmt.Fprintf(&b, "\nCorrectness: all %d checks passed\n", checks)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatMetric prints a figure with the precision it deserves: counts
// and large figures whole, ratios and averages with two decimals.
func formatMetric(v float64) string {
	if v >= 100 || v <= -100 || v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// WriteCSV writes results in basho_bench's layout into dir: summary.csv
// (elapsed, window, total, successful, failed) over every window of every
// scenario, and <op>_latencies.csv per operation (elapsed, window, n, min,
// mean, median, 95th, 99th, 99_9th, max, errors), latencies in
// microseconds. Scenarios run one after the other, so their windows form
// one timeline and basho_bench's plotting scripts read the directory as
// one run with several operations. Fields are separated by ", " as
// basho_bench writes them; latencies keep three decimals, since a fast
// route takes well under a microsecond.
func WriteCSV(dir string, results []Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	all := flatten(results)
	type row struct {
		w  Window
		op string
	}
	var rows []row
	for _, res := range all {
		for _, w := range res.Windows {
			rows = append(rows, row{w, res.Op})
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int { return cmp.Compare(a.w.End, b.w.End) })
	summary := [][]string{{"elapsed", "window", "total", "successful", "failed"}}
	for _, r := range rows {
		ok := uint64(r.w.Latency.Count)
		summary = append(summary, []string{secs(r.w.End), secs(r.w.Length),
			strconv.FormatUint(ok+r.w.Errors, 10), strconv.FormatUint(ok, 10), strconv.FormatUint(r.w.Errors, 10)})
	}
	if err := writeCSVFile(filepath.Join(dir, "summary.csv"), summary); err != nil {
		return err
	}
	for _, res := range all {
		recs := [][]string{{"elapsed", "window", "n", "min", "mean", "median", "95th", "99th", "99_9th", "max", "errors"}}
		for _, w := range res.Windows {
			l := w.Latency
			recs = append(recs, []string{secs(w.End), secs(w.Length), strconv.FormatInt(l.Count, 10),
				usText(l.Min), usText(l.Mean), usText(l.P50), usText(l.P95), usText(l.P99), usText(l.P999), usText(l.Max),
				strconv.FormatUint(w.Errors, 10)})
		}
		if err := writeCSVFile(filepath.Join(dir, res.Op+"_latencies.csv"), recs); err != nil {
			return err
		}
	}
	return nil
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func usText(d time.Duration) string { return strconv.FormatFloat(us(d), 'f', 3, 64) }

func writeCSVFile(path string, recs [][]string) error {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(strings.Join(r, ", "))
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
