package routing

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

const failoverTable = `
trunk a a.example.com
trunk b b.example.com
trunk c c.example.com
destination d user a:1:1 b:2:1
destination e user2 c:1:1
5 -> d
6 -> e
`

type transition struct {
	trunk    string
	from, to BreakerState
}

// watch returns a Config whose breaker transitions are delivered on the
// returned channel.
func watch(cfg Config) (Config, <-chan transition) {
	ch := make(chan transition, 1000)
	cfg.OnStateChange = func(trunk string, from, to BreakerState) {
		ch <- transition{trunk, from, to}
	}
	return cfg, ch
}

func TestRouteDefaultFortune(t *testing.T) {
	r := New(nil, Config{})
	for _, number := range []string{"1-800-FORTUNE", "18003678863", "1 (800) fortune"} {
		res, err := r.Route("call-1", number)
		if err != nil {
			t.Fatalf("Route(%q): %v", number, err)
		}
		want := Result{CallID: "call-1", URI: "sip:fortune@telecom.example.com", Destination: "fortune",
			Trunk: "tel-core-1", Prefix: "18003678863", Attempts: 1}
		if res != want {
			t.Errorf("Route(%q) = %+v; want %+v", number, res, want)
		}
	}
}

func TestRouteDefaultTable(t *testing.T) {
	r := New(nil, Config{})
	tests := []struct{ number, dest string }{
		{"1-800-555-0100", "tollfree"},
		{"+1 800 555 0100", "tollfree"},
		{"1-900-555-0100", "premium"},
		{"911", "emergency"},
		{"112", "emergency"},
		{"411", "services"},
		{"1 (212) 555-0100", "nanp-east"},
		{"1 (415) 555-0100", "nanp-west"},
		{"1 (312) 555-0100", "nanp"},
		{"+1 312 555 0100", "nanp"},
		{"+44 20 7946 0018", "uk"},
		{"011 44 20 7946 0018", "uk"},
		{"+49 30 1234567", "europe"},
		{"+81 3 1234 5678", "asia-pacific"},
		{"+55 11 1234 5678", "latam"},
		{"+27 21 123 4567", "international"},
		{"011 27 21 123 4567", "international"},
	}
	for _, tt := range tests {
		res, err := r.Route("c", tt.number)
		if err != nil || res.Destination != tt.dest {
			t.Errorf("Route(%q) = %+v, %v; want destination %q", tt.number, res, err, tt.dest)
		}
		if !strings.HasPrefix(res.URI, "sip:") || !strings.Contains(res.URI, "@") {
			t.Errorf("Route(%q) URI %q; want sip:user@host", tt.number, res.URI)
		}
	}
}

func TestRouteErrors(t *testing.T) {
	r := New(mustParse(t, failoverTable), Config{})
	_, err := r.Route("c1", "7")
	var re *RouteError
	if !errors.Is(err, ErrNoRoute) || !errors.As(err, &re) || re.CallID != "c1" || re.Number != "7" {
		t.Errorf("Route(7) error %v; want *RouteError with ErrNoRoute", err)
	}
	if got, want := err.Error(), `routing: call "c1": no route for "7"`; got != want {
		t.Errorf("error %q; want %q", got, want)
	}
	_, err = r.Route("c2", "5*")
	var ne *NumberError
	if !errors.Is(err, ErrInvalidNumber) || !errors.Is(err, ErrInvalidChar) || !errors.As(err, &ne) {
		t.Errorf("Route(5*) error %v; want invalid number", err)
	}
	if got, want := err.Error(), `routing: call "c2": invalid number "5*": invalid character '*' at position 2`; got != want {
		t.Errorf("error %q; want %q", got, want)
	}
	for err, want := range map[error]Reason{
		nil: "", errors.New("x"): "", &RouteError{Err: ErrNoRoute}: ReasonNoRoute,
		&RouteError{Err: ErrAllTrunksDown}: ReasonAllTrunksDown, &RouteError{Err: &NumberError{Err: ErrNoDigits}}: ReasonInvalidNumber,
	} {
		if got := ReasonOf(err); got != want {
			t.Errorf("ReasonOf(%v) = %q; want %q", err, got, want)
		}
	}
}

