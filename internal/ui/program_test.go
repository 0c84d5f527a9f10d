package ui

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/charmbracelet/x/vt"
)

// terminal replays the program's output on an emulated screen: the
// renderer writes only the cells that changed, so assertions read the
// screen, not the byte stream.
type terminal struct {
	emu  *vt.Emulator
	seen int // bytes of the current WaitFor's buffer already replayed
}

func newTerminal(w, h int) *terminal {
	emu := vt.NewEmulator(w, h)
	// The emulator answers the program's queries on its input side; nobody
	// types here, so the answers are dropped rather than left to block it.
	// The emulator is not closed: Close races with a pending Read, and the
	// reader parked on its pipe costs nothing.
	go func() { _, _ = io.Copy(io.Discard, emu) }()
	return &terminal{emu: emu}
}

// shows returns a WaitFor condition: each WaitFor hands it the bytes read
// since that WaitFor began.
func (s *terminal) shows(want string) func([]byte) bool {
	s.seen = 0
	return func(out []byte) bool {
		_, _ = s.emu.Write(bytes.ReplaceAll(out[s.seen:], []byte("\n"), []byte("\r\n")))
		s.seen = len(out)
		return strings.Contains(s.emu.String(), want)
	}
}

func TestTheProgramRunsInATerminal(t *testing.T) {
	f := newFixture(t)
	f.src.env = nil // the live node, read in real time
	const w, h = 100, 30
	term := newTerminal(w, h)
	tm := teatest.NewTestModel(t, New(f.src, Options{NoColor: true}), teatest.WithInitialTermSize(w, h))
	wait := func(want string) {
		t.Helper()
		teatest.WaitFor(t, tm.Output(), term.shows(want), teatest.WithDuration(20*time.Second))
	}
	wait("Go runtime")
	tm.Send(keyPress("3"))
	wait("Processes 90")
	tm.Send(tea.MouseClickMsg{X: 3, Y: bodyTop + 2, Button: tea.MouseLeft})
	tm.Send(tea.MouseClickMsg{X: 3, Y: bodyTop + 2, Button: tea.MouseLeft})
	wait("State (sys:get_state)")
	tm.Send(keyPress("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
}
