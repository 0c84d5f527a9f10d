package ui

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	tea "charm.land/bubbletea/v2"
)

// RunHeadless runs the UI as Run does, on a width×height screen drawn into
// out, with no keyboard, until ctx is cancelled. Every cycle it switches to
// the next of the six views, as a user pressing 1 to 6 would, so that each
// view's snapshots and drawing are paid for in turn. With out io.Discard it
// measures what watching a system costs that system.
func RunHeadless(ctx context.Context, src Source, opts Options, width, height int, out io.Writer, cycle time.Duration) error {
	if _, err := parseView(opts.View); err != nil {
		return err
	}
	m := newModel(src, opts)
	m.ticks = true
	defer m.probe.env.close()
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithFPS(maxFPS), tea.WithInput(nil), tea.WithOutput(out),
		tea.WithWindowSize(width, height), tea.WithoutSignalHandler(), tea.WithEnvironment([]string{"TERM=xterm-256color"}))
	if cycle > 0 {
		go func() {
			t := time.NewTicker(cycle)
			defer t.Stop()
			for i := 1; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					k := rune('1' + i%6)
					p.Send(tea.KeyPressMsg{Code: k, Text: strconv.QuoteRune(k)[1:2]})
				}
			}
		}()
	}
	_, err := p.Run()
	if err != nil && ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled) {
		return nil
	}
	return err
}
