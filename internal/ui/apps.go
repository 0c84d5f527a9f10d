package ui

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"observer/internal/runtime"
)

// flashFor is how long a restarted row stays highlighted.
const flashFor = 2 * time.Second

// timelineSpan is how far back the restart timeline reaches.
const timelineSpan = 60 * time.Second

// foldAbove is the child count above which a supervisor starts folded:
// a pool of thousands of sessions would bury the rest of the tree.
const foldAbove = 16

// treeRow is one visible line of the supervision tree.
type treeRow struct {
	sup    int // index into tree
	child  int // index into its Children, -1 for the supervisor itself
	depth  int
	prefix string // tree-drawing glyphs
}

// rowKey identifies a tree row across frames.
type rowKey struct {
	sup   runtime.PID
	child string // childKey, "" for the supervisor row
}

// appsPane is the live supervision tree, foldable, with each supervisor's
// restart budget and a timeline of its recent restarts.
type appsPane struct {
	w, h int

	tree   []SupervisorView
	layout treeLayout
	rows   []treeRow
	folded map[runtime.PID]bool

	cursor, offset int
	sel            rowKey

	flash    map[rowKey]time.Time        // highlighted until
	restarts map[runtime.PID][]time.Time // restart times seen, for the timeline
}

func (p *appsPane) init() {
	p.folded = make(map[runtime.PID]bool)
	p.flash = make(map[rowKey]time.Time)
	p.restarts = make(map[runtime.PID][]time.Time)
}

// SetSize sets the pane's size in cells.
func (p *appsPane) SetSize(w, h int) { p.w, p.h = w, h }

func (p *appsPane) timelineRows() int {
	if len(p.tree) == 0 {
		return 0
	}
	return min(len(p.tree), max((p.h-1)/3, 2)) + 1
}

func (p *appsPane) treeRows() int { return max(p.h-1-p.timelineRows(), 1) }

// setTree takes a new tree, records restarts for the timeline and the
// flashes, and rebuilds the visible rows around the selection.
func (p *appsPane) setTree(tree []SupervisorView, layout treeLayout, flashes []flashKey, now time.Time) {
	p.tree = tree
	p.layout = layout
	for _, f := range flashes {
		k := rowKey{sup: f.sup}
		if f.id != "" || !f.pid.IsZero() {
			c := ChildView{ID: f.id, PID: f.pid}
			k.child = childKey(&c)
		}
		p.flash[k] = now.Add(flashFor)
	}
	for k, until := range p.flash {
		if !until.After(now) {
			delete(p.flash, k)
		}
	}
	live := make(map[runtime.PID]bool, len(tree))
	for i := range tree {
		s := &tree[i]
		live[s.PID] = true
		if len(s.Restarts) > 0 {
			// The window's list is complete; older history is kept from before.
			h := p.restarts[s.PID]
			cut, _ := slices.BinarySearchFunc(h, s.Restarts[0], func(a, b time.Time) int { return a.Compare(b) })
			h = append(h[:cut:cut], s.Restarts...)
			old, _ := slices.BinarySearchFunc(h, now.Add(-timelineSpan), func(a, b time.Time) int { return a.Compare(b) })
			p.restarts[s.PID] = h[old:]
		}
	}
	for pid := range p.restarts {
		if !live[pid] {
			delete(p.restarts, pid)
		}
	}
	p.flatten()
}

// continuation turns a row's glyphs into those of the rows under it.
var continuation = strings.NewReplacer("├─ ", "│  ", "└─ ", "   ")

func (p *appsPane) isFolded(i int) bool {
	s := &p.tree[i]
	if f, ok := p.folded[s.PID]; ok {
		return f
	}
	return len(s.Children) > foldAbove
}

