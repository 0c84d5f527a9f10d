package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/sys"
)

// env is what a probe reads besides the Source: the node, its event
// subscription, the clock and the host. *liveEnv is the real one; tests
// substitute a fixed one so that frames are reproducible.
type env interface {
	now() time.Time
	// sleep lets time pass between the frames RenderFrame builds.
	sleep(d time.Duration)
	stats() runtime.NodeStats
	top(k int, key runtime.SortKey) []runtime.ProcessInfo
	scan(buf []runtime.ProcessInfo) []runtime.ProcessInfo
	detail(pid runtime.PID, head int) runtime.ProcessDetail
	info(pid runtime.PID) runtime.ProcessInfo
	alive(pid runtime.PID) bool
	// events appends the events waiting on the subscription to buf.
	events(buf []runtime.Event, limit int) ([]runtime.Event, uint64)
	getState(pid runtime.PID, timeout time.Duration) (any, error)
	statistics(pid runtime.PID) (runtime.Statistics, bool)
	system() sysSample
	close()
}

// envSource is implemented by test Sources that bring their own env.
type envSource interface {
	testEnv() env
}

// liveEnv reads a real node.
type liveEnv struct {
	node    *runtime.Node
	sub     *runtime.Subscription
	sampler *sampler
}

// eventBuffer is the subscription's channel size: enough for bursts between
// two snapshots without holding the runtime back.
const eventBuffer = 8192

func newLiveEnv(n *runtime.Node) *liveEnv {
	return &liveEnv{node: n, sub: n.Subscribe(eventBuffer), sampler: newSampler()}
}

func (e *liveEnv) now() time.Time           { return time.Now() }
func (e *liveEnv) sleep(d time.Duration)    { time.Sleep(d) }
func (e *liveEnv) stats() runtime.NodeStats { return e.node.Stats() }
func (e *liveEnv) top(k int, key runtime.SortKey) []runtime.ProcessInfo {
	return e.node.Top(k, key)
}
func (e *liveEnv) scan(buf []runtime.ProcessInfo) []runtime.ProcessInfo { return e.node.Snapshot(buf) }
func (e *liveEnv) detail(pid runtime.PID, head int) runtime.ProcessDetail {
	return pid.Detail(head)
}
func (e *liveEnv) info(pid runtime.PID) runtime.ProcessInfo { return pid.Info() }
func (e *liveEnv) alive(pid runtime.PID) bool               { return pid.Alive() }
func (e *liveEnv) events(buf []runtime.Event, limit int) ([]runtime.Event, uint64) {
	for len(buf) < limit {
		select {
		case ev := <-e.sub.C:
			buf = append(buf, ev)
		default:
			return buf, e.sub.Lost()
		}
	}
	return buf, e.sub.Lost()
}
func (e *liveEnv) getState(pid runtime.PID, timeout time.Duration) (any, error) {
	return sys.FormatState(e.node, pid, timeout)
}
func (e *liveEnv) statistics(pid runtime.PID) (runtime.Statistics, bool) {
	return e.node.StatisticsOf(pid)
}
func (e *liveEnv) system() sysSample { return e.sampler.read(time.Now()) }
func (e *liveEnv) close()            { e.sub.Close() }

// sortKey orders the process table.
type sortKey uint8

const (
	sortMailbox sortKey = iota
	sortRate
	sortHandler
	sortRestarts
	sortName
	sortAge
	numSorts
)

var sortNames = [numSorts]string{"mailbox", "msg/s", "handler time", "restarts", "name", "age"}

// String names the order in the table's title.
func (k sortKey) String() string { return sortNames[k] }

// defaultAsc is each key's natural direction: names A to Z, the rest
// largest first.
func (k sortKey) defaultAsc() bool { return k == sortName }

// topKey is the runtime's ranking for k, when the runtime can rank by it
// without a full snapshot (largest first only).
func (k sortKey) topKey() (runtime.SortKey, bool) {
	switch k {
	case sortMailbox:
		return runtime.ByMailbox, true
	case sortHandler:
		return runtime.ByHandlerTime, true
	case sortAge:
		return runtime.ByAge, true
	}
	return 0, false
}

