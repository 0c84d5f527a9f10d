package supervisor

import (
	"time"

	"observer/internal/runtime"
)

// terminateChildren stops every child: static children one at a time in
// reverse start order, dynamic children all at once.
func (s *sup) terminateChildren(p *runtime.Process) {
	if s.flags.Strategy == SimpleOneForOne {
		s.terminateDynamic(p)
		return
	}
	items := s.children.items
	for i := len(items) - 1; i >= 0; i-- {
		if c := items[i]; c != nil {
			s.stopChild(p, c)
			s.cancelRetry(c)
		}
	}
}

// stopChild is OTP's shutdown/1: send the child shutdown (or kill for
// BrutalKill), kill it if it outlives its timeout, and wait for its
// monitor, not the link, so a child that unlinked cannot hang the
// supervisor. A child that does not trap exits dies inside ExitSignal;
// its reason is then read at once and no monitor is needed.
func (s *sup) stopChild(p *runtime.Process, c *child) {
	pid := c.pid
	if pid.IsZero() {
		return
	}
	s.detach(c)
	s.changed()
	timeout := c.spec.shutdown()
	signal := any(runtime.Shutdown)
	if timeout == BrutalKill {
		signal = runtime.Kill
	}
	p.ExitSignal(pid, signal)
	reason, dead := pid.ExitReason()
	if !dead {
		// If it dies between the two lines, the monitor reports noproc
		// and realReason reads the reason instead.
		w := s.node.Monitor(pid)
		if timeout == BrutalKill {
			reason = s.waitDown(p, w)
		} else {
			reason = s.waitDownOrKill(p, pid, w, timeout)
		}
	}
	s.report(ReportChildTerminated, c, pid, realReason(pid, reason))
}

// realReason replaces the noproc of a monitor set on a child that had
// already exited with its exit reason, which OTP takes from the EXIT
// message it flushes.
func realReason(pid runtime.PID, reason any) any {
	if reason == runtime.NoProc {
		if r, dead := pid.ExitReason(); dead {
			return r
		}
	}
	return reason
}

// waitDown waits for a stopped child's DOWN. If the supervisor itself is
// killed meanwhile, its code unwinds here.
func (s *sup) waitDown(p *runtime.Process, w *runtime.Watch) any {
	select {
	case d := <-w.C:
		return d.Reason
	default:
	}
	select {
	case d := <-w.C:
		return d.Reason
	case <-p.Context().Done():
		s.exit(p, runtime.Killed)
		return nil
	}
}

// waitDownOrKill waits up to timeout for the DOWN, then kills the child.
func (s *sup) waitDownOrKill(p *runtime.Process, pid runtime.PID, w *runtime.Watch, timeout time.Duration) any {
	if timeout == Infinity {
		return s.waitDown(p, w)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case d := <-w.C:
		return d.Reason
	case <-t.C:
		p.ExitSignal(pid, runtime.Kill)
		return s.waitDown(p, w)
	case <-p.Context().Done():
		s.exit(p, runtime.Killed)
		return nil
	}
}

// terminateDynamic is OTP's terminate_dynamic_children/1: every child gets
// its exit signal first, then the supervisor waits for all of them under
// one timer, so they clean up in parallel.
func (s *sup) terminateDynamic(p *runtime.Process) {
	type stopping struct {
		c   *child
		pid runtime.PID
		w   *runtime.Watch
	}
	timeout := s.template.shutdown()
	signal := any(runtime.Shutdown)
	if timeout == BrutalKill {
		signal = runtime.Kill
	}
	all := make([]stopping, 0, s.dynamic.live)
	for _, c := range s.dynamic.items {
		if c == nil || c.pid.IsZero() {
			continue
		}
		pid := c.pid
		s.detach(c)
		all = append(all, stopping{c, pid, s.node.Monitor(pid)})
	}
	// Signal only once every monitor is in place: a child stopping early
	// must not be missed.
	for _, x := range all {
		p.ExitSignal(x.pid, signal)
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for i, x := range all {
		var reason any
		select {
		case d := <-x.w.C:
			reason = d.Reason
		case <-expired:
			expired = nil
			for _, y := range all[i:] {
				p.ExitSignal(y.pid, runtime.Kill)
			}
			reason = s.waitDown(p, x.w)
		case <-p.Context().Done():
			s.exit(p, runtime.Killed)
		}
		s.report(ReportChildTerminated, x.c, x.pid, realReason(x.pid, reason))
	}
	s.changed()
}
