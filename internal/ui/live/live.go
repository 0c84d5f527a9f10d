// Package live connects the observer UI to a running telecom system: it
// implements ui.Source over *telecom.System.
package live

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/code"
	"observer/internal/runtime/supervisor"
	"observer/internal/telecom"
	"observer/internal/ui"
)

// ledgerEvery is how often the ledger's rows are re-read: they come from
// the database through db_pool, so the 10 Hz refresh reuses them between.
const ledgerEvery = time.Second

// verifyEvery is how often the ledger is verified in the background.
const verifyEvery = 30 * time.Second

// Source is the UI's view of a running system.
type Source struct {
	sys *telecom.System

	mu         sync.Mutex
	ledgerAt   time.Time
	recent     []ui.ChargeView
	busiest    []ui.AccountView
	lowest     []ui.AccountView
	verify     ui.VerifyView
	verifying  bool
	verifiedAt time.Time

	// Chaos is set by the binary when the chaos monkey runs. Upgrade
	// defaults to System.UpgradeNext: the next registered version.
	Chaos   func() (string, error)
	Upgrade func(pid runtime.PID) (string, error)
	ChaosOn func() bool
}

// New returns the source for sys.
func New(sys *telecom.System) *Source { return &Source{sys: sys, Upgrade: sys.UpgradeNext} }

// Node is the system's node.
func (s *Source) Node() *runtime.Node { return s.sys.Node }

// Tree lists every supervisor with its children.
func (s *Source) Tree() []ui.SupervisorView {
	infos := supervisor.All(s.sys.Node)
	out := make([]ui.SupervisorView, 0, len(infos))
	for _, info := range infos {
		v := ui.SupervisorView{
			PID: info.PID, Name: info.Name, Module: info.Module, Version: info.Version,
			Strategy: info.Strategy.String(), Intensity: info.Intensity, Period: time.Duration(info.Period) * time.Second,
		}
		for _, r := range info.Restarts {
			for i := 0; i < r.Count; i++ {
				v.Restarts = append(v.Restarts, r.At)
			}
		}
		for _, c := range info.Children {
			mod, vsn := c.Module, c.Version
			// The child spec names the version the child was declared
			// with; the process knows the one it runs since a code change.
			if pi := c.PID.Info(); pi.Version != "" {
				mod, vsn = pi.Module, pi.Version
			}
			v.Children = append(v.Children, ui.ChildView{
				ID: c.ID, PID: c.PID, Status: c.Status.String(), Type: c.Type.String(), Restarts: c.Restarts,
				LastExit: c.LastExit, LastRestart: c.LastRestart, Module: mod, Version: vsn,
			})
		}
		out = append(out, v)
	}
	return out
}

// Telecom reads the system's figures.
func (s *Source) Telecom() ui.TelecomView {
	m := s.sys.Router.Metrics()
	v := ui.TelecomView{
		Routing:  ui.RoutingView{Routed: m.Routed, Dropped: m.Dropped, P50: m.RecentLatency.P50, P99: m.RecentLatency.P99, P999: m.RecentLatency.P999},
		LoadRate: s.sys.Load.Rate(),
	}
	for _, n := range m.Failed {
		v.Routing.Failed += n
	}
	if s.ChaosOn != nil {
		v.Chaos = s.ChaosOn()
	}
	for _, e := range s.sys.Router.Table().Entries() {
		v.Routes = append(v.Routes, ui.RouteView{Prefix: e.Prefix, Destination: e.Destination, Trunks: trunksOf(s.sys, e.Destination)})
	}
	for _, t := range s.sys.Router.Trunks() {
		v.Trunks = append(v.Trunks, ui.TrunkView{Name: t.Name, Host: t.Host, State: t.State.String(), FailureRate: t.FailureRate,
			Attempts: t.Attempts, Failures: t.Failures, Rejected: t.Rejected})
	}
	bs := s.sys.Billing.Stats()
	v.Ledger = ui.LedgerView{
		Backend: bs.Ledger.Backend, Charges: uint64(bs.Ledger.ChargesCommitted), IdempotentHits: uint64(bs.Ledger.IdempotentHits),
		Pool: ui.PoolView{Busy: bs.Pool.Busy, Idle: bs.Pool.Idle, Waiting: bs.Pool.Waiting},
	}
	s.refreshLedger()
	s.mu.Lock()
	v.Ledger.Recent, v.Ledger.Busiest, v.Ledger.Lowest, v.Ledger.Verify = s.recent, s.busiest, s.lowest, s.verify
	s.mu.Unlock()
	return v
}

