package routing

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Errors reported by Parse, each wrapped in a *ParseError naming the line.
var (
	// ErrSyntax reports a malformed line: unknown keyword, wrong number of
	// fields, bad name, user or host, or a line that is too long.
	ErrSyntax = errors.New("syntax error")
	// ErrDuplicate reports a second trunk, destination or prefix of the
	// same name, or a trunk listed twice in one destination.
	ErrDuplicate = errors.New("duplicate")
	// ErrBadPrefix reports a route prefix that is not a valid number.
	ErrBadPrefix = errors.New("bad prefix")
	// ErrUnknownDestination reports a route to an undeclared destination.
	ErrUnknownDestination = errors.New("unknown destination")
	// ErrUnknownTrunk reports a reference to an undeclared trunk.
	ErrUnknownTrunk = errors.New("unknown trunk")
	// ErrBadPriority reports a priority that is not an integer in 0-MaxPriority.
	ErrBadPriority = errors.New("bad priority")
	// ErrBadWeight reports a weight that is not an integer in 1-MaxWeight.
	ErrBadWeight = errors.New("bad weight")
	// ErrNoTrunks reports a destination without trunks.
	ErrNoTrunks = errors.New("no trunks")
	// ErrNoRoutes reports a table without routes, which would reject every
	// call; refusing it protects the running table from a truncated file.
	ErrNoRoutes = errors.New("table has no routes")
)

// Limits enforced by Parse.
const (
	// MaxPriority is the largest trunk priority.
	MaxPriority = 65535
	// MaxWeight is the largest trunk weight.
	MaxWeight = 65535
	// MaxTrunksPerDest is the most trunks a destination may have; the
	// trunks tried for one call are tracked in a 64-bit set.
	MaxTrunksPerDest = 64

	maxNameLen           = 64
	maxLineLen           = 4096
	maxReportedParseErrs = 10
)

// ParseError reports one invalid line of a routing table.
type ParseError struct {
	File string // source name, or "" when unknown
	Line int    // 1-based line number, or 0 for errors about the whole table
	Err  error  // wraps one of the Err* sentinels above
}

// Error formats the error as "file:line: message", like a compiler.
func (e *ParseError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	} else if e.Line > 0 {
		b.WriteString("line ")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

// Entry is one route: numbers starting with Prefix go to Destination.
type Entry struct {
	Prefix      string // normalized
	Destination string
}

// Destination is a named call target reached through one or more trunks.
type Destination struct {
	Name   string
	User   string     // user part of the SIP URI: sip:User@trunk-host
	Trunks []TrunkRef // in table order
}

// TrunkRef is one trunk of a destination with its selection parameters.
type TrunkRef struct {
	Trunk    string
	Priority int // lower is tried first
	Weight   int // share of calls among trunks of equal priority
}

// TrunkSpec is a trunk declared by a table.
type TrunkSpec struct {
	Name string
	Host string // SIP host, optionally with :port
}

// Table is a validated routing table. It is immutable and safe for
// concurrent use; replacing routes means building a new Table.
type Table struct {
	entries   []Entry // in table order
	entryDest []int32 // index into dests for each entry
	dests     []Destination
	trunks    []TrunkSpec
	nodes     []trieNode // longest-prefix-match trie; nodes[0] is the root
}

// trieNode is one node of a trie over the alphabet 0-9 and '+'. Children
// are indexes into Table.nodes (0 means none, since the root is never a
// child) so the whole trie is one contiguous slice without pointers for
// the garbage collector to scan.
type trieNode struct {
	next  [11]int32
	entry int32 // 1 + index into entries, or 0 if no route ends here
}

// Entries returns the routes in table order.
func (t *Table) Entries() []Entry { return slices.Clone(t.entries) }

// Destinations returns the destinations in table order.
func (t *Table) Destinations() []Destination {
	ds := slices.Clone(t.dests)
	for i := range ds {
		ds[i].Trunks = slices.Clone(ds[i].Trunks)
	}
	return ds
}

// Trunks returns the declared trunks in table order.
func (t *Table) Trunks() []TrunkSpec { return slices.Clone(t.trunks) }

// Lookup normalizes number and returns the route with the longest prefix
// matching it. It returns a *NumberError for a malformed number and
// ErrNoRoute when no prefix matches.
func (t *Table) Lookup(number string) (Entry, error) {
	var buf [maxNormalized]byte
	n, err := normalize(&buf, number)
	if err != nil {
		return Entry{}, err
	}
	i := t.match(buf[:n])
	if i < 0 {
		return Entry{}, ErrNoRoute
	}
	return t.entries[i], nil
}

// match returns the index of the entry with the longest prefix of the
// normalized number num, or -1.
func (t *Table) match(num []byte) int {
	nodes := t.nodes
	best, n := -1, int32(0)
	for _, c := range num {
		d := int(c - '0')
		if c == '+' {
			d = 10
		}
		n = nodes[n].next[d]
		if n == 0 {
			break
		}
		if e := nodes[n].entry; e != 0 {
			best = int(e - 1)
		}
	}
	return best
}

//go:embed routes.txt
var defaultRoutes string

// defaultTable parses the embedded table once; Tables are immutable, so
// every caller can share it.
var defaultTable = sync.OnceValue(func() *Table {
	t, err := parse("routes.txt", strings.NewReader(defaultRoutes))
	if err != nil {
		panic("routing: embedded routes.txt is invalid: " + err.Error())
	}
	return t
})

// DefaultTable returns the table embedded from routes.txt.
func DefaultTable() *Table { return defaultTable() }

// Parse reads a routing table in the format described in the package
// documentation. It checks every line and returns all problems found (up
// to a limit) joined, each a *ParseError carrying its line number.
func Parse(r io.Reader) (*Table, error) { return parse("", r) }

// ParseFile reads the routing table in the named file; errors carry the
// file name.
func ParseFile(name string) (*Table, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parse(name, f)
}

type parser struct {
	file string
	errs []*ParseError

	entries    []Entry
	entryLine  []int
	prefixLine map[string]int

	dests     []Destination
	destLine  []int
	destIndex map[string]int

	trunks    []TrunkSpec
	trunkLine map[string]int
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &ParseError{File: p.file, Line: line, Err: fmt.Errorf(format, args...)})
}

