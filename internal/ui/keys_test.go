package ui

import (
	"slices"
	"strings"
	"testing"
	"time"

	"observer/internal/runtime"
)

func TestKeysChangeWhatTheScreenShows(t *testing.T) {
	tests := []struct {
		name    string
		keys    []string
		want    []string
		notWant []string
	}{
		{"the overview is the first view", nil, []string{"Node", "Go runtime", "Calls/s"}, nil},
		{"tab moves to the next view", []string{"tab"}, []string{"Applications · 3 supervisors"}, nil},
		{"shift+tab wraps to the last view", []string{"shift+tab"}, []string{"Events 6 kept"}, nil},
		{"3 shows the processes", []string{"3"}, []string{"Processes 90 · sorted by mailbox ▼"}, nil},
		{"4 shows the ledger", []string{"4"}, []string{"Ledger (sqlite)", "Busiest accounts"}, nil},
		{"5 shows the tables", []string{"5"}, []string{"Trunks · 3", "Routing table · 4 routes"}, nil},
		{"6 shows the events with the lost count", []string{"6"}, []string{"lost 3", "router exited: panic: boom"}, nil},
		{"s sorts by the next column", []string{"3", "s"}, []string{"sorted by msg/s ▼", "MSG/S▼"}, nil},
		{"s twice sorts by handler time", []string{"3", "s", "s"}, []string{"sorted by handler time ▼"}, nil},
		{"S reverses the order", []string{"3", "S"}, []string{"sorted by mailbox ▲", "MQ▲"}, nil},
		{"sorting by name puts named processes first", []string{"3", "s", "s", "s", "s"}, []string{"sorted by name ▲"}, nil},
		{"/ filters processes by name", []string{"3", "/", "t", "e", "l", "e", "c", "o", "m", "enter"},
			[]string{`filter "telecom" 1 match`, "telecom_sup"}, []string{"ledger_writer"}},
		{"/ filters processes by pid", []string{"3", "/", "<", "0", ".", "4", "2", "enter"}, []string{"<0.42.0>", "1 match"}, []string{"<0.4.0>"}},
		{"esc clears the filter", []string{"3", "/", "r", "o", "u", "enter", "esc"}, []string{"Processes 90 · sorted by mailbox"}, []string{`filter "`}},
		{"enter opens the selected process", []string{"3", "enter"},
			[]string{"Process <0.4.0> ledger_writer", "Trap exit  yes", "State (sys:get_state)", "map[batch:64", "Mailbox head (3 of 1,500)", "{Call:route N:0}"}, nil},
		{"enter on a link follows it", []string{"3", "enter", "enter"}, []string{"Process <0.1.0> telecom_sup", "esc back to <0.4.0>"}, nil},
		{"esc walks back through followed links", []string{"3", "enter", "enter", "esc"}, []string{"Process <0.4.0> ledger_writer"}, nil},
		{"esc leaves the process for the table", []string{"3", "enter", "esc"}, []string{"Processes 90"}, []string{"State (sys:get_state)"}},
		{"? lists the keys", []string{"?"}, []string{"Keys", "toggle tracing", "kill now", "command palette", "upgrade a module…"}, nil},
		{"esc closes the help", []string{"?", "esc"}, []string{"Node"}, []string{"Keys ─"}},
		{"x offers kill, shutdown or a reason", []string{"3", "x"}, []string{"Exit signal", "Send an exit signal to <0.4.0>", "› kill", "shutdown", "custom…"}, nil},
		{"the custom reason takes text", []string{"3", "x", "down", "down", "o", "k"}, []string{"reason: ok"}, nil},
		{"space unfolds a folded supervisor", []string{"2", "end", "up", "up", "space"}, []string{"├─ ▾ sessions_sup", "│  ├─ session"}, nil},
		{"enter folds a supervisor", []string{"2", "enter"}, []string{"▸ telecom_sup"}, []string{"router"}},
		{"enter on a worker opens it", []string{"2", "down", "enter"}, []string{"Process <0.2.0> router"}, nil},
		{"enter on an event shows its report and stack", []string{"6", "down", "down", "down", "down", "enter"},
			[]string{"Event #3", "reason panic: boom", "router.go:42"}, nil},
		{"/ filters events", []string{"6", "/", "c", "o", "d", "e", "enter"}, []string{"ledger_writer v1 -> v2", "1 match"}, []string{"child_started"}},
		{"p pauses the display", []string{"p"}, []string{"❚❚ paused", "display paused"}, []string{"● live"}},
		{"p again resumes it", []string{"p", "p"}, []string{"● live"}, []string{"❚❚ paused"}},
		{": runs a palette command", []string{":", "s", "t", "a", "t", "u", "s", "enter"}, []string{": status", "ran status", "line two"}, nil},
		{"a failing command shows its error", []string{":", "f", "a", "i", "l", "enter"}, []string{"error: no such command"}, nil},
		{"c toggles chaos", []string{"c"}, []string{"chaos on"}, nil},
		{"+ raises the load", []string{"+"}, []string{"load 1100 calls/s"}, nil},
		{"- lowers the load", []string{"-"}, []string{"load 900 calls/s"}, nil},
		{"r upgrades the selected process", []string{"3", "r"}, []string{"upgraded <0.4.0> to v2"}, nil},
		{"process keys need a selection", []string{"x"}, []string{"no process selected"}, []string{"Exit signal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
			h.advance(2 * time.Second)
			for _, k := range tt.keys {
				h.key(k)
			}
			for _, w := range tt.want {
				h.mustShow(w)
			}
			for _, w := range tt.notWant {
				h.mustNotShow(w)
			}
		})
	}
}

