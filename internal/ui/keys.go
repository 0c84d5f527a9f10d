package ui

import "charm.land/bubbles/v2/key"

// keyMap holds every key of the UI. Each binding carries its help text, so
// the help dialog and the footer are generated from this one place, and a
// disabled binding (read-only mode, an action the Source lacks) neither
// matches nor shows.
type keyMap struct {
	Up, Down, PageUp, PageDown, Home, End key.Binding

	NextView, PrevView, Views key.Binding
	Open, Back, Fold          key.Binding
	Filter, Sort, Reverse     key.Binding

	Help, Pause, Quit key.Binding

	Trace                                        key.Binding
	Exit, Kill, Upgrade, Chaos, LoadUp, LoadDown key.Binding
	Palette, Modules                             key.Binding
}

func newKeyMap(readOnly bool, acts Actions) keyMap {
	k := keyMap{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "move up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "move down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
		Home:     key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g/home", "first row")),
		End:      key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G/end", "last row")),

		NextView: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next view")),
		PrevView: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous view")),
		Views:    key.NewBinding(key.WithKeys("1", "2", "3", "4", "5", "6"), key.WithHelp("1–6", "switch view")),
		Open:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open / follow")),
		Back:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back / clear filter")),
		Fold:     key.NewBinding(key.WithKeys("space"), key.WithHelp("space", "fold / unfold")),
		Filter:   key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Sort:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "next sort column")),
		Reverse:  key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "reverse sort")),

		Help:  key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Pause: key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "pause display")),
		Quit:  key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),

		Trace:    key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "toggle tracing")),
		Exit:     key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "exit signal…")),
		Kill:     key.NewBinding(key.WithKeys("ctrl+k"), key.WithHelp("ctrl+k", "kill now")),
		Upgrade:  key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "upgrade code")),
		Chaos:    key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "toggle chaos")),
		LoadUp:   key.NewBinding(key.WithKeys("+", "="), key.WithHelp("+", "more load")),
		LoadDown: key.NewBinding(key.WithKeys("-"), key.WithHelp("-", "less load")),
		Palette:  key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "command palette")),
		Modules:  key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "upgrade a module…")),
	}
	if readOnly {
		for _, b := range []*key.Binding{&k.Exit, &k.Kill, &k.Upgrade, &k.Chaos, &k.LoadUp, &k.LoadDown, &k.Palette, &k.Modules} {
			b.SetEnabled(false)
		}
	}
	if acts.Upgrade == nil {
		k.Upgrade.SetEnabled(false)
	}
	if acts.ToggleChaos == nil {
		k.Chaos.SetEnabled(false)
	}
	if acts.SetLoadRate == nil {
		k.LoadUp.SetEnabled(false)
		k.LoadDown.SetEnabled(false)
	}
	if acts.RunCommand == nil {
		k.Palette.SetEnabled(false)
	}
	if acts.Modules == nil || acts.UpgradeModule == nil {
		k.Modules.SetEnabled(false)
	}
	return k
}

// helpGroup is one section of the help dialog.
type helpGroup struct {
	title   string
	entries []helpEntry
}

// helpEntry is one line of help; it may stand for a pair of bindings
// (up and down) and shows only if all of them are enabled.
type helpEntry struct {
	keys, desc string
	bindings   []key.Binding
}

func (e helpEntry) enabled() bool {
	for _, b := range e.bindings {
		if !b.Enabled() {
			return false
		}
	}
	return true
}

func one(b key.Binding) helpEntry {
	return helpEntry{keys: b.Help().Key, desc: b.Help().Desc, bindings: []key.Binding{b}}
}

func pair(keys, desc string, a, b key.Binding) helpEntry {
	return helpEntry{keys: keys, desc: desc, bindings: []key.Binding{a, b}}
}

// groups lists the bindings for the help dialog, pairing opposites so the
// whole map fits an 80×24 screen.
func (k keyMap) groups() []helpGroup {
	return []helpGroup{
		{"Move", []helpEntry{
			pair("↑↓ j k", "move", k.Up, k.Down),
			pair("pgup pgdn", "page", k.PageUp, k.PageDown),
			pair("g G", "first / last", k.Home, k.End),
		}},
		{"Views", []helpEntry{
			one(k.Views),
			pair("tab ⇧tab", "next / previous", k.NextView, k.PrevView),
			one(k.Open), one(k.Back), one(k.Fold),
		}},
		{"Tables", []helpEntry{one(k.Filter), one(k.Sort), one(k.Reverse)}},
		{"Process", []helpEntry{one(k.Trace), one(k.Exit), one(k.Kill), one(k.Upgrade)}},
		{"System", []helpEntry{one(k.Chaos), pair("+ -", "more / less load", k.LoadUp, k.LoadDown), one(k.Palette), one(k.Modules)}},
		{"General", []helpEntry{one(k.Pause), one(k.Help), one(k.Quit)}},
	}
}

// footer is the short help of a view: its own keys first, then the global ones.
func (k keyMap) footer(v viewID, detail bool) []key.Binding {
	var own []key.Binding
	switch {
	case detail:
		own = []key.Binding{k.Open, k.Back, k.Trace, k.Exit, k.Upgrade}
	case v == viewProcs:
		own = []key.Binding{k.Open, k.Filter, k.Sort, k.Reverse, k.Exit, k.Kill, k.Trace}
	case v == viewApps:
		own = []key.Binding{k.Fold, k.Open, k.Exit, k.Upgrade, k.Modules}
	case v == viewEvents:
		own = []key.Binding{k.Open, k.Filter}
	case v == viewOverview, v == viewLedger, v == viewTables:
		own = []key.Binding{k.Chaos, k.LoadUp, k.LoadDown, k.Palette}
	}
	return append(own, k.Views, k.Pause, k.Help, k.Quit)
}
