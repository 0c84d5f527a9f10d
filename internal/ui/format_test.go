package ui

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"observer/internal/ui/styles"
)

func TestFiguresAreFormattedForNarrowColumns(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"small counts have no separator", commas(999), "999"},
		{"thousands are separated", commas(100000), "100,000"},
		{"negative counts keep their sign", commas(-1234567), "-1,234,567"},
		{"unknown rates are a dash", rate(math.NaN()), "–"},
		{"small rates keep a decimal", rate(2.25), "2.2"},
		{"large rates are in thousands", rate(12345), "12.3k"},
		{"bytes below a KiB are exact", bytesIEC(512), "512 B"},
		{"bytes use binary units", bytesIEC(3 << 30), "3.0 GiB"},
		{"nanoseconds stay nanoseconds", dur(850), "850ns"},
		{"milliseconds keep a decimal", dur(3400 * time.Microsecond), "3.4ms"},
		{"minutes show seconds", dur(5*time.Minute + 3*time.Second), "5m03s"},
		{"days show hours", dur(50 * time.Hour), "2d02h"},
		{"zero time was never", ago(epoch, time.Time{}), "never"},
		{"a past time is ago", ago(epoch, epoch.Add(-90*time.Second)), "1m30s ago"},
		{"fractions are percentages", pct(0.234), "23.4%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestCellsAreExactlyTheirWidth(t *testing.T) {
	for _, s := range []string{"", "abc", "ledger_writer", "日本語テキスト", "a\tb", "<0.100000.0>"} {
		for w := 1; w < 16; w++ {
			for _, got := range []string{cell(s, w), cellRight(s, w), fit(s, w)} {
				if n := ansi.StringWidth(got); n != w {
					t.Errorf("%q at %d is %q, %d cells", s, w, got, n)
				}
			}
		}
	}
}

func TestWrapKeepsLinesWithinTheWidth(t *testing.T) {
	for _, l := range wrap("map[a:日本語テキスト b:\x1b[31mred\tx]\nsecond line", 7, 0) {
		if w := ansi.StringWidth(l); w > 7 || strings.ContainsRune(l, 0x1b) {
			t.Errorf("line %q is %d cells", l, w)
		}
	}
}

func TestContainsFoldIgnoresASCIICase(t *testing.T) {
	if !containsFold("Ledger_Writer", "writer") || containsFold("router", "writer") || !containsFold("x", "") {
		t.Error("containsFold is wrong")
	}
}

func TestSelectTopMatchesAFullSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := r.IntN(300)
		keys := make([]scanKey, n)
		ids := r.Perm(n)
		for i := range keys {
			// Many ties, broken by PID numbers in no particular order.
			keys[i] = scanKey{v: float64(r.IntN(20)), id: uint64(ids[i]), i: int32(i)}
		}
		all := slices.Clone(keys)
		slices.SortFunc(all, compareScanKeys)
		m := r.IntN(n + 2)
		got := selectTop(nil, keys, m)
		if want := all[:min(m, n)]; !slices.Equal(got, want) {
			t.Fatalf("n=%d m=%d: got %v, want %v", n, m, got, want)
		}
	}
}

func TestSparklinesAndBrailleFitTheirCells(t *testing.T) {
	vals := []float64{0, 1, 2, 3, math.NaN(), 5, 8, 13, 21}
	if got := sparkline(vals, 12, 21); ansi.StringWidth(got) != 12 || !strings.HasSuffix(got, "█") {
		t.Errorf("sparkline %q", got)
	}
	st := styles.New(styles.Mono)
	lines := braille([][]float64{vals, {21, 0, 21}}, st.Series[:], 10, 3, 21)
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		if w := ansi.StringWidth(l); w != 10 {
			t.Errorf("braille line %q is %d cells", l, w)
		}
	}
	if niceCeil(1234) != 2000 || niceCeil(0) != 1 || niceCeil(5) != 5 {
		t.Error("niceCeil")
	}
}

func TestLineInputEditsLikeAShell(t *testing.T) {
	in := lineInput{prompt: "> "}
	for _, r := range "hello world" {
		in.key(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	in.key(keyPress("ctrl+w"))
	if in.String() != "hello " {
		t.Fatalf("after ctrl+w: %q", in.String())
	}
	in.key(keyPress("home"))
	in.key(keyPress("delete"))
	in.insert("j")
	if in.String() != "jello " {
		t.Fatalf("after home, delete, j: %q", in.String())
	}
	in.key(keyPress("ctrl+u"))
	if in.String() != "ello " || in.pos != 0 {
		t.Fatalf("ctrl+u kept the text before the cursor: %q", in.String())
	}
	in.key(keyPress("end"))
	in.key(keyPress("backspace"))
	if in.String() != "ello" {
		t.Fatalf("after backspace: %q", in.String())
	}
	if handled := in.key(keyPress("enter")); handled {
		t.Error("enter was taken by the field")
	}
	st := styles.New(styles.Mono)
	if w := ansi.StringWidth(in.view(&st, 8, true)); w != 8 {
		t.Errorf("view is %d cells", w)
	}
}

func FuzzLineInput(f *testing.F) {
	f.Add("abc", 3, uint8(0))
	f.Fuzz(func(t *testing.T, text string, moves int, op uint8) {
		in := lineInput{prompt: ": "}
		in.insert(text)
		keys := []string{"left", "right", "home", "end", "backspace", "delete", "ctrl+w", "ctrl+u", "ctrl+k"}
		for i := range moves % 64 {
			in.key(keyPress(keys[(int(op)+i)%len(keys)]))
			if in.pos < 0 || in.pos > len(in.value) {
				t.Fatalf("cursor %d outside %q", in.pos, in.String())
			}
		}
		st := styles.New(styles.Mono)
		_ = in.view(&st, 10, true)
	})
}
