package telecom

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"observer/internal/telecom/routing"
)

func cdrTo(dest string, d time.Duration) CDR {
	return CDR{CallID: "C", Account: "ACC-001", Destination: dest, Duration: d, Start: time.Now()}
}

func TestDefaultRulesPricePerDestination(t *testing.T) {
	rs := DefaultRules()
	flat := mustAmount(t, "0.10")
	tests := []struct {
		dest string
		d    time.Duration
		want string
	}{
		{"emergency", time.Minute, "0.00"},
		{"fortune", 10 * time.Minute, "0.00"},
		{"uk", time.Minute, "0.18"},
		{"uk", 90 * time.Second, "0.27"},
		{"asia-pacific", 2 * time.Minute, "0.70"},
		{"nanp", 2 * time.Hour, "6.00"}, // the long-call rule
		{"nanp", time.Minute, "0.10"},   // the default
		{"nanp", time.Millisecond, "0.01"},
	}
	for _, tc := range tests {
		if got := rs.Rate(cdrTo(tc.dest, tc.d), flat).String(); got != tc.want {
			t.Errorf("%s for %v: %s, want %s", tc.dest, tc.d, got, tc.want)
		}
	}
}

func TestRulesFirstMatchWinsAndFallBack(t *testing.T) {
	rs, err := ParseRules("r.txt", strings.NewReader(`
# a comment
destination == "uk" && duration_s >= 60 => 0.30
destination == "uk"                     => 0.50   # short calls cost more
trunk startsWith "intl" || account == "ACC-VIP" => 0.01
`))
	if err != nil {
		t.Fatal(err)
	}
	if rs.Len() != 3 {
		t.Fatalf("%d rules", rs.Len())
	}
	flat := mustAmount(t, "0.10")
	long, short := cdrTo("uk", 2*time.Minute), cdrTo("uk", 30*time.Second)
	intl := cdrTo("europe", time.Minute)
	intl.Trunk = "intl-a"
	other := cdrTo("nanp", time.Minute)
	for c, want := range map[*CDR]string{&long: "0.60", &short: "0.25", &intl: "0.01", &other: "0.10"} {
		if got := rs.Rate(*c, flat).String(); got != want {
			t.Errorf("%+v: %s, want %s", *c, got, want)
		}
	}
	// Without a default line, calls no rule matches pay the flat tariff.
	if _, ok := rs.Tariff(other); ok {
		t.Fatal("a tariff for a call no rule matches")
	}
}

func TestBadRulesAreRefusedWithTheirLine(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"no arrow", "destination == \"uk\" 0.10\n", []string{"bad.txt:1: want CONDITION => PRICE"}},
		{"bad price", "default => 0.10\ndestination == \"uk\" => cheap\n", []string{"bad.txt:2:", `bad price "cheap"`}},
		{"too precise", "destination == \"uk\" => 0.125\n", []string{"bad.txt:1:", `bad price "0.125"`}},
		{"negative", "destination == \"uk\" => -1.00\n", []string{"bad.txt:1:", "bad price"}},
		{"unknown name", "default => 0.10\n\ndestinaton == \"uk\" => 0.10\n", []string{"bad.txt:3:1: unknown name destinaton"}},
		{"type mismatch", `duration_s == "long" => 0.10`, []string{"bad.txt:1:", "mismatched types"}},
		{"not a condition", "duration_s + 1 => 0.10", []string{"bad.txt:1:", "expected bool"}},
		{"syntax", `destination == ("uk" => 0.10`, []string{"bad.txt:1:"}},
		{"no condition", "=> 0.10", []string{"bad.txt:1: no condition"}},
		{"two defaults", "default => 0.10\ndefault => 0.20\n", []string{"bad.txt:2: second default (first on line 1)"}},
		{"empty", "# only comments\n\n", []string{"bad.txt: no rules"}},
		{"every bad line", "x => 1\ny => 2\n", []string{"bad.txt:1:", "bad.txt:2:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := ParseRules("bad.txt", strings.NewReader(tc.text))
			if err == nil {
				t.Fatalf("accepted: %d rules", rs.Len())
			}
			var re *RulesError
			if !errors.As(err, &re) {
				t.Fatalf("%T is not a *RulesError: %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCostsFile(t *testing.T) {
	c, err := ParseCosts("c.txt", strings.NewReader("tel-core-1 0.012  # cheap\n\ncarrier-b 0.5\n"))
	if err != nil || c["tel-core-1"] != 0.012 || c["carrier-b"] != 0.5 || len(c) != 2 {
		t.Fatalf("%v %v", c, err)
	}
	for text, want := range map[string]string{
		"tel-core-1\n":                    "c.txt:1: want TRUNK COST",
		"a 0.1\nb -1\n":                   `c.txt:2: bad cost "-1"`,
		"a 0.1\nb NaN\n":                  `c.txt:2: bad cost "NaN"`,
		"a 0.1\na 0.2\n":                  `c.txt:2: trunk "a" priced twice (first on line 1)`,
		"# nothing\n":                     "c.txt: no trunk costs",
		"tel-core-1 0.1 extra\nb 1.0.0\n": "c.txt:1:",
	} {
		if _, err := ParseCosts("c.txt", strings.NewReader(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", text, err, want)
		}
	}
}

func TestLeastCostTableOrdersEachPriorityByCost(t *testing.T) {
	costs := TrunkCosts{"tel-core-1": 0.004, "tel-core-2": 0.003, "carrier-b": 0.009, "carrier-c": 0.009}
	lc, err := leastCost(routing.DefaultTable(), costs)
	if err != nil {
		t.Fatal(err)
	}
	order := map[string]string{}
	for _, d := range lc.Destinations() {
		var parts []string
		for _, r := range d.Trunks {
			parts = append(parts, r.Trunk+":"+strconv.Itoa(r.Priority)+":"+strconv.Itoa(r.Weight))
		}
		order[d.Name] = strings.Join(parts, " ")
	}
	for dest, want := range map[string]string{
		// Priority 1 splits by cost; priority 2 comes after it.
		"tollfree": "tel-core-2:0:30 tel-core-1:1:70 carrier-b:2:100",
		// Equal cost keeps one priority, and the weights.
		"nanp": "tel-core-2:0:100 carrier-b:1:50 carrier-c:1:50",
		// Priorities already distinct stay in their order.
		"fortune": "tel-core-1:0:100 tel-core-2:1:100 carrier-b:2:100",
		// Unpriced trunks are ranked after priced ones, among themselves by weight.
		"europe": "intl-a:0:70 intl-b:0:30 intl-c:1:100",
	} {
		if order[dest] != want {
			t.Errorf("%s: %s, want %s", dest, order[dest], want)
		}
	}
	if len(lc.Entries()) != len(routing.DefaultTable().Entries()) {
		t.Fatal("routes lost")
	}
	for _, e := range routing.DefaultTable().Entries() {
		if got, err := lc.Lookup(e.Prefix); err != nil || got != e {
			t.Fatalf("%v: %v %v", e, got, err)
		}
	}
}
