package ui

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"observer/internal/runtime"
)

// watchWriter collects output and reports once it has seen every string.
type watchWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	want []string
	done chan struct{}
}

func (w *watchWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if w.want != nil {
		s := w.buf.String()
		for _, x := range w.want {
			if !strings.Contains(s, x) {
				return len(b), nil
			}
		}
		w.want = nil
		close(w.done)
	}
	return len(b), nil
}

// RunHeadless draws frames into its writer, moves on from the first view
// to the process table, and stops cleanly when its context ends.
func TestRunHeadlessDrawsAndCyclesViews(t *testing.T) {
	n := runtime.NewNode(runtime.Options{})
	w := &watchWriter{want: []string{"Overview", "PID"}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- RunHeadless(ctx, &fakeSource{node: n}, Options{NoColor: true}, 120, 40, w, 10*time.Millisecond)
	}()
	select {
	case <-w.done:
	case err := <-errc:
		t.Fatalf("RunHeadless returned early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the process table was never drawn")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("RunHeadless: %v", err)
	}
	if _, err := parseView("nonsense"); err == nil {
		t.Fatal("parseView accepted nonsense")
	}
	if err := RunHeadless(context.Background(), &fakeSource{node: n}, Options{View: "nonsense"}, 80, 24, w, 0); err == nil {
		t.Fatal("RunHeadless accepted an unknown view")
	}
}
