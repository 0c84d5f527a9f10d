package ui

import (
	"fmt"
	"math"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"observer/internal/runtime"
	"observer/internal/runtime/sys"
	"observer/internal/ui/styles"
)

// shared is the state every pane draws from: styles, the clock of the
// latest frame, and the latest data. Update writes it; Render only reads.
type shared struct {
	st     *styles.Styles
	now    time.Time
	paused bool

	stats   runtime.NodeStats
	msgRate float64 // runtime messages per second
	took    time.Duration

	sys     sysSample
	tel     TelecomView
	telRate telRates
	hist    history

	tree   []SupervisorView
	events evRing
	lost   uint64
	frozen uint64 // newest event shown while paused; 0 when live
}

// telRates are the per-second rates derived from two Telecom readings.
type telRates struct {
	valid                   bool
	routed, failed, dropped float64
	charges, idempotent     float64
}

// Messages the model sends itself.
type (
	tickMsg       struct{ at time.Time }
	sampleTickMsg struct{ at time.Time }
	sampleMsg     struct {
		sys sysSample
		tel TelecomView
	}
	stateMsg struct {
		pid  runtime.PID
		text string
		err  error
	}
	actionMsg struct {
		text    string
		err     error
		refresh bool // the action changed what the table shows
	}
	paletteMsg struct {
		line, out string
		err       error
	}
	closedMsg struct{}
)

// sampleEvery is the cadence of the system sample and of the charts.
const sampleEvery = time.Second

// stateEvery is how often an open process's state is re-read.
const stateEvery = 2 * time.Second

// stateTimeout bounds sys:get_state; a busy process shows "timeout" rather
// than holding anything up.
const stateTimeout = 500 * time.Millisecond

// model is the root model: it owns all state and routes every message to
// the pane or dialog it concerns.
type model struct {
	src   Source
	node  *runtime.Node
	opts  Options
	probe *probe
	acts  Actions
	keys  keyMap
	st    styles.Styles
	dark  bool
	ticks bool // false when a caller drives time itself (RenderFrame, tests)

	width, height int
	view          viewID

	sh shared

	seq, gen   uint64
	inFlight   bool
	pending    bool // a refresh was asked for while one was in flight
	wantFull   bool // the next snapshot must be complete even while paused
	lastStart  time.Time
	sampling   bool
	msgMarkN   uint64
	msgMarkAt  time.Time
	telPrev    TelecomView
	telPrevAt  time.Time
	stateBusy  bool
	stateAt    time.Time
	statusText string
	statusErr  bool
	statusAt   time.Time

	overview overviewPane
	apps     appsPane
	procs    procsPane
	detail   detailPane
	ledger   ledgerPane
	tables   tablesPane
	events   eventsPane

	dialogs []dialog
}

// New builds the UI's root model over src. It subscribes to the node's
// events at once, so nothing that happens from now on is missed; Run
// closes the subscription when the program ends.
func New(src Source, opts Options) tea.Model {
	m := newModel(src, opts)
	m.ticks = true
	return m
}

func newModel(src Source, opts Options) *model {
	opts = opts.withDefaults()
	acts := src.Actions()
	m := &model{
		src:   src,
		node:  src.Node(),
		opts:  opts,
		probe: newProbe(src),
		acts:  acts,
		keys:  newKeyMap(opts.ReadOnly, acts),
		dark:  opts.Theme != ThemeLight,
	}
	if v, err := parseView(opts.View); err == nil {
		m.view = v
	}
	m.sh.events = newEvRing(opts.EventBuffer)
	m.sh.now = m.probe.env.now()
	m.procs.init()
	m.apps.init()
	m.restyle()
	return m
}

// restyle rebuilds the styles after the theme or background changed.
func (m *model) restyle() {
	p := styles.Dark
	switch {
	case m.opts.NoColor:
		p = styles.Mono
	case m.opts.Theme == ThemeHighContrast:
		p = styles.HighContrast
	case m.opts.Theme == ThemeLight, m.opts.Theme == ThemeAuto && !m.dark:
		p = styles.Light
	}
	m.st = styles.New(p)
	m.sh.st = &m.st
}

// Init starts the clocks and takes the first snapshot and sample.
func (m *model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.snapshotCmd(true), m.sampleCmd()}
	if m.ticks {
		cmds = append(cmds, m.tick(), m.sampleTick())
	}
	if m.opts.Theme == ThemeAuto && !m.opts.NoColor {
		cmds = append(cmds, tea.RequestBackgroundColor)
	}
	return tea.Batch(cmds...)
}

