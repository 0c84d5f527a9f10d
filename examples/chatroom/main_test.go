package main

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"observer/internal/runtime"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"bob's screen:\n    [room] carol joined\n    [alice] hello everyone\n",
		"room: carol left (killed)",
		"room: bob left (normal)",
		"members now: [alice]",
		"alice: the room is gone (shutdown)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDisconnectIsNoticed(t *testing.T) {
	c, err := newChat(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.n.Exit(c.room, runtime.Kill)
	for _, name := range []string{"ann", "ben"} {
		if err := c.connect(name); err != nil {
			t.Fatal(err)
		}
	}
	// An exit with any reason, not only kill, removes the member.
	c.n.Exit(c.members["ben"], runtime.Atom("connection_reset"))
	if err := c.waitFor("room: ben left (connection_reset)"); err != nil {
		t.Fatal(err)
	}
	if names, err := c.names(); err != nil || !slices.Equal(names, []string{"ann"}) {
		t.Fatalf("members = %v, %v; want [ann]", names, err)
	}
	in, err := c.inbox("ann")
	if err != nil {
		t.Fatal(err)
	}
	if last := in[len(in)-1]; last != (Line{"room", "ben left (connection_reset)"}) {
		t.Errorf("ann's last line = %v, want the room's notice", last)
	}
}

func TestSayNeedsToJoin(t *testing.T) {
	c, err := newChat(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.n.Exit(c.room, runtime.Kill)
	v, err := c.n.Call(c.room, say{"hi"}, timeout)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(v.(error), errNotMember) {
		t.Errorf("say from outside = %v, want %v", v, errNotMember)
	}
}
