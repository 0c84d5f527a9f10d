package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tmux drives a terminal session running the real binary.
type tmux struct {
	t       *testing.T
	session string
}

func (m *tmux) run(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", args...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (m *tmux) screen() string { return m.run("capture-pane", "-t", m.session, "-p") }

func (m *tmux) keys(keys ...string) {
	m.run(append([]string{"send-keys", "-t", m.session}, keys...)...)
}

// waitFor polls the screen until re matches, as a user watching it would,
// and returns the submatches. The bound is far above what a healthy run needs.
func (m *tmux) waitFor(re *regexp.Regexp) []string {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := m.screen()
		if sub := re.FindStringSubmatch(s); sub != nil {
			return sub
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("screen never matched %v:\n%s", re, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUIEndToEnd runs observer in tmux: start, open the tree, kill the
// router with its keys, see it restart with a new PID and a restart count
// of 1, quit cleanly.
func TestUIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is needed for the end-to-end test")
		}
		t.Skip("tmux is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "observer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	m := &tmux{t: t, session: fmt.Sprintf("observer-e2e-%d", os.Getpid())}
	status := filepath.Join(dir, "status")
	m.run("new-session", "-d", "-s", m.session, "-x", "160", "-y", "48",
		fmt.Sprintf("%s --data-dir %s --rate 20 --drain 100ms; echo $? > %s; sleep 60", bin, filepath.Join(dir, "data"), status))
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", m.session).Run() })

	m.waitFor(regexp.MustCompile(`1 Overview`))
	m.keys("2")
	before := m.waitFor(regexp.MustCompile(`call_router\s+(<0\.\d+\.0>)\s+running\s+worker\s+↻ 0`))[1]
	m.keys("j")   // select the router, the first child of telecom_sup
	m.keys("C-k") // kill it at once
	after := m.waitFor(regexp.MustCompile(`call_router\s+(<0\.\d+\.0>)\s+running\s+worker\s+↻ 1\s+last: killed`))[1]
	if after == before {
		t.Fatalf("the router kept its PID %s", before)
	}
	m.keys("q")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(status); err == nil && len(b) > 0 {
			if strings.TrimSpace(string(b)) != "0" {
				t.Fatalf("observer exited with %s\n%s", b, m.screen())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("observer did not quit:\n%s", m.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
