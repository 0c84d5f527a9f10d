package runtime

import (
	"sync"
	"time"
)

// Request is the message a synchronous call delivers: the caller's request
// Body and the From to reply to. Behaviours receive it in Handle.
type Request struct {
	From From
	Body any
}

// From identifies a pending call; Reply answers it, now or later, from any
// goroutine (gen_server:reply/2). A reply after the caller gave up is dropped.
type From struct {
	slot   *callSlot
	caller PID
}

// Caller returns the calling process, or the zero PID for a caller outside
// any process.
func (f From) Caller() PID { return f.caller }

// Reply answers the call.
func (f From) Reply(v any) {
	if f.slot != nil {
		f.slot.put(callResult{value: v})
	}
}

// IsZero reports whether f is unset.
func (f From) IsZero() bool { return f.slot == nil }

type callResult struct {
	value  any
	down   bool
	reason any
}

// callSlot receives a call's outcome: the reply, or the callee's DOWN.
// Whichever comes first wins; the buffered channel never blocks a replier.
type callSlot struct {
	ch  chan callResult
	req Request // allocated with the slot: one allocation per call
}

func (s *callSlot) put(r callResult) {
	select {
	case s.ch <- r:
	default:
	}
}

func (s *callSlot) deliverDown(d DownMsg) { s.put(callResult{down: true, reason: d.Reason}) }

var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// call sends a request and waits for the reply, the callee's exit (the
// caller monitors the callee for the duration of the call), the timeout, or
// the caller's own death.
func call(n *Node, caller *Process, to Target, body any, timeout time.Duration, sys bool) (any, error) {
	t := to.resolve(n)
	if t == nil {
		return nil, &ExitError{Reason: NoProc}
	}
	if t == caller {
		return nil, ErrCallingSelf
	}
	if sys && t.mode != modeBehaviour {
		return nil, ErrNotSys
	}
	slot := &callSlot{ch: make(chan callResult, 1)}
	ref := n.nextRef.Add(1)
	if !t.addMonitor(ref, slot) {
		return nil, &ExitError{PID: PID{t}, Reason: NoProc}
	}
	slot.req = Request{From: From{slot: slot, caller: PID{caller}}, Body: body}
	req := &slot.req
	if sys {
		t.enqueueSys(&sysRequest{req: req})
	} else if caller != nil {
		caller.msgsOut.Add(1)
		t.enqueue(caller, req)
	} else {
		t.enqueue(nil, req)
	}
	var res callResult
	var abort <-chan struct{}
	if caller != nil {
		abort = caller.Context().Done()
	}
	if timeout < 0 {
		select {
		case res = <-slot.ch:
		case <-abort:
			t.removeMonitor(ref)
			return nil, ErrCallerExited
		}
	} else {
		timer := timerPool.Get().(*time.Timer)
		timer.Reset(timeout)
		select {
		case res = <-slot.ch:
			timer.Stop()
			timerPool.Put(timer)
		case <-timer.C:
			timerPool.Put(timer)
			t.removeMonitor(ref)
			return nil, ErrTimeout
		case <-abort:
			timer.Stop()
			timerPool.Put(timer)
			t.removeMonitor(ref)
			return nil, ErrCallerExited
		}
	}
	if res.down {
		return nil, &ExitError{PID: PID{t}, Reason: res.reason}
	}
	t.removeMonitor(ref)
	return res.value, nil
}

// Call makes a synchronous request from this process. The failure kinds are
// told apart with errors.Is/As: ErrNoProc, ErrTimeout, ErrCallingSelf, and
// *ExitError with the callee's reason when it exits during the call.
func (p *Process) Call(to Target, req any, timeout time.Duration) (any, error) {
	return call(p.node, p, to, req, timeout, false)
}
