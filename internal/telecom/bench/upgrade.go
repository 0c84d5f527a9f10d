package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"observer/internal/runtime"
	"observer/internal/telecom"
	"observer/internal/telecom/ledger"
	"observer/internal/telecom/money"
	"observer/internal/telecom/routing"
)

// The upgrade scenario is a hot upgrade under load. It routes calls on the
// fast path at a set rate, in open loop, and meanwhile moves both
// call_router_server and billing_engine_server from version 1 to 2 and
// back, over and over (System.UpgradeAll), while other processes route
// through the router process (the slow path, which queues behind a
// suspended router) and charge a known set of calls through the billing
// process, whose rating changes with its version. It routes at the same
// rate before and after, for comparison. What it must show: no call
// dropped, no charge lost or doubled, and how long callers were held up.

// upgradeRate is the fast path's rate when --rate is unset: a hundred
// thousand calls a second.
const upgradeRate = 100_000

// upgradeWorkers route on the fast path when --concurrency is unset:
// enough to keep an open loop at upgradeRate on schedule on two CPUs.
const upgradeWorkers = 4

// The loads beside the fast-path routes during the upgrades. Each has
// enough workers that a suspended server, which holds each of their calls
// for as long as it is suspended, does not hold up their schedule.
const (
	// serverShare: the slow path runs at the fast path's rate divided by this.
	serverShare   = 10
	serverWorkers = 32
	// chargeRate is the charges made each second during the upgrades.
	chargeRate    = 500
	chargeWorkers = 64
	// retryEvery: one acknowledged charge in this many is sent again, as
	// by a caller whose answer timed out, and must charge nothing more.
	retryEvery = 4
	// maxUpgradeGap is the longest wait between two upgrades; shorter runs
	// upgrade more often, so that every run upgrades both ways many times.
	maxUpgradeGap = 100 * time.Millisecond
)

// pauseSLA: no caller is held up 5 ms or more while the modules upgrade.
func pauseSLA(l Latency) *Verdict {
	return verdict("caller pause during upgrades < 5 ms", "max", 5*time.Millisecond, l)
}

// withRate returns a copy of r that drives in open loop at rate. Of the
// loads run side by side, only one should report progress.
func (r *Runner) withRate(rate float64, progress bool) *Runner {
	c := *r
	c.opts.Rate = rate
	if !progress {
		c.opts.Progress = nil
	}
	return &c
}

