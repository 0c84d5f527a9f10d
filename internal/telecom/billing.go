package telecom

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/supervisor"
	"observer/internal/telecom/ledger"
	"observer/internal/telecom/money"
)

// BillingName is the registered name of the billing engine process.
const BillingName = "billing_engine_server"

// BillingSupName is the registered name of the billing subtree.
const BillingSupName = "billing_sup"

// Billing is the handle of the billing engine: billing_engine_server in
// front of the durable ledger, with db_pool for reads.
//
// The ledger (its database and its group-commit writer) belongs to the
// system, as a database server would, not to the billing process: killing
// billing_engine_server loses no acknowledged charge, and the restarted
// process rebuilds its view from the ledger.
type Billing struct {
	ledger *ledger.Ledger
	pool   *Pool
	tariff money.Amount // price per minute

	charged  atomic.Uint64
	rejected atomic.Uint64
	retried  atomic.Uint64
	unbilled atomic.Uint64 // completed calls that could not be charged in time
	rating   billingRating // how calls are priced: see rules.go

	mu   sync.Mutex
	last string // last charge error, for the observer
}

// NewBilling prepares billing over an open ledger.
func NewBilling(cfg BillingConfig, l *ledger.Ledger) (*Billing, error) {
	tariff, err := money.Parse(cfg.Tariff)
	if err != nil {
		return nil, fmt.Errorf("billing.tariff: %w", err)
	}
	b := &Billing{ledger: l, tariff: tariff}
	b.pool = NewPool(PoolConfig{Size: cfg.PoolSize, MaxOverflow: cfg.MaxOverflow, NewWorker: b.startWorker})
	return b, nil
}

// Ledger returns the ledger.
func (b *Billing) Ledger() *ledger.Ledger { return b.ledger }

// Pool returns db_pool.
func (b *Billing) Pool() *Pool { return b.pool }

// BillingStats are the billing counters the observer shows.
type BillingStats struct {
	Charged, Rejected, Retried, Unbilled uint64
	Free                                 uint64 // completed calls rated at zero: nothing to charge
	LastError                            string
	Ledger                               ledger.Stats
	Pool                                 PoolStats
}

// Stats reads the counters.
func (b *Billing) Stats() BillingStats {
	b.mu.Lock()
	last := b.last
	b.mu.Unlock()
	return BillingStats{Charged: b.charged.Load(), Rejected: b.rejected.Load(), Retried: b.retried.Load(),
		Unbilled: b.unbilled.Load(), Free: b.rating.free.Load(), LastError: last, Ledger: b.ledger.Stats(), Pool: b.pool.Stats()}
}

// SupervisorSpec is billing_sup's child spec.
//
// rest_for_one over [db_pool, billing_engine_server]: the billing engine
// borrows pool workers, so a pool that restarts (its workers gone) must
// restart the engine too; an engine that crashes leaves the pool alone.
func (b *Billing) SupervisorSpec() supervisor.ChildSpec {
	return supervisor.ChildSpec{
		ID: BillingSupName, Type: supervisor.Supervisor, Restart: supervisor.Permanent, Module: BillingSupName, Version: "1",
		Start: func(p *runtime.Process) (runtime.PID, error) {
			return supervisor.StartLink(p, supervisor.Spec{
				Flags: supervisor.Flags{Strategy: supervisor.RestForOne, Intensity: 10, Period: 10},
				Children: []supervisor.ChildSpec{
					b.pool.SupervisorSpec(),
					{ID: BillingName, Start: b.Start, Restart: supervisor.Permanent, Module: BillingName, Version: "1"},
				},
			}, supervisor.Options{Name: BillingSupName, Module: BillingSupName})
		},
	}
}

// StartAlone runs the billing subtree without the rest of the system: on a
// node of its own, under a one_for_one supervisor registered as name. It is
// what `observer charge` and the charge benchmark run. stop shuts the
// subtree down; the ledger stays open.
func (b *Billing) StartAlone(name string) (n *runtime.Node, stop func(), err error) {
	n = runtime.NewNode(runtime.Options{})
	sup, err := supervisor.Start(n, supervisor.Spec{
		Flags:    supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 1, Period: 5},
		Children: []supervisor.ChildSpec{b.SupervisorSpec()},
	}, supervisor.Options{Name: name})
	if err != nil {
		return nil, nil, err
	}
	return n, func() { _ = supervisor.Stop(n, sup, runtime.Shutdown, CallTimeout) }, nil
}

// Start is billing_engine_server's start function. It starts the module's
// current version, so a restart after an upgrade comes back upgraded.
func (b *Billing) Start(p *runtime.Process) (runtime.PID, error) {
	mod, vsn := b.current()
	return genserver.StartLink(p, mod, nil, genserver.Options{Name: BillingName, Module: BillingName, Version: vsn})
}

