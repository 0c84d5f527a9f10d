package app

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/supervisor"
)

const wait = 5 * time.Second

// worker is a gen_server that stops with any reason it is cast.
type worker struct{}

func (worker) Init(*runtime.Process, any) genserver.Result { return genserver.Ok(nil) }
func (worker) HandleCall(_ *runtime.Process, req any, _ runtime.From, st any) genserver.Result {
	return genserver.Reply(req, st)
}
func (worker) HandleCast(_ *runtime.Process, msg any, st any) genserver.Result {
	return genserver.Stop(msg, st)
}
func (worker) HandleInfo(_ *runtime.Process, _ any, st any) genserver.Result {
	return genserver.NoReply(st)
}

// application is an application whose top supervisor has one worker and
// gives up on its first crash.
func application(name string, needs ...string) Application {
	return Application{
		Name:    name,
		Version: "1.0",
		Needs:   needs,
		Start: func(p *runtime.Process) (runtime.PID, error) {
			return supervisor.StartLink(p, supervisor.Spec{Children: []supervisor.ChildSpec{{
				ID: "worker",
				Start: func(p *runtime.Process) (runtime.PID, error) {
					return genserver.StartLink(p, worker{}, nil, genserver.Options{})
				},
			}}}, supervisor.Options{Module: name + "_sup"})
		},
	}
}

func controller(t *testing.T, apps ...Application) (*runtime.Node, *Controller, *runtime.Subscription) {
	t.Helper()
	n := runtime.NewNode(runtime.Options{})
	sub := n.Subscribe(1 << 12)
	t.Cleanup(sub.Close)
	c := NewController(n)
	for _, a := range apps {
		if err := c.Load(a); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.StopAll)
	return n, c, sub
}

// expect asserts the next application events, each "started app" or
// "stopped app reason".
func expect(t *testing.T, sub *runtime.Subscription, want ...string) {
	t.Helper()
	var got []string
	deadline := time.After(wait)
	for len(got) < len(want) {
		select {
		case e := <-sub.C:
			if e.Kind != runtime.EventApplication {
				continue
			}
			line := e.Text + " " + e.Name
			if e.Reason != nil {
				line += " " + runtime.FormatReason(e.Reason)
			}
			got = append(got, line)
		case <-deadline:
			t.Fatalf("events %q, want %q", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n got %s\nwant %s", strings.Join(got, "; "), strings.Join(want, "; "))
	}
}

// crashTop makes the application's worker crash, so its top supervisor
// (intensity 0) gives up with reason shutdown.
func crashTop(t *testing.T, n *runtime.Node, c *Controller, name string) {
	t.Helper()
	for _, r := range c.Running() {
		if r.Name == name {
			cs, err := supervisor.WhichChildren(n, r.Top, wait)
			if err != nil {
				t.Fatal(err)
			}
			_ = genserver.Cast(n, cs[0].PID, runtime.Atom("crash"))
			return
		}
	}
	t.Fatalf("%s is not running", name)
}

func names(rs []Running) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestStartStartsWhatAnApplicationNeedsFirst(t *testing.T) {
	_, c, sub := controller(t, application("db"), application("cache", "db"), application("web", "db", "cache"))
	if err := c.Start("web", Temporary); err != nil {
		t.Fatal(err)
	}
	expect(t, sub, "started db", "started cache", "started web")
	if got := names(c.Running()); !slices.Equal(got, []string{"db", "cache", "web"}) {
		t.Errorf("running %v", got)
	}
	if err := c.Start("cache", Temporary); err != nil {
		t.Errorf("starting a running application = %v, want nil", err)
	}

	c.StopAll()
	expect(t, sub, "stopped web stopped", "stopped cache stopped", "stopped db stopped")
	if len(c.Running()) != 0 {
		t.Errorf("running %v after StopAll", names(c.Running()))
	}
}

func TestStopShutsTheTreeDownInOrder(t *testing.T) {
	n, c, _ := controller(t, application("db"))
	if err := c.Start("db", Permanent); err != nil {
		t.Fatal(err)
	}
	top := c.Running()[0].Top
	w := n.Monitor(top)
	if err := c.Stop("db"); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-w.C:
		if d.Reason != runtime.Shutdown {
			t.Errorf("top supervisor exited %v, want shutdown", d.Reason)
		}
	default:
		t.Error("Stop returned before the top supervisor exited")
	}
	if c.Err() != nil {
		t.Errorf("stopping a permanent application stopped the node: %v", c.Err())
	}
	if err := c.Stop("db"); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Stop of a stopped application = %v, want not_started", err)
	}
}

