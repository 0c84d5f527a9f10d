package live

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/charmbracelet/x/vt"

	"observer/internal/runtime"
	"observer/internal/runtime/code"
	"observer/internal/runtime/genserver"
	"observer/internal/telecom"
	"observer/internal/ui"
)

func startSystem(tb testing.TB) *telecom.System {
	tb.Helper()
	cfg := telecom.DefaultConfig()
	cfg.Billing.DataDir = tb.TempDir()
	sys, err := telecom.Start(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sys.Stop(0) })
	return sys
}

func TestFramesOfTheLiveSystem(t *testing.T) {
	sys := startSystem(t)
	for _, view := range ui.ViewNames() {
		frame, err := ui.RenderFrame(New(sys), ui.Options{}, view, 120, 40, 300*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", view, err)
		}
		if !strings.Contains(frame, "Overview") {
			t.Fatalf("%s frame lacks the tab bar:\n%s", view, frame)
		}
	}
	frame, _ := ui.RenderFrame(New(sys), ui.Options{}, "applications", 120, 40, 300*time.Millisecond)
	for _, want := range []string{"telecom_sup", "call_router", "billing_sup", "db_pool", "call_sup", "load_generator"} {
		if !strings.Contains(frame, want) {
			t.Errorf("the tree lacks %s:\n%s", want, frame)
		}
	}
}

