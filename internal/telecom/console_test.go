package telecom

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestConsole(t *testing.T) {
	s := startSystem(t, quiet(t))
	tests := []struct {
		line, want string
		fails      bool
	}{
		{"route CALL-001 1-800-FORTUNE", "sip:fortune@telecom.example.com", false},
		{"route CALL-001", "usage: route", true},
		{"charge T-1 ACC-001 100.00", "T-1", false},
		{"charge T-1 ACC-001 100.00", "T-1 (already charged)", false},
		{"charge T-2 ACC-001 -1", "negative", true},
		{"load 25", "load 25 calls/s", false},
		{"load fast", "not a number", true},
		{"trunk tel-core-1 0.5", "failure rate 0.5", false},
		{"trunk tel-core-1 2", "within [0, 1]", true},
		{"trunk nope 0.5", "nope", true},
		{"kill nobody", "no process", true},
		{"kill <0.999999.0>", "no process", true},
		{"metrics", "routed", false},
		{"frobnicate", "unknown command", true},
		{"", "empty command", true},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			out, err := s.Exec(tc.line)
			got := out
			if err != nil {
				got = err.Error()
			}
			if (err != nil) != tc.fails || !strings.Contains(got, tc.want) {
				t.Fatalf("Exec(%q) = %q, %v; want %q (fails %v)", tc.line, out, err, tc.want, tc.fails)
			}
		})
	}
	t.Run("kill by name restarts the router", func(t *testing.T) {
		old, _ := s.Node.Whereis(RouterName)
		w := s.Node.Monitor(old)
		if _, err := s.Exec("kill " + RouterName); err != nil {
			t.Fatal(err)
		}
		<-w.C
	})
}

// FuzzConsole feeds the command parser arbitrary lines: it must answer or
// refuse, never panic. Commands that would change the system are limited
// to harmless targets by the seed corpus; the fuzzer may still reach them.
func FuzzConsole(f *testing.F) {
	for _, s := range []string{"route C 112", "charge T ACC-001 1.00", "load 5", "trunk tel-core-1 0", "kill <0.1.0>", "closed 3", "metrics", "help", "routes /nonexistent", "load NaN", "load 1e309", "trunk x -0"} {
		f.Add(s)
	}
	cfg := DefaultConfig()
	cfg.Load.Enabled = false
	cfg.Billing.DataDir = f.TempDir()
	s, err := Start(cfg)
	if err != nil {
		f.Fatal(err)
	}
	defer s.Stop(0)
	f.Fuzz(func(t *testing.T, line string) {
		if strings.HasPrefix(strings.TrimSpace(line), "kill") {
			return // killing random processes would end the run, not find a bug
		}
		out, err := s.Exec(line)
		if err == nil && !utf8.ValidString(out) && utf8.ValidString(line) {
			t.Fatalf("Exec(%q) printed invalid text %q", line, out)
		}
	})
}
