package supervisor

import (
	"errors"
	"fmt"
	"time"

	"observer/internal/runtime"
)

// Child is one entry of WhichChildren: {Id, Child, Type, Modules}.
type Child struct {
	// ID is empty for the children of a simple_one_for_one supervisor.
	ID string
	// PID is zero (undefined) when the child has no process.
	PID runtime.PID
	// Restarting marks a child in a retry loop (OTP shows the atom restarting).
	Restarting bool
	Type       ChildType
	Module     string
}

// Counts is the result of CountChildren.
type Counts struct {
	// Specs counts child specifications, running or not.
	Specs int
	// Active counts children whose process is alive.
	Active      int
	Supervisors int
	Workers     int
}

type (
	startChildReq       struct{ spec ChildSpec }
	startDynamicReq     struct{ args any }
	terminateChildReq   struct{ id string }
	terminateDynamicReq struct{ pid runtime.PID }
	restartChildReq     struct{ id string }
	deleteChildReq      struct{ id string }
	whichChildrenReq    struct{}
	whichChildReq       struct{ id string }
	countChildrenReq    struct{}
	getChildSpecReq     struct{ id string }
	stopReq             struct{ reason any }
)

// reply is every call's answer.
type reply struct {
	pid runtime.PID
	err error
	v   any
}

// call makes an API call; timeout may be runtime.Infinity, as OTP's
// supervisor calls use.
func call(c runtime.Caller, sup runtime.Target, req any, timeout time.Duration) (reply, error) {
	v, err := c.Call(sup, req, timeout)
	if err != nil {
		return reply{}, err
	}
	r, ok := v.(reply)
	if !ok {
		return reply{}, fmt.Errorf("supervisor: %v answered %T; it is not a supervisor", sup, v)
	}
	return r, r.err
}

// StartChild adds a child spec and starts it (supervisor:start_child/2).
// An ignored start returns the zero PID and no error; a child whose ID is
// taken gives *AlreadyStartedError or ErrAlreadyPresent.
func StartChild(c runtime.Caller, sup runtime.Target, spec ChildSpec, timeout time.Duration) (runtime.PID, error) {
	r, err := call(c, sup, startChildReq{spec}, timeout)
	return r.pid, err
}

// StartDynamicChild starts a child of a simple_one_for_one supervisor from
// its template with args (supervisor:start_child(Sup, ExtraArgs)).
func StartDynamicChild(c runtime.Caller, sup runtime.Target, args any, timeout time.Duration) (runtime.PID, error) {
	r, err := call(c, sup, startDynamicReq{args}, timeout)
	return r.pid, err
}

// TerminateChild stops the child and keeps its spec, unless it is
// temporary (supervisor:terminate_child/2).
func TerminateChild(c runtime.Caller, sup runtime.Target, id string, timeout time.Duration) error {
	_, err := call(c, sup, terminateChildReq{id}, timeout)
	return err
}

// TerminateDynamicChild stops the simple_one_for_one child pid
// (supervisor:terminate_child(Sup, Pid)).
func TerminateDynamicChild(c runtime.Caller, sup runtime.Target, pid runtime.PID, timeout time.Duration) error {
	_, err := call(c, sup, terminateDynamicReq{pid}, timeout)
	return err
}

// RestartChild starts a stopped child again (supervisor:restart_child/2).
func RestartChild(c runtime.Caller, sup runtime.Target, id string, timeout time.Duration) (runtime.PID, error) {
	r, err := call(c, sup, restartChildReq{id}, timeout)
	return r.pid, err
}

// DeleteChild removes a stopped child's spec (supervisor:delete_child/2).
func DeleteChild(c runtime.Caller, sup runtime.Target, id string, timeout time.Duration) error {
	_, err := call(c, sup, deleteChildReq{id}, timeout)
	return err
}

// WhichChildren lists the children newest first (supervisor:which_children/1).
func WhichChildren(c runtime.Caller, sup runtime.Target, timeout time.Duration) ([]Child, error) {
	r, err := call(c, sup, whichChildrenReq{}, timeout)
	children, _ := r.v.([]Child)
	return children, err
}

