// Command chatroom is message passing between plain processes: a room
// process relays lines between member processes. The room monitors every
// member, so it notices a member that disconnects (its process dies, for
// whatever reason) without the member saying goodbye.
//
//	go run ./examples/chatroom
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"observer/internal/runtime"
)

// timeout bounds every call and wait of the example.
const timeout = 2 * time.Second

// Messages to the room. Join, say and list are calls: the room answers
// each with From.Reply.
type (
	join struct{ name string }
	say  struct{ text string }
	list struct{}
)

// Line is what the room delivers to members: who said what.
type Line struct{ From, Text string }

func (l Line) String() string { return "[" + l.From + "] " + l.Text }

// Messages to a member, sent by the program that drives it.
type (
	joinCmd  struct{}           // join the room (a call)
	postCmd  struct{ s string } // say s in the room (a call)
	inboxCmd struct{}           // what has this member received? (a call)
	quitCmd  struct{}           // leave by returning: the process exits normal
)

// errNotMember answers a say from a process that has not joined.
var errNotMember = errors.New("not a member")

// room is the room's body: a receive loop over its mailbox. Everything it
// knows is in local variables; no other goroutine can see them.
func room(log chan<- string) func(p *runtime.Process) {
	return func(p *runtime.Process) {
		names := map[runtime.PID]string{}
		broadcast := func(l Line, except runtime.PID) int {
			sent := 0
			for pid := range names {
				if pid != except {
					_ = p.Send(pid, l) // to a dead member: dropped, as in Erlang
					sent++
				}
			}
			return sent
		}
		for {
			msg, _ := p.Receive(runtime.Infinity)
			switch m := msg.(type) {
			case *runtime.Request:
				who := m.From.Caller()
				switch b := m.Body.(type) {
				case join:
					// The monitor is how the room learns of a disconnect:
					// when who exits, a DownMsg arrives here.
					p.Monitor(who)
					names[who] = b.name
					broadcast(Line{"room", b.name + " joined"}, who)
					log <- "room: " + b.name + " joined"
					m.From.Reply(nil)
				case say:
					name, ok := names[who]
					if !ok {
						m.From.Reply(errNotMember)
						continue
					}
					m.From.Reply(broadcast(Line{name, b.text}, who))
				case list:
					var ns []string
					for _, n := range names {
						ns = append(ns, n)
					}
					slices.Sort(ns)
					m.From.Reply(ns)
				}
			case runtime.DownMsg:
				name := names[m.PID]
				delete(names, m.PID)
				text := fmt.Sprintf("%s left (%s)", name, runtime.FormatReason(m.Reason))
				broadcast(Line{"room", text}, runtime.PID{})
				log <- "room: " + text
			}
		}
	}
}

// member is a chat client: it joins and posts when told to, and keeps
// every line the room sends it. It monitors the room too, and leaves when
// the room goes away.
func member(name string, roomPID runtime.PID, log chan<- string) func(p *runtime.Process) {
	return func(p *runtime.Process) {
		roomRef := p.Monitor(roomPID)
		var inbox []Line
		for {
			msg, _ := p.Receive(runtime.Infinity)
			switch m := msg.(type) {
			case Line:
				inbox = append(inbox, m)
			case *runtime.Request:
				switch b := m.Body.(type) {
				case joinCmd:
					_, err := p.Call(roomPID, join{name}, timeout)
					m.From.Reply(err)
				case postCmd:
					n, err := p.Call(roomPID, say{b.s}, timeout)
					if err == nil {
						if e, ok := n.(error); ok {
							err = e
						}
					}
					m.From.Reply(err)
				case inboxCmd:
					m.From.Reply(slices.Clone(inbox))
				}
			case quitCmd:
				return
			case runtime.DownMsg:
				if m.Ref == roomRef {
					log <- fmt.Sprintf("%s: the room is gone (%s)", name, runtime.FormatReason(m.Reason))
					p.Exit(runtime.Normal)
				}
			}
		}
	}
}

