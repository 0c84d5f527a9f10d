package ledger

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"observer/internal/telecom/money"
)

// Environment of the child process started by TestCrashRecovery.
const (
	crashChildDSN    = "OBSERVER_LEDGER_CRASH_DSN"
	crashChildPrefix = "OBSERVER_LEDGER_CRASH_PREFIX"
)

// TestCrashRecovery kills a process that is charging as fast as it can with
// SIGKILL at a random point, then checks on reopening that the ledger is
// consistent and that every charge and top-up the process acknowledged is
// there. The child prints each acknowledgement only after the ledger
// returned, so anything read from its pipe was acknowledged.
func TestCrashRecovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		rounds := 20
		if testing.Short() {
			rounds = 4
		}
		// Create and seed the database up front so every child starts at a
		// comparable point: charging right away.
		l0, err := Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		_ = l0.Close()

		var allCharges, allTopUps []string
		for round := range rounds {
			killAfter := 1 + rand.IntN(250)
			charges, topUps := crashOnce(t, dsn, fmt.Sprintf("r%d", round), killAfter)
			allCharges = append(allCharges, charges...)
			allTopUps = append(allTopUps, topUps...)

			// Every acknowledged entry from this and earlier rounds must
			// have survived, and the balances must match the rows.
			l := openLedger(t, dsn)
			rep := mustVerify(t, l)
			for k, acked := range [][]string{opCharge: allCharges, opTopUp: allTopUps} {
				stored := storedTxnIDs(t, l, opKind(k))
				for _, id := range acked {
					if !stored[id] {
						t.Fatalf("round %d: acknowledged %s %s lost", round, opKind(k), id)
					}
				}
			}
			if rep.Charges < int64(len(allCharges)) || rep.TopUps < int64(len(allTopUps)) {
				t.Fatalf("round %d: report %+v has fewer entries than acknowledged (%d, %d)",
					round, rep, len(allCharges), len(allTopUps))
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%d rounds, %d acknowledged charges and %d top-ups survived SIGKILL", rounds, len(allCharges), len(allTopUps))
	})
}

// storedTxnIDs returns every txnID of kind k in the database.
func storedTxnIDs(t *testing.T, l *Ledger, k opKind) map[string]bool {
	t.Helper()
	ctx := context.Background()
	set := map[string]bool{}
	err := l.st.snapshot(ctx, func(q querier) error {
		ids, err := queryStrings(ctx, q, "SELECT txn_id FROM "+tables[k])
		for _, id := range ids {
			set[id] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// crashOnce runs one child, kills it after killAfter acknowledgements and
// returns every txnID it acknowledged, including those still in the pipe.
func crashOnce(t *testing.T, dsn, prefix string, killAfter int) (charges, topUps []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildDSN+"="+dsn, crashChildPrefix+"="+prefix)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		kind, id, ok := strings.Cut(sc.Text(), " ")
		switch {
		case !ok:
			continue // test framework output
		case kind == "CHARGE":
			charges = append(charges, id)
		case kind == "TOPUP":
			topUps = append(topUps, id)
		case kind == "BAD":
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child reported: %s", id)
		}
		if !killed && len(charges)+len(topUps) >= killAfter {
			// Keep reading afterwards: lines written before the kill
			// were acknowledged too.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !killed || !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed mid-run (killed=%v, wait: %v, %d acks); stderr:\n%s",
			killed, err, len(charges)+len(topUps), stderr.String())
	}
	return charges, topUps
}

// TestCrashChild is the child process of TestCrashRecovery; it does nothing
// in a normal test run.
func TestCrashChild(t *testing.T) {
	dsn := os.Getenv(crashChildDSN)
	if dsn == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	prefix := os.Getenv(crashChildPrefix)
	ctx := context.Background()
	l, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// os.Stdout is unbuffered: once Fprintf returns, the line is in the
		// pipe and survives this process being killed.
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	// Several workers keep the writer's batches large, so the kill lands in
	// the middle of multi-request transactions. The loop is bounded so that
	// an orphaned child cannot run forever.
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				acct := SeedAccountID(1 + rand.IntN(SeedAccounts))
				txn := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				a := money.Amount(1 + rand.IntN(100))
				if i%10 == 9 {
					if _, err := l.TopUp(ctx, txn, acct, a); err != nil {
						say("BAD top-up %s: %v", txn, err)
						return
					}
					say("TOPUP %s", txn)
					continue
				}
				r, err := l.Charge(ctx, txn, acct, a)
				if err != nil {
					say("BAD charge %s: %v", txn, err)
					return
				}
				say("CHARGE %s", txn)
				// A retry must be answered, not charged again.
				if again, err := l.Charge(ctx, txn, acct, a); err != nil || !again.Replayed || !again.At.Equal(r.At) {
					say("BAD retry %s: %+v %v", txn, again, err)
					return
				}
			}
		})
	}
	wg.Wait()
	_ = l.Close()
}
