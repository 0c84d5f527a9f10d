package ui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"observer/internal/runtime"
)

// dialog is a box drawn over the panes. Dialogs form a stack: the top one
// receives every key, and all are drawn after the panes, in push order.
type dialog interface {
	title() string
	// width is the box's width on a screen w cells wide.
	width(w int) int
	// render draws the content in w×h cells at most.
	render(m *model, w, h int) []string
	// update handles a key; the dialog pops itself when done.
	update(m *model, k tea.KeyPressMsg) tea.Cmd
}

// helpDialog lists every enabled key, grouped.
type helpDialog struct{ scroll int }

func (d *helpDialog) title() string   { return "Keys" }
func (d *helpDialog) width(w int) int { return min(w-2, 100) }

func (d *helpDialog) update(m *model, k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc", "?", "q", "enter":
		m.pop()
	case "down", "j":
		d.scroll++
	case "up", "k":
		d.scroll = max(d.scroll-1, 0)
	case "ctrl+c":
		return m.quit()
	}
	return nil
}

func (d *helpDialog) render(m *model, w, h int) []string {
	st := &m.st
	type entry struct{ lines []string }
	var groups []entry
	const keyW = 10
	for _, g := range m.keys.groups() {
		e := entry{lines: []string{st.Heading.Render(g.title)}}
		for _, b := range g.entries {
			if !b.enabled() {
				continue
			}
			e.lines = append(e.lines, st.Key.Render(cell(b.keys, keyW))+" "+st.Desc.Render(b.desc))
		}
		if len(e.lines) > 1 {
			e.lines = append(e.lines, "")
			groups = append(groups, e)
		}
	}
	cols := 1
	switch {
	case w >= 90:
		cols = 3
	case w >= 56:
		cols = 2
	}
	total := 0
	for _, g := range groups {
		total += len(g.lines)
	}
	per := (total + cols - 1) / cols
	colW := (w - 2*(cols-1)) / cols
	columns := make([][]string, cols)
	c := 0
	for _, g := range groups {
		if c < cols-1 && len(columns[c]) > 0 && len(columns[c])+len(g.lines) > per+2 {
			c++
		}
		columns[c] = append(columns[c], g.lines...)
	}
	height := 0
	for i := range columns {
		height = max(height, len(columns[i]))
	}
	for i := range columns {
		columns[i] = block(columns[i], colW, height)
	}
	lines := joinCols(2, columns...)
	for len(lines) > 0 && strings.TrimSpace(ansi.Strip(lines[len(lines)-1])) == "" {
		lines = lines[:len(lines)-1]
	}
	foot := st.Dim.Render("Mouse: click a tab or a row, wheel scrolls.  esc closes.")
	room := max(h-2, 1)
	d.scroll = clamp(d.scroll, 0, max(len(lines)-room, 0))
	lines = lines[d.scroll:min(len(lines), d.scroll+room)]
	return append(lines, "", foot)
}

// exitChoice is one line of the exit dialog.
type exitChoice struct {
	label, desc string
	reason      any
}

var exitChoices = []exitChoice{
	{"kill", "untrappable: the process dies at once, links see killed", runtime.Kill},
	{"shutdown", "the clean stop a supervisor sends; trapped if trapping exits", runtime.Shutdown},
	{"custom…", "type a reason", nil},
}

// exitDialog sends an exit signal with a chosen reason.
type exitDialog struct {
	pid    runtime.PID
	choice int
	reason lineInput
	err    string
}

func newExitDialog(pid runtime.PID) *exitDialog {
	return &exitDialog{pid: pid, reason: lineInput{prompt: "reason: "}}
}

func (d *exitDialog) title() string   { return "Exit signal" }
func (d *exitDialog) width(w int) int { return min(w-2, 76) }

func (d *exitDialog) custom() bool { return d.choice == len(exitChoices)-1 }

func (d *exitDialog) update(m *model, k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc":
		m.pop()
		return nil
	case "ctrl+c":
		return m.quit()
	case "up":
		d.choice = max(d.choice-1, 0)
		return nil
	case "down", "tab":
		d.choice = min(d.choice+1, len(exitChoices)-1)
		return nil
	case "enter":
		reason := exitChoices[d.choice].reason
		if d.custom() {
			text := strings.TrimSpace(d.reason.String())
			if text == "" {
				d.err = "type a reason first"
				return nil
			}
			reason = runtime.Atom(text)
		}
		m.pop()
		return m.sendExit(d.pid, reason)
	}
	if d.custom() {
		d.reason.key(k)
		d.err = ""
		return nil
	}
	switch k.String() {
	case "k", "shift+tab":
		d.choice = max(d.choice-1, 0)
	case "j":
		d.choice = min(d.choice+1, len(exitChoices)-1)
	}
	return nil
}

