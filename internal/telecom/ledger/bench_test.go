package ledger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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
			if _, err := l.Charge(ctx, fmt.Sprintf("b-%d", n), accounts[n%SeedAccounts], 1); err != nil {
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
