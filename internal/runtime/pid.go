// Package runtime is an actor runtime with Erlang/OTP's semantics: processes
// with mailboxes, links, monitors, exit signals, a name registry, system
// messages for sys, and an introspection API (snapshots and a lifecycle event
// stream) that the observer polls.
//
// A process is either a body process (a function that runs in its own
// goroutine and calls Receive, like erlang:spawn/1) or a behaviour process
// (message-driven callbacks such as gen_server). A behaviour process holds no
// goroutine while its mailbox is empty: a goroutine is started when a message
// arrives and returns when the mailbox drains, which keeps an idle process to
// a few hundred bytes.
package runtime

import (
	"fmt"
	"strconv"
	"strings"
)

// PID identifies a process. The zero PID is Erlang's undefined. PIDs are
// comparable and may be used as map keys; a PID stays valid (and prints the
// same) after its process has exited.
type PID struct{ p *Process }

// String prints the PID the Erlang way: <0.42.0>.
func (pid PID) String() string {
	if pid.p == nil {
		return "undefined"
	}
	return "<0." + strconv.FormatUint(pid.p.id, 10) + ".0>"
}

// ID is the process number, the middle part of <0.ID.0>.
func (pid PID) ID() uint64 {
	if pid.p == nil {
		return 0
	}
	return pid.p.id
}

// IsZero reports whether the PID is undefined.
func (pid PID) IsZero() bool { return pid.p == nil }

// Alive reports whether the process is still alive (is_process_alive/1).
func (pid PID) Alive() bool { return pid.p != nil && !pid.p.isDead() }

// ParsePIDNumber parses "<0.42.0>", "0.42.0" or "42" into the process number.
func ParsePIDNumber(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimPrefix(t, "<"), ">")
	if parts := strings.Split(t, "."); len(parts) == 3 {
		if parts[0] != "0" || parts[2] != "0" {
			return 0, fmt.Errorf("runtime: %q is not a local pid", s)
		}
		t = parts[1]
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("runtime: %q is not a pid (want <0.N.0>)", s)
	}
	return n, nil
}

// Ref is a unique reference, as made by make_ref/0 and monitor/2.
type Ref struct{ id uint64 }

// String prints the reference the Erlang way.
func (r Ref) String() string { return "#Ref<0.0.0." + strconv.FormatUint(r.id, 10) + ">" }

// IsZero reports whether the reference is unset.
func (r Ref) IsZero() bool { return r.id == 0 }

// Target names the receiver of a message or call: a PID or a registered Name.
type Target interface {
	resolve(n *Node) *Process
	String() string
}

// Name is a registered process name used as a Target.
type Name string

func (name Name) resolve(n *Node) *Process { return n.lookupName(string(name)) }

// String returns the name.
func (name Name) String() string { return string(name) }

func (pid PID) resolve(*Node) *Process { return pid.p }
