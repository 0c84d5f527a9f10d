// Command observer runs a carrier-style telecom system on an actor runtime
// with Erlang/OTP's semantics and shows it live, as Erlang's observer shows
// a BEAM node.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	args    string // synopsis of the positional arguments
	summary string
	run     func(env *env, args []string) error
}

// env is what a command runs with: its output streams, for tests.
type env struct {
	stdout, stderr io.Writer
}

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks a mistake in the command line: exit code 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

var commands []command

func register(c command) { commands = append(commands, c) }

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// gcPercent is the collector's growth target when GOGC is not set. Every
// message, call and short-lived process leaves garbage, and the default of
// 100 collects a small heap so often that a busy node spends a fifth of its
// time marking; 200 costs at most twice the live heap more memory and saves
// most of that (call-lifecycle: 15 µs of CPU per call at 100, 12 at 200).
const gcPercent = 200

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(run(&env{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// run dispatches to a subcommand and turns its error into an exit code.
func run(e *env, args []string) int {
	name := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		if len(args) > 0 {
			if c, ok := lookup(args[0]); ok {
				return run(e, []string{c.name, "--help"})
			}
			fmt.Fprintf(e.stderr, "observer: unknown command %q\n", args[0])
			return 2
		}
		printUsage(e.stdout)
		return 0
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(e.stderr, "observer: unknown command %q (run 'observer help' for the list)\n", name)
		return 2
	}
	err := c.run(e, args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		fmt.Fprintf(e.stderr, "observer %s: %v\n", c.name, ee.err)
		return ee.code
	}
	fmt.Fprintf(e.stderr, "observer %s: %v\n", c.name, err)
	return 1
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "observer: a telecom system on an OTP-style actor runtime, shown live.")
	fmt.Fprintln(w, "\nUsage:\n  observer [flags]            run the system with the terminal UI\n  observer COMMAND [flags] [args]\n\nCommands:")
	sorted := append([]command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-30s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintln(w, "\nRun 'observer help COMMAND' or 'observer COMMAND --help' for a command's flags.")
}

// newFlags makes a command's flag set, printing its synopsis on --help.
func newFlags(e *env, c string, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(c, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: observer %s [flags] %s\n\n%s\n", c, args, summary)
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(e.stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags, mapping a bad flag to a usage error. Flags may come
// before, between or after the positional arguments, which it returns; a
// negative number ("-1") is a positional argument, not a flag.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		switch a := args[0]; {
		case a == "--":
			return append(pos, args[1:]...), nil
		case isNegativeNumber(a) || !strings.HasPrefix(a, "-") || a == "-":
			pos, args = append(pos, a), args[1:]
			continue
		}
		cut := len(args)
		for i, a := range args {
			if isNegativeNumber(a) {
				cut = i
				break
			}
		}
		if err := fs.Parse(args[:cut]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{code: 2, err: err}
		}
		args = append(fs.Args(), args[cut:]...)
	}
	return pos, nil
}

func isNegativeNumber(s string) bool {
	return len(s) > 1 && s[0] == '-' && (s[1] >= '0' && s[1] <= '9' || s[1] == '.')
}