func parse(file string, r io.Reader) (*Table, error) {
	p := &parser{
		file:       file,
		prefixLine: make(map[string]int),
		destIndex:  make(map[string]int),
		trunkLine:  make(map[string]int),
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLineLen)
	line := 0
	for sc.Scan() {
		line++
		p.line(line, sc.Text())
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			p.errorf(line+1, "%w: line longer than %d bytes", ErrSyntax, maxLineLen)
		} else {
			p.errorf(0, "reading table: %w", err)
		}
	}
	p.resolve()
	if len(p.errs) == 0 && len(p.entries) == 0 {
		p.errorf(0, "%w", ErrNoRoutes)
	}
	if len(p.errs) > 0 {
		return nil, p.joinErrors()
	}
	return p.build(), nil
}

// joinErrors orders problems by line, as a reader fixes them top down, and
// keeps the first few: a file fed in the wrong format would otherwise
// produce one error per line.
func (p *parser) joinErrors() error {
	slices.SortStableFunc(p.errs, func(a, b *ParseError) int { return a.Line - b.Line })
	n := min(len(p.errs), maxReportedParseErrs)
	errs := make([]error, 0, n+1)
	for _, e := range p.errs[:n] {
		errs = append(errs, e)
	}
	if len(p.errs) > n {
		errs = append(errs, &ParseError{File: p.file, Err: fmt.Errorf("%d more errors", len(p.errs)-n)})
	}
	return errors.Join(errs...)
}

func (p *parser) line(n int, s string) {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	// Names, users and hosts cannot contain '>', so "->" marks a route
	// unambiguously, whatever the prefix looks like.
	if lhs, rhs, ok := strings.Cut(s, "->"); ok {
		p.route(n, strings.TrimSpace(lhs), strings.TrimSpace(rhs))
		return
	}
	f := strings.Fields(s)
	switch f[0] {
	case "trunk":
		p.trunk(n, f)
	case "destination":
		p.destination(n, f)
	default:
		p.errorf(n, "%w: unknown keyword %q (want trunk, destination or PREFIX -> DESTINATION)", ErrSyntax, f[0])
	}
}

// route handles "PREFIX -> DESTINATION".
func (p *parser) route(n int, lhs, rhs string) {
	var buf [maxNormalized]byte
	k, err := normalize(&buf, lhs)
	if err != nil {
		p.errorf(n, "%w %q: %s", ErrBadPrefix, lhs, err.(*NumberError).reason())
		return
	}
	if !validName(rhs) {
		p.errorf(n, "%w: bad destination name %q in route", ErrSyntax, rhs)
		return
	}
	prefix := string(buf[:k])
	if first, dup := p.prefixLine[prefix]; dup {
		p.errorf(n, "%w prefix %q (first on line %d)", ErrDuplicate, prefix, first)
		return
	}
	p.prefixLine[prefix] = n
	p.entries = append(p.entries, Entry{Prefix: prefix, Destination: rhs})
	p.entryLine = append(p.entryLine, n)
}

// trunk handles "trunk NAME HOST".
func (p *parser) trunk(n int, f []string) {
	if len(f) != 3 {
		p.errorf(n, "%w: want \"trunk NAME HOST\", got %d fields", ErrSyntax, len(f))
		return
	}
	name, host := f[1], f[2]
	if !validName(name) {
		p.errorf(n, "%w: bad trunk name %q", ErrSyntax, name)
		return
	}
	if !validHost(host) {
		p.errorf(n, "%w: bad host %q for trunk %q", ErrSyntax, host, name)
		return
	}
	if first, dup := p.trunkLine[name]; dup {
		p.errorf(n, "%w trunk %q (first on line %d)", ErrDuplicate, name, first)
		return
	}
	p.trunkLine[name] = n
	p.trunks = append(p.trunks, TrunkSpec{Name: name, Host: host})
}