func TestDependencyErrors(t *testing.T) {
	t.Run("a missing dependency is named and nothing starts", func(t *testing.T) {
		_, c, _ := controller(t, application("db"), application("web", "db", "auth"))
		err := c.Start("web", Temporary)
		var de *DependencyError
		if !errors.As(err, &de) || de.App != "web" || de.Missing != "auth" {
			t.Fatalf("Start = %v, want web needs auth", err)
		}
		if len(c.Running()) != 0 {
			t.Errorf("running %v", names(c.Running()))
		}
	})
	t.Run("a cycle is named", func(t *testing.T) {
		_, c, _ := controller(t, application("a", "b"), application("b", "a"))
		var de *DependencyError
		if err := c.Start("a", Temporary); !errors.As(err, &de) || !slices.Equal(de.Cycle, []string{"a", "b", "a"}) {
			t.Fatalf("Start = %v, want the cycle a b a", err)
		}
	})
	t.Run("an unknown application", func(t *testing.T) {
		_, c, _ := controller(t)
		if err := c.Start("x", Temporary); !errors.Is(err, ErrNotLoaded) {
			t.Fatalf("Start = %v, want not_loaded", err)
		}
	})
	t.Run("a dependency that fails to start undoes the others", func(t *testing.T) {
		broken := application("cache", "db")
		broken.Start = func(*runtime.Process) (runtime.PID, error) { return runtime.PID{}, errors.New("no memory") }
		_, c, sub := controller(t, application("db"), broken, application("web", "db", "cache"))
		var se *StartError
		if err := c.Start("web", Temporary); !errors.As(err, &se) || se.App != "cache" {
			t.Fatalf("Start = %v, want cache failed to start", err)
		}
		expect(t, sub, "started db", "stopped db stopped")
		if len(c.Running()) != 0 {
			t.Errorf("running %v", names(c.Running()))
		}
	})
}

func TestWhatAnExitMeansForTheNode(t *testing.T) {
	for _, tc := range []struct {
		name      string
		typ       StartType
		stop      func(t *testing.T, n *runtime.Node, c *Controller)
		reason    string
		terminate bool
	}{
		{"permanent, any reason", Permanent, func(t *testing.T, n *runtime.Node, c *Controller) {
			if err := supervisor.Stop(n, c.Running()[1].Top, runtime.Normal, wait); err != nil {
				t.Fatal(err)
			}
		}, "normal", true},
		{"transient, normal", Transient, func(t *testing.T, n *runtime.Node, c *Controller) {
			if err := supervisor.Stop(n, c.Running()[1].Top, runtime.Normal, wait); err != nil {
				t.Fatal(err)
			}
		}, "normal", false},
		{"transient, shutdown after its top supervisor gave up", Transient, func(t *testing.T, n *runtime.Node, c *Controller) {
			crashTop(t, n, c, "web")
		}, "shutdown", true},
		{"temporary, shutdown", Temporary, func(t *testing.T, n *runtime.Node, c *Controller) {
			crashTop(t, n, c, "web")
		}, "shutdown", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, c, sub := controller(t, application("db"), application("web", "db"))
			if err := c.Start("web", tc.typ); err != nil {
				t.Fatal(err)
			}
			expect(t, sub, "started db", "started web")
			tc.stop(t, n, c)
			expect(t, sub, "stopped web "+tc.reason)
			if !tc.terminate {
				if err := c.Err(); err != nil {
					t.Fatalf("Err = %v, want the node to keep running", err)
				}
				if got := names(c.Running()); !slices.Equal(got, []string{"db"}) {
					t.Errorf("running %v, want db", got)
				}
				return
			}
			var ee *ExitError
			if err := c.Err(); !errors.As(err, &ee) || ee.App != "web" || runtime.FormatReason(ee.Reason) != tc.reason {
				t.Fatalf("Err = %v, want web's exit", c.Err())
			}
			// Every other application is stopped, then Done closes.
			expect(t, sub, "stopped db stopped")
			select {
			case <-c.Done():
			case <-time.After(wait):
				t.Fatal("Done was not closed")
			}
			if len(c.Running()) != 0 {
				t.Errorf("running %v", names(c.Running()))
			}
			if err := c.Start("db", Temporary); !errors.Is(err, ErrTerminating) {
				t.Errorf("Start while terminating = %v", err)
			}
		})
	}
}
