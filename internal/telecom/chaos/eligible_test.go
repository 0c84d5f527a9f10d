package chaos

import (
	"testing"

	"observer/internal/runtime"
)

func TestEligible(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	self, err := n.Spawn(func(p *runtime.Process) { p.Receive(runtime.Infinity) }, runtime.SpawnOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Exit(self, runtime.Kill)
	var (
		router  = runtime.ProcessInfo{Name: "call_router", Module: "call_router_server", Behaviour: "gen_server"}
		session = runtime.ProcessInfo{Module: "call_session", Behaviour: "gen_statem"}
		top     = runtime.ProcessInfo{Name: "telecom_sup", Module: "telecom_sup", Behaviour: "supervisor"}
		monkey  = runtime.ProcessInfo{PID: self, Name: Name, Module: Name, Behaviour: "gen_server"}
		helper  = runtime.ProcessInfo{Module: Name}
		master  = runtime.ProcessInfo{Module: "telecom", Behaviour: "application_master"}
	)
	for _, tc := range []struct {
		name    string
		kind    Kind
		pi      runtime.ProcessInfo
		targets []string
		want    bool
	}{
		{"kill a worker", Kill, router, nil, true},
		{"kill a session", Kill, session, nil, true},
		{"kill spares the top supervisor", Kill, top, nil, false},
		{"kill spares the monkey", Kill, monkey, nil, false},
		{"kill spares the monkey's helpers", Kill, helper, nil, false},
		{"kill spares the application master", Kill, master, nil, false},
		{"kill by name prefix", Kill, router, []string{"call_"}, true},
		{"kill by module prefix", Kill, session, []string{"call_sess"}, true},
		{"kill outside the targets", Kill, router, []string{"billing"}, false},
		{"kill a supervisor the targets name", Kill, top, []string{"telecom_sup"}, true},
		{"kill the monkey the targets name", Kill, monkey, []string{Name}, true},
		{"a prefix does not name the top supervisor", Kill, top, []string{"telecom"}, false},
		{"exit follows kill", Exit, top, nil, false},
		{"supervisor hits the top one", Supervisor, top, nil, true},
		{"supervisor spares workers", Supervisor, router, nil, false},
		{"supervisor by target", Supervisor, top, []string{"billing"}, false},
		{"flood a worker", Flood, session, nil, true},
		{"flood spares supervisors", Flood, top, []string{"telecom_sup"}, false},
		{"flood spares the monkey", Flood, monkey, []string{Name}, false},
		{"cpu spins a worker", CPU, router, nil, true},
		{"cpu spares supervisors", CPU, top, nil, false},
		{"memory picks no target", Memory, router, nil, false},
	} {
		if got := eligible(tc.kind, tc.pi, self, tc.targets); got != tc.want {
			t.Errorf("%s: eligible = %v", tc.name, got)
		}
	}
}