// BenchmarkRouteThroughputUI measures fast-path routing by two goroutines
// with no UI, and with the UI running over the same system at its default
// 10 Hz, drawn off-screen and switching views every second, so the two can
// be compared side by side.
func BenchmarkRouteThroughputUI(b *testing.B) {
	for _, withUI := range []bool{false, true} {
		name := "headless"
		if withUI {
			name = "ui-10Hz"
		}
		b.Run(name, func(b *testing.B) {
			sys := startSystem(b)
			ctx, stop := context.WithCancel(context.Background())
			var uiDone sync.WaitGroup
			if withUI {
				uiDone.Add(1)
				go func() {
					defer uiDone.Done()
					if err := ui.RunHeadless(ctx, New(sys), ui.Options{}, 160, 48, io.Discard, time.Second); err != nil {
						b.Error(err)
					}
				}()
			}
			var routed atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for g := 0; g < 2; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < b.N/2; i++ {
						if _, err := sys.Router.Route("B", "1-800-FORTUNE"); err == nil {
							routed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(routed.Load())/time.Since(start).Seconds(), "routes/s")
			b.StopTimer()
			stop()
			uiDone.Wait()
		})
	}
}

// flakyV1 and flakyV2 are two versions of a module whose code_change fails
// in the process whose state is 1.
type (
	flakyV1 struct{}
	flakyV2 struct{}
)

func (flakyV1) Init(_ *runtime.Process, arg any) genserver.Result { return genserver.Ok(arg) }
func (flakyV1) HandleCall(_ *runtime.Process, _ any, _ runtime.From, s any) genserver.Result {
	return genserver.Reply(s, s)
}
func (flakyV1) HandleCast(_ *runtime.Process, _ any, s any) genserver.Result {
	return genserver.NoReply(s)
}
func (flakyV1) HandleInfo(_ *runtime.Process, _ any, s any) genserver.Result {
	return genserver.NoReply(s)
}
func (flakyV1) CodeChange(_ string, s, _ any) (any, error) { return s, nil }

func (flakyV2) Init(_ *runtime.Process, arg any) genserver.Result { return genserver.Ok(arg) }
func (flakyV2) HandleCall(_ *runtime.Process, _ any, _ runtime.From, s any) genserver.Result {
	return genserver.Reply(s, s)
}
func (flakyV2) HandleCast(_ *runtime.Process, _ any, s any) genserver.Result {
	return genserver.NoReply(s)
}
func (flakyV2) HandleInfo(_ *runtime.Process, _ any, s any) genserver.Result {
	return genserver.NoReply(s)
}
func (flakyV2) CodeChange(_ string, s, _ any) (any, error) {
	if s == 1 {
		return nil, errors.New("cannot convert state 1")
	}
	return s, nil
}

// moduleOf returns the named module of the list, failing the test if absent.
func moduleOf(t *testing.T, mods []ui.ModuleView, name string) ui.ModuleView {
	t.Helper()
	for _, m := range mods {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no module %s in %+v", name, mods)
	return ui.ModuleView{}
}

// onVersion counts a module's processes by version.
func onVersion(m ui.ModuleView) map[string]int {
	out := make(map[string]int)
	for _, v := range m.Versions {
		if v.Processes > 0 {
			out[v.Name] = v.Processes
		}
	}
	return out
}

func TestModulesMoveWholeOrNotAtAll(t *testing.T) {
	sys := startSystem(t)
	acts := New(sys).Actions()
	if err := sys.Code.Register("flaky", code.Version{Name: "1", Module: flakyV1{}}, code.Version{Name: "2", Module: flakyV2{}, Notes: "fails in one process"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		pid, err := genserver.Start(sys.Node, flakyV1{}, i, genserver.Options{Module: "flaky", Version: "1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sys.Node.Exit(pid, runtime.Kill) })
	}
	list := func() []ui.ModuleView {
		t.Helper()
		mods, err := acts.Modules()
		if err != nil {
			t.Fatal(err)
		}
		return mods
	}

	t.Run("the list shows every module with its versions", func(t *testing.T) {
		mods := list()
		for _, name := range []string{telecom.RouterModule, telecom.BillingName, "flaky"} {
			m := moduleOf(t, mods, name)
			if m.Current != "1" || len(m.Versions) < 2 || !m.Versions[1].Available || m.Versions[1].Name != "2" {
				t.Errorf("%s: %+v", name, m)
			}
		}
		if got := onVersion(moduleOf(t, mods, "flaky")); got["1"] != 3 {
			t.Errorf("flaky's processes by version: %v", got)
		}
	})

	t.Run("a module moves up and back down", func(t *testing.T) {
		before := onVersion(moduleOf(t, list(), telecom.RouterModule))["1"]
		if before == 0 {
			t.Fatal("no router process runs version 1")
		}
		rep, err := acts.UpgradeModule(telecom.RouterModule, "2")
		if err != nil || rep.Upgraded != before || rep.From != "1" || rep.To != "2" {
			t.Fatalf("upgrade: %+v, %v", rep, err)
		}
		m := moduleOf(t, list(), telecom.RouterModule)
		if got := onVersion(m); m.Current != "2" || got["2"] != before || len(got) != 1 {
			t.Fatalf("after the upgrade: current %s, processes %v", m.Current, got)
		}
		if rep, err := acts.UpgradeModule(telecom.RouterModule, "1"); err != nil || rep.Upgraded != before {
			t.Fatalf("downgrade: %+v, %v", rep, err)
		}
		if m := moduleOf(t, list(), telecom.RouterModule); m.Current != "1" {
			t.Fatalf("after the downgrade: current %s", m.Current)
		}
	})

	t.Run("a failing code_change rolls every process back", func(t *testing.T) {
		rep, err := acts.UpgradeModule("flaky", "2")
		var pe *code.ProcessError
		if !errors.As(err, &pe) || pe.Step != "code_change" {
			t.Fatalf("err = %v, want a code_change failure", err)
		}
		if rep.Upgraded != 0 || rep.Failed != 1 || rep.RolledBack != 2 {
			t.Fatalf("report %+v, want 1 failed and 2 rolled back", rep)
		}
		m := moduleOf(t, list(), "flaky")
		if got := onVersion(m); m.Current != "1" || got["1"] != 3 || len(got) != 1 {
			t.Fatalf("after the failed upgrade: current %s, processes %v", m.Current, got)
		}
	})
}

// screen replays a program's output on an emulated terminal: the renderer
// writes only the cells that changed, so tests read the screen.
type screen struct {
	emu  *vt.Emulator
	seen int
}

func newScreen(w, h int) *screen {
	emu := vt.NewEmulator(w, h)
	go func() { _, _ = io.Copy(io.Discard, emu) }() // nobody reads the emulator's answers
	return &screen{emu: emu}
}

// shows is a teatest.WaitFor condition for text on the screen.
func (s *screen) shows(want ...string) func([]byte) bool {
	s.seen = 0
	return func(out []byte) bool {
		_, _ = s.emu.Write(bytes.ReplaceAll(out[s.seen:], []byte("\n"), []byte("\r\n")))
		s.seen = len(out)
		text := s.emu.String()
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	}
}

func TestTheRKeyMovesAModuleOfTheLiveSystem(t *testing.T) {
	sys := startSystem(t)
	src := New(sys)
	// The dialog's cursor starts on the first version a module could move
	// to; enter moves that module.
	mods, err := src.Actions().Modules()
	if err != nil {
		t.Fatal(err)
	}
	var module, version string
	for _, m := range mods {
		for _, v := range m.Versions {
			if module == "" && v.Available && !v.Current {
				module, version = m.Name, v.Name
			}
		}
	}
	if module == "" {
		t.Fatalf("no module has a version to move to: %+v", mods)
	}
	const w, h = 120, 40
	scr := newScreen(w, h)
	tm := teatest.NewTestModel(t, ui.New(src, ui.Options{NoColor: true}), teatest.WithInitialTermSize(w, h))
	wait := func(want ...string) {
		t.Helper()
		teatest.WaitFor(t, tm.Output(), scr.shows(want...), teatest.WithDuration(20*time.Second))
	}
	wait("Go runtime")
	tm.Send(tea.KeyPressMsg{Code: 'R', Text: "R"})
	wait("Code modules", telecom.RouterModule, telecom.BillingName, "› "+version)
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	wait(module+" 1 → "+version+": ", " moved", "new processes start on "+version)
	if got := sys.Code.Current(module).Name; got != version {
		t.Errorf("%s's current version is %s after the move, want %s", module, got, version)
	}
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEscape}) // closes the dialog, then q quits
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
}
