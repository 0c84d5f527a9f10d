package ui

import (
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"observer/internal/runtime"
)

// procsPane is the process table. It holds one page of rows around the
// view; the probe ranks the node and the pane keeps the selection on its
// PID, the selected row staying on its screen line while the order changes.
type procsPane struct {
	w, h int

	page      procPage
	sort      sortKey
	asc       bool
	filter    lineInput
	filtering bool

	cursor int // rank of the selected row
	offset int // rank of the first visible row
	sel    runtime.PID
}

func (p *procsPane) init() {
	p.filter.prompt = "/"
	p.asc = p.sort.defaultAsc()
}

// SetSize sets the pane's size in cells.
func (p *procsPane) SetSize(w, h int) { p.w, p.h = w, h }

// visible is the number of table rows on screen.
func (p *procsPane) visible() int { return max(p.h-2, 1) }

func (p *procsPane) fill(q *query) {
	q.sort, q.asc = p.sort, p.asc
	q.filter = strings.ToLower(strings.TrimSpace(p.filter.String()))
	q.offset, q.rows = p.offset, p.visible()
	q.sel, q.selRow = p.sel, p.cursor-p.offset
}

func (p *procsPane) setPage(pg procPage) {
	p.page = pg
	if pg.sel == p.sel {
		p.offset = pg.offset
		if pg.selRank >= 0 {
			p.cursor = pg.selRank
		}
	} else {
		// The selection moved while this page was being taken: it stays
		// where the user put it, found by PID if the page holds it.
		for i := range pg.rows {
			if pg.rows[i].pid == p.sel {
				p.cursor = pg.first + i
				break
			}
		}
		p.offset = clamp(p.offset, 0, max(pg.total-p.visible(), 0))
		if p.cursor < p.offset {
			p.offset = p.cursor
		} else if p.cursor >= p.offset+p.visible() {
			p.offset = p.cursor - p.visible() + 1
		}
	}
	p.cursor = clamp(p.cursor, p.offset, p.offset+p.visible()-1)
	p.cursor = clamp(p.cursor, 0, max(pg.total-1, 0))
	if r := p.rowAt(p.cursor); r != nil {
		p.sel = r.pid
	}
}

// rowAt returns the row of a rank if the page holds it.
func (p *procsPane) rowAt(rank int) *procRow {
	i := rank - p.page.first
	if i < 0 || i >= len(p.page.rows) {
		return nil
	}
	return &p.page.rows[i]
}

func (p *procsPane) selectedRow() *procRow {
	if r := p.rowAt(p.cursor); r != nil && r.pid == p.sel {
		return r
	}
	return nil
}

// filterChanged restarts the table from the top for a new filter.
func (p *procsPane) filterChanged() {
	p.cursor, p.offset = 0, 0
	p.sel = runtime.PID{}
}

// move moves the selection by d rows, scrolling as needed.
func (p *procsPane) move(m *model, d int) tea.Cmd {
	total := p.page.total
	if total == 0 {
		return nil
	}
	p.cursor = clamp(p.cursor+d, 0, total-1)
	rows := p.visible()
	if p.cursor < p.offset {
		p.offset = p.cursor
	} else if p.cursor >= p.offset+rows {
		p.offset = p.cursor - rows + 1
	}
	p.sel = runtime.PID{}
	if r := p.rowAt(p.cursor); r != nil {
		p.sel = r.pid
	}
	return m.snapshotCmd(true)
}

func (p *procsPane) setSort(m *model, k sortKey, asc bool) tea.Cmd {
	p.sort, p.asc = k, asc
	m.gen++
	return m.snapshotCmd(true)
}

