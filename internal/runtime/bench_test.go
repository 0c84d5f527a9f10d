package runtime_test

import (
	goruntime "runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
)

// echoServer replies with the request.
type echoServer struct{}

func (echoServer) Init(p *runtime.Process, arg any) genserver.Result { return genserver.Ok(nil) }
func (echoServer) HandleCall(p *runtime.Process, req any, from runtime.From, s any) genserver.Result {
	return genserver.Reply(req, s)
}
func (echoServer) HandleCast(p *runtime.Process, msg any, s any) genserver.Result {
	return genserver.NoReply(s)
}
func (echoServer) HandleInfo(p *runtime.Process, msg any, s any) genserver.Result {
	return genserver.NoReply(s)
}

// sink counts messages and signals when it has seen want of them.
type sink struct {
	want, got int
	done      chan struct{}
}

func (s *sink) Init(p *runtime.Process) {}
func (s *sink) Handle(p *runtime.Process, msg any) {
	s.got++
	if s.got == s.want {
		close(s.done)
	}
}

func reportLatency(b *testing.B, samples []time.Duration) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	pick := func(q float64) float64 {
		return float64(samples[int(q*float64(len(samples)-1))].Nanoseconds())
	}
	b.ReportMetric(pick(0.50), "p50-ns")
	b.ReportMetric(pick(0.99), "p99-ns")
}

