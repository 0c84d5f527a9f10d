package ui

import (
	"context"
	"math"
	"os"
	goruntime "runtime"
	"runtime/metrics"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
)

// sysSample is one reading of the Go runtime, the host and this process.
// Figures that could not be read are negative (CPU) or zero.
type sysSample struct {
	at time.Time

	goroutines int
	heapLive   uint64 // bytes in live heap objects
	heapGoal   uint64
	goTotal    uint64 // all memory the Go runtime has mapped
	gcCycles   uint64
	gcPauseP99 time.Duration // over the whole run
	gcPauseMax time.Duration // over the whole run, like the p99

	hostCPU      float64 // 0..1 busy share of all CPUs; < 0 unknown
	hostMemUsed  uint64
	hostMemTotal uint64
	load1        float64
	cpus         int

	procCPU float64 // this process, in CPUs (1.0 is one core busy); < 0 unknown
	procRSS uint64
}

// sampler reads the system; it keeps the previous readings that CPU shares
// are computed from, so one sampler serves one sequence of samples. CPU
// shares are deltas of cumulative times between two samples, so reading
// never waits for an interval to pass.
type sampler struct {
	samples []metrics.Sample

	cpus int              // logical CPUs of the host; 0 until read
	self *process.Process // this process; nil until found

	hostPrev cpu.TimesStat
	hostOK   bool          // hostPrev holds a reading
	procPrev time.Duration // this process's CPU time at procAt
	procAt   time.Time
}

const (
	mGoroutines = iota
	mHeapLive
	mHeapGoal
	mTotal
	mCycles
	mPauses
)

func newSampler() *sampler {
	names := []string{
		mGoroutines: "/sched/goroutines:goroutines",
		mHeapLive:   "/memory/classes/heap/objects:bytes",
		mHeapGoal:   "/gc/heap/goal:bytes",
		mTotal:      "/memory/classes/total:bytes",
		mCycles:     "/gc/cycles/total:gc-cycles",
		mPauses:     "/sched/pauses/total/gc:seconds",
	}
	s := &sampler{samples: make([]metrics.Sample, len(names))}
	for i, n := range names {
		s.samples[i].Name = n
	}
	return s
}

// sampleTimeout bounds the host and process readings of one sample.
const sampleTimeout = 200 * time.Millisecond

// read takes one sample. It reads the runtime's metrics and, through
// gopsutil, the host and this process, so it runs in a command, never on
// the UI loop.
func (s *sampler) read(now time.Time) sysSample {
	out := sysSample{at: now, hostCPU: -1, procCPU: -1}
	metrics.Read(s.samples)
	u := func(i int) uint64 {
		if s.samples[i].Value.Kind() == metrics.KindUint64 {
			return s.samples[i].Value.Uint64()
		}
		return 0
	}
	out.goroutines = int(u(mGoroutines))
	out.heapLive = u(mHeapLive)
	out.heapGoal = u(mHeapGoal)
	out.goTotal = u(mTotal)
	out.gcCycles = u(mCycles)
	if v := s.samples[mPauses].Value; v.Kind() == metrics.KindFloat64Histogram {
		h := v.Float64Histogram()
		out.gcPauseP99 = seconds(quantile(h.Counts, h.Buckets, 0.99))
		out.gcPauseMax = seconds(maxOf(h.Counts, h.Buckets))
	}

	ctx, cancel := context.WithTimeout(context.Background(), sampleTimeout)
	defer cancel()
	if s.cpus == 0 {
		// The host's count, not this process's affinity: the busy share
		// below is of every CPU the host has.
		if n, err := cpu.CountsWithContext(ctx, true); err == nil && n > 0 {
			s.cpus = n
		} else {
			s.cpus = goruntime.NumCPU()
		}
	}
	out.cpus = s.cpus
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		out.hostMemUsed, out.hostMemTotal = vm.Used, vm.Total
	}
	if l, err := load.AvgWithContext(ctx); err == nil {
		out.load1 = l.Load1
	}
	if ts, err := cpu.TimesWithContext(ctx, false); err == nil && len(ts) > 0 {
		if s.hostOK {
			if share, ok := hostShare(s.hostPrev, ts[0]); ok {
				out.hostCPU = share
			}
		}
		s.hostPrev, s.hostOK = ts[0], true
	}
	if s.self == nil {
		if p, err := process.NewProcessWithContext(ctx, int32(os.Getpid())); err == nil {
			s.self = p
		}
	}
	if s.self != nil {
		if t, err := s.self.TimesWithContext(ctx); err == nil {
			used := cpuSeconds(t.User + t.System)
			if !s.procAt.IsZero() {
				out.procCPU = procShare(s.procPrev, used, now.Sub(s.procAt))
			}
			s.procPrev, s.procAt = used, now
		}
		if mi, err := s.self.MemoryInfoWithContext(ctx); err == nil {
			out.procRSS = mi.RSS
		}
	}
	return out
}

// hostShare is the busy share of all CPUs between two readings of the
// host's cumulative CPU times, as top computes it: idle and iowait are not
// busy, and guest time, already counted in user and nice, is left out. It
// is unknown when the counters did not move forward.
func hostShare(prev, cur cpu.TimesStat) (float64, bool) {
	busy := func(t cpu.TimesStat) float64 { return t.User + t.Nice + t.System + t.Irq + t.Softirq + t.Steal }
	total := func(t cpu.TimesStat) float64 { return busy(t) + t.Idle + t.Iowait }
	dt := total(cur) - total(prev)
	if !(dt > 0) {
		return 0, false
	}
	return min(max((busy(cur)-busy(prev))/dt, 0), 1), true
}

// procShare is a process's CPU use in CPUs (1.0 is one core busy) from its
// CPU time at two moments wall apart; unknown (< 0) if the clock or the
// counter went backwards.
func procShare(prev, cur, wall time.Duration) float64 {
	if wall <= 0 || cur < prev {
		return -1
	}
	return float64(cur-prev) / float64(wall)
}

// cpuSeconds converts gopsutil's seconds of CPU time.
func cpuSeconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func seconds(f float64) time.Duration {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// quantile reads the q-quantile of a runtime/metrics histogram as the upper
// bound of the bucket it falls in.
func quantile(counts []uint64, buckets []float64, q float64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= want {
			return bucketTop(buckets, i)
		}
	}
	return bucketTop(buckets, len(counts)-1)
}

// maxOf is the top of the highest bucket that holds a count.
func maxOf(counts []uint64, buckets []float64) float64 {
	for i := len(counts) - 1; i >= 0; i-- {
		if counts[i] > 0 {
			return bucketTop(buckets, i)
		}
	}
	return 0
}

func bucketTop(buckets []float64, i int) float64 {
	// Bucket i spans buckets[i] to buckets[i+1]; the last may be +Inf,
	// in which case its lower bound is the best figure there is.
	if i+1 < len(buckets) && !math.IsInf(buckets[i+1], 1) {
		return buckets[i+1]
	}
	return buckets[i]
}
