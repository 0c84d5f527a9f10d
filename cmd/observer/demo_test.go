package main

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"observer/internal/runtime"
	"observer/internal/ui"
)

// demoPID matches a PID in the demo's output.
var demoPID = regexp.MustCompile(` ?<0\.\d+\.0>`)

// TestDemoText runs the demo unattended in text mode and checks, step by
// step, the events the audience sees: the walk of OTP_SEMANTICS.md.
func TestDemoText(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(&env{stdout: &out, stderr: &errOut}, []string{"demo", "--auto", "--pause", "1ms"}); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	want := map[string][]string{
		"1": {
			"demo_sup: child_exited b killed",
			"demo_sup: child_restarted b",
		},
		"2": {
			"demo_sup: child_exited b crash",
			"demo_sup: child_terminated c shutdown",
			"demo_sup: child_terminated a shutdown",
			"demo_sup: child_restarted a",
			"demo_sup: child_restarted b",
			"demo_sup: child_restarted c",
		},
		"3": {
			"demo_sup: child_exited b crash",
			"demo_sup: child_terminated d shutdown",
			"demo_sup: child_terminated c shutdown",
			"demo_sup: child_restarted b",
			"demo_sup: child_restarted c",
			"demo_sup: child_restarted d",
		},
		"4": {
			"demo_sup: child_exited a crash", "demo_sup: child_restarted a",
			"demo_sup: child_exited a crash", "demo_sup: child_restarted a",
			"demo_sup: child_exited a crash",
			"demo_sup: reached_max_restart_intensity a shutdown",
			"demo_sup: shutdown shutdown",
			"demo_sup: child_terminated b shutdown",
			"demo_sup: EXIT shutdown",
		},
		"7": {
			"demo_sup: child_exited t {shutdown,x}",
			"demo_sup: child_started t",
			"demo_sup: child_exited t killed",
			"demo_sup: child_restarted t",
		},
		"9": {
			"demo_sup: shutdown shutdown",
			"demo_sup: child_terminated c shutdown",
			"demo_sup: child_terminated slow killed",
			"demo_sup: child_terminated a shutdown",
			"demo_sup: EXIT shutdown",
		},
		"13": {
			"demo_sub: child_exited w crash", "demo_sub: child_restarted w",
			"demo_sub: child_exited w crash",
			"demo_sub: reached_max_restart_intensity w shutdown",
			"demo_sub: shutdown shutdown",
			"demo_sub: child_terminated dyn shutdown",
			"demo_sub: EXIT shutdown",
			"demo_top: child_exited demo_sub shutdown",
			"demo_top: child_restarted demo_sub",
		},
		"reload": {
			"code_change demo_counter 1 -> 2",
			"code_change demo_counter 1 -> 2",
			"code_change demo_counter 1 -> 2",
			"code_change demo_counter 1 -> 2 (3 processes)",
		},
	}
	steps := demoOutputSteps(out.String())
	for id, w := range want {
		s, ok := steps[id]
		if !ok {
			t.Errorf("step %s is missing:\n%s", id, out.String())
			continue
		}
		if !slices.Equal(s.events, w) {
			t.Errorf("step %s events:\n got %q\nwant %q", id, s.events, w)
		}
		if s.caption == "" {
			t.Errorf("step %s has no caption", id)
		}
		if len(s.fails) > 0 {
			t.Errorf("step %s failed: %q", id, s.fails)
		}
	}
	if s := steps["chaos"]; s == nil || len(s.events) != 10 || len(s.fails) > 0 {
		t.Errorf("the chaos burst should show 5 kills and 5 restarts: %+v", s)
	} else {
		for i := 0; i < 10; i += 2 {
			m := regexp.MustCompile(`^demo_chaos: child_exited (w\d) killed$`).FindStringSubmatch(s.events[i])
			if m == nil || s.events[i+1] != "demo_chaos: child_restarted "+m[1] {
				t.Errorf("chaos events %d and %d: %q, %q; want a worker killed and restarted", i, i+1, s.events[i], s.events[i+1])
			}
		}
	}
	if s := steps["1"]; len(s.sees) == 0 || !regexp.MustCompile(`^a <0\.\d+\.0> kept, b <0\.\d+\.0> → <0\.\d+\.0>, c <0\.\d+\.0> kept$`).MatchString(s.sees[0]) {
		t.Errorf("step 1 should show that only b got a new pid: %q", s.sees)
	}
	if s := steps["13"]; len(s.sees) == 0 || !strings.Contains(s.sees[len(s.sees)-1], "dyn is lost") {
		t.Errorf("step 13 should show dyn lost: %q", s.sees)
	}
	if s := steps["reload"]; len(s.sees) < 3 || !strings.Contains(s.sees[2], "v2 count=3 (state from v1)") {
		t.Errorf("reload should show the counts carried to version 2: %q", s.sees)
	}
}