func (p *appsPane) flatten() {
	p.rows = p.rows[:0]
	seen := make([]bool, len(p.tree))
	var add func(i, depth int, prefix string)
	add = func(i, depth int, prefix string) {
		if seen[i] {
			return
		}
		seen[i] = true
		p.rows = append(p.rows, treeRow{sup: i, child: -1, depth: depth, prefix: prefix})
		if p.isFolded(i) {
			return
		}
		sub := make(map[int]int, len(p.layout.kids[i]))
		for _, k := range p.layout.kids[i] {
			sub[k.child] = k.sup
		}
		kids := p.tree[i].Children
		base := continuation.Replace(prefix)
		for j := range kids {
			glyph := "├─ "
			if j == len(kids)-1 {
				glyph = "└─ "
			}
			if k, ok := sub[j]; ok {
				add(k, depth+1, base+glyph)
				continue
			}
			p.rows = append(p.rows, treeRow{sup: i, child: j, depth: depth + 1, prefix: base + glyph})
		}
	}
	for _, r := range p.layout.roots {
		add(r, 0, "")
	}
	// Keep the selection on its row.
	found := false
	for i := range p.rows {
		if p.keyOf(&p.rows[i]) == p.sel {
			p.cursor, found = i, true
			break
		}
	}
	if !found {
		p.cursor = clamp(p.cursor, 0, max(len(p.rows)-1, 0))
		if len(p.rows) > 0 {
			p.sel = p.keyOf(&p.rows[p.cursor])
		}
	}
	p.scrollToCursor()
}

func (p *appsPane) keyOf(r *treeRow) rowKey {
	s := &p.tree[r.sup]
	if r.child < 0 {
		return rowKey{sup: s.PID}
	}
	return rowKey{sup: s.PID, child: childKey(&s.Children[r.child])}
}

func (p *appsPane) scrollToCursor() {
	n := p.treeRows()
	if p.cursor < p.offset {
		p.offset = p.cursor
	} else if p.cursor >= p.offset+n {
		p.offset = p.cursor - n + 1
	}
	p.offset = clamp(p.offset, 0, max(len(p.rows)-n, 0))
}

func (p *appsPane) move(d int) {
	if len(p.rows) == 0 {
		return
	}
	p.cursor = clamp(p.cursor+d, 0, len(p.rows)-1)
	p.sel = p.keyOf(&p.rows[p.cursor])
	p.scrollToCursor()
}

// selectedPID is the selected supervisor or child process.
func (p *appsPane) selectedPID() runtime.PID {
	if p.cursor >= len(p.rows) {
		return runtime.PID{}
	}
	r := &p.rows[p.cursor]
	if r.child < 0 {
		return p.tree[r.sup].PID
	}
	return p.tree[r.sup].Children[r.child].PID
}

func (p *appsPane) toggle() {
	if p.cursor >= len(p.rows) {
		return
	}
	r := &p.rows[p.cursor]
	if r.child >= 0 {
		return
	}
	pid := p.tree[r.sup].PID
	p.folded[pid] = !p.isFolded(r.sup)
	p.flatten()
}

func (p *appsPane) key(m *model, k tea.KeyPressMsg) tea.Cmd {
	keys := &m.keys
	switch {
	case key.Matches(k, keys.Up):
		p.move(-1)
	case key.Matches(k, keys.Down):
		p.move(1)
	case key.Matches(k, keys.PageUp):
		p.move(-p.treeRows())
	case key.Matches(k, keys.PageDown):
		p.move(p.treeRows())
	case key.Matches(k, keys.Home):
		p.move(-len(p.rows))
	case key.Matches(k, keys.End):
		p.move(len(p.rows))
	case key.Matches(k, keys.Fold):
		p.toggle()
	case key.Matches(k, keys.Open):
		// Enter folds a supervisor and opens a worker.
		if p.cursor < len(p.rows) && p.rows[p.cursor].child >= 0 {
			r := &p.rows[p.cursor]
			if _, nested := p.nestedSup(r); !nested {
				return m.openDetail(p.selectedPID())
			}
		}
		p.toggle()
	}
	return nil
}

func (p *appsPane) nestedSup(r *treeRow) (int, bool) {
	for _, k := range p.layout.kids[r.sup] {
		if k.child == r.child {
			return k.sup, true
		}
	}
	return 0, false
}