func (m *model) tick() tea.Cmd {
	return tea.Tick(m.opts.Refresh, func(t time.Time) tea.Msg { return tickMsg{t} })
}

func (m *model) sampleTick() tea.Cmd {
	return tea.Tick(sampleEvery, func(t time.Time) tea.Msg { return sampleTickMsg{t} })
}

// Update routes one message.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, m.snapshotCmd(true)
	case tea.BackgroundColorMsg:
		if m.opts.Theme == ThemeAuto {
			m.dark = msg.IsDark()
			m.restyle()
		}
	case tickMsg:
		m.advance(msg.at)
		cmds := []tea.Cmd{m.snapshotCmd(false), m.stateCmd(false)}
		if m.ticks {
			cmds = append(cmds, m.tick())
		}
		return m, tea.Batch(cmds...)
	case sampleTickMsg:
		m.advance(msg.at)
		cmds := []tea.Cmd{m.sampleCmd()}
		if m.ticks {
			cmds = append(cmds, m.sampleTick())
		}
		return m, tea.Batch(cmds...)
	case frame:
		return m, m.applyFrame(msg)
	case sampleMsg:
		m.applySample(msg)
	case stateMsg:
		m.stateBusy = false
		m.detail.setState(msg)
	case actionMsg:
		m.setStatus(msg.text, msg.err)
		if msg.refresh {
			return m, m.snapshotCmd(true)
		}
	case modulesMsg:
		if d, ok := m.topDialog().(*modulesDialog); ok {
			d.setModules(msg)
		}
	case moduleUpgradeMsg:
		return m, m.moduleUpgraded(msg)
	case paletteMsg:
		if p, ok := m.topDialog().(*paletteDialog); ok {
			p.result(msg)
		} else {
			m.setStatus(msg.out, msg.err)
		}
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	case tea.PasteMsg:
		if in := m.activeInput(); in != nil {
			in.insert(msg.Content)
			return m, m.inputChanged()
		}
	case tea.MouseClickMsg:
		return m, m.handleClick(msg.Mouse())
	case tea.MouseWheelMsg:
		return m, m.handleWheel(msg.Mouse())
	}
	return m, nil
}

// advance moves the UI's clock; frames and ticks both carry time.
func (m *model) advance(t time.Time) {
	if t.After(m.sh.now) {
		m.sh.now = t
	}
}

func (m *model) resize(w, h int) {
	m.width, m.height = w, h
	bw, bh := w, max(h-2, 0)
	m.overview.SetSize(bw, bh)
	m.apps.SetSize(bw, bh)
	m.procs.SetSize(bw, bh)
	m.detail.SetSize(bw, bh)
	m.ledger.SetSize(bw, bh)
	m.tables.SetSize(bw, bh)
	m.events.SetSize(bw, bh)
}

// query describes the snapshot the current screen needs.
func (m *model) query() query {
	m.seq++
	q := query{seq: m.seq, gen: m.gen, eventsOnly: m.sh.paused && !m.wantFull}
	switch {
	case m.detail.open:
		q.detail = m.detail.pid
	case m.view == viewProcs:
		q.procs = true
		m.procs.fill(&q)
	}
	return q
}

// snapshotCmd starts a snapshot unless one is running. Without force it
// also waits for the refresh interval, stretched to four times the last
// snapshot's cost, so that a huge node cannot take more than a fifth of a
// core for the display.
func (m *model) snapshotCmd(force bool) tea.Cmd {
	if m.inFlight {
		m.pending = m.pending || force
		return nil
	}
	gap := max(m.opts.Refresh, 4*m.sh.took)
	if !force && m.sh.now.Sub(m.lastStart) < gap {
		return nil
	}
	if force {
		m.wantFull = true
	}
	q := m.query()
	m.wantFull = false
	m.inFlight = true
	m.lastStart = m.sh.now
	p := m.probe
	return func() tea.Msg { return p.snapshot(q) }
}

func (m *model) sampleCmd() tea.Cmd {
	if m.sampling {
		return nil
	}
	m.sampling = true
	env, src := m.probe.env, m.src
	return func() tea.Msg { return sampleMsg{sys: env.system(), tel: src.Telecom()} }
}