// query is what one snapshot should fetch. It is copied into the command,
// so the UI may change its own state while the snapshot runs.
type query struct {
	seq uint64
	gen uint64 // bumped whenever the process query below changes meaning

	eventsOnly bool // paused: only keep the event stream drained

	procs  bool // fetch a page of the process table
	sort   sortKey
	asc    bool
	filter string // lower-case
	offset int    // rank of the first visible row
	rows   int    // visible rows
	sel    runtime.PID
	selRow int // the selection's row on screen, kept when it moves

	detail runtime.PID // fetch this process's detail
}

// frame is the immutable result of a snapshot, handed to Update.
type frame struct {
	seq, gen uint64
	partial  bool // only events: the display is paused
	at       time.Time
	took     time.Duration
	stats    runtime.NodeStats

	tree    []SupervisorView
	layout  treeLayout
	flashes []flashKey

	procs  procPage
	detail *detailData

	events []evRow
	lost   uint64
}

// procRow is one row of the process table.
type procRow struct {
	pid      runtime.PID
	name     string
	module   string
	status   runtime.Status
	mq       int
	in, out  uint64
	rate     float64 // messages in per second; < 0 until measured
	handler  time.Duration
	restarts int
	started  time.Time
	tracing  bool
}

// procPage is the visible part of the process table.
type procPage struct {
	valid   bool
	sel     runtime.PID // the selection the page was asked around
	rows    []procRow
	offset  int // rank of the first visible row
	first   int // rank of rows[0]; rows extend a page either side of the view
	total   int // processes matching the filter
	selRank int // rank of the selected process, -1 if it is not in view
	scanned bool
}

// detailData is one process as the detail pane shows it, formatted off the UI loop.
type detailData struct {
	pid        runtime.PID
	info       runtime.ProcessInfo
	alive      bool
	exitReason string
	rate       float64
	restarts   int
	lastExit   string
	mailbox    []string
	related    []relatedPID
	stats      string // sys statistics, "" when switched off
}

// relatedPID is a link, monitor or parent the detail pane can jump to.
type relatedPID struct {
	kind  string
	pid   runtime.PID
	label string
}

// evRow is one kept event, formatted once when it arrives.
type evRow struct {
	seq     uint64
	at      time.Time
	kind    runtime.EventKind
	pid     runtime.PID
	other   runtime.PID
	title   string // kind-specific label: "crash", "restart", "code"
	summary string // one line
	detail  string // full text: reason, stack, report
	crash   bool
	lower   string // summary in lower case, for the filter
}

// flashKey names a tree row that just restarted.
type flashKey struct {
	sup runtime.PID
	id  string // child ID, or "" for the supervisor row
	pid runtime.PID
}

// probe gathers frames. Its state (buffers, previous counters) is touched
// only by the one snapshot command in flight, so it needs no lock: each
// command is started by Update after the previous one's message arrived.
type probe struct {
	src Source
	env env

	buf   []runtime.ProcessInfo
	keys  []float64
	idx   []int32
	evbuf []runtime.Event

	marks map[uint64]msgMark // message counts by process, for rates
	epoch uint32

	sups map[runtime.PID]supMark // per supervisor, to spot restarts cheaply

	prevTop []runtime.PID // the latest Top ranking shown, for stable ties
	prevKey runtime.SortKey
}

// msgMark is a process's message count at the start of its rate window,
// and the rate of the last whole window.
type msgMark struct {
	in   uint64
	at   time.Time
	rate float64 // < 0 until a window has closed
	seen uint32
}

// supMark remembers a supervisor's restart window and its children's
// restart counts, so that only supervisors whose window changed are diffed.
type supMark struct {
	n           int
	first, last time.Time
	children    map[string]int
}

func newProbe(src Source) *probe {
	var e env
	if es, ok := src.(envSource); ok {
		e = es.testEnv()
	} else {
		e = newLiveEnv(src.Node())
	}
	return &probe{src: src, env: e, marks: make(map[uint64]msgMark), sups: make(map[runtime.PID]supMark)}
}

