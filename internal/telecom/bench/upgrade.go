package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"observer/internal/runtime"
	"observer/internal/telecom"
)

// upgrade moves call_router_server between versions 1 and 2 with the code
// registry, one upgrade after another, while processes keep routing
// through it. The operation is one whole upgrade (suspend, code_change,
// resume); the routes made meanwhile are reported as a phase, since what
// a caller sees during an upgrade is a pause, never an error.
func upgrade(ctx context.Context, r *Runner) (Result, error) {
	const name = "upgrade"
	cfg := r.cfg
	cfg.Load.Enabled, cfg.Load.Mode = false, "open"
	billing, cleanup, err := r.billing()
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	cfg.Billing = billing
	sys, err := telecom.Start(cfg)
	if err != nil {
		return Result{}, err
	}
	defer sys.Stop(0)
	n, rt := sys.Node, sys.Router
	router, ok := n.Whereis(telecom.RouterName)
	if !ok {
		return Result{}, fmt.Errorf("%s: %s is not running", name, telecom.RouterName)
	}
	start := sys.Code.Current(telecom.RouterModule).Name
	before := rt.Metrics()

	// The routing load: --concurrency processes on the slow path, which
	// queues behind a suspended router, in closed loop for the whole run.
	routes := r.newSeries()
	callers := r.concurrency(name)
	ids, numbers := r.callIDs(callers), r.cfg.Load.Numbers
	quit := make(chan struct{})
	var bg sync.WaitGroup
	bgStart := time.Now()
	for w := range callers {
		rc := routes.recorder()
		bg.Add(1)
		if _, err := n.Spawn(func(p *runtime.Process) {
			defer bg.Done()
			defer rc.flush()
			now := time.Now()
			for seq := 0; ; seq++ {
				select {
				case <-quit:
					return
				default:
				}
				_, err := rt.RouteViaServer(p, ids[w][seq%callIDs], numbers[seq%len(numbers)], opTimeout)
				end := time.Now()
				rc.record(end, end.Sub(now), err)
				now = end
			}
		}, runtime.SpawnOpts{}); err != nil {
			bg.Done()
			close(quit)
			bg.Wait()
			return Result{}, err
		}
	}

	var (
		moved  int
		pauses = hdrhistogram.New(1, histMax, histDigits)
		last   = start
	)
	s := r.newSeries()
	out, err := r.drive(ctx, plan{scenario: name, op: "upgrade", node: n, workers: 1, series: s,
		do: func(_ *runtime.Process, _ int, _ uint64, _ time.Time) (time.Time, error) {
			to := "2"
			if last == "2" {
				to = "1"
			}
			rep, err := sys.Code.Upgrade(telecom.RouterModule, to, nil, telecom.UpgradeTimeout)
			if err != nil {
				return time.Time{}, err
			}
			last = to
			_ = pauses.RecordValue(min(int64(rep.MaxPause), histMax))
			if len(rep.Upgraded) == 1 && rep.Upgraded[0] == router && len(rep.Errors) == 0 {
				moved++
			}
			return time.Time{}, nil
		}})
	close(quit)
	bg.Wait()
	routed := routes.result(bgStart, time.Now())
	res := out.Result
	after := rt.Metrics()
	running := router.Info().Version
	res.Checks = append(r.checkErrors(s, res), checkOps(res),
		checkEq("upgrades that moved exactly the router process, without error", uint64(moved), res.Ops),
		checkTrue("the module's current version is the last one upgraded to",
			sys.Code.Current(telecom.RouterModule).Name == last && running == last,
			"current %s, process runs %s, last upgrade to %s", sys.Code.Current(telecom.RouterModule).Name, running, last),
		checkTrue("the router process was never restarted", router.Alive(), "%v alive: %v", router, router.Alive()))
	p := pauses.ValueAtPercentilesSlice([]float64{50, 99})
	res.Metrics = map[string]float64{
		"pause_p50_us": us(time.Duration(p[0])),
		"pause_p99_us": us(time.Duration(p[1])),
		"pause_max_us": us(time.Duration(pauses.Max())),
	}
	routed.Scenario, routed.Phase, routed.Op = name, "routes-during-upgrades", "upgrade_routes"
	routed.Mode, routed.Concurrency = "closed", callers
	routed.Checks = append([]Check{noErrors(routes, routed)}, checkOps(routed),
		checkEq("routed by the router == successful routes", after.Routed-before.Routed, routed.Ops),
		checkEq("failed and dropped by the router == failed routes",
			failedRoutes(after)-failedRoutes(before)+after.Dropped-before.Dropped, routed.Errors))
	res.Phases = append(res.Phases, routed)
	return res, err
}
