package export

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"observer/internal/telecom"
)

func TestListenAddrDefaultsToLoopback(t *testing.T) {
	tests := []struct{ in, want string }{
		{":9464", "127.0.0.1:9464"},
		{"127.0.0.1:9464", "127.0.0.1:9464"},
		{"0.0.0.0:9464", "0.0.0.0:9464"},
	}
	for _, tc := range tests {
		if got, err := ListenAddr(tc.in); err != nil || got != tc.want {
			t.Errorf("ListenAddr(%q) = %q, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"9464", "host:port", ":99999", ""} {
		if _, err := ListenAddr(bad); err == nil {
			t.Errorf("ListenAddr(%q) accepted", bad)
		}
	}
}

func TestServeExportsTheSystem(t *testing.T) {
	cfg := telecom.DefaultConfig()
	cfg.Load.Enabled = false
	cfg.Billing.DataDir = t.TempDir()
	sys, err := telecom.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Stop(0)
	if _, err := sys.Router.Route("C-1", "1-800-FORTUNE"); err != nil {
		t.Fatal(err)
	}
	srv, addr, err := Serve(sys, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"observer_processes ",
		`observer_calls_total{outcome="routed"} 1`,
		`observer_supervisor_restarts_total{supervisor="telecom_sup"} 0`,
		`observer_db_pool_workers{state="idle"}`,
		"observer_route_latency_seconds",
		"observer_mailbox_length",
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
