package bench

import (
	"context"
	"fmt"
	"math"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"observer/internal/runtime"
)

// series collects the latencies of one measurement into a histogram per
// reporting window. Windows are aligned on the Runner's epoch so that the
// windows of consecutive scenarios form one timeline.
type series struct {
	epoch  time.Time
	window time.Duration

	mu       sync.Mutex
	wins     map[int64]*winStats
	lags     *hdrhistogram.Histogram // open loop: how late workers woke
	firstErr error
	recs     []*recorder
}

type winStats struct {
	hist *hdrhistogram.Histogram
	errs uint64
}

func (r *Runner) newSeries() *series {
	return &series{epoch: r.epoch, window: r.opts.Window, wins: map[int64]*winStats{}, lags: newHist()}
}

// recorderBuf is how many samples a recorder keeps before it takes the
// series' lock: one lock per few hundred operations keeps workers from
// contending on it, and the buffer stays small.
const recorderBuf = 512

// recorder is one worker's (or one receiver's) view of a series. Only its
// owner calls record; progress reads the counters from other goroutines.
type recorder struct {
	s    *series
	win  int64
	buf  []int64
	errs uint64
	lags []int64

	ops  atomic.Uint64
	fail atomic.Uint64
	_    [48]byte // keep each worker's counters on its own cache line
}

func (s *series) recorder() *recorder {
	rc := &recorder{s: s, win: -1, buf: make([]int64, 0, recorderBuf)}
	s.mu.Lock()
	s.recs = append(s.recs, rc)
	s.mu.Unlock()
	return rc
}

// record adds an operation that ended at end after lat; a failed one
// counts as an error and its latency is not kept, as basho_bench does. It
// reports whether it took the time to flush, so that a closed-loop worker
// can start its next clock after that rather than charge it to the next
// operation.
func (rc *recorder) record(end time.Time, lat time.Duration, err error) (flushed bool) {
	w := int64(end.Sub(rc.s.epoch) / rc.s.window)
	if w != rc.win {
		flushed = rc.flush()
		rc.win = w
	}
	if err != nil {
		rc.errs++
		rc.fail.Add(1)
		rc.s.noteErr(err)
		return true
	}
	rc.buf = append(rc.buf, max(int64(lat), 1))
	rc.ops.Add(1)
	if len(rc.buf) == cap(rc.buf) {
		flushed = rc.flush()
	}
	return flushed
}

// lag records how late an open-loop worker woke for an operation.
func (rc *recorder) lag(d time.Duration) {
	rc.lags = append(rc.lags, max(int64(d), 1))
	if len(rc.lags) == recorderBuf {
		rc.flush()
	}
}

// flush moves the buffered samples into the series; it reports whether
// there were any.
func (rc *recorder) flush() bool {
	if len(rc.buf) == 0 && rc.errs == 0 && len(rc.lags) == 0 {
		return false
	}
	s := rc.s
	s.mu.Lock()
	for _, v := range rc.lags {
		_ = s.lags.RecordValue(min(v, histMax))
	}
	rc.lags = rc.lags[:0]
	if len(rc.buf) > 0 || rc.errs > 0 { // lags alone belong to no window
		ws := s.wins[rc.win]
		if ws == nil {
			ws = &winStats{hist: newHist()}
			s.wins[rc.win] = ws
		}
		for _, v := range rc.buf {
			_ = ws.hist.RecordValue(min(v, histMax)) // cannot fail: clamped to the range
		}
		ws.errs += rc.errs
	}
	s.mu.Unlock()
	rc.buf, rc.errs = rc.buf[:0], 0
	return true
}

func (s *series) noteErr(err error) {
	s.mu.Lock()
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.mu.Unlock()
}

// counts sums the recorders' counters for progress.
func (s *series) counts() (ops, errs uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rc := range s.recs {
		ops += rc.ops.Load()
		errs += rc.fail.Load()
	}
	return ops, errs
}