// stateCmd re-reads the open process's state, at most every stateEvery.
func (m *model) stateCmd(force bool) tea.Cmd {
	if !m.detail.open || m.stateBusy || m.sh.paused && !force {
		return nil
	}
	if !force && m.sh.now.Sub(m.stateAt) < stateEvery {
		return nil
	}
	m.stateBusy = true
	m.stateAt = m.sh.now
	pid, p := m.detail.pid, m.probe
	return func() tea.Msg {
		text, err := p.stateOf(pid, stateTimeout)
		return stateMsg{pid: pid, text: text, err: err}
	}
}

func (m *model) applyFrame(f frame) tea.Cmd {
	m.inFlight = false
	m.sh.took = f.took
	m.advance(f.at)
	for _, e := range f.events {
		m.sh.events.push(e)
	}
	m.sh.lost = f.lost
	if f.partial {
		return m.followUp()
	}
	m.sh.stats = f.stats
	if d := f.at.Sub(m.msgMarkAt); m.msgMarkAt.IsZero() || d >= time.Second {
		if !m.msgMarkAt.IsZero() && f.stats.Messages >= m.msgMarkN {
			m.sh.msgRate = float64(f.stats.Messages-m.msgMarkN) / d.Seconds()
		}
		m.msgMarkN, m.msgMarkAt = f.stats.Messages, f.at
	}
	m.sh.tree = f.tree
	m.apps.setTree(f.tree, f.layout, f.flashes, m.sh.now)
	if f.procs.valid {
		if f.gen == m.gen {
			old := m.procs.page.rows
			m.procs.setPage(f.procs)
			m.probe.recycle(old)
		} else {
			m.pending = true
		}
	}
	if f.detail != nil && m.detail.open && f.detail.pid == m.detail.pid {
		m.detail.setData(f.detail)
	}
	m.events.refresh(&m.sh)
	return m.followUp()
}

// followUp starts the snapshot that was asked for while one was running.
func (m *model) followUp() tea.Cmd {
	if !m.pending {
		return nil
	}
	m.pending = false
	return m.snapshotCmd(true)
}

func (m *model) applySample(s sampleMsg) {
	m.sampling = false
	if m.sh.paused {
		return
	}
	m.sh.sys = s.sys
	m.sh.tel = s.tel
	m.tables.nTrunks = len(s.tel.Trunks)
	at := s.sys.at
	nan := math.NaN()
	r := telRates{routed: nan, failed: nan, dropped: nan, charges: nan, idempotent: nan}
	if dt := at.Sub(m.telPrevAt).Seconds(); !m.telPrevAt.IsZero() && dt > 0 {
		d := func(now, prev uint64) float64 {
			if now < prev {
				return 0
			}
			return float64(now-prev) / dt
		}
		r = telRates{
			valid:      true,
			routed:     d(s.tel.Routing.Routed, m.telPrev.Routing.Routed),
			failed:     d(s.tel.Routing.Failed, m.telPrev.Routing.Failed),
			dropped:    d(s.tel.Routing.Dropped, m.telPrev.Routing.Dropped),
			charges:    d(s.tel.Ledger.Charges, m.telPrev.Ledger.Charges),
			idempotent: d(s.tel.Ledger.IdempotentHits, m.telPrev.Ledger.IdempotentHits),
		}
	}
	m.telPrev, m.telPrevAt = s.tel, at
	m.sh.telRate = r
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	m.sh.hist.add(histPoint{
		at:      at,
		routed:  r.routed,
		failed:  r.failed,
		dropped: r.dropped,
		p50:     ms(s.tel.Routing.P50),
		p99:     ms(s.tel.Routing.P99),
		p999:    ms(s.tel.Routing.P999),
		charges: r.charges,
		heap:    float64(s.sys.heapLive),
		rss:     float64(max(s.sys.procRSS, s.sys.goTotal)),
		msgs:    m.sh.msgRate,
	})
}

func (m *model) setStatus(text string, err error) {
	m.statusErr = err != nil
	if err != nil {
		if text != "" {
			text += ": "
		}
		text += err.Error()
	}
	m.statusText = text
	m.statusAt = m.sh.now
}

// statusFor is how long a status message stays in the footer.
const statusFor = 5 * time.Second

// bodyTop is the screen row where panes start, below the tab bar.
const bodyTop = 1

