package routing

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// benchCalls is a mix of dialed numbers over the default table, in the
// forms callers send them.
var benchCalls = []struct{ number, dest string }{
	{"1-800-FORTUNE", "fortune"},
	{"18003678863", "fortune"},
	{"+442079460018", "uk"},
	{"1 (212) 555-0100", "nanp-east"},
	{"911", "emergency"},
	{"+81312345678", "asia-pacific"},
	{"18005550100", "tollfree"},
	{"+493012345678", "europe"},
}

// BenchmarkRouteFast measures routing with every trunk healthy. It reports
// throughput and the p99 of the latencies the router recorded itself.
func BenchmarkRouteFast(b *testing.B) {
	b.Run("parallel", func(b *testing.B) {
		r := New(nil, Config{})
		var bad atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c := &benchCalls[i%len(benchCalls)]
				if res, err := r.Route("bench", c.number); err != nil || res.Destination != c.dest {
					bad.Add(1)
				}
				i++
			}
		})
		reportRoutes(b, r, bad.Load())
	})
	b.Run("callers=2", func(b *testing.B) {
		r := New(nil, Config{})
		var bad atomic.Int64
		var wg sync.WaitGroup
		b.ReportAllocs()
		b.ResetTimer()
		for g := range 2 {
			n := b.N / 2
			if g == 0 {
				n += b.N % 2
			}
			wg.Go(func() {
				for i := range n {
					c := &benchCalls[(g+i)%len(benchCalls)]
					if res, err := r.Route("bench", c.number); err != nil || res.Destination != c.dest {
						bad.Add(1)
					}
				}
			})
		}
		wg.Wait()
		reportRoutes(b, r, bad.Load())
	})
}

func reportRoutes(b *testing.B, r *Router, bad int64) {
	b.StopTimer()
	if bad != 0 {
		b.Fatalf("%d of %d calls failed or went to the wrong destination", bad, b.N)
	}
	r.Tick()
	m := r.Metrics()
	if m.Routed != uint64(b.N) || m.Latency.Count != int64(b.N) {
		b.Fatalf("routed %d, latency samples %d; want %d", m.Routed, m.Latency.Count, b.N)
	}
	var attempts uint64
	for _, t := range m.Trunks {
		attempts += t.Attempts
	}
	if attempts != uint64(b.N) {
		b.Fatalf("trunk attempts %d; want %d", attempts, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "routes/s")
	b.ReportMetric(float64(m.Latency.P99.Nanoseconds()), "p99-ns")
}

// BenchmarkBreaker compares two callers sharing one trunk through
// gobreaker directly with the trunk's fast path over the same breaker.
func BenchmarkBreaker(b *testing.B) {
	parallel2 := func(b *testing.B, f func()) {
		var wg sync.WaitGroup
		for g := range 2 {
			n := b.N / 2
			if g == 0 {
				n += b.N % 2
			}
			wg.Go(func() {
				for range n {
					f()
				}
			})
		}
		wg.Wait()
	}
	b.Run("gobreaker-execute", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{})
		b.ReportAllocs()
		parallel2(b, func() {
			cb.Execute(func() (struct{}, error) { return struct{}{}, nil })
		})
	})
	b.Run("gobreaker-twostep", func(b *testing.B) {
		cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{})
		b.ReportAllocs()
		parallel2(b, func() {
			if done, err := cb.Allow(); err == nil {
				done(nil)
			}
		})
	})
	b.Run("trunk-attempt", func(b *testing.B) {
		cfg := Config{FailureThreshold: 5, CoolDown: time.Second, HalfOpenProbes: 1}
		t := newTrunk("t", &cfg, 2, time.Now())
		var shard atomic.Int32
		b.ReportAllocs()
		var wg sync.WaitGroup
		for g := range 2 {
			n := b.N / 2
			if g == 0 {
				n += b.N % 2
			}
			c := &t.counts[shard.Add(1)-1]
			wg.Go(func() {
				for range n {
					t.attempt(c)
				}
			})
		}
		wg.Wait()
	})
}

func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct{ name, in, want string }{
		{"vanity", "1-800-FORTUNE", "18003678863"},
		{"formatted", "+44 (20) 7946.0018", "+442079460018"},
		{"canonical", "+442079460018", "+442079460018"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got, err := Normalize(bc.in); err != nil || got != bc.want {
					b.Fatalf("Normalize(%q) = %q, %v", bc.in, got, err)
				}
			}
		})
	}
}

// BenchmarkLPM measures the longest prefix match on normalized numbers,
// and Lookup, which normalizes first.
func BenchmarkLPM(b *testing.B) {
	tbl := DefaultTable()
	type call struct {
		num  []byte
		dest string
	}
	calls := make([]call, len(benchCalls))
	for i, c := range benchCalls {
		n, err := Normalize(c.number)
		if err != nil {
			b.Fatal(err)
		}
		calls[i] = call{[]byte(n), c.dest}
	}
	b.Run("match", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c := &calls[i%len(calls)]
			e := tbl.match(c.num)
			if e < 0 || tbl.entries[e].Destination != c.dest {
				b.Fatalf("match(%s) = %d", c.num, e)
			}
			i++
		}
	})
	b.Run("lookup", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c := &benchCalls[i%len(benchCalls)]
			if e, err := tbl.Lookup(c.number); err != nil || e.Destination != c.dest {
				b.Fatalf("Lookup(%q) = %+v, %v", c.number, e, err)
			}
			i++
		}
	})
}

// BenchmarkMetricsRead measures the read pollers make, MetricsInto a
// reused Metrics, on the default table after traffic; it must stay well
// under 10µs so a UI can poll it freely, and allocate nothing.
func BenchmarkMetricsRead(b *testing.B) {
	r := New(nil, Config{})
	for i := range 10000 {
		r.Route("bench", benchCalls[i%len(benchCalls)].number)
	}
	r.Tick()
	var m Metrics
	b.ReportAllocs()
	for b.Loop() {
		if r.MetricsInto(&m); m.Routed != 10000 || len(m.Trunks) == 0 {
			b.Fatalf("Metrics = %+v", m)
		}
	}
}

// BenchmarkMetricsAlloc measures Metrics, which returns a fresh copy.
func BenchmarkMetricsAlloc(b *testing.B) {
	r := New(nil, Config{})
	for i := range 10000 {
		r.Route("bench", benchCalls[i%len(benchCalls)].number)
	}
	r.Tick()
	b.ReportAllocs()
	for b.Loop() {
		if m := r.Metrics(); m.Routed != 10000 || len(m.Trunks) == 0 {
			b.Fatalf("Metrics = %+v", m)
		}
	}
}
