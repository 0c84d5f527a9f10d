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
	// scanTook is what the full scan behind a scanned page cost; the
	// order it found is kept for scanEvery.
	scanTook time.Duration
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
	keys  []scanKey
	best  []scanKey
	names nameRanks
	kept  keptOrder
	evbuf []runtime.Event

	// spare hands the rows of pages the pane has let go of back to the
	// probe, so a refresh reuses them instead of allocating its rows.
	spare chan []procRow

	marks markTable // message counts by process, for rates
	epoch uint32

	sups map[runtime.PID]supMark // per supervisor, to spot restarts cheaply
}

// msgMark is a process's message count at the start of its rate window,
// and the rate of the last whole window.
type msgMark struct {
	in   uint64
	at   int64   // Unix nanoseconds
	rate float64 // < 0 until a window has closed
	ok   bool    // false: no mark yet
}

// markPageBits sizes a page of marks: 64 consecutive process numbers.
const markPageBits = 6

// markPage holds the marks of consecutive process numbers. The node hands
// numbers out in order and a scan lists a page's processes together, so
// most marks are found without a map lookup.
type markPage struct {
	seen  uint32 // the latest epoch a mark of the page was read
	marks [1 << markPageBits]msgMark
}

// markTable finds a process's mark by its number: pages by page number,
// and the page of the previous lookup at hand. Its zero value is empty.
type markTable struct {
	pages map[uint64]*markPage
	last  *markPage
	lastN uint64
}

// mark returns the mark of process id, making room for it, and notes that
// its page was seen in epoch.
func (t *markTable) mark(id uint64, epoch uint32) *msgMark {
	n := id >> markPageBits
	pg := t.last
	if pg == nil || t.lastN != n {
		pg = t.pages[n]
		if pg == nil {
			if t.pages == nil {
				t.pages = make(map[uint64]*markPage)
			}
			pg = &markPage{}
			t.pages[n] = pg
		}
		t.last, t.lastN = pg, n
	}
	pg.seen = epoch
	return &pg.marks[id&(1<<markPageBits-1)]
}

// prune forgets the pages not read for a while.
func (t *markTable) prune(epoch uint32) {
	for n, pg := range t.pages {
		if epoch-pg.seen > 16 {
			delete(t.pages, n)
		}
	}
	t.last = nil
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
	return &probe{src: src, env: e, sups: make(map[runtime.PID]supMark), spare: make(chan []procRow, 2)}
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
		// The runtime ranks by a few keys itself, from atomics and with a
		// heap of the rows asked for; any other order, a reversed one or
		// a filter needs every process copied.
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
	m := p.marks.mark(id, p.epoch)
	t := now.UnixNano()
	if !m.ok || in < m.in {
		*m = msgMark{in: in, at: t, rate: -1, ok: true}
		return -1
	}
	dt := time.Duration(t - m.at)
	switch {
	case dt >= rateWindow:
		m.rate = float64(in-m.in) / dt.Seconds()
		m.in, m.at = in, t
	case m.rate < 0 && dt >= rateWindow/4:
		return float64(in-m.in) / dt.Seconds()
	}
	return m.rate
}

// pruneMarks forgets processes not measured for a while, once the marks
// have outgrown the node.
func (p *probe) pruneMarks(live int) {
	if len(p.marks.pages) <= 2*(live>>markPageBits)+64 {
		return
	}
	p.marks.prune(p.epoch)
}

// rows returns an empty slice for n rows, reusing one the pane let go of.
func (p *probe) rows(n int) []procRow {
	select {
	case r := <-p.spare:
		if cap(r) >= n {
			return r[:0]
		}
	default:
	}
	return make([]procRow, 0, n)
}

// recycle takes back the rows of a page that is no longer shown. It is
// called from Update while a snapshot may run, hence the channel.
func (p *probe) recycle(rows []procRow) {
	if cap(rows) == 0 {
		return
	}
	clear(rows) // drop the strings
	select {
	case p.spare <- rows[:0]:
	default:
	}
}

