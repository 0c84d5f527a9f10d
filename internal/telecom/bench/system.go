package bench

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/statem"
	"observer/internal/runtime/supervisor"
	"observer/internal/telecom"
	"observer/internal/telecom/ledger"
	"observer/internal/telecom/money"
	"observer/internal/telecom/routing"
)

// callIDs are reused per worker: building an ID per route would cost as
// much as the fast path itself.
const callIDs = 1024

// router starts call_router_server on a new node, as the system does.
func (r *Runner) router() (*runtime.Node, *telecom.Router, func(), error) {
	n := runtime.NewNode(runtime.Options{})
	rt, err := telecom.NewRouter(n, r.cfg.Router)
	if err != nil {
		return nil, nil, nil, err
	}
	stop, err := telecom.StartStandalone(n, rt.StartRouter)
	if err != nil {
		return nil, nil, nil, err
	}
	return n, rt, stop, nil
}

func (r *Runner) callIDs(workers int) [][]string {
	ids := make([][]string, workers)
	for w := range ids {
		ids[w] = make([]string, callIDs)
		for i := range ids[w] {
			ids[w][i] = fmt.Sprintf("BENCH-%s-%d-%d", r.runID, w, i)
		}
	}
	return ids
}

func failedRoutes(m routing.Metrics) uint64 {
	var n uint64
	for _, v := range m.Failed {
		n += v
	}
	return n
}

// routeChecks compares the router's own counters with what the workers
// saw; routes an open loop never started never reached the router.
func routeChecks(before, after routing.Metrics, out outcome) []Check {
	return []Check{
		checkEq("routed by the router == successful routes", after.Routed-before.Routed, out.Ops),
		checkEq("failed and dropped by the router == failed routes",
			failedRoutes(after)-failedRoutes(before)+after.Dropped-before.Dropped, out.Errors-out.missed()),
	}
}

func routeFast(ctx context.Context, r *Runner) (Result, error) {
	return routeWith(ctx, r, "route-fast", "route_fast",
		func(rt *telecom.Router, _ *runtime.Process, id, number string) error {
			_, err := rt.Route(id, number)
			return err
		})
}

func routeServer(ctx context.Context, r *Runner) (Result, error) {
	return routeWith(ctx, r, "route-server", "route_server",
		func(rt *telecom.Router, p *runtime.Process, id, number string) error {
			_, err := rt.RouteViaServer(p, id, number, opTimeout)
			return err
		})
}

func routeWith(ctx context.Context, r *Runner, name, op string,
	route func(rt *telecom.Router, p *runtime.Process, id, number string) error) (Result, error) {
	n, rt, stop, err := r.router()
	if err != nil {
		return Result{}, err
	}
	defer stop()
	workers := r.concurrency(name)
	ids, numbers := r.callIDs(workers), r.cfg.Load.Numbers
	before := rt.Metrics()
	s := r.newSeries()
	out, err := r.drive(ctx, plan{scenario: name, op: op, node: n, workers: workers, series: s,
		do: func(p *runtime.Process, w int, seq uint64, _ time.Time) (time.Time, error) {
			return time.Time{}, route(rt, p, ids[w][seq%callIDs], numbers[seq%uint64(len(numbers))])
		}})
	res := out.Result
	res.Checks = append(append(r.checkErrors(s, res), checkOps(res)), routeChecks(before, rt.Metrics(), out)...)
	res.SLA = routeSLA(res.Latency)
	return res, err
}

// backgroundBurst is how many routes metrics-read makes each millisecond.
const backgroundBurst = 100