// rateWindow is the shortest interval a message rate is measured over;
// shorter ones jitter between 0 and bursts.
const rateWindow = time.Second

// maxEventsPerFrame bounds one drain so a storm cannot stall a frame.
const maxEventsPerFrame = 4096

// snapshot takes one frame. It runs in a command.
func (p *probe) snapshot(q query) frame {
	start := p.env.now()
	f := frame{seq: q.seq, gen: q.gen, at: start}
	f.stats = p.env.stats()
	var evs []runtime.Event
	evs, f.lost = p.env.events(p.evbuf[:0], maxEventsPerFrame)
	f.events = formatEvents(evs)
	clear(evs)
	p.evbuf = evs[:0]
	if q.eventsOnly {
		f.partial = true
		f.took = p.env.now().Sub(start)
		return f
	}
	f.tree = p.src.Tree()
	f.layout = layoutTree(f.tree)
	restarts := restartCounts(f.tree)
	f.flashes = p.diffTree(f.tree)
	p.epoch++
	if q.procs {
		if k, ok := q.sort.topKey(); ok && q.filter == "" && q.asc == q.sort.defaultAsc() {
			f.procs = p.topPage(q, k, f.stats.Processes, restarts, start)
		} else {
			f.procs = p.scanPage(q, restarts, start)
		}
	}
	if !q.detail.IsZero() {
		f.detail = p.detailOf(q.detail, f.tree, restarts, start)
	}
	p.pruneMarks(f.stats.Processes)
	f.took = p.env.now().Sub(start)
	return f
}

// treeLayout says how the supervisors nest: a supervisor is drawn under
// the supervisor that has it as a child.
type treeLayout struct {
	roots []int            // supervisors that are nobody's child, in Tree order
	kids  map[int][]kidRef // supervisor index -> its children that are supervisors
}

// kidRef ties a child (by index) to the supervisor it is.
type kidRef struct{ child, sup int }

func layoutTree(tree []SupervisorView) treeLayout {
	l := treeLayout{kids: make(map[int][]kidRef)}
	index := make(map[runtime.PID]int, len(tree))
	for i := range tree {
		index[tree[i].PID] = i
	}
	nested := make([]bool, len(tree))
	for i := range tree {
		for j := range tree[i].Children {
			c := &tree[i].Children[j]
			if c.PID.IsZero() {
				continue
			}
			if k, ok := index[c.PID]; ok && k != i {
				l.kids[i] = append(l.kids[i], kidRef{child: j, sup: k})
				nested[k] = true
			}
		}
	}
	for i := range tree {
		if !nested[i] {
			l.roots = append(l.roots, i)
		}
	}
	return l
}

// restartCounts maps each child that has been restarted to its count.
func restartCounts(tree []SupervisorView) map[runtime.PID]int {
	m := make(map[runtime.PID]int)
	for i := range tree {
		for j := range tree[i].Children {
			c := &tree[i].Children[j]
			if c.Restarts > 0 && !c.PID.IsZero() {
				m[c.PID] = c.Restarts
			}
		}
	}
	return m
}

// diffTree reports the rows whose restart count rose since the previous
// frame. Supervisors whose restart window is unchanged are skipped, so a
// large quiet tree costs one comparison per supervisor.
func (p *probe) diffTree(tree []SupervisorView) []flashKey {
	var out []flashKey
	seen := make(map[runtime.PID]bool, len(tree))
	for i := range tree {
		s := &tree[i]
		seen[s.PID] = true
		mark := supMark{n: len(s.Restarts)}
		if mark.n > 0 {
			mark.first, mark.last = s.Restarts[0], s.Restarts[mark.n-1]
		}
		old, known := p.sups[s.PID]
		if known && old.n == mark.n && old.first.Equal(mark.first) && old.last.Equal(mark.last) && old.children != nil {
			continue
		}
		mark.children = make(map[string]int, len(s.Children))
		for j := range s.Children {
			c := &s.Children[j]
			key := childKey(c)
			mark.children[key] = c.Restarts
			if known && c.Restarts > old.children[key] {
				out = append(out, flashKey{sup: s.PID, id: c.ID, pid: c.PID})
			}
		}
		if known && mark.n > old.n {
			out = append(out, flashKey{sup: s.PID})
		}
		p.sups[s.PID] = mark
	}
	for pid := range p.sups {
		if !seen[pid] {
			delete(p.sups, pid)
		}
	}
	return out
}

