// Command agentpool runs a pool of short-lived agents under a
// simple_one_for_one supervisor: ten thousand agents, each started for one
// job. Agents are transient: one that finishes its job exits normal and is
// forgotten, one that crashes is restarted with the same job. Their
// shutdown is brutal_kill, so stopping the pool kills whatever is still
// running at once, in parallel, without waiting for anyone.
//
//	go run ./examples/agentpool
package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/supervisor"
	"observer/internal/runtime/sys"
)

// timeout bounds every call of the example.
const timeout = 5 * time.Second

// job is an agent's start argument.
type job struct {
	id int
	// idle agents wait for work that never comes, until they are killed.
	idle bool
}

// result is what an agent sends the collector when its job is done.
type result struct {
	id, value int
}

// awaitResults asks the collector to answer once it holds n results.
type awaitResults struct{ n int }

// flakyEvery makes every flakyEvery-th agent crash on its first attempt.
const flakyEvery = 100

// pool is a running agent pool: pool_sup and the collector.
type pool struct {
	n         *runtime.Node
	sup       runtime.PID
	collector runtime.PID
	// attempts counts the starts of each job, by id, so that a flaky job
	// fails only on its first attempt.
	attempts []atomic.Int32
}

func newPool(maxJobs int) (*pool, error) {
	pl := &pool{n: runtime.NewNode(runtime.Options{}), attempts: make([]atomic.Int32, maxJobs+1)}
	var err error
	if pl.collector, err = pl.n.Spawn(collect, runtime.SpawnOpts{Name: "collector"}); err != nil {
		return nil, err
	}
	pl.sup, err = supervisor.Start(pl.n, supervisor.Spec{
		// Every agent is independent, so the pool is simple_one_for_one.
		// Failures are expected now and then: allow a few hundred restarts
		// in a 10 s window before the pool gives up.
		Flags: supervisor.Flags{Strategy: supervisor.SimpleOneForOne, Intensity: 500, Period: 10},
		Children: []supervisor.ChildSpec{{
			StartArgs: pl.startAgent,
			Restart:   supervisor.Transient,
			Shutdown:  supervisor.BrutalKill,
			Module:    "agent",
		}},
	}, supervisor.Options{Name: "pool_sup"})
	return pl, err
}

// startAgent is the template's start function: it runs in pool_sup and
// links the new agent to it.
func (pl *pool) startAgent(p *runtime.Process, args any) (runtime.PID, error) {
	j := args.(job)
	attempt := pl.attempts[j.id].Add(1)
	pid, _, err := p.Spawn(func(p *runtime.Process) { agent(p, j, attempt) }, runtime.SpawnOpts{Link: true})
	return pid, err
}

// agent does one job and returns, which is an exit with reason normal.
func agent(p *runtime.Process, j job, attempt int32) {
	if j.idle {
		p.Receive(runtime.Infinity) // no message ever comes
		return
	}
	if j.id%flakyEvery == 0 && attempt == 1 {
		// Let it crash: the supervisor restarts a transient agent that
		// exits abnormally, and the retry does the job.
		p.Exit(runtime.Atom("flaky_network"))
	}
	v := 0
	for i := 1; i <= j.id; i++ {
		v += i * i
	}
	_ = p.Send(runtime.Name("collector"), result{j.id, v})
}

// collect counts the results; a caller waiting for n of them gets its
// reply once they are in (a reply sent later, from the receive loop).
func collect(p *runtime.Process) {
	got := 0
	var waiting []*runtime.Request
	for {
		msg, _ := p.Receive(runtime.Infinity)
		switch m := msg.(type) {
		case result:
			got++
		case *runtime.Request:
			waiting = append(waiting, m)
		}
		kept := waiting[:0]
		for _, r := range waiting {
			if got >= r.Body.(awaitResults).n {
				r.From.Reply(got)
			} else {
				kept = append(kept, r)
			}
		}
		waiting = kept
	}
}

// spawn starts count agents for jobs from..from+count-1.
func (pl *pool) spawn(from, count int, idle bool) ([]runtime.PID, error) {
	pids := make([]runtime.PID, 0, count)
	for id := from; id < from+count; id++ {
		pid, err := supervisor.StartDynamicChild(pl.n, pl.sup, job{id: id, idle: idle}, timeout)
		if err != nil {
			return nil, err
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// awaitResults waits until the collector holds n results.
func (pl *pool) awaitResults(n int) error {
	_, err := pl.n.Call(pl.collector, awaitResults{n}, timeout)
	return err
}

// restarts is the number of restarts in pool_sup's intensity window.
func (pl *pool) restarts() (int, error) {
	// sys.GetState makes the supervisor publish its latest Info at once.
	if _, err := sys.GetState(pl.n, pl.sup, timeout); err != nil {
		return 0, err
	}
	info, ok := supervisor.Inspect(pl.sup)
	if !ok {
		return 0, fmt.Errorf("pool_sup is gone")
	}
	return info.RestartCount, nil
}

// retried counts the jobs that needed more than one agent.
func (pl *pool) retried() int {
	n := 0
	for i := range pl.attempts {
		if pl.attempts[i].Load() > 1 {
			n++
		}
	}
	return n
}

// settle waits until the agents that sent their results have exited, and
// returns how many children pool_sup still has.
func (pl *pool) settle() (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := supervisor.CountChildren(pl.n, pl.sup, timeout)
		if err != nil || c.Active == 0 || time.Now().After(deadline) {
			return c.Active, err
		}
		time.Sleep(time.Millisecond)
	}
}

func main() {
	if err := run(os.Stdout, 10_000, 1_000); err != nil {
		fmt.Fprintln(os.Stderr, "agentpool:", err)
		os.Exit(1)
	}
}

// run starts jobs agents that each do one job, waits for their results,
// then starts idle agents and stops the pool under them.
func run(w io.Writer, jobs, idle int) error {
	pl, err := newPool(jobs + idle)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "pool_sup %v: simple_one_for_one, transient agents, shutdown brutal_kill\n", pl.sup)

	start := time.Now()
	if _, err := pl.spawn(1, jobs, false); err != nil {
		return err
	}
	if err := pl.awaitResults(jobs); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d agents started, did their job and exited normal in %v\n", jobs, time.Since(start).Round(time.Millisecond))
	restarts, err := pl.restarts()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d of them crashed once (flaky_network) and were restarted: pool_sup counted %d restarts\n", pl.retried(), restarts)
	left, err := pl.settle()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "children left: %d (a transient child that exits normal is forgotten)\n", left)

	pids, err := pl.spawn(jobs+1, idle, true)
	if err != nil {
		return err
	}
	watches := make([]*runtime.Watch, len(pids))
	for i, pid := range pids {
		watches[i] = pl.n.Monitor(pid)
	}
	counts, err := supervisor.CountChildren(pl.n, pl.sup, timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d idle agents started; pool_sup has %d children\n", idle, counts.Active)

	start = time.Now()
	if err := supervisor.Stop(pl.n, pl.sup, runtime.Shutdown, timeout); err != nil {
		return err
	}
	took := time.Since(start)
	killed := 0
	for _, wt := range watches {
		if d := <-wt.C; d.Reason == runtime.Killed {
			killed++
		}
	}
	fmt.Fprintf(w, "pool_sup stopped in %v: %d agents killed (brutal_kill: no terminate, no timeout)\n", took.Round(time.Millisecond), killed)
	return nil
}
