package ui

import (
	goruntime "runtime"
	"testing"
	"time"

	"observer/internal/runtime"
)

// spawnIdle starts n idle processes and returns once every one has run
// its Init, so the benchmark measures a quiet node.
func spawnIdle(b *testing.B, node *runtime.Node, n int) {
	b.Helper()
	for range n {
		if _, err := node.SpawnBehaviour(idle{}, runtime.SpawnOpts{}); err != nil {
			b.Fatal(err)
		}
	}
	// Until Init runs, a process's mailbox holds its start message.
	for top := node.Top(1, runtime.ByMailbox); len(top) > 0 && top[0].MailboxLen > 0; top = node.Top(1, runtime.ByMailbox) {
		goruntime.Gosched()
	}
}

// BenchmarkFrame100k measures one frame at 100,000 processes: the snapshot
// (which a command runs off the UI loop), Update swapping it in, and View.
func BenchmarkFrame100k(b *testing.B) {
	node := runtime.NewNode(runtime.Options{})
	spawnIdle(b, node, 100_000)
	cases := []struct {
		name   string
		view   viewID
		sort   sortKey
		filter string
	}{
		{"processes by mailbox", viewProcs, sortMailbox, ""},
		{"processes by age", viewProcs, sortAge, ""},
		{"processes by msg rate (full scan)", viewProcs, sortRate, ""},
		{"processes filtered (full scan)", viewProcs, sortMailbox, "<0.4"},
		{"overview", viewOverview, 0, ""},
		{"applications", viewApps, 0, ""},
		{"events", viewEvents, 0, ""},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m := newModel(&fakeSource{node: node}, Options{})
			defer m.probe.env.close()
			m.view = c.view
			m.procs.sort, m.procs.asc = c.sort, c.sort.defaultAsc()
			m.procs.filter.set(c.filter)
			m.resize(160, 48)
			m.applySample(sampleMsg{sys: m.probe.env.system()})
			b.ReportAllocs()
			for b.Loop() {
				f := m.probe.snapshot(m.query())
				m.Update(f)
				if v := m.View(); len(v.Content) == 0 {
					b.Fatal("empty frame")
				}
			}
		})
	}
}

// steppedEnv is the live env on a clock the benchmark moves, so that each
// refresh sees the time a display refreshing at its default rate would.
type steppedEnv struct {
	env
	t time.Time
}

func (e *steppedEnv) now() time.Time        { return e.t }
func (e *steppedEnv) sleep(d time.Duration) { e.t = e.t.Add(d) }

// BenchmarkProcessesRefresh100k measures one refresh of the Processes view
// at 100,000 processes in every order the table offers, both directions,
// and with a filter: the snapshot a command takes, Update swapping it in,
// and View drawing it. The clock moves by the refresh interval between
// refreshes, so an order that needs a full scan takes one every scanEvery
// and re-reads the rows on screen in between, as on a live display; the
// "every refresh scans" cases take a full scan each time. The selection
// sits a few rows down, so every refresh also finds it again by PID.
func BenchmarkProcessesRefresh100k(b *testing.B) {
	node := runtime.NewNode(runtime.Options{})
	spawnIdle(b, node, 100_000)
	type tc struct {
		name   string
		sort   sortKey
		asc    bool
		filter string
		rescan bool
	}
	var cases []tc
	for k := range numSorts {
		cases = append(cases, tc{name: k.String(), sort: k, asc: k.defaultAsc()})
		cases = append(cases, tc{name: k.String() + " reversed", sort: k, asc: !k.defaultAsc()})
	}
	cases = append(cases, tc{name: "mailbox filtered", sort: sortMailbox, filter: "<0.4"})
	for _, c := range cases[:len(cases):len(cases)] {
		if _, top := c.sort.topKey(); !top || c.asc != c.sort.defaultAsc() || c.filter != "" {
			c.name += " (every refresh scans)"
			c.rescan = true
			cases = append(cases, c)
		}
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m := newModel(&fakeSource{node: node}, Options{})
			defer m.probe.env.close()
			clock := &steppedEnv{env: m.probe.env, t: time.Now()}
			m.probe.env = clock
			m.view = viewProcs
			m.procs.sort, m.procs.asc = c.sort, c.asc
			m.procs.filter.set(c.filter)
			m.resize(160, 48)
			m.Update(m.probe.snapshot(m.query()))
			m.procs.move(m, 5)
			b.ReportAllocs()
			for b.Loop() {
				clock.sleep(m.opts.Refresh)
				if c.rescan {
					m.probe.kept.valid = false
				}
				m.Update(m.probe.snapshot(m.query()))
				if v := m.View(); len(v.Content) == 0 {
					b.Fatal("empty frame")
				}
			}
			if m.procs.sel.IsZero() {
				b.Fatal("no selection")
			}
		})
	}
}