func TestReadOnlyHidesAndDisablesDestructiveKeys(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true, ReadOnly: true}, 100, 30)
	h.key("?")
	for _, hidden := range []string{"exit signal", "kill now", "upgrade code", "toggle chaos", "more / less load", "command palette", "upgrade a module"} {
		h.mustNotShow(hidden)
	}
	h.mustShow("toggle tracing")
	h.key("esc")
	h.mustShow("read-only")
	for _, k := range []string{"3", "x", "ctrl+k", "r", "c", "+", "-", ":", "R"} {
		h.key(k)
	}
	h.mustNotShow("Exit signal")
	h.mustNotShow("Command")
	h.mustNotShow("Code modules")
	if calls := f.src.recorded(); len(calls) != 0 {
		t.Errorf("read-only UI called actions: %v", calls)
	}
	if !f.pids[3].Alive() {
		t.Error("read-only UI killed a process")
	}
}

func TestHelpListsEveryEnabledKey(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 80, 24)
	h.key("?")
	screen := h.screen()
	for _, g := range h.m.keys.groups() {
		for _, e := range g.entries {
			if e.enabled() && !strings.Contains(screen, e.desc) {
				t.Errorf("help does not list %q (%s)", e.desc, e.keys)
			}
		}
	}
}

// watch monitors pid and returns a function that waits for its exit reason.
func watch(t *testing.T, n *runtime.Node, pid runtime.PID) func() any {
	w := n.Monitor(pid)
	return func() any {
		t.Helper()
		select {
		case d := <-w.C:
			return d.Reason
		case <-time.After(10 * time.Second):
			t.Fatalf("%v is still alive", pid)
			return nil
		}
	}
}

func TestExitSignalsReachTheSelectedProcess(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		sent string
		want any
	}{
		{"ctrl+k kills at once", []string{"ctrl+k"}, "kill", runtime.Killed},
		{"x then enter sends kill", []string{"x", "enter"}, "kill", runtime.Killed},
		{"x, down, enter sends shutdown", []string{"x", "down", "enter"}, "shutdown", runtime.Shutdown},
		{"x with a custom reason sends it", []string{"x", "down", "down", "m", "a", "i", "n", "t", "enter"}, "maint", runtime.Atom("maint")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
			h.key("3")
			target := f.pids[3] // ledger_writer, first by mailbox
			if got := h.m.procs.sel; got != target {
				t.Fatalf("selected %v, want %v", got, target)
			}
			exited := watch(t, f.src.node, target)
			for _, k := range tt.keys {
				h.key(k)
			}
			if got := exited(); !runtime.SameReason(got, tt.want) {
				t.Errorf("exit reason %v, want %v", got, tt.want)
			}
			h.mustShow("sent exit signal " + tt.sent + " to " + target.String())
		})
	}
}

