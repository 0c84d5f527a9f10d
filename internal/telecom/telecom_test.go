package telecom

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/supervisor"
	"observer/internal/runtime/sys"
	"observer/internal/telecom/routing"
)

const wait = 5 * time.Second

// quiet returns a config with the load generator off and the ledger in a
// temporary directory.
func quiet(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Load.Enabled = false
	cfg.Billing.DataDir = t.TempDir()
	return cfg
}

func startSystem(t *testing.T, cfg Config) *System {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(0) })
	return s
}

func TestQuickStartRoutesFortune(t *testing.T) {
	s := startSystem(t, quiet(t))
	for name, route := range map[string]func() (routing.Result, error){
		"fast path": func() (routing.Result, error) { return s.Router.Route("CALL-001", "1-800-FORTUNE") },
		"through the router process": func() (routing.Result, error) {
			return s.Router.RouteViaServer(s.Node, "CALL-001", "1-800-FORTUNE", wait)
		},
	} {
		res, err := route()
		if err != nil || res.URI != "sip:fortune@telecom.example.com" {
			t.Fatalf("%s: %v %v", name, res.URI, err)
		}
	}
	if _, err := s.Router.Route("CALL-002", "1-800-FOR*UNE"); !errors.Is(err, routing.ErrInvalidNumber) {
		t.Fatalf("bad number: %v", err)
	}
}

func TestOverloadDropsNewCalls(t *testing.T) {
	cfg := quiet(t)
	cfg.Router.OverloadLimit = 3
	s := startSystem(t, cfg)
	router, _ := s.Node.Whereis(RouterName)
	if err := sys.Suspend(s.Node, router, wait); err != nil {
		t.Fatal(err)
	}
	// Three calls queue behind the suspended router; the fourth is dropped.
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			_, err := s.Router.RouteViaServer(s.Node, "C", "112", wait)
			errs <- err
		}()
	}
	for router.MailboxLen() < 3 {
		sub := s.Node.Subscribe(1) // yield until the three calls are queued
		select {
		case <-sub.C:
		case <-time.After(time.Millisecond):
		}
		sub.Close()
	}
	if _, err := s.Router.RouteViaServer(s.Node, "C", "112", wait); !errors.Is(err, ErrOverload) {
		t.Fatalf("fourth call: %v", err)
	}
	if d := s.Router.Metrics().Dropped; d != 1 {
		t.Fatalf("dropped %d", d)
	}
	sys.Resume(s.Node, router, wait)
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("queued call: %v", err)
		}
	}
}

func TestKillTheRouterUnderLoad(t *testing.T) {
	cfg := quiet(t)
	cfg.Load.Enabled = true
	cfg.Load.Rate = 2000
	cfg.Load.Duration = Duration{time.Millisecond}
	cfg.Load.RingTime = Duration{time.Millisecond}
	s := startSystem(t, cfg)
	sub := s.Node.Subscribe(1 << 16)
	defer sub.Close()
	old, _ := s.Node.Whereis(RouterName)
	// Wait until calls are completing.
	for s.Sessions.Stats().Completed < 50 {
		<-sub.C
	}
	s.Node.Exit(old, runtime.Kill)
	// The supervisor restarts it under the same name.
	var fresh runtime.PID
	for fresh.IsZero() {
		e := <-sub.C
		if e.Kind == runtime.EventSupervisor && e.Text == "child_restarted" {
			if pid, ok := s.Node.Whereis(RouterName); ok && pid != old {
				fresh = pid
			}
		}
	}
	// The supervisor publishes its Info for the observer after the restart.
	top := mustWhereis(t, s, TopSupName)
	eventually(t, func() bool {
		info, _ := supervisor.Inspect(top)
		for _, c := range info.Children {
			if c.ID == RouterName {
				return c.Restarts == 1 && runtime.SameReason(c.LastExit, runtime.Killed) && c.PID == fresh
			}
		}
		return false
	})
	// Later calls route again, on the same table.
	before := s.Sessions.Stats().Completed
	for s.Sessions.Stats().Completed < before+50 {
		<-sub.C
	}
	if res, err := s.Router.Route("CALL-X", "1-800-FORTUNE"); err != nil || res.URI != "sip:fortune@telecom.example.com" {
		t.Fatalf("after restart: %v %v", res, err)
	}
	// Calls in flight during the restart failed cleanly, with a reason.
	st := s.Sessions.Stats()
	total := st.Completed
	for _, n := range st.Failed {
		total += n
	}
	if total > st.Started {
		t.Fatalf("more outcomes (%d) than calls (%d)", total, st.Started)
	}
}

// eventually waits for cond, re-checking every millisecond, and fails the
// test if it does not hold within the long bound only a bug reaches.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(wait)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("condition never held")
		}
	}
}

func mustWhereis(t *testing.T, s *System, name string) runtime.PID {
	t.Helper()
	pid, ok := s.Node.Whereis(name)
	if !ok {
		t.Fatalf("%s is not registered", name)
	}
	return pid
}

