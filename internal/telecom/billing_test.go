package telecom

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/telecom/ledger"
	"observer/internal/telecom/money"
)

func mustAmount(t *testing.T, s string) money.Amount {
	t.Helper()
	a, err := money.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestChargeQuickStartAndIdempotency(t *testing.T) {
	s := startSystem(t, quiet(t))
	b := s.Billing
	before, _ := b.Account(s.Node, "ACC-001")
	rec, err := b.Charge(s.Node, "TXN-1", "ACC-001", mustAmount(t, "100.00"), wait)
	if err != nil || rec.TxnID != "TXN-1" {
		t.Fatalf("%v %v", rec, err)
	}
	again, err := b.Charge(s.Node, "TXN-1", "ACC-001", mustAmount(t, "100.00"), wait)
	if err != nil || again.TxnID != "TXN-1" || !again.Replayed {
		t.Fatalf("retry: %+v %v", again, err)
	}
	after, _ := b.Account(s.Node, "ACC-001")
	if before.Balance-after.Balance != mustAmount(t, "100.00") {
		t.Fatalf("balance moved by %v, want 100.00 once", before.Balance-after.Balance)
	}
	tests := []struct {
		name    string
		txn     string
		account string
		amount  string
		want    error
	}{
		{"unknown account", "TXN-2", "ACC-NOPE", "1.00", ledger.ErrUnknownAccount},
		{"insufficient funds", "TXN-3", "ACC-002", "99999999.00", ledger.ErrInsufficientFunds},
		{"idempotency conflict", "TXN-1", "ACC-001", "5.00", ledger.ErrIdempotencyConflict},
		{"invalid amount", "TXN-4", "ACC-001", "0", ledger.ErrInvalidAmount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			amt, _ := money.Parse(tc.amount) // zero stays zero to reach the ledger's check
			if _, err := b.Charge(s.Node, tc.txn, tc.account, amt, wait); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPoolReadsTheLedger(t *testing.T) {
	s := startSystem(t, quiet(t))
	b := s.Billing
	for i := 0; i < 3; i++ {
		if _, err := b.Charge(s.Node, fmt.Sprintf("R-%d", i), "ACC-007", mustAmount(t, "1.00"), wait); err != nil {
			t.Fatal(err)
		}
	}
	recent, err := b.Recent(s.Node, 2)
	if err != nil || len(recent) != 2 || recent[0].TxnID != "R-2" {
		t.Fatalf("recent %v %v", recent, err)
	}
	busy, err := b.TopAccounts(s.Node, 1, false)
	if err != nil || len(busy) != 1 || busy[0].ID != "ACC-007" || busy[0].Charges != 3 {
		t.Fatalf("busiest %v %v", busy, err)
	}
	low, err := b.TopAccounts(s.Node, 1, true)
	if err != nil || low[0].ID != "ACC-007" {
		t.Fatalf("lowest %v %v", low, err)
	}
	// A checkout is handled after the earlier checkins: holding one worker,
	// every other worker is idle again.
	w, err := b.Pool().Checkout(s.Node, false, wait)
	if err != nil {
		t.Fatal(err)
	}
	if st := b.Pool().Stats(); st.Busy != 1 || st.Idle != s.Config.Billing.PoolSize-1 {
		t.Fatalf("pool after reads %+v", st)
	}
	b.Pool().Checkin(s.Node, w)
}

func TestKillBillingUnderLoad(t *testing.T) {
	s := startSystem(t, quiet(t))
	b := s.Billing
	const callers, each = 8, 100
	done, failures := chargeFromCallers(t, s, "K", "ACC-100", callers, each)
	for b.Stats().Ledger.ChargesCommitted < 100 {
		runtimeYield()
	}
	pid, _ := s.Node.Whereis(BillingName)
	s.Node.Exit(pid, runtime.Kill)
	<-done
	acct, _ := b.Account(s.Node, "ACC-100")
	if spent := acct.OpeningBalance - acct.Balance; spent != money.Amount(callers*each) {
		t.Fatalf("spent %v cents, want exactly %d: a charge was lost or doubled", int64(spent), callers*each)
	}
	rep, err := b.Ledger().Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", rep, err)
	}
	t.Logf("%d calls failed during the restart and were retried", failures())
}

// chargeFromCallers starts callers goroutines that each charge account
// each cents, one at a time, under txnIDs prefix-<caller>-<i>, through
// chargeUntilDone. done is closed once all have finished; failed then
// tells how many attempts failed and were retried.
func chargeFromCallers(t *testing.T, s *System, prefix, account string, callers, each int) (done <-chan struct{}, failed func() int) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fails int
	)
	start := make(chan struct{})
	for c := range callers {
		wg.Go(func() {
			<-start
			for i := range each {
				txn := fmt.Sprintf("%s-%d-%d", prefix, c, i)
				n, err := chargeUntilDone(t, s, txn, account)
				mu.Lock()
				fails += n
				mu.Unlock()
				if err != nil {
					t.Errorf("%s: %v", txn, err)
					return
				}
			}
		})
	}
	close(start)
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	return finished, func() int {
		mu.Lock()
		defer mu.Unlock()
		return fails
	}
}

// chargeUntilDone charges one cent to account under txn, as a call
// session does: after a retryable failure it waits for
// billing_engine_server to be back and sends the same txnID again. It
// returns how many attempts failed, and the first error that cannot be
// retried.
func chargeUntilDone(t *testing.T, s *System, txn, account string) (failed int, err error) {
	for {
		_, err := s.Billing.Charge(s.Node, txn, account, mustAmount(t, "0.01"), wait)
		if err == nil || !Retryable(err) {
			return failed, err
		}
		failed++
		for _, ok := s.Node.Whereis(BillingName); !ok; _, ok = s.Node.Whereis(BillingName) {
			runtimeYield()
		}
	}
}

// runtimeYield gives other goroutines a moment without guessing a duration
// that the test depends on.
func runtimeYield() { time.Sleep(100 * time.Microsecond) }

func TestCompletedCallsAreChargedExactlyOnce(t *testing.T) {
	cfg := quiet(t)
	cfg.Load.Enabled = true
	cfg.Load.Rate = 500
	cfg.Load.Duration = Duration{time.Millisecond}
	cfg.Load.RingTime = Duration{time.Millisecond}
	s := startSystem(t, cfg)
	for s.Sessions.Stats().Completed < 200 {
		runtimeYield()
	}
	// Kill the billing engine mid-stream: sessions retry with the same txnID.
	pid, _ := s.Node.Whereis(BillingName)
	s.Node.Exit(pid, runtime.Kill)
	for s.Sessions.Stats().Completed < 400 {
		runtimeYield()
	}
	s.Stop(5 * time.Second)
	l, err := OpenLedger(cfg.Billing)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep, err := l.Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", rep, err)
	}
	completed := s.Sessions.Stats().Completed
	st := s.Billing.Stats()
	if uint64(rep.Charges) != completed-st.Unbilled || st.Unbilled != 0 {
		t.Fatalf("%d charges for %d completed calls (%d unbilled)", rep.Charges, completed, st.Unbilled)
	}
}

