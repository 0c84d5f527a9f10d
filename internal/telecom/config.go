// Package telecom is the system observer runs and shows: a carrier-style
// call-routing node built the OTP way, with a call router, call sessions, a
// load generator, a billing engine with a durable ledger, a database pool
// and a chaos monkey, under one supervision tree started as an application.
package telecom

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Duration is a time.Duration written in the config file as text ("250ms").
type Duration struct{ time.Duration }

// UnmarshalText parses a duration such as "2s" or "150ms".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"2s\" or \"150ms\"): %q", b)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText prints the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config holds every setting of the telecom system: the sys.config of this
// system. docs/reference/config.md documents each key.
type Config struct {
	Router   RouterConfig   `toml:"router"`
	Sessions SessionsConfig `toml:"sessions"`
	Load     LoadConfig     `toml:"load"`
	Billing  BillingConfig  `toml:"billing"`
	Chaos    ChaosConfig    `toml:"chaos"`
}

// RouterConfig configures call_router_server.
type RouterConfig struct {
	Routes           string   `toml:"routes"`            // routing table file; empty uses the embedded default
	OverloadLimit    int      `toml:"overload_limit"`    // router mailbox length past which new calls are dropped
	FailureThreshold int      `toml:"failure_threshold"` // consecutive failures that open a trunk's breaker
	CoolDown         Duration `toml:"cool_down"`         // how long an open breaker refuses calls
}

// SessionsConfig configures the call session state machines.
type SessionsConfig struct {
	SetupTimeout   Duration `toml:"setup_timeout"`
	RoutingTimeout Duration `toml:"routing_timeout"`
	RingTimeout    Duration `toml:"ring_timeout"`
	MaxDuration    Duration `toml:"max_duration"`
	Intensity      int      `toml:"intensity"` // restart intensity of call_sup
	Period         int      `toml:"period"`    // restart period of call_sup, seconds
}

// LoadConfig configures the load generator.
type LoadConfig struct {
	Rate         float64  `toml:"rate"`         // open loop: calls started per second
	Mode         string   `toml:"mode"`         // "open" or "closed"
	Concurrency  int      `toml:"concurrency"`  // closed loop: calls kept in flight
	Duration     Duration `toml:"duration"`     // mean connected time of a call
	Distribution string   `toml:"distribution"` // "fixed", "uniform" or "exponential"
	RingTime     Duration `toml:"ring_time"`    // time a call rings before it is answered
	Numbers      []string `toml:"numbers"`      // dialled numbers, picked in turn with their weights
	Weights      []int    `toml:"weights"`      // weight of each number (default 1 each)
	Accounts     int      `toml:"accounts"`     // calls are billed to ACC-001..ACC-<accounts>
	Enabled      bool     `toml:"enabled"`      // start generating at once
}

// BillingConfig configures the billing engine, the ledger and the db pool.
type BillingConfig struct {
	DataDir     string `toml:"data_dir"`     // where the embedded ledger lives
	Ledger      string `toml:"ledger"`       // postgres://... to use PostgreSQL instead
	PoolSize    int    `toml:"pool_size"`    // db_pool workers
	MaxOverflow int    `toml:"max_overflow"` // extra workers under load
	Tariff      string `toml:"tariff"`       // default price per minute, e.g. "0.10"
	ChargeCalls bool   `toml:"charge_calls"` // charge each completed call before its session ends
}

// ChaosConfig configures the chaos monkey.
type ChaosConfig struct {
	Rate    float64  `toml:"rate"`    // faults per second
	Targets []string `toml:"targets"` // process name prefixes it may hit; empty means any worker
	Kinds   []string `toml:"kinds"`   // kill, exit, flood, ...
}

