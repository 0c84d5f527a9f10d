package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// maxFPS caps redraws: a 10 Hz dashboard gains nothing from more.
const maxFPS = 30

// Run shows the UI on the terminal, in the alternate screen with the mouse
// enabled, until the user quits or ctx is cancelled. NO_COLOR in the
// environment turns colours off.
func Run(ctx context.Context, src Source, opts Options) error {
	if os.Getenv("NO_COLOR") != "" {
		opts.NoColor = true
	}
	if _, err := parseView(opts.View); err != nil {
		return err
	}
	m := newModel(src, opts)
	m.ticks = true
	defer m.probe.env.close()
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithFPS(maxFPS))
	_, err := p.Run()
	if err != nil && ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled) {
		return nil // the caller asked us to stop
	}
	return err
}

// RenderFrame builds one frame of the named view as plain text, without a
// terminal: it takes snapshots for the after duration, at the refresh
// interval, with a system sample every second, so that rates and charts
// have data, and then draws width×height cells. It backs the snapshot
// command and the golden tests.
func RenderFrame(src Source, opts Options, view string, width, height int, after time.Duration) (string, error) {
	v, err := parseView(view)
	if err != nil {
		return "", err
	}
	if width <= 0 || height <= 0 {
		return "", fmt.Errorf("ui: frame size %d×%d is empty", width, height)
	}
	opts.View = ""
	m := newModel(src, opts)
	defer m.probe.env.close()
	m.view = v
	m.resize(width, height)
	env := m.probe.env
	start := env.now()
	nextSample := start
	for {
		now := env.now()
		m.advance(now)
		if !now.Before(nextSample) {
			m.applySample(sampleMsg{sys: env.system(), tel: src.Telecom()})
			nextSample = nextSample.Add(sampleEvery)
		}
		q := m.query()
		m.applyFrame(m.probe.snapshot(q))
		left := start.Add(after).Sub(now)
		if left <= 0 {
			break
		}
		env.sleep(min(m.opts.Refresh, left))
	}
	return plain(m.render()), nil
}

// plain strips styling and trailing blanks from a rendered screen.
func plain(s string) string {
	lines := strings.Split(ansi.Strip(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}
