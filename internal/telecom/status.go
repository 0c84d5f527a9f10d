package telecom

import (
	"sync"
	"time"

	"observer/internal/telecom/routing"
)

// Status is one reading of the whole system for status lines, the UI's
// overview and metrics export. Counters are cumulative.
type Status struct {
	At          time.Time
	Processes   int
	Zombies     int
	Routed      uint64
	Failed      uint64
	Dropped     uint64
	Completed   uint64
	ActiveCalls int
	RouteP50    time.Duration
	RouteP99    time.Duration
	RouteP999   time.Duration
	LoadRate    float64
}

// statusMetrics recycles the router metrics Status reads into, so polling
// Status does not allocate them each time.
var statusMetrics = sync.Pool{New: func() any { return new(routing.Metrics) }}

// Status reads the system's counters; it makes one call, to call_sup, for
// the active call count.
func (s *System) Status() Status {
	ns := s.Node.Stats()
	m := statusMetrics.Get().(*routing.Metrics)
	defer statusMetrics.Put(m)
	s.Router.MetricsInto(m)
	st := Status{
		At: time.Now(), Processes: ns.Processes, Zombies: ns.Zombies,
		Routed: m.Routed, Dropped: m.Dropped,
		Completed:   s.Sessions.Stats().Completed,
		ActiveCalls: s.Sessions.Active(s.Node),
		RouteP50:    m.RecentLatency.P50, RouteP99: m.RecentLatency.P99, RouteP999: m.RecentLatency.P999,
		LoadRate: s.Load.Rate(),
	}
	for _, n := range m.Failed {
		st.Failed += n
	}
	return st
}
