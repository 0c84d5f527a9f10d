package ui

import (
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"observer/internal/runtime"
)

// detailPane shows one process: every introspection field, its state as
// sys:get_state reads it, the head of its mailbox, the processes it is
// linked to or monitors (enter follows one), and its recent events.
type detailPane struct {
	w, h int

	open bool
	pid  runtime.PID
	back []runtime.PID // processes to return to with esc

	data     *detailData
	state    string
	stateErr error
	stateOK  bool

	cursor int // selected entry of data.related
}

// detailRelY is the pane row of the first related process: below the
// title, seven field rows, a blank line and the section heading.
const detailRelY = 1 + 7 + 1 + 1

// SetSize sets the pane's size in cells.
func (p *detailPane) SetSize(w, h int) { p.w, p.h = w, h }

// show opens pid; opening another process from a detail remembers the
// first so that esc returns to it.
func (p *detailPane) show(pid runtime.PID) {
	if p.open && pid != p.pid {
		p.back = append(p.back, p.pid)
	}
	p.open, p.pid = true, pid
	p.data, p.state, p.stateErr, p.stateOK = nil, "", nil, false
	p.cursor = 0
}

func (p *detailPane) close() {
	p.open = false
	p.back = nil
	p.data = nil
}

func (p *detailPane) setData(d *detailData) {
	p.data = d
	p.cursor = clamp(p.cursor, 0, max(len(d.related)-1, 0))
}

func (p *detailPane) setState(s stateMsg) {
	if s.pid != p.pid {
		return // a stale answer about a process no longer shown
	}
	p.state, p.stateErr, p.stateOK = s.text, s.err, true
}

func (p *detailPane) tracing() bool { return p.data != nil && p.data.info.Tracing }

func (p *detailPane) move(d int) {
	if p.data == nil {
		return
	}
	p.cursor = clamp(p.cursor+d, 0, max(len(p.data.related)-1, 0))
}

func (p *detailPane) key(m *model, k tea.KeyPressMsg) tea.Cmd {
	keys := &m.keys
	switch {
	case key.Matches(k, keys.Up):
		p.move(-1)
	case key.Matches(k, keys.Down):
		p.move(1)
	case key.Matches(k, keys.Open):
		if p.data != nil && p.cursor < len(p.data.related) {
			return m.openDetail(p.data.related[p.cursor].pid)
		}
	case key.Matches(k, keys.Back):
		if n := len(p.back); n > 0 {
			prev := p.back[n-1]
			p.back = p.back[:n-1]
			p.open = false // reopen without pushing
			m.detail.show(prev)
			m.stateBusy = false
			return tea.Batch(m.snapshotCmd(true), m.stateCmd(true))
		}
		p.close()
		return m.snapshotCmd(true)
	}
	return nil
}

func (p *detailPane) click(m *model, y int) tea.Cmd {
	if p.data == nil {
		return nil
	}
	i := y - detailRelY
	if i < 0 || i >= len(p.data.related) {
		return nil
	}
	if i == p.cursor {
		return m.openDetail(p.data.related[i].pid)
	}
	p.cursor = i
	return nil
}