// WhichChild returns one child (supervisor:which_child/2, OTP 26).
func WhichChild(c runtime.Caller, sup runtime.Target, id string, timeout time.Duration) (Child, error) {
	r, err := call(c, sup, whichChildReq{id}, timeout)
	ch, _ := r.v.(Child)
	return ch, err
}

// CountChildren counts the children (supervisor:count_children/1).
func CountChildren(c runtime.Caller, sup runtime.Target, timeout time.Duration) (Counts, error) {
	r, err := call(c, sup, countChildrenReq{}, timeout)
	n, _ := r.v.(Counts)
	return n, err
}

// GetChildSpec returns a child's spec (supervisor:get_childspec/2).
func GetChildSpec(c runtime.Caller, sup runtime.Target, id string, timeout time.Duration) (ChildSpec, error) {
	r, err := call(c, sup, getChildSpecReq{id}, timeout)
	spec, _ := r.v.(ChildSpec)
	return spec, err
}

// Stop stops the supervisor with reason after stopping its children in
// reverse start order, and returns once it is gone (gen_server:stop/3).
func Stop(n *runtime.Node, sup runtime.Target, reason any, timeout time.Duration) error {
	w := n.Monitor(sup)
	defer w.Cancel()
	if _, err := call(n, sup, stopReq{reason}, timeout); err != nil {
		var ee *runtime.ExitError
		if !errors.As(err, &ee) || runtime.SameReason(ee.Reason, runtime.NoProc) {
			return err
		}
	}
	<-w.C
	return nil
}

// handleCall serves the admin API, deciding as supervisor.erl's handle_call/3.
func (s *sup) handleCall(p *runtime.Process, req *runtime.Request) {
	simple := s.flags.Strategy == SimpleOneForOne
	var r reply
	switch m := req.Body.(type) {
	case startChildReq:
		if simple {
			r.err = ErrSimpleOneForOne
			break
		}
		r.pid, r.err = s.startNewChild(p, m.spec)
	case startDynamicReq:
		if !simple {
			r.err = ErrNotSimpleOneForOne
			break
		}
		r.pid, r.err = s.startDynamic(p, m.args)
	case terminateChildReq:
		if simple {
			r.err = ErrSimpleOneForOne
			break
		}
		c := s.byID[m.id]
		if c == nil {
			r.err = ErrNotFound
			break
		}
		s.stopChild(p, c)
		s.delChild(c)
	case terminateDynamicReq:
		r.err = s.terminateDynamicChild(p, m.pid)
	case restartChildReq:
		if simple {
			r.err = ErrSimpleOneForOne
			break
		}
		r.pid, r.err = s.restartChild(p, m.id)
	case deleteChildReq:
		if simple {
			r.err = ErrSimpleOneForOne
			break
		}
		c := s.byID[m.id]
		switch {
		case c == nil:
			r.err = ErrNotFound
		case c.restarting:
			r.err = ErrRestarting
		case !c.pid.IsZero():
			r.err = ErrRunning
		default:
			s.forget(c)
		}
	case whichChildrenReq:
		r.v = s.whichChildren()
	case whichChildReq:
		if simple {
			r.err = ErrSimpleOneForOne
			break
		}
		if c := s.byID[m.id]; c != nil {
			r.v = c.entry(m.id)
		} else {
			r.err = ErrNotFound
		}
	case countChildrenReq:
		r.v = s.countChildren()
	case getChildSpecReq:
		switch c := s.byID[m.id]; {
		case c != nil:
			r.v = c.spec
		case simple && m.id == s.template.ID:
			r.v = s.template
		default:
			r.err = ErrNotFound
		}
	case stopReq:
		s.report(ReportShutdown, nil, runtime.PID{}, m.reason)
		s.terminateChildren(p)
		req.From.Reply(reply{})
		s.exit(p, m.reason)
	default:
		r.err = fmt.Errorf("supervisor: unknown call %T", req.Body)
	}
	req.From.Reply(r)
}