// setView switches views, closing a process's detail.
func (m *model) setView(v viewID) tea.Cmd {
	if v == m.view && !m.detail.open {
		return nil
	}
	m.view = v
	m.detail.close()
	m.gen++
	return m.snapshotCmd(true)
}

// selected is the process the process keys act on in the current screen.
func (m *model) selected() (runtime.PID, bool) {
	switch {
	case m.detail.open:
		return m.detail.pid, m.detail.tracing()
	case m.view == viewProcs:
		if r := m.procs.selectedRow(); r != nil {
			return r.pid, r.tracing
		}
	case m.view == viewApps:
		return m.apps.selectedPID(), false
	case m.view == viewEvents:
		return m.events.selectedPID(&m.sh), false
	}
	return runtime.PID{}, false
}

// openDetail shows one process; from another process's detail it is pushed
// so that esc walks back.
func (m *model) openDetail(pid runtime.PID) tea.Cmd {
	if pid.IsZero() {
		return nil
	}
	m.detail.show(pid)
	m.stateBusy = false
	return tea.Batch(m.snapshotCmd(true), m.stateCmd(true))
}

func (m *model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	if len(m.dialogs) > 0 {
		return m.topDialog().update(m, k)
	}
	if k.String() == "ctrl+c" {
		return m.quit()
	}
	if in := m.activeInput(); in != nil {
		switch k.String() {
		case "enter":
			m.endInput(true)
			return nil
		case "esc":
			m.endInput(false)
			return m.inputChanged()
		case "up", "down", "pgup", "pgdown":
			// Moving through the results while typing.
		default:
			if in.key(k) {
				return m.inputChanged()
			}
			return nil
		}
	}
	keys := &m.keys
	switch {
	case key.Matches(k, keys.Quit):
		return m.quit()
	case key.Matches(k, keys.Help):
		m.push(&helpDialog{})
		return nil
	case key.Matches(k, keys.Views):
		return m.setView(viewID(k.String()[0] - '1'))
	case key.Matches(k, keys.NextView):
		return m.setView((m.view + 1) % numViews)
	case key.Matches(k, keys.PrevView):
		return m.setView((m.view + numViews - 1) % numViews)
	case key.Matches(k, keys.Pause):
		m.sh.paused = !m.sh.paused
		if m.sh.paused {
			m.sh.frozen = m.newestSeq()
			m.setStatus("display paused; the system keeps running (p resumes)", nil)
			return nil
		}
		m.sh.frozen = 0
		m.setStatus("display resumed", nil)
		return m.snapshotCmd(true)
	case key.Matches(k, keys.Palette):
		m.push(newPaletteDialog())
		return nil
	case key.Matches(k, keys.Modules):
		m.push(newModulesDialog())
		return m.listModules()
	case key.Matches(k, keys.Chaos):
		return m.action(func() (string, error) { return m.acts.ToggleChaos() })
	case key.Matches(k, keys.LoadUp):
		return m.action(func() (string, error) { return m.acts.SetLoadRate(+1) })
	case key.Matches(k, keys.LoadDown):
		return m.action(func() (string, error) { return m.acts.SetLoadRate(-1) })
	case key.Matches(k, keys.Exit, keys.Kill, keys.Upgrade, keys.Trace):
		pid, tracing := m.selected()
		if pid.IsZero() {
			m.setStatus("", fmt.Errorf("no process selected"))
			return nil
		}
		switch {
		case key.Matches(k, keys.Exit):
			m.push(newExitDialog(pid))
			return nil
		case key.Matches(k, keys.Kill):
			return m.sendExit(pid, runtime.Kill)
		case key.Matches(k, keys.Upgrade):
			up := m.acts.Upgrade
			return m.action(func() (string, error) { return up(pid) })
		default:
			return m.trace(pid, !tracing)
		}
	}
	if m.detail.open {
		return m.detail.key(m, k)
	}
	switch m.view {
	case viewProcs:
		return m.procs.key(m, k)
	case viewApps:
		return m.apps.key(m, k)
	case viewEvents:
		return m.events.key(m, k)
	case viewTables:
		m.tables.key(&m.keys, k)
	case viewLedger:
		m.ledger.key(&m.keys, k)
	}
	return nil
}

func (m *model) quit() tea.Cmd {
	p := m.probe
	return tea.Batch(func() tea.Msg { p.env.close(); return closedMsg{} }, tea.Quit)
}

