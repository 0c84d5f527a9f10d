package ui

import (
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
)

func TestHostShareIsTheBusyPartOfTheTimeBetweenTwoReadings(t *testing.T) {
	base := cpu.TimesStat{User: 100, Nice: 10, System: 50, Idle: 800, Iowait: 20, Irq: 5, Softirq: 5, Steal: 10, Guest: 40}
	tests := []struct {
		name string
		cur  cpu.TimesStat
		want float64
		ok   bool
	}{
		{"half busy", add(base, cpu.TimesStat{User: 30, System: 20, Idle: 50}), 0.5, true},
		{"idle and iowait are not busy", add(base, cpu.TimesStat{Idle: 60, Iowait: 40}), 0, true},
		{"irq, softirq and steal are busy", add(base, cpu.TimesStat{Irq: 1, Softirq: 1, Steal: 2, Idle: 4}), 0.5, true},
		{"guest time is already in user and is not counted twice", add(base, cpu.TimesStat{User: 10, Guest: 10, Idle: 10}), 0.5, true},
		{"counters that did not move are unknown", base, 0, false},
		{"counters that went back are unknown", cpu.TimesStat{User: 1}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := hostShare(base, tt.cur)
			if ok != tt.ok || ok && abs(got-tt.want) > 1e-9 {
				t.Errorf("hostShare = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func add(a, b cpu.TimesStat) cpu.TimesStat {
	return cpu.TimesStat{
		User: a.User + b.User, Nice: a.Nice + b.Nice, System: a.System + b.System, Idle: a.Idle + b.Idle,
		Iowait: a.Iowait + b.Iowait, Irq: a.Irq + b.Irq, Softirq: a.Softirq + b.Softirq, Steal: a.Steal + b.Steal,
		Guest: a.Guest + b.Guest, GuestNice: a.GuestNice + b.GuestNice,
	}
}

func abs(x float64) float64 { return max(x, -x) }

func TestProcShareIsCPUTimeOverWallTime(t *testing.T) {
	tests := []struct {
		name            string
		prev, cur, wall time.Duration
		want            float64
	}{
		{"one core busy", time.Second, 2 * time.Second, time.Second, 1},
		{"two cores busy for half the time", 0, time.Second, time.Second, 1},
		{"idle", time.Second, time.Second, time.Second, 0},
		{"no time passed", 0, time.Second, 0, -1},
		{"the counter went back", time.Second, 0, time.Second, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := procShare(tt.prev, tt.cur, tt.wall); got != tt.want {
				t.Errorf("procShare = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSamplerReadsTheHostAndThisProcess reads the real machine: the first
// sample has no CPU shares (there is nothing to take a difference from),
// the second has them once this process has used some CPU time.
func TestSamplerReadsTheHostAndThisProcess(t *testing.T) {
	s := newSampler()
	first := s.read(time.Now())
	if first.hostCPU >= 0 || first.procCPU >= 0 {
		t.Errorf("first sample has CPU shares %v and %v, want unknown", first.hostCPU, first.procCPU)
	}
	if first.cpus <= 0 || first.hostMemTotal == 0 || first.hostMemUsed > first.hostMemTotal || first.goroutines <= 0 {
		t.Errorf("first sample %+v", first)
	}
	if s.self == nil {
		t.Skip("gopsutil finds no process figures here")
	}
	if first.procRSS == 0 {
		t.Error("this process has no resident memory")
	}
	// Spin until this process's and the host's CPU times have visibly
	// moved, so the second sample has something to measure: the kernel
	// counts both in clock ticks.
	deadline := time.Now().Add(10 * time.Second)
	for {
		proc, perr := s.self.Times()
		host, herr := cpu.Times(false)
		if perr == nil && herr == nil && len(host) > 0 && cpuSeconds(proc.User+proc.System) > s.procPrev {
			if _, ok := hostShare(s.hostPrev, host[0]); ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the CPU times did not move in 10 s of spinning")
		}
	}
	second := s.read(time.Now())
	if second.hostCPU < 0 || second.hostCPU > 1 {
		t.Errorf("host CPU share %v, want 0..1", second.hostCPU)
	}
	if second.procCPU <= 0 {
		t.Errorf("process CPU %v after spinning, want > 0", second.procCPU)
	}
}
