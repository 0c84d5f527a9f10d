// Package export serves the telecom system's metrics to Prometheus
// (observer --metrics-addr).
package export

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"observer/internal/runtime"
	"observer/internal/runtime/supervisor"
	"observer/internal/telecom"
	"observer/internal/telecom/routing"
)

// topMailboxes is how many processes with the longest mailboxes are exported.
const topMailboxes = 10

// Collector reads the system at each scrape; it keeps no state of its own.
type Collector struct {
	sys *telecom.System

	// metrics recycles the *routing.Metrics that scrapes read the router
	// into (see telecom.Router.MetricsInto); concurrent scrapes take
	// different ones.
	metrics sync.Pool

	procs, zombies, msgs, restarts, mailbox, calls, latency, active *prometheus.Desc
	charges, chargeEvents, pool, rate                               *prometheus.Desc
}

// NewCollector returns a collector of sys's metrics.
func NewCollector(sys *telecom.System) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("observer_"+name, help, labels, nil)
	}
	return &Collector{
		sys:          sys,
		procs:        d("processes", "Live processes on the node."),
		zombies:      d("zombie_processes", "Killed processes whose goroutine is still running a handler."),
		msgs:         d("messages_total", "Messages delivered to process mailboxes."),
		restarts:     d("supervisor_restarts_total", "Child restarts performed by each supervisor.", "supervisor"),
		mailbox:      d("mailbox_length", "Mailbox length of the processes with the longest mailboxes.", "pid", "name"),
		calls:        d("calls_total", "Calls by routing outcome.", "outcome"),
		latency:      d("route_latency_seconds", "Route latency percentiles over the last metrics tick.", "quantile"),
		active:       d("active_calls", "Call sessions in progress."),
		charges:      d("charges_total", "Charges committed to the ledger by this node."),
		chargeEvents: d("charge_events_total", "Charge requests by result.", "result"),
		pool:         d("db_pool_workers", "db_pool workers by state.", "state"),
		rate:         d("load_rate_calls_per_second", "Open-loop rate of the load generator."),
	}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.procs, c.zombies, c.msgs, c.restarts, c.mailbox, c.calls, c.latency,
		c.active, c.charges, c.chargeEvents, c.pool, c.rate} {
		ch <- d
	}
}

// Collect reads the system.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	n := c.sys.Node
	st := n.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(c.procs, float64(st.Processes))
	gauge(c.zombies, float64(st.Zombies))
	counter(c.msgs, float64(st.Messages))
	for _, info := range supervisor.All(n) {
		name := info.Name
		if name == "" {
			name = info.PID.String()
		}
		total := 0
		for _, ch := range info.Children {
			total += ch.Restarts
		}
		counter(c.restarts, float64(total), name)
	}
	for _, p := range n.Top(topMailboxes, runtime.ByMailbox) {
		gauge(c.mailbox, float64(p.MailboxLen), p.PID.String(), p.Name)
	}
	m, _ := c.metrics.Get().(*routing.Metrics)
	if m == nil {
		m = new(routing.Metrics)
	}
	defer c.metrics.Put(m)
	c.sys.Router.MetricsInto(m)
	counter(c.calls, float64(m.Routed), "routed")
	counter(c.calls, float64(m.Dropped), "dropped")
	for reason, v := range m.Failed {
		counter(c.calls, float64(v), "failed_"+string(reason))
	}
	for q, v := range map[float64]time.Duration{0.5: m.RecentLatency.P50, 0.99: m.RecentLatency.P99, 0.999: m.RecentLatency.P999} {
		gauge(c.latency, v.Seconds(), strconv.FormatFloat(q, 'f', -1, 64))
	}
	gauge(c.active, float64(c.sys.Sessions.Active(n)))
	gauge(c.rate, c.sys.Load.Rate())
	if b := c.sys.Billing; b != nil {
		bs := b.Stats()
		counter(c.charges, float64(bs.Ledger.ChargesCommitted))
		counter(c.chargeEvents, float64(bs.Ledger.IdempotentHits), "idempotent_hit")
		counter(c.chargeEvents, float64(bs.Rejected), "rejected")
		counter(c.chargeEvents, float64(bs.Unbilled), "unbilled")
		gauge(c.pool, float64(bs.Pool.Busy), "busy")
		gauge(c.pool, float64(bs.Pool.Idle), "idle")
		gauge(c.pool, float64(bs.Pool.Overflow), "overflow")
		gauge(c.pool, float64(bs.Pool.Waiting), "waiting")
	}
}

// ListenAddr completes addr: a missing host means loopback, so metrics are
// not exposed beyond the machine unless the user names another address.
func ListenAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: want HOST:PORT, e.g. 127.0.0.1:9464", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("metrics address %q: bad port %q", addr, port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// Serve starts the metrics endpoint at addr (/metrics) and returns the
// server and the address it listens on.
func Serve(sys *telecom.System, addr string) (*http.Server, string, error) {
	addr, err := ListenAddr(addr)
	if err != nil {
		return nil, "", err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(sys), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed after start; scrapes will fail and say so
		}
	}()
	return srv, ln.Addr().String(), nil
}
