package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"

	"observer/internal/telecom"
	"observer/internal/telecom/bench"
	"observer/internal/telecom/ledger"
	"observer/internal/ui"
	"observer/internal/ui/live"
)

func init() {
	register(command{name: "bench", summary: "measure the runtime and the telecom system under load, with SLA verdicts", run: runBench})
}

// exitSLA is the exit code of a run that missed a service level under --strict.
const exitSLA = 3

func runBench(e *env, args []string) error {
	var list strings.Builder
	for _, s := range bench.Scenarios() {
		fmt.Fprintf(&list, "  %-16s %s\n", s.Name, s.Summary)
	}
	fs := newFlags(e, "bench", "", "Runs benchmark scenarios and prints throughput, latency percentiles, SLA verdicts and\n"+
		"correctness checks (see docs/reference/bench.md).\n\nScenarios (all runs every one):\n"+list.String()+"\n"+
		"Without --data-dir or --ledger, the scenarios that need a ledger use a temporary one.\n"+
		"Exit status: 1 if a correctness check failed, 3 if an SLA was missed under --strict.")
	cf := addConfigFlags(fs)
	scenario := fs.String("scenario", "all", "`names` of the scenarios to run, comma-separated, or all")
	duration := fs.Duration("duration", bench.DefaultDuration, "how long each scenario runs")
	concurrency := fs.Int("concurrency", 0, "worker processes (0: each scenario's default)")
	rate := fs.Float64("rate", 0, "open loop at this many operations/s, latency from each one's intended start (0: closed loop)")
	warmup := fs.Duration("warmup", 0, "charge for this long before each charge measurement, unmeasured, so that it starts warm")
	window := fs.Duration("window", bench.DefaultWindow, "reporting window of the CSV time series")
	held := fs.Int("held-calls", 0, fmt.Sprintf("connected calls call-lifecycle holds to measure a live call's memory (0: the larger of %d and --concurrency)", bench.DefaultHeldCalls))
	asJSON := fs.Bool("json", false, "print a JSON array, one object per scenario")
	csvDir := fs.String("csv", "", "write basho_bench's summary.csv and <op>_latencies.csv into `directory`")
	strict := fs.Bool("strict", false, "exit with status 3 when an SLA is missed")
	quiet := fs.Bool("quiet", false, "no progress line on standard error")
	compare := fs.String("compare-ledger", "", "also run the charge scenario on this PostgreSQL `url` (postgres://...), right after the embedded ledger, for the two side by side")
	withUI := fs.Bool("ui", false, "also run the UI, drawn off-screen, on the scenarios that start the whole system, to measure what watching costs")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected argument %q (scenarios go in --scenario)", pos[0])
	}
	if *compare != "" && !ledger.IsPostgresURL(*compare) {
		return usageError("--compare-ledger takes a PostgreSQL URL (postgres://...), got %q", *compare)
	}
	scenarios, err := selectScenarios(*scenario)
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	ledgerGiven := false
	fs.Visit(func(f *flag.Flag) { ledgerGiven = ledgerGiven || f.Name == "data-dir" || f.Name == "ledger" })
	prog := newProgressLine(e.stderr, *quiet)
	opts := bench.Options{
		Duration: *duration, Warmup: *warmup, Concurrency: *concurrency, Rate: *rate, Window: *window, HeldCalls: *held,
		Config: &cfg, ConfiguredLedger: ledgerGiven, CompareLedger: *compare,
		Progress: prog.show, ProgressInterval: prog.interval,
	}
	if *withUI {
		opts.Observe = func(sys *telecom.System) func() { return watchOffScreen(e, sys) }
	}
	r, err := bench.NewRunner(opts)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	ctx, cancel := signalContext()
	defer cancel()
	results, runErr := runScenarios(ctx, e, r, scenarios, prog)
	m := bench.ThisMachine()
	if *asJSON {
		err = bench.WriteJSON(e.stdout, results, m)
	} else if len(results) > 0 {
		err = bench.WriteText(e.stdout, results, m)
	}
	if err != nil {
		return err
	}
	if *csvDir != "" && len(results) > 0 {
		if err := bench.WriteCSV(*csvDir, results); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if *strict {
		var missed []string
		for _, res := range results {
			for _, x := range append([]bench.Result{res}, res.Phases...) {
				if x.SLA != nil && !x.SLA.Pass {
					missed = append(missed, fmt.Sprintf("%s: %s", x.Scenario, x.SLA.Name))
				}
			}
		}
		if len(missed) > 0 {
			return &exitError{code: exitSLA, err: fmt.Errorf("SLA missed: %s", strings.Join(missed, "; "))}
		}
	}
	return nil
}

