package telecom

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/code"
	"observer/internal/runtime/genserver"
	"observer/internal/telecom/routing"
)

// Least-cost routing: call_router_server version 2 keeps the routing
// table's priorities but, among trunks of equal priority, sends a call to
// the cheapest healthy trunk first and fails over to the next cheapest,
// where version 1 picks at random by weight.
//
// Version 2 does not reimplement routing: it loads into the same
// routing.Router a copy of the configured table in which each priority
// group is split by cost, the cheapest trunks getting the lowest priority
// number. routing.Router then does what it always does (skip trunks whose
// breaker is open, fail over on a failed attempt), so breakers, failure
// rates and metrics are shared by both versions, and the fast path, which
// routes through that routing.Router, follows the running version as soon
// as CodeChange has swapped the table: a single atomic store.

// RouterModule is the module name call_router_server runs under.
const RouterModule = "call_router_server"

//go:embed costs.txt
var defaultCostsText string

// TrunkCosts are the per-minute costs of trunks, by trunk name.
type TrunkCosts map[string]float64

// CostError is one invalid line of a trunk costs file.
type CostError struct {
	File string // source name, or "" when unknown
	Line int    // 1-based line, or 0 for the file as a whole
	Msg  string
}

// Error formats the error as "file:line: message".
func (e *CostError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// ParseCosts reads a trunk costs file (the format is described in
// costs.txt), reporting every invalid line joined, each a *CostError.
func ParseCosts(name string, r io.Reader) (TrunkCosts, error) {
	costs := TrunkCosts{}
	first := map[string]int{}
	var errs []error
	fail := func(line int, format string, args ...any) {
		errs = append(errs, &CostError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		s, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(s)
		switch {
		case len(f) == 0:
			continue
		case len(f) != 2:
			fail(n, "want TRUNK COST, got %d fields", len(f))
			continue
		}
		c, err := strconv.ParseFloat(f[1], 64)
		if err != nil || c < 0 || math.IsInf(c, 0) || math.IsNaN(c) {
			fail(n, "bad cost %q for trunk %q: want a decimal >= 0 such as 0.012", f[1], f[0])
			continue
		}
		if l, dup := first[f[0]]; dup {
			fail(n, "trunk %q priced twice (first on line %d)", f[0], l)
			continue
		}
		first[f[0]] = n
		costs[f[0]] = c
	}
	if err := sc.Err(); err != nil {
		fail(n+1, "reading costs: %v", err)
	}
	if len(errs) == 0 && len(costs) == 0 {
		// Refused for the same reason as an empty rules file: a truncated
		// file seen mid-write must not unprice every trunk.
		fail(0, "no trunk costs")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return costs, nil
}

// LoadCostsFile reads the trunk costs in the named file.
func LoadCostsFile(path string) (TrunkCosts, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseCosts(path, f)
}

var defaultCosts = sync.OnceValue(func() TrunkCosts {
	c, err := ParseCosts("costs.txt", strings.NewReader(defaultCostsText))
	if err != nil {
		panic("telecom: embedded costs.txt is invalid: " + err.Error())
	}
	return c
})

// DefaultTrunkCosts returns a copy of the costs embedded from costs.txt.
func DefaultTrunkCosts() TrunkCosts { return cloneCosts(defaultCosts()) }

func cloneCosts(c TrunkCosts) TrunkCosts {
	out := make(TrunkCosts, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// cost is a trunk's cost; an unpriced trunk costs more than any priced one.
func (c TrunkCosts) cost(trunk string) float64 {
	if v, ok := c[trunk]; ok {
		return v
	}
	return math.Inf(1)
}

// leastCost returns a copy of t whose trunk priorities order each of t's
// priority groups by cost: routing.Router then tries the cheapest trunks
// of the group first and fails over to the next cheapest. Trunks of equal
// priority and equal cost share a priority, so their weights still split
// the calls between them.
func leastCost(t *routing.Table, costs TrunkCosts) (*routing.Table, error) {
	var b strings.Builder
	for _, tr := range t.Trunks() {
		fmt.Fprintf(&b, "trunk %s %s\n", tr.Name, tr.Host)
	}
	for _, d := range t.Destinations() {
		refs := slices.Clone(d.Trunks)
		slices.SortStableFunc(refs, func(a, b routing.TrunkRef) int {
			if a.Priority != b.Priority {
				return a.Priority - b.Priority
			}
			ca, cb := costs.cost(a.Trunk), costs.cost(b.Trunk)
			switch {
			case ca < cb:
				return -1
			case ca > cb:
				return 1
			}
			return 0
		})
		fmt.Fprintf(&b, "destination %s %s", d.Name, d.User)
		rank := 0
		for i, ref := range refs {
			if i > 0 && (ref.Priority != refs[i-1].Priority || costs.cost(ref.Trunk) != costs.cost(refs[i-1].Trunk)) {
				rank++
			}
			fmt.Fprintf(&b, " %s:%d:%d", ref.Trunk, rank, ref.Weight)
		}
		b.WriteByte('\n')
	}
	for _, e := range t.Entries() {
		fmt.Fprintf(&b, "%s -> %s\n", e.Prefix, e.Destination)
	}
	lc, err := routing.Parse(strings.NewReader(b.String()))
	if err != nil {
		// Only a table that routing itself built is rewritten, so this is
		// a bug, not bad input.
		return nil, fmt.Errorf("least-cost table: %w", err)
	}
	return lc, nil
}

// leastCostConfig is the Router handle's part for version 2.
type leastCostConfig struct {
	reg *code.Registry // module versions; nil runs version 1 only

	mu sync.Mutex
	// costs are replaced, never changed in place, so a map read here may
	// be kept without copying it. Nil: the embedded default.
	costs TrunkCosts
	gen   uint64         // counts the costs set, so that ready knows its costs
	ready *preparedTable // the least-cost table built last
}

// preparedTable is a least-cost table built from a configured table under
// one set of costs. Building one takes far longer than loading it (the
// table is written out and parsed again), so it is built before an
// upgrade suspends the router (see PrepareUpgrade) and version 2's
// CodeChange, which runs while calls to the router wait, only loads it.
type preparedTable struct {
	from *routing.Table // the configured table
	gen  uint64         // the costs, as leastCostConfig.gen
	lc   *routing.Table // from, ordered by cost
}

// Costs returns the trunk costs that version 2 routes by.
func (rt *Router) Costs() TrunkCosts {
	rt.lcr.mu.Lock()
	defer rt.lcr.mu.Unlock()
	if rt.lcr.costs == nil {
		return DefaultTrunkCosts()
	}
	return cloneCosts(rt.lcr.costs)
}

// setCosts keeps c, which must not be changed afterwards.
func (rt *Router) setCosts(c TrunkCosts) {
	rt.lcr.mu.Lock()
	rt.lcr.costs = c
	rt.lcr.gen++
	rt.lcr.ready = nil
	rt.lcr.mu.Unlock()
}

// leastCostOf returns table ordered by the current costs, and those
// costs, which the caller must not change. The table is built once for
// each configured table and set of costs, then reused.
func (rt *Router) leastCostOf(table *routing.Table) (*routing.Table, TrunkCosts, error) {
	rt.lcr.mu.Lock()
	costs, gen, ready := rt.lcr.costs, rt.lcr.gen, rt.lcr.ready
	rt.lcr.mu.Unlock()
	if costs == nil {
		costs = defaultCosts()
	}
	if ready != nil && ready.from == table && ready.gen == gen {
		return ready.lc, costs, nil
	}
	lc, err := leastCost(table, costs)
	if err != nil {
		return nil, nil, err
	}
	rt.lcr.mu.Lock()
	if rt.lcr.gen == gen {
		rt.lcr.ready = &preparedTable{from: table, gen: gen, lc: lc}
	}
	rt.lcr.mu.Unlock()
	return lc, costs, nil
}

// current is the module and version a new router process starts on.
func (rt *Router) current() (genserver.Module, string) {
	if rt.lcr.reg != nil {
		if v := rt.lcr.reg.Current(RouterModule); v.Module != nil {
			return v.Module.(genserver.Module), v.Name
		}
	}
	return &routerServer{rt: rt}, "1"
}

// routerVersions are the versions of call_router_server, oldest first.
func (rt *Router) routerVersions() []code.Version {
	return []code.Version{
		{Name: "1", Module: &routerServer{rt: rt}, Notes: "weighted random among trunks of equal priority"},
		{Name: "2", Module: &routerServerV2{rt: rt}, Notes: "least-cost: the cheapest healthy trunk of equal priority"},
	}
}

type costsReq struct{ costs TrunkCosts }

// SetCosts hands trunk costs to the router process: version 2 routes by
// them at once, version 1 keeps them for when it is upgraded.
func (rt *Router) SetCosts(c runtime.Caller, costs TrunkCosts, timeout time.Duration) error {
	v, err := c.Call(Name(RouterName), costsReq{cloneCosts(costs)}, timeout)
	if err != nil {
		return err
	}
	if e, ok := v.(error); ok {
		return e
	}
	return nil
}

// LoadCosts reads a trunk costs file and hands it to the router process;
// a bad file is refused with its line numbers and the running costs stay.
func (rt *Router) LoadCosts(c runtime.Caller, path string, timeout time.Duration) error {
	costs, err := LoadCostsFile(path)
	if err != nil {
		return err
	}
	return rt.SetCosts(c, costs, timeout)
}

// CodeChange is version 1's code_change: on a downgrade it loads the
// configured table again, so calls go back to weighted random.
func (s *routerServer) CodeChange(oldVersion string, state, extra any) (any, error) {
	switch st := state.(type) {
	case *routing.Router:
		return st, nil
	case *routerStateV2:
		if err := st.r.LoadTable(st.table); err != nil {
			return nil, err
		}
		return st.r, nil
	}
	return nil, fmt.Errorf("%s 1: cannot take the state of version %s (%T)", RouterModule, oldVersion, state)
}

// routerServerV2 is call_router_server version 2, least-cost routing.
type routerServerV2 struct{ rt *Router }

// routerStateV2 extends version 1's state (the routing.Router) with what
// the least-cost table is built from.
type routerStateV2 struct {
	r     *routing.Router
	table *routing.Table // as configured; r routes over its least-cost copy
	costs TrunkCosts
}

func (s *routerServerV2) Init(p *runtime.Process, _ any) genserver.Result {
	var table *routing.Table
	var costs TrunkCosts
	r, err := s.rt.startRouting(p, func(t *routing.Table) (*routing.Table, error) {
		lc, c, err := s.rt.leastCostOf(t)
		table, costs = t, c
		return lc, err
	})
	if err != nil {
		return genserver.Stop(err, nil)
	}
	return genserver.Ok(&routerStateV2{r: r, table: table, costs: costs})
}

// PrepareUpgrade builds the least-cost copy of the configured table before
// an upgrade to version 2 suspends the router (code.Preparer), so that
// CodeChange only loads it while calls wait.
func (s *routerServerV2) PrepareUpgrade() error {
	_, _, err := s.rt.leastCostOf(s.rt.Table())
	return err
}

// CodeChange is version 2's code_change: it extends version 1's state and
// swaps in the least-cost table, which PrepareUpgrade has usually built
// already. If that fails, the process stays on version 1 with its table
// untouched.
func (s *routerServerV2) CodeChange(oldVersion string, state, extra any) (any, error) {
	switch st := state.(type) {
	case *routing.Router:
		table := st.Table()
		lc, costs, err := s.rt.leastCostOf(table)
		if err != nil {
			return nil, err
		}
		if err := st.LoadTable(lc); err != nil {
			return nil, err
		}
		return &routerStateV2{r: st, table: table, costs: costs}, nil
	case *routerStateV2:
		// A downgrade from a newer version that kept this state: route by
		// cost over it again.
		lc, err := leastCost(st.table, st.costs)
		if err != nil {
			return nil, err
		}
		if err := st.r.LoadTable(lc); err != nil {
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("%s 2: cannot take the state of version %s (%T)", RouterModule, oldVersion, state)
}

func (s *routerServerV2) HandleCall(p *runtime.Process, req any, _ runtime.From, state any) genserver.Result {
	st := state.(*routerStateV2)
	switch q := req.(type) {
	case routeReq:
		res, err := st.r.Route(q.callID, q.number)
		return genserver.Reply(routeReply{res, err}, st)
	case loadTableReq:
		if err := s.reload(st, q.table, st.costs); err != nil {
			return genserver.Reply(err, st)
		}
		s.rt.mu.Lock()
		s.rt.table = q.table
		s.rt.mu.Unlock()
		return genserver.Reply(nil, st)
	case costsReq:
		if err := s.reload(st, st.table, q.costs); err != nil {
			return genserver.Reply(err, st)
		}
		s.rt.setCosts(q.costs)
		return genserver.Reply(nil, st)
	case failureRateReq:
		if err := st.r.SetFailureRate(q.trunk, q.rate); err != nil {
			return genserver.Reply(err, st)
		}
		s.rt.mu.Lock()
		s.rt.rates[q.trunk] = q.rate
		s.rt.mu.Unlock()
		return genserver.Reply(nil, st)
	}
	return genserver.Reply(fmt.Errorf("%s: unknown request %T", RouterModule, req), st)
}

// reload routes over a new table or new costs; on error nothing changed.
func (s *routerServerV2) reload(st *routerStateV2, table *routing.Table, costs TrunkCosts) error {
	lc, err := leastCost(table, costs)
	if err != nil {
		return err
	}
	if err := st.r.LoadTable(lc); err != nil {
		return err
	}
	st.table, st.costs = table, costs
	return nil
}

func (s *routerServerV2) HandleCast(p *runtime.Process, msg any, state any) genserver.Result {
	return genserver.NoReply(state)
}

func (s *routerServerV2) HandleInfo(p *runtime.Process, msg any, state any) genserver.Result {
	if _, ok := msg.(tickMsg); ok {
		state.(*routerStateV2).r.Tick()
		scheduleTick(p)
	}
	return genserver.NoReply(state)
}