func metricsRead(ctx context.Context, r *Runner) (Result, error) {
	const name = "metrics-read"
	n, rt, stop, err := r.router()
	if err != nil {
		return Result{}, err
	}
	defer stop()
	// The observer reads the metrics while calls are being routed, so a
	// background goroutine keeps the counters and histograms changing, at
	// a busy node's pace (backgroundBurst routes a millisecond) rather than
	// flat out: a router saturating a core would measure the scheduler's
	// time slices, not the read.
	var (
		routed, failed atomic.Uint64
		quit           = make(chan struct{})
		bg             sync.WaitGroup
	)
	numbers := r.cfg.Load.Numbers
	bg.Add(1)
	go func() {
		defer bg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			for range backgroundBurst {
				if _, err := rt.Route("BENCH-metrics", numbers[i%len(numbers)]); err != nil {
					failed.Add(1)
				} else {
					routed.Add(1)
				}
				i++
			}
		}
	}()
	workers := r.concurrency(name)
	last := make([]uint64, workers)
	var backwards atomic.Uint64
	base := rt.Metrics().Routed
	// Each worker reads into its own Metrics, as a poller (the exporter,
	// status lines) does: MetricsInto reuses its map and slice and
	// allocates nothing.
	ms := make([]routing.Metrics, workers)
	s := r.newSeries()
	out, err := r.drive(ctx, plan{scenario: name, op: "metrics_read", node: n, workers: workers, series: s,
		do: func(_ *runtime.Process, w int, _ uint64, _ time.Time) (time.Time, error) {
			m := &ms[w]
			rt.MetricsInto(m)
			if m.Routed < last[w] {
				backwards.Add(1)
			}
			last[w] = m.Routed
			return time.Time{}, nil
		}})
	close(quit)
	bg.Wait()
	res := out.Result
	res.Checks = append(r.checkErrors(s, res), checkOps(res),
		checkEq("routed count read going backwards", backwards.Load(), 0),
		checkEq("routed count == routes made in the background", rt.Metrics().Routed-base, routed.Load()),
		checkEq("background routes that failed", failed.Load(), 0))
	res.Metrics = map[string]float64{"background_routes_per_sec": float64(routed.Load()) / res.Elapsed.Seconds()}
	res.SLA = metricsSLA(res.Latency)
	return res, err
}

func callLifecycle(ctx context.Context, r *Runner, billed bool) (Result, error) {
	name := "call-lifecycle"
	if billed {
		name = "call-lifecycle-billed"
	}
	cfg := r.cfg
	// The benchmark places the calls; the system's own generator stays off.
	cfg.Load.Enabled, cfg.Load.Mode = false, "open"
	billing, cleanup, err := r.billing()
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	cfg.Billing = billing
	cfg.Billing.ChargeCalls = billed
	sys, err := telecom.Start(cfg)
	if err != nil {
		return Result{}, err
	}
	defer sys.Stop(0)
	if r.opts.Observe != nil {
		defer r.opts.Observe(sys)()
	}
	n, numbers := sys.Node, cfg.Load.Numbers
	sess0, bill0, route0, cdr0 := sys.Sessions.Stats(), sys.Billing.Stats(), sys.Router.Metrics(), sys.CDRs()
	var peak atomic.Int64
	workers := r.concurrency(name)
	s := r.newSeries()
	out, err := r.drive(ctx, plan{scenario: name, op: "call", node: n, workers: workers, series: s,
		do: func(p *runtime.Process, w int, seq uint64, start time.Time) (time.Time, error) {
			acct := ledger.SeedAccountID(1 + int((uint64(w)*7919+seq)%ledger.SeedAccounts))
			pid, err := sys.Sessions.StartCall(p, telecom.CallSpec{
				ID: fmt.Sprintf("BENCH-%s-%d-%d", r.runID, w, seq), Caller: acct, Account: acct,
				Number: numbers[seq%uint64(len(numbers))], Intended: start,
			})
			if err != nil {
				return time.Time{}, err
			}
			// The call is over when its process is: routed, rung, talked,
			// and its record charged durably.
			ref := p.Monitor(pid)
			m, ok := p.ReceiveMatch(func(m any) bool {
				d, ok := m.(runtime.DownMsg)
				return ok && d.Ref == ref
			}, opTimeout)
			if !ok {
				p.Demonitor(ref, true)
				return time.Time{}, errors.New("call did not end")
			}
			if why := m.(runtime.DownMsg).Reason; !runtime.IsNormal(why) && !runtime.SameReason(why, runtime.NoProc) {
				return time.Time{}, fmt.Errorf("call ended %s", runtime.FormatReason(why))
			}
			return time.Time{}, nil
		},
		tick: func() {
			// call_sup's live children: a call lives until its record
			// is charged, after the session counts it completed.
			if l := int64(sys.Sessions.Active(n)); l > peak.Load() {
				peak.Store(l)
			}
		}})
	res := out.Result
	sess1, bill1, route1 := sys.Sessions.Stats(), sys.Billing.Stats(), sys.Router.Metrics()
	res.Checks = append(r.checkErrors(s, res), checkOps(res),
		checkEq("calls completed == successful calls", sess1.Completed-sess0.Completed, res.Ops),
		checkEq("calls routed == successful calls", route1.Routed-route0.Routed, res.Ops),
		checkEq("call records == successful calls", sys.CDRs()-cdr0, res.Ops))
	if billed {
		res.Checks = append(res.Checks,
			checkEq("records charged == successful calls", bill1.Charged-bill0.Charged, res.Ops),
			checkEq("records left unbilled", bill1.Unbilled-bill0.Unbilled, 0))
	}
	res.Metrics = map[string]float64{"live_calls_peak": float64(peak.Load())}
	if err != nil || billed {
		return res, err
	}
	held := r.opts.HeldCalls
	if held <= 0 {
		held = max(workers, DefaultHeldCalls)
	}
	perCall, checks, err := holdCalls(sys, r, held)
	res.Checks = append(res.Checks, checks...)
	res.Metrics["held_calls"] = float64(held)
	res.Metrics["bytes_per_live_call"] = perCall
	return res, err
}