// topPage ranks with the runtime's Top, which keeps a small heap instead of
// copying every process: the table costs O(n log k) with k the rows shown.
func (p *probe) topPage(q query, key runtime.SortKey, live int, restarts map[runtime.PID]int, now time.Time) procPage {
	rows := max(q.rows, 1)
	k := q.offset + 3*rows
	infos := stable(p.env.top(k, key), key)
	total := live
	if len(infos) < k {
		total = len(infos)
	}
	sel := indexOf(infos, q.sel)
	if sel < 0 && !q.sel.IsZero() && len(infos) == k && p.env.alive(q.sel) {
		// The selection fell out of the window: look further once.
		k = min(max(live, k), 8*k)
		infos = stable(p.env.top(k, key), key)
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
		infos = stable(p.env.top(offset+2*rows, key), key)
		sel = indexOf(infos, q.sel)
	}
	first := max(offset-rows, 0)
	page := procPage{valid: true, sel: q.sel, offset: offset, first: first, total: total, selRank: sel}
	end := min(len(infos), offset+2*rows)
	if first < end {
		page.rows = p.rows(end - first)
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

// stable orders a Top result by the values it shows, then by PID. The
// runtime's Top ranks by values read a moment before the rows were, and
// among equal values it keeps the oldest processes, the lowest PIDs, so
// a hundred thousand empty mailboxes give the same rows on every refresh.
func stable(infos []runtime.ProcessInfo, key runtime.SortKey) []runtime.ProcessInfo {
	slices.SortStableFunc(infos, func(a, b runtime.ProcessInfo) int {
		if c := cmp.Compare(topValue(&b, key), topValue(&a, key)); c != 0 {
			return c
		}
		return cmp.Compare(a.PID.ID(), b.PID.ID())
	})
	return infos
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

// scanKey places one process in a scanned order. The sort value is
// worked out once per process and negated for a descending order, so that
// in every order the smaller (v, id) ranks first; ties go to the lower PID.
type scanKey struct {
	v  float64
	id uint64 // PID number
	i  int32  // index into the scan
}

func (a *scanKey) before(b *scanKey) bool {
	return a.v < b.v || a.v == b.v && a.id < b.id
}

func compareScanKeys(a, b scanKey) int {
	switch {
	case a.before(&b):
		return -1
	case b.before(&a):
		return 1
	}
	return 0
}

// scanEvery is how long the order found by a full scan is kept. The
// refreshes in between re-read only the rows around the view, in that
// order, with fresh figures: at a hundred thousand processes a scan costs
// milliseconds and a row a microsecond. Rates change once a second anyway.
const scanEvery = time.Second

// keptOrder is the order of the latest full scan, from the first rank on,
// and what it was taken for.
type keptOrder struct {
	valid  bool
	at     time.Time
	took   time.Duration
	gen    uint64
	sort   sortKey
	asc    bool
	filter string
	total  int
	pids   []runtime.PID // by rank
}

// keptPage serves a page from the kept order, if it is recent, was taken
// for the same query and reaches the rows asked for.
func (p *probe) keptPage(q query, restarts map[runtime.PID]int, now time.Time) (procPage, bool) {
	k := &p.kept
	if !k.valid || k.gen != q.gen || k.sort != q.sort || k.asc != q.asc || k.filter != q.filter {
		return procPage{}, false
	}
	if age := now.Sub(k.at); age < 0 || age >= scanEvery {
		return procPage{}, false
	}
	rows := max(q.rows, 1)
	offset, selRank := q.offset, -1
	if !q.sel.IsZero() {
		if selRank = slices.Index(k.pids, q.sel); selRank < 0 {
			return procPage{}, false
		}
		offset = selRank - q.selRow
	}
	offset = clamp(offset, 0, max(k.total-rows, 0))
	first, end := max(offset-rows, 0), min(k.total, offset+2*rows)
	if end > len(k.pids) {
		return procPage{}, false // scrolled past what was kept
	}
	page := procPage{valid: true, sel: q.sel, offset: offset, first: first, total: k.total, selRank: selRank, scanned: true, scanTook: k.took}
	if first < end {
		page.rows = p.rows(end - first)
		for _, pid := range k.pids[first:end] {
			info := p.env.info(pid)
			if info.PID.IsZero() {
				// Gone since the scan: it keeps its place until the next.
				info = runtime.ProcessInfo{PID: pid, Status: runtime.StatusExiting}
			}
			page.rows = append(page.rows, p.row(&info, restarts, now))
		}
	}
	return page, true
}

// scanPage copies every process, filters, and keeps the best rows with a
// bounded heap: a full scan, for orders and filters the runtime cannot
// rank. Each process costs one pass that reads its sort value into a flat
// key; ranking and finding the selection then compare keys only. The
// order found is kept for scanEvery, with a few pages below the view.
func (p *probe) scanPage(q query, restarts map[runtime.PID]int, now time.Time) procPage {
	if page, ok := p.keptPage(q, restarts, now); ok {
		return page
	}
	start := p.env.now()
	p.buf = p.env.scan(p.buf)
	items := p.buf
	keys := p.keys[:0]
	sel := -1
	var scratch [32]byte
	if q.sort == sortName {
		p.names.reset()
	}
	for i := range items {
		it := &items[i]
		if q.filter != "" && !matchProc(it, q.filter, scratch[:0]) {
			continue
		}
		if it.PID == q.sel {
			sel = len(keys)
		}
		var v float64
		switch q.sort {
		case sortMailbox:
			v = float64(it.MailboxLen)
		case sortRate:
			v = p.rateOf(it.PID.ID(), it.MessagesIn, now)
		case sortHandler:
			v = float64(it.HandlerTime)
		case sortRestarts:
			if len(restarts) > 0 {
				v = float64(restarts[it.PID])
			}
		case sortName:
			v = float64(p.names.add(it.Name, it.Module))
		case sortAge:
			v = float64(now.Sub(it.Started))
		}
		if !q.asc && q.sort != sortName {
			v = -v
		}
		keys = append(keys, scanKey{v: v, id: it.PID.ID(), i: int32(i)})
	}
	if q.sort == sortName {
		// Names compare as strings: rank the few distinct pairs in the
		// order asked for, then give each process its pair's rank.
		rank := p.names.ranks(q.asc)
		for i := range keys {
			keys[i].v = float64(rank[int(keys[i].v)])
		}
	}
	p.keys = keys
	total := len(keys)
	rows := max(q.rows, 1)
	offset, selRank := q.offset, -1
	if sel >= 0 {
		selRank = 0
		sk := &keys[sel]
		for i := range keys {
			if keys[i].before(sk) {
				selRank++
			}
		}
		offset = selRank - q.selRow
	}
	offset = clamp(offset, 0, max(total-rows, 0))
	first, end := max(offset-rows, 0), min(total, offset+2*rows)
	p.best = selectTop(p.best, keys, min(total, offset+4*rows))
	page := procPage{valid: true, sel: q.sel, offset: offset, first: first, total: total, selRank: selRank, scanned: true}
	if first < end {
		page.rows = p.rows(end - first)
		for _, k := range p.best[first:end] {
			page.rows = append(page.rows, p.row(&items[k.i], restarts, now))
		}
	}
	k := &p.kept
	*k = keptOrder{valid: true, at: now, gen: q.gen, sort: q.sort, asc: q.asc, filter: q.filter, total: total, pids: k.pids[:0]}
	for _, b := range p.best {
		k.pids = append(k.pids, items[b.i].PID)
	}
	k.took = p.env.now().Sub(start)
	page.scanTook = k.took
	return page
}

// selectTop returns, in order, the m first keys, keeping a heap of m in h
// instead of sorting them all.
func selectTop(h, keys []scanKey, m int) []scanKey {
	h = h[:0]
	if m <= 0 {
		return h
	}
	// h is a heap with the last kept key at h[0].
	for i := range keys {
		k := &keys[i]
		if len(h) < m {
			h = append(h, *k)
			for j := len(h) - 1; j > 0; {
				parent := (j - 1) / 2
				if !h[parent].before(&h[j]) {
					break
				}
				h[j], h[parent] = h[parent], h[j]
				j = parent
			}
			continue
		}
		if !k.before(&h[0]) {
			continue
		}
		h[0] = *k
		for j := 0; ; {
			l := 2*j + 1
			if l >= len(h) {
				break
			}
			w := l
			if r := l + 1; r < len(h) && h[l].before(&h[r]) {
				w = r
			}
			if !h[j].before(&h[w]) {
				break
			}
			h[j], h[w] = h[w], h[j]
			j = w
		}
	}
	slices.SortFunc(h, compareScanKeys)
	return h
}

// nameRanks orders processes by name: named ones first, by name and then
// module, in either direction. A node has few distinct names and modules
// (workers of one module share them), so each distinct pair is ranked
// once and a process's key is its pair's rank.
type nameRanks struct {
	pairs []namePair
	index map[namePair]int
	last  int // pair of the previous add, which the next usually repeats
	order []int
	rank  []int
}

type namePair struct{ name, module string }

func (n *nameRanks) reset() {
	clear(n.pairs)
	n.pairs = n.pairs[:0]
	clear(n.index)
	n.last = -1
}

// add returns the number of a process's pair.
func (n *nameRanks) add(name, module string) int {
	if n.last >= 0 {
		if lp := &n.pairs[n.last]; lp.name == name && lp.module == module {
			return n.last
		}
	}
	k := namePair{name, module}
	i, ok := n.index[k]
	if !ok {
		if n.index == nil {
			n.index = make(map[namePair]int)
		}
		i = len(n.pairs)
		n.pairs = append(n.pairs, k)
		n.index[k] = i
	}
	n.last = i
	return i
}

// ranks returns each pair's place in the order, by pair number.
func (n *nameRanks) ranks(asc bool) []int {
	n.order = n.order[:0]
	for i := range n.pairs {
		n.order = append(n.order, i)
	}
	slices.SortFunc(n.order, func(a, b int) int {
		x, y := &n.pairs[a], &n.pairs[b]
		if xn, yn := x.name == "", y.name == ""; xn != yn {
			if yn {
				return -1 // named processes first, either way
			}
			return 1
		}
		c := cmp.Compare(x.name, y.name)
		if c == 0 {
			c = cmp.Compare(x.module, y.module)
		}
		if !asc {
			c = -c
		}
		return c
	})
	n.rank = slices.Grow(n.rank[:0], len(n.pairs))[:len(n.pairs)]
	for r, i := range n.order {
		n.rank[i] = r
	}
	return n.rank
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