func TestEscCancelsTheExitDialog(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
	h.key("3")
	h.key("x")
	h.key("esc")
	h.mustNotShow("Exit signal")
	if !f.pids[3].Alive() {
		t.Error("cancelled dialog killed the process")
	}
}

func TestTraceTogglesSysTracing(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
	h.key("3")
	target := h.m.procs.sel
	h.key("t")
	if !target.Info().Tracing {
		t.Fatal("t did not switch tracing on")
	}
	h.mustShow("tracing on for " + target.String())
}

func TestActionsGetTheSelectedProcess(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
	h.key("3")
	h.key("j")
	h.key("r")
	h.key("c")
	h.key("+")
	h.key(":")
	h.typeText("calls 10")
	h.key("enter")
	want := []string{"upgrade " + f.pids[18].String(), "chaos", "load +1", "run calls 10"}
	if got := f.src.recorded(); !slices.Equal(got, want) {
		t.Errorf("actions called %q, want %q", got, want)
	}
}

func TestSelectionStaysOnItsProcessWhenTheOrderChanges(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
	h.key("3")
	for range 6 {
		h.key("j")
	}
	sel := h.m.procs.sel
	if h.m.procs.cursor != 6 || sel.IsZero() {
		t.Fatalf("selection at rank %d (%v), want rank 6", h.m.procs.cursor, sel)
	}
	// From now on the selected process's mailbox outgrows every other.
	grows := slices.Index(f.pids, sel)
	f.env.mu.Lock()
	f.env.mq = func(i int, now time.Time) int {
		if i == grows {
			return 5000
		}
		return f.env.procs[i].MailboxLen
	}
	f.env.mu.Unlock()
	h.advance(time.Second)
	if h.m.procs.sel != sel {
		t.Fatalf("selection moved to %v, want it on %v", h.m.procs.sel, sel)
	}
	if h.m.procs.cursor != 0 {
		t.Errorf("selected process ranks %d, want 0 after its mailbox grew", h.m.procs.cursor)
	}
	if line := h.line(sel.String() + " "); !strings.Contains(line, "5,000") {
		t.Errorf("row of %v is %q, want its new mailbox length", sel, line)
	}
}

func TestSelectionMovesOnWhenTheProcessDies(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
	h.key("3")
	h.key("j")
	dead := h.m.procs.sel
	cursor := h.m.procs.cursor
	// The fixed env forgets the process, as the node would after its exit.
	f.env.mu.Lock()
	for i := range f.env.procs {
		if f.env.procs[i].PID == dead {
			f.env.procs = slices.Delete(f.env.procs, i, i+1)
			f.env.rates = slices.Delete(f.env.rates, i, i+1)
			break
		}
	}
	f.env.mu.Unlock()
	h.advance(time.Second)
	if h.m.procs.sel == dead {
		t.Fatal("selection stayed on a dead process")
	}
	if h.m.procs.cursor != cursor {
		t.Errorf("cursor moved from row %d to %d", cursor, h.m.procs.cursor)
	}
}

func TestMouseSwitchesViewsSelectsRowsAndScrolls(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
	for _, tab := range h.m.tabs() {
		if tab.view == viewProcs {
			h.click(tab.x0+1, 0)
		}
	}
	if h.m.view != viewProcs {
		t.Fatalf("click on the Processes tab shows view %d", h.m.view)
	}
	h.click(5, bodyTop+2+4) // the fifth row
	if h.m.procs.cursor != 4 {
		t.Errorf("click selected rank %d, want 4", h.m.procs.cursor)
	}
	h.click(5, bodyTop+2+4) // again: open it
	if !h.m.detail.open {
		t.Error("a click on the selected row did not open it")
	}
	h.key("esc")
	h.wheel(true)
	if h.m.procs.cursor != 4+wheelStep {
		t.Errorf("wheel moved to rank %d, want %d", h.m.procs.cursor, 4+wheelStep)
	}
	cols := h.m.procs.columns()
	h.click(cols[len(cols)-1].x0+1, bodyTop+1) // the AGE header
	if h.m.procs.sort != sortAge {
		t.Errorf("header click sorts by %v, want age", h.m.procs.sort)
	}
}

