package live

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"observer/internal/telecom"
	"observer/internal/ui"
)

func startSystem(tb testing.TB) *telecom.System {
	tb.Helper()
	cfg := telecom.DefaultConfig()
	cfg.Billing.DataDir = tb.TempDir()
	sys, err := telecom.Start(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sys.Stop(0) })
	return sys
}

func TestFramesOfTheLiveSystem(t *testing.T) {
	sys := startSystem(t)
	for _, view := range ui.ViewNames() {
		frame, err := ui.RenderFrame(New(sys), ui.Options{}, view, 120, 40, 300*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", view, err)
		}
		if !strings.Contains(frame, "Overview") {
			t.Fatalf("%s frame lacks the tab bar:\n%s", view, frame)
		}
	}
	frame, _ := ui.RenderFrame(New(sys), ui.Options{}, "applications", 120, 40, 300*time.Millisecond)
	for _, want := range []string{"telecom_sup", "call_router", "billing_sup", "db_pool", "call_sup", "load_generator"} {
		if !strings.Contains(frame, want) {
			t.Errorf("the tree lacks %s:\n%s", want, frame)
		}
	}
}

// BenchmarkRouteThroughputUI measures fast-path routing by two goroutines
// with no UI, and with the UI building frames at its default 10 Hz over
// the same system, so the two can be compared side by side.
func BenchmarkRouteThroughputUI(b *testing.B) {
	for _, withUI := range []bool{false, true} {
		name := "headless"
		if withUI {
			name = "ui-10Hz"
		}
		b.Run(name, func(b *testing.B) {
			sys := startSystem(b)
			stop := make(chan struct{})
			var uiDone sync.WaitGroup
			if withUI {
				uiDone.Add(1)
				go func() {
					defer uiDone.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						_, _ = ui.RenderFrame(New(sys), ui.Options{}, "processes", 160, 48, time.Second)
					}
				}()
			}
			var routed atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for g := 0; g < 2; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < b.N/2; i++ {
						if _, err := sys.Router.Route("B", "1-800-FORTUNE"); err == nil {
							routed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(routed.Load())/time.Since(start).Seconds(), "routes/s")
			b.StopTimer()
			close(stop)
			uiDone.Wait()
		})
	}
}