// upgrade runs the hot-upgrade scenario. Its own result is the upgrades,
// one operation per module moved, each timed by how long the module's
// process was suspended; its phases are the fast-path routes before,
// during and after the upgrades, and the slow-path routes and the charges
// made during them.
func upgrade(ctx context.Context, r *Runner) (Result, error) {
	const name = "upgrade"
	cfg := r.cfg
	cfg.Load.Enabled, cfg.Load.Mode = false, "open"
	billingCfg, cleanup, err := r.billing()
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	cfg.Billing = billingCfg
	sys, err := telecom.Start(cfg)
	if err != nil {
		return Result{}, err
	}
	defer sys.Stop(0)
	if r.opts.Observe != nil {
		defer r.opts.Observe(sys)()
	}
	n, rt := sys.Node, sys.Router
	procs := map[string]runtime.PID{}
	for mod, reg := range map[string]string{telecom.RouterModule: telecom.RouterName, telecom.BillingName: telecom.BillingName} {
		pid, ok := n.Whereis(reg)
		if !ok {
			return Result{}, fmt.Errorf("%s: %s is not running", name, reg)
		}
		procs[mod] = pid
	}
	rate := r.opts.Rate
	if rate <= 0 {
		rate = upgradeRate
	}
	workers := r.opts.Concurrency
	if workers <= 0 {
		workers = upgradeWorkers
	}
	ids, numbers := r.callIDs(max(workers, serverWorkers)), r.cfg.Load.Numbers
	route := func(phase, op string) (outcome, error) {
		return r.withRate(rate, true).drive(ctx, plan{scenario: name, phase: phase, op: op, node: n, workers: workers,
			do: func(_ *runtime.Process, w int, seq uint64, _ time.Time) (time.Time, error) {
				_, err := rt.Route(ids[w][seq%callIDs], numbers[seq%uint64(len(numbers))])
				return time.Time{}, err
			}})
	}

	// Before: version 1, undisturbed.
	m0 := rt.Metrics()
	before, err := route("before", "upgrade_route_before")
	if err != nil {
		return Result{}, err
	}
	m1 := rt.Metrics()

	// During: the same routes, the slow path and the charges, while the
	// upgrader moves both modules to the other version every gap.
	chg, err := newCharger(r, sys)
	if err != nil {
		return Result{}, err
	}
	up := &upgrader{sys: sys, procs: procs, series: r.newSeries(), last: sys.Code.Current(telecom.RouterModule).Name,
		moved:  map[string]uint64{},
		pauses: map[string]*hdrhistogram.Histogram{telecom.RouterModule: newHist(), telecom.BillingName: newHist()}}
	up.rec = up.series.recorder()
	gap := min(maxUpgradeGap, max(r.opts.Duration/20, time.Millisecond))
	stop, stopped := make(chan struct{}), make(chan struct{})
	upStart := time.Now()
	go func() {
		defer close(stopped)
		up.run(gap, stop)
	}()
	var (
		wg                sync.WaitGroup
		server, charges   outcome
		serverErr, chgErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		server, serverErr = r.withRate(rate/serverShare, false).drive(ctx, plan{scenario: name, phase: "during-via-server",
			op: "upgrade_route_server", node: n, workers: serverWorkers,
			do: func(p *runtime.Process, w int, seq uint64, _ time.Time) (time.Time, error) {
				_, err := rt.RouteViaServer(p, ids[w][seq%callIDs], numbers[seq%uint64(len(numbers))], opTimeout)
				return time.Time{}, err
			}})
	}()
	go func() {
		defer wg.Done()
		charges, chgErr = r.withRate(chargeRate, false).drive(ctx, plan{scenario: name, phase: "during-charges",
			op: "upgrade_charge", node: n, workers: chargeWorkers, do: chg.charge})
	}()
	during, duringErr := route("during", "upgrade_route")
	wg.Wait()
	close(stop)
	<-stopped
	upEnd := time.Now()
	up.rec.flush()
	m2 := rt.Metrics()
	if err := errors.Join(duringErr, serverErr, chgErr); err != nil {
		return Result{}, err
	}

	// After: the same load, on the version the upgrades left.
	after, err := route("after", "upgrade_route_after")
	if err != nil {
		return Result{}, err
	}
	m3 := rt.Metrics()

	res := up.result(name, upStart, upEnd)
	beforeRes, afterRes := routesResult(before, m0, m1), routesResult(after, m2, m3)
	// The router's counters cover both paths at once, so the fast path's
	// phase checks them against the two together.
	duringRes, serverRes := during.Result, server.Result
	failedDuring := failures(during) + failures(server)
	duringRes.Checks = []Check{checkOps(duringRes),
		checkEq("calls dropped on either path (failed or refused routes)", failedDuring, 0),
		checkEq("routed by the router == successful routes on both paths", m2.Routed-m1.Routed, during.Ops+server.Ops),
		checkEq("failed and dropped by the router == failed routes on both paths",
			failedRoutes(m2)-failedRoutes(m1)+m2.Dropped-m1.Dropped, failedDuring)}
	serverRes.Checks = []Check{checkOps(serverRes),
		checkEq("calls dropped (failed or refused routes)", failures(server), 0),
		checkEq("calls refused as the router's queue passed its limit", m2.Dropped-m1.Dropped, 0)}
	chargeRes := charges.Result
	lost, doubled, checks := chg.verify()
	chargeRes.Checks = append([]Check{checkOps(chargeRes)}, checks...)
	chargeRes.SLA = billingSLA(chargeRes.Latency)

	callerPause := max(duringRes.Latency.Max, serverRes.Latency.Max)
	res.SLA = pauseSLA(Latency{Count: duringRes.Latency.Count + serverRes.Latency.Count, Max: callerPause})
	res.Metrics = map[string]float64{
		"calls_dropped":           float64(failures(before) + failedDuring + failures(after)),
		"charges_lost":            float64(lost),
		"charges_doubled":         float64(doubled),
		"charges_rated_v1":        float64(chg.v1.Load()),
		"charges_rated_v2":        float64(chg.v2.Load()),
		"caller_pause_max_us":     us(callerPause),
		"no_upgrade_pause_max_us": us(max(beforeRes.Latency.Max, afterRes.Latency.Max)),
		"routes_per_sec_before":   beforeRes.OpsPerSec(),
		"routes_per_sec_after":    afterRes.OpsPerSec(),
	}
	up.metrics(res.Metrics)
	res.Phases = []Result{beforeRes, duringRes, serverRes, chargeRes, afterRes}
	return res, nil
}

// failures are the operations that failed, not counting those an open
// loop never started.
func failures(out outcome) uint64 { return out.Errors - out.missed() }

// routesResult is a phase of fast-path routes alone, checked against the
// router's counters a and b, read before and after it.
func routesResult(out outcome, a, b routing.Metrics) Result {
	res := out.Result
	res.Checks = append([]Check{checkOps(res), checkEq("calls dropped (failed or refused routes)", failures(out), 0)},
		routeChecks(a, b, out)...)
	return res
}