func TestCallSessionLifecycle(t *testing.T) {
	s := startSystem(t, quiet(t))
	cdrs := make(chan CDR, 4)
	s.Sessions.SetSink(func(_ *runtime.Process, c CDR) { cdrs <- c })
	t.Run("a call completes and produces a record", func(t *testing.T) {
		pid, err := s.Sessions.StartCall(s.Node, CallSpec{ID: "CALL-1", Caller: "ACC-001", Number: "1-800-FORTUNE",
			Account: "ACC-001", Ring: time.Millisecond, Talk: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		w := s.Node.Monitor(pid)
		c := <-cdrs
		if c.CallID != "CALL-1" || c.URI != "sip:fortune@telecom.example.com" || c.Account != "ACC-001" || c.Duration < 5*time.Millisecond {
			t.Fatalf("cdr %+v", c)
		}
		if d := <-w.C; d.Reason != runtime.Normal {
			t.Fatalf("session exit %v", d.Reason)
		}
	})
	t.Run("the state machine walks setup, routing, ringing, connected", func(t *testing.T) {
		sub := s.Node.Subscribe(64)
		defer sub.Close()
		pid, _ := s.Sessions.StartCall(s.Node, CallSpec{ID: "CALL-2", Number: "112", Ring: time.Hour, Talk: time.Hour})
		st, err := s.Node.Call(pid, "state?", wait)
		if err != nil || st != "ringing" {
			t.Fatalf("state %v %v", st, err)
		}
		s.Node.Send(pid, "noise") // an info message changes nothing
		if st, _ := s.Node.Call(pid, "state?", wait); st != "ringing" {
			t.Fatalf("state %v", st)
		}
	})
	t.Run("a call to no route fails with no_route", func(t *testing.T) {
		before := s.Sessions.Stats().Failed[FailNoRoute]
		sub := s.Node.Subscribe(256)
		defer sub.Close()
		pid, _ := s.Sessions.StartCall(s.Node, CallSpec{ID: "CALL-3", Number: "0000"})
		for e := range sub.C {
			if e.Kind == runtime.EventExit && e.PID == pid {
				if r, ok := e.Reason.(runtime.ShutdownReason); !ok || r.Term != FailNoRoute {
					t.Fatalf("exit %v", e.Reason)
				}
				break
			}
		}
		if s.Sessions.Stats().Failed[FailNoRoute] != before+1 {
			t.Fatal("no_route not counted")
		}
	})
	t.Run("an unanswered call fails with no_answer", func(t *testing.T) {
		cfg := quiet(t)
		cfg.Sessions.RingTimeout = Duration{time.Millisecond}
		s2 := startSystem(t, cfg)
		pid, _ := s2.Sessions.StartCall(s2.Node, CallSpec{ID: "CALL-4", Number: "112", Ring: time.Hour})
		w := s2.Node.Monitor(pid)
		if r := (<-w.C).Reason.(runtime.ShutdownReason); r.Term != FailNoAnswer {
			t.Fatalf("exit %v", r)
		}
	})
}

func TestLoadGeneratorRateAndClosedLoop(t *testing.T) {
	cfg := quiet(t)
	cfg.Load.Duration = Duration{time.Millisecond}
	cfg.Load.RingTime = Duration{time.Millisecond}
	s := startSystem(t, cfg)
	if err := s.Load.SetRate(s.Node, 1000); err != nil {
		t.Fatal(err)
	}
	if s.Load.Rate() != 1000 {
		t.Fatalf("rate %v", s.Load.Rate())
	}
	sub := s.Node.Subscribe(1 << 14)
	defer sub.Close()
	for s.Load.Stats().Issued < 100 {
		<-sub.C
	}
	if r, _ := s.Load.Adjust(s.Node, true); r != 1250 {
		t.Fatalf("+ gave %v", r)
	}
	if err := s.Load.SetRate(s.Node, -1); err == nil {
		t.Fatal("negative rate accepted")
	}
	s.Load.SetRate(s.Node, 0)
	if err := s.Load.SetClosedLoop(s.Node, 8); err != nil {
		t.Fatal(err)
	}
	before := s.Sessions.Stats().Completed
	for s.Sessions.Stats().Completed < before+200 {
		<-sub.C
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, text, want string }{
		{"unknown key", "[router]\nroutez = \"x\"\n", "router.routez"},
		{"wrong type", "[load]\nrate = \"fast\"\n", "rate"},
		{"bad value", "[load]\nmode = \"sideways\"\n", "load.mode"},
		{"bad duration", "[sessions]\nring_timeout = \"soon\"\n", "ring_timeout"},
		{"broken toml", "[load\n", "line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "c.toml")
			os.WriteFile(path, []byte(tc.text), 0o644)
			_, err := LoadConfigFile(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v should name %q", err, tc.want)
			}
		})
	}
	path := filepath.Join(dir, "ok.toml")
	os.WriteFile(path, []byte("[load]\nrate = 5\n[router]\noverload_limit = 7\n"), 0o644)
	cfg, err := LoadConfigFile(path)
	if err != nil || cfg.Load.Rate != 5 || cfg.Router.OverloadLimit != 7 || cfg.Load.Mode != "open" {
		t.Fatalf("%+v %v", cfg.Load, err)
	}
}
