package routing

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestMetricsIntoCounts checks every figure of a read against calls whose
// outcomes are known, into a Metrics left dirty by an earlier, different
// reading, and that Metrics returns the same.
func TestMetricsIntoCounts(t *testing.T) {
	r := New(mustParse(t, failoverTable), Config{FailureThreshold: 2, CoolDown: time.Hour})
	// Stale figures that the read must overwrite, not add to or keep.
	m := Metrics{
		Routed: 99, Dropped: 99,
		Failed:        map[Reason]uint64{ReasonNoRoute: 99, "stale": 7},
		Latency:       LatencySummary{Count: 99},
		RecentLatency: LatencySummary{Count: 99},
		LatencyAt:     time.Unix(1, 0),
		Trunks:        make([]TrunkStatus, 5),
	}
	r.MetricsInto(&m)
	want := Metrics{
		Failed: map[Reason]uint64{ReasonInvalidNumber: 0, ReasonNoRoute: 0, ReasonAllTrunksDown: 0},
		Trunks: []TrunkStatus{
			{Name: "a", Host: "a.example.com"},
			{Name: "b", Host: "b.example.com"},
			{Name: "c", Host: "c.example.com"},
		},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("fresh router: MetricsInto = %+v; want %+v", m, want)
	}

	for range 4 {
		mustRoute(t, r, "5", "a") // a is healthy: 4 successes on a
	}
	mustRoute(t, r, "6", "c")
	r.Route("c", "7")  // no route
	r.Route("c", "x!") // invalid
	r.Route("c", "")   // invalid
	r.SetFailureRate("a", 1)
	mustRoute(t, r, "5", "b") // a fails once, b takes it
	mustRoute(t, r, "5", "b") // a fails again and opens
	mustRoute(t, r, "5", "b") // a rejected, b takes it
	r.SetFailureRate("b", 1)
	r.SetFailureRate("c", 0.5)
	for range 2 {
		r.Route("c", "5") // a rejected, b fails: all trunks down, b opens on the second
	}
	r.Route("c", "5") // a and b rejected: all trunks down
	r.AddDropped(3)
	r.Tick()

	r.MetricsInto(&m)
	want = Metrics{
		Routed:  8,
		Failed:  map[Reason]uint64{ReasonInvalidNumber: 2, ReasonNoRoute: 1, ReasonAllTrunksDown: 3},
		Dropped: 3,
		Trunks: []TrunkStatus{
			{Name: "a", Host: "a.example.com", State: StateOpen, FailureRate: 1, Attempts: 6, Successes: 4, Failures: 2, Rejected: 4},
			{Name: "b", Host: "b.example.com", State: StateOpen, FailureRate: 1, Attempts: 5, Successes: 3, Failures: 2, Rejected: 1},
			{Name: "c", Host: "c.example.com", State: StateClosed, FailureRate: 0.5, Attempts: 1, Successes: 1},
		},
	}
	if m.Latency.Count != 14 || m.RecentLatency.Count != 14 || m.LatencyAt.IsZero() || m.Latency.Max < m.Latency.P50 {
		t.Errorf("latency %+v recent %+v at %v; want 14 calls measured by the Tick", m.Latency, m.RecentLatency, m.LatencyAt)
	}
	got := m
	got.Latency, got.RecentLatency, got.LatencyAt = LatencySummary{}, LatencySummary{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MetricsInto =\n%+v\nwant\n%+v", got, want)
	}
	if fresh := r.Metrics(); !reflect.DeepEqual(fresh, m) {
		t.Errorf("Metrics = %+v; MetricsInto = %+v", fresh, m)
	}
	// The breaker itself agrees on the states.
	for i, ts := range r.Trunks() {
		if ts != m.Trunks[i] {
			t.Errorf("Trunks()[%d] = %+v; MetricsInto has %+v", i, ts, m.Trunks[i])
		}
	}
}

func mustRoute(t *testing.T, r *Router, number, trunk string) {
	t.Helper()
	if res, err := r.Route("c", number); err != nil || res.Trunk != trunk {
		t.Fatalf("Route(%q) = %+v, %v; want trunk %s", number, res, err, trunk)
	}
}