// upgrader moves both modules to the other version, again and again.
type upgrader struct {
	sys    *telecom.System
	procs  map[string]runtime.PID // by module
	series *series
	rec    *recorder

	// Written by run, read once it has returned.
	last   string // the version of the last upgrade
	cycles int    // upgrades of both modules
	moved  map[string]uint64
	pauses map[string]*hdrhistogram.Histogram
	failed []error
}

// run upgrades at once and then every gap until stop is closed, and at
// least twice, so that the modules go to version 2 and back.
func (u *upgrader) run(gap time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for {
		u.upgradeAll()
		select {
		case <-stop:
			if u.cycles >= 2 || len(u.failed) > 0 {
				return
			}
		case <-tick.C:
		}
	}
}

// upgradeAll moves both modules to the version they do not run.
func (u *upgrader) upgradeAll() {
	to := "2"
	if u.last == "2" {
		to = "1"
	}
	reps, err := u.sys.UpgradeAll(to)
	end := time.Now()
	if err != nil {
		u.failed = append(u.failed, err)
		u.rec.record(end, 0, err)
		return
	}
	u.last = to
	u.cycles++
	for _, rep := range reps {
		u.rec.record(end, rep.MaxPause, nil)
		_ = u.pauses[rep.Module].RecordValue(min(int64(rep.MaxPause), histMax))
		if slices.Equal(rep.Upgraded, []runtime.PID{u.procs[rep.Module]}) && len(rep.Errors) == 0 {
			u.moved[rep.Module]++
		}
	}
}

// result is the upgrades as a result: one operation per module upgraded,
// its latency how long the module's process was suspended.
func (u *upgrader) result(name string, start, end time.Time) Result {
	res := u.series.result(start, end)
	res.Scenario, res.Op, res.Mode, res.Concurrency = name, "upgrade", "closed", 1
	first := ""
	if len(u.failed) > 0 {
		first = ", first: " + u.failed[0].Error()
	}
	router, billing := u.procs[telecom.RouterModule], u.procs[telecom.BillingName]
	current := [2]string{u.sys.Code.Current(telecom.RouterModule).Name, u.sys.Code.Current(telecom.BillingName).Name}
	running := [2]string{router.Info().Version, billing.Info().Version}
	byRules := u.sys.Billing.RatesByRules()
	res.Checks = []Check{
		checkOps(res),
		checkTrue("upgrades that failed", len(u.failed) == 0, "%d%s", len(u.failed), first),
		checkTrue("upgrades both ways, 1 -> 2 -> 1", u.cycles >= 2, "%d upgrades of both modules", u.cycles),
		checkEq("router upgrades that moved exactly the router process, without error",
			u.moved[telecom.RouterModule], uint64(u.cycles)),
		checkEq("billing upgrades that moved exactly the billing process, without error",
			u.moved[telecom.BillingName], uint64(u.cycles)),
		checkTrue("each module's current version, and its process's, is the last upgraded to",
			current == [2]string{u.last, u.last} && running == current,
			"current %v, processes run %v, last upgrade to %s", current, running, u.last),
		checkTrue("billing rates by the rules exactly when it runs version 2", byRules == (u.last == "2"),
			"by the rules: %v, on version %s", byRules, u.last),
		checkTrue("the router and billing processes were never restarted", router.Alive() && billing.Alive(),
			"%v alive: %v, %v alive: %v", router, router.Alive(), billing, billing.Alive()),
	}
	return res
}

// metrics adds the upgrades' figures to m.
func (u *upgrader) metrics(m map[string]float64) {
	m["upgrades"] = float64(u.cycles)
	for mod, key := range map[string]string{telecom.RouterModule: "router", telecom.BillingName: "billing"} {
		h := u.pauses[mod]
		m[key+"_suspended_p50_us"] = us(time.Duration(h.ValueAtQuantile(50)))
		m[key+"_suspended_p99_us"] = us(time.Duration(h.ValueAtQuantile(99)))
		m[key+"_suspended_max_us"] = us(time.Duration(h.Max()))
	}
}

// charger charges calls through billing_engine_server during the upgrades
// and keeps what it was told, to look each charge up in the ledger after.
type charger struct {
	sys   *telecom.System
	runID string
	flat  money.Amount  // version 1's tariff per minute
	base  ledger.Report // the ledger before

	mu      sync.Mutex
	acked   []chargeRec
	unknown []chargeRec // failed: charged or not

	v1, v2   atomic.Uint64 // charges priced by each version
	neither  atomic.Uint64
	replayed atomic.Uint64 // new txnIDs answered as replays
	retries  atomic.Uint64
	retryOK  atomic.Uint64 // retries answered with the original charge
}

