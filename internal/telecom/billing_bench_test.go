package telecom

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/telecom/ledger"
)

// billingBench is the billing subtree (db_pool and billing_engine_server)
// over a fresh SQLite ledger on its own node, as `observer bench --scenario
// charge` runs it.
type billingBench struct {
	node *runtime.Node
	b    *Billing
	l    *ledger.Ledger
}

func startBillingBench(tb testing.TB) *billingBench {
	tb.Helper()
	cfg := DefaultConfig().Billing
	cfg.DataDir = tb.TempDir()
	l, err := OpenLedger(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := NewBilling(cfg, l)
	if err != nil {
		l.Close()
		tb.Fatal(err)
	}
	n, stop, err := b.StartAlone("bench_billing_sup")
	if err != nil {
		l.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stop()
		l.Close()
	})
	return &billingBench{node: n, b: b, l: l}
}

// BenchmarkChargeEndToEnd drives Billing.Charge from many processes at
// once, each charging fresh txnIDs back to back: the whole path from the
// caller through billing_engine_server and the ledger's group commit
// (every batch fsync'd) and back. It reports charges/s, the latency
// percentiles and the mean group-commit batch.
func BenchmarkChargeEndToEnd(b *testing.B) {
	for _, procs := range []int{64, 4000} {
		b.Run("procs="+strconv.Itoa(procs), func(b *testing.B) {
			benchChargeEndToEnd(b, procs)
		})
	}
}

func benchChargeEndToEnd(b *testing.B, procs int) {
	bb := startBillingBench(b)
	txns := make([]string, b.N)
	accts := make([]string, ledger.SeedAccounts)
	for i := range txns {
		// As the system names them: each caller numbers its own charges
		// under its own prefix, so a batch writes all over the txn_id index.
		txns[i] = "E2E-" + strconv.Itoa(i%procs) + "-" + strconv.Itoa(i/procs)
	}
	for i := range accts {
		accts[i] = ledger.SeedAccountID(i + 1)
	}
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		lats  = make([]time.Duration, 0, b.N)
		begin = make(chan struct{})
	)
	for range procs {
		wg.Add(1)
		if _, err := bb.node.Spawn(func(p *runtime.Process) {
			defer wg.Done()
			local := make([]time.Duration, 0, b.N/procs+1)
			defer func() {
				mu.Lock()
				lats = append(lats, local...)
				mu.Unlock()
			}()
			<-begin
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				start := time.Now()
				rec, err := bb.b.Charge(p, txns[i], accts[i%len(accts)], 1, CallTimeout)
				if err != nil || rec.Replayed {
					b.Errorf("charge %s: %+v %v", txns[i], rec, err)
					return
				}
				local = append(local, time.Since(start))
			}
		}, runtime.SpawnOpts{}); err != nil {
			b.Fatal(err)
		}
	}
	before, cpu0, written0 := bb.l.Stats(), cpuTime(), bytesWritten()
	b.ReportAllocs()
	b.ResetTimer()
	close(begin)
	wg.Wait()
	b.StopTimer()
	after, cpu := bb.l.Stats(), cpuTime()-cpu0
	if got := after.ChargesCommitted - before.ChargesCommitted; got != int64(b.N) {
		b.Fatalf("%d charges committed, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "charges/s")
	// CPU per charge, the whole process's: on a shared machine it moves far
	// less than the throughput does.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1000, "cpu-µs/op")
	if written0 >= 0 {
		b.ReportMetric(float64(bytesWritten()-written0)/float64(b.N), "written-B/op")
	}
	if len(lats) > 0 {
		slices.Sort(lats)
		b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
	}
	if batches := after.Batches - before.Batches; batches > 0 {
		b.ReportMetric(float64(after.BatchedRequests-before.BatchedRequests)/float64(batches), "req/batch")
	}
}

// cpuTime returns the CPU time, user and system, this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bytesWritten returns the bytes this process has handed to write system
// calls (Linux's wchar), or -1 where that is not known.
func bytesWritten() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// BenchmarkChargeRetryEndToEnd is BenchmarkChargeEndToEnd's retry path:
// every charge repeats a committed txnID and is answered from the ledger's
// index, so it measures the path's own cost without the disk.
func BenchmarkChargeRetryEndToEnd(b *testing.B) {
	bb := startBillingBench(b)
	const known = 4096
	txns, accts := make([]string, known), make([]string, known)
	for i := range txns {
		txns[i], accts[i] = fmt.Sprintf("RETRY-%d", i), ledger.SeedAccountID(1+i%ledger.SeedAccounts)
		if _, err := bb.b.Charge(bb.node, txns[i], accts[i], 1, CallTimeout); err != nil {
			b.Fatal(err)
		}
	}
	const procs = 256
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		begin = make(chan struct{})
	)
	for range procs {
		wg.Add(1)
		if _, err := bb.node.Spawn(func(p *runtime.Process) {
			defer wg.Done()
			<-begin
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				k := i % known
				rec, err := bb.b.Charge(p, txns[k], accts[k], 1, CallTimeout)
				if err != nil || !rec.Replayed {
					b.Errorf("retry %s: %+v %v", txns[k], rec, err)
					return
				}
			}
		}, runtime.SpawnOpts{}); err != nil {
			b.Fatal(err)
		}
	}
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	close(begin)
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "retries/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/1000, "cpu-µs/op")
}
