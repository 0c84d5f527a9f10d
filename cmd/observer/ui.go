package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"observer/internal/telecom"
	"observer/internal/ui"
	"observer/internal/ui/live"
)

func init() {
	register(command{name: "snapshot", summary: "print one frame of the UI as text (for docs, bug reports and scripts)", run: runSnapshot})
}

// uiFlags are the display flags.
type uiFlags struct {
	readOnly *bool
	refresh  *time.Duration
	theme    *string
	view     *string
}

func addUIFlags(fs *flag.FlagSet) *uiFlags {
	return &uiFlags{
		readOnly: fs.Bool("read-only", false, "hide every key that changes the system (for shared screens)"),
		refresh:  fs.Duration("refresh", ui.DefaultRefresh, "how often the display refreshes"),
		theme:    fs.String("theme", "auto", "colours: auto, dark, light or high-contrast (NO_COLOR is respected)"),
		view:     fs.String("view", "overview", "view to open: "+strings.Join(ui.ViewNames(), ", ")),
	}
}

func (f *uiFlags) options() (ui.Options, error) {
	theme, err := ui.ParseTheme(*f.theme)
	if err != nil {
		return ui.Options{}, usageError("%v", err)
	}
	if *f.refresh < 10*time.Millisecond {
		return ui.Options{}, usageError("--refresh must be at least 10ms, got %v", *f.refresh)
	}
	return ui.Options{ReadOnly: *f.readOnly, Refresh: *f.refresh, Theme: theme, View: *f.view}, nil
}

// runUI runs the terminal UI over a running system until the user quits
// or a signal arrives, then stops the system in order.
func runUI(e *env, cfg telecom.Config, sf *systemFlags, opts ui.Options) error {
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
	ctx, cancel := signalContext()
	defer cancel()
	// Reloads show in the UI's event log; the watch stops before the
	// system does.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := sf.reload.start(wctx, sys, cfg, nil); err != nil {
		sys.Stop(0)
		return err
	}
	src := live.New(sys)
	src.Chaos = sys.Chaos.Toggle
	src.ChaosOn = sys.Chaos.Running
	err = ui.Run(ctx, src, opts)
	stopWatch()
	fmt.Fprintln(e.stderr, "observer: stopping, draining calls in flight")
	sys.Stop(*sf.drain)
	return err
}

func runSnapshot(e *env, args []string) error {
	fs := newFlags(e, "snapshot", "", "Runs the system for --after, then prints one frame of --view as plain text.")
	sf := addSystemFlags(fs, addConfigFlags(fs))
	uf := addUIFlags(fs)
	width := fs.Int("width", 120, "frame width in columns")
	height := fs.Int("height", 40, "frame height in rows")
	after := fs.Duration("after", 2*time.Second, "how long the system runs before the frame is taken")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected argument %q", pos[0])
	}
	if *width < 40 || *width > 1000 || *height < 10 || *height > 1000 {
		return usageError("--width must be 40..1000 and --height 10..1000, got %dx%d", *width, *height)
	}
	opts, err := uf.options()
	if err != nil {
		return err
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	sys, err := telecom.Start(cfg)
	if err != nil {
		return err
	}
	defer sys.Stop(0)
	frame, err := ui.RenderFrame(live.New(sys), opts, opts.View, *width, *height, *after)
	if err != nil {
		return usageError("%v", err)
	}
	fmt.Fprintln(e.stdout, frame)
	return nil
}
