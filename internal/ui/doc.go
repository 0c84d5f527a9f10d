// Package ui is observer's terminal UI: a live view of a runtime node and
// the telecom system on it, in the manner of Erlang's observer,
// observer_cli, k9s and htop.
//
// Six views share one screen: the Overview (node, Go runtime, host, and
// charts of calls, route latency, charges and memory), Applications (the
// supervision tree with restart budgets, flashes and timelines), Processes
// (every process, sortable and filterable, and each one's detail with its
// state read through sys), Ledger, Tables (routes and trunks) and Events
// (crash and supervisor reports, code changes, traces).
//
// The UI reads the system only through a Source and the runtime's
// introspection API. One root model routes every message; the panes are
// plain structs that lay out and draw; all reading happens in commands off
// the UI loop, which hand Update immutable, tagged snapshots. Run shows the
// UI on a terminal; RenderFrame draws one frame as text without one.
package ui