func TestFailoverAndBreakerOpens(t *testing.T) {
	cfg, events := watch(Config{FailureThreshold: 3, CoolDown: time.Hour})
	r := New(mustParse(t, failoverTable), cfg)
	if err := r.SetFailureRate("a", 1); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		res, err := r.Route(fmt.Sprint("call-", i), "5550100")
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if res.Trunk != "b" || res.URI != "sip:user@b.example.com" || res.Attempts != 2 {
			t.Fatalf("call %d = %+v; want failover to b after 2 attempts", i, res)
		}
	}
	if ev := <-events; ev != (transition{"a", StateClosed, StateOpen}) {
		t.Fatalf("transition %+v; want a closed->open", ev)
	}
	// Open: a is skipped without an attempt.
	res, err := r.Route("call-4", "5550100")
	if err != nil || res.Trunk != "b" || res.Attempts != 1 {
		t.Fatalf("Route with a open = %+v, %v; want b on first attempt", res, err)
	}
	st := trunkStatus(t, r, "a")
	if st.State != StateOpen || st.Failures != 3 || st.Successes != 0 || st.Rejected != 1 || st.FailureRate != 1 {
		t.Errorf("trunk a = %+v; want open, 3 failures, 1 rejected", st)
	}
	if st := trunkStatus(t, r, "b"); st.State != StateClosed || st.Successes != 4 {
		t.Errorf("trunk b = %+v; want closed, 4 successes", st)
	}
	select {
	case ev := <-events:
		t.Errorf("unexpected transition %+v", ev)
	default:
	}
}

func TestSuccessResetsFailureStreak(t *testing.T) {
	r := New(mustParse(t, failoverTable), Config{FailureThreshold: 3, CoolDown: time.Hour})
	// Two failures, a success, two failures: never three in a row.
	for _, rate := range []float64{1, 1, 0, 1, 1, 0, 0} {
		if err := r.SetFailureRate("a", rate); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Route("c", "5"); err != nil {
			t.Fatal(err)
		}
	}
	if st := trunkStatus(t, r, "a"); st.State != StateClosed || st.Failures != 4 || st.Successes != 3 {
		t.Errorf("trunk a = %+v; want closed with 4 failures and 3 successes", st)
	}
}

func TestBreakerHalfOpenRecovers(t *testing.T) {
	cfg, events := watch(Config{FailureThreshold: 2, CoolDown: time.Millisecond})
	r := New(mustParse(t, failoverTable), cfg)
	r.SetFailureRate("a", 1)
	for range 2 {
		if res, err := r.Route("c", "5"); err != nil || res.Trunk != "b" {
			t.Fatalf("Route = %+v, %v; want b", res, err)
		}
	}
	got := []transition{<-events}
	r.SetFailureRate("a", 0)
	got = append(got, awaitTransitions(t, r, events, "5", StateClosed)...)
	want := []transition{{"a", StateClosed, StateOpen}, {"a", StateOpen, StateHalfOpen}, {"a", StateHalfOpen, StateClosed}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("transitions %v; want %v", got, want)
	}
	if res, err := r.Route("c", "5"); err != nil || res.Trunk != "a" || res.Attempts != 1 {
		t.Errorf("after recovery Route = %+v, %v; want a", res, err)
	}
}

func TestBreakerHalfOpenFailureReopens(t *testing.T) {
	cfg, events := watch(Config{FailureThreshold: 1, CoolDown: time.Millisecond})
	r := New(mustParse(t, failoverTable), cfg)
	r.SetFailureRate("a", 1)
	if _, err := r.Route("c", "5"); err != nil {
		t.Fatal(err)
	}
	got := []transition{<-events}
	got = append(got, awaitTransitions(t, r, events, "5", StateOpen)...)
	want := []transition{{"a", StateClosed, StateOpen}, {"a", StateOpen, StateHalfOpen}, {"a", StateHalfOpen, StateOpen}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("transitions %v; want %v", got, want)
	}
}

// awaitTransitions routes calls to number, which lets the breaker notice an
// expired cool-down, until a transition to final arrives, and returns the
// transitions seen.
func awaitTransitions(t *testing.T, r *Router, events <-chan transition, number string, final BreakerState) []transition {
	t.Helper()
	var got []transition
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			got = append(got, ev)
			if ev.to == final {
				return got
			}
		case <-timeout:
			t.Fatalf("no transition to %v; saw %v", final, got)
		default:
			if _, err := r.Route("probe", number); err != nil {
				t.Fatalf("Route: %v", err)
			}
		}
	}
}

