// Command observer runs a carrier-style telecom system on an actor runtime
// with Erlang/OTP's semantics and shows it live, as Erlang's observer shows
// a BEAM node.
package main

import (
	"flag"
	"fmt"
	"os"

	"observer/internal/runtime"
)

func main() {
	fs := flag.NewFlagSet("observer", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: observer [flags]\n\nStarts a runtime node and prints its status.")
		fs.PrintDefaults()
	}
	maxProcs := fs.Int("max-processes", runtime.DefaultMaxProcesses, "process limit of the node (Erlang's +P)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return
		}
		os.Exit(2)
	}
	n := runtime.NewNode(runtime.Options{MaxProcesses: *maxProcs})
	st := n.Stats()
	fmt.Printf("observer: node up, %d processes (limit %d), %d zombies\n", st.Processes, st.MaxProcesses, st.Zombies)
}
