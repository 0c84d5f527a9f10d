package routing

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// BreakerState is the state of a trunk's circuit breaker.
type BreakerState uint8

// Breaker states.
const (
	// StateClosed lets calls flow normally.
	StateClosed BreakerState = iota
	// StateHalfOpen lets a few probe calls test whether the trunk recovered.
	StateHalfOpen
	// StateOpen makes calls skip the trunk until the cool-down ends.
	StateOpen
)

// String returns "closed", "half-open" or "open".
func (s BreakerState) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half-open"
	case StateOpen:
		return "open"
	}
	return "unknown"
}

func stateOf(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	case gobreaker.StateOpen:
		return StateOpen
	}
	return StateClosed
}

// errAttemptFailed is the outcome reported to a breaker for a simulated
// failed call attempt.
var errAttemptFailed = errors.New("simulated trunk failure")

type outcome uint8

const (
	outcomeOK       outcome = iota
	outcomeFailed           // the trunk was tried and the attempt failed
	outcomeRejected         // the breaker did not let the attempt through
)

// trunk is the live state of a trunk: breaker, simulated failure rate and
// counters. It survives table reloads that keep the trunk's name.
//
// gobreaker guards each breaker with a mutex and reads the clock twice per
// call, so going through it on every call would make all callers of a busy
// trunk queue on one lock. The trunk therefore mirrors the breaker state in
// atomics (kept current by the breaker's state-change callback) and skips
// the breaker when that cannot change anything it decides on:
//
//   - closed, attempt succeeded, no failure counted since the last success
//     reported: the breaker only trips on consecutive failures, so the
//     success would not change its decision;
//   - open and still cooling down: the breaker would refuse anyway.
//
// Every failure, every success that follows a failure, and every call in
// half-open state (where the breaker limits probes) goes through the breaker.
type trunk struct {
	name     string
	cb       *gobreaker.CircuitBreaker[struct{}]
	epoch    time.Time // origin of openUntil
	coolDown time.Duration

	state       atomic.Uint32 // BreakerState, mirrored from the breaker
	openUntil   atomic.Int64  // when an open breaker may go half-open, as nanoseconds since epoch
	failing     atomic.Bool   // the breaker counted a failure after the last success reported to it
	failureRate atomic.Uint64 // math.Float64bits of the simulated failure probability

	counts []trunkCounts // one per stats shard, so callers do not share cache lines
}

// trunkCounts is padded to its own pair of cache lines (adjacent-line
// prefetchers pull in 128 bytes).
type trunkCounts struct {
	successes atomic.Uint64
	failures  atomic.Uint64
	rejected  atomic.Uint64
	_         [128 - 3*8]byte
}

func newTrunk(name string, cfg *Config, shards int, epoch time.Time) *trunk {
	t := &trunk{
		name:     name,
		epoch:    epoch,
		coolDown: cfg.CoolDown,
		counts:   make([]trunkCounts, shards),
	}
	threshold, hook := cfg.FailureThreshold, cfg.OnStateChange
	t.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: cfg.HalfOpenProbes,
		Timeout:     cfg.CoolDown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
		// Runs with the breaker locked, so mirror updates are ordered like
		// the transitions themselves.
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				// Stored before the state so a caller that sees "open"
				// sees this cool-down. It ends no earlier than gobreaker's
				// own, which was computed from an earlier clock reading.
				t.openUntil.Store(int64(time.Since(t.epoch) + t.coolDown))
			}
			t.state.Store(uint32(stateOf(to)))
			if hook != nil {
				hook(name, stateOf(from), stateOf(to))
			}
		},
	})
	return t
}

// attempt offers one call to the trunk, recording the outcome in c and in
// the breaker.
func (t *trunk) attempt(c *trunkCounts) outcome {
	st := BreakerState(t.state.Load())
	if st == StateOpen && int64(time.Since(t.epoch)) < t.openUntil.Load() {
		c.rejected.Add(1)
		return outcomeRejected
	}
	failed := t.drawFailure()
	if !failed && st == StateClosed && !t.failing.Load() {
		c.successes.Add(1)
		return outcomeOK
	}
	if !failed {
		// Cleared before the success is reported: a failure recorded
		// concurrently sets it again after being counted, so the flag is
		// never clear while the breaker holds an unreset failure streak.
		t.failing.Store(false)
	}
	// Execute with a closure that does not escape costs no allocation,
	// unlike TwoStepCircuitBreaker.Allow, whose returned callback is
	// allocated on every call.
	_, err := t.cb.Execute(func() (struct{}, error) {
		if failed {
			return struct{}{}, errAttemptFailed
		}
		return struct{}{}, nil
	})
	switch err {
	case nil:
		c.successes.Add(1)
		return outcomeOK
	case errAttemptFailed:
		t.failing.Store(true)
		c.failures.Add(1)
		return outcomeFailed
	}
	c.rejected.Add(1) // gobreaker.ErrOpenState or ErrTooManyRequests
	return outcomeRejected
}

// drawFailure decides whether a simulated attempt fails. math/rand/v2's
// top-level functions use per-thread generator state, so concurrent callers
// do not contend.
func (t *trunk) drawFailure() bool {
	p := math.Float64frombits(t.failureRate.Load())
	return p > 0 && rand.Float64() < p
}

// status reports the trunk's state and counters. Reading the state through
// the breaker lets an expired cool-down show as half-open even before the
// next call arrives.
func (t *trunk) status(host string) TrunkStatus {
	s := TrunkStatus{
		Name:        t.name,
		Host:        host,
		State:       stateOf(t.cb.State()),
		FailureRate: math.Float64frombits(t.failureRate.Load()),
	}
	for i := range t.counts {
		c := &t.counts[i]
		s.Successes += c.successes.Load()
		s.Failures += c.failures.Load()
		s.Rejected += c.rejected.Load()
	}
	s.Attempts = s.Successes + s.Failures
	return s
}