func (p *appsPane) click(m *model, y int) tea.Cmd {
	i := p.offset + y - 1
	if y < 1 || y > p.treeRows() || i >= len(p.rows) {
		return nil
	}
	if i == p.cursor {
		if p.rows[i].child < 0 {
			p.toggle()
			return nil
		}
		return m.openDetail(p.selectedPID())
	}
	p.move(i - p.cursor)
	return nil
}

// Render draws the title, the visible tree rows and the timelines.
func (p *appsPane) Render(c *shared) []string {
	st := c.st
	lines := make([]string, 0, p.h)
	children, inWindow := 0, 0
	for i := range p.tree {
		children += len(p.tree[i].Children)
		inWindow += p.windowCount(&p.tree[i], c.now)
	}
	title := st.Heading.Render("Applications") + st.Dim.Render(" · ") +
		strconv.Itoa(len(p.tree)) + st.Dim.Render(" supervisors · ") + commas(int64(children)) +
		st.Dim.Render(" children · ") + strconv.Itoa(inWindow) + st.Dim.Render(" restarts in their windows")
	lines = append(lines, fit(title, p.w))
	if len(p.tree) == 0 {
		lines = append(lines, st.Dim.Render("  no supervisors reported yet"))
		return block(lines, p.w, p.h)
	}
	n := p.treeRows()
	for i := p.offset; i < min(len(p.rows), p.offset+n); i++ {
		lines = append(lines, p.renderRow(c, &p.rows[i], i == p.cursor))
	}
	for len(lines) < 1+n {
		lines = append(lines, "")
	}
	lines = append(lines, p.timelines(c)...)
	return block(lines, p.w, p.h)
}

// windowCount is how many of s's restarts are still inside its intensity
// window at now: the window drains between frames too.
func (p *appsPane) windowCount(s *SupervisorView, now time.Time) int {
	n := 0
	for _, t := range s.Restarts {
		if s.Period <= 0 || now.Sub(t) < s.Period {
			n++
		}
	}
	return n
}

func (p *appsPane) renderRow(c *shared, r *treeRow, selected bool) string {
	st := c.st
	s := &p.tree[r.sup]
	var text string
	var k rowKey
	if r.child < 0 {
		k = rowKey{sup: s.PID}
		text = p.supText(c, r, s, selected)
	} else {
		ch := &s.Children[r.child]
		k = rowKey{sup: s.PID, child: childKey(ch)}
		text = p.childText(c, r, ch)
	}
	text = fit(text, p.w)
	switch {
	case selected:
		return st.Selected.Render(fit(ansi.Strip(text), p.w))
	case p.flash[k].After(c.now):
		return st.Flash.Render(fit(ansi.Strip(text), p.w))
	}
	return text
}

func (p *appsPane) supText(c *shared, r *treeRow, s *SupervisorView, selected bool) string {
	st := c.st
	mark := "▾ "
	if p.isFolded(r.sup) {
		mark = "▸ "
	}
	name := s.Name
	if name == "" {
		name = s.Module
	}
	used := p.windowCount(s, c.now)
	var b strings.Builder
	b.WriteString(r.prefix + mark)
	b.WriteString(st.Value.Render(oneLine(name)))
	b.WriteString(" " + s.PID.String() + " ")
	b.WriteString(st.Accent.Render(oneLine(orDash(s.Strategy))))
	b.WriteString("  " + p.gauge(c, used, s.Intensity, 10))
	b.WriteString(" " + strconv.Itoa(used) + "/" + strconv.Itoa(s.Intensity) + " in " + dur(s.Period))
	if used > 0 && s.Period > 0 {
		oldest := s.Restarts[len(s.Restarts)-used]
		b.WriteString(st.Dim.Render(" · drains in " + dur(oldest.Add(s.Period).Sub(c.now).Round(time.Second))))
	}
	if p.isFolded(r.sup) {
		b.WriteString(st.Dim.Render(" · " + commas(int64(len(s.Children))) + " children folded"))
	}
	if s.Version != "" {
		b.WriteString(st.Dim.Render(" · " + oneLine(s.Module+" "+s.Version)))
	}
	return b.String()
}

