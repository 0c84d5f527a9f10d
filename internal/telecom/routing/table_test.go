package routing

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultTable(t *testing.T) {
	tbl := DefaultTable()
	if n := len(tbl.Entries()); n < 30 {
		t.Errorf("default table has %d routes; want a few dozen", n)
	}
	for _, d := range tbl.Destinations() {
		if len(d.Trunks) == 0 {
			t.Errorf("destination %q has no trunks", d.Name)
		}
	}
	e, err := tbl.Lookup("1-800-FORTUNE")
	if err != nil || e != (Entry{Prefix: "18003678863", Destination: "fortune"}) {
		t.Errorf("Lookup(1-800-FORTUNE) = %+v, %v", e, err)
	}
}

func TestLookup(t *testing.T) {
	tbl := mustParse(t, `
trunk t h.example.com
destination d u t:1:1
destination e u t:1:1
destination f u t:1:1
1       -> d
1800    -> e
18003   -> f
+1      -> e
+1800   -> f
911     -> d
`)
	tests := []struct {
		number, prefix, dest string
	}{
		{"1", "1", "d"},
		{"12125551234", "1", "d"},
		{"1800", "1800", "e"},
		{"1800555", "1800", "e"},
		{"18003", "18003", "f"},
		{"1-800-FORTUNE", "18003", "f"},
		{"180", "1", "d"},
		{"+1", "+1", "e"},
		{"+12125551234", "+1", "e"},
		{"+1 800 555", "+1800", "f"},
		{"911", "911", "d"},
		{"9115", "911", "d"},
	}
	for _, tt := range tests {
		e, err := tbl.Lookup(tt.number)
		if err != nil || e.Prefix != tt.prefix || e.Destination != tt.dest {
			t.Errorf("Lookup(%q) = %+v, %v; want prefix %q dest %q", tt.number, e, err, tt.prefix, tt.dest)
		}
	}
	for _, number := range []string{"2", "91", "+2", "+", "0044"} {
		if e, err := tbl.Lookup(number); err == nil {
			t.Errorf("Lookup(%q) = %+v; want error", number, e)
		}
	}
	if _, err := tbl.Lookup("2"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("Lookup(2) error %v; want ErrNoRoute", err)
	}
	if _, err := tbl.Lookup("1*"); !errors.Is(err, ErrInvalidChar) {
		t.Errorf("Lookup(1*) error %v; want ErrInvalidChar", err)
	}
}