// childKey identifies a child across frames: its ID, or for the nameless
// children of a simple_one_for_one supervisor, its process.
func childKey(c *ChildView) string {
	if c.ID != "" {
		return c.ID
	}
	return "pid:" + strconv.FormatUint(c.PID.ID(), 10)
}

// rateOf returns a process's message rate over the last whole window of
// rateWindow, so the figure changes once a second instead of jittering
// with every refresh; before the first window closes it is measured over
// what there is, and unknown (< 0) for the first quarter window.
func (p *probe) rateOf(id, in uint64, now time.Time) float64 {
	m, ok := p.marks[id]
	if !ok || in < m.in {
		p.marks[id] = msgMark{in: in, at: now, rate: -1, seen: p.epoch}
		return -1
	}
	m.seen = p.epoch
	dt := now.Sub(m.at)
	switch {
	case dt >= rateWindow:
		m.rate = float64(in-m.in) / dt.Seconds()
		m.in, m.at = in, now
	case m.rate < 0 && dt >= rateWindow/4:
		p.marks[id] = m
		return float64(in-m.in) / dt.Seconds()
	}
	p.marks[id] = m
	return m.rate
}

// pruneMarks forgets processes not measured for a while, once the map has
// outgrown the node.
func (p *probe) pruneMarks(live int) {
	if len(p.marks) <= 2*live+1024 {
		return
	}
	for id, m := range p.marks {
		if p.epoch-m.seen > 16 {
			delete(p.marks, id)
		}
	}
}

// topPage ranks with the runtime's Top, which keeps a small heap instead of
// copying every process: the table costs O(n log k) with k the rows shown.
func (p *probe) topPage(q query, key runtime.SortKey, live int, restarts map[runtime.PID]int, now time.Time) procPage {
	rows := max(q.rows, 1)
	k := q.offset + 3*rows
	infos := p.stable(p.env.top(k, key), key, k)
	total := live
	if len(infos) < k {
		total = len(infos)
	}
	sel := indexOf(infos, q.sel)
	if sel < 0 && !q.sel.IsZero() && len(infos) == k && p.env.alive(q.sel) {
		// The selection fell out of the window: look further once.
		k = min(max(live, k), 8*k)
		infos = p.stable(p.env.top(k, key), key, k)
		sel = indexOf(infos, q.sel)
		if len(infos) < k {
			total = len(infos)
		}
	}
	offset := q.offset
	if sel >= 0 {
		offset = sel - q.selRow
	}
	offset = clamp(offset, 0, max(total-rows, 0))
	if offset+2*rows > len(infos) && len(infos) < total {
		infos = p.stable(p.env.top(offset+2*rows, key), key, offset+2*rows)
		sel = indexOf(infos, q.sel)
	}
	first := max(offset-rows, 0)
	page := procPage{valid: true, sel: q.sel, offset: offset, first: first, total: total, selRank: sel}
	end := min(len(infos), offset+2*rows)
	if first < end {
		page.rows = make([]procRow, 0, end-first)
		for i := first; i < end; i++ {
			page.rows = append(page.rows, p.row(&infos[i], restarts, now))
		}
	}
	return page
}

// topValue reads the value a Top ranks by; larger ranks first.
func topValue(it *runtime.ProcessInfo, key runtime.SortKey) int64 {
	switch key {
	case runtime.ByHandlerTime:
		return int64(it.HandlerTime)
	case runtime.ByAge:
		return -it.Started.UnixNano()
	case runtime.ByMessagesIn:
		return int64(it.MessagesIn)
	case runtime.ByMessagesOut:
		return int64(it.MessagesOut)
	}
	return int64(it.MailboxLen)
}

