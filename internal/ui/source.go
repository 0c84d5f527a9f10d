package ui

import (
	"time"

	"observer/internal/runtime"
)

// Source is what the observer reads and drives. The binary implements it
// over the running system. Node and Actions are called once, by New; Tree
// and Telecom are called from background commands, never on the UI loop,
// and may run at the same time as each other and as the Actions callbacks.
// The UI keeps the slices they return and never modifies them, so each
// call must return slices the Source will not modify afterwards.
type Source interface {
	// Node is the runtime node whose processes and events are shown.
	Node() *runtime.Node
	// Tree lists the node's supervisors, each with its children; nesting is
	// found by matching a child's PID with another supervisor's PID.
	Tree() []SupervisorView
	// Telecom reports the telecom system; zero values stand for figures
	// that are not available (yet).
	Telecom() TelecomView
	// Actions are the operator's levers; a nil callback hides its key.
	Actions() Actions
}

// SupervisorView is one supervisor of the Applications view.
type SupervisorView struct {
	PID      runtime.PID
	Name     string
	Module   string
	Version  string
	Strategy string // one_for_one, one_for_all, rest_for_one, simple_one_for_one
	// Intensity restarts are allowed within Period before the supervisor gives up.
	Intensity int
	Period    time.Duration
	// Restarts are the restart times inside the intensity window, oldest
	// first, one entry per restart: several restarts in one second repeat
	// that second.
	Restarts []time.Time
	Children []ChildView
}

// ChildView is one child of a supervisor.
type ChildView struct {
	ID          string
	PID         runtime.PID // zero when the child has no process
	Status      string      // running, restarting, undefined
	Type        string      // worker or supervisor
	Restarts    int
	LastExit    any // exit reason of the last exit; nil if it never exited
	LastRestart time.Time
	Module      string
	Version     string
}

// TelecomView is the telecom system's state. Counters are cumulative: the
// UI derives per-second rates from successive readings.
type TelecomView struct {
	Routing RoutingView
	Ledger  LedgerView
	// Routes are the routing table's rows, in table order.
	Routes []RouteView
	// Trunks are the trunks in table order, with their circuit breakers.
	Trunks []TrunkView
	// LoadRate is the offered load in calls per second, 0 if unknown.
	LoadRate float64
	// Chaos reports whether fault injection is on.
	Chaos bool
}

// RoutingView holds the router's counters and recent latency.
type RoutingView struct {
	Routed  uint64 // calls routed to a trunk
	Failed  uint64 // calls the router rejected (bad number, no route, all trunks down)
	Dropped uint64 // calls refused before routing
	// P50, P99 and P999 are route latency percentiles over a recent window.
	P50, P99, P999 time.Duration
}

// LedgerView holds the ledger's counters and its most telling rows.
type LedgerView struct {
	Backend        string
	Charges        uint64 // charges committed
	IdempotentHits uint64 // retries answered with the original receipt
	Recent         []ChargeView
	Busiest        []AccountView // most charged accounts first
	Lowest         []AccountView // lowest balances first
	Pool           PoolView
	Verify         VerifyView
}

// ChargeView is one committed charge.
type ChargeView struct {
	TxnID    string
	Account  string
	Amount   string // formatted by the ledger's money type
	At       time.Time
	Replayed bool
}

// AccountView is one account row.
type AccountView struct {
	ID      string
	Balance string
	Charges int
}

// PoolView is the database connection pool.
type PoolView struct {
	Busy, Idle, Waiting int
}

// VerifyView is the outcome of the latest ledger verification.
type VerifyView struct {
	Done    bool // false until a verification has run
	OK      bool
	Verdict string
	At      time.Time
}

// RouteView is one routing table row.
type RouteView struct {
	Prefix      string
	Destination string
	Trunks      string // e.g. "carrier-a p1 w70, carrier-b p2 w30"
}

// TrunkView is one trunk and its circuit breaker.
type TrunkView struct {
	Name        string
	Host        string
	State       string  // closed, half-open, open
	FailureRate float64 // 0..1 over the breaker's window
	Attempts    uint64
	Failures    uint64
	Rejected    uint64 // calls that skipped the trunk while its breaker was open
}

// Actions are callbacks bound to keys. Each returns a short message for the
// status line. They run in background commands, never on the UI loop.
type Actions struct {
	// SetLoadRate changes the offered load by delta steps (+ and - keys).
	SetLoadRate func(delta int) (string, error)
	// ToggleChaos switches fault injection on or off (c key).
	ToggleChaos func() (string, error)
	// Upgrade moves a process to its next code version (r key).
	Upgrade func(pid runtime.PID) (string, error)
	// RunCommand runs one line of the command palette (: key).
	RunCommand func(line string) (string, error)
	// Modules lists the code modules and their versions for the modules
	// dialog (R key), which needs UpgradeModule too.
	Modules func() ([]ModuleView, error)
	// UpgradeModule moves every process of a module to a version, all or
	// nothing (R key): if one process fails, those already moved are moved
	// back and the error says why. An older version downgrades.
	UpgradeModule func(module, version string) (UpgradeReport, error)
}

// ModuleView is one code module of the modules dialog.
type ModuleView struct {
	Name string
	// Current is the version new processes start with.
	Current string
	// Old lists the other versions that processes still run.
	Old []string
	// Versions are the versions the system carries, oldest first, then
	// any version a process runs that the system does not carry.
	Versions []VersionView
}

// VersionView is one version of a module.
type VersionView struct {
	Name  string
	Notes string // what the version changed
	// Current is the version new processes start with.
	Current bool
	// Available is false for a version that processes run but that the
	// system does not carry: nothing can be moved to it.
	Available bool
	// Processes run this version now.
	Processes int
}

// UpgradeReport is what moving a module to a version did.
type UpgradeReport struct {
	Module string
	From   string // the module's current version before
	To     string
	// Upgraded run To now because of this move.
	Upgraded int
	// RolledBack were moved to To and back after another process failed.
	RolledBack int
	// Failed could not be suspended or moved (their code_change failed);
	// they stay on the version they ran.
	Failed int
	// Stranded were moved to To but could not be moved back after another
	// process failed: they still run To.
	Stranded int
	// Skipped exited during the move.
	Skipped int
	// MaxPause is the longest time any process was suspended.
	MaxPause time.Duration
}
