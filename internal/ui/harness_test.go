package ui

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
)

// harness drives a model the way the program would, but synchronously:
// every command runs at once and its message goes straight to Update.
// Clock ticks are sent by the test, so nothing waits on real time.
type harness struct {
	t    *testing.T
	m    *model
	quit bool
}

func newHarness(t *testing.T, src Source, opts Options, w, h int) *harness {
	t.Helper()
	hs := &harness{t: t, m: newModel(src, opts)}
	t.Cleanup(hs.m.probe.env.close)
	hs.run(hs.m.Init())
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	return hs
}

// send delivers one message and runs what it starts.
func (h *harness) send(msg tea.Msg) {
	h.t.Helper()
	_, cmd := h.m.Update(msg)
	h.run(cmd)
}

func (h *harness) run(cmd tea.Cmd) {
	h.t.Helper()
	queue := []tea.Cmd{cmd}
	for steps := 0; len(queue) > 0; steps++ {
		if steps > 10_000 {
			h.t.Fatal("commands keep starting commands")
		}
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case tea.QuitMsg:
			h.quit = true
		default:
			_, next := h.m.Update(msg)
			queue = append(queue, next)
		}
	}
}

// advance lets d pass on the fixed clock in refresh steps, with a system
// sample every second, as the tickers would.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	env := h.m.probe.env
	end := env.now().Add(d)
	nextSample := env.now().Add(sampleEvery)
	for env.now().Before(end) {
		env.sleep(min(h.m.opts.Refresh, end.Sub(env.now())))
		h.send(tickMsg{env.now()})
		if !env.now().Before(nextSample) {
			h.send(sampleTickMsg{env.now()})
			nextSample = nextSample.Add(sampleEvery)
		}
	}
}

// key presses one key, named as tea prints it: "j", "enter", "ctrl+k".
func (h *harness) key(name string) {
	h.t.Helper()
	h.send(keyPress(name))
}

// typeText types s one rune at a time.
func (h *harness) typeText(s string) {
	h.t.Helper()
	for _, r := range s {
		h.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

func keyPress(name string) tea.KeyPressMsg {
	special := map[string]rune{
		"enter": tea.KeyEnter, "esc": tea.KeyEscape, "tab": tea.KeyTab, "space": tea.KeySpace,
		"up": tea.KeyUp, "down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight,
		"pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown, "home": tea.KeyHome, "end": tea.KeyEnd,
		"backspace": tea.KeyBackspace,
	}
	var k tea.KeyPressMsg
	if mod, rest, ok := strings.Cut(name, "+"); ok && len(rest) > 0 {
		switch mod {
		case "ctrl":
			k.Mod = tea.ModCtrl
		case "shift":
			k.Mod = tea.ModShift
		case "alt":
			k.Mod = tea.ModAlt
		}
		name = rest
		if r, ok := special[name]; ok {
			k.Code = r
			return k
		}
		k.Code, _ = utf8.DecodeRuneInString(name)
		return k
	}
	if r, ok := special[name]; ok {
		k.Code = r
		if r == tea.KeySpace {
			k.Text = " "
		}
		return k
	}
	k.Code, _ = utf8.DecodeRuneInString(name)
	k.Text = name
	return k
}

// screen is the current frame as plain text.
func (h *harness) screen() string { return plain(h.m.render()) }

// line returns the screen line holding substr, or "".
func (h *harness) line(substr string) string {
	for _, l := range strings.Split(h.screen(), "\n") {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}

func (h *harness) click(x, y int) {
	h.t.Helper()
	h.send(tea.MouseClickMsg{X: x, Y: y, Button: tea.MouseLeft})
}

func (h *harness) wheel(down bool) {
	h.t.Helper()
	b := tea.MouseWheelUp
	if down {
		b = tea.MouseWheelDown
	}
	h.send(tea.MouseWheelMsg{Button: b})
}

func (h *harness) mustShow(substr string) {
	h.t.Helper()
	if s := h.screen(); !strings.Contains(s, substr) {
		h.t.Fatalf("screen does not show %q:\n%s", substr, s)
	}
}

func (h *harness) mustNotShow(substr string) {
	h.t.Helper()
	if s := h.screen(); strings.Contains(s, substr) {
		h.t.Fatalf("screen shows %q:\n%s", substr, s)
	}
}