// stable orders a Top result by value, then PID, and keeps its membership
// steady. The runtime's Top breaks ties in no particular order, so among
// many equal values (a hundred thousand empty mailboxes) it would return a
// different subset each time and the table would reshuffle on every
// refresh. Processes tied at the cut-off value that were shown last time
// keep their places while they still have that value; the first time, the
// tie is filled with the oldest processes, which read as the lowest PIDs.
func (p *probe) stable(infos []runtime.ProcessInfo, key runtime.SortKey, k int) []runtime.ProcessInfo {
	byValue := func(a, b runtime.ProcessInfo) int {
		if c := cmp.Compare(topValue(&b, key), topValue(&a, key)); c != 0 {
			return c
		}
		return cmp.Compare(a.PID.ID(), b.PID.ID())
	}
	slices.SortFunc(infos, byValue)
	if len(infos) < k || len(infos) == 0 {
		p.remember(infos, key) // the whole node: nothing was left out
		return infos
	}
	cut := topValue(&infos[len(infos)-1], key)
	first := len(infos) // first tied entry
	for first > 0 && topValue(&infos[first-1], key) == cut {
		first--
	}
	ties := len(infos) - first
	if p.prevKey != key || len(p.prevTop) == 0 {
		p.prevTop, p.prevKey = p.seed(key, cut, k+first), key
	}
	in := make(map[runtime.PID]int, len(infos))
	for i := range infos {
		in[infos[i].PID] = i
	}
	kept := make([]runtime.ProcessInfo, 0, ties)
	taken := make(map[runtime.PID]bool, ties)
	for _, pid := range p.prevTop {
		if len(kept) == ties {
			break
		}
		if i, ok := in[pid]; ok {
			if i >= first {
				kept = append(kept, infos[i])
				taken[pid] = true
			}
			continue
		}
		if info := p.env.info(pid); !info.PID.IsZero() && info.Status != runtime.StatusExiting && topValue(&info, key) == cut {
			kept = append(kept, info)
			taken[pid] = true
		}
	}
	for i := first; i < len(infos) && len(kept) < ties; i++ {
		if !taken[infos[i].PID] {
			kept = append(kept, infos[i])
		}
	}
	out := append(infos[:first:first], kept...)
	p.remember(out, key)
	return out
}

// seed lists the oldest n processes whose value is cut, in PID order: the
// processes a tie at cut is first filled with.
func (p *probe) seed(key runtime.SortKey, cut int64, n int) []runtime.PID {
	if key == runtime.ByAge {
		return nil // ages do not tie
	}
	oldest := p.env.top(n, runtime.ByAge)
	out := make([]runtime.PID, 0, len(oldest))
	for i := range oldest {
		if topValue(&oldest[i], key) == cut {
			out = append(out, oldest[i].PID)
		}
	}
	slices.SortFunc(out, func(a, b runtime.PID) int { return cmp.Compare(a.ID(), b.ID()) })
	return out
}

func (p *probe) remember(infos []runtime.ProcessInfo, key runtime.SortKey) {
	p.prevKey = key
	p.prevTop = p.prevTop[:0]
	for i := range infos {
		p.prevTop = append(p.prevTop, infos[i].PID)
	}
}

func indexOf(infos []runtime.ProcessInfo, pid runtime.PID) int {
	if pid.IsZero() {
		return -1
	}
	for i := range infos {
		if infos[i].PID == pid {
			return i
		}
	}
	return -1
}

func clamp(v, lo, hi int) int {
	return max(lo, min(v, hi))
}

