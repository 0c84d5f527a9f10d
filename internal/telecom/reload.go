package telecom

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/code"
)

// Hot reload of the telecom system: module upgrades through the code
// registry, and the routing table, trunk costs and rating rules reloaded
// from disk while calls flow.

// UpgradeTimeout bounds each system call of an upgrade to each process.
// A router or billing process answers within microseconds unless it is
// stuck, and calls queue behind a suspended process for at most this long.
const UpgradeTimeout = 2 * time.Second

// registerModules registers the versions the binary carries, before the
// tree starts, so start functions find the current version.
func (s *System) registerModules() error {
	s.Router.lcr.reg = s.Code
	s.Billing.rating.reg = s.Code
	// Compiled now rather than on first use, which would be inside an
	// upgrade, while the process is suspended.
	DefaultRules()
	defaultCosts()
	return errors.Join(
		s.Code.Register(RouterModule, s.Router.routerVersions()...),
		s.Code.Register(BillingName, s.Billing.billingVersions()...),
	)
}

// UpgradeAll moves call_router_server and then billing_engine_server to
// version to (an older version downgrades). Each module's upgrade is all
// or nothing; if billing's fails, the router is moved back to the version
// it ran, so both modules end on to or both stay where they were. The
// reports are the router's, billing's (if tried) and the router's move
// back (if any), in that order.
func (s *System) UpgradeAll(to string) ([]code.Report, error) {
	prev := s.Code.Current(RouterModule).Name
	rr, err := s.Code.Upgrade(RouterModule, to, nil, UpgradeTimeout)
	reps := []code.Report{rr}
	if err != nil {
		return reps, err
	}
	br, err := s.Code.Upgrade(BillingName, to, nil, UpgradeTimeout)
	reps = append(reps, br)
	if err == nil || prev == to {
		return reps, err
	}
	back, berr := s.Code.Upgrade(RouterModule, prev, nil, UpgradeTimeout)
	reps = append(reps, back)
	if berr != nil {
		berr = fmt.Errorf("moving %s back to %s: %w", RouterModule, prev, berr)
	}
	return reps, errors.Join(err, berr)
}

// UpgradeNext moves one process to the version registered after the one
// it runs (the observer's r key). The module's current version does not
// change, so processes started later, restarts included, still start on
// it: this is a canary; `upgrade MODULE VERSION` moves the whole module.
func (s *System) UpgradeNext(pid runtime.PID) (string, error) {
	info := pid.Info()
	if !pid.Alive() {
		return "", fmt.Errorf("%v: %w", pid, runtime.ErrNoProc)
	}
	if info.Module == "" {
		return "", fmt.Errorf("%v runs no named module, so it has no versions", pid)
	}
	var versions []string
	for _, m := range s.Code.Modules() {
		if m.Name == info.Module {
			for _, v := range m.Versions {
				if v.Registered {
					versions = append(versions, v.Name)
				}
			}
		}
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("%s has no versions registered for hot reload", info.Module)
	}
	i := slices.Index(versions, info.Version)
	switch {
	case i < 0:
		return "", fmt.Errorf("%v runs %s version %q, which is not registered", pid, info.Module, info.Version)
	case i == len(versions)-1:
		return "", fmt.Errorf("%v already runs %s %s, the newest version", pid, info.Module, info.Version)
	}
	rep, err := s.Code.UpgradeProcess(pid, versions[i+1], nil, UpgradeTimeout)
	if err != nil {
		return "", err
	}
	cur := s.Code.Current(info.Module).Name
	return fmt.Sprintf("%s %v: %s -> %s, paused %v (new processes still start on %s)",
		info.Module, pid, rep.From, rep.To, rep.MaxPause.Round(time.Microsecond), cur), nil
}

// ReloadRoutes loads the routing table file into the router; a bad file
// is refused with its line numbers and the running table stays. The
// outcome is also published as a code_change event for the observer.
func (s *System) ReloadRoutes(path string) (string, error) {
	err := s.Router.LoadTable(s.Node, path, CallTimeout)
	msg := "routing table reloaded from " + path
	if err == nil {
		msg += fmt.Sprintf(" (%s)", plural(len(s.Router.Table().Entries()), "route", "routes"))
	}
	return s.reloaded(RouterModule, msg, err)
}

// ReloadCosts loads a trunk costs file into the router: version 2 routes
// by it at once, version 1 keeps it for its upgrade. A bad file is refused
// with its line numbers and the running costs stay.
func (s *System) ReloadCosts(path string) (string, error) {
	err := s.Router.LoadCosts(s.Node, path, CallTimeout)
	msg := "trunk costs reloaded from " + path
	if err == nil && s.Code.Current(RouterModule).Name == "1" {
		msg += fmt.Sprintf(" (%s runs version 1 and routes by weight until upgraded)", RouterModule)
	}
	return s.reloaded(RouterModule, msg, err)
}

// ReloadRules compiles a rating-rules file and hands it to the billing
// engine: version 2 prices calls by it from then on, version 1 keeps it
// for its upgrade. A file that fails to parse or compile is refused with
// its lines and messages, and the running rules stay.
func (s *System) ReloadRules(path string) (string, error) {
	rs, err := LoadRulesFile(path)
	active := false
	if err == nil {
		active, err = s.Billing.SetRules(s.Node, rs, CallTimeout)
	}
	msg := "rating rules reloaded from " + path
	if err == nil {
		msg += fmt.Sprintf(" (%s)", plural(rs.Len(), "rule", "rules"))
		if !active {
			msg += fmt.Sprintf("; %s runs version 1 and charges the flat tariff until upgraded", BillingName)
		}
	}
	return s.reloaded(BillingName, msg, err)
}

