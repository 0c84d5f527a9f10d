package main

import (
	"flag"

	"observer/internal/telecom"
)

// configFlags are the flags every command that starts the system shares;
// they override the config file.
type configFlags struct {
	fs      *flag.FlagSet
	file    *string
	routes  *string
	dataDir *string
	ledger  *string
}

func addConfigFlags(fs *flag.FlagSet) *configFlags {
	return &configFlags{
		fs:      fs,
		file:    fs.String("config", "", "TOML config `file` (see docs/reference/config.md); flags override it"),
		routes:  fs.String("routes", "", "routing table `file` replacing the embedded default"),
		dataDir: fs.String("data-dir", "", "`directory` of the embedded ledger (default "+telecom.DefaultDataDir()+")"),
		ledger:  fs.String("ledger", "", "PostgreSQL `url` (postgres://...) to keep the ledger in instead"),
	}
}

// load reads the config file, then applies the flags the user set.
func (c *configFlags) load() (telecom.Config, error) {
	cfg := telecom.DefaultConfig()
	if *c.file != "" {
		var err error
		if cfg, err = telecom.LoadConfigFile(*c.file); err != nil {
			return cfg, err
		}
	}
	c.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "routes":
			cfg.Router.Routes = *c.routes
		case "data-dir":
			cfg.Billing.DataDir = *c.dataDir
		case "ledger":
			cfg.Billing.Ledger = *c.ledger
		}
	})
	return cfg, cfg.Validate()
}
