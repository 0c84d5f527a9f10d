package ui

import (
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// The modules dialog (R key) lists every code module with its versions and
// the processes on each. Enter moves every process of a module to the
// version under the cursor, all or nothing, as a release upgrade does:
// OTP's release_handler rather than the r key's one-process canary.

// Messages of the modules dialog.
type (
	modulesMsg struct {
		mods []ModuleView
		err  error
	}
	moduleUpgradeMsg struct {
		module, version string
		rep             UpgradeReport
		err             error
	}
)

// listModules reads the module list in a command: it may look at every
// process of the node.
func (m *model) listModules() tea.Cmd {
	list := m.acts.Modules
	return func() tea.Msg {
		mods, err := list()
		return modulesMsg{mods: mods, err: err}
	}
}

// upgradeModule moves a module in a command; the result comes back as a
// moduleUpgradeMsg, also when the dialog has been closed meanwhile.
func (m *model) upgradeModule(module, version string) tea.Cmd {
	up := m.acts.UpgradeModule
	return func() tea.Msg {
		rep, err := up(module, version)
		return moduleUpgradeMsg{module: module, version: version, rep: rep, err: err}
	}
}

// moduleUpgraded reports a module's move in the status line and, if it is
// still open, in the dialog, whose list is then read again.
func (m *model) moduleUpgraded(msg moduleUpgradeMsg) tea.Cmd {
	text := upgradeText(msg)
	m.setStatus(text, msg.err)
	cmds := []tea.Cmd{m.snapshotCmd(true)}
	if d, ok := m.topDialog().(*modulesDialog); ok {
		d.done(text, msg.err)
		cmds = append(cmds, m.listModules())
	}
	return tea.Batch(cmds...)
}

// upgradeText says what a module's move did. A failed move has been undone
// by the time it returns, and the text says so; the error follows it.
func upgradeText(msg moduleUpgradeMsg) string {
	r := msg.rep
	move := msg.module + " " + msg.version
	if r.From != "" {
		move = msg.module + " " + r.From + " → " + msg.version
	}
	if msg.err != nil {
		switch {
		case r.Stranded > 0:
			return move + " failed and was rolled back, but " + plural(r.Stranded, "process", "processes") + " could not be moved back and still " + verb(r.Stranded, "runs", "run") + " " + msg.version
		case r.RolledBack > 0:
			return move + " failed and was rolled back: " + plural(r.RolledBack, "process", "processes") + " moved back, every process stays on its old version"
		case r.Failed > 0:
			return move + " failed and was rolled back: no process had moved, every process stays on its old version"
		}
		return move + " refused: no process was moved"
	}
	if r.From == msg.version {
		// The module was current already; only processes left on other
		// versions, canaries moved by r, had to move.
		if r.Upgraded == 0 && r.Skipped == 0 {
			return msg.module + " already runs " + msg.version + ": no process had to move"
		}
		move = msg.module + " " + msg.version
	}
	text := move + ": " + plural(r.Upgraded, "process", "processes") + " moved"
	if r.Upgraded > 0 {
		text += ", longest pause " + dur(r.MaxPause)
	}
	if r.Skipped > 0 {
		text += ", " + strconv.Itoa(r.Skipped) + " exited meanwhile"
	}
	return text + "; new processes start on " + msg.version
}

func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return commas(int64(n)) + " " + many
}

// modulesDialog is the modules dialog. Its cursor is on a version; only
// versions the system carries can be picked.
type modulesDialog struct {
	mods    []ModuleView
	loading bool
	loadErr error
	rows    []versionRow // every version, in the order drawn
	cursor  int          // index into rows
	busy    string       // the move under way, e.g. "router 2"
	result  string
	failed  bool
}

// versionRow locates one version: mods[mod].Versions[vsn].
type versionRow struct{ mod, vsn int }

func newModulesDialog() *modulesDialog { return &modulesDialog{loading: true} }

func (d *modulesDialog) title() string   { return "Code modules" }
func (d *modulesDialog) width(w int) int { return min(w-2, 100) }

func (d *modulesDialog) version(i int) (*ModuleView, *VersionView) {
	if i < 0 || i >= len(d.rows) {
		return nil, nil
	}
	r := d.rows[i]
	mod := &d.mods[r.mod]
	return mod, &mod.Versions[r.vsn]
}

