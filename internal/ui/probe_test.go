package ui

import (
	"cmp"
	"fmt"
	goruntime "runtime"
	"slices"
	"testing"
	"time"

	"observer/internal/runtime"
)

func TestMessageRatesSettleOncePerWindow(t *testing.T) {
	p := &probe{}
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

// TestEveryOrderMatchesAFullSort checks each order of the process table,
// both directions and with a filter, ranked by the runtime's Top or by a
// scan, against a plain sort of every process.
func TestEveryOrderMatchesAFullSort(t *testing.T) {
	f := newFixture(t)
	p := newProbe(f.src)
	// Two snapshots a second apart close the first rate window.
	p.snapshot(query{procs: true, sort: sortRate, rows: 10})
	f.env.sleep(time.Second)
	p.snapshot(query{procs: true, sort: sortRate, rows: 10})
	now := f.env.now()
	restarts := restartCounts(f.tree(now))
	rates := make(map[runtime.PID]float64)
	for i, pid := range f.pids {
		rates[pid] = float64(f.env.rates[i])
	}
	value := func(it *runtime.ProcessInfo, k sortKey) float64 {
		switch k {
		case sortMailbox:
			return float64(it.MailboxLen)
		case sortRate:
			return rates[it.PID]
		case sortHandler:
			return float64(it.HandlerTime)
		case sortRestarts:
			return float64(restarts[it.PID])
		case sortAge:
			return float64(now.Sub(it.Started))
		}
		return 0
	}
	for _, filter := range []string{"", "s"} {
		for k := range numSorts {
			for _, asc := range []bool{true, false} {
				name := fmt.Sprintf("%s ascending %v filter %q", k, asc, filter)
				t.Run(name, func(t *testing.T) {
					var want []runtime.PID
					all := f.env.current()
					slices.SortStableFunc(all, func(a, b runtime.ProcessInfo) int {
						c := 0
						if k == sortName {
							if an, bn := a.Name == "", b.Name == ""; an != bn {
								if bn {
									return -1
								}
								return 1
							}
							c = cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Module, b.Module))
						} else {
							c = cmp.Compare(value(&a, k), value(&b, k))
						}
						if !asc {
							c = -c
						}
						return cmp.Or(c, cmp.Compare(a.PID.ID(), b.PID.ID()))
					})
					for i := range all {
						if filter == "" || matchProc(&all[i], filter, nil) {
							want = append(want, all[i].PID)
						}
					}
					page := p.snapshot(query{procs: true, sort: k, asc: asc, filter: filter, rows: 2 * fixtureProcs}).procs
					var got []runtime.PID
					for _, r := range page.rows {
						got = append(got, r.pid)
					}
					if page.total != len(want) || !slices.Equal(got, want) {
						t.Errorf("rows %v of %d, want %v", got, page.total, want)
					}
				})
			}
		}
	}
}

func TestAScannedOrderIsKeptUntilTheNextScan(t *testing.T) {
	f := newFixture(t)
	p := newProbe(f.src)
	q := query{procs: true, sort: sortMailbox, asc: true, rows: 10}
	pids := func(pg procPage) []runtime.PID {
		var out []runtime.PID
		for _, r := range pg.rows {
			out = append(out, r.pid)
		}
		return out
	}
	first := p.snapshot(q).procs
	top := first.rows[0].pid
	// From now on the first process has the largest mailbox of all.
	f.env.mu.Lock()
	f.env.mq = func(i int, _ time.Time) int {
		if f.pids[i] == top {
			return 5000
		}
		return f.env.procs[i].MailboxLen
	}
	f.env.mu.Unlock()

	f.env.sleep(scanEvery / 2)
	kept := p.snapshot(q).procs
	if !slices.Equal(pids(kept), pids(first)) {
		t.Fatalf("the order changed before the next scan: %v, was %v", pids(kept), pids(first))
	}
	if kept.rows[0].mq != 5000 {
		t.Errorf("the kept row shows mailbox %d, want the fresh 5000", kept.rows[0].mq)
	}

	f.env.sleep(scanEvery / 2)
	rescanned := p.snapshot(q).procs
	if slices.Contains(pids(rescanned), top) {
		t.Errorf("after the next scan %v still ranks among the smallest mailboxes: %v", top, pids(rescanned))
	}

	// A new query is never answered from the kept order.
	q.asc = false
	if got := p.snapshot(q).procs; got.rows[0].pid != top {
		t.Errorf("largest mailbox first shows %v, want %v", got.rows[0].pid, top)
	}
}