// demoOutputStep is one step of the demo's text output.
type demoOutputStep struct {
	caption             string
	events, sees, fails []string
}

// demoOutputSteps splits the text output by step, keyed by step id, with
// the PIDs taken out of the event lines.
func demoOutputSteps(out string) map[string]*demoOutputStep {
	header := regexp.MustCompile(`^\[\d+/\d+\] #(\S+) `)
	steps := map[string]*demoOutputStep{}
	var cur *demoOutputStep
	for _, l := range strings.Split(out, "\n") {
		if m := header.FindStringSubmatch(l); m != nil {
			cur = &demoOutputStep{}
			steps[m[1]] = cur
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case strings.HasPrefix(l, "      ") && cur.caption == "":
			cur.caption = strings.TrimSpace(l)
		case strings.HasPrefix(l, "  event "):
			cur.events = append(cur.events, demoPID.ReplaceAllString(strings.TrimPrefix(l, "  event "), ""))
		case strings.HasPrefix(l, "  see   "):
			cur.sees = append(cur.sees, strings.TrimPrefix(l, "  see   "))
		case strings.HasPrefix(l, "  fail  "):
			cur.fails = append(cur.fails, strings.TrimPrefix(l, "  fail  "))
		}
	}
	return steps
}

func TestDemoFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(&env{stdout: &out, stderr: &errOut}, []string{"demo", "--pause", "-1s"}); code != 2 {
		t.Errorf("--pause -1s: exit %d, want 2 (%s)", code, errOut.String())
	}
	if code := run(&env{stdout: &out, stderr: &errOut}, []string{"demo", "extra"}); code != 2 {
		t.Errorf("an argument: exit %d, want 2 (%s)", code, errOut.String())
	}
}

// TestDemoModel drives the UI wrapper without a terminal: the caption
// rows sit below the observer's UI, and space advances instead of folding.
func TestDemoModel(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	advance := make(chan struct{}, 1)
	m := &demoModel{inner: ui.New(demoSource{n}, ui.Options{View: "applications", NoColor: true}), advance: advance}
	var model tea.Model = m
	model, _ = model.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	model, _ = model.Update(demoStepMsg{title: "demo 1/8 · one_for_one [a b c]: kill b", caption: "only b restarts"})
	model, _ = model.Update(demoLineMsg("event  demo_sup: child_exited b killed"))
	model, _ = model.Update(tea.KeyPressMsg{Code: tea.KeySpace, Text: " "})
	select {
	case <-advance:
	default:
		t.Error("space did not advance the demo")
	}
	lines := strings.Split(ansi.Strip(model.View().Content), "\n")
	if len(lines) != 24 {
		t.Errorf("the view has %d rows, want 24", len(lines))
	}
	tail := strings.Join(lines[len(lines)-demoCaptionRows:], "\n")
	for _, want := range []string{"demo 1/8 · one_for_one [a b c]: kill b", "only b restarts", "child_exited b killed"} {
		if !strings.Contains(tail, want) {
			t.Errorf("caption rows lack %q:\n%s", want, tail)
		}
	}
	if !strings.Contains(lines[0], "1 Overview") || !strings.Contains(lines[1], "Applications") {
		t.Errorf("the UI's tab bar and Applications view are not above the caption:\n%s", strings.Join(lines, "\n"))
	}
}
