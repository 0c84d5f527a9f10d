package ui

import (
	"context"
	"math"
	goruntime "runtime"
	"runtime/metrics"
	"time"

	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
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
	gcPauseMax time.Duration // longest pause since the previous sample

	hostCPU      float64 // 0..1 busy share of all CPUs; < 0 unknown
	hostMemUsed  uint64
	hostMemTotal uint64
	load1        float64
	cpus         int

	procCPU float64 // this process, in CPUs (1.0 is one core busy); < 0 unknown
	procRSS uint64
}

// sampler reads the system; it keeps the previous readings that CPU shares
// are computed from, so one sampler serves one sequence of samples.
type sampler struct {
	samples   []metrics.Sample
	lastPause []uint64 // the GC pause histogram's counts at the previous sample

	hostPrev cpuTimes
	procPrev time.Duration
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

// read takes one sample. It reads /proc and the runtime's metrics, so it
// runs in a command, never on the UI loop.
func (s *sampler) read(now time.Time) sysSample {
	out := sysSample{at: now, hostCPU: -1, procCPU: -1, cpus: goruntime.NumCPU()}
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
		out.gcPauseMax = seconds(maxSince(h.Counts, s.lastPause, h.Buckets))
		s.lastPause = append(s.lastPause[:0], h.Counts...)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		out.hostMemUsed, out.hostMemTotal = vm.Used, vm.Total
	}
	if l, err := load.AvgWithContext(ctx); err == nil {
		out.load1 = l.Load1
	}
	if t, ok := readHostCPU(); ok {
		if s.hostPrev.total > 0 && t.total > s.hostPrev.total {
			out.hostCPU = float64(t.busy-s.hostPrev.busy) / float64(t.total-s.hostPrev.total)
		}
		s.hostPrev = t
	}
	if cpu, ok := processCPUTime(); ok {
		if !s.procAt.IsZero() {
			if wall := now.Sub(s.procAt); wall > 0 {
				out.procCPU = float64(cpu-s.procPrev) / float64(wall)
			}
		}
		s.procPrev, s.procAt = cpu, now
	}
	out.procRSS = processRSS()
	return out
}

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

// maxSince is the upper bound of the highest bucket that gained counts
// since prev.
func maxSince(counts, prev []uint64, buckets []float64) float64 {
	for i := len(counts) - 1; i >= 0; i-- {
		var p uint64
		if i < len(prev) {
			p = prev[i]
		}
		if counts[i] > p {
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

// cpuTimes are the host's cumulative CPU times in clock ticks.
type cpuTimes struct{ busy, total uint64 }