// action runs an Actions callback in a command and reports its outcome.
func (m *model) action(fn func() (string, error)) tea.Cmd {
	return func() tea.Msg {
		text, err := fn()
		return actionMsg{text: text, err: err, refresh: true}
	}
}

// sendExit sends an exit signal from outside any process (exit/2).
func (m *model) sendExit(pid runtime.PID, reason any) tea.Cmd {
	n := m.node
	return func() tea.Msg {
		n.Exit(pid, reason)
		return actionMsg{text: fmt.Sprintf("sent exit signal %s to %v", runtime.FormatReason(reason), pid), refresh: true}
	}
}

// trace switches sys tracing of a process, whose messages then appear in
// the Events view.
func (m *model) trace(pid runtime.PID, on bool) tea.Cmd {
	n := m.node
	return func() tea.Msg {
		err := sys.Trace(n, pid, on, time.Second)
		state := "off"
		if on {
			state = "on"
		}
		return actionMsg{text: fmt.Sprintf("tracing %s for %v", state, pid), err: err, refresh: true}
	}
}

func (m *model) push(d dialog) { m.dialogs = append(m.dialogs, d) }

func (m *model) pop() {
	if len(m.dialogs) > 0 {
		m.dialogs = m.dialogs[:len(m.dialogs)-1]
	}
}

func (m *model) topDialog() dialog {
	if len(m.dialogs) == 0 {
		return nil
	}
	return m.dialogs[len(m.dialogs)-1]
}

// activeInput is the text field receiving keys, if a filter is being typed.
func (m *model) activeInput() *lineInput {
	if m.detail.open {
		return nil
	}
	switch m.view {
	case viewProcs:
		if m.procs.filtering {
			return &m.procs.filter
		}
	case viewEvents:
		if m.events.filtering {
			return &m.events.filter
		}
	}
	return nil
}

// inputChanged applies a filter as it is typed.
func (m *model) inputChanged() tea.Cmd {
	switch m.view {
	case viewProcs:
		m.procs.filterChanged()
		m.gen++
		return m.snapshotCmd(true)
	case viewEvents:
		m.events.refresh(&m.sh)
	}
	return nil
}

// endInput closes the filter field, keeping (enter) or clearing (esc) it.
func (m *model) endInput(keep bool) {
	switch m.view {
	case viewProcs:
		m.procs.filtering = false
		if !keep {
			m.procs.filter.set("")
			m.procs.filterChanged()
		}
	case viewEvents:
		m.events.filtering = false
		if !keep {
			m.events.filter.set("")
		}
	}
}

func (m *model) newestSeq() uint64 {
	if m.sh.events.len() == 0 {
		return 0
	}
	return m.sh.events.at(0).seq
}

func (m *model) handleClick(ms tea.Mouse) tea.Cmd {
	if len(m.dialogs) > 0 || ms.Button != tea.MouseLeft {
		return nil
	}
	if ms.Y == 0 {
		if v, ok := m.tabAt(ms.X); ok {
			return m.setView(v)
		}
		return nil
	}
	y := ms.Y - bodyTop
	if y < 0 || y >= m.height-2 {
		return nil
	}
	if m.detail.open {
		return m.detail.click(m, y)
	}
	switch m.view {
	case viewProcs:
		if y == 1 {
			return m.procs.clickHeader(m, ms.X)
		}
		return m.procs.click(m, y)
	case viewApps:
		return m.apps.click(m, y)
	case viewEvents:
		return m.events.click(m, y)
	case viewTables:
		m.tables.click(y)
	}
	return nil
}

// wheelStep is how many rows one wheel notch scrolls.
const wheelStep = 3

func (m *model) handleWheel(ms tea.Mouse) tea.Cmd {
	if len(m.dialogs) > 0 {
		return nil
	}
	d := 0
	switch ms.Button {
	case tea.MouseWheelUp:
		d = -wheelStep
	case tea.MouseWheelDown:
		d = wheelStep
	default:
		return nil
	}
	if m.detail.open {
		m.detail.move(d)
		return nil
	}
	switch m.view {
	case viewProcs:
		return m.procs.move(m, d)
	case viewApps:
		m.apps.move(d)
	case viewEvents:
		m.events.move(&m.sh, d)
	case viewTables:
		m.tables.move(d)
	case viewLedger:
		m.ledger.move(d)
	}
	return nil
}
