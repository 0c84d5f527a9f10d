// Package routing is the core of a carrier-style call router: it
// normalizes dialed numbers, finds the destination by longest prefix match,
// and picks a trunk for the call, failing over between trunks guarded by
// circuit breakers.
//
// The package does no I/O of its own and starts no goroutines, so a
// process wrapper can own a Router: many goroutines call Route concurrently
// without locks, while a single owner replaces the table (LoadTable),
// changes trunk failure rates, refreshes latency percentiles (Tick) and
// reads Metrics.
//
// # Numbers
//
// Normalize turns a dialed string into digits with an optional leading
// '+': spaces, dashes, dots and parentheses are dropped and letters map to
// keypad digits (E.161), so "1-800-FORTUNE" becomes "18003678863". At most
// MaxDigits digits are accepted.
//
// # Routing table format
//
// A table is UTF-8 text with one statement per line. '#' starts a comment
// running to the end of the line, blank lines are ignored, and fields are
// separated by spaces or tabs. Names (of trunks and destinations) consist
// of letters, digits, '-', '_' and '.', and may be used before they are
// declared. There are three statements:
//
//	trunk NAME HOST
//
// declares a carrier interconnect reached at HOST, a DNS name or IPv4
// address with an optional :port. Each trunk has one circuit breaker,
// shared by every destination that uses it.
//
//	destination NAME USER TRUNK:PRIORITY:WEIGHT...
//
// declares a call target. A call to it is sent to sip:USER@HOST, HOST
// being that of the trunk carrying the call. USER consists of letters,
// digits, '-', '_', '.' and '+'. Trunks with the lowest PRIORITY (0-65535)
// are tried first; among equal priorities a trunk is chosen at random in
// proportion to its WEIGHT (1-65535). A failed attempt fails over to the
// next trunk. A destination has 1 to MaxTrunksPerDest trunks.
//
//	PREFIX -> DESTINATION
//
// routes numbers starting with PREFIX to DESTINATION; the longest matching
// prefix wins. PREFIX is normalized like a dialed number, so
// "1-800-FORTUNE" and "18003678863" are the same prefix. A leading '+' is
// part of the prefix: "+44" matches "+442071234567" but not
// "011442071234567".
//
// Example:
//
//	trunk        tel-core-1  telecom.example.com
//	trunk        tel-core-2  core2.telecom.example.com
//	destination  fortune     fortune  tel-core-1:1:100  tel-core-2:2:100
//	1-800-FORTUNE -> fortune
//
// Parse reports every invalid line (up to a limit) as a *ParseError
// carrying the line number: syntax errors, duplicate names or prefixes,
// bad prefixes, unknown trunks or destinations, bad priorities or weights,
// destinations without trunks, and tables without routes. The default
// table, DefaultTable, is embedded from routes.txt.
//
// # Concurrency and performance
//
// A Table is immutable. LoadTable compiles it together with the live trunk
// state and publishes the result with an atomic pointer swap, so routing
// never takes a lock and a table that fails to parse never replaces the
// running one. Longest prefix match walks a trie stored as one slice of
// fixed-size nodes, one step per digit.
//
// Each trunk has a github.com/sony/gobreaker/v2 circuit breaker. Because
// gobreaker serializes calls on a per-breaker mutex and reads the clock
// twice per call, routing every call through it made callers of a busy
// trunk queue on that mutex (about 2.5M routes/s with two callers, against
// over 5M without). The router therefore consults the breaker only when
// its answer can matter: for every failure, for the first success after a
// failure, and for every call while the breaker is half-open or its
// cool-down has expired. Other calls rely on a lock-free mirror of the
// breaker state, kept current by its state-change callback; since the
// breaker trips only on consecutive failures, it reaches the same
// decisions.
//
// Counters and the route-latency histogram (github.com/HdrHistogram/
// hdrhistogram-go) are sharded so that concurrent callers rarely share a
// cache line. Metrics reads counters directly; latency percentiles are
// computed by Tick, which the owner calls periodically, and Metrics returns
// the values of the last Tick.
package routing