// startNewChild is handle_start_child/2.
func (s *sup) startNewChild(p *runtime.Process, spec ChildSpec) (runtime.PID, error) {
	if err := spec.check(s.flags); err != nil {
		return runtime.PID{}, err
	}
	if old := s.byID[spec.ID]; old != nil {
		if !old.pid.IsZero() {
			return runtime.PID{}, &AlreadyStartedError{PID: old.pid}
		}
		return runtime.PID{}, ErrAlreadyPresent
	}
	c := &child{spec: spec}
	pid, err := s.startProc(p, c)
	switch {
	case errors.Is(err, ErrIgnore):
		if spec.Restart != Temporary {
			s.save(c)
		}
		return runtime.PID{}, nil
	case err != nil:
		return runtime.PID{}, err
	}
	s.save(c)
	s.setPID(c, pid)
	s.report(ReportChildStarted, c, pid, nil)
	return pid, nil
}

func (s *sup) save(c *child) {
	s.children.push(c)
	s.byID[c.spec.ID] = c
	s.changed()
}

func (s *sup) startDynamic(p *runtime.Process, args any) (runtime.PID, error) {
	c := &child{spec: s.template, args: args}
	pid, err := s.startProc(p, c)
	switch {
	case errors.Is(err, ErrIgnore):
		return runtime.PID{}, nil
	case err != nil:
		return runtime.PID{}, err
	}
	if c.spec.Restart == Temporary {
		c.args = nil // never restarted, so the arguments are not needed again
	}
	s.dynamic.push(c)
	s.setPID(c, pid)
	s.report(ReportChildStarted, c, pid, nil)
	return pid, nil
}

// terminateDynamicChild is terminate_child(Sup, Pid). As in OTP, a pid
// that is no child is not_found while alive and ok once dead.
func (s *sup) terminateDynamicChild(p *runtime.Process, pid runtime.PID) error {
	c := s.byPID[pid]
	if s.flags.Strategy != SimpleOneForOne || c == nil {
		if s.flags.Strategy == SimpleOneForOne && !pid.Alive() {
			return nil
		}
		return ErrNotFound
	}
	s.stopChild(p, c)
	s.forget(c)
	return nil
}

func (s *sup) restartChild(p *runtime.Process, id string) (runtime.PID, error) {
	c := s.byID[id]
	switch {
	case c == nil:
		return runtime.PID{}, ErrNotFound
	case c.restarting:
		return runtime.PID{}, ErrRestarting
	case !c.pid.IsZero():
		return runtime.PID{}, ErrRunning
	}
	pid, err := s.startProc(p, c)
	switch {
	case errors.Is(err, ErrIgnore):
		return runtime.PID{}, nil
	case err != nil:
		return runtime.PID{}, err
	}
	s.setPID(c, pid)
	s.report(ReportChildStarted, c, pid, nil)
	return pid, nil
}

func (c *child) entry(id string) Child {
	return Child{ID: id, PID: c.pid, Restarting: c.restarting, Type: c.spec.Type, Module: c.spec.Module}
}

func (s *sup) whichChildren() []Child {
	list, simple := &s.children, s.flags.Strategy == SimpleOneForOne
	if simple {
		list = &s.dynamic
	}
	out := make([]Child, 0, list.live)
	for i := len(list.items) - 1; i >= 0; i-- {
		c := list.items[i]
		if c == nil {
			continue
		}
		id := c.spec.ID
		if simple {
			id = ""
		}
		out = append(out, c.entry(id))
	}
	return out
}

func (s *sup) countChildren() Counts {
	var n Counts
	if s.flags.Strategy == SimpleOneForOne {
		size := s.dynamic.live
		n.Specs = 1
		for _, c := range s.dynamic.items {
			if c != nil && !c.restarting {
				n.Active++
			}
		}
		if s.template.Type == Supervisor {
			n.Supervisors = size
		} else {
			n.Workers = size
		}
		return n
	}
	for _, c := range s.children.items {
		if c == nil {
			continue
		}
		n.Specs++
		if c.pid.Alive() {
			n.Active++
		}
		if c.spec.Type == Supervisor {
			n.Supervisors++
		} else {
			n.Workers++
		}
	}
	return n
}
