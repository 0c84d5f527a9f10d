package ui

import (
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// View draws the screen: the tab bar, the current pane, the footer, and
// the dialogs on top, last pushed uppermost.
func (m *model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "observer"
	return v
}

// Smallest screen the layout is drawn for; below it a notice asks for more room.
const minWidth, minHeight = 40, 10

func (m *model) render() string {
	w, h := m.width, m.height
	if w <= 0 || h <= 0 {
		return ""
	}
	if w < minWidth || h < minHeight {
		return fit("observer needs at least 40×10 (80×24 is best)", w)
	}
	lines := make([]string, 0, h)
	lines = append(lines, m.tabBar(w))
	lines = append(lines, m.body()...)
	lines = append(lines, m.footer(w))
	for _, d := range m.dialogs {
		lines = m.overlay(lines, d)
	}
	return strings.Join(lines, "\n")
}

func (m *model) body() []string {
	if m.detail.open {
		return m.detail.Render(&m.sh)
	}
	switch m.view {
	case viewOverview:
		return m.overview.Render(&m.sh)
	case viewApps:
		return m.apps.Render(&m.sh)
	case viewProcs:
		return m.procs.Render(&m.sh)
	case viewLedger:
		return m.ledger.Render(&m.sh)
	case viewTables:
		return m.tables.Render(&m.sh)
	}
	return m.events.Render(&m.sh)
}

type tabSpan struct {
	x0, x1 int // cells [x0, x1)
	view   viewID
	label  string
}

const titleText = " observer "

// tabs lays out the tab bar; long names when they fit.
func (m *model) tabs() []tabSpan {
	long := m.width >= 100
	spans := make([]tabSpan, 0, numViews)
	x := len(titleText) + 1
	for i := range numViews {
		name := viewInfo[i].short
		if long {
			name = viewInfo[i].long
		}
		label := " " + string(rune('1'+i)) + " " + name + " "
		w := ansi.StringWidth(label)
		spans = append(spans, tabSpan{x0: x, x1: x + w, view: viewID(i), label: label})
		x += w
	}
	return spans
}

func (m *model) tabAt(x int) (viewID, bool) {
	for _, t := range m.tabs() {
		if x >= t.x0 && x < t.x1 {
			return t.view, true
		}
	}
	return 0, false
}

func (m *model) tabBar(w int) string {
	st := &m.st
	var b strings.Builder
	b.WriteString(st.Title.Render(titleText))
	b.WriteByte(' ')
	for _, t := range m.tabs() {
		if t.view == m.view {
			b.WriteString(st.TabActive.Render(t.label))
		} else {
			b.WriteString(st.TabInactive.Render(t.label))
		}
	}
	left := b.String()
	var right string
	switch {
	case m.sh.paused:
		right = st.Warn.Render("❚❚ paused")
	default:
		right = st.Good.Render("● live")
	}
	if m.opts.ReadOnly {
		right = st.Dim.Render("read-only ") + right
	}
	right += " "
	gap := w - ansi.StringWidth(left) - ansi.StringWidth(right)
	if gap < 1 {
		return fit(left, w)
	}
	return left + spaces(gap) + right
}

func (m *model) footer(w int) string {
	st := &m.st
	if m.statusText != "" && m.sh.now.Sub(m.statusAt) < statusFor {
		style := st.Status
		if m.statusErr {
			style = st.StatusErr
		}
		return fit(" "+style.Render(m.statusText), w)
	}
	var b strings.Builder
	b.WriteByte(' ')
	used := 1
	for _, k := range m.keys.footer(m.view, m.detail.open) {
		if !k.Enabled() {
			continue
		}
		h := k.Help()
		cw := ansi.StringWidth(h.Key) + 1 + ansi.StringWidth(h.Desc) + 2
		if used+cw > w {
			break
		}
		b.WriteString(st.Key.Render(h.Key))
		b.WriteByte(' ')
		b.WriteString(st.Desc.Render(h.Desc))
		b.WriteString("  ")
		used += cw
	}
	return fit(b.String(), w)
}

// overlay draws a dialog's box centred over lines.
func (m *model) overlay(lines []string, d dialog) []string {
	w, h := m.width, m.height
	bw := min(d.width(w), w-2)
	content := d.render(m, bw-4, h-4)
	box := m.box(d.title(), content, bw)
	y0 := max((h-len(box))/2, 0)
	x0 := max((w-bw)/2, 0)
	for i, l := range box {
		y := y0 + i
		if y >= len(lines) {
			break
		}
		base := lines[y]
		lines[y] = ansi.Truncate(base, x0, "") + l + ansi.TruncateLeft(base, x0+bw, "")
	}
	return lines
}

// box frames content lines (fitted to w-4 cells) with a titled border.
func (m *model) box(title string, content []string, w int) []string {
	st := &m.st
	inner := w - 2
	out := make([]string, 0, len(content)+2)
	out = append(out, st.Dialog.Render("╭─ ")+st.DialogTitle.Render(title)+st.Dialog.Render(" "+strings.Repeat("─", max(inner-ansi.StringWidth(title)-3, 0))+"╮"))
	for _, c := range content {
		out = append(out, st.Dialog.Render("│")+" "+fit(c, inner-2)+" "+st.Dialog.Render("│"))
	}
	out = append(out, st.Dialog.Render("╰"+strings.Repeat("─", inner)+"╯"))
	return out
}
