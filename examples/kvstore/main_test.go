package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/supervisor"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"get alice = +44 20 7946 0000",
		"bad request: the call failed",
		"kv_sup restarted kv:",
		"get alice after the restart: found=false",
		"the new server works: 1 key stored",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStore(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	sup, err := StartTree(n)
	if err != nil {
		t.Fatal(err)
	}
	defer supervisor.Stop(n, sup, runtime.Shutdown, time.Second)

	if err := Put(n, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := Put(n, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := Get(n, "k"); err != nil || !ok || v != "v2" {
		t.Fatalf("Get(k) = %q, %v, %v; want v2", v, ok, err)
	}
	if err := Delete(n, "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := Get(n, "k"); ok {
		t.Fatal("k is still there after Delete")
	}
}

func TestKilledStoreIsReplaced(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	sup, err := StartTree(n)
	if err != nil {
		t.Fatal(err)
	}
	defer supervisor.Stop(n, sup, runtime.Shutdown, time.Second)
	if err := Put(n, "k", "v"); err != nil {
		t.Fatal(err)
	}
	old, _ := n.Whereis(Name)
	sub := n.Subscribe(64)
	defer sub.Close()

	n.Exit(old, runtime.Kill)
	if err := awaitReport(sub, supervisor.ReportChildRestarted); err != nil {
		t.Fatal(err)
	}
	if _, err := genserver.Call(n, old, getReq{"k"}, time.Second); !errors.Is(err, runtime.ErrNoProc) {
		t.Errorf("call to the killed pid = %v, want noproc", err)
	}
	now, ok := n.Whereis(Name)
	if !ok || now == old {
		t.Fatalf("kv is %v (registered %v), want a new pid", now, ok)
	}
	if n, err := Len(n); err != nil || n != 0 {
		t.Errorf("the new store holds %d keys (%v), want an empty store", n, err)
	}
}