// scanPage copies every process, filters, and keeps the best rows with a
// bounded heap: a full scan, for orders and filters the runtime cannot rank.
func (p *probe) scanPage(q query, restarts map[runtime.PID]int, now time.Time) procPage {
	p.buf = p.env.scan(p.buf)
	items := p.buf
	if q.filter != "" {
		var scratch [32]byte
		n := 0
		for i := range items {
			if matchProc(&items[i], q.filter, scratch[:0]) {
				items[n] = items[i]
				n++
			}
		}
		clear(items[n:]) // drop references to filtered-out strings
		items = items[:n]
	}
	keys := slices.Grow(p.keys[:0], len(items))[:len(items)]
	for i := range items {
		it := &items[i]
		switch q.sort {
		case sortMailbox:
			keys[i] = float64(it.MailboxLen)
		case sortRate:
			keys[i] = p.rateOf(it.PID.ID(), it.MessagesIn, now)
		case sortHandler:
			keys[i] = float64(it.HandlerTime)
		case sortRestarts:
			keys[i] = float64(restarts[it.PID])
		case sortAge:
			keys[i] = float64(now.Sub(it.Started))
		}
	}
	p.keys = keys
	asc := q.asc
	less := func(a, b int) bool {
		x, y := &items[a], &items[b]
		if q.sort == sortName {
			xn, yn := x.Name == "", y.Name == ""
			if xn != yn {
				return yn // named processes first, either way
			}
			if c := strings.Compare(x.Name, y.Name); c != 0 {
				return (c < 0) == asc
			}
			if c := strings.Compare(x.Module, y.Module); c != 0 {
				return (c < 0) == asc
			}
		} else if keys[a] != keys[b] {
			return (keys[a] < keys[b]) == asc
		}
		return x.PID.ID() < y.PID.ID()
	}
	total := len(items)
	rows := max(q.rows, 1)
	sel := indexOf(items, q.sel)
	offset, selRank := q.offset, -1
	if sel >= 0 {
		selRank = 0
		for i := range items {
			if less(i, sel) {
				selRank++
			}
		}
		offset = selRank - q.selRow
	}
	offset = clamp(offset, 0, max(total-rows, 0))
	first, end := max(offset-rows, 0), min(total, offset+2*rows)
	p.idx = selectTop(p.idx, len(items), end, less)
	page := procPage{valid: true, sel: q.sel, offset: offset, first: first, total: total, selRank: selRank, scanned: true}
	if first < end {
		page.rows = make([]procRow, 0, end-first)
		for _, i := range p.idx[first:end] {
			page.rows = append(page.rows, p.row(&items[i], restarts, now))
		}
	}
	return page
}

