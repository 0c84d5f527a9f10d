package ui

import (
	goruntime "runtime"
	"testing"

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
