package chaos

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Commands lists the monkey's console commands with their synopsis, for
// help. Each may be written with or without the leading "chaos".
var Commands = []struct{ Usage, Help string }{
	{"chaos [status]", "show whether the monkey runs, its settings and what it injected"},
	{"chaos on|off|toggle", "switch the monkey on or off (off heals a partition at once)"},
	{"chaos rate N", "set the rate in faults/s (0 keeps it idle)"},
	{"chaos kinds KIND[,KIND...]|all", "set the faults: " + kindList(allKinds)},
	{"chaos targets [PREFIX...]", "limit the faults to processes whose name or module starts so (none: any worker)"},
	{"chaos inject KIND", "inject one fault now"},
}

// Exec runs one console command (see Commands) and returns what to show,
// for the observer's command palette. Bad input is an error that says
// what was expected.
func (m *Monkey) Exec(line string) (string, error) {
	f := strings.Fields(line)
	if len(f) > 0 && f[0] == "chaos" {
		f = f[1:]
	}
	if len(f) == 0 {
		return m.Status(), nil
	}
	args := f[1:]
	set := m.Settings()
	switch f[0] {
	case "status":
		return m.Status(), nil
	case "help", "?":
		var b strings.Builder
		for i, c := range Commands {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(c.Usage)
		}
		return b.String(), nil
	case "on", "off":
		m.SetRunning(f[0] == "on")
		return m.Status(), nil
	case "toggle":
		return m.Toggle()
	case "rate":
		if len(args) != 1 {
			return "", fmt.Errorf("usage: chaos rate N")
		}
		r, err := strconv.ParseFloat(args[0], 64)
		if err != nil {
			return "", fmt.Errorf("chaos rate: %q is not a number", args[0])
		}
		set.Rate = r
	case "kinds":
		kinds, err := ParseKinds(strings.Join(args, ","))
		if err != nil {
			return "", fmt.Errorf("chaos kinds: %w", err)
		}
		set.Kinds = kinds
	case "targets":
		var targets []string
		for _, a := range args {
			targets = append(targets, strings.FieldsFunc(a, func(r rune) bool { return r == ',' })...)
		}
		set.Targets = targets
	case "inject":
		if len(args) != 1 {
			return "", fmt.Errorf("usage: chaos inject KIND")
		}
		f, err := m.Inject(Kind(args[0]))
		if err != nil {
			return "", err
		}
		return "injected " + f.String(), nil
	default:
		return "", fmt.Errorf("unknown chaos command %q; try chaos help", f[0])
	}
	if err := m.SetSettings(set); err != nil {
		return "", err
	}
	return "chaos settings: " + set.String(), nil
}

// Status is one line on the monkey: on or off, its settings and its counts.
func (m *Monkey) Status() string {
	st := m.Stats()
	var b strings.Builder
	if st.Running {
		b.WriteString("chaos on: ")
	} else {
		b.WriteString("chaos off: ")
	}
	b.WriteString(st.Settings.String())
	fmt.Fprintf(&b, "; injected %d", st.Total())
	if st.Total() > 0 {
		kinds := make([]string, 0, len(st.Injected))
		for k, n := range st.Injected {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(kinds)
		b.WriteString(" (" + strings.Join(kinds, ", ") + ")")
	}
	if st.Skipped > 0 {
		fmt.Fprintf(&b, ", skipped %d", st.Skipped)
	}
	if st.Partitioned {
		b.WriteString("; the ledger is partitioned")
	}
	if st.Last.Kind != "" {
		b.WriteString("; last: " + st.Last.String())
	}
	return b.String()
}
