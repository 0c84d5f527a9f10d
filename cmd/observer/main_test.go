package main

import (
	"bytes"
	"strings"
	"testing"
)

// runCLI runs the command line in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(&env{stdout: &out, stderr: &errOut}, args)
	return code, out.String(), errOut.String()
}

func TestQuickStartFromTheShell(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"route the quick-start call", []string{"route", "CALL-001", "1-800-FORTUNE"}, 0, "sip:fortune@telecom.example.com\n", ""},
		{"a bad number is an error", []string{"route", "CALL-002", "1-800-FOR*UNE"}, 1, "", "invalid character '*'"},
		{"a missing argument is a usage error", []string{"route", "CALL-003"}, 2, "", "want CALL-ID and NUMBER"},
		{"charge prints the txnID", []string{"charge", "--data-dir", dir, "TXN-1", "ACC-001", "100.00"}, 0, "TXN-1\n", ""},
		{"a repeated charge prints it again", []string{"charge", "TXN-1", "ACC-001", "100.00", "--data-dir", dir}, 0, "TXN-1\n", ""},
		{"a conflicting charge names its kind", []string{"charge", "--data-dir", dir, "TXN-1", "ACC-001", "1.00"}, 1, "", "idempotency_conflict"},
		{"a negative amount is refused", []string{"charge", "--data-dir", dir, "TXN-2", "ACC-001", "-1"}, 1, "", "invalid_amount"},
		{"an unknown account is refused", []string{"charge", "--data-dir", dir, "TXN-3", "ACC-X", "1"}, 1, "", "unknown_account"},
		{"the ledger verifies", []string{"ledger", "verify", "--data-dir", dir}, 0, "ledger OK: 10000 accounts, 1 charges, 0 violations\n", ""},
		{"an unknown command", []string{"frobnicate"}, 2, "", "unknown command"},
		{"a bad flag", []string{"route", "--nope", "a", "b"}, 2, "", "flag provided but not defined"},
		{"a broken config file", []string{"route", "--config", "/nonexistent.toml", "a", "b"}, 1, "", "nonexistent.toml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code || (tc.stdout != "" && out != tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("observer %s: exit %d, stdout %q, stderr %q", strings.Join(tc.args, " "), code, out, errOut)
			}
		})
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	code, out, _ := runCLI(t, "help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(out, c.name) {
			t.Errorf("help does not list %s", c.name)
		}
	}
	for _, c := range commands {
		if code, _, errOut := runCLI(t, c.name, "--help"); code != 0 || !strings.Contains(errOut, "usage: observer "+c.name) {
			t.Errorf("%s --help: exit %d, %q", c.name, code, errOut)
		}
	}
}

func TestMetricsCommand(t *testing.T) {
	code, out, errOut := runCLI(t, "metrics", "--data-dir", t.TempDir(), "--after", "300ms", "--rate", "200")
	if code != 0 || !strings.Contains(out, "routed ") || !strings.Contains(out, "failed ") || !strings.Contains(out, "dropped ") {
		t.Fatalf("exit %d, %q %q", code, out, errOut)
	}
}
