package supervisor

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
)

// BenchmarkRestart measures kill → every replacement running its Init, as
// the Erlang anchor's supervisor benchmark does (b_sup, notify detection):
// a permanent gen_server child is killed, the clock stops when the last
// replacement's Init has signalled. Between iterations an untimed
// count_children lets the supervisor finish its bookkeeping. ns/op is the
// whole loop; µs-p50 and µs-p99 are the kill → Init latency.
func BenchmarkRestart(b *testing.B) {
	b.Run("one_for_one", func(b *testing.B) { benchRestart(b, OneForOne, 1, false) })
	b.Run("one_for_one_with_subscriber", func(b *testing.B) { benchRestart(b, OneForOne, 1, true) })
	b.Run("one_for_all_10", func(b *testing.B) { benchRestart(b, OneForAll, 10, false) })
	b.Run("one_for_all_1000", func(b *testing.B) { benchRestart(b, OneForAll, 1000, false) })
}

func benchRestart(b *testing.B, strategy Strategy, size int, subscribe bool) {
	n := runtime.NewNode(runtime.Options{})
	if subscribe {
		// A reader of the event stream, as the observer is: the reports
		// are published and consumed, not only built.
		sub := n.Subscribe(1 << 16)
		defer sub.Close()
		go func() {
			for range sub.C {
			}
		}()
	}
	inits := make(chan started, size)
	specs := make([]ChildSpec, size)
	for i := range specs {
		specs[i] = workerSpec(&worker{id: strconv.Itoa(i), started: inits})
	}
	sup, err := Start(n, Spec{
		Flags:    Flags{Strategy: strategy, Intensity: 100_000_000, Period: 1},
		Children: specs,
	}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Exit(sup, runtime.Kill)
	current := make([]runtime.PID, size)
	collect := func() {
		for range size {
			s := <-inits
			i, _ := strconv.Atoi(s.id)
			current[i] = s.pid
		}
	}
	collect()
	samples := make([]time.Duration, 0, b.N)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N {
		victim := current[rng.IntN(size)]
		t0 := time.Now()
		n.Exit(victim, runtime.Kill)
		collect()
		samples = append(samples, time.Since(t0))
		if _, err := CountChildren(n, sup, wait); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportLatency(b, samples)
}

// reportLatency adds the nearest-rank p50 and p99 of samples.
func reportLatency(b *testing.B, samples []time.Duration) {
	slices.Sort(samples)
	q := func(p float64) float64 {
		i := max(int(math.Ceil(p*float64(len(samples))))-1, 0)
		return float64(samples[i]) / float64(time.Microsecond)
	}
	b.ReportMetric(q(0.50), "µs-p50")
	b.ReportMetric(q(0.99), "µs-p99")
	if testing.Verbose() {
		b.ReportMetric(q(0.90), "µs-p90")
		b.ReportMetric(q(0.95), "µs-p95")
		b.ReportMetric(q(0.999), "µs-p99.9")
	}
}

// BenchmarkLinkChain kills the head of a chain of 10,000 linked
// gen_servers and stops the clock when the tail's monitor fires: the exit
// travels the whole chain.
func BenchmarkLinkChain(b *testing.B) {
	const length = 10_000
	n := runtime.NewNode(runtime.Options{})
	base := n.ProcessCount()
	for range b.N {
		b.StopTimer()
		chain := make([]runtime.PID, length)
		for i := range chain {
			pid, err := genserver.Start(n, chainLink{}, nil, genserver.Options{})
			if err != nil {
				b.Fatal(err)
			}
			chain[i] = pid
			if i > 0 {
				if _, err := genserver.Call(n, pid, chain[i-1], wait); err != nil {
					b.Fatal(err)
				}
			}
		}
		w := n.Monitor(chain[length-1])
		b.StartTimer()
		n.Exit(chain[0], runtime.Kill)
		if d := <-w.C; d.Reason != runtime.Killed {
			b.Fatalf("tail exited %v, want killed", d.Reason)
		}
		b.StopTimer()
		if c := n.ProcessCount(); c != base {
			b.Fatalf("%d processes left", c-base)
		}
	}
}

// chainLink links itself to the PID it is called with.
type chainLink struct{}

func (chainLink) Init(*runtime.Process, any) genserver.Result { return genserver.Ok(nil) }

func (chainLink) HandleCall(p *runtime.Process, req any, _ runtime.From, st any) genserver.Result {
	p.Link(req.(runtime.PID))
	return genserver.Reply(nil, st)
}

func (chainLink) HandleCast(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

func (chainLink) HandleInfo(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}