// destination handles "destination NAME USER TRUNK:PRIORITY:WEIGHT...".
func (p *parser) destination(n int, f []string) {
	if len(f) < 3 {
		p.errorf(n, "%w: want \"destination NAME USER TRUNK:PRIORITY:WEIGHT...\", got %d fields", ErrSyntax, len(f))
		return
	}
	name, user := f[1], f[2]
	if !validName(name) {
		p.errorf(n, "%w: bad destination name %q", ErrSyntax, name)
		return
	}
	if !validUser(user) {
		p.errorf(n, "%w: bad SIP user %q for destination %q", ErrSyntax, user, name)
		return
	}
	if i, dup := p.destIndex[name]; dup {
		p.errorf(n, "%w destination %q (first on line %d)", ErrDuplicate, name, p.destLine[i])
		return
	}
	refs := f[3:]
	if len(refs) == 0 {
		p.errorf(n, "destination %q: %w", name, ErrNoTrunks)
		return
	}
	if len(refs) > MaxTrunksPerDest {
		p.errorf(n, "%w: destination %q has %d trunks (max %d)", ErrSyntax, name, len(refs), MaxTrunksPerDest)
		return
	}
	d := Destination{Name: name, User: user, Trunks: make([]TrunkRef, 0, len(refs))}
	ok := true
	for _, ref := range refs {
		tr, good := p.trunkRef(n, name, ref)
		if !good {
			ok = false
			continue
		}
		if slices.ContainsFunc(d.Trunks, func(x TrunkRef) bool { return x.Trunk == tr.Trunk }) {
			p.errorf(n, "%w trunk %q in destination %q", ErrDuplicate, tr.Trunk, name)
			ok = false
			continue
		}
		d.Trunks = append(d.Trunks, tr)
	}
	// Register the name even when a trunk reference is bad, so routes to
	// it report the real problem rather than an unknown destination.
	p.destIndex[name] = len(p.dests)
	p.destLine = append(p.destLine, n)
	if !ok {
		d.Trunks = nil
	}
	p.dests = append(p.dests, d)
}

// trunkRef parses TRUNK:PRIORITY:WEIGHT.
func (p *parser) trunkRef(n int, dest, s string) (TrunkRef, bool) {
	name, rest, ok1 := strings.Cut(s, ":")
	prio, weight, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || !validName(name) {
		p.errorf(n, "%w: trunk reference %q in destination %q, want TRUNK:PRIORITY:WEIGHT", ErrSyntax, s, dest)
		return TrunkRef{}, false
	}
	ok := true
	pr, err := strconv.Atoi(prio)
	if err != nil || pr < 0 || pr > MaxPriority {
		p.errorf(n, "%w %q for trunk %q (want 0-%d)", ErrBadPriority, prio, name, MaxPriority)
		ok = false
	}
	w, err := strconv.Atoi(weight)
	if err != nil || w < 1 || w > MaxWeight {
		p.errorf(n, "%w %q for trunk %q (want 1-%d)", ErrBadWeight, weight, name, MaxWeight)
		ok = false
	}
	return TrunkRef{Trunk: name, Priority: pr, Weight: w}, ok
}

// resolve checks references once every line has been read, so a table
// may use names before declaring them.
func (p *parser) resolve() {
	for i, d := range p.dests {
		for _, tr := range d.Trunks {
			if _, ok := p.trunkLine[tr.Trunk]; !ok {
				p.errorf(p.destLine[i], "%w %q in destination %q", ErrUnknownTrunk, tr.Trunk, d.Name)
			}
		}
	}
	for i, e := range p.entries {
		if _, ok := p.destIndex[e.Destination]; !ok {
			p.errorf(p.entryLine[i], "%w %q", ErrUnknownDestination, e.Destination)
		}
	}
}

// build assembles the Table from a parse that reported no errors.
func (p *parser) build() *Table {
	t := &Table{
		entries:   p.entries,
		entryDest: make([]int32, len(p.entries)),
		dests:     p.dests,
		trunks:    p.trunks,
		nodes:     make([]trieNode, 1, 1+len(p.entries)*4),
	}
	for i, e := range p.entries {
		t.entryDest[i] = int32(p.destIndex[e.Destination])
		n := int32(0)
		for _, c := range []byte(e.Prefix) {
			d := int(c - '0')
			if c == '+' {
				d = 10
			}
			if t.nodes[n].next[d] == 0 {
				t.nodes = append(t.nodes, trieNode{})
				t.nodes[n].next[d] = int32(len(t.nodes) - 1)
			}
			n = t.nodes[n].next[d]
		}
		t.nodes[n].entry = int32(i + 1)
	}
	return t
}

// validName accepts letters, digits, '-', '_' and '.', starting with a
// letter or digit.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// validUser accepts a conservative subset of the SIP user part: letters,
// digits, '-', '_', '.' and '+', which needs no escaping in a URI.
func validUser(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' && c != '+' {
			return false
		}
	}
	return true
}

// validHost accepts a DNS name or IPv4 address with an optional :port.
func validHost(s string) bool {
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return false
		}
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