type chargeReq struct {
	txnID, account string
	amount         money.Amount
}
type chargeReply struct {
	rec ledger.Receipt
	err error
}

// pendingCharge is a charge billing_engine_server has handed to the
// ledger: the ledger completes it once the charge is durable or rejected,
// on the ledger's goroutine, and it is then the reply to the caller.
type pendingCharge struct {
	from  runtime.From
	b     *Billing
	reply chargeReply
}

// Complete counts the outcome and answers the caller (ledger.Completion).
func (c *pendingCharge) Complete(rec ledger.Receipt, err error) {
	switch {
	case err == nil:
		if !rec.Replayed {
			c.b.charged.Add(1)
		}
	case !Retryable(err):
		c.b.rejected.Add(1)
		c.b.mu.Lock()
		c.b.last = err.Error()
		c.b.mu.Unlock()
	}
	c.reply = chargeReply{rec, err}
	c.from.Reply(c)
}

// Charge charges an account through billing_engine_server
// (charge_account/3). It returns once the charge is durable. Errors match
// ledger's sentinels (ErrUnknownAccount, ErrInsufficientFunds,
// ErrInvalidAmount, ErrIdempotencyConflict), or are the call's failure
// (the billing process exited, noproc, timeout): retry those with the same
// txnID, which charges at most once.
func (b *Billing) Charge(c runtime.Caller, txnID, account string, amount money.Amount, timeout time.Duration) (ledger.Receipt, error) {
	v, err := c.Call(runtime.Name(BillingName), chargeReq{txnID, account, amount}, timeout)
	if err != nil {
		return ledger.Receipt{}, err
	}
	var r chargeReply
	switch v := v.(type) {
	case *pendingCharge:
		r = v.reply
	case chargeReply: // answered by the server itself
		r = v
	default:
		return ledger.Receipt{}, fmt.Errorf("%s: unexpected reply %T", BillingName, v)
	}
	return r.rec, r.err
}

// Retryable reports whether a charge error may be retried with the same
// txnID: the outcome is unknown or the billing process was unavailable.
func Retryable(err error) bool {
	var ee *runtime.ExitError
	return errors.As(err, &ee) || errors.Is(err, runtime.ErrNoProc) || errors.Is(err, runtime.ErrTimeout) ||
		errors.Is(err, ledger.ErrOutcomeUnknown)
}

// Rate prices a call as the running billing version does: version 1 at
// the flat per-minute tariff, rounded up to the cent, at least one cent;
// version 2 by the rating rules (see Rules.Rate).
func (b *Billing) Rate(cdr CDR) money.Amount {
	if rs := b.rating.active.Load(); rs != nil {
		return rs.Rate(cdr, b.tariff)
	}
	ms := int64(cdr.Duration / time.Millisecond)
	cents := (ms*int64(b.tariff) + 59_999) / 60_000
	return money.Amount(max(cents, 1))
}