func BenchmarkGenServerCall(b *testing.B) {
	b.Run("from outside a process", func(b *testing.B) {
		n := runtime.NewNode(runtime.Options{})
		pid, _ := genserver.Start(n, echoServer{}, nil, genserver.Options{})
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if v, err := genserver.Call(n, pid, i, genserver.DefaultCallTimeout); err != nil || v != i {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("from another process", func(b *testing.B) {
		n := runtime.NewNode(runtime.Options{})
		pid, _ := genserver.Start(n, echoServer{}, nil, genserver.Options{})
		done := make(chan error, 1)
		b.ResetTimer()
		n.Spawn(func(p *runtime.Process) {
			for i := 0; i < b.N; i++ {
				if v, err := genserver.Call(p, pid, i, genserver.DefaultCallTimeout); err != nil || v != i {
					done <- err
					return
				}
			}
			done <- nil
		}, runtime.SpawnOpts{})
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	})
}

func benchSend(b *testing.B, producers int) {
	n := runtime.NewNode(runtime.Options{})
	total := b.N / producers * producers
	if total == 0 {
		total = producers
	}
	s := &sink{want: total, done: make(chan struct{})}
	dst, _ := n.SpawnBehaviour(s, runtime.SpawnOpts{})
	var start sync.WaitGroup
	start.Add(1)
	for k := 0; k < producers; k++ {
		n.Spawn(func(p *runtime.Process) {
			start.Wait()
			for i := 0; i < total/producers; i++ {
				p.Send(dst, i)
			}
		}, runtime.SpawnOpts{})
	}
	b.ResetTimer()
	start.Done()
	<-s.done // timed until the consumer has handled every message
	b.StopTimer()
	if s.got != total {
		b.Fatalf("received %d of %d", s.got, total)
	}
}

func BenchmarkSend(b *testing.B) {
	b.Run("1 producer", func(b *testing.B) { benchSend(b, 1) })
	b.Run("4 producers", func(b *testing.B) { benchSend(b, 4) })
}

func BenchmarkPingPong(b *testing.B) {
	n := runtime.NewNode(runtime.Options{})
	done := make(chan int, 1)
	pong, _ := n.Spawn(func(p *runtime.Process) {
		for {
			m, _ := p.Receive(runtime.Infinity)
			from := m.(runtime.PID)
			p.Send(from, p.Self())
		}
	}, runtime.SpawnOpts{})
	b.ResetTimer()
	n.Spawn(func(p *runtime.Process) {
		k := 0
		for i := 0; i < b.N; i++ {
			p.Send(pong, p.Self())
			if m, _ := p.Receive(runtime.Infinity); m == pong {
				k++
			}
		}
		done <- k
	}, runtime.SpawnOpts{})
	if k := <-done; k != b.N {
		b.Fatalf("%d of %d round trips", k, b.N)
	}
}

// firstMessage signals once it handles its first message.
type firstMessage struct{ wg *sync.WaitGroup }

func (f firstMessage) Init(p *runtime.Process)          {}
func (f firstMessage) Handle(p *runtime.Process, _ any) { f.wg.Done() }

func BenchmarkSpawnAndFirstMessage(b *testing.B) {
	n := runtime.NewNode(runtime.Options{MaxProcesses: b.N + 10})
	var wg sync.WaitGroup
	wg.Add(b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pid, err := n.SpawnBehaviour(firstMessage{&wg}, runtime.SpawnOpts{})
		if err != nil {
			b.Fatal(err)
		}
		n.Send(pid, i)
	}
	wg.Wait()
}

type idle struct{}

func (idle) Init(p *runtime.Process)          {}
func (idle) Handle(p *runtime.Process, _ any) {}

// BenchmarkIdleProcesses spawns 1,000,000 idle behaviour processes and
// reports the memory each costs (heap and stacks) and the spawn time.
func BenchmarkIdleProcesses(b *testing.B) {
	const count = 1_000_000
	for i := 0; i < b.N; i++ {
		n := runtime.NewNode(runtime.Options{MaxProcesses: count})
		pids := make([]runtime.PID, count)
		goruntime.GC()
		var before, after goruntime.MemStats
		goruntime.ReadMemStats(&before)
		var inits sync.WaitGroup
		inits.Add(count)
		start := time.Now()
		for k := range pids {
			pids[k], _ = n.SpawnBehaviour(idleCounted{&inits}, runtime.SpawnOpts{})
		}
		inits.Wait() // every process ran its init and is idle
		elapsed := time.Since(start)
		goruntime.GC()
		goruntime.ReadMemStats(&after)
		if n.ProcessCount() != count {
			b.Fatalf("%d processes", n.ProcessCount())
		}
		used := (after.HeapAlloc + after.StackInuse) - (before.HeapAlloc + before.StackInuse)
		b.ReportMetric(float64(used)/count, "bytes/proc")
		b.ReportMetric(float64(elapsed.Nanoseconds())/count, "ns/spawn")
		goruntime.KeepAlive(pids)
	}
}

func BenchmarkKillLatency(b *testing.B) {
	b.Run("idle process", func(b *testing.B) {
		n := runtime.NewNode(runtime.Options{})
		samples := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			pid, _ := n.SpawnBehaviour(idle{}, runtime.SpawnOpts{})
			w := n.Monitor(pid)
			t0 := time.Now()
			n.Exit(pid, runtime.Kill)
			d := <-w.C
			samples = append(samples, time.Since(t0))
			if d.Reason != runtime.Killed {
				b.Fatal(d.Reason)
			}
		}
		reportLatency(b, samples)
	})
	b.Run("process stuck in a 1s handler", func(b *testing.B) {
		n := runtime.NewNode(runtime.Options{})
		samples := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			entered := make(chan struct{})
			pid, _ := n.Spawn(func(p *runtime.Process) {
				close(entered)
				select { // a handler that would run for a second
				case <-p.Context().Done():
				case <-time.After(time.Second):
				}
			}, runtime.SpawnOpts{})
			<-entered
			w := n.Monitor(pid)
			t0 := time.Now()
			n.Exit(pid, runtime.Kill)
			d := <-w.C
			samples = append(samples, time.Since(t0))
			if d.Reason != runtime.Killed {
				b.Fatal(d.Reason)
			}
		}
		reportLatency(b, samples)
	})
}

func spawnIdle(b *testing.B, n *runtime.Node, count int) {
	for k := 0; k < count; k++ {
		pid, _ := n.SpawnBehaviour(idle{}, runtime.SpawnOpts{})
		for j := 0; j < k%7; j++ {
			n.Send(pid, j)
		}
	}
}

func BenchmarkSnapshot100k(b *testing.B) {
	n := runtime.NewNode(runtime.Options{})
	spawnIdle(b, n, 100_000)
	var buf []runtime.ProcessInfo
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = n.Snapshot(buf)
		if len(buf) != 100_000 {
			b.Fatalf("%d processes in the snapshot", len(buf))
		}
	}
}

func BenchmarkTop20ByMailbox100k(b *testing.B) {
	n := runtime.NewNode(runtime.Options{})
	spawnIdle(b, n, 100_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if top := n.Top(20, runtime.ByMailbox); len(top) != 20 {
			b.Fatal(len(top))
		}
	}
}

// idleCounted is an idle process whose Init reports in.
type idleCounted struct{ wg *sync.WaitGroup }

func (i idleCounted) Init(p *runtime.Process)          { i.wg.Done() }
func (i idleCounted) Handle(p *runtime.Process, _ any) {}