func (d *exitDialog) render(m *model, w, h int) []string {
	st := &m.st
	lines := []string{"Send an exit signal to " + st.Value.Render(d.pid.String()), ""}
	for i, c := range exitChoices {
		line := "  " + cell(c.label, 10) + " " + st.Dim.Render(c.desc)
		if i == d.choice {
			line = st.Selected.Render("› "+cell(c.label, 10)) + " " + c.desc
		}
		lines = append(lines, line)
	}
	lines = append(lines, "")
	if d.custom() {
		lines = append(lines, d.reason.view(st, w, true))
	}
	if d.err != "" {
		lines = append(lines, st.StatusErr.Render(d.err))
	}
	lines = append(lines, st.Dim.Render("↑/↓ choose · enter send · esc cancel"))
	return lines
}

// paletteDialog runs commands through Actions.RunCommand and shows their output.
type paletteDialog struct {
	in      lineInput
	out     []string
	err     bool
	busy    bool
	history []string
	hist    int
}

func newPaletteDialog() *paletteDialog {
	return &paletteDialog{in: lineInput{prompt: ": "}}
}

func (d *paletteDialog) title() string   { return "Command" }
func (d *paletteDialog) width(w int) int { return min(w-2, 100) }

func (d *paletteDialog) update(m *model, k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc":
		m.pop()
		return nil
	case "ctrl+c":
		return m.quit()
	case "up":
		if d.hist > 0 {
			d.hist--
			d.in.set(d.history[d.hist])
		}
		return nil
	case "down":
		if d.hist < len(d.history)-1 {
			d.hist++
			d.in.set(d.history[d.hist])
		} else {
			d.hist = len(d.history)
			d.in.set("")
		}
		return nil
	case "enter":
		line := strings.TrimSpace(d.in.String())
		if line == "" || d.busy {
			return nil
		}
		d.history = append(d.history, line)
		d.hist = len(d.history)
		d.in.set("")
		d.busy = true
		run := m.acts.RunCommand
		return func() tea.Msg {
			out, err := run(line)
			return paletteMsg{line: line, out: out, err: err}
		}
	}
	d.in.key(k)
	return nil
}

func (d *paletteDialog) result(r paletteMsg) {
	d.busy = false
	text := r.out
	if r.err != nil {
		if text != "" {
			text += "\n"
		}
		text += "error: " + r.err.Error()
	}
	d.out = append([]string{": " + r.line}, strings.Split(strings.TrimRight(text, "\n"), "\n")...)
	d.err = r.err != nil
}

func (d *paletteDialog) render(m *model, w, h int) []string {
	st := &m.st
	lines := []string{d.in.view(st, w, true), ""}
	room := max(h-4, 1)
	var out []string
	for _, l := range d.out {
		out = append(out, wrap(l, w, 0)...)
	}
	if len(out) > room {
		out = append(out[:room-1], st.Dim.Render(fmt.Sprintf("… %d more lines", len(out)-room+1)))
	}
	for i, l := range out {
		switch {
		case i == 0:
			lines = append(lines, st.Dim.Render(l))
		case d.err && strings.HasPrefix(l, "error: "):
			lines = append(lines, st.StatusErr.Render(l))
		default:
			lines = append(lines, l)
		}
	}
	if d.busy {
		lines = append(lines, st.Dim.Render("running…"))
	}
	if len(out) > 0 || d.busy {
		lines = append(lines, "")
	}
	return append(lines, st.Dim.Render("enter run · ↑/↓ history · esc close"))
}

// textDialog shows a long text, such as a crash report, scrollable.
type textDialog struct {
	name   string
	text   string
	scroll int
}

func (d *textDialog) title() string   { return d.name }
func (d *textDialog) width(w int) int { return min(w-2, 120) }

func (d *textDialog) update(m *model, k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc", "enter", "q":
		m.pop()
	case "ctrl+c":
		return m.quit()
	case "down", "j":
		d.scroll++
	case "up", "k":
		d.scroll = max(d.scroll-1, 0)
	case "pgdown", "space":
		d.scroll += 10
	case "pgup":
		d.scroll = max(d.scroll-10, 0)
	case "home", "g":
		d.scroll = 0
	}
	return nil
}

func (d *textDialog) render(m *model, w, h int) []string {
	lines := wrap(d.text, w, 0)
	room := max(h-2, 1)
	d.scroll = clamp(d.scroll, 0, max(len(lines)-room, 0))
	shown := lines[d.scroll:min(len(lines), d.scroll+room)]
	out := append([]string{}, shown...)
	more := ""
	if len(lines) > room {
		more = fmt.Sprintf("lines %d–%d of %d · ", d.scroll+1, d.scroll+len(shown), len(lines))
	}
	return append(out, "", m.st.Dim.Render(more+"↑/↓ scroll · esc close"))
}