// TestMetricsIntoOpenBreakerCoolingDown checks that an open breaker whose
// cool-down has run out reads as half-open, as the breaker reports it.
func TestMetricsIntoOpenBreakerCoolingDown(t *testing.T) {
	r := New(mustParse(t, failoverTable), Config{FailureThreshold: 1, CoolDown: time.Hour})
	r.SetFailureRate("a", 1)
	mustRoute(t, r, "5", "b")
	var m Metrics
	r.MetricsInto(&m)
	if m.Trunks[0].State != StateOpen {
		t.Fatalf("trunk a = %+v; want open", m.Trunks[0])
	}
	// Pretend the hour has passed; only the mirror's deadline moves, the
	// breaker would wait for its own.
	r.snap.Load().byName["a"].openUntil.Store(0)
	r.MetricsInto(&m)
	if m.Trunks[0].State != StateHalfOpen || m.Trunks[1].State != StateClosed {
		t.Fatalf("trunks %+v; want a half-open once its cool-down is over", m.Trunks)
	}
}

// TestMetricsIntoDoesNotAllocate: once a Metrics has held a reading,
// reading into it again allocates nothing, whether or not a breaker is open.
func TestMetricsIntoDoesNotAllocate(t *testing.T) {
	r := New(nil, Config{FailureThreshold: 1, CoolDown: time.Hour})
	for i := range 100 {
		r.Route("c", benchCalls[i%len(benchCalls)].number)
	}
	r.Tick()
	var m Metrics
	read := func() {
		r.MetricsInto(&m)
		if m.Routed != 100 {
			t.Fatalf("routed %d; want 100", m.Routed)
		}
	}
	if allocs := testing.AllocsPerRun(1000, read); allocs != 0 {
		t.Errorf("MetricsInto allocates %v times per read; want 0", allocs)
	}
	r.SetFailureRate("tel-core-1", 1)
	r.Route("c", "1-800-FORTUNE") // opens tel-core-1, fails over
	if allocs := testing.AllocsPerRun(1000, func() { r.MetricsInto(&m) }); allocs != 0 {
		t.Errorf("MetricsInto with an open breaker allocates %v times per read; want 0", allocs)
	}
	open := 0
	for _, ts := range m.Trunks {
		if ts.State == StateOpen {
			open++
		}
	}
	if open != 1 || m.Routed != 101 {
		t.Errorf("routed %d, %d open trunks; want 101 and 1", m.Routed, open)
	}
}

// TestMetricsIntoWhileRouting reads metrics while calls are routed and
// checks what a read promises: no counter goes backwards, the trunks'
// successes are never behind Routed, and once routing stops the figures
// are exact. Run with -race.
func TestMetricsIntoWhileRouting(t *testing.T) {
	r := New(mustParse(t, failoverTable), Config{FailureThreshold: 1 << 30})
	r.SetFailureRate("a", 0.3) // some calls fail over from a to b
	numbers := []string{"5", "5", "6", "7", "x!"}
	const workers, calls = 3, 3000
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				r.Route("c", numbers[(w+i)%len(numbers)])
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	var m, prev Metrics
	prev.Failed = map[Reason]uint64{}
	check := func() error {
		r.MetricsInto(&m)
		var successes uint64
		for _, ts := range m.Trunks {
			successes += ts.Successes
		}
		if successes < m.Routed {
			return fmt.Errorf("trunk successes %d < routed %d", successes, m.Routed)
		}
		if m.Routed < prev.Routed {
			return fmt.Errorf("routed went from %d to %d", prev.Routed, m.Routed)
		}
		for k, v := range m.Failed {
			if v < prev.Failed[k] {
				return fmt.Errorf("failed %s went from %d to %d", k, prev.Failed[k], v)
			}
			prev.Failed[k] = v
		}
		prev.Routed = m.Routed
		return nil
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if err := check(); err != nil {
			t.Fatal(err)
		}
	}
	// Each worker makes calls/5 rounds of the five numbers.
	const rounds = workers * calls / 5
	if m.Routed != 3*rounds || m.Failed[ReasonNoRoute] != rounds || m.Failed[ReasonInvalidNumber] != rounds || m.Failed[ReasonAllTrunksDown] != 0 {
		t.Errorf("routed %d failed %v; want %d routed, %d no_route, %d invalid_number", m.Routed, m.Failed, 3*rounds, rounds, rounds)
	}
	a, b, c := m.Trunks[0], m.Trunks[1], m.Trunks[2]
	if a.Successes+b.Successes != 2*rounds || a.Failures != b.Attempts || c.Successes != rounds || a.Failures == 0 {
		t.Errorf("trunks %+v; want a and b to carry %d calls between them, b those a failed, c %d", m.Trunks, 2*rounds, rounds)
	}
}
