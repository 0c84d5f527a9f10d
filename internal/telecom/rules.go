package telecom

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"observer/internal/runtime"
	"observer/internal/runtime/code"
	"observer/internal/runtime/genserver"
	"observer/internal/telecom/money"
)

// Rating rules: billing_engine_server version 2 prices each call by the
// first rule of a rules file whose condition holds, instead of version 1's
// flat tariff. Conditions are expr expressions, type-checked and compiled
// once when the file is loaded, so a broken file is refused before it can
// price a single call and rating a call only runs compiled programs.

//go:embed rating.txt
var defaultRatingRules string

// ratingEnv is what a rule's condition sees of a call.
type ratingEnv struct {
	Destination string  `expr:"destination"`
	Trunk       string  `expr:"trunk"`
	Account     string  `expr:"account"`
	Caller      string  `expr:"caller"`
	Number      string  `expr:"number"`
	DurationS   float64 `expr:"duration_s"`
	Hour        int     `expr:"hour"`
}

func envOf(cdr CDR) ratingEnv {
	return ratingEnv{
		Destination: cdr.Destination, Trunk: cdr.Trunk, Account: cdr.Account, Caller: cdr.Caller, Number: cdr.Callee,
		DurationS: cdr.Duration.Seconds(), Hour: cdr.Start.Hour(),
	}
}

// Rules is a compiled rating-rules file. It is immutable and safe for
// concurrent use.
type Rules struct {
	name       string
	rules      []rule
	def        money.Amount
	hasDefault bool
}

type rule struct {
	line   int
	cond   string
	prog   *vm.Program
	tariff money.Amount
}

// RulesError is one invalid line of a rating-rules file.
type RulesError struct {
	File string // source name, or "" when unknown
	Line int    // 1-based line, or 0 for the file as a whole
	Col  int    // 1-based column of the problem, or 0
	Msg  string
}

