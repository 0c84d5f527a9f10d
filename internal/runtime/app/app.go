// Package app is OTP's application controller on the observer runtime: an
// application is a named top supervisor with the applications it needs,
// started in dependency order and stopped in reverse, and its start type
// decides what its unexpected exit means for the node.
package app

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"observer/internal/runtime"
)

// StartType says what an application's exit means for the node.
type StartType uint8

// The start types. The zero value is Temporary, application:start/1's default.
const (
	// Temporary: the exit is reported and nothing else happens.
	Temporary StartType = iota
	// Transient: an exit with a reason other than normal stops every other
	// application and the node.
	Transient
	// Permanent: any exit stops every other application and the node.
	Permanent
)

var startTypeNames = [...]string{"temporary", "transient", "permanent"}

// String returns the start type's Erlang name.
func (t StartType) String() string {
	if int(t) < len(startTypeNames) {
		return startTypeNames[t]
	}
	return fmt.Sprintf("start_type(%d)", uint8(t))
}

// Application is an application resource: its name, the applications it
// needs (the .app file's applications key) and how to start its top
// supervisor.
type Application struct {
	Name    string
	Version string
	Needs   []string
	// Start starts the top supervisor linked to p, the application master,
	// typically with supervisor.StartLink(p, spec, opts).
	Start func(p *runtime.Process) (runtime.PID, error)
}

// Stopped is the reason an application stopped by Stop or StopAll exits
// with, as OTP reports it.
const Stopped runtime.Atom = "stopped"

// Errors of the controller.
var (
	// ErrNotLoaded: no application of that name is loaded.
	ErrNotLoaded = errors.New("not_loaded")
	// ErrAlreadyLoaded: an application of that name is loaded.
	ErrAlreadyLoaded = errors.New("already_loaded")
	// ErrNotStarted: the application is not running.
	ErrNotStarted = errors.New("not_started")
	// ErrTerminating: the node is stopping after a permanent application exited.
	ErrTerminating = errors.New("the node is terminating")
)

// DependencyError is an application that cannot start because an
// application it needs is not loaded, or because its needs form a cycle.
type DependencyError struct {
	App string
	// Missing is the application that is not loaded, empty for a cycle.
	Missing string
	// Cycle is the chain of needs that leads back to its first element.
	Cycle []string
}

// Error describes the dependency problem.
func (e *DependencyError) Error() string {
	if len(e.Cycle) > 0 {
		return fmt.Sprintf("application %s: circular dependencies %v", e.App, e.Cycle)
	}
	return fmt.Sprintf("application %s needs %s, which is not loaded", e.App, e.Missing)
}

// StartError is an application whose top supervisor failed to start.
type StartError struct {
	App string
	Err error
}

// Error describes the failure.
func (e *StartError) Error() string {
	return fmt.Sprintf("application %s failed to start: %v", e.App, e.Err)
}

// Unwrap returns the start function's error.
func (e *StartError) Unwrap() error { return e.Err }

// ExitError is why the node must terminate: a permanent application exited,
// or a transient one exited with a reason other than normal.
type ExitError struct {
	App    string
	Type   StartType
	Reason any
}

// Error describes the exit.
func (e *ExitError) Error() string {
	return fmt.Sprintf("application %s exited with reason %s (type %v)", e.App, runtime.FormatReason(e.Reason), e.Type)
}

// Report is the Data of an EventApplication event.
type Report struct {
	App     string
	Version string
	Type    StartType
	// Top is the application's top supervisor.
	Top runtime.PID
}

// Running describes a started application (application:which_applications/0).
type Running struct {
	Name    string
	Version string
	Type    StartType
	Master  runtime.PID
	Top     runtime.PID
}

// Controller is a node's application controller. Its methods are safe for
// concurrent use; Start and Stop block until the trees are up or down.
type Controller struct {
	node *runtime.Node

	mu      sync.Mutex
	loaded  map[string]Application
	running map[string]*running
	order   []string // running applications in start order
	err     error
	done    chan struct{}
}