// result builds the summary of a measurement that ran from start to end.
// Every recorder must have been flushed.
func (s *series) result(start, end time.Time) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := newHist()
	var errs uint64
	idx := make([]int64, 0, len(s.wins))
	for k := range s.wins {
		idx = append(idx, k)
	}
	slices.Sort(idx)
	res := Result{Elapsed: end.Sub(start)}
	for _, k := range idx {
		ws := s.wins[k]
		total.Merge(ws.hist)
		errs += ws.errs
		from := later(start, s.epoch.Add(time.Duration(k)*s.window))
		to := earlier(end, s.epoch.Add(time.Duration(k+1)*s.window))
		res.Windows = append(res.Windows, Window{
			End: to.Sub(s.epoch), Length: max(to.Sub(from), 0), Latency: summarize(ws.hist), Errors: ws.errs,
		})
	}
	res.Latency = summarize(total)
	if s.lags.TotalCount() > 0 {
		lag := summarize(s.lags)
		res.StartLag = &lag
	}
	res.Ops = uint64(total.TotalCount())
	res.Errors = errs
	return res
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// plan is how a scenario drives its operation.
type plan struct {
	scenario, phase, op string
	node                *runtime.Node
	workers             int
	// do performs operation seq of worker w, which was due to start at
	// start (the intended time in open loop). It returns when the
	// operation ended, or the zero time for "now": an operation that does
	// untimed bookkeeping after its measured part returns the earlier time.
	do func(p *runtime.Process, w int, seq uint64, start time.Time) (time.Time, error)
	// async means the latency of a successful operation is recorded by
	// its receiver in series, not by the worker.
	async  bool
	series *series
	// drain runs once the workers have stopped, before the clock stops:
	// async operations still in flight finish here.
	drain func(ctx context.Context) error
	// tick runs at each progress reading, for samples over the run.
	tick func()
	// paced makes an open loop hand each operation to an idle worker
	// from one pacer goroutine, instead of every worker sleeping until
	// its own operation's start: thousands of workers' timers and
	// wake-ups then cost the system under test far less CPU, for up to
	// a few hundred microseconds more start lag (counted in the
	// latency, as ever). It suits operations that take milliseconds.
	paced bool
	// duration overrides the runner's.
	duration time.Duration
}

// outcome is what drive measured.
type outcome struct {
	Result
	issued uint64 // operations started
	due    uint64 // open loop: operations that should have started
}

// missed is how many operations an open loop never started.
func (o outcome) missed() uint64 { return o.due - min(o.due, o.issued) }

// drive runs pl's workers as processes on pl.node for the runner's
// duration, in closed or open loop, and returns their measurements.
func (r *Runner) drive(ctx context.Context, pl plan) (outcome, error) {
	s := pl.series
	if s == nil {
		s = r.newSeries()
	}
	d := r.opts.Duration
	if pl.duration > 0 {
		d = pl.duration
	}
	var (
		wg     sync.WaitGroup
		begin  = make(chan struct{})
		t0     time.Time // written before begin is closed, read after
		next   atomic.Uint64
		issued atomic.Uint64
		fatal  atomic.Pointer[error]
	)
	period := 0.0
	if r.open() {
		period = float64(time.Second) / r.opts.Rate
	}
	// An overloaded open loop may finish the operations that were due
	// for up to one more duration; the ones it never started are errors.
	hardStop := func() time.Time { return t0.Add(2 * d) }
	recs := make([]*recorder, pl.workers)
	for w := range recs {
		recs[w] = s.recorder()
	}
	var due chan uint64 // the paced open loop's operations, in order
	if r.open() && pl.paced {
		due = make(chan uint64, pl.workers)
	}
	for w := range pl.workers {
		wg.Add(1)
		rc := recs[w]
		_, err := pl.node.Spawn(func(p *runtime.Process) {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					if runtime.IsExitPanic(v) {
						panic(v)
					}
					err := fmt.Errorf("%s: worker %d: panic: %v", pl.scenario, w, v)
					fatal.CompareAndSwap(nil, &err)
				}
				rc.flush()
			}()
			<-begin
			deadline := t0.Add(d)
			var n uint64
			defer func() { issued.Add(n) }()
			now := time.Now()
			for i := uint64(0); ctx.Err() == nil; i++ {
				// In closed loop seq counts this worker's operations; in
				// open loop it is the operation's place in the schedule.
				seq, start := i, now
				if due != nil {
					var ok bool
					if seq, ok = <-due; !ok {
						return
					}
					start = t0.Add(time.Duration(float64(seq) * period))
					rc.lag(max(0, time.Since(start)))
				} else if r.open() {
					seq = next.Add(1) - 1
					start = t0.Add(time.Duration(float64(seq) * period))
					if !start.Before(deadline) {
						return
					}
					lag, waited, ok := sleepUntil(ctx, start)
					if !ok || time.Now().After(hardStop()) {
						return
					}
					if waited {
						rc.lag(lag)
					}
				} else if !now.Before(deadline) {
					return
				}
				done, err := pl.do(p, w, seq, start)
				n++
				now = time.Now()
				if done.IsZero() {
					done = now
				}
				if (err != nil || !pl.async) && rc.record(done, done.Sub(start), err) {
					now = time.Now()
				}
			}
		}, runtime.SpawnOpts{})
		if err != nil {
			wg.Done()
			close(begin)
			wg.Wait()
			return outcome{}, fmt.Errorf("%s: starting worker %d: %w", pl.scenario, w, err)
		}
	}
	t0 = time.Now()
	if due != nil {
		total := uint64(math.Ceil(float64(d) / period))
		go pace(ctx, due, t0, period, total, hardStop())
	}
	close(begin)
	stop := r.watch(s, pl, t0)
	wg.Wait()
	var err error
	if pl.drain != nil {
		err = pl.drain(ctx)
	}
	end := time.Now()
	stop()
	if e := fatal.Load(); e != nil {
		err = *e
	}
	out := outcome{Result: s.result(t0, end), issued: issued.Load()}
	if r.open() {
		out.due = uint64(math.Ceil(float64(d) / period))
		out.Errors += out.missed() // never started: the system fell behind
	}
	out.Scenario, out.Phase, out.Op = pl.scenario, pl.phase, pl.op
	out.Concurrency = pl.workers
	out.Mode = "closed"
	if r.open() {
		out.Mode, out.Rate = "open", r.opts.Rate
	}
	if err == nil {
		err = ctx.Err()
	}
	return out, err
}

