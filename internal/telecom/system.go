package telecom

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/app"
	"observer/internal/runtime/code"
	"observer/internal/runtime/supervisor"
	"observer/internal/telecom/chaos"
	"observer/internal/telecom/ledger"
)

// TopSupName is the registered name of the system's top supervisor.
const TopSupName = "telecom_sup"

// AppName is the telecom application's name.
const AppName = "telecom"

// System is a running telecom node: the runtime node, the handles of its
// servers, and the application controller that started the tree.
type System struct {
	Node     *runtime.Node
	Config   Config
	Router   *Router
	Sessions *Sessions
	Load     *LoadGen
	Billing  *Billing
	Apps     *app.Controller
	// Code carries the versions of call_router_server and
	// billing_engine_server that the node can hot-reload between.
	Code *code.Registry
	// Chaos is the chaos monkey, chaos_monkey in the tree, switched off
	// until told otherwise.
	Chaos *chaos.Monkey

	cdrs atomic.Uint64
}

// Start builds the system on a new node and starts the telecom application
// as a permanent application.
func Start(cfg Config) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := runtime.NewNode(runtime.Options{})
	router, err := NewRouter(n, cfg.Router)
	if err != nil {
		return nil, err
	}
	l, err := OpenLedger(cfg.Billing)
	if err != nil {
		return nil, err
	}
	billing, err := NewBilling(cfg.Billing, l)
	if err != nil {
		l.Close()
		return nil, err
	}
	s := &System{Node: n, Config: cfg, Router: router, Billing: billing, Apps: app.NewController(n), Code: code.NewRegistry(n)}
	if err := s.registerModules(); err != nil {
		l.Close()
		return nil, err
	}
	s.Sessions = NewSessions(cfg.Sessions, router, s.bill)
	s.Load = NewLoadGen(cfg.Load, s.Sessions)
	if s.Chaos, err = s.newChaos(); err != nil {
		l.Close()
		return nil, err
	}
	if err := s.Apps.Load(app.Application{Name: AppName, Version: "1", Start: s.startTop}); err != nil {
		l.Close()
		return nil, err
	}
	if err := s.Apps.Start(AppName, app.Permanent); err != nil {
		l.Close()
		return nil, err
	}
	return s, nil
}

// OpenLedger opens the ledger the billing config names: PostgreSQL for a
// postgres:// URL, else the embedded SQLite database in the data directory.
func OpenLedger(cfg BillingConfig) (*ledger.Ledger, error) {
	dsn := cfg.Ledger
	if dsn == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		dsn = cfg.DataDir
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return ledger.Open(ctx, dsn)
}

// bill charges a completed call from its session process.
func (s *System) bill(p *runtime.Process, cdr CDR) {
	s.cdrs.Add(1)
	if !s.Config.Billing.ChargeCalls {
		return // records are counted only
	}
	_ = s.Billing.ChargeCDR(p, cdr, 5*time.Second)
}

// CDRs counts the call detail records produced.
func (s *System) CDRs() uint64 { return s.cdrs.Load() }

// startTop starts telecom_sup.
//
// one_for_one, because no child's failure invalidates another's state:
// every child finds the others by registered name at each use, and each
// tolerates a sibling that is restarting. Calls in flight fail cleanly
// with router_down while call_router_server restarts (its table dies with
// it, as an ETS table dies with its owner), and the router need not take
// the calls down with it; the load generator keeps no reference to the
// calls it started.
func (s *System) startTop(p *runtime.Process) (runtime.PID, error) {
	return supervisor.StartLink(p, supervisor.Spec{
		Flags: supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 20, Period: 10},
		Children: []supervisor.ChildSpec{
			{ID: RouterName, Start: s.Router.StartRouter, Restart: supervisor.Permanent, Module: RouterModule, Version: "1"},
			s.Billing.SupervisorSpec(),
			s.Sessions.SupervisorSpec(),
			{ID: LoadGenName, Start: s.Load.Start, Restart: supervisor.Permanent, Module: LoadGenName, Version: "1"},
			s.Chaos.ChildSpec(),
		},
	}, supervisor.Options{Name: TopSupName, Module: TopSupName})
}

// Stop stops the load, lets the calls in flight finish for up to drain, then
// stops the application, tree and all, in order.
func (s *System) Stop(drain time.Duration) {
	_ = s.Load.SetRate(s.Node, 0)
	_ = s.Load.SetClosedLoop(s.Node, 0)
	deadline := time.Now().Add(drain)
	sub := s.Node.Subscribe(256)
	defer sub.Close()
	for s.Sessions.Active(s.Node) > 0 && time.Now().Before(deadline) {
		select { // calls end with exit events; re-count on each batch
		case <-sub.C:
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.Apps.StopAll()
	_ = s.Billing.Ledger().Close()
}
