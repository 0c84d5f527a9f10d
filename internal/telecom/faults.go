package telecom

import (
	"fmt"
	"sync"
	"sync/atomic"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/sys"
	"observer/internal/telecom/chaos"
	"observer/internal/telecom/ledger"
)

// ErrLedgerUnreachable is the answer to a charge while the ledger's
// database is cut off from billing (the chaos monkey's partition). It
// wraps ledger.ErrOutcomeUnknown, as a real partition leaves the client
// unable to tell whether the database committed: Retryable holds, and
// ChargeCDR retries with the same txnID until the partition heals or its
// deadline passes.
var ErrLedgerUnreachable = fmt.Errorf("billing: the ledger's database is unreachable: %w", ledger.ErrOutcomeUnknown)

// newChaos makes the system's chaos monkey from the config, switched off,
// with its partition fault wired to billing.
func (s *System) newChaos() (*chaos.Monkey, error) {
	kinds := make([]chaos.Kind, len(s.Config.Chaos.Kinds))
	for i, k := range s.Config.Chaos.Kinds {
		kinds[i] = chaos.Kind(k)
	}
	cut := &ledgerCut{s: s}
	m, err := chaos.New(s.Node, chaos.Settings{Rate: s.Config.Chaos.Rate, Targets: s.Config.Chaos.Targets, Kinds: kinds},
		chaos.Options{Partition: cut.set})
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	return m, nil
}

// ledgerCut is the partition switch between billing_engine_server and the
// ledger's database. While it is on, the billing engine answers every
// charge with ErrLedgerUnreachable instead of handing it to the ledger;
// calls keep routing, and completed calls' charges are retried with their
// txnIDs once it is off.
//
// The billing engine consults the switch through cutBilling, which puts
// the switch in front of whichever version of the engine's code the
// process runs. set loads it into the running process as a release
// upgrade moves a process to new code (suspend, change_code, resume),
// keeping the version and the state, much as Erlang's meck replaces a
// module to inject failures. A billing engine that restarts, or that an
// upgrade moves to other code, during a partition runs without the
// switch until the next set; the monkey calls set again while the
// partition lasts.
type ledgerCut struct {
	s  *System
	on atomic.Bool

	mu      sync.Mutex
	loaded  runtime.PID // the billing engine running cutBilling
	version string      // the version it was loaded over
}

func (c *ledgerCut) set(on bool) error {
	c.on.Store(on)
	if !on {
		return nil // cutBilling stays loaded and lets charges through
	}
	n := c.s.Node
	pid, ok := n.Whereis(BillingName)
	if !ok {
		return fmt.Errorf("%s is restarting", BillingName)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	vsn := pid.Info().Version
	if c.loaded == pid && c.version == vsn {
		return nil
	}
	inner, err := c.module(vsn)
	if err != nil {
		return err
	}
	if err := sys.Suspend(n, pid, CallTimeout); err != nil {
		return fmt.Errorf("suspending %s: %w", BillingName, err)
	}
	err = sys.ChangeCode(n, pid, &cutBilling{inner: inner, cut: c}, vsn, nil, CallTimeout)
	if rerr := sys.Resume(n, pid, CallTimeout); err == nil && rerr != nil {
		err = fmt.Errorf("resuming %s: %w", BillingName, rerr)
	}
	if err != nil {
		return err
	}
	c.loaded, c.version = pid, vsn
	return nil
}

// module is the billing engine's code of version vsn, as the code
// registry carries it.
func (c *ledgerCut) module(vsn string) (genserver.Module, error) {
	if c.s.Code != nil {
		for _, m := range c.s.Code.Modules() {
			if m.Name != BillingName {
				continue
			}
			for _, v := range m.Versions {
				if mod, ok := v.Module.(genserver.Module); ok && v.Name == vsn {
					return mod, nil
				}
			}
		}
		return nil, fmt.Errorf("%s runs version %q, which the code registry does not carry", BillingName, vsn)
	}
	return &billingServer{b: c.s.Billing}, nil
}

// cutBilling is billing_engine_server's code with the partition switch in
// front of the ledger: it answers charges itself while the switch is on
// and hands everything else to the code it was loaded over. It has no
// CodeChange, so loading it keeps the state as it is, and the next code
// change migrates that state as if from the code underneath.
type cutBilling struct {
	inner genserver.Module
	cut   *ledgerCut
}

func (s *cutBilling) Init(p *runtime.Process, arg any) genserver.Result { return s.inner.Init(p, arg) }

func (s *cutBilling) HandleCall(p *runtime.Process, req any, from runtime.From, state any) genserver.Result {
	if _, ok := req.(chargeReq); ok && s.cut.on.Load() {
		return genserver.Reply(chargeReply{err: ErrLedgerUnreachable}, state)
	}
	return s.inner.HandleCall(p, req, from, state)
}

func (s *cutBilling) HandleCast(p *runtime.Process, msg any, state any) genserver.Result {
	return s.inner.HandleCast(p, msg, state)
}

func (s *cutBilling) HandleInfo(p *runtime.Process, msg any, state any) genserver.Result {
	return s.inner.HandleInfo(p, msg, state)
}

func (s *cutBilling) HandleContinue(p *runtime.Process, cont any, state any) genserver.Result {
	if c, ok := s.inner.(genserver.Continuer); ok {
		return c.HandleContinue(p, cont, state)
	}
	return genserver.Stop(fmt.Errorf("%T returned Continue but has no HandleContinue", s.inner), state)
}

func (s *cutBilling) Terminate(p *runtime.Process, reason any, state any) {
	if t, ok := s.inner.(genserver.Terminator); ok {
		t.Terminate(p, reason, state)
	}
}
