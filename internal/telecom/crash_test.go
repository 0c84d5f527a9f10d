package telecom

import (
	"bufio"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"observer/internal/telecom/money"
)

// crashChildEnv selects the child role of TestSIGKILLUnderLoad.
const crashChildEnv = "OBSERVER_CRASH_CHILD_DIR"

// TestSIGKILLUnderLoad kills the whole system with SIGKILL while it routes
// calls, bills them and takes charges, 20 times in a row. After each kill
// the ledger verifies, and every charge the child acknowledged is in it.
func TestSIGKILLUnderLoad(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("the child role runs in TestCrashChild")
	}
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	for round := 0; round < rounds; round++ {
		cmd := osexec.Command(os.Args[0], "-test.run", "^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("OBSERVER_CRASH_ROUND=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var acked []string
		sc := bufio.NewScanner(out)
		// Kill after a round-dependent number of acknowledgements, so the
		// kill lands at different points of the group-commit cycle.
		killAt := 50 + 37*round
		for sc.Scan() {
			line := sc.Text()
			if txn, ok := strings.CutPrefix(line, "ACK "); ok {
				acked = append(acked, txn)
				if len(acked) == killAt {
					cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}
		cmd.Wait()
		if len(acked) < killAt {
			t.Fatalf("round %d: the child stopped after %d acknowledgements", round, len(acked))
		}
		cfg := DefaultConfig()
		cfg.Billing.DataDir = dir
		l, err := OpenLedger(cfg.Billing)
		if err != nil {
			t.Fatalf("round %d: reopening the ledger: %v", round, err)
		}
		rep, err := l.Verify(context.Background())
		if err != nil || !rep.OK() {
			t.Fatalf("round %d: verify: %v %v", round, rep, err)
		}
		for _, txn := range acked {
			if _, ok, err := l.FindCharge(context.Background(), txn); err != nil || !ok {
				t.Fatalf("round %d: acknowledged charge %s is not in the ledger (%v)", round, txn, err)
			}
		}
		l.Close()
	}
}

// TestCrashChild is the child: the whole system under load, with charges
// taken from several goroutines, each acknowledged on stdout once durable.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestSIGKILLUnderLoad")
	}
	cfg := DefaultConfig()
	cfg.Billing.DataDir = dir
	cfg.Load.Rate = 1000
	cfg.Load.Duration = Duration{time.Millisecond}
	cfg.Load.RingTime = Duration{time.Millisecond}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	round := os.Getenv("OBSERVER_CRASH_ROUND")
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				txn := fmt.Sprintf("CRASH-%s-%d-%d", round, g, i)
				if _, err := s.Billing.Charge(s.Node, txn, fmt.Sprintf("ACC-%03d", 1+(g*7+i)%9000), money.Amount(1), CallTimeout); err != nil {
					continue
				}
				mu.Lock()
				fmt.Fprintln(w, "ACK "+txn)
				w.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait() // never returns: the parent kills this process
}
