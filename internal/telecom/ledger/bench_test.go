package ledger

import (
	"context"
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
)

// benchParallelism multiplies GOMAXPROCS into the number of concurrent
// callers, standing in for many call-handling processes charging at once.
const benchParallelism = 64

// BenchmarkChargeGroupCommit measures durable charges per second with many
// concurrent callers and group commit (every batch fsync'd).
func BenchmarkChargeGroupCommit(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, be backend) {
		benchCharges(b, openLedger(b, be.newDSN(b)), benchParallelism)
	})
}

// BenchmarkChargeGroupCommitSpread is BenchmarkChargeGroupCommit with
// txnIDs as the system makes them: every caller numbers its own charges
// under its own prefix ("CALL-<node>-<pid>-<n>"), so each batch inserts at
// as many places in the txn_id index as it has callers, instead of at its
// end as the sequential ids of BenchmarkChargeGroupCommit do.
func BenchmarkChargeGroupCommitSpread(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, be backend) {
		benchChargesKeyed(b, openLedger(b, be.newDSN(b)), benchParallelism, spreadTxnID)
	})
}

// spreadTxnID names charge n as one of 4000 callers would.
func spreadTxnID(n int64) string { return fmt.Sprintf("b-%d-%d", n%4000, n/4000) }

// BenchmarkChargeOneTxnPerCharge is the baseline without group commit: the
// same load, but every charge is its own transaction and fsync.
func BenchmarkChargeOneTxnPerCharge(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, be backend) {
		benchCharges(b, openLedger(b, be.newDSN(b), WithMaxBatch(1)), benchParallelism)
	})
}

// BenchmarkChargeSerial measures the latency of one caller charging alone:
// a whole transaction and fsync per charge.
func BenchmarkChargeSerial(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, be backend) {
		benchCharges(b, openLedger(b, be.newDSN(b)), 0)
	})
}

// benchCharges charges b.N distinct txnIDs from parallelism*GOMAXPROCS
// goroutines (or a single one if parallelism is 0) and reports throughput,
// p99 latency and the mean batch size.
func benchCharges(b *testing.B, l *Ledger, parallelism int) {
	benchChargesKeyed(b, l, parallelism, func(n int64) string { return fmt.Sprintf("b-%d", n) })
}

// benchChargesKeyed is benchCharges with txnID(n) naming charge n.
func benchChargesKeyed(b *testing.B, l *Ledger, parallelism int, txnID func(n int64) string) {
	ctx := context.Background()
	accounts := make([]string, SeedAccounts)
	for i := range accounts {
		accounts[i] = SeedAccountID(i + 1)
	}
	var (
		next atomic.Int64
		mu   sync.Mutex
		lats []time.Duration
	)
	work := func(more func() bool) {
		local := make([]time.Duration, 0, 1024)
		for more() {
			n := next.Add(1)
			start := time.Now()
			if _, err := l.Charge(ctx, txnID(n), accounts[n%SeedAccounts], 1); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(start))
		}
		mu.Lock()
		lats = append(lats, local...)
		mu.Unlock()
	}
	before := l.Stats()
	b.ResetTimer()
	if parallelism == 0 {
		i := 0
		work(func() bool { i++; return i <= b.N })
	} else {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) { work(pb.Next) })
	}
	b.StopTimer()
	after := l.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "charges/s")
	if len(lats) > 0 {
		slices.Sort(lats)
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
	}
	if batches := after.Batches - before.Batches; batches > 0 {
		b.ReportMetric(float64(after.BatchedRequests-before.BatchedRequests)/float64(batches), "req/batch")
	}
}

// BenchmarkIdempotentRetry measures retries of already committed charges,
// which the in-memory index answers without touching the database.
func BenchmarkIdempotentRetry(b *testing.B) {
	l := openLedger(b, b.TempDir())
	ctx := context.Background()
	const known = 4096
	ids := make([]string, known)
	accts := make([]string, known)
	var wg sync.WaitGroup
	for i := range known {
		ids[i], accts[i] = fmt.Sprintf("retry-%d", i), SeedAccountID(1+i%SeedAccounts)
		wg.Go(func() {
			if _, err := l.Charge(ctx, ids[i], accts[i], 1); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	var next atomic.Int64
	b.ResetTimer()
	b.SetParallelism(benchParallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % known
			r, err := l.Charge(ctx, ids[i], accts[i], 1)
			if err != nil || !r.Replayed {
				b.Errorf("retry: %+v, %v", r, err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "retries/s")
	if s := l.Stats(); s.ChargesCommitted != known {
		b.Errorf("%d charges committed; retries must charge nothing", s.ChargesCommitted)
	}
}

// BenchmarkWriterBatch measures the writer alone: batches of 100 charges
// (about what queues at 50,000 charges a second) and of 1000, with spread
// txnIDs (see BenchmarkChargeGroupCommitSpread), applied one after the
// other, as the writer goroutine does under load, on a ledger already
// holding 200 batches. It reports the writer's cost per charge: wall
// time, which includes waiting for fsync, CPU time, and bytes written.
func BenchmarkWriterBatch(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) { benchmarkWriterBatch(b, size) })
	}
}

func benchmarkWriterBatch(b *testing.B, size int) {
	l := openLedger(b, b.TempDir())
	accounts := make([]string, SeedAccounts)
	for i := range accounts {
		accounts[i] = SeedAccountID(i + 1)
	}
	ctx := context.Background()
	batch := func(first int64) []*request {
		reqs := make([]*request, size)
		for i := range reqs {
			n := first + int64(i)
			reqs[i] = &request{kind: opCharge, txnID: spreadTxnID(n), account: accounts[(n*7919)%SeedAccounts], amount: 1, ctx: ctx}
		}
		return reqs
	}
	write := func(reqs []*request) {
		if err := l.apply(reqs, !l.st.insertFindsTaken()); err != nil {
			b.Fatal(err)
		}
		if err := l.st.durable(); err != nil {
			b.Fatal(err)
		}
		l.st.idle()
	}
	next := int64(0)
	for range 200 {
		write(batch(next))
		next += int64(size)
	}
	batches := make([][]*request, (b.N+size-1)/size)
	for i := range batches {
		batches[i] = batch(next)
		next += int64(size)
	}
	cpu0, written0 := cpuTime(), bytesWritten()
	b.ResetTimer()
	for _, reqs := range batches {
		write(reqs)
	}
	b.StopTimer()
	rows := float64(len(batches) * size)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/charge")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/rows, "cpu-ns/charge")
	if written0 >= 0 {
		b.ReportMetric(float64(bytesWritten()-written0)/rows, "written-B/charge")
	}
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
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// cpuTime returns the CPU time, user and system, this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