func TestAllTrunksDown(t *testing.T) {
	r := New(mustParse(t, failoverTable), Config{FailureThreshold: 2, CoolDown: time.Hour})
	r.SetFailureRate("a", 1)
	r.SetFailureRate("b", 1)
	for i := range 3 {
		_, err := r.Route("c9", "5")
		var re *RouteError
		if !errors.Is(err, ErrAllTrunksDown) || !errors.As(err, &re) || re.Destination != "d" {
			t.Fatalf("call %d: error %v; want ErrAllTrunksDown for d", i, err)
		}
		if got, want := err.Error(), `routing: call "c9": all trunks down for destination "d"`; got != want {
			t.Errorf("error %q; want %q", got, want)
		}
	}
	// Both breakers are open now; other destinations are unaffected.
	for _, name := range []string{"a", "b"} {
		if st := trunkStatus(t, r, name); st.State != StateOpen || st.Failures != 2 || st.Rejected != 1 {
			t.Errorf("trunk %s = %+v; want open after 2 failures, 1 rejected", name, st)
		}
	}
	if res, err := r.Route("c", "6"); err != nil || res.Trunk != "c" {
		t.Errorf("Route(6) = %+v, %v; want trunk c", res, err)
	}
	m := r.Metrics()
	if m.Failed[ReasonAllTrunksDown] != 3 || m.Routed != 1 {
		t.Errorf("metrics routed %d failed %v; want 1 and 3 all_trunks_down", m.Routed, m.Failed)
	}
}

func TestWeightedSelection(t *testing.T) {
	r := New(mustParse(t, `
trunk a a.example.com
trunk b b.example.com
trunk c c.example.com
destination d u a:1:3 b:1:1 c:2:1
1 -> d
`), Config{})
	const calls = 40000
	for range calls {
		if _, err := r.Route("c", "1"); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := trunkStatus(t, r, "a").Attempts, trunkStatus(t, r, "b").Attempts, trunkStatus(t, r, "c").Attempts
	// Expect 30000:10000; 29000 is more than 15 standard deviations away.
	if a+b != calls || c != 0 || a < 29000 || a > 31000 {
		t.Errorf("attempts a=%d b=%d c=%d; want about 30000/10000/0", a, b, c)
	}
	// With a failing, its calls fail over to b first (same priority), never c.
	r.SetFailureRate("a", 1)
	for range 4 {
		res, err := r.Route("c", "1")
		if err != nil || res.Trunk != "b" {
			t.Fatalf("Route = %+v, %v; want b", res, err)
		}
	}
}

func TestBadTableKeepsRunningTable(t *testing.T) {
	r := New(nil, Config{})
	before := r.Table()
	_, err := parse("routes.txt", strings.NewReader(defaultRoutes+"\n1-800-FORTUNE -> nowhere\n"))
	if err == nil {
		t.Fatal("parse of a bad table succeeded")
	}
	lines := strings.Count(defaultRoutes, "\n") + 2
	if want := fmt.Sprintf(`routes.txt:%d: duplicate prefix "18003678863" (first on line`, lines); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q; want it to contain %q", err, want)
	}
	if err := r.LoadTable(nil); err == nil {
		t.Error("LoadTable(nil) succeeded")
	}
	if r.Table() != before {
		t.Error("table changed")
	}
	if res, err := r.Route("c", "1-800-FORTUNE"); err != nil || res.URI != "sip:fortune@telecom.example.com" {
		t.Errorf("Route = %+v, %v", res, err)
	}
}

func TestLoadTableKeepsTrunkState(t *testing.T) {
	r := New(mustParse(t, failoverTable), Config{FailureThreshold: 1, CoolDown: time.Hour})
	r.SetFailureRate("a", 1)
	r.Route("c", "5") // opens a
	next := mustParse(t, `
trunk a a2.example.com
trunk z z.example.com
destination d user a:1:1 z:2:1
5 -> d
`)
	if err := r.LoadTable(next); err != nil {
		t.Fatal(err)
	}
	res, err := r.Route("c", "5")
	if err != nil || res.URI != "sip:user@z.example.com" {
		t.Errorf("Route = %+v, %v; want z while a stays open", res, err)
	}
	st := r.Trunks()
	if len(st) != 2 || st[0].Name != "a" || st[0].Host != "a2.example.com" || st[0].State != StateOpen || st[0].FailureRate != 1 || st[0].Failures != 1 {
		t.Errorf("Trunks() = %+v; want a kept open with its failure rate and counts", st)
	}
	if err := r.SetFailureRate("b", 0); !errors.Is(err, ErrUnknownTrunk) {
		t.Errorf("SetFailureRate(removed trunk) error %v; want ErrUnknownTrunk", err)
	}
	if got := r.Entries(); len(got) != 1 || got[0] != (Entry{"5", "d"}) {
		t.Errorf("Entries() = %+v", got)
	}
}