// setModules takes a fresh list, keeping the cursor on the version it was
// on. The first time, it starts on the first version a module could move
// to, which is usually an upgrade.
func (d *modulesDialog) setModules(msg modulesMsg) {
	d.loading = false
	d.loadErr = msg.err
	if msg.err != nil {
		return
	}
	var keepMod, keepVsn string
	if mod, v := d.version(d.cursor); mod != nil {
		keepMod, keepVsn = mod.Name, v.Name
	}
	d.mods = msg.mods
	d.rows = d.rows[:0]
	for i := range d.mods {
		for j := range d.mods[i].Versions {
			d.rows = append(d.rows, versionRow{i, j})
		}
	}
	d.cursor = -1
	for i := range d.rows {
		if mod, v := d.version(i); mod.Name == keepMod && v.Name == keepVsn {
			d.cursor = i
		}
	}
	for i := range d.rows {
		if _, v := d.version(i); d.cursor < 0 && v.Available && !v.Current {
			d.cursor = i
		}
	}
	if d.cursor < 0 {
		d.cursor = 0
		d.move(0)
	}
}

// move steps the cursor by d rows (0 only checks the row it is on),
// passing over versions that cannot be picked.
func (d *modulesDialog) move(step int) {
	dir := 1
	if step < 0 {
		dir = -1
	}
	for i, left := d.cursor+step, len(d.rows); left > 0 && i >= 0 && i < len(d.rows); i, left = i+dir, left-1 {
		if _, v := d.version(i); v.Available {
			d.cursor = i
			return
		}
	}
}

// done shows the outcome of a move.
func (d *modulesDialog) done(text string, err error) {
	d.busy = ""
	d.result, d.failed = text, err != nil
	if err != nil {
		d.result += "\nerror: " + err.Error()
	}
}

func (d *modulesDialog) update(m *model, k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc", "q":
		m.pop()
	case "ctrl+c":
		return m.quit()
	case "up", "k", "shift+tab":
		d.move(-1)
	case "down", "j", "tab":
		d.move(1)
	case "enter":
		mod, v := d.version(d.cursor)
		if mod == nil || !v.Available || d.busy != "" {
			return nil
		}
		d.busy = mod.Name + " " + v.Name
		d.result, d.failed = "", false
		return m.upgradeModule(mod.Name, v.Name)
	}
	return nil
}

func (d *modulesDialog) render(m *model, w, h int) []string {
	st := &m.st
	var body []string
	at := -1 // the cursor's line in body
	switch {
	case d.loadErr != nil:
		body = append(body, st.StatusErr.Render("error: "+oneLine(d.loadErr.Error())))
	case d.loading && d.mods == nil:
		body = append(body, st.Dim.Render("reading the modules…"))
	case len(d.mods) == 0:
		body = append(body, st.Dim.Render("no code modules are registered"))
	default:
		body = append(body, st.Header.Render(fit("  "+cell("VERSION", 8)+" "+cell("", 11)+" "+cellRight("PROCESSES", 9)+"  NOTES", w)))
	}
	row := 0
	for i := range d.mods {
		mod := &d.mods[i]
		old := "none"
		if len(mod.Old) > 0 {
			old = strings.Join(mod.Old, ", ")
		}
		body = append(body, st.Heading.Render(mod.Name)+st.Dim.Render(" · current "+mod.Current+" · old code "+old))
		for j := range mod.Versions {
			v := &mod.Versions[j]
			flag := ""
			switch {
			case v.Current:
				flag = "current"
			case !v.Available:
				flag = "not carried"
			}
			mark := "  "
			if row == d.cursor {
				mark = "› "
				at = len(body)
			}
			text := mark + cell(v.Name, 8) + " " + cell(flag, 11) + " " + cellRight(commas(int64(v.Processes)), 9) + "  " + oneLine(v.Notes)
			switch {
			case row == d.cursor:
				text = st.Selected.Render(fit(text, w))
			case !v.Available:
				text = st.Dim.Render(text)
			}
			body = append(body, text)
			row++
		}
	}

	var foot []string
	switch {
	case d.busy != "":
		foot = append(foot, "", st.Dim.Render("moving every process of "+d.busy+"…"))
	case d.result != "":
		foot = append(foot, "")
		style := st.Good
		if d.failed {
			style = st.StatusErr
		}
		for _, l := range strings.Split(ansi.Wrap(sanitize(d.result), w, ""), "\n") {
			foot = append(foot, style.Render(l))
		}
	}
	foot = append(foot, "", st.Dim.Render("↑/↓ choose · enter moves the whole module, all or nothing · esc close"))

	// Keep the cursor's line on screen when the list is taller than the box.
	room := max(h-len(foot), 1)
	if len(body) > room {
		top := clamp(at-room/2, 0, len(body)-room)
		body = body[top : top+room]
	}
	return append(body, foot...)
}