// Error formats the error as "file:line:col: message", like a compiler.
func (e *RulesError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ":")
	} else if e.Line > 0 {
		b.WriteString("line ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, "%d:", e.Col)
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// maxRulesErrors bounds the errors reported for one file: a file in the
// wrong format would otherwise produce one per line.
const maxRulesErrors = 10

// ParseRules reads and compiles a rating-rules file (the format is
// described in rating.txt). It reports every invalid line, up to a limit,
// joined, each a *RulesError with its line.
func ParseRules(name string, r io.Reader) (*Rules, error) {
	rs := &Rules{name: name}
	var errs []error
	fail := func(line, col int, format string, args ...any) {
		errs = append(errs, &RulesError{File: name, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
	}
	defaultLine := 0
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		s := sc.Text()
		if t := strings.TrimSpace(s); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		// Conditions may hold '#' (expr's closure argument) and string
		// literals, but a price never holds "=>", so the last one splits.
		i := strings.LastIndex(s, "=>")
		if i < 0 {
			fail(n, 0, "want CONDITION => PRICE")
			continue
		}
		price := s[i+2:]
		if j := strings.IndexByte(price, '#'); j >= 0 {
			price = price[:j]
		}
		price = strings.TrimSpace(price)
		tariff, err := money.ParseSigned(price)
		if err != nil || tariff < 0 {
			fail(n, col(s, i+2+strings.Index(s[i+2:], price)), "bad price %q: want a price per minute such as 0.10 (0.00 is free)", price)
			continue
		}
		cond := strings.TrimSpace(s[:i])
		switch {
		case cond == "":
			fail(n, 0, "no condition before =>")
			continue
		case cond == "default":
			if defaultLine > 0 {
				fail(n, 0, "second default (first on line %d)", defaultLine)
				continue
			}
			defaultLine, rs.def, rs.hasDefault = n, tariff, true
			continue
		}
		prog, err := expr.Compile(cond, expr.Env(ratingEnv{}), expr.AsBool())
		if err != nil {
			at, msg := 0, err.Error()
			var fe *file.Error
			if errors.As(err, &fe) {
				at, msg = col(s, strings.Index(s, cond)+len(firstRunes(cond, fe.Column))), fe.Message
			}
			fail(n, at, "%s", msg)
			continue
		}
		rs.rules = append(rs.rules, rule{line: n, cond: cond, prog: prog, tariff: tariff})
	}
	if err := sc.Err(); err != nil {
		fail(n+1, 0, "reading rules: %v", err)
	}
	if len(errs) == 0 && len(rs.rules) == 0 && !rs.hasDefault {
		// An empty file is refused: an editor that truncates a file before
		// writing it would otherwise reset every price under --watch.
		fail(0, 0, "no rules")
	}
	if len(errs) > 0 {
		if len(errs) > maxRulesErrors {
			errs = append(errs[:maxRulesErrors], &RulesError{File: name, Msg: fmt.Sprintf("%d more errors", len(errs)-maxRulesErrors)})
		}
		return nil, errors.Join(errs...)
	}
	return rs, nil
}

// col turns a byte offset in s into a 1-based column in runes.
func col(s string, off int) int { return utf8.RuneCountInString(s[:max(0, min(off, len(s)))]) + 1 }

// firstRunes returns the first n runes of s.
func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// LoadRulesFile reads and compiles the rating rules in the named file;
// errors carry the file name.
func LoadRulesFile(path string) (*Rules, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseRules(path, f)
}

// defaultRules compiles the embedded rules once; Rules are immutable, so
// every billing process can share them.
var defaultRules = sync.OnceValue(func() *Rules {
	rs, err := ParseRules("rating.txt", strings.NewReader(defaultRatingRules))
	if err != nil {
		panic("telecom: embedded rating.txt is invalid: " + err.Error())
	}
	return rs
})

// DefaultRules returns the rating rules embedded from rating.txt.
func DefaultRules() *Rules { return defaultRules() }

// Name is the file the rules came from.
func (rs *Rules) Name() string { return rs.name }

// Len is the number of rules, not counting the default.
func (rs *Rules) Len() int { return len(rs.rules) }

// Tariff returns the price per minute of the first rule matching the call,
// else the file's default; ok is false when neither applies.
func (rs *Rules) Tariff(cdr CDR) (tariff money.Amount, ok bool) {
	env := envOf(cdr)
	for i := range rs.rules {
		r := &rs.rules[i]
		// Conditions are type-checked against ratingEnv when compiled, so
		// a run-time error takes something like an index out of range;
		// such a rule does not match rather than failing the charge.
		if v, err := expr.Run(r.prog, env); err == nil && v == true {
			return r.tariff, true
		}
	}
	return rs.def, rs.hasDefault
}

// Rate prices a call by the rules, at fallback per minute when no rule and
// no default applies.
func (rs *Rules) Rate(cdr CDR, fallback money.Amount) money.Amount {
	tariff, ok := rs.Tariff(cdr)
	if !ok {
		tariff = fallback
	}
	return priceOf(cdr.Duration, tariff)
}

// priceOf is a call's price at tariff per minute, rounded up to the cent
// and at least one cent; zero only at a zero tariff.
func priceOf(d time.Duration, tariff money.Amount) money.Amount {
	if tariff == 0 {
		return 0
	}
	ms := int64(d / time.Millisecond)
	cents := (ms*int64(tariff) + 59_999) / 60_000
	return money.Amount(max(cents, 1))
}

// billingRating is the rating side of the Billing handle: which rules
// version 2 uses and which ones the running process rates with.
type billingRating struct {
	reg *code.Registry // module versions; nil runs version 1 only
	// rules are what a billing process on version 2 rates with: the
	// embedded default (when nil) until a file is loaded. They outlive
	// the process, as the routing table does the router's.
	rules atomic.Pointer[Rules]
	// active are the rules of the running process, published by its Init
	// and CodeChange; nil means version 1's flat tariff. ChargeCDR reads
	// them on the caller's side, so rating never queues behind the process.
	active atomic.Pointer[Rules]
	free   atomic.Uint64 // calls rated at zero, which have nothing to charge
}

func (br *billingRating) loaded() *Rules {
	if rs := br.rules.Load(); rs != nil {
		return rs
	}
	return DefaultRules()
}

// Rules returns the rating rules version 2 rates with.
func (b *Billing) Rules() *Rules { return b.rating.loaded() }

// RatesByRules reports whether the running billing process rates by the
// rules (version 2) rather than the flat tariff.
func (b *Billing) RatesByRules() bool { return b.rating.active.Load() != nil }

// current is the module and version a new billing process starts on.
func (b *Billing) current() (genserver.Module, string) {
	if b.rating.reg != nil {
		if v := b.rating.reg.Current(BillingName); v.Module != nil {
			return v.Module.(genserver.Module), v.Name
		}
	}
	return &billingServer{b: b}, "1"
}

// billingVersions are the versions of billing_engine_server, oldest first.
func (b *Billing) billingVersions() []code.Version {
	return []code.Version{
		{Name: "1", Module: &billingServer{b: b}, Notes: "flat tariff per minute"},
		{Name: "2", Module: &billingServerV2{billingServer{b: b}}, Notes: "per-destination tariffs from the rating rules"},
	}
}

type rulesReq struct{ rules *Rules }

// SetRules hands compiled rating rules to billing_engine_server. Version 2
// rates with them from its next call on; version 1 keeps them for when it
// is upgraded. active reports which of the two happened.
func (b *Billing) SetRules(c runtime.Caller, rs *Rules, timeout time.Duration) (active bool, err error) {
	v, err := c.Call(runtime.Name(BillingName), rulesReq{rs}, timeout)
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}

// setRules is version 1's answer to SetRules: keep the rules for version 2.
func (s *billingServer) setRules(q rulesReq, state any) genserver.Result {
	s.b.rating.rules.Store(q.rules)
	return genserver.Reply(false, state)
}

// CodeChange is version 1's code_change: it takes version 2's state back
// on a downgrade, and from then on calls are rated at the flat tariff.
func (s *billingServer) CodeChange(oldVersion string, state, extra any) (any, error) {
	switch st := state.(type) {
	case *billingState:
		return st, nil
	case *billingStateV2:
		s.b.rating.active.Store(nil)
		return &st.billingState, nil
	}
	return nil, fmt.Errorf("%s 1: cannot take the state of version %s (%T)", BillingName, oldVersion, state)
}

// billingServerV2 is billing_engine_server version 2: charges as version 1
// does, and rates calls by the rules its state carries.
type billingServerV2 struct{ billingServer }

// billingStateV2 extends version 1's state with the rules in use.
type billingStateV2 struct {
	billingState
	rules *Rules
}

func (s *billingServerV2) Init(p *runtime.Process, _ any) genserver.Result {
	ctx, cancel := context.WithTimeout(p.Context(), 5*time.Second)
	defer cancel()
	recent, err := s.b.ledger.Recent(ctx, 20)
	if err != nil {
		return genserver.Stop(fmt.Errorf("billing: reading the ledger: %w", err), nil)
	}
	rs := s.b.rating.loaded()
	s.b.rating.active.Store(rs)
	return genserver.Ok(&billingStateV2{billingState: billingState{recent: recent}, rules: rs})
}

// CodeChange is version 2's code_change: version 1's state gains the
// loaded rules, which take over pricing once the process runs version 2.
func (s *billingServerV2) CodeChange(oldVersion string, state, extra any) (any, error) {
	switch st := state.(type) {
	case *billingState:
		rs := s.b.rating.loaded()
		s.b.rating.active.Store(rs)
		return &billingStateV2{billingState: *st, rules: rs}, nil
	case *billingStateV2:
		// A downgrade from a newer version that kept this state.
		s.b.rating.active.Store(st.rules)
		return st, nil
	}
	return nil, fmt.Errorf("%s 2: cannot take the state of version %s (%T)", BillingName, oldVersion, state)
}

func (s *billingServerV2) HandleCall(p *runtime.Process, req any, from runtime.From, state any) genserver.Result {
	if q, ok := req.(rulesReq); ok {
		st := state.(*billingStateV2)
		s.b.rating.rules.Store(q.rules)
		s.b.rating.active.Store(q.rules)
		st.rules = q.rules
		return genserver.Reply(true, st)
	}
	// Charging does not depend on the state's shape: version 1's handler
	// passes the state through.
	return s.billingServer.HandleCall(p, req, from, state)
}