type chargeRec struct {
	txn, account string
	amount       money.Amount
}

// chargeDestinations are priced differently by the two versions, so a
// charge's amount tells which version rated it.
var chargeDestinations = []string{"uk", "europe", "premium"}

func newCharger(r *Runner, sys *telecom.System) (*charger, error) {
	flat, err := money.Parse(sys.Config.Billing.Tariff)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base, err := sys.Billing.Ledger().Verify(ctx)
	if err != nil {
		return nil, err
	}
	return &charger{sys: sys, runID: r.runID, flat: flat, base: base}, nil
}

// charge rates call seq and charges it, as a session does with its call
// record; one in retryEvery is then sent again. The first charge is timed.
func (c *charger) charge(p *runtime.Process, _ int, seq uint64, start time.Time) (time.Time, error) {
	acct := ledger.SeedAccountID(1 + int(seq%ledger.SeedAccounts))
	cdr := telecom.CDR{CallID: fmt.Sprintf("UPG-%s-%d", c.runID, seq), Caller: acct, Account: acct,
		Destination: chargeDestinations[seq%uint64(len(chargeDestinations))],
		Start:       start, Duration: time.Duration(1+seq%600) * time.Second}
	b := c.sys.Billing
	amt := b.Rate(cdr)
	switch amt {
	case flatPrice(cdr.Duration, c.flat):
		c.v1.Add(1)
	case b.Rules().Rate(cdr, c.flat):
		c.v2.Add(1)
	default:
		c.neither.Add(1)
	}
	ch := chargeRec{txn: "CDR-" + cdr.CallID, account: acct, amount: amt}
	rec, err := b.Charge(p, ch.txn, ch.account, ch.amount, opTimeout)
	done := time.Now()
	c.mu.Lock()
	if err != nil {
		c.unknown = append(c.unknown, ch)
	} else {
		c.acked = append(c.acked, ch)
	}
	c.mu.Unlock()
	if err != nil {
		return done, err
	}
	if rec.Replayed {
		c.replayed.Add(1)
	}
	if seq%retryEvery == 0 {
		c.retries.Add(1)
		again, err := b.Charge(p, ch.txn, ch.account, ch.amount, opTimeout)
		if err == nil && again.Replayed && again.Amount == ch.amount {
			c.retryOK.Add(1)
		}
	}
	return done, nil
}

// flatPrice is version 1's price: the tariff per minute, rounded up to the
// cent, at least a cent.
func flatPrice(d time.Duration, tariff money.Amount) money.Amount {
	cents := (int64(d/time.Millisecond)*int64(tariff) + 59_999) / 60_000
	return money.Amount(max(cents, 1))
}

// verify looks every charge up in the ledger: an acknowledged charge that
// is missing is lost, and a charge beyond those made is doubled.
func (c *charger) verify() (lost, doubled uint64, checks []Check) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := c.sys.Billing.Ledger()
	var wrong, found uint64
	var errs []error
	for _, ch := range c.acked {
		rec, ok, err := l.FindCharge(ctx, ch.txn)
		switch {
		case err != nil:
			errs = append(errs, err)
		case !ok:
			lost++
		case rec.Amount != ch.amount || rec.Account != ch.account:
			wrong++
		}
	}
	for _, ch := range c.unknown {
		if _, ok, err := l.FindCharge(ctx, ch.txn); err == nil && ok {
			found++ // charged, though its caller was not told
		}
	}
	rep, err := l.Verify(ctx)
	err = errors.Join(append(errs, err)...)
	acked := uint64(len(c.acked))
	added := uint64(max(rep.Charges-c.base.Charges, 0))
	if added > acked+found {
		doubled = added - acked - found
	}
	verdict := rep.Verdict
	if err != nil {
		verdict = err.Error()
	}
	return lost, doubled, []Check{
		checkEq("charges that failed", uint64(len(c.unknown)), 0),
		checkEq("acknowledged charges missing from the ledger (lost)", lost, 0),
		checkEq("charges added to the ledger == charges made (none doubled)", added, acked+found),
		checkEq("charges in the ledger at another amount or account than made", wrong, 0),
		checkEq("new charges answered as replays", c.replayed.Load(), 0),
		checkEq("retries answered with the original charge == retries", c.retryOK.Load(), c.retries.Load()),
		checkEq("charges priced by neither version 1's tariff nor version 2's rules", c.neither.Load(), 0),
		checkTrue("ledger verifies", err == nil && (rep.OK() || !c.base.OK()), "%s", verdict),
	}
}