// TestLookupMatchesLinearScan compares the trie with the obvious
// definition of longest prefix match on random numbers.
func TestLookupMatchesLinearScan(t *testing.T) {
	tbl := DefaultTable()
	entries := tbl.Entries()
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789"
	for range 20000 {
		var b strings.Builder
		if rng.IntN(3) == 0 {
			b.WriteByte('+')
		}
		for range 1 + rng.IntN(14) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		num := b.String()
		want := Entry{}
		for _, e := range entries {
			if strings.HasPrefix(num, e.Prefix) && len(e.Prefix) > len(want.Prefix) {
				want = e
			}
		}
		got, err := tbl.Lookup(num)
		if want.Prefix == "" {
			if !errors.Is(err, ErrNoRoute) {
				t.Fatalf("Lookup(%q) = %+v, %v; want ErrNoRoute", num, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Fatalf("Lookup(%q) = %+v, %v; want %+v", num, got, err, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const text = `# comment
trunk a a.example.com
trunk a b.example.com
destination d u a:1:1 x:1:1
destination e u
destination f u a:one:1 a:2:0
destination g u a
destination d u a:1:1
1800 -> d
1-800 -> d
12*3 -> d
5 -> nowhere
bogus line here
trunk bad_host host..example.com
+ -> d
`
	_, err := parse("routes.txt", strings.NewReader(text))
	if err == nil {
		t.Fatal("parse succeeded; want errors")
	}
	want := []string{
		`routes.txt:3: duplicate trunk "a" (first on line 2)`,
		`routes.txt:4: unknown trunk "x" in destination "d"`,
		`routes.txt:5: destination "e": no trunks`,
		`routes.txt:6: bad priority "one" for trunk "a" (want 0-65535)`,
		`routes.txt:6: bad weight "0" for trunk "a" (want 1-65535)`,
		`routes.txt:7: syntax error: trunk reference "a" in destination "g", want TRUNK:PRIORITY:WEIGHT`,
		`routes.txt:8: duplicate destination "d" (first on line 4)`,
		`routes.txt:10: duplicate prefix "1800" (first on line 9)`,
		`routes.txt:11: bad prefix "12*3": invalid character '*' at position 3`,
		`routes.txt:12: unknown destination "nowhere"`,
		`routes.txt: 3 more errors`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	for _, sentinel := range []error{ErrDuplicate, ErrUnknownTrunk, ErrNoTrunks, ErrBadPriority, ErrBadWeight, ErrSyntax, ErrBadPrefix, ErrUnknownDestination} {
		if !errors.Is(err, sentinel) {
			t.Errorf("errors.Is(err, %v) = false", sentinel)
		}
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 3 || pe.File != "routes.txt" {
		t.Errorf("first *ParseError = %+v; want routes.txt line 3", pe)
	}
}

func TestParseMessagesWithoutFileName(t *testing.T) {
	_, err := Parse(strings.NewReader("trunk a h\n1 -> d\n"))
	if err == nil || err.Error() != `line 2: unknown destination "d"` {
		t.Errorf("Parse error %q; want %q", err, `line 2: unknown destination "d"`)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, text string
		err        error
	}{
		{"empty", "", ErrNoRoutes},
		{"comments only", "# nothing\n\n   # here\n", ErrNoRoutes},
		{"no routes", "trunk a h\ndestination d u a:1:1\n", ErrNoRoutes},
		{"long line", "trunk a h\ndestination d u a:1:1\n1 -> d\n#" + strings.Repeat("x", maxLineLen+1), ErrSyntax},
		{"bad name", "trunk a h\ndestination d! u a:1:1\n1 -> d\n", ErrSyntax},
		{"bad user", "trunk a h\ndestination d u@x a:1:1\n1 -> d\n", ErrSyntax},
		{"bad port", "trunk a h:0\ndestination d u a:1:1\n1 -> d\n", ErrSyntax},
		{"trunk fields", "trunk a\ndestination d u a:1:1\n1 -> d\n", ErrSyntax},
		{"dup trunk in destination", "trunk a h\ndestination d u a:1:1 a:2:1\n1 -> d\n", ErrDuplicate},
		{"priority range", "trunk a h\ndestination d u a:65536:1\n1 -> d\n", ErrBadPriority},
		{"weight range", "trunk a h\ndestination d u a:1:65536\n1 -> d\n", ErrBadWeight},
		{"prefix too long", "trunk a h\ndestination d u a:1:1\n" + strings.Repeat("1", MaxDigits+1) + " -> d\n", ErrBadPrefix},
		{"plus only", "trunk a h\ndestination d u a:1:1\n+ -> d\n", ErrBadPrefix},
		{"two destinations", "trunk a h\ndestination d u a:1:1\n1 -> d d\n", ErrSyntax},
	}
	for _, tt := range tests {
		if _, err := Parse(strings.NewReader(tt.text)); !errors.Is(err, tt.err) {
			t.Errorf("%s: Parse error %v; want %v", tt.name, err, tt.err)
		}
	}
}

func TestParseFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "routes.txt")
	if err := os.WriteFile(name, []byte("trunk a h\n1 -> d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(name)
	if want := name + `:2: unknown destination "d"`; err == nil || err.Error() != want {
		t.Errorf("ParseFile error %q; want %q", err, want)
	}
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ParseFile(missing) error %v; want ErrNotExist", err)
	}
}

func TestParseForwardReferencesAndFormatting(t *testing.T) {
	tbl := mustParse(t, "\t1-800-FORTUNE->fortune   # vanity\r\n"+
		"destination fortune fortune\ttel:1:100 bak:2:5\r\n"+
		"trunk bak backup.example.net:5060\n"+
		"trunk tel telecom.example.com\n")
	want := []Destination{{Name: "fortune", User: "fortune", Trunks: []TrunkRef{{"tel", 1, 100}, {"bak", 2, 5}}}}
	if got := tbl.Destinations(); len(got) != 1 || got[0].Name != want[0].Name || len(got[0].Trunks) != 2 || got[0].Trunks[1] != want[0].Trunks[1] {
		t.Errorf("Destinations() = %+v; want %+v", got, want)
	}
	if got := tbl.Trunks(); len(got) != 2 || got[0] != (TrunkSpec{"bak", "backup.example.net:5060"}) {
		t.Errorf("Trunks() = %+v", got)
	}
	if got := tbl.Entries(); len(got) != 1 || got[0] != (Entry{"18003678863", "fortune"}) {
		t.Errorf("Entries() = %+v", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(defaultRoutes)
	f.Add("trunk a h\ndestination d u a:1:1\n1 -> d\n")
	f.Add("trunk a a.example.com:5060\ndestination d u a:0:65535 b:1:1\n+1-800 -> d\n-> \n->->\n")
	f.Add("destination d u a:1:1:1\n12*3 -> d\n\xff -> d\n# only a comment")
	f.Fuzz(func(t *testing.T, text string) {
		tbl, err := Parse(strings.NewReader(text))
		if err != nil {
			if tbl != nil {
				t.Fatal("Parse returned a table and an error")
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error %v (%T); want a *ParseError", err, err)
			}
			return
		}
		// Every prefix must route to its own entry, and the table must
		// load into a router that can route to it.
		r := New(tbl, Config{})
		for _, e := range tbl.Entries() {
			got, err := tbl.Lookup(e.Prefix)
			if err != nil || got != e {
				t.Fatalf("Lookup(%q) = %+v, %v; want %+v", e.Prefix, got, err, e)
			}
			res, err := r.Route("fuzz", e.Prefix)
			if err != nil || res.Destination != e.Destination {
				t.Fatalf("Route(%q) = %+v, %v; want destination %q", e.Prefix, res, err, e.Destination)
			}
		}
	})
}

func mustParse(t testing.TB, text string) *Table {
	t.Helper()
	tbl, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return tbl
}
