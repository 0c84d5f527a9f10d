package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/x/term"

	"observer/internal/telecom"
	"observer/internal/telecom/export"
)

func init() {
	register(command{name: "run", summary: "run the telecom system with the terminal UI (the default)", run: runSystem})
	register(command{name: "headless", summary: "run the telecom system without the UI, printing one status line per second", run: runHeadless})
	register(command{name: "metrics", summary: "run the system for a moment and print routed, failed and dropped calls", run: runMetrics})
}

// systemFlags are the flags of the commands that run the whole system.
type systemFlags struct {
	*configFlags
	rate        *float64
	drain       *time.Duration
	metricsAddr *string
	reload      *reloadFlags // set by the commands that keep the system running
}

func addSystemFlags(fs interface {
	Float64(string, float64, string) *float64
	Duration(string, time.Duration, string) *time.Duration
	String(string, string, string) *string
}, cf *configFlags) *systemFlags {
	return &systemFlags{
		configFlags: cf,
		rate:        fs.Float64("rate", -1, "load generator rate in calls/s (default from the config: 50)"),
		drain:       fs.Duration("drain", 5*time.Second, "on SIGINT/SIGTERM, how long calls in flight may finish"),
		metricsAddr: fs.String("metrics-addr", "", "serve Prometheus metrics at `host:port`/metrics (off by default; a missing host means 127.0.0.1)"),
	}
}

// serveMetrics starts the metrics endpoint if --metrics-addr was given.
func (f *systemFlags) serveMetrics(e *env, sys *telecom.System) (stop func(), err error) {
	if *f.metricsAddr == "" {
		return func() {}, nil
	}
	srv, addr, err := export.Serve(sys, *f.metricsAddr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stderr, "observer: metrics at http://%s/metrics\n", addr)
	return func() { _ = srv.Close() }, nil
}

func (f *systemFlags) load() (telecom.Config, error) {
	cfg, err := f.configFlags.load()
	if err != nil {
		return cfg, err
	}
	if *f.rate >= 0 {
		cfg.Load.Rate = *f.rate
		cfg.Load.Enabled = true
	}
	return cfg, cfg.Validate()
}

// reloadFlags are the flags of the commands that keep the system running:
// files loaded at start and, with --watch, reloaded when they change.
type reloadFlags struct {
	rules, costs *string
	watch        *bool
}

func addReloadFlags(fs *flag.FlagSet) *reloadFlags {
	return &reloadFlags{
		rules: fs.String("rules", "", "rating rules `file` of billing_engine_server version 2 (default: the embedded rules)"),
		costs: fs.String("costs", "", "trunk costs `file` of least-cost routing, call_router_server version 2 (default: the embedded costs)"),
		watch: fs.Bool("watch", false, "reload the --routes, --rules and --costs files when they change (checked every second)"),
	}
}

func (f *reloadFlags) files(cfg telecom.Config) telecom.ReloadFiles {
	return telecom.ReloadFiles{Routes: cfg.Router.Routes, Rules: *f.rules, Costs: *f.costs}
}

// check refuses --watch with nothing to watch, before the system starts.
func (f *reloadFlags) check(cfg telecom.Config) error {
	if f != nil && *f.watch && f.files(cfg).Empty() {
		return usageError("--watch needs a file to watch: --routes (or router.routes in the config), --rules or --costs")
	}
	return nil
}

// start loads the rules and costs files into a started system and, with
// --watch, watches every named file until ctx ends, passing each reload's
// outcome to log.
func (f *reloadFlags) start(ctx context.Context, sys *telecom.System, cfg telecom.Config, log func(string)) error {
	if f == nil {
		return nil
	}
	files := f.files(cfg)
	if err := sys.LoadFiles(files); err != nil {
		return err
	}
	if *f.watch {
		sys.Watch(ctx, files, time.Second, log)
	}
	return nil
}