type running struct {
	app      Application
	typ      StartType
	master   runtime.PID
	top      runtime.PID
	stopping bool
	// gone is closed once the application master has exited.
	gone chan struct{}
}

// stopMsg asks an application master to stop its tree.
type stopMsg struct{}

// NewController returns the application controller of node n.
func NewController(n *runtime.Node) *Controller {
	return &Controller{
		node:    n,
		loaded:  make(map[string]Application),
		running: make(map[string]*running),
		done:    make(chan struct{}),
	}
}

// Load registers an application (application:load/1).
func (c *Controller) Load(a Application) error {
	if a.Name == "" || a.Start == nil {
		return fmt.Errorf("app: an application needs a Name and a Start: %w", runtime.ErrBadArg)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.loaded[a.Name]; ok {
		return fmt.Errorf("app: %s: %w", a.Name, ErrAlreadyLoaded)
	}
	c.loaded[a.Name] = a
	return nil
}

// Done is closed when the node must terminate because a permanent
// application exited, or a transient one exited abnormally, after every
// other application has been stopped. It stands for OTP's halt of the node:
// the program decides what terminating means.
func (c *Controller) Done() <-chan struct{} { return c.done }

// Err returns the *ExitError that closed Done, nil before.
func (c *Controller) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Start starts an application and, first and in order, every application
// it needs that is not running, all with start type typ
// (application:ensure_all_started/2). A running application is left as it
// is. If one fails, those this call started are stopped again.
func (c *Controller) Start(name string, typ StartType) error {
	plan, err := c.plan(name)
	if err != nil {
		return err
	}
	var started []string
	for _, a := range plan {
		ok, err := c.startOne(a, typ)
		if err != nil {
			for _, s := range slices.Backward(started) {
				_ = c.Stop(s)
			}
			return err
		}
		if ok {
			started = append(started, a.Name)
		}
	}
	return nil
}

// plan orders name's needs depth first, each before its dependents.
func (c *Controller) plan(name string) ([]Application, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var plan []Application
	state := make(map[string]int) // 1 visiting, 2 planned
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			i := slices.Index(path, n)
			return &DependencyError{App: name, Cycle: append(slices.Clone(path[i:]), n)}
		case 2:
			return nil
		}
		a, ok := c.loaded[n]
		if !ok {
			if len(path) == 0 {
				return fmt.Errorf("app: %s: %w", n, ErrNotLoaded)
			}
			return &DependencyError{App: path[len(path)-1], Missing: n}
		}
		state[n] = 1
		for _, d := range a.Needs {
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		plan = append(plan, a)
		return nil
	}
	if err := visit(name, nil); err != nil {
		return nil, err
	}
	return plan, nil
}

// startOne starts a under its application master; false if it was running.
func (c *Controller) startOne(a Application, typ StartType) (bool, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return false, ErrTerminating
	}
	if _, ok := c.running[a.Name]; ok {
		c.mu.Unlock()
		return false, nil
	}
	r := &running{app: a, typ: typ, gone: make(chan struct{})}
	c.running[a.Name] = r
	c.mu.Unlock()

	ack := make(chan error, 1)
	_, err := c.node.Spawn(func(p *runtime.Process) { c.master(p, r, ack) }, runtime.SpawnOpts{TrapExit: true})
	if err == nil {
		err = <-ack
	}
	if err != nil {
		c.mu.Lock()
		delete(c.running, a.Name)
		c.mu.Unlock()
		return false, &StartError{App: a.Name, Err: err}
	}
	return true, nil
}

