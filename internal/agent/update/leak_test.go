package update

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestNoGoroutineLeak runs a full install (metadata refreshes, a delta and
// a copy, each transfer with its rate watchdog, a trial boot and a commit)
// and checks that no goroutine of the updater outlives it.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("cycle", func(t *testing.T) {
		w, d, _, r2 := attacked(t)
		w.assign(r2)
		limits := func(c *Config) { c.Limits = Limits{MinRate: 1, RateWindow: 50 * time.Millisecond} }
		if out, err := w.updater(t, d, nil, limits).RunOnce(context.Background()); err != nil || !out.Committed {
			t.Fatalf("install: %+v, %v", out, err)
		}
		w.srv.Client().CloseIdleConnections()
	})
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if strings.Contains(stacks, "internal/agent/update.") {
			t.Fatalf("%d goroutines left (was %d):\n%s", n, before, stacks)
		}
	}
}
