package ui

import (
	"flag"
	"image/color"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"observer/internal/ui/styles"
)

// The -update flag rewrites the golden files. teatest's golden package
// defines a flag of that name too; both then mean the same.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata/")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updating() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

var goldenSizes = []struct{ w, h int }{{80, 24}, {160, 48}}

func TestViewsMatchGoldenFiles(t *testing.T) {
	for _, view := range ViewNames() {
		for _, size := range goldenSizes {
			name := view + "_" + strconv.Itoa(size.w) + "x" + strconv.Itoa(size.h) + ".golden"
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				got, err := RenderFrame(f.src, Options{NoColor: true}, view, size.w, size.h, 60*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				checkGolden(t, name, got)
			})
		}
	}
}

func TestScreensMatchGoldenFiles(t *testing.T) {
	tests := []struct {
		name string
		keys []string
	}{
		{"process_detail", []string{"3", "enter"}},
		{"help", []string{"?"}},
		{"help_read_only", []string{"?"}},
		{"exit_dialog", []string{"3", "x"}},
		{"modules_dialog", []string{"R"}},
		{"modules_dialog_failed", []string{"R", "down", "down", "down", "down", "enter"}},
		{"event_report", []string{"6", "down", "down", "enter"}},
		{"applications_unfolded", []string{"2", "end", "space"}},
	}
	for _, tt := range tests {
		for _, size := range goldenSizes {
			name := tt.name + "_" + strconv.Itoa(size.w) + "x" + strconv.Itoa(size.h) + ".golden"
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				opts := Options{NoColor: true, ReadOnly: strings.HasSuffix(tt.name, "read_only")}
				h := newHarness(t, f.src, opts, size.w, size.h)
				h.advance(60 * time.Second)
				for _, k := range tt.keys {
					h.key(k)
				}
				checkGolden(t, name, h.screen())
			})
		}
	}
}

func TestRenderFrameRejectsBadRequests(t *testing.T) {
	f := newFixture(t)
	if _, err := RenderFrame(f.src, Options{}, "nope", 80, 24, 0); err == nil {
		t.Error("an unknown view was accepted")
	}
	if _, err := RenderFrame(f.src, Options{}, "overview", 0, 24, 0); err == nil {
		t.Error("an empty frame was accepted")
	}
	if got, err := RenderFrame(f.src, Options{}, "3", 80, 24, 0); err != nil || !strings.Contains(got, "Processes 90") {
		t.Errorf("view by number: %v\n%s", err, got)
	}
}

func TestThemesParseFromTheirNames(t *testing.T) {
	for name, want := range map[string]Theme{"": ThemeAuto, "dark": ThemeDark, "Light": ThemeLight, "high-contrast": ThemeHighContrast} {
		if got, err := ParseTheme(name); err != nil || got != want {
			t.Errorf("ParseTheme(%q) = %v, %v", name, got, err)
		}
	}
	if _, err := ParseTheme("neon"); err == nil {
		t.Error("an unknown theme was accepted")
	}
}

func TestEveryThemeDrawsEveryView(t *testing.T) {
	for _, theme := range []Theme{ThemeDark, ThemeLight, ThemeHighContrast} {
		f := newFixture(t)
		for _, view := range ViewNames() {
			got, err := RenderFrame(f.src, Options{Theme: theme}, view, 100, 30, 2*time.Second)
			if err != nil || strings.Count(got, "\n") != 29 {
				t.Errorf("theme %d view %s: %v, %d lines", theme, view, err, strings.Count(got, "\n")+1)
			}
		}
	}
}

func TestTheTerminalBackgroundPicksDarkOrLight(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, f.src, Options{}, 80, 24)
	h.send(tea.BackgroundColorMsg{Color: color.White})
	if h.m.st.Palette != styles.Light {
		t.Errorf("a white background gives palette %d", h.m.st.Palette)
	}
	h.send(tea.BackgroundColorMsg{Color: color.Black})
	if h.m.st.Palette != styles.Dark {
		t.Errorf("a black background gives palette %d", h.m.st.Palette)
	}
	hc := newHarness(t, f.src, Options{Theme: ThemeHighContrast}, 80, 24)
	hc.send(tea.BackgroundColorMsg{Color: color.White})
	if hc.m.st.Palette != styles.HighContrast {
		t.Errorf("the high-contrast option gave way to the background")
	}
	nc := newHarness(t, f.src, Options{NoColor: true}, 80, 24)
	if nc.m.st.Palette != styles.Mono || strings.Contains(nc.m.render(), "\x1b[38") {
		t.Errorf("NoColor still draws colours")
	}
}
