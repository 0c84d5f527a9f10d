package main

import (
	"strings"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/supervisor"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(&out, 2000, 300); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"2000 agents started, did their job and exited normal",
		"20 of them crashed once (flaky_network) and were restarted: pool_sup counted 20 restarts",
		"children left: 0",
		"300 idle agents started; pool_sup has 300 children",
		": 300 agents killed (brutal_kill",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// A transient agent killed from outside exited abnormally, so it is
// restarted with the same job; one stopped by the supervisor is not.
func TestTransientAgents(t *testing.T) {
	pl, err := newPool(10)
	if err != nil {
		t.Fatal(err)
	}
	defer supervisor.Stop(pl.n, pl.sup, runtime.Shutdown, timeout)
	pids, err := pl.spawn(1, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	sub := pl.n.Subscribe(64)
	defer sub.Close()

	pl.n.Exit(pids[0], runtime.Kill)
	awaitReport(t, sub, supervisor.ReportChildRestarted)
	if got := pl.attempts[1].Load(); got != 2 {
		t.Errorf("job 1 started %d times, want 2", got)
	}

	if err := supervisor.TerminateDynamicChild(pl.n, pl.sup, pids[1], timeout); err != nil {
		t.Fatal(err)
	}
	if reason, _ := pids[1].ExitReason(); reason != runtime.Killed {
		t.Errorf("terminated agent exited %v, want killed (brutal_kill)", reason)
	}
	if c, _ := supervisor.CountChildren(pl.n, pl.sup, timeout); c.Active != 1 {
		t.Errorf("%d children, want only the restarted agent", c.Active)
	}
}

func awaitReport(t *testing.T, sub *runtime.Subscription, text string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-sub.C:
			if e.Kind == runtime.EventSupervisor && e.Text == text {
				return
			}
		case <-deadline:
			t.Fatalf("no %s report", text)
		}
	}
}