// selectTop returns, in order, the indices of the m best of n items under
// less, keeping a heap of m instead of sorting all n.
func selectTop(h []int32, n, m int, less func(a, b int) bool) []int32 {
	h = h[:0]
	if m <= 0 {
		return h
	}
	// h is a heap with the worst kept item at h[0].
	worse := func(a, b int32) bool { return less(int(b), int(a)) }
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			w := l
			if r := l + 1; r < len(h) && worse(h[r], h[l]) {
				w = r
			}
			if !worse(h[w], h[i]) {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for i := range n {
		if len(h) < m {
			h = append(h, int32(i))
			for j := len(h) - 1; j > 0; {
				parent := (j - 1) / 2
				if !worse(h[j], h[parent]) {
					break
				}
				h[j], h[parent] = h[parent], h[j]
				j = parent
			}
			continue
		}
		if less(i, int(h[0])) {
			h[0] = int32(i)
			down(0)
		}
	}
	slices.SortFunc(h, func(a, b int32) int {
		switch {
		case less(int(a), int(b)):
			return -1
		case less(int(b), int(a)):
			return 1
		}
		return 0
	})
	return h
}

// matchProc reports whether the filter (lower case) occurs in the
// process's name, module, behaviour or PID.
func matchProc(it *runtime.ProcessInfo, filter string, scratch []byte) bool {
	if containsFold(it.Name, filter) || containsFold(it.Module, filter) || containsFold(it.Behaviour, filter) {
		return true
	}
	for i := 0; i < len(filter); i++ {
		if c := filter[i]; (c < '0' || c > '9') && c != '<' && c != '>' && c != '.' {
			return false // cannot occur in a PID
		}
	}
	b := append(scratch, "<0."...)
	b = strconv.AppendUint(b, it.PID.ID(), 10)
	b = append(b, ".0>"...)
	for i := 0; i+len(filter) <= len(b); i++ {
		if string(b[i:i+len(filter)]) == filter { // compared without allocating
			return true
		}
	}
	return false
}

func (p *probe) row(it *runtime.ProcessInfo, restarts map[runtime.PID]int, now time.Time) procRow {
	return procRow{
		pid:      it.PID,
		name:     it.Name,
		module:   moduleText(it),
		status:   it.Status,
		mq:       it.MailboxLen,
		in:       it.MessagesIn,
		out:      it.MessagesOut,
		rate:     p.rateOf(it.PID.ID(), it.MessagesIn, now),
		handler:  it.HandlerTime,
		restarts: restarts[it.PID],
		started:  it.Started,
		tracing:  it.Tracing,
	}
}

// moduleText is what the Module column shows: module and version, or the
// behaviour, or nothing.
func moduleText(it *runtime.ProcessInfo) string {
	switch {
	case it.Module != "" && it.Version != "":
		return it.Module + " " + it.Version
	case it.Module != "":
		return it.Module
	}
	return it.Behaviour
}

// mailboxHead is how many queued messages the detail pane shows.
const mailboxHead = 10

func (p *probe) detailOf(pid runtime.PID, tree []SupervisorView, restarts map[runtime.PID]int, now time.Time) *detailData {
	d := p.env.detail(pid, mailboxHead)
	out := &detailData{
		pid:      pid,
		info:     d.ProcessInfo,
		alive:    d.Alive,
		rate:     p.rateOf(pid.ID(), d.MessagesIn, now),
		restarts: restarts[pid],
	}
	if !d.Alive {
		out.exitReason = runtime.FormatReason(d.ExitReason)
		out.info.PID = pid
	}
	if st, ok := p.env.statistics(pid); ok {
		out.stats = "in " + commas(int64(st.MessagesIn)) + " out " + commas(int64(st.MessagesOut)) +
			" handler " + dur(st.HandlerTime) + " since " + st.Since.Format("15:04:05")
	}
	for i := range tree {
		for j := range tree[i].Children {
			if c := &tree[i].Children[j]; c.PID == pid && c.LastExit != nil {
				out.lastExit = runtime.FormatReason(c.LastExit)
			}
		}
	}
	for _, m := range d.MailboxHead {
		out.mailbox = append(out.mailbox, clip(oneLine(fmt.Sprintf("%+v", m)), 400))
	}
	add := func(kind string, pids []runtime.PID) {
		slices.SortFunc(pids, func(a, b runtime.PID) int { return int(a.ID()) - int(b.ID()) })
		for _, r := range pids {
			out.related = append(out.related, relatedPID{kind: kind, pid: r, label: p.label(r)})
		}
	}
	if !d.Parent.IsZero() {
		add("parent", []runtime.PID{d.Parent})
	}
	add("link", d.LinkedTo)
	add("monitored by", d.MonitoredBy)
	add("monitors", d.MonitorsOn)
	return out
}

// label names a related process by its registered name or module.
func (p *probe) label(pid runtime.PID) string {
	info := p.env.info(pid)
	switch {
	case info.PID.IsZero():
		return "(dead)"
	case info.Name != "":
		return info.Name
	}
	return moduleText(&info)
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// stateLimit caps the formatted state of a process.
const stateLimit = 16 << 10

// stateOf reads a process's state with sys:get_state; it runs in a command.
func (p *probe) stateOf(pid runtime.PID, timeout time.Duration) (string, error) {
	v, err := p.env.getState(pid, timeout)
	if err != nil {
		return "", err
	}
	return clip(fmt.Sprintf("%+v", v), stateLimit), nil
}

// keepEvent reports whether the Events view keeps an event: crash and
// exit reports, supervisor reports, code changes, sys and application
// events and traces. Spawns, links and normal exits would drown them.
func keepEvent(e *runtime.Event) bool {
	switch e.Kind {
	case runtime.EventExit:
		return !runtime.IsNormal(e.Reason)
	case runtime.EventSupervisor, runtime.EventCodeChange, runtime.EventSys, runtime.EventApplication, runtime.EventTrace:
		return true
	}
	return false
}

// formatEvents turns the kept events into rows; formatting happens here,
// in the command, because reasons and reports are arbitrary values.
func formatEvents(evs []runtime.Event) []evRow {
	var out []evRow
	for i := range evs {
		e := &evs[i]
		if !keepEvent(e) {
			continue
		}
		r := evRow{seq: e.Seq, at: e.Time, kind: e.Kind, pid: e.PID, other: e.Other, title: e.Kind.String()}
		var sum, det strings.Builder
		switch e.Kind {
		case runtime.EventExit:
			// A process killed outright did not crash; like OTP, only
			// abnormal exits of its own are crash reports.
			r.crash = !runtime.IsClean(e.Reason) && !runtime.SameReason(e.Reason, runtime.Killed)
			if r.crash {
				r.title = "crash"
			}
			fmt.Fprintf(&sum, "%v", e.PID)
			if e.Name != "" {
				fmt.Fprintf(&sum, " %s", e.Name)
			}
			fmt.Fprintf(&sum, " exited: %s", clip(oneLine(runtime.FormatReason(e.Reason)), 300))
			writeReason(&det, e.Reason)
		case runtime.EventSupervisor:
			r.title = "supervisor"
			fmt.Fprintf(&sum, "%v %s", e.PID, e.Text)
			if e.Name != "" {
				fmt.Fprintf(&sum, " id=%s", e.Name)
			}
			if !e.Other.IsZero() {
				fmt.Fprintf(&sum, " pid=%v", e.Other)
			}
			if e.Reason != nil {
				fmt.Fprintf(&sum, " reason=%s", clip(oneLine(runtime.FormatReason(e.Reason)), 200))
			}
			r.crash = e.Text == "reached_max_restart_intensity"
			fmt.Fprintf(&det, "supervisor %v\nreport %s\n", e.PID, e.Text)
			if e.Data != nil {
				fmt.Fprintf(&det, "data %+v\n", e.Data)
			}
			if e.Reason != nil {
				writeReason(&det, e.Reason)
			}
		case runtime.EventCodeChange:
			r.title = "code"
			fmt.Fprintf(&sum, "%v %s", e.PID, e.Text)
			fmt.Fprintf(&det, "code change of %v\nmodule %s\n%s\n", e.PID, e.Name, e.Text)
		case runtime.EventTrace:
			fmt.Fprintf(&sum, "%v %s", e.PID, e.Text)
			if !e.Other.IsZero() {
				fmt.Fprintf(&sum, " → %v", e.Other)
			}
			msg := clip(oneLine(fmt.Sprintf("%+v", e.Data)), 300)
			fmt.Fprintf(&sum, " %s", msg)
			fmt.Fprintf(&det, "trace of %v: %s\nmessage %s\n", e.PID, e.Text, msg)
		default:
			fmt.Fprintf(&sum, "%v %s %s", e.PID, e.Name, e.Text)
			if e.Reason != nil {
				fmt.Fprintf(&sum, " reason=%s", clip(oneLine(runtime.FormatReason(e.Reason)), 200))
			}
			fmt.Fprintf(&det, "%s event of %v\n%s %s\n", e.Kind, e.PID, e.Name, e.Text)
		}
		r.summary = oneLine(strings.TrimSpace(sum.String()))
		r.detail = sanitize(strings.TrimRight(det.String(), "\n"))
		r.lower = strings.ToLower(r.title + " " + r.summary)
		out = append(out, r)
	}
	return out
}

// writeReason writes an exit reason and, for a panic, its stack.
func writeReason(b *strings.Builder, reason any) {
	fmt.Fprintf(b, "reason %s\n", runtime.FormatReason(reason))
	if pe, ok := reason.(*runtime.PanicError); ok && pe.Stack != "" {
		b.WriteString("stack\n")
		b.WriteString(clip(pe.Stack, 8<<10))
		b.WriteByte('\n')
	}
}
