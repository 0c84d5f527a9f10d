package runtime

import (
	"errors"
	"fmt"
	"time"
)

// SysHandler is implemented by behaviours that expose their state and code
// to sys (gen_server, gen_statem, supervisor).
type SysHandler interface {
	// SysState returns the behaviour's state (sys:get_state/2).
	SysState() any
	// SysReplaceState replaces the state with fn(state) (sys:replace_state/3).
	SysReplaceState(fn func(any) any) (any, error)
	// SysChangeCode moves the process to new code: code_change runs with the
	// old version's state, then the new code takes over (sys:change_code/4).
	SysChangeCode(p *Process, module any, version string, extra any) error
}

type sysOp uint8

const (
	sysSuspend sysOp = iota + 1
	sysResume
	sysGetState
	sysReplaceState
	sysChangeCode
	sysStatistics
	sysTrace
	sysFormatState
)

// SysCall is the body of a system message.
type SysCall struct {
	op      sysOp
	fn      func(any) any
	module  any
	version string
	extra   any
	on      bool
}

type sysRequest struct{ req *Request }

// ErrNotSuspended is returned by ChangeCode on a running process: as in OTP,
// code is changed only while the process is suspended.
var ErrNotSuspended = errors.New("process is not suspended")

// Statistics are a process's counters since statistics were switched on.
type Statistics struct {
	Since       time.Time
	MessagesIn  uint64
	MessagesOut uint64
	HandlerTime time.Duration
}

type statsBase struct {
	since   time.Time
	in, out uint64
	handler int64
}

func (p *Process) handleSys(m *sysRequest) {
	c := m.req.Body.(*SysCall)
	from := m.req.From
	switch c.op {
	case sysSuspend:
		p.mu.Lock()
		p.suspended = true
		p.mu.Unlock()
		p.node.publish(Event{Kind: EventSys, PID: PID{p}, Text: "suspended"})
		from.Reply(nil)
	case sysResume:
		p.mu.Lock()
		p.suspended = false
		p.mu.Unlock()
		p.node.publish(Event{Kind: EventSys, PID: PID{p}, Text: "resumed"})
		from.Reply(nil)
	case sysGetState:
		if h, ok := p.beh.(SysHandler); ok {
			from.Reply(h.SysState())
		} else {
			from.Reply(ErrNotSys)
		}
	case sysFormatState:
		h, ok := p.beh.(SysHandler)
		if !ok {
			from.Reply(ErrNotSys)
			return
		}
		from.Reply(formatState(h))
	case sysReplaceState:
		h, ok := p.beh.(SysHandler)
		if !ok {
			from.Reply(ErrNotSys)
			return
		}
		s, err := h.SysReplaceState(c.fn)
		if err != nil {
			from.Reply(err)
			return
		}
		from.Reply(s)
	case sysChangeCode:
		p.mu.Lock()
		suspended := p.suspended
		p.mu.Unlock()
		h, ok := p.beh.(SysHandler)
		switch {
		case !ok:
			from.Reply(ErrNotSys)
		case !suspended:
			from.Reply(ErrNotSuspended)
		default:
			old := p.Module()
			if err := h.SysChangeCode(p, c.module, c.version, c.extra); err != nil {
				from.Reply(err)
				return
			}
			cur := p.Module()
			cur.Version = c.version
			p.SetModule(cur)
			p.node.publish(Event{Kind: EventCodeChange, PID: PID{p}, Name: cur.Module,
				Text: fmt.Sprintf("%s %s -> %s", cur.Module, old.Version, c.version)})
			from.Reply(nil)
		}
	case sysStatistics:
		p.mu.Lock()
		if c.on {
			p.statsBase = &statsBase{since: time.Now(), in: p.msgsIn.Load(), out: p.msgsOut.Load(), handler: p.handlerNanos.Load()}
		} else {
			p.statsBase = nil
		}
		p.mu.Unlock()
		from.Reply(nil)
	case sysTrace:
		p.tracing.Store(c.on)
		from.Reply(nil)
	}
}

// formatState prints the state inside the process, so the text is taken
// while nothing else can change the state; a String method that panics
// gives an error text rather than a crash.
func formatState(h SysHandler) (out string) {
	defer func() {
		if x := recover(); x != nil {
			out = fmt.Sprintf("<state could not be printed: %v>", x)
		}
	}()
	return fmt.Sprintf("%+v", h.SysState())
}

// SysRequest sends a system message and waits for its answer; an answer
// that is an error is returned as the error.
func (n *Node) SysRequest(to Target, c *SysCall, timeout time.Duration) (any, error) {
	v, err := call(n, nil, to, c, timeout, true)
	if err != nil {
		return nil, err
	}
	if e, ok := v.(error); ok {
		return nil, e
	}
	return v, nil
}

// SysSuspend builds the system message of sys:suspend.
func SysSuspend() *SysCall { return &SysCall{op: sysSuspend} }

// SysResume builds the system message of sys:resume.
func SysResume() *SysCall { return &SysCall{op: sysResume} }

// SysGetState builds the system message of sys:get_state.
func SysGetState() *SysCall { return &SysCall{op: sysGetState} }

// SysReplaceState builds the system message of sys:replace_state.
func SysReplaceState(fn func(any) any) *SysCall { return &SysCall{op: sysReplaceState, fn: fn} }

// SysChangeCode builds the system message of sys:change_code.
func SysChangeCode(module any, version string, extra any) *SysCall {
	return &SysCall{op: sysChangeCode, module: module, version: version, extra: extra}
}

// SysStatistics builds the system message of sys:statistics(Pid, true|false).
func SysStatistics(on bool) *SysCall { return &SysCall{op: sysStatistics, on: on} }

// SysFormatState builds a system message that returns the state printed
// as text inside the process (what the observer shows).
func SysFormatState() *SysCall { return &SysCall{op: sysFormatState} }

// SysTrace builds the system message of sys:trace(Pid, true|false).
func SysTrace(on bool) *SysCall { return &SysCall{op: sysTrace, on: on} }

// StatisticsOf returns the counters since statistics were switched on for
// pid; false if they are off. It reads atomics and never waits on the process.
func (n *Node) StatisticsOf(pid PID) (Statistics, bool) {
	p := pid.p
	if p == nil {
		return Statistics{}, false
	}
	p.mu.Lock()
	b := p.statsBase
	p.mu.Unlock()
	if b == nil {
		return Statistics{}, false
	}
	return Statistics{
		Since:       b.since,
		MessagesIn:  p.msgsIn.Load() - b.in,
		MessagesOut: p.msgsOut.Load() - b.out,
		HandlerTime: time.Duration(p.handlerNanos.Load() - b.handler),
	}, true
}