func TestRestartsFlashWhereTheyHappen(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{}, 100, 30) // colour: the flash is a style
	h.key("2")
	h.advance(19 * time.Second)
	if h.m.apps.flash[rowKey{sup: f.pids[0], child: "router"}].After(h.m.sh.now) {
		t.Fatal("router flashes before it restarted")
	}
	h.advance(time.Second) // the router restarts at 20 s
	until := h.m.apps.flash[rowKey{sup: f.pids[0], child: "router"}]
	if !until.After(h.m.sh.now) {
		t.Fatal("the restarted router does not flash")
	}
	if !strings.Contains(h.m.render(), h.m.st.Flash.Render(fit(h.line("├─ router"), 100))) {
		t.Error("the router row is not drawn in the flash style")
	}
	h.advance(flashFor + time.Second)
	if h.m.apps.flash[rowKey{sup: f.pids[0], child: "router"}].After(h.m.sh.now) {
		t.Error("the flash outlived its two seconds")
	}
}

func TestPauseFreezesTheDisplayButNotTheSystem(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
	h.key("3")
	h.advance(time.Second)
	h.key("p")
	before := h.m.sh.stats
	h.advance(5 * time.Second)
	if h.m.sh.stats != before {
		t.Error("paused display took new figures")
	}
	h.key("p")
	if h.m.sh.stats == before {
		t.Error("resumed display kept old figures")
	}
}

func TestSmallAndZeroSizedScreens(t *testing.T) {
	f := newFixture(t)
	for _, size := range [][2]int{{0, 0}, {20, 5}, {40, 10}, {80, 24}, {250, 80}} {
		h := newHarness(t, f.src, Options{NoColor: true}, size[0], size[1])
		for _, k := range []string{"1", "2", "3", "enter", "esc", "4", "5", "6", "?"} {
			h.key(k)
			lines := strings.Split(h.screen(), "\n")
			if size[1] >= minHeight && len(lines) != size[1] {
				t.Errorf("%dx%d: %d lines", size[0], size[1], len(lines))
			}
			for _, l := range lines {
				if w := len([]rune(l)); w > size[0] && size[0] > 0 {
					t.Errorf("%dx%d: line of %d cells: %q", size[0], size[1], w, l)
				}
			}
		}
	}
}

func TestKeysPressedWhileASnapshotRunsAreNotUndone(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
	h.key("3")
	// The first j starts a snapshot; the second arrives before its result.
	_, first := h.m.Update(keyPress("j"))
	_, second := h.m.Update(keyPress("j"))
	if second != nil {
		t.Fatal("a second snapshot started while one was running")
	}
	want := h.m.procs.sel
	h.run(first)
	if h.m.procs.cursor != 2 || h.m.procs.sel != want {
		t.Errorf("after the late snapshot the cursor is on rank %d (%v), want 2 (%v)", h.m.procs.cursor, h.m.procs.sel, want)
	}
}