// holdCalls places count calls that stay connected, measures the memory
// they hold once the heap has been collected, and checks that each is a
// live process in the connected state. The calls end when the system stops.
//
// The memory is the growth from the first half of the calls to all of
// them: the first half absorbs what the runtime keeps cached from the
// timed run (free stacks, pooled buffers), which would otherwise be
// reused by the new calls and hide their cost.
func holdCalls(sys *telecom.System, r *Runner, count int) (perCall float64, checks []Check, err error) {
	n, numbers := sys.Node, r.cfg.Load.Numbers
	pids := make([]runtime.PID, 0, count)
	procs := n.ProcessCount()
	place := func(upTo int) error {
		for i := len(pids); i < upTo; i++ {
			acct := ledger.SeedAccountID(1 + i%ledger.SeedAccounts)
			pid, err := sys.Sessions.StartCall(n, telecom.CallSpec{ID: fmt.Sprintf("BENCH-%s-held-%d", r.runID, i),
				Caller: acct, Account: acct, Number: numbers[i%len(numbers)], Talk: r.cfg.Sessions.MaxDuration.Duration})
			if err != nil {
				return fmt.Errorf("call-lifecycle: holding call %d: %w", i, err)
			}
			pids = append(pids, pid)
		}
		return nil
	}
	half := count / 2
	if err := place(half); err != nil {
		return 0, nil, err
	}
	before := heapInUse()
	if err := place(count); err != nil {
		return 0, nil, err
	}
	after := heapInUse()
	if count > half {
		perCall = float64(int64(after)-int64(before)) / float64(count-half)
	}
	connected := 0
	for _, pid := range pids {
		if v, err := statem.Call(n, pid, "state", opTimeout); err == nil && v == "connected" {
			connected++
		}
	}
	alive := n.ProcessCount() - procs
	active, cerr := supervisor.CountChildren(n, runtime.Name(telecom.CallSupName), opTimeout)
	return perCall, []Check{
		checkEq("held calls in the connected state", uint64(connected), uint64(count)),
		checkEq("call processes alive == held calls", uint64(max(alive, 0)), uint64(count)),
		checkTrue("call_sup children == held calls", cerr == nil && active.Active == count, "%d vs %d", active.Active, count),
	}, nil
}

