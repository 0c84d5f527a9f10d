// Command kvstore is a key-value store written as a gen_server under a
// supervisor. It stores a few keys, crashes the server with a request it
// does not understand, and shows the supervisor putting a fresh server in
// its place: same name, new pid, empty state.
//
//	go run ./examples/kvstore
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/supervisor"
)

// Name is the store's registered name; clients address it with
// runtime.Name(Name), so they keep working across restarts.
const Name = "kv"

// timeout bounds every call the example makes.
const timeout = time.Second

// The requests the store understands.
type (
	putReq    struct{ key, value string }
	getReq    struct{ key string }
	deleteReq struct{ key string }
	keysReq   struct{}
)

// getReply answers a getReq.
type getReply struct {
	value string
	found bool
}

// store is the gen_server's callback module. The state is a
// map[string]string owned by the server process: only its callbacks touch it.
type store struct{}

func (store) Init(p *runtime.Process, _ any) genserver.Result {
	return genserver.Ok(map[string]string{})
}

func (store) HandleCall(p *runtime.Process, req any, from runtime.From, state any) genserver.Result {
	m := state.(map[string]string)
	switch r := req.(type) {
	case putReq:
		m[r.key] = r.value
		return genserver.Reply(nil, m)
	case getReq:
		v, ok := m[r.key]
		return genserver.Reply(getReply{v, ok}, m)
	case deleteReq:
		delete(m, r.key)
		return genserver.Reply(nil, m)
	case keysReq:
		return genserver.Reply(len(m), m)
	}
	// Let it crash: a request nobody wrote a clause for is a bug in the
	// caller, and the server does not try to carry on in an unknown state.
	panic(fmt.Sprintf("kv: unknown request %#v", req))
}

func (store) HandleCast(p *runtime.Process, msg any, state any) genserver.Result {
	return genserver.NoReply(state)
}

func (store) HandleInfo(p *runtime.Process, msg any, state any) genserver.Result {
	return genserver.NoReply(state)
}

// Put stores value under key.
func Put(c runtime.Caller, key, value string) error {
	_, err := genserver.Call(c, runtime.Name(Name), putReq{key, value}, timeout)
	return err
}

// Get returns the value under key.
func Get(c runtime.Caller, key string) (string, bool, error) {
	v, err := genserver.Call(c, runtime.Name(Name), getReq{key}, timeout)
	if err != nil {
		return "", false, err
	}
	r := v.(getReply)
	return r.value, r.found, nil
}

// Delete removes key.
func Delete(c runtime.Caller, key string) error {
	_, err := genserver.Call(c, runtime.Name(Name), deleteReq{key}, timeout)
	return err
}

// Len counts the keys.
func Len(c runtime.Caller) (int, error) {
	v, err := genserver.Call(c, runtime.Name(Name), keysReq{}, timeout)
	if err != nil {
		return 0, err
	}
	return v.(int), nil
}

// childSpec is the store as a supervisor's child: permanent, so it is
// restarted whatever the reason it stopped.
func childSpec() supervisor.ChildSpec {
	return supervisor.ChildSpec{
		ID:      Name,
		Restart: supervisor.Permanent,
		Module:  "kv_store",
		Start: func(p *runtime.Process) (runtime.PID, error) {
			return genserver.StartLink(p, store{}, nil, genserver.Options{Name: Name, Module: "kv_store"})
		},
	}
}

// StartTree starts kv_sup with the store as its only child.
func StartTree(n *runtime.Node) (runtime.PID, error) {
	return supervisor.Start(n, supervisor.Spec{
		Flags:    supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 3, Period: 5},
		Children: []supervisor.ChildSpec{childSpec()},
	}, supervisor.Options{Name: "kv_sup"})
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kvstore:", err)
		os.Exit(1)
	}
}

// run is the whole example, writing what happens to w.
func run(w io.Writer) error {
	n := runtime.NewNode(runtime.Options{})
	events := n.Subscribe(256)
	defer events.Close()

	sup, err := StartTree(n)
	if err != nil {
		return err
	}
	defer supervisor.Stop(n, sup, runtime.Shutdown, timeout)
	before, _ := n.Whereis(Name)
	fmt.Fprintf(w, "started kv_sup %v with %s %v\n", sup, Name, before)

	for _, kv := range [][2]string{{"alice", "+44 20 7946 0000"}, {"bob", "1-800-FORTUNE"}} {
		if err := Put(n, kv[0], kv[1]); err != nil {
			return err
		}
		fmt.Fprintf(w, "put %s = %s\n", kv[0], kv[1])
	}
	v, _, err := Get(n, "alice")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "get alice = %s\n", v)

	// A request the server has no clause for: its callback panics, the
	// server exits, and the caller's call fails with the exit reason.
	_, err = genserver.Call(n, runtime.Name(Name), "make me a sandwich", timeout)
	var exit *runtime.ExitError
	if !errors.As(err, &exit) {
		return fmt.Errorf("the bad request did not crash the server: %v", err)
	}
	fmt.Fprintf(w, "bad request: the call failed because %v exited (a panic)\n", exit.PID)

	// The supervisor saw the exit and started a new server under the same name.
	if err := awaitReport(events, supervisor.ReportChildRestarted); err != nil {
		return err
	}
	after, _ := n.Whereis(Name)
	fmt.Fprintf(w, "kv_sup restarted %s: %v -> %v\n", Name, before, after)

	// The new server started from Init: the old state died with the old process.
	_, found, err := Get(n, "alice")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "get alice after the restart: found=%v (state is not kept across a crash)\n", found)
	if err := Put(n, "alice", "+44 20 7946 0000"); err != nil {
		return err
	}
	k, err := Len(n)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "the new server works: %d key stored\n", k)
	return nil
}

// awaitReport waits for the supervisor report named text.
func awaitReport(sub *runtime.Subscription, text string) error {
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-sub.C:
			if e.Kind == runtime.EventSupervisor && e.Text == text {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("no %s report", text)
		}
	}
}