// selectScenarios resolves --scenario; "all" is every scenario.
func selectScenarios(spec string) ([]bench.Scenario, error) {
	var out []bench.Scenario
	for name := range strings.SplitSeq(spec, ",") {
		name = strings.TrimSpace(name)
		if name == "all" {
			out = append(out, bench.Scenarios()...)
			continue
		}
		s, ok := bench.Lookup(name)
		if !ok {
			return nil, usageError("unknown scenario %q (run 'observer bench --help' for the list)", name)
		}
		out = append(out, s)
	}
	return out, nil
}

// runScenarios runs each scenario in turn. A failed correctness check is
// reported and the run goes on, so that one broken scenario does not hide
// the others; any other error, or an interrupt, ends the run.
func runScenarios(ctx context.Context, e *env, r *bench.Runner, scenarios []bench.Scenario, prog *progressLine) ([]bench.Result, error) {
	var results []bench.Result
	var failed []string
	for _, s := range scenarios {
		res, err := r.Run(ctx, s.Name)
		prog.clear()
		var ce *bench.CheckError
		switch {
		case errors.As(err, &ce):
			results = append(results, res)
			failed = append(failed, s.Name)
			fmt.Fprintf(e.stderr, "observer bench: %v\n", err)
		case ctx.Err() != nil:
			return results, &exitError{code: 130, err: errors.New("interrupted")}
		case err != nil:
			return results, fmt.Errorf("%s: %w", s.Name, err)
		default:
			results = append(results, res)
			prog.done(res)
		}
	}
	if len(failed) > 0 {
		return results, fmt.Errorf("correctness checks failed in %s", strings.Join(failed, ", "))
	}
	return results, nil
}

// progressLine shows a running scenario on standard error: rewritten in
// place on a terminal, otherwise one line per second for logs.
type progressLine struct {
	w        io.Writer
	tty      bool
	off      bool
	interval time.Duration
}

func newProgressLine(w io.Writer, quiet bool) *progressLine {
	p := &progressLine{w: w, off: quiet, interval: time.Second}
	if f, ok := w.(*os.File); ok && term.IsTerminal(f.Fd()) {
		p.tty, p.interval = true, 200*time.Millisecond
	}
	return p
}

func (p *progressLine) show(pr bench.Progress) {
	if p.off {
		return
	}
	name := pr.Scenario
	if pr.Phase != "" {
		name += " (" + pr.Phase + ")"
	}
	line := fmt.Sprintf("bench %s: %.1fs/%.1fs  %d ops  %s ops/s  %d errors", name,
		pr.Elapsed.Seconds(), pr.Duration.Seconds(), pr.Ops, bench.FormatRate(pr.Rate), pr.Errors)
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// clear removes the progress line from a terminal.
func (p *progressLine) clear() {
	if p.tty && !p.off {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

// done leaves a one-line summary of a finished scenario on a terminal,
// where the progress line it replaces is gone.
func (p *progressLine) done(res bench.Result) {
	if !p.tty || p.off {
		return
	}
	fmt.Fprintf(p.w, "bench %s: %s ops/s, p99 %s\n", res.Scenario, bench.FormatRate(res.OpsPerSec()), bench.FormatDuration(res.Latency.P99))
}

// Off-screen UI: the size it draws and how long it stays on each view.
const (
	offScreenWidth, offScreenHeight = 160, 48
	offScreenCycle                  = 2 * time.Second
)

// watchOffScreen runs the UI over sys, drawn into nothing, every view in
// turn, as --ui asks; the function it returns stops it.
func watchOffScreen(e *env, sys *telecom.System) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ui.RunHeadless(ctx, live.New(sys), ui.Options{}, offScreenWidth, offScreenHeight, io.Discard, offScreenCycle)
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintf(e.stderr, "observer: the off-screen UI failed: %v\n", err)
		}
	}
}
