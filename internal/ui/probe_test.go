package ui

import (
	goruntime "runtime"
	"slices"
	"testing"
	"time"

	"observer/internal/runtime"
)

func TestMessageRatesSettleOncePerWindow(t *testing.T) {
	p := &probe{marks: make(map[uint64]msgMark)}
	at := func(ms int) time.Time { return epoch.Add(time.Duration(ms) * time.Millisecond) }
	steps := []struct {
		ms   int
		in   uint64
		want float64
	}{
		{0, 0, -1},       // first sight: nothing to compare with
		{100, 10, -1},    // too soon to say
		{500, 50, 100},   // provisional, over half a second
		{1000, 100, 100}, // the first window closes
		{1100, 300, 100}, // a burst inside the next window does not show yet
		{2000, 400, 300}, // the second window holds the burst
	}
	for _, s := range steps {
		if got := p.rateOf(7, s.in, at(s.ms)); got != s.want {
			t.Errorf("at %d ms with %d messages: rate %v, want %v", s.ms, s.in, got, s.want)
		}
	}
}

func TestTiedProcessesKeepTheirPlaces(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	var pids []runtime.PID
	for range 2000 {
		pid, err := n.SpawnBehaviour(idle{}, runtime.SpawnOpts{})
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			n.Exit(pid, runtime.Kill)
		}
	})
	// Wait for every Init, after which all mailboxes are empty: a
	// two-thousand-way tie the runtime's Top breaks at random.
	for top := n.Top(1, runtime.ByMailbox); len(top) > 0 && top[0].MailboxLen > 0; top = n.Top(1, runtime.ByMailbox) {
		goruntime.Gosched()
	}
	src := &fakeSource{node: n}
	p := newProbe(src)
	defer p.env.close()
	q := query{procs: true, sort: sortMailbox, rows: 20}
	first := p.snapshot(q).procs
	for range 5 {
		again := p.snapshot(q).procs
		if !slices.EqualFunc(first.rows, again.rows, func(a, b procRow) bool { return a.pid == b.pid }) {
			t.Fatal("the rows of tied processes changed between snapshots")
		}
	}
	// Ties are filled with the oldest processes, the lowest PIDs.
	for i, r := range first.rows {
		if r.pid != pids[i] {
			t.Fatalf("row %d shows %v, want %v", i, r.pid, pids[i])
		}
	}
}
