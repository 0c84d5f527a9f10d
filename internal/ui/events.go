package ui

import (
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"observer/internal/runtime"
)

// eventsPane lists the kept events newest first: crash reports, supervisor
// reports, code changes and traces. With the newest row selected it follows
// new events; otherwise the selection stays on its event.
type eventsPane struct {
	w, h int

	filter    lineInput
	filtering bool

	matches []int32 // ring positions (0 is newest) of the rows shown
	cursor  int     // index into matches
	offset  int
	sel     uint64 // Seq of the selected event
}

// SetSize sets the pane's size in cells.
func (p *eventsPane) SetSize(w, h int) {
	p.w, p.h = w, h
	if p.filter.prompt == "" {
		p.filter.prompt = "/"
	}
}

func (p *eventsPane) visible() int { return max(p.h-1, 1) }

// refresh recomputes the rows after new events or a new filter.
func (p *eventsPane) refresh(c *shared) {
	follow := p.cursor == 0
	f := strings.ToLower(strings.TrimSpace(p.filter.String()))
	p.matches = p.matches[:0]
	for i := 0; i < c.events.len(); i++ {
		e := c.events.at(i)
		if c.paused && e.seq > c.frozen {
			continue
		}
		if f != "" && !strings.Contains(e.lower, f) {
			continue
		}
		p.matches = append(p.matches, int32(i))
	}
	p.cursor = 0
	if !follow {
		for i, j := range p.matches {
			if c.events.at(int(j)).seq == p.sel {
				p.cursor = i
				break
			}
		}
	}
	p.cursor = clamp(p.cursor, 0, max(len(p.matches)-1, 0))
	p.remember(c)
	p.scroll()
}

func (p *eventsPane) remember(c *shared) {
	p.sel = 0
	if p.cursor < len(p.matches) {
		p.sel = c.events.at(int(p.matches[p.cursor])).seq
	}
}

func (p *eventsPane) scroll() {
	n := p.visible()
	if p.cursor < p.offset {
		p.offset = p.cursor
	} else if p.cursor >= p.offset+n {
		p.offset = p.cursor - n + 1
	}
	p.offset = clamp(p.offset, 0, max(len(p.matches)-n, 0))
}

func (p *eventsPane) move(c *shared, d int) {
	if len(p.matches) == 0 {
		return
	}
	p.cursor = clamp(p.cursor+d, 0, len(p.matches)-1)
	p.remember(c)
	p.scroll()
}

func (p *eventsPane) selected(c *shared) *evRow {
	if p.cursor >= len(p.matches) {
		return nil
	}
	return c.events.at(int(p.matches[p.cursor]))
}

func (p *eventsPane) selectedPID(c *shared) runtime.PID {
	if e := p.selected(c); e != nil {
		return e.pid
	}
	return runtime.PID{}
}

func (p *eventsPane) key(m *model, k tea.KeyPressMsg) tea.Cmd {
	keys, c := &m.keys, &m.sh
	switch {
	case key.Matches(k, keys.Up):
		p.move(c, -1)
	case key.Matches(k, keys.Down):
		p.move(c, 1)
	case key.Matches(k, keys.PageUp):
		p.move(c, -p.visible())
	case key.Matches(k, keys.PageDown):
		p.move(c, p.visible())
	case key.Matches(k, keys.Home):
		p.move(c, -len(p.matches))
	case key.Matches(k, keys.End):
		p.move(c, len(p.matches))
	case key.Matches(k, keys.Filter):
		p.filtering = true
	case key.Matches(k, keys.Back):
		if p.filter.String() != "" {
			p.filter.set("")
			p.refresh(c)
		}
	case key.Matches(k, keys.Open):
		if e := p.selected(c); e != nil {
			m.push(eventDialog(e))
		}
	}
	return nil
}

func eventDialog(e *evRow) *textDialog {
	var b strings.Builder
	fmt.Fprintf(&b, "time    %s\n", e.at.Format("2006-01-02 15:04:05.000"))
	fmt.Fprintf(&b, "kind    %s (%s)\n", e.title, e.kind)
	fmt.Fprintf(&b, "process %v\n", e.pid)
	if !e.other.IsZero() {
		fmt.Fprintf(&b, "other   %v\n", e.other)
	}
	b.WriteString("\n" + e.summary + "\n")
	if e.detail != "" {
		b.WriteString("\n" + e.detail)
	}
	return &textDialog{name: "Event #" + strconv.FormatUint(e.seq, 10), text: b.String()}
}

func (p *eventsPane) click(m *model, y int) tea.Cmd {
	i := p.offset + y - 1
	if y < 1 || i >= len(p.matches) {
		return nil
	}
	if i == p.cursor {
		if e := p.selected(&m.sh); e != nil {
			m.push(eventDialog(e))
		}
		return nil
	}
	p.move(&m.sh, i-p.cursor)
	return nil
}

// Render draws the title and the visible events.
func (p *eventsPane) Render(c *shared) []string {
	st := c.st
	lines := make([]string, 0, p.h)
	if p.filtering {
		lines = append(lines, p.filter.view(st, p.w/2, true)+st.Dim.Render(" "+commas(int64(len(p.matches)))+" match · enter keeps · esc clears"))
	} else {
		t := st.Heading.Render("Events") + " " + commas(int64(c.events.len())) + st.Dim.Render(" kept of "+commas(int64(len(c.events.rows))))
		lost := st.Dim.Render(" · lost 0")
		if c.lost > 0 {
			lost = st.Warn.Render(" · lost " + commas(int64(c.lost)))
		}
		t += lost
		if f := p.filter.String(); f != "" {
			t += st.Dim.Render(" · filter ") + st.Accent.Render(strconv.Quote(f)) + " " + commas(int64(len(p.matches))) + st.Dim.Render(" match")
		}
		if c.paused {
			t += st.Warn.Render(" · paused")
		}
		lines = append(lines, fit(t, p.w))
	}
	if len(p.matches) == 0 {
		lines = append(lines, st.Dim.Render("  no events yet: crashes, supervisor reports, code changes and traces appear here"))
		return block(lines, p.w, p.h)
	}
	n := p.visible()
	const kindW = 10
	for i := p.offset; i < min(len(p.matches), p.offset+n); i++ {
		e := c.events.at(int(p.matches[i]))
		text := fit(e.at.Format("15:04:05.000")+" "+cell(e.title, kindW)+" "+e.summary, p.w)
		switch {
		case i == p.cursor:
			text = st.Selected.Render(text)
		case e.crash:
			text = st.Bad.Render(text)
		case e.kind == runtime.EventSupervisor:
			text = st.Warn.Render(text)
		case e.kind == runtime.EventCodeChange:
			text = st.Accent.Render(text)
		}
		lines = append(lines, text)
	}
	return block(lines, p.w, p.h)
}