// Render draws the process.
func (p *detailPane) Render(c *shared) []string {
	st := c.st
	d := p.data
	lines := make([]string, 0, p.h)
	head := st.Heading.Render("Process "+p.pid.String()) + " "
	if d == nil {
		lines = append(lines, fit(head+st.Dim.Render("reading…"), p.w))
		return block(lines, p.w, p.h)
	}
	in := &d.info
	if in.Name != "" {
		head += st.Value.Render(oneLine(in.Name)) + " "
	}
	if !d.alive {
		head += st.Bad.Render("exited: " + d.exitReason)
	} else {
		head += in.Status.String()
	}
	if in.Tracing {
		head += st.Warn.Render("  ⚑ tracing")
	}
	if n := len(p.back); n > 0 {
		head += st.Dim.Render("  (esc back to " + p.back[n-1].String() + ")")
	}
	lines = append(lines, fit(head, p.w))

	kv := func(k, v string) string { return st.Label.Render(cell(k, 10)) + " " + v }
	msgsIn := commas(int64(in.MessagesIn))
	if d.rate >= 0 {
		msgsIn += " (" + rate(d.rate) + "/s)"
	}
	restarts := strconv.Itoa(d.restarts)
	if d.lastExit != "" {
		restarts += " (last exit: " + oneLine(d.lastExit) + ")"
	}
	started := "–"
	if !in.Started.IsZero() {
		started = in.Started.Format("15:04:05") + " (" + dur(c.now.Sub(in.Started).Truncate(1e9)) + " ago)"
	}
	parent := "none"
	if !in.Parent.IsZero() {
		parent = in.Parent.String()
	}
	left := []string{
		kv("Behaviour", oneLine(orDash(in.Behaviour))),
		kv("Module", oneLine(orDash(strings.TrimSpace(in.Module+" "+in.Version)))),
		kv("Mailbox", commas(int64(in.MailboxLen))),
		kv("Msgs in", msgsIn),
		kv("Msgs out", commas(int64(in.MessagesOut))),
		kv("Handler", dur(in.HandlerTime)),
		kv("Restarts", restarts),
	}
	right := []string{
		kv("Parent", parent),
		kv("Started", started),
		kv("Trap exit", yesNo(in.TrapExit)),
		kv("Tracing", yesNo(in.Tracing)),
		kv("Links", strconv.Itoa(in.Links)),
		kv("Monitors", strconv.Itoa(in.Monitors)+" on it, "+strconv.Itoa(in.Watching)+" held"),
		kv("Sys stats", orDash(d.stats)),
	}
	half := (p.w - 2) / 2
	lines = append(lines, joinCols(2, block(left, half, len(left)), block(right, p.w-2-half, len(right)))...)
	lines = append(lines, "")

	rest := p.h - len(lines)
	if rest <= 0 {
		return block(lines, p.w, p.h)
	}
	topH := (rest + 1) / 2
	botH := rest - topH

	// Left: related processes (followable) above the mailbox head.
	var rel []string
	rel = append(rel, st.Heading.Render("Links & monitors")+st.Dim.Render(" (enter follows)"))
	if len(d.related) == 0 {
		rel = append(rel, st.Dim.Render("  none"))
	}
	for i, r := range d.related {
		text := cell(r.kind, 12) + " " + cell(r.pid.String(), 12) + " " + oneLine(r.label)
		if i == p.cursor {
			rel = append(rel, st.Selected.Render(fit("› "+text, half)))
		} else {
			rel = append(rel, "  "+text)
		}
	}
	mb := []string{st.Heading.Render("Mailbox head") + st.Dim.Render(" ("+strconv.Itoa(len(d.mailbox))+" of "+commas(int64(in.MailboxLen))+")")}
	if len(d.mailbox) == 0 {
		mb = append(mb, st.Dim.Render("  empty"))
	}
	for i, msg := range d.mailbox {
		mb = append(mb, st.Dim.Render(cellRight(strconv.Itoa(i+1), 3))+" "+msg)
	}

	// Right: state above the recent events.
	stateLines := []string{st.Heading.Render("State") + st.Dim.Render(" (sys:get_state)")}
	switch {
	case !p.stateOK:
		stateLines = append(stateLines, st.Dim.Render("  reading…"))
	case p.stateErr != nil:
		stateLines = append(stateLines, st.Warn.Render("  "+p.stateErr.Error()))
	default:
		stateLines = append(stateLines, wrap(p.state, p.w-2-half, botH+topH)...)
	}
	evs := []string{st.Heading.Render("Recent events")}
	for i := 0; i < c.events.len() && len(evs) < botH; i++ {
		e := c.events.at(i)
		if e.pid != p.pid && e.other != p.pid {
			continue
		}
		line := e.at.Format("15:04:05") + " " + e.title + " " + e.summary // sanitized when kept
		if e.crash {
			line = st.Bad.Render(line)
		}
		evs = append(evs, line)
	}
	if len(evs) == 1 {
		evs = append(evs, st.Dim.Render("  none kept"))
	}

	leftCol := append(block(rel, half, topH), block(mb, half, botH)...)
	rightCol := append(block(stateLines, p.w-2-half, topH), block(evs, p.w-2-half, botH)...)
	lines = append(lines, joinCols(2, leftCol, rightCol)...)
	return block(lines, p.w, p.h)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