// gauge draws used/limit as a bar of w cells coloured by how close the
// supervisor is to giving up.
func (p *appsPane) gauge(c *shared, used, limit, w int) string {
	st := c.st
	filled := w
	if limit > 0 {
		filled = min(w, (used*w+limit-1)/limit)
	}
	style := st.Good
	switch {
	case limit <= 0 || used >= limit:
		style = st.Bad
	case used*2 >= limit:
		style = st.Warn
	}
	return style.Render(strings.Repeat("█", filled)) + st.GaugeEmpty.Render(strings.Repeat("░", w-filled))
}

func (p *appsPane) childText(c *shared, r *treeRow, ch *ChildView) string {
	st := c.st
	idW := max(min(p.w/4, 28), 10)
	var b strings.Builder
	b.WriteString(st.Dim.Render(r.prefix))
	id := ch.ID
	if id == "" {
		id = orDash(ch.Module)
	}
	b.WriteString(cell(id, max(idW-len([]rune(r.prefix)), 6)))
	pid := "undefined"
	if !ch.PID.IsZero() {
		pid = ch.PID.String()
	}
	b.WriteString(" " + cell(pid, 12) + " ")
	switch ch.Status {
	case "running":
		b.WriteString(st.Good.Render(cell(ch.Status, 10)))
	case "restarting":
		b.WriteString(st.Bad.Render(cell(ch.Status, 10)))
	default:
		b.WriteString(st.Warn.Render(cell(orDash(ch.Status), 10)))
	}
	b.WriteString(" " + cell(orDash(ch.Type), 10))
	restarts := "↻ " + strconv.Itoa(ch.Restarts)
	if ch.Restarts > 0 {
		b.WriteString(" " + st.Warn.Render(cell(restarts, 7)))
	} else {
		b.WriteString(" " + st.Dim.Render(cell(restarts, 7)))
	}
	if ch.LastExit != nil {
		b.WriteString(" last: " + oneLine(runtime.FormatReason(ch.LastExit)))
		if !ch.LastRestart.IsZero() {
			b.WriteString(st.Dim.Render(" (" + ago(c.now, ch.LastRestart) + ")"))
		}
	}
	return b.String()
}

// timelines draws each supervisor's restarts over the last minute, one
// cell per slice of time, with its intensity window shaded.
func (p *appsPane) timelines(c *shared) []string {
	st := c.st
	n := p.timelineRows()
	if n == 0 {
		return nil
	}
	nameW := min(max(p.w/5, 10), 24)
	tw := max(p.w-nameW-10, 10)
	slot := timelineSpan / time.Duration(tw)
	lines := []string{st.Heading.Render("Restart timeline") + st.Dim.Render(" · last "+dur(timelineSpan)+", newest right; ─ is the intensity window")}
	for i := 0; i < len(p.tree) && len(lines) < n; i++ {
		s := &p.tree[i]
		name := s.Name
		if name == "" {
			name = s.PID.String()
		}
		counts := make([]int, tw)
		for _, t := range p.restarts[s.PID] {
			age := c.now.Sub(t)
			if age < 0 || age >= timelineSpan {
				continue
			}
			counts[tw-1-int(age/slot)]++
		}
		var b strings.Builder
		for x, n := range counts {
			age := time.Duration(tw-1-x) * slot
			switch {
			case n >= 3:
				b.WriteString(st.Bad.Render("●"))
			case n > 0:
				b.WriteString(st.Warn.Render("•"))
			case s.Period > 0 && age < s.Period:
				b.WriteString(st.Accent.Render("─"))
			default:
				b.WriteString(st.Dim.Render("·"))
			}
		}
		total := len(p.restarts[s.PID])
		lines = append(lines, cell(name, nameW)+" "+b.String()+" "+st.Dim.Render(cellRight(strconv.Itoa(total), 4)))
	}
	return lines
}
