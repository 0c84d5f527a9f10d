package telecom

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"observer/internal/runtime"
	"observer/internal/telecom/money"
)

// Commands lists the console commands with their synopsis, for help.
var Commands = []struct{ Usage, Help string }{
	{"route CALL-ID NUMBER", "route a call through call_router_server"},
	{"charge TXN-ID ACCOUNT AMOUNT", "charge an account through billing_engine_server"},
	{"kill NAME|PID [REASON]", "send an exit signal (default kill)"},
	{"load RATE", "set the load generator's rate in calls/s"},
	{"closed N", "closed-loop load with N calls in flight (0: back to open loop)"},
	{"trunk NAME RATE", "set a trunk's failure rate (0..1)"},
	{"routes FILE", "reload the routing table from a file"},
	{"costs FILE", "reload the trunk costs of least-cost routing (call_router_server 2) from a file"},
	{"rules FILE", "reload the rating rules (billing_engine_server 2) from a file"},
	{"modules", "list the hot-reloadable modules with their versions and processes"},
	{"upgrade MODULE|all VERSION", "move every process of a module (or router and billing) to a version; older downgrades"},
	{"chaos on|off|rate N|kinds K,...|targets P...|inject KIND", "drive the chaos monkey"},
	{"metrics", "print routed, failed and dropped calls"},
	{"help", "list the commands"},
}

// Exec runs one console command (the observer's command palette) and
// returns what to show. Bad input is an error that says what was expected.
func (s *System) Exec(line string) (string, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", fmt.Errorf("empty command; try help")
	}
	args := f[1:]
	want := func(n int, usage string) error {
		if len(args) != n {
			return fmt.Errorf("usage: %s", usage)
		}
		return nil
	}
	switch f[0] {
	case "help", "?":
		var b strings.Builder
		for i, c := range Commands {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(c.Usage)
		}
		return b.String(), nil
	case "route":
		if err := want(2, "route CALL-ID NUMBER"); err != nil {
			return "", err
		}
		res, err := s.Router.RouteViaServer(s.Node, args[0], args[1], CallTimeout)
		if err != nil {
			return "", err
		}
		return res.URI, nil
	case "charge":
		if err := want(3, "charge TXN-ID ACCOUNT AMOUNT"); err != nil {
			return "", err
		}
		amt, err := money.Parse(args[2])
		if err != nil {
			return "", err
		}
		rec, err := s.Billing.Charge(s.Node, args[0], args[1], amt, CallTimeout)
		if err != nil {
			return "", err
		}
		if rec.Replayed {
			return rec.TxnID + " (already charged)", nil
		}
		return rec.TxnID, nil
	case "kill":
		if len(args) < 1 || len(args) > 2 {
			return "", fmt.Errorf("usage: kill NAME|PID [REASON]")
		}
		pid, err := s.Resolve(args[0])
		if err != nil {
			return "", err
		}
		var reason any = runtime.Kill
		if len(args) == 2 {
			reason = runtime.Atom(args[1])
		}
		s.Node.Exit(pid, reason)
		return fmt.Sprintf("exit(%v, %v) sent", pid, reason), nil
	case "load":
		if err := want(1, "load RATE"); err != nil {
			return "", err
		}
		r, err := strconv.ParseFloat(args[0], 64)
		if err != nil {
			return "", fmt.Errorf("load: %q is not a number", args[0])
		}
		if err := s.Load.SetRate(s.Node, r); err != nil {
			return "", err
		}
		return fmt.Sprintf("load %g calls/s", r), nil
	case "closed":
		if err := want(1, "closed N"); err != nil {
			return "", err
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 || n > 1_000_000 {
			return "", fmt.Errorf("closed: want a count 0..1000000, got %q", args[0])
		}
		if err := s.Load.SetClosedLoop(s.Node, n); err != nil {
			return "", err
		}
		return fmt.Sprintf("closed loop with %d calls", n), nil
	case "trunk":
		if err := want(2, "trunk NAME RATE"); err != nil {
			return "", err
		}
		r, err := strconv.ParseFloat(args[1], 64)
		if err != nil {
			return "", fmt.Errorf("trunk: %q is not a number", args[1])
		}
		if err := s.Router.SetFailureRate(s.Node, args[0], r, CallTimeout); err != nil {
			return "", err
		}
		return fmt.Sprintf("trunk %s failure rate %g", args[0], r), nil
	case "routes":
		if err := want(1, "routes FILE"); err != nil {
			return "", err
		}
		return s.ReloadRoutes(args[0])
	case "costs":
		if err := want(1, "costs FILE"); err != nil {
			return "", err
		}
		return s.ReloadCosts(args[0])
	case "rules":
		if err := want(1, "rules FILE"); err != nil {
			return "", err
		}
		return s.ReloadRules(args[0])
	case "modules":
		if err := want(0, "modules"); err != nil {
			return "", err
		}
		return s.modulesText(), nil
	case "upgrade":
		if err := want(2, "upgrade MODULE|all VERSION"); err != nil {
			return "", err
		}
		return s.upgradeText(args[0], args[1])
	case "chaos":
		return s.Chaos.Exec(line)
	case "metrics":
		m := s.Router.Metrics()
		var failed uint64
		var reasons []string
		for r, n := range m.Failed {
			failed += n
			if n > 0 {
				reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
			}
		}
		sort.Strings(reasons)
		out := fmt.Sprintf("routed %d, failed %d", m.Routed, failed)
		if len(reasons) > 0 {
			out += " (" + strings.Join(reasons, " ") + ")"
		}
		return out + fmt.Sprintf(", dropped %d", m.Dropped), nil
	}
	return "", fmt.Errorf("unknown command %q; try help", f[0])
}

// Resolve finds a live process by registered name or by PID text.
func (s *System) Resolve(target string) (runtime.PID, error) {
	if pid, ok := s.Node.Whereis(target); ok {
		return pid, nil
	}
	if strings.HasPrefix(target, "<") || strings.Trim(target, "0123456789.") == "" {
		pid, err := s.Node.ParsePID(target)
		if err != nil {
			return runtime.PID{}, fmt.Errorf("no process %s", target)
		}
		return pid, nil
	}
	return runtime.PID{}, fmt.Errorf("no process named %q", target)
}
