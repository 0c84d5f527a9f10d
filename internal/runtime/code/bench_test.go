package code_test

import (
	"testing"
	"time"
)

// BenchmarkUpgrade1000Processes upgrades and downgrades a module run by
// 1,000 idle gen_servers, alternately. Each operation is one Upgrade of all
// of them; pause-ms/op is the mean of each upgrade's longest pause and
// max-pause-ms the longest pause of the whole run.
func BenchmarkUpgrade1000Processes(b *testing.B) {
	const count = 1000
	_, r, _ := newCounters(b, &counterV2{}, count)
	versions := [2]string{"2", "1"}
	var worst, total time.Duration
	ops := 0
	for b.Loop() {
		rep, err := r.Upgrade("counter", versions[ops%2], nil, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Upgraded) != count {
			b.Fatalf("upgraded %d processes, want %d", len(rep.Upgraded), count)
		}
		worst = max(worst, rep.MaxPause)
		total += rep.MaxPause
		ops++
	}
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(ops), "pause-ms/op")
	b.ReportMetric(float64(worst.Microseconds())/1e3, "max-pause-ms")
}