func (p *procsPane) key(m *model, k tea.KeyPressMsg) tea.Cmd {
	keys := &m.keys
	rows := p.visible()
	switch {
	case key.Matches(k, keys.Up):
		return p.move(m, -1)
	case key.Matches(k, keys.Down):
		return p.move(m, 1)
	case key.Matches(k, keys.PageUp):
		return p.move(m, -rows)
	case key.Matches(k, keys.PageDown):
		return p.move(m, rows)
	case key.Matches(k, keys.Home):
		return p.move(m, -p.page.total)
	case key.Matches(k, keys.End):
		return p.move(m, p.page.total)
	case key.Matches(k, keys.Open):
		if r := p.selectedRow(); r != nil {
			return m.openDetail(r.pid)
		}
	case key.Matches(k, keys.Filter):
		p.filtering = true
	case key.Matches(k, keys.Back):
		if p.filter.String() != "" {
			p.filter.set("")
			p.filterChanged()
			m.gen++
			return m.snapshotCmd(true)
		}
	case key.Matches(k, keys.Sort):
		next := (p.sort + 1) % numSorts
		return p.setSort(m, next, next.defaultAsc())
	case key.Matches(k, keys.Reverse):
		return p.setSort(m, p.sort, !p.asc)
	}
	return nil
}

// click selects a row; a click on the selected row opens it, and a click
// on a column header sorts by that column.
func (p *procsPane) click(m *model, y int) tea.Cmd {
	switch {
	case y == 1:
		return nil // header clicks are resolved by column in clickHeader
	case y >= 2:
		rank := p.offset + y - 2
		if rank >= p.page.total {
			return nil
		}
		if rank == p.cursor && p.selectedRow() != nil {
			return m.openDetail(p.sel)
		}
		return p.move(m, rank-p.cursor)
	}
	return nil
}

// clickHeader sorts by the column under x.
func (p *procsPane) clickHeader(m *model, x int) tea.Cmd {
	for _, c := range p.columns() {
		if x >= c.x0 && x < c.x0+c.w && c.sort >= 0 {
			k := sortKey(c.sort)
			if k == p.sort {
				return p.setSort(m, k, !p.asc)
			}
			return p.setSort(m, k, k.defaultAsc())
		}
	}
	return nil
}

// column is one column of the table as laid out for the pane's width.
type column struct {
	title string
	w, x0 int
	right bool
	sort  int // sortKey, or -1 when the column does not sort
}

func (p *procsPane) columns() []column {
	cols := []column{
		{title: "PID", w: 12, sort: -1},
		{title: "NAME", sort: int(sortName)},
		{title: "MODULE", sort: -1},
		{title: "STATUS", w: 7, sort: -1},
		{title: "MQ", w: 6, right: true, sort: int(sortMailbox)},
		{title: "MSG/S", w: 6, right: true, sort: int(sortRate)},
	}
	wide := p.w >= 120
	if wide {
		cols = append(cols,
			column{title: "IN", w: 10, right: true, sort: -1},
			column{title: "OUT", w: 10, right: true, sort: -1})
	}
	cols = append(cols,
		column{title: "HANDLER", w: 7, right: true, sort: int(sortHandler)},
		column{title: "RST", w: 3, right: true, sort: int(sortRestarts)},
		column{title: "AGE", w: 6, right: true, sort: int(sortAge)})
	fixed := len(cols) - 1 // one space between columns
	for _, c := range cols {
		fixed += c.w
	}
	flex := max(p.w-fixed, 8)
	name := min(max(flex*55/100, 4), 40)
	cols[1].w, cols[2].w = name, max(flex-name, 4)
	x := 0
	for i := range cols {
		cols[i].x0 = x
		x += cols[i].w + 1
	}
	return cols
}

var statusShort = [...]string{"waiting", "running", "susp", "hibern", "exiting", "zombie"}