func trunksOf(sys *telecom.System, dest string) string {
	for _, d := range sys.Router.Table().Destinations() {
		if d.Name != dest {
			continue
		}
		parts := make([]string, len(d.Trunks))
		for i, t := range d.Trunks {
			parts[i] = fmt.Sprintf("%s p%d w%d", t.Trunk, t.Priority, t.Weight)
		}
		return strings.Join(parts, ", ")
	}
	return ""
}

// refreshLedger re-reads the ledger rows at most once per ledgerEvery, and
// starts a background verification every verifyEvery.
func (s *Source) refreshLedger() {
	s.mu.Lock()
	due := time.Since(s.ledgerAt) >= ledgerEvery
	if due {
		s.ledgerAt = time.Now()
	}
	verify := !s.verifying && time.Since(s.verifiedAt) >= verifyEvery
	if verify {
		s.verifying = true
	}
	s.mu.Unlock()
	if verify {
		go s.runVerify()
	}
	if !due {
		return
	}
	b, n := s.sys.Billing, s.sys.Node
	var recent []ui.ChargeView
	if rs, err := b.Recent(n, 12); err == nil {
		for _, r := range rs {
			recent = append(recent, ui.ChargeView{TxnID: r.TxnID, Account: r.Account, Amount: r.Amount.String(), At: r.At, Replayed: r.Replayed})
		}
	}
	accounts := func(lowest bool) []ui.AccountView {
		as, err := b.TopAccounts(n, 8, lowest)
		if err != nil {
			return nil
		}
		out := make([]ui.AccountView, len(as))
		for i, a := range as {
			out[i] = ui.AccountView{ID: a.ID, Balance: a.Balance.String(), Charges: int(a.Charges)}
		}
		return out
	}
	busiest, lowest := accounts(false), accounts(true)
	s.mu.Lock()
	s.recent, s.busiest, s.lowest = recent, busiest, lowest
	s.mu.Unlock()
}

func (s *Source) runVerify() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := s.sys.Billing.Ledger().Verify(ctx)
	v := ui.VerifyView{Done: true, OK: err == nil && rep.OK(), Verdict: rep.Verdict, At: time.Now()}
	if err != nil {
		v.Verdict = err.Error()
	}
	s.mu.Lock()
	s.verify, s.verifying, s.verifiedAt = v, false, time.Now()
	s.mu.Unlock()
}

// Actions binds the keys to the system.
func (s *Source) Actions() ui.Actions {
	return ui.Actions{
		SetLoadRate: func(delta int) (string, error) {
			r, err := s.sys.Load.Adjust(s.sys.Node, delta > 0)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("load %g calls/s", r), nil
		},
		ToggleChaos:   s.Chaos,
		Upgrade:       s.Upgrade,
		RunCommand:    s.sys.Exec,
		Modules:       s.modules,
		UpgradeModule: s.upgradeModule,
	}
}

// modules lists the modules of the system's code registry.
func (s *Source) modules() ([]ui.ModuleView, error) {
	mods := s.sys.Code.Modules()
	out := make([]ui.ModuleView, len(mods))
	for i, m := range mods {
		v := ui.ModuleView{Name: m.Name, Current: m.Current, Old: m.Old}
		for _, vi := range m.Versions {
			v.Versions = append(v.Versions, ui.VersionView{
				Name: vi.Name, Notes: vi.Notes, Current: vi.Current, Available: vi.Registered, Processes: len(vi.Processes),
			})
		}
		out[i] = v
	}
	return out, nil
}

// upgradeModule moves every process of a module, as the console's
// upgrade command does: all or nothing, each step bounded by
// telecom.UpgradeTimeout.
func (s *Source) upgradeModule(module, version string) (ui.UpgradeReport, error) {
	rep, err := s.sys.Code.Upgrade(module, version, nil, telecom.UpgradeTimeout)
	return reportView(rep), err
}

func reportView(r code.Report) ui.UpgradeReport {
	failed := make(map[runtime.PID]bool)
	stranded := 0
	for _, e := range r.Errors {
		switch e.Step {
		case "suspend", "code_change":
			failed[e.PID] = true
		case "rollback":
			stranded++
		}
	}
	return ui.UpgradeReport{
		Module: r.Module, From: r.From, To: r.To,
		Upgraded: len(r.Upgraded), RolledBack: len(r.RolledBack), Failed: len(failed), Stranded: stranded,
		Skipped: len(r.Skipped), MaxPause: r.MaxPause,
	}
}
