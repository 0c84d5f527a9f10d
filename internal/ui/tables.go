package ui

import (
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// tablesPane shows the trunks with their circuit breakers, then the
// routing table, which scrolls.
type tablesPane struct {
	w, h    int
	cursor  int // selected route
	offset  int
	nTrunks int // trunks in the latest sample, which place the routes
}

// SetSize sets the pane's size in cells.
func (p *tablesPane) SetSize(w, h int) { p.w, p.h = w, h }

func (p *tablesPane) move(d int) { p.cursor = max(p.cursor+d, 0) }

func (p *tablesPane) key(keys *keyMap, k tea.KeyPressMsg) {
	switch {
	case key.Matches(k, keys.Up):
		p.move(-1)
	case key.Matches(k, keys.Down):
		p.move(1)
	case key.Matches(k, keys.PageUp):
		p.move(-10)
	case key.Matches(k, keys.PageDown):
		p.move(10)
	case key.Matches(k, keys.Home):
		p.cursor = 0
	case key.Matches(k, keys.End):
		p.cursor = 1 << 30
	}
}

// click selects the route under the pointer.
func (p *tablesPane) click(y int) {
	if i := p.offset + y - p.routesY(); y >= p.routesY() && i >= 0 {
		p.cursor = i
	}
}

// trunkRows is the room given to trunk rows: all of them up to a third of the pane.
func (p *tablesPane) trunkRows(n int) int { return max(min(n, p.h/3), 1) }

// routesY is the pane row of the first route: below the trunks' title,
// header and rows, a blank line, and the routes' title and header.
func (p *tablesPane) routesY() int { return 2 + p.trunkRows(p.nTrunks) + 1 + 2 }

// Render draws both tables.
func (p *tablesPane) Render(c *shared) []string {
	st := c.st
	trunks := c.tel.Trunks
	lines := make([]string, 0, p.h)
	open := 0
	for _, t := range trunks {
		if t.State != "closed" {
			open++
		}
	}
	title := st.Heading.Render("Trunks") + st.Dim.Render(" · ") + strconv.Itoa(len(trunks))
	if open > 0 {
		title += st.Warn.Render(" · " + strconv.Itoa(open) + " not closed")
	}
	lines = append(lines, fit(title, p.w))
	hostW := max(min(p.w/5, 30), 8)
	nameW := max(min(p.w/7, 20), 8)
	numW, gaugeW, gap := 10, 10, " "
	if p.w < 100 {
		// Narrow: the percentage says what the gauge would.
		numW, gaugeW, gap = 9, 0, ""
	}
	lines = append(lines, st.Header.Render(fit(cell("NAME", nameW)+" "+cell("HOST", hostW)+" "+cell("BREAKER", 9)+" "+
		cellRight("FAIL", 6)+gap+cell("", gaugeW)+" "+cellRight("ATTEMPTS", numW)+" "+cellRight("FAILURES", numW)+" "+cellRight("REJECTED", numW), p.w)))
	tr := p.trunkRows(len(trunks))
	if len(trunks) == 0 {
		lines = append(lines, st.Dim.Render("  no trunks reported yet"))
	}
	for i, t := range trunks {
		if i == tr {
			break
		}
		state := cell(orDash(t.State), 9)
		switch t.State {
		case "closed":
			state = st.Good.Render(state)
		case "open":
			state = st.Bad.Render(state)
		default:
			state = st.Warn.Render(state)
		}
		filled := clamp(int(t.FailureRate*float64(gaugeW)+0.5), 0, gaugeW)
		gs := st.Good
		switch {
		case t.FailureRate >= 0.5:
			gs = st.Bad
		case t.FailureRate >= 0.1:
			gs = st.Warn
		}
		g := gs.Render(strings.Repeat("█", filled)) + st.GaugeEmpty.Render(strings.Repeat("░", gaugeW-filled))
		lines = append(lines, fit(cell(t.Name, nameW)+" "+cell(t.Host, hostW)+" "+state+" "+cellRight(pct(t.FailureRate), 6)+gap+g+" "+
			cellRight(commas(int64(t.Attempts)), numW)+" "+cellRight(commas(int64(t.Failures)), numW)+" "+cellRight(commas(int64(t.Rejected)), numW), p.w))
	}
	for len(lines) < 2+tr {
		lines = append(lines, "")
	}
	lines = append(lines, "")

	routes := c.tel.Routes
	lines = append(lines, fit(st.Heading.Render("Routing table")+st.Dim.Render(" · "+commas(int64(len(routes)))+" routes"), p.w))
	prefW := max(min(p.w/5, 20), 8)
	destW := max(min(p.w/4, 30), 10)
	lines = append(lines, st.Header.Render(fit(cell("PREFIX", prefW)+" "+cell("DESTINATION", destW)+" TRUNKS", p.w)))
	n := max(p.h-len(lines), 1)
	p.cursor = clamp(p.cursor, 0, max(len(routes)-1, 0))
	if p.cursor < p.offset {
		p.offset = p.cursor
	} else if p.cursor >= p.offset+n {
		p.offset = p.cursor - n + 1
	}
	if len(routes) == 0 {
		lines = append(lines, st.Dim.Render("  no routes reported yet"))
	}
	for i := p.offset; i < min(len(routes), p.offset+n); i++ {
		r := routes[i]
		text := fit(cell(r.Prefix, prefW)+" "+cell(r.Destination, destW)+" "+r.Trunks, p.w)
		if i == p.cursor {
			text = st.Selected.Render(text)
		}
		lines = append(lines, text)
	}
	return block(lines, p.w, p.h)
}