// master is the application master: it starts the top supervisor linked to
// itself, stops it on request, and reports its exit.
func (c *Controller) master(p *runtime.Process, r *running, ack chan<- error) {
	defer close(r.gone)
	p.SetModule(runtime.ModuleInfo{Behaviour: "application_master", Module: r.app.Name, Version: r.app.Version})
	top, err := r.app.Start(p)
	if err == nil && top.IsZero() {
		err = errors.New("the start function returned no top supervisor")
	}
	if err != nil {
		ack <- err
		return
	}
	// Recorded and reported before the acknowledgement, so that an exit
	// of the tree right after it finds the application running.
	c.mu.Lock()
	r.master, r.top = p.Self(), top
	c.order = append(c.order, r.app.Name)
	c.mu.Unlock()
	c.publish("started", r, nil)
	ack <- nil
	for {
		msg, _ := p.Receive(runtime.Infinity)
		switch m := msg.(type) {
		case stopMsg:
			// The top supervisor treats its parent's exit signal as the
			// order to stop its tree in reverse start order.
			p.ExitSignal(top, runtime.Shutdown)
			for {
				if x, _ := p.Receive(runtime.Infinity); isExitOf(x, top) {
					return
				}
			}
		case runtime.ExitMsg:
			if m.From == top {
				c.exited(r, m.Reason)
				return
			}
		}
	}
}

func isExitOf(msg any, pid runtime.PID) bool {
	m, ok := msg.(runtime.ExitMsg)
	return ok && m.From == pid
}

// exited handles an application whose top supervisor exited on its own.
func (c *Controller) exited(r *running, reason any) {
	c.mu.Lock()
	if r.stopping {
		// Stop is already waiting for it and will report it.
		c.mu.Unlock()
		return
	}
	c.forget(r.app.Name)
	fatal := r.typ == Permanent || r.typ == Transient && !runtime.IsNormal(reason)
	if fatal && c.err == nil {
		// Decided before the report, so whoever sees the report sees Err.
		c.err = &ExitError{App: r.app.Name, Type: r.typ, Reason: reason}
	} else {
		fatal = false
	}
	c.mu.Unlock()
	c.publish("stopped", r, reason)
	if fatal {
		// Stopping the others runs beside this master, which must end
		// first: stopping waits for every master.
		go func() {
			c.StopAll()
			close(c.done)
		}()
	}
}

// Stop stops a running application's tree (application:stop/1). Its exit
// reason is Stopped, and the start type has no effect.
func (c *Controller) Stop(name string) error {
	c.mu.Lock()
	r, ok := c.running[name]
	if !ok || r.stopping {
		c.mu.Unlock()
		return fmt.Errorf("app: %s: %w", name, ErrNotStarted)
	}
	r.stopping = true
	c.mu.Unlock()
	_ = c.node.Send(r.master, stopMsg{})
	<-r.gone
	c.mu.Lock()
	c.forget(name)
	c.mu.Unlock()
	c.publish("stopped", r, Stopped)
	return nil
}

// StopAll stops every running application in reverse start order, as a
// node does when it stops.
func (c *Controller) StopAll() {
	for {
		c.mu.Lock()
		if len(c.order) == 0 {
			c.mu.Unlock()
			return
		}
		name := c.order[len(c.order)-1]
		r := c.running[name]
		c.mu.Unlock()
		if err := c.Stop(name); err != nil {
			// Another Stop is under way, or the tree exited on its own
			// meanwhile: either way its master is ending.
			<-r.gone
			c.mu.Lock()
			if c.running[name] == r {
				c.forget(name)
			}
			c.mu.Unlock()
		}
	}
}

// forget removes a running application; c.mu is held.
func (c *Controller) forget(name string) {
	delete(c.running, name)
	if i := slices.Index(c.order, name); i >= 0 {
		c.order = slices.Delete(c.order, i, i+1)
	}
}

// Running lists the running applications in start order.
func (c *Controller) Running() []Running {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Running, 0, len(c.order))
	for _, name := range c.order {
		r := c.running[name]
		out = append(out, Running{Name: name, Version: r.app.Version, Type: r.typ, Master: r.master, Top: r.top})
	}
	return out
}

// publish reports an application event: started, or stopped with reason.
func (c *Controller) publish(text string, r *running, reason any) {
	c.node.Publish(runtime.Event{
		Kind:   runtime.EventApplication,
		PID:    r.master,
		Other:  r.top,
		Name:   r.app.Name,
		Text:   text,
		Reason: reason,
		Data:   Report{App: r.app.Name, Version: r.app.Version, Type: r.typ, Top: r.top},
	})
}