// ChargeCDR rates a completed call and charges it under the txnID
// "CDR-<call id>", retrying through billing restarts for up to deadline;
// the txnID makes every retry charge at most once.
func (b *Billing) ChargeCDR(c runtime.Caller, cdr CDR, deadline time.Duration) error {
	txn := "CDR-" + cdr.CallID
	// Rated once, before the first attempt: every retry then carries the
	// same amount, which the ledger's idempotency check requires, even if
	// the rating changes meanwhile.
	amt := b.Rate(cdr)
	if amt == 0 {
		// A free call has nothing to charge, and the ledger refuses zero.
		b.rating.free.Add(1)
		return nil
	}
	end := time.Now().Add(deadline)
	backoff := time.Millisecond
	for {
		_, err := b.Charge(c, txn, cdr.Account, amt, CallTimeout)
		if err == nil {
			return nil
		}
		if !Retryable(err) || time.Now().After(end) {
			if Retryable(err) {
				b.unbilled.Add(1)
			}
			return err
		}
		b.retried.Add(1)
		time.Sleep(backoff) // the billing process is restarting
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// billingServer is billing_engine_server. A charge is handed to the
// ledger's group-commit writer and answered when durable, so the server
// process never waits on the disk and many charges share one commit.
type billingServer struct{ b *Billing }

type billingState struct {
	recent []ledger.Receipt // the latest charges, rebuilt from the ledger at start
}

func (s *billingServer) Init(p *runtime.Process, _ any) genserver.Result {
	ctx, cancel := context.WithTimeout(p.Context(), 5*time.Second)
	defer cancel()
	recent, err := s.b.ledger.Recent(ctx, 20)
	if err != nil {
		return genserver.Stop(fmt.Errorf("billing: reading the ledger: %w", err), nil)
	}
	// Version 1 rates at the flat tariff, also when it restarts after a
	// process alone was moved to version 2.
	s.b.rating.active.Store(nil)
	return genserver.Ok(&billingState{recent: recent})
}

func (s *billingServer) HandleCall(p *runtime.Process, req any, from runtime.From, state any) genserver.Result {
	switch r := req.(type) {
	case chargeReq:
		// Handed to the ledger's writer, which answers the caller once the
		// charge is durable (pendingCharge.Complete): the server goes on
		// to the next request at once, with no goroutine per charge, and
		// every charge queued meanwhile shares the writer's next commit.
		// Should this process die meanwhile, its callers get its exit from
		// their calls; the ledger, which belongs to the system, still
		// commits what it was given, and a retry with the same txnID is
		// answered from it.
		s.b.ledger.ChargeAsync(r.txnID, r.account, r.amount, &pendingCharge{from: from, b: s.b})
		return genserver.NoReply(state)
	case rulesReq:
		return s.setRules(r, state)
	}
	return genserver.Reply(fmt.Errorf("%s: unknown request %T", BillingName, req), state)
}

func (s *billingServer) HandleCast(p *runtime.Process, msg any, state any) genserver.Result {
	return genserver.NoReply(state)
}

func (s *billingServer) HandleInfo(p *runtime.Process, msg any, state any) genserver.Result {
	return genserver.NoReply(state)
}

// dbWorker is a db_pool worker: a process holding its own connection to
// the ledger's database for reads.
type dbWorker struct{ b *Billing }

type dbReq struct {
	fn func(ctx context.Context, conn *ledger.Conn) (any, error)
}
type dbReply struct {
	v   any
	err error
}

func (b *Billing) startWorker(p *runtime.Process) (runtime.PID, error) {
	return genserver.StartLink(p, &dbWorker{b: b}, nil, genserver.Options{Module: "db_worker", Version: "1"})
}

func (w *dbWorker) Init(p *runtime.Process, _ any) genserver.Result {
	ctx := p.Context()
	conn, err := w.b.ledger.Conn(ctx)
	if err != nil {
		return genserver.Stop(err, nil)
	}
	// A worker killed with its pool runs no Terminate; its connection is
	// closed when its context ends, so a restarted pool finds the
	// database's connections free again.
	go func() {
		<-ctx.Done()
		_ = conn.Close()
	}()
	return genserver.Ok(conn)
}

func (w *dbWorker) HandleCall(p *runtime.Process, req any, _ runtime.From, state any) genserver.Result {
	r, ok := req.(dbReq)
	if !ok {
		return genserver.Reply(dbReply{err: fmt.Errorf("db_worker: unknown request %T", req)}, state)
	}
	ctx, cancel := context.WithTimeout(p.Context(), 5*time.Second)
	defer cancel()
	v, err := r.fn(ctx, state.(*ledger.Conn))
	return genserver.Reply(dbReply{v, err}, state)
}

func (w *dbWorker) HandleCast(p *runtime.Process, _ any, state any) genserver.Result {
	return genserver.NoReply(state)
}

func (w *dbWorker) HandleInfo(p *runtime.Process, _ any, state any) genserver.Result {
	return genserver.NoReply(state)
}

// query runs fn on a pool worker's connection.
func (b *Billing) query(c runtime.Caller, fn func(ctx context.Context, conn *ledger.Conn) (any, error)) (any, error) {
	var out any
	err := b.pool.Transaction(c, CallTimeout, func(w runtime.PID) error {
		v, err := c.Call(w, dbReq{fn}, CallTimeout)
		if err != nil {
			return err
		}
		r := v.(dbReply)
		out = r.v
		return r.err
	})
	return out, err
}

// Account reads an account through db_pool.
func (b *Billing) Account(c runtime.Caller, id string) (ledger.Account, error) {
	v, err := b.query(c, func(ctx context.Context, conn *ledger.Conn) (any, error) { return conn.Account(ctx, id) })
	if err != nil {
		return ledger.Account{}, err
	}
	return v.(ledger.Account), nil
}

// Recent reads the latest charges through db_pool.
func (b *Billing) Recent(c runtime.Caller, n int) ([]ledger.Receipt, error) {
	v, err := b.query(c, func(ctx context.Context, conn *ledger.Conn) (any, error) { return conn.Recent(ctx, n) })
	if err != nil {
		return nil, err
	}
	return v.([]ledger.Receipt), nil
}

// TopAccounts reads the n accounts with the most charges (busiest) or the
// lowest balances, through db_pool.
func (b *Billing) TopAccounts(c runtime.Caller, n int, lowest bool) ([]ledger.AccountActivity, error) {
	v, err := b.query(c, func(ctx context.Context, conn *ledger.Conn) (any, error) {
		if lowest {
			return conn.LowestBalances(ctx, n)
		}
		return conn.Busiest(ctx, n)
	})
	if err != nil {
		return nil, err
	}
	return v.([]ledger.AccountActivity), nil
}