// DefaultConfig returns the settings observer runs with when no file and no
// flag says otherwise.
func DefaultConfig() Config {
	return Config{
		Router: RouterConfig{OverloadLimit: 10000, FailureThreshold: 5, CoolDown: Duration{10 * time.Second}},
		Sessions: SessionsConfig{
			SetupTimeout:   Duration{time.Second},
			RoutingTimeout: Duration{time.Second},
			RingTimeout:    Duration{30 * time.Second},
			MaxDuration:    Duration{time.Hour},
			Intensity:      1000,
			Period:         1,
		},
		Load: LoadConfig{
			Rate:         50,
			Mode:         "open",
			Concurrency:  64,
			Duration:     Duration{2 * time.Second},
			Distribution: "exponential",
			RingTime:     Duration{200 * time.Millisecond},
			Numbers:      []string{"1-800-FORTUNE", "+44 20 7946 0000", "+1 (415) 555-0100", "112", "+49 30 123456", "+81 3 1234 5678"},
			Accounts:     10000,
			Enabled:      true,
		},
		Billing: BillingConfig{DataDir: DefaultDataDir(), PoolSize: 4, MaxOverflow: 4, Tariff: "0.10", ChargeCalls: true},
		Chaos:   ChaosConfig{Rate: 2, Kinds: []string{"kill"}},
	}
}

// DefaultDataDir is the ledger's directory under the user's state directory
// ($XDG_STATE_HOME/observer, else ~/.local/state/observer).
func DefaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "observer")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "observer")
	}
	return "observer-data"
}

// LoadConfigFile reads a TOML config file over the defaults. Unknown keys and
// values of the wrong type are errors that name the key.
func LoadConfigFile(path string) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if pe.LastKey != "" {
				return Config{}, fmt.Errorf("config %s: line %d: key %s: %s", path, pe.Position.Line, pe.LastKey, pe.Message)
			}
			return Config{}, fmt.Errorf("config %s: line %d: %s", path, pe.Position.Line, pe.Message)
		}
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("config %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks every value, naming the key of the first bad one.
func (c Config) Validate() error {
	switch {
	case c.Router.OverloadLimit <= 0:
		return fmt.Errorf("router.overload_limit must be positive, got %d", c.Router.OverloadLimit)
	case c.Router.FailureThreshold <= 0:
		return fmt.Errorf("router.failure_threshold must be positive, got %d", c.Router.FailureThreshold)
	case c.Load.Rate < 0 || c.Load.Rate > 10_000_000:
		return fmt.Errorf("load.rate must be within 0..10000000 calls/s, got %v", c.Load.Rate)
	case c.Load.Mode != "open" && c.Load.Mode != "closed":
		return fmt.Errorf("load.mode must be \"open\" or \"closed\", got %q", c.Load.Mode)
	case c.Load.Concurrency <= 0:
		return fmt.Errorf("load.concurrency must be positive, got %d", c.Load.Concurrency)
	case c.Load.Distribution != "fixed" && c.Load.Distribution != "uniform" && c.Load.Distribution != "exponential":
		return fmt.Errorf("load.distribution must be fixed, uniform or exponential, got %q", c.Load.Distribution)
	case len(c.Load.Numbers) == 0:
		return errors.New("load.numbers must list at least one number")
	case len(c.Load.Weights) != 0 && len(c.Load.Weights) != len(c.Load.Numbers):
		return fmt.Errorf("load.weights has %d entries for %d numbers", len(c.Load.Weights), len(c.Load.Numbers))
	case c.Load.Accounts <= 0:
		return fmt.Errorf("load.accounts must be positive, got %d", c.Load.Accounts)
	case c.Sessions.Intensity < 0 || c.Sessions.Period <= 0:
		return fmt.Errorf("sessions.intensity must be >= 0 and sessions.period > 0")
	case c.Billing.PoolSize <= 0:
		return fmt.Errorf("billing.pool_size must be positive, got %d", c.Billing.PoolSize)
	case c.Billing.MaxOverflow < 0:
		return fmt.Errorf("billing.max_overflow must not be negative, got %d", c.Billing.MaxOverflow)
	case c.Chaos.Rate < 0:
		return fmt.Errorf("chaos.rate must not be negative, got %v", c.Chaos.Rate)
	}
	for i, w := range c.Load.Weights {
		if w <= 0 {
			return fmt.Errorf("load.weights[%d] must be positive, got %d", i, w)
		}
	}
	return nil
}