// heapInUse collects garbage and returns the bytes of heap and stacks in
// use: what live processes cost, without the garbage they left. It
// collects twice because a collection only moves pooled objects aside;
// the second frees them.
func heapInUse() uint64 {
	goruntime.GC()
	goruntime.GC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// chargeAmount is what each benchmark charge costs: one cent, so a seeded
// account could take 150,000 of them.
const chargeAmount money.Amount = 1

// charge runs the charge scenario on the runner's ledger, then, if the
// runner has a ledger to compare with, again on that one, whose results
// become phases named after it.
func charge(ctx context.Context, r *Runner) (Result, error) {
	cfg, cleanup, err := r.billing()
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	res, err := chargeOn(ctx, r, cfg, "")
	if err != nil || r.opts.CompareLedger == "" {
		return res, err
	}
	other := r.cfg.Billing
	other.Ledger = r.opts.CompareLedger
	cmp, err := chargeOn(ctx, r, other, "postgres")
	retry := cmp.Phases
	cmp.Phases = nil
	res.Phases = append(append(res.Phases, cmp), retry...)
	return res, err
}

// chargeOn runs the charge scenario on the ledger cfg names. A non-empty
// label names its results as phases (and their operations) instead.
func chargeOn(ctx context.Context, r *Runner, cfg telecom.BillingConfig, label string) (Result, error) {
	const name = "charge"
	phase := func(p string) string {
		if label == "" {
			return p
		}
		if p == "" {
			return label
		}
		return label + ", " + p
	}
	op := func(o string) string {
		if label == "" {
			return o
		}
		return o + "_" + label
	}
	l, err := telecom.OpenLedger(cfg)
	if err != nil {
		return Result{}, err
	}
	defer l.Close()
	b, err := telecom.NewBilling(cfg, l)
	if err != nil {
		return Result{}, err
	}
	n, stop, err := b.StartAlone("bench_billing_sup")
	if err != nil {
		return Result{}, err
	}
	defer stop()

	workers := r.concurrency(name)
	// An acknowledged charge, to retry: the worker and seq that name its
	// txnID and account. No strings: a list of them would be one more
	// pointer per charge for the garbage collector to trace, in the
	// process under test.
	type ack struct {
		w   uint32
		seq uint64
	}
	acked := make([][]ack, workers) // per worker: its acknowledged charges
	var replayed atomic.Uint64
	// The ids are made without fmt, whose two Sprintfs a charge took a few
	// percent of the CPU time at 50,000 charges/s from the system under
	// test: txnID "BENCH-<run>-<worker>-<seq>" (as the system makes them,
	// each worker numbering its own) and the same accounts as before.
	accounts := make([]string, ledger.SeedAccounts)
	for i := range accounts {
		accounts[i] = ledger.SeedAccountID(1 + i)
	}
	txnBufs := make([][]byte, workers)
	appendUint := func(b []byte, v uint64) []byte {
		var d [20]byte
		i := len(d)
		for {
			i--
			d[i] = byte('0' + v%10)
			if v /= 10; v == 0 {
				return append(b, d[i:]...)
			}
		}
	}
	// txn returns the txnID prefix-<worker>-<seq>, made in worker buf's
	// buffer, and the account it charges.
	txn := func(buf int, prefix string, w uint32, seq uint64) (id, account string) {
		b := append(append(txnBufs[buf][:0], prefix...), '-')
		b = append(appendUint(b, uint64(w)), '-')
		b = appendUint(b, seq)
		txnBufs[buf] = b
		return string(b), accounts[(uint64(w)*7919+seq)%ledger.SeedAccounts]
	}
	// charge charges under a txnID of prefix's, and keeps what is
	// acknowledged if keep.
	charge := func(prefix string, keep bool) func(p *runtime.Process, w int, seq uint64, _ time.Time) (time.Time, error) {
		return func(p *runtime.Process, w int, seq uint64, _ time.Time) (time.Time, error) {
			id, account := txn(w, prefix, uint32(w), seq)
			rec, err := b.Charge(p, id, account, chargeAmount, opTimeout)
			if err != nil {
				return time.Time{}, err
			}
			if rec.Replayed {
				replayed.Add(1) // a fresh txnID cannot have been charged before
			}
			if keep {
				acked[w] = append(acked[w], ack{w: uint32(w), seq: seq})
			}
			return time.Time{}, nil
		}
	}
	measured := "BENCH-" + r.runID
	if r.opts.Warmup > 0 {
		// Unreported: a ledger that falls behind the rate, say, shows it
		// in the measurement that follows.
		if _, err := r.drive(ctx, plan{scenario: name, phase: phase("warm-up"), op: op("charge_warmup"), node: n, workers: workers,
			paced: true, duration: r.opts.Warmup, do: charge(measured+"-warmup", false)}); err != nil {
			return Result{}, err
		}
	}
	vctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep0, err := l.Verify(vctx)
	if err != nil {
		return Result{}, err
	}
	stats0 := l.Stats()
	s := r.newSeries()
	out, err := r.drive(ctx, plan{scenario: name, phase: phase(""), op: op("charge"), node: n, workers: workers, series: s, paced: true,
		do: charge(measured, true)})
	res := out.Result
	rep1, verr := l.Verify(vctx)
	stats1 := l.Stats()
	res.Checks = append(r.checkErrors(s, res), checkOps(res),
		checkTrue("ledger verifies", verr == nil && (rep1.OK() || !rep0.OK()), "%s", verdictOf(rep1, verr)),
		checkEq("charges in the ledger == acknowledged charges", uint64(rep1.Charges-rep0.Charges), res.Ops),
		checkEq("charges committed by the writer == acknowledged charges", uint64(stats1.ChargesCommitted-stats0.ChargesCommitted), res.Ops),
		checkEq("first charges answered as replays", replayed.Load(), 0))
	res.Metrics = map[string]float64{"mean_batch_size": batchMean(stats0, stats1)}
	if r.opts.Warmup > 0 {
		res.Metrics["warmup_s"] = r.opts.Warmup.Seconds()
	}
	res.SLA = billingSLA(res.Latency)
	if err != nil {
		return res, err
	}

	// The retry path: every charge again under its txnID, as a caller
	// does after a timeout. Each must be answered with the original
	// receipt and charge nothing.
	var fresh atomic.Uint64
	s2 := r.newSeries()
	out2, err := r.drive(ctx, plan{scenario: name, phase: phase("idempotent-retry"), op: op("charge_retry"), node: n, workers: workers, series: s2, paced: true,
		do: func(p *runtime.Process, w int, seq uint64, _ time.Time) (time.Time, error) {
			mine := acked[w]
			if len(mine) == 0 {
				mine = acked[seq%uint64(len(acked))]
			}
			if len(mine) == 0 {
				return time.Time{}, errors.New("no acknowledged charge to retry")
			}
			a := mine[seq%uint64(len(mine))]
			id, account := txn(w, measured, a.w, a.seq)
			rec, err := b.Charge(p, id, account, chargeAmount, opTimeout)
			if err != nil {
				return time.Time{}, err
			}
			if !rec.Replayed {
				fresh.Add(1)
				return time.Time{}, fmt.Errorf("retry of %s charged again", id)
			}
			return time.Time{}, nil
		}})
	retry := out2.Result
	rep2, verr2 := l.Verify(vctx)
	stats2 := l.Stats()
	retry.Checks = append(r.checkErrors(s2, retry), checkOps(retry),
		checkEq("retries that charged again", fresh.Load(), 0),
		checkEq("charges in the ledger after retries == acknowledged charges", uint64(rep2.Charges-rep0.Charges), res.Ops),
		checkEq("retries answered with the original receipt", uint64(stats2.IdempotentHits-stats1.IdempotentHits), retry.Ops),
		checkTrue("ledger verifies after retries", verr2 == nil && (rep2.OK() || !rep0.OK()), "%s", verdictOf(rep2, verr2)))
	if retry.Ops > 0 {
		retry.Metrics = map[string]float64{
			"answered_from_memory_ratio": float64(stats2.IndexHits-stats1.IndexHits) / float64(retry.Ops),
		}
	}
	retry.SLA = billingSLA(retry.Latency)
	res.Phases = append(res.Phases, retry)
	return res, err
}

func verdictOf(rep ledger.Report, err error) string {
	if err != nil {
		return err.Error()
	}
	return rep.Verdict
}

func batchMean(a, b ledger.Stats) float64 {
	if b.Batches == a.Batches {
		return 0
	}
	return float64(b.BatchedRequests-a.BatchedRequests) / float64(b.Batches-a.Batches)
}