func TestModulesDialogMovesAWholeModule(t *testing.T) {
	tests := []struct {
		name    string
		keys    []string
		calls   []string
		want    []string
		notWant []string
	}{
		{"R lists every module with its versions and processes", []string{"R"}, nil,
			[]string{"Code modules", "call_router_server · current 1 · old code 2", "least-cost routing", "not carried", "› 2"}, nil},
		{"enter moves the module to the version picked", []string{"R", "enter"},
			[]string{"upgrade module billing_engine_server 2"},
			[]string{"billing_engine_server 1 → 2: 1 process moved, longest pause 120µs; new processes start on 2",
				"billing_engine_server · current 2 · old code none"}, nil},
		{"a downgrade is a move to an older version", []string{"R", "enter", "up", "enter"},
			[]string{"upgrade module billing_engine_server 2", "upgrade module billing_engine_server 1"},
			[]string{"billing_engine_server 2 → 1: 1 process moved", "billing_engine_server · current 1"}, nil},
		{"the current version takes back the processes a canary moved", []string{"R", "down", "enter"},
			[]string{"upgrade module call_router_server 1"},
			[]string{"call_router_server 1: 1 process moved", "call_router_server · current 1 · old code none"}, nil},
		{"a module on its version already stays", []string{"R", "up", "enter"},
			[]string{"upgrade module billing_engine_server 1"},
			[]string{"billing_engine_server already runs 1: no process had to move"}, nil},
		{"a failing code_change rolls every process back", []string{"R", "down", "down", "down", "down", "enter"},
			[]string{"upgrade module session 2"},
			[]string{"session 1 → 2 failed and was rolled back: 59 processes moved back, every process stays on its old",
				"error: code: session 1 -> 2 aborted: <0.9.0>: code_change: cannot convert state",
				"session · current 1 · old code none"}, nil},
		{"a module on a version no longer carried cannot move", []string{"R", "end", "down", "down", "down", "down", "down", "down", "enter"},
			[]string{"upgrade module verifier 2"},
			[]string{"verifier 1 → 2 refused: no process was moved", "not registered"}, nil},
		{"esc closes the dialog", []string{"R", "esc"}, nil, []string{"Node"}, []string{"Code modules"}},
		{"the result stays in the status line", []string{"R", "enter", "esc"},
			[]string{"upgrade module billing_engine_server 2"},
			[]string{"billing_engine_server 1 → 2: 1 process moved"}, []string{"Code modules"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			h := newHarness(t, f.src, Options{NoColor: true}, 120, 30)
			for _, k := range tt.keys {
				h.key(k)
			}
			if got := f.src.recorded(); !slices.Equal(got, tt.calls) {
				t.Errorf("actions called %q, want %q", got, tt.calls)
			}
			for _, w := range tt.want {
				h.mustShow(w)
			}
			for _, w := range tt.notWant {
				h.mustNotShow(w)
			}
		})
	}
}

func TestModulesDialogTakesOneMoveAtATime(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 120, 30)
	h.key("R")
	// The move's command is held back, as if the upgrade were still running.
	_, move := h.m.Update(keyPress("enter"))
	h.mustShow("moving every process of billing_engine_server 2…")
	if _, again := h.m.Update(keyPress("enter")); again != nil {
		t.Error("a second enter started another move while one runs")
	}
	h.run(move)
	if got := f.src.recorded(); !slices.Equal(got, []string{"upgrade module billing_engine_server 2"}) {
		t.Errorf("actions called %q", got)
	}
	h.mustShow("1 process moved")
}

func TestModulesKeyNeedsBothActions(t *testing.T) {
	for _, acts := range []Actions{{}, {Modules: func() ([]ModuleView, error) { return nil, nil }}} {
		if newKeyMap(false, acts).Modules.Enabled() {
			t.Errorf("R is enabled with Modules set %v and UpgradeModule unset", acts.Modules != nil)
		}
	}
}

func TestSelectionStaysOnItsProcessInAScannedOrder(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{NoColor: true}, 100, 30)
	h.key("3")
	h.key("S") // smallest mailbox first: an order the runtime cannot rank
	h.key("g")
	for range 3 {
		h.key("j")
	}
	sel := h.m.procs.sel
	if h.m.procs.cursor != 3 || sel.IsZero() {
		t.Fatalf("selection at rank %d (%v), want rank 3", h.m.procs.cursor, sel)
	}
	grows := slices.Index(f.pids, sel)
	f.env.mu.Lock()
	f.env.mq = func(i int, now time.Time) int {
		if i == grows {
			return 5000
		}
		return f.env.procs[i].MailboxLen
	}
	f.env.mu.Unlock()
	h.advance(scanEvery)
	if h.m.procs.sel != sel {
		t.Fatalf("selection moved to %v, want it on %v", h.m.procs.sel, sel)
	}
	if want := fixtureProcs - 1; h.m.procs.cursor != want {
		t.Errorf("selected process ranks %d, want %d after its mailbox grew", h.m.procs.cursor, want)
	}
	if line := h.line(sel.String() + " "); !strings.Contains(line, "5,000") {
		t.Errorf("row of %v is %q, want its new mailbox length", sel, line)
	}
	h.mustShow("full scan")
}