// watch reports progress until the returned stop is called.
func (r *Runner) watch(s *series, pl plan, t0 time.Time) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(r.opts.ProgressInterval)
		defer tick.Stop()
		last, lastAt := uint64(0), t0
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				if pl.tick != nil {
					pl.tick()
				}
				if r.opts.Progress == nil {
					continue
				}
				ops, errs := s.counts()
				rate := 0.0
				if dt := now.Sub(lastAt).Seconds(); dt > 0 {
					rate = float64(ops-last) / dt
				}
				last, lastAt = ops, now
				r.opts.Progress(Progress{Scenario: pl.scenario, Phase: pl.phase, Elapsed: now.Sub(t0),
					Duration: r.opts.Duration, Ops: ops, Errors: errs, Rate: rate})
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// spinWindow is how close to its start time an open-loop worker stops
// sleeping and yields instead, to start closer to its time than a timer
// would. It is short because yielding takes the CPU from the system under
// test, and each worker near its start time yields.
const spinWindow = 50 * time.Microsecond

// pace sends the operations 0..total-1 on due, each once it is due at
// t0 + seq*period, then closes due. It waits when every worker is busy:
// the operations due meanwhile start late, and their latency shows it. It
// stops early at hardStop or when ctx ends.
func pace(ctx context.Context, due chan<- uint64, t0 time.Time, period float64, total uint64, hardStop time.Time) {
	defer close(due)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for seq := uint64(0); seq < total; {
		now := time.Now()
		if now.After(hardStop) || ctx.Err() != nil {
			return
		}
		for n := min(total, uint64(float64(now.Sub(t0))/period)+1); seq < n; seq++ {
			select {
			case due <- seq:
			case <-ctx.Done():
				return
			}
		}
		if seq < total {
			timer.Reset(time.Until(t0.Add(time.Duration(float64(seq) * period))))
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
	}
}

// sleepUntil waits until t and reports how late it woke (zero if t had
// passed already, so there was nothing to wait for); ok is false if ctx
// ended first.
func sleepUntil(ctx context.Context, t time.Time) (lag time.Duration, waited, ok bool) {
	wait := time.Until(t)
	if wait <= 0 {
		return 0, false, true
	}
	if wait > spinWindow {
		timer := time.NewTimer(wait - spinWindow)
		select {
		case <-ctx.Done():
			timer.Stop()
			return 0, true, false
		case <-timer.C:
		}
	}
	for {
		now := time.Now()
		if !now.Before(t) {
			return now.Sub(t), true, true
		}
		if ctx.Err() != nil {
			return 0, true, false
		}
		goruntime.Gosched()
	}
}

// checkErrors is the check that closed-loop runs had no failed operation;
// in open loop errors include operations the system was too slow to
// start, which is a finding rather than a fault.
func (r *Runner) checkErrors(s *series, res Result) []Check {
	if r.open() {
		return nil
	}
	return []Check{noErrors(s, res)}
}

// noErrors is the check that no operation failed, naming the first error.
func noErrors(s *series, res Result) Check {
	detail := fmt.Sprintf("%d errors", res.Errors)
	s.mu.Lock()
	if s.firstErr != nil {
		detail += ", first: " + s.firstErr.Error()
	}
	s.mu.Unlock()
	return Check{Name: "no failed operations", Pass: res.Errors == 0, Detail: detail}
}

// checkOps is the check that the scenario did anything at all.
func checkOps(res Result) Check {
	return checkTrue("operations completed", res.Ops > 0, "%d", res.Ops)
}