func runSystem(e *env, args []string) error {
	fs := newFlags(e, "run", "", "Runs the telecom system with the terminal UI. When standard output is not a terminal it runs headless.")
	sf := addSystemFlags(fs, addConfigFlags(fs))
	sf.reload = addReloadFlags(fs)
	uf := addUIFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected argument %q", pos[0])
	}
	opts, err := uf.options()
	if err != nil {
		return err
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	if err := sf.reload.check(cfg); err != nil {
		return err
	}
	if f, ok := e.stdout.(*os.File); !ok || !term.IsTerminal(f.Fd()) {
		return headless(e, cfg, sf, 0)
	}
	return runUI(e, cfg, sf, opts)
}

func runHeadless(e *env, args []string) error {
	fs := newFlags(e, "headless", "", "Runs the telecom system without the UI and prints one status line per second until SIGINT or SIGTERM.")
	sf := addSystemFlags(fs, addConfigFlags(fs))
	sf.reload = addReloadFlags(fs)
	duration := fs.Duration("duration", 0, "stop after this long (0 runs until a signal)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected argument %q", pos[0])
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	if err := sf.reload.check(cfg); err != nil {
		return err
	}
	return headless(e, cfg, sf, *duration)
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func headless(e *env, cfg telecom.Config, sf *systemFlags, duration time.Duration) error {
	sys, err := telecom.Start(cfg)
	if err != nil {
		return err
	}
	stopMetrics, err := sf.serveMetrics(e, sys)
	if err != nil {
		sys.Stop(0)
		return err
	}
	defer stopMetrics()
	drain := *sf.drain
	ctx, cancel := signalContext()
	defer cancel()
	// Reloads are logged from the loop below, so their lines and the
	// status lines never interleave.
	logs := make(chan string, 16)
	if err := sf.reload.start(ctx, sys, cfg, func(msg string) {
		select {
		case logs <- msg:
		case <-ctx.Done():
		}
	}); err != nil {
		sys.Stop(0)
		return err
	}
	if duration > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, duration)
		defer c2()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last telecom.Status
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(e.stdout, "stopping: draining calls in flight")
			sys.Stop(drain)
			fmt.Fprintln(e.stdout, "stopped")
			return nil
		case <-sys.Apps.Done():
			return fmt.Errorf("the node terminated: %v", sys.Apps.Err())
		case msg := <-logs:
			fmt.Fprintln(e.stdout, msg)
		case <-tick.C:
			st := sys.Status()
			printStatus(e.stdout, st, last)
			last = st
		}
	}
}

func printStatus(w io.Writer, st, last telecom.Status) {
	dt := st.At.Sub(last.At).Seconds()
	rate := func(now, before uint64) float64 {
		if last.At.IsZero() || dt <= 0 {
			return 0
		}
		return float64(now-before) / dt
	}
	fmt.Fprintf(w, "%s procs=%d zombies=%d routed/s=%.0f failed/s=%.0f dropped=%d active=%d route_p99=%v completed=%d\n",
		st.At.Format("15:04:05"), st.Processes, st.Zombies,
		rate(st.Routed, last.Routed), rate(st.Failed, last.Failed), st.Dropped, st.ActiveCalls,
		st.RouteP99, st.Completed)
}

func runMetrics(e *env, args []string) error {
	fs := newFlags(e, "metrics", "", "Runs the telecom system with its load generator for --after, then prints the router's routed, failed and dropped counts.")
	sf := addSystemFlags(fs, addConfigFlags(fs))
	after := fs.Duration("after", time.Second, "how long to run before printing")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected argument %q", pos[0])
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	sys, err := telecom.Start(cfg)
	if err != nil {
		return err
	}
	time.Sleep(*after) // the point of the command: let the system run
	m := sys.Router.Metrics()
	sys.Stop(0)
	var failed uint64
	var reasons []string
	for r, n := range m.Failed {
		failed += n
		if n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
		}
	}
	sort.Strings(reasons)
	fmt.Fprintf(e.stdout, "routed %d\nfailed %d", m.Routed, failed)
	if len(reasons) > 0 {
		fmt.Fprintf(e.stdout, " (%s)", strings.Join(reasons, " "))
	}
	fmt.Fprintf(e.stdout, "\ndropped %d\n", m.Dropped)
	return nil
}