// Render draws the title, the header and the visible rows only.
func (p *procsPane) Render(c *shared) []string {
	st := c.st
	lines := make([]string, 0, p.h)
	lines = append(lines, p.title(c))
	cols := p.columns()
	var hb strings.Builder
	for i, col := range cols {
		if i > 0 {
			hb.WriteByte(' ')
		}
		t := col.title
		if col.sort == int(p.sort) {
			if p.asc {
				t += "▲"
			} else {
				t += "▼"
			}
		}
		if col.right {
			hb.WriteString(cellRight(t, col.w))
		} else {
			hb.WriteString(cell(t, col.w))
		}
	}
	lines = append(lines, st.Header.Render(fit(hb.String(), p.w)))
	rows := p.visible()
	var b strings.Builder
	for i := range rows {
		rank := p.offset + i
		if rank >= p.page.total {
			break
		}
		r := p.rowAt(rank)
		if r == nil {
			lines = append(lines, st.Dim.Render(cell("  …", p.w)))
			continue
		}
		lines = append(lines, p.row(c, &b, cols, r, rank == p.cursor && r.pid == p.sel))
	}
	if p.page.valid && p.page.total == 0 {
		msg := "no processes"
		if p.filter.String() != "" {
			msg = "no process matches " + strconv.Quote(p.filter.String())
		}
		lines = append(lines, st.Dim.Render("  "+msg))
	}
	return block(lines, p.w, p.h)
}

func (p *procsPane) title(c *shared) string {
	st := c.st
	if p.filtering {
		return p.filter.view(st, p.w/2, true) + st.Dim.Render(" "+commas(int64(p.page.total))+" match · enter keeps · esc clears")
	}
	var b strings.Builder
	b.WriteString(st.Heading.Render("Processes"))
	b.WriteString(" " + st.Value.Render(commas(int64(c.stats.Processes))))
	dir := "▼"
	if p.asc {
		dir = "▲"
	}
	b.WriteString(st.Dim.Render(" · sorted by ") + p.sort.String() + " " + dir)
	if f := p.filter.String(); f != "" {
		b.WriteString(st.Dim.Render(" · filter ") + st.Accent.Render(strconv.Quote(f)) + " " + commas(int64(p.page.total)) + st.Dim.Render(" match"))
	}
	if p.page.valid && p.page.total > 0 {
		b.WriteString(st.Dim.Render(" · " + strconv.Itoa(p.cursor+1) + "/" + commas(int64(p.page.total))))
	}
	if p.page.scanned {
		// This order needs every process copied; say what that costs.
		b.WriteString(st.Dim.Render(" · full scan " + dur(p.page.scanTook) + " each second"))
	}
	return fit(b.String(), p.w)
}

func (p *procsPane) row(c *shared, b *strings.Builder, cols []column, r *procRow, selected bool) string {
	st := c.st
	b.Reset()
	status := "?"
	if int(r.status) < len(statusShort) {
		status = statusShort[r.status]
	}
	name := r.name
	if r.tracing {
		name = "⚑ " + name
	}
	age := "–"
	if !r.started.IsZero() {
		age = dur(c.now.Sub(r.started))
	}
	handler := "0"
	if r.handler > 0 {
		handler = dur(r.handler)
	}
	restarts := ""
	if r.restarts > 0 {
		restarts = strconv.Itoa(r.restarts)
	}
	for i, col := range cols {
		if i > 0 {
			b.WriteByte(' ')
		}
		var v string
		switch col.title {
		case "PID":
			v = r.pid.String()
		case "NAME":
			v = name
		case "MODULE":
			v = r.module
		case "STATUS":
			v = status
		case "MQ":
			v = commas(int64(r.mq))
		case "MSG/S":
			v = rate(r.rate)
		case "IN":
			v = commas(int64(r.in))
		case "OUT":
			v = commas(int64(r.out))
		case "HANDLER":
			v = handler
		case "RST":
			v = restarts
		case "AGE":
			v = age
		}
		if col.right {
			b.WriteString(cellRight(v, col.w))
		} else {
			b.WriteString(cell(oneLine(v), col.w))
		}
	}
	text := fit(b.String(), p.w)
	if selected {
		return st.Selected.Render(text)
	}
	var style *lipgloss.Style
	switch {
	case r.status == runtime.StatusZombie || r.status == runtime.StatusExiting:
		style = &st.Bad
	case r.mq >= 10_000:
		style = &st.Bad
	case r.mq >= 1_000 || r.status == runtime.StatusSuspended || r.restarts > 0:
		style = &st.Warn
	}
	if style != nil {
		return style.Render(text)
	}
	return text
}
