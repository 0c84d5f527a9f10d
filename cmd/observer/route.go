package main

import (
	"fmt"

	"observer/internal/runtime"
	"observer/internal/telecom"
)

func init() {
	register(command{
		name:    "route",
		args:    "CALL-ID NUMBER",
		summary: "route one call through call_router_server and print the SIP URI",
		run:     runRoute,
	})
}

func runRoute(e *env, args []string) error {
	fs := newFlags(e, "route", "CALL-ID NUMBER", "Routes one call and prints the SIP URI it goes to; an unroutable call prints the error and exits 1.")
	cf := addConfigFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("want CALL-ID and NUMBER, got %d arguments", len(pos))
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	n := runtime.NewNode(runtime.Options{})
	rt, err := telecom.NewRouter(n, cfg.Router)
	if err != nil {
		return err
	}
	stop, err := telecom.StartStandalone(n, rt.StartRouter)
	if err != nil {
		return err
	}
	defer stop()
	res, err := rt.RouteViaServer(n, pos[0], pos[1], telecom.CallTimeout)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, res.URI)
	return nil
}