func TestKillTheDBPoolFreesItsConnections(t *testing.T) {
	s := startSystem(t, quiet(t))
	for round := 0; round < 3; round++ {
		pool, _ := s.Node.Whereis(PoolName)
		w := s.Node.Monitor(pool)
		s.Node.Exit(pool, runtime.Kill)
		<-w.C
		// rest_for_one brings back db_pool and billing_engine_server; the
		// new workers get connections and reads work again.
		eventually(t, func() bool {
			_, err := s.Billing.Recent(s.Node, 1)
			return err == nil
		})
		if _, err := s.Billing.Charge(s.Node, fmt.Sprintf("P-%d", round), "ACC-001", mustAmount(t, "1.00"), wait); err != nil && !Retryable(err) {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// TestKillBillingWithManyChargesInFlight kills billing_engine_server while
// hundreds of charges are queued in the ledger for it: their callers get
// the exit, retry with the same txnIDs through the restarted server, and
// every charge is made exactly once, whether the original was committed
// before, in the same batch as, or after its retry.
func TestKillBillingWithManyChargesInFlight(t *testing.T) {
	s := startSystem(t, quiet(t))
	b := s.Billing
	const callers, each = 400, 5
	before, err := b.Account(s.Node, "ACC-200")
	if err != nil {
		t.Fatal(err)
	}
	done, retried := chargeFromCallers(t, s, "M", "ACC-200", callers, each)
	kills := 0
	// Kill it twice while charges are being made.
kill:
	for kills < 2 {
		select {
		case <-done:
			break kill
		default:
		}
		if b.Stats().Ledger.ChargesCommitted >= int64(300*(kills+1)) {
			pid, _ := s.Node.Whereis(BillingName)
			s.Node.Exit(pid, runtime.Kill)
			kills++
		}
		runtimeYield()
	}
	<-done
	if kills < 2 {
		t.Errorf("killed billing_engine_server %d times, want 2", kills)
	}
	after, err := b.Account(s.Node, "ACC-200")
	if err != nil {
		t.Fatal(err)
	}
	if spent := before.Balance - after.Balance; spent != money.Amount(callers*each) {
		t.Fatalf("spent %d cents, want exactly %d: a charge was lost or doubled", int64(spent), callers*each)
	}
	if st := b.Stats().Ledger; st.ChargesCommitted != callers*each {
		t.Errorf("%d charges committed, want %d", st.ChargesCommitted, callers*each)
	}
	rep, err := b.Ledger().Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", rep, err)
	}
	t.Logf("%d charges retried after the kills", retried())
}