// chat is a running room and its members, for run and the tests.
type chat struct {
	n       *runtime.Node
	room    runtime.PID
	members map[string]runtime.PID
	log     chan string
	w       io.Writer
}

func newChat(w io.Writer) (*chat, error) {
	c := &chat{n: runtime.NewNode(runtime.Options{}), members: map[string]runtime.PID{}, log: make(chan string, 64), w: w}
	var err error
	c.room, err = c.n.Spawn(room(c.log), runtime.SpawnOpts{Name: "room"})
	return c, err
}

// connect starts a member process and has it join.
func (c *chat) connect(name string) error {
	pid, err := c.n.Spawn(member(name, c.room, c.log), runtime.SpawnOpts{})
	if err != nil {
		return err
	}
	c.members[name] = pid
	return c.ask(pid, joinCmd{})
}

// post has a member say text.
func (c *chat) post(name, text string) error {
	fmt.Fprintf(c.w, "%s says %q\n", name, text)
	return c.ask(c.members[name], postCmd{text})
}

// inbox returns what a member has received so far.
func (c *chat) inbox(name string) ([]Line, error) {
	v, err := c.n.Call(c.members[name], inboxCmd{}, timeout)
	if err != nil {
		return nil, err
	}
	return v.([]Line), nil
}

// names lists the room's members.
func (c *chat) names() ([]string, error) {
	v, err := c.n.Call(c.room, list{}, timeout)
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// ask makes a call whose reply is an error or nil.
func (c *chat) ask(pid runtime.PID, req any) error {
	v, err := c.n.Call(pid, req, timeout)
	if err != nil {
		return err
	}
	if e, ok := v.(error); ok {
		return e
	}
	return nil
}

// show prints what a member has received.
func (c *chat) show(name string, in []Line) {
	fmt.Fprintf(c.w, "%s's screen:\n", name)
	for _, l := range in {
		fmt.Fprintf(c.w, "    %v\n", l)
	}
}

// waitFor prints log lines until want has been printed.
func (c *chat) waitFor(want string) error {
	deadline := time.After(timeout)
	for {
		select {
		case l := <-c.log:
			fmt.Fprintln(c.w, "  "+l)
			if l == want {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("no %q within %v", want, timeout)
		}
	}
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chatroom:", err)
		os.Exit(1)
	}
}

// run is the whole example, writing what happens to w.
func run(w io.Writer) error {
	c, err := newChat(w)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "room %v started\n", c.room)
	for _, name := range []string{"alice", "bob", "carol"} {
		if err := c.connect(name); err != nil {
			return err
		}
		if err := c.waitFor("room: " + name + " joined"); err != nil {
			return err
		}
	}

	if err := c.post("alice", "hello everyone"); err != nil {
		return err
	}
	in, err := c.inbox("bob")
	if err != nil {
		return err
	}
	c.show("bob", in)

	// carol's connection drops: her process is killed. Nobody tells the
	// room; its monitor does.
	fmt.Fprintf(w, "carol's process %v is killed\n", c.members["carol"])
	c.n.Exit(c.members["carol"], runtime.Kill)
	if err := c.waitFor("room: carol left (killed)"); err != nil {
		return err
	}

	// bob quits: his process returns, an exit with reason normal, and
	// the monitor fires just the same.
	fmt.Fprintln(w, "bob quits")
	_ = c.n.Send(c.members["bob"], quitCmd{})
	if err := c.waitFor("room: bob left (normal)"); err != nil {
		return err
	}

	names, err := c.names()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "members now: %v\n", names)
	if in, err = c.inbox("alice"); err != nil {
		return err
	}
	c.show("alice", in)

	// Closing the room: alice monitors it and leaves on her own.
	fmt.Fprintln(w, "the room shuts down")
	c.n.Exit(c.room, runtime.Shutdown)
	return c.waitFor("alice: the room is gone (shutdown)")
}