func TestSetFailureRateValidates(t *testing.T) {
	r := New(mustParse(t, failoverTable), Config{})
	for _, rate := range []float64{-0.1, 1.5, nan()} {
		if err := r.SetFailureRate("a", rate); !errors.Is(err, ErrBadFailureRate) {
			t.Errorf("SetFailureRate(%v) error %v; want ErrBadFailureRate", rate, err)
		}
	}
	if err := r.SetFailureRate("a", 0.25); err != nil {
		t.Error(err)
	}
}

func nan() float64 { return math.NaN() }

func TestMetrics(t *testing.T) {
	r := New(mustParse(t, failoverTable), Config{})
	for range 10 {
		r.Route("c", "5")
	}
	r.Route("c", "7")
	r.Route("c", "x!")
	r.Route("c", "")
	r.AddDropped(4)
	if m := r.Metrics(); m.Latency.Count != 0 || !m.LatencyAt.IsZero() {
		t.Errorf("latency before Tick = %+v", m.Latency)
	}
	r.Tick()
	m := r.Metrics()
	if m.Routed != 10 || m.Dropped != 4 || m.Failed[ReasonNoRoute] != 1 || m.Failed[ReasonInvalidNumber] != 2 || m.Failed[ReasonAllTrunksDown] != 0 {
		t.Errorf("Metrics = %+v", m)
	}
	if m.Latency.Count != 13 || m.RecentLatency.Count != 13 || m.Latency.P50 <= 0 || m.Latency.P99 < m.Latency.P50 || m.Latency.P999 < m.Latency.P99 || m.Latency.Max < m.Latency.P999 {
		t.Errorf("Latency = %+v, recent %+v", m.Latency, m.RecentLatency)
	}
	if len(m.Trunks) != 3 || m.Trunks[0].Attempts != 10 || m.Trunks[0].State != StateClosed {
		t.Errorf("Trunks = %+v", m.Trunks)
	}
	r.Route("c", "5")
	r.Tick()
	if m := r.Metrics(); m.Latency.Count != 14 || m.RecentLatency.Count != 1 {
		t.Errorf("after second Tick: total %d recent %d; want 14 and 1", m.Latency.Count, m.RecentLatency.Count)
	}
}

// TestConcurrentUse exercises every method at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	t1, t2 := DefaultTable(), mustParse(t, failoverTable+"1-800-FORTUNE -> d\n")
	r := New(t1, Config{FailureThreshold: 3, CoolDown: time.Millisecond})
	numbers := []string{"1-800-FORTUNE", "5", "6", "911", "+44 20 7946 0018", "bad*", "2"}
	const workers, calls = 4, 2000
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				res, err := r.Route("c", numbers[(w+i)%len(numbers)])
				if err == nil && res.URI == "" || err != nil && ReasonOf(err) == "" {
					errs <- fmt.Errorf("Route = %+v, %v", res, err)
					return
				}
			}
		})
	}
	for i := range 200 {
		r.LoadTable([]*Table{t1, t2}[i%2])
		r.SetFailureRate("a", float64(i%3)/2)
		r.SetFailureRate("tel-core-1", float64(i%2))
		r.Tick()
		r.Metrics()
		r.Entries()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r.Tick()
	m := r.Metrics()
	var failed uint64
	for _, n := range m.Failed {
		failed += n
	}
	if m.Routed+failed != workers*calls || m.Latency.Count != workers*calls {
		t.Errorf("routed %d + failed %d, latency count %d; want %d", m.Routed, failed, m.Latency.Count, workers*calls)
	}
}

func TestRouteDoesNotAllocate(t *testing.T) {
	r := New(nil, Config{})
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.Route("c", "1-800-FORTUNE"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Route allocates %v times per call; want 0", allocs)
	}
}

func trunkStatus(t *testing.T, r *Router, name string) TrunkStatus {
	t.Helper()
	for _, s := range r.Trunks() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no trunk %q", name)
	return TrunkStatus{}
}