// reloaded publishes a reload's outcome, so the observer's event log shows
// reloads next to the code changes they may prepare.
func (s *System) reloaded(module, msg string, err error) (string, error) {
	text := msg
	if err != nil {
		text = strings.Replace(msg, " reloaded from ", " from ", 1) + " refused: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	s.Node.Publish(runtime.Event{Kind: runtime.EventCodeChange, Name: module, Text: text, Reason: err})
	if err != nil {
		return "", err
	}
	return msg, nil
}

// ReloadFiles names the files a running system reloads from disk; empty
// names are skipped.
type ReloadFiles struct {
	Routes string // routing table of call_router_server
	Costs  string // trunk costs of call_router_server version 2
	Rules  string // rating rules of billing_engine_server version 2
}

// Empty reports whether no file is named.
func (f ReloadFiles) Empty() bool { return f.Routes == "" && f.Costs == "" && f.Rules == "" }

func (s *System) reloaders(f ReloadFiles) []watched {
	var ws []watched
	for _, w := range []watched{{path: f.Routes, reload: s.ReloadRoutes}, {path: f.Costs, reload: s.ReloadCosts}, {path: f.Rules, reload: s.ReloadRules}} {
		if w.path != "" {
			ws = append(ws, w)
		}
	}
	return ws
}

// LoadFiles loads the costs and rules files at start. The routing table
// is not reloaded: Start already loaded the configured one.
func (s *System) LoadFiles(f ReloadFiles) error {
	f.Routes = ""
	for _, w := range s.reloaders(f) {
		if _, err := w.reload(w.path); err != nil {
			return err
		}
	}
	return nil
}

// watched is one file Watch polls.
type watched struct {
	path   string
	reload func(path string) (string, error)
	mod    time.Time
	size   int64
	moved  bool   // changed at the last poll: reloaded once it stays put for a poll
	err    string // the last stat error reported, so it is reported once
}

// Watch polls the files' modification times and sizes every interval
// until ctx ends, and reloads a file once either has changed and then
// stayed the same for a whole interval, so that a file written in place is
// not read half-written: a file saved while the system runs takes effect
// within two intervals. Polling needs
// no file-notification dependency and works on every filesystem. Each
// reload's outcome, success or refusal, goes to log (if not nil) and to
// the node's event stream. A refused file leaves the running version in
// place until the file changes again.
//
// Watch notes the files' state before it returns, so any later change is
// seen, and polls on its own goroutine.
func (s *System) Watch(ctx context.Context, f ReloadFiles, interval time.Duration, log func(string)) {
	if log == nil {
		log = func(string) {}
	}
	ws := s.reloaders(f)
	for i := range ws {
		if fi, err := os.Stat(ws[i].path); err == nil {
			ws[i].mod, ws[i].size = fi.ModTime(), fi.Size()
		}
	}
	go s.watch(ctx, ws, interval, log)
}

func (s *System) watch(ctx context.Context, ws []watched, interval time.Duration, log func(string)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for i := range ws {
			w := &ws[i]
			fi, err := os.Stat(w.path)
			if err != nil {
				if err.Error() != w.err {
					w.err = err.Error()
					log("watch: " + w.err)
				}
				continue
			}
			w.err = ""
			if !fi.ModTime().Equal(w.mod) || fi.Size() != w.size {
				w.mod, w.size, w.moved = fi.ModTime(), fi.Size(), true
				continue
			}
			if !w.moved {
				continue
			}
			w.moved = false
			msg, err := w.reload(w.path)
			if err != nil {
				msg = "reload of " + w.path + " refused: " + strings.ReplaceAll(err.Error(), "\n", "; ")
			}
			log(msg)
		}
	}
}

// modulesText lists the modules for the console's modules command.
func (s *System) modulesText() string {
	var b strings.Builder
	for i, m := range s.Code.Modules() {
		if i > 0 {
			b.WriteByte('\n')
		}
		old := "none"
		if len(m.Old) > 0 {
			old = strings.Join(m.Old, ", ")
		}
		fmt.Fprintf(&b, "%s: current %s, old code %s", m.Name, m.Current, old)
		for _, v := range m.Versions {
			mark := " "
			if v.Current {
				mark = "*"
			}
			procs := plural(len(v.Processes), "process", "processes")
			fmt.Fprintf(&b, "\n  %s%-3s %-12s %s", mark, v.Name, procs, v.Notes)
		}
	}
	return b.String()
}

// upgradeText runs the console's upgrade command: one module, or all.
func (s *System) upgradeText(module, to string) (string, error) {
	var reps []code.Report
	var err error
	if module == "all" {
		reps, err = s.UpgradeAll(to)
	} else {
		var rep code.Report
		rep, err = s.Code.Upgrade(module, to, nil, UpgradeTimeout)
		reps = []code.Report{rep}
	}
	if err != nil {
		return "", err
	}
	lines := make([]string, len(reps))
	for i, r := range reps {
		lines[i] = reportText(r)
	}
	return strings.Join(lines, "\n"), nil
}

func reportText(r code.Report) string {
	if r.From == r.To && len(r.Upgraded) == 0 {
		return fmt.Sprintf("%s already runs %s", r.Module, r.To)
	}
	procs := plural(len(r.Upgraded), "process", "processes")
	return fmt.Sprintf("%s %s -> %s: %s moved, longest pause %v", r.Module, r.From, r.To, procs, r.MaxPause.Round(time.Microsecond))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
