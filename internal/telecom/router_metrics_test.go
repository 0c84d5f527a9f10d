package telecom

import (
	"reflect"
	"testing"

	"observer/internal/runtime"
	"observer/internal/telecom/routing"
)

// TestRouterMetricsAcrossRestart checks that the counts of a router process
// that was killed are kept, once, in the metrics of its successor, and that
// reading them into a reused Metrics allocates nothing.
func TestRouterMetricsAcrossRestart(t *testing.T) {
	s := startSystem(t, quiet(t))
	var m routing.Metrics
	s.Router.MetricsInto(&m)
	if m.Routed != 0 || len(m.Failed) != 3 || len(m.Trunks) == 0 {
		t.Fatalf("before any call: %+v", m)
	}
	for range 5 {
		if _, err := s.Router.Route("C", "1-800-FORTUNE"); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		s.Router.Route("C", "x!")
	}
	s.Router.MetricsInto(&m)
	if m.Routed != 5 || m.Failed[routing.ReasonInvalidNumber] != 2 || m.Failed[routing.ReasonNoRoute] != 0 {
		t.Fatalf("routed %d failed %v; want 5 and 2 invalid", m.Routed, m.Failed)
	}

	old := mustWhereis(t, s, RouterName)
	w := s.Node.Monitor(old)
	s.Node.Exit(old, runtime.Kill)
	<-w.C
	// Calls fail with ErrRouterDown, uncounted, until the new process has
	// published its router; the first that succeeds went through it.
	eventually(t, func() bool {
		_, err := s.Router.Route("C", "1-800-FORTUNE")
		return err == nil
	})
	s.Router.MetricsInto(&m)
	if m.Routed != 6 || m.Failed[routing.ReasonInvalidNumber] != 2 {
		t.Fatalf("after restart: routed %d failed %v; want 6 and 2 invalid", m.Routed, m.Failed)
	}
	var attempts uint64
	for _, ts := range m.Trunks {
		attempts += ts.Attempts
	}
	if attempts != 1 {
		t.Errorf("trunk attempts %d; want the new process's 1", attempts)
	}
	if fresh := s.Router.Metrics(); !reflect.DeepEqual(fresh, m) {
		t.Errorf("Metrics = %+v; MetricsInto = %+v", fresh, m)
	}
	if allocs := testing.AllocsPerRun(100, func() { s.Router.MetricsInto(&m) }); allocs != 0 {
		t.Errorf("MetricsInto allocates %v times per read; want 0", allocs)
	}
}
