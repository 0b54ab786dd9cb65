package wake

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/testenv"
)

func TestWakeWaitingDevice(t *testing.T) {
	h := NewHub(10)
	done := make(chan error, 1)
	go func() { done <- h.Wait(context.Background(), "dev-a", "grp-1") }()
	testenv.WaitFor(t, "the device to wait", func() bool { return h.Waiting() == 1 })
	if n := h.Wake("dev-a", "dev-b"); n != 1 {
		t.Errorf("Wake woke %d, want 1", n)
	}
	if err := <-done; err != nil {
		t.Errorf("Wait = %v, want nil", err)
	}
	// dev-b was not waiting: its wake-up is kept for its next wait.
	if err := h.Wait(context.Background(), "dev-b", "grp-1"); err != nil {
		t.Errorf("Wait after a missed wake = %v, want an immediate nil", err)
	}
	if h.Waiting() != 0 {
		t.Errorf("%d still waiting", h.Waiting())
	}
}

func TestWakeTagged(t *testing.T) {
	h := NewHub(100)
	results := make(chan string, 10)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i, tag := range []string{"g1", "g1", "g1", "g2"} {
		id := fmt.Sprintf("dev-%d", i)
		wg.Go(func() {
			if err := h.Wait(ctx, id, tag); err == nil {
				results <- id
			}
		})
	}
	testenv.WaitFor(t, "four waiters", func() bool { return h.Waiting() == 4 })
	if n := h.WakeTagged("g1", func(id string) bool { return id != "dev-1" }); n != 2 {
		t.Errorf("WakeTagged woke %d, want 2", n)
	}
	testenv.WaitFor(t, "two wake-ups", func() bool { return len(results) == 2 })
	if h.Waiting() != 2 {
		t.Errorf("%d waiting, want dev-1 and dev-3", h.Waiting())
	}
	cancel()
	wg.Wait()
	close(results)
	got := map[string]bool{}
	for id := range results {
		got[id] = true
	}
	if len(got) != 2 || !got["dev-0"] || !got["dev-2"] {
		t.Errorf("woken %v, want dev-0 and dev-2", got)
	}
	if h.Waiting() != 0 {
		t.Errorf("cancelled waits left %d waiters", h.Waiting())
	}
}

func TestWaitReplacedAndFull(t *testing.T) {
	h := NewHub(1)
	first := make(chan error, 1)
	go func() { first <- h.Wait(context.Background(), "dev-a", "g") }()
	testenv.WaitFor(t, "the first wait", func() bool { return h.Waiting() == 1 })
	if err := h.Wait(context.Background(), "dev-b", "g"); !errors.Is(err, ErrFull) {
		t.Errorf("second device on a full hub: %v, want ErrFull", err)
	}
	second := make(chan error, 1)
	go func() { second <- h.Wait(context.Background(), "dev-a", "g") }()
	if err := <-first; !errors.Is(err, ErrReplaced) {
		t.Errorf("replaced wait: %v, want ErrReplaced", err)
	}
	testenv.WaitFor(t, "the second wait", func() bool { return h.Waiting() == 1 })
	h.Wake("dev-a")
	if err := <-second; err != nil {
		t.Errorf("second wait: %v", err)
	}
}

func TestWaitCancelledLeaksNothing(t *testing.T) {
	h := NewHub(1000)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Go(func() { h.Wait(ctx, fmt.Sprint(i), "g") })
	}
	testenv.WaitFor(t, "500 waiters", func() bool { return h.Waiting() == 500 })
	cancel()
	wg.Wait()
	if h.Waiting() != 0 {
		t.Errorf("%d waiters left", h.Waiting())
	}
	testenv.WaitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func BenchmarkWake10k(b *testing.B) {
	for b.Loop() {
		h := NewHub(10000)
		var wg sync.WaitGroup
		for i := range 10000 {
			wg.Go(func() { h.Wait(context.Background(), fmt.Sprint(i), "g") })
		}
		for h.Waiting() < 10000 {
			runtime.Gosched()
		}
		h.WakeTagged("g", nil)
		wg.Wait()
	}
}

// TestRememberedWakeExpires keeps a wake-up for a device that was not waiting for RememberFor
// only, and forgets expired ones to make room when the hub remembers as many as it may.
func TestRememberedWakeExpires(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	h := NewHub(2)
	h.now = func() time.Time { return now }
	waitBriefly := func(id string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		return h.Wait(ctx, id, "g")
	}

	h.Wake("a", "b", "c") // nobody waits: a and b are remembered, c finds the hub full
	now = now.Add(RememberFor - time.Second)
	if err := waitBriefly("a"); err != nil {
		t.Errorf("a waiting within RememberFor of its wake-up: %v, want an immediate wake", err)
	}
	if err := waitBriefly("c"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("c, dropped by a full hub: %v, want no wake-up", err)
	}
	now = now.Add(2 * time.Second)
	if err := waitBriefly("b"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("b waiting after RememberFor: %v, want no wake-up", err)
	}
	// Fill the hub with two wake-ups, let them expire: a new one makes room by forgetting them.
	h.Wake("d", "e")
	now = now.Add(RememberFor)
	h.Wake("f")
	if err := waitBriefly("f"); err != nil {
		t.Errorf("f, remembered after the expired ones were forgotten: %v, want an immediate wake", err)
	}
	h.mu.Lock()
	left := len(h.pending)
	h.mu.Unlock()
	if left != 0 {
		t.Errorf("%d wake-ups still remembered, want none", left)
	}
}

// TestWakeWaitingRemembersNothing: WakeWaiting wakes the waiting device and keeps nothing for
// the one that was not waiting.
func TestWakeWaitingRemembersNothing(t *testing.T) {
	h := NewHub(10)
	done := make(chan error, 1)
	go func() { done <- h.Wait(context.Background(), "dev-a", "grp-1") }()
	testenv.WaitFor(t, "the device to wait", func() bool { return h.Waiting() == 1 })
	if n := h.WakeWaiting("dev-a", "dev-b"); n != 1 {
		t.Errorf("WakeWaiting woke %d, want 1", n)
	}
	if err := <-done; err != nil {
		t.Errorf("Wait = %v, want nil", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.Wait(ctx, "dev-b", "grp-1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dev-b's next wait = %v, want it to wait until its context ends", err)
	}
}

// A wait with a timeout of its own ends with context.DeadlineExceeded and leaves the hub; a
// wake-up sent afterwards is kept for the device's next wait.
func TestWaitForTimesOut(t *testing.T) {
	h := NewHub(10)
	if err := h.WaitFor(context.Background(), "dev-a", "grp-1", 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor = %v, want context.DeadlineExceeded", err)
	}
	if h.Waiting() != 0 {
		t.Errorf("%d still waiting after the timeout", h.Waiting())
	}
	if n := h.Wake("dev-a"); n != 0 {
		t.Errorf("Wake woke %d after the timeout, want 0", n)
	}
	if err := h.WaitFor(context.Background(), "dev-a", "grp-1", time.Hour); err != nil {
		t.Errorf("WaitFor after a missed wake = %v, want an immediate nil", err)
	}
	// The request's end still ends the wait before the timeout.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.WaitFor(ctx, "dev-b", "grp-1", time.Hour) }()
	testenv.WaitFor(t, "the device to wait", func() bool { return h.Waiting() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor after the cancellation = %v, want context.Canceled", err)
	}
}

// BenchmarkWaitingDeviceHeap reports the heap a waiting device costs, beyond its request's
// context: the long-poll as it was (a deadline context derived from the request's, then Wait)
// and as it is (WaitFor, the request's context and a timeout).
func BenchmarkWaitingDeviceHeap(b *testing.B) {
	const n = 10000
	for _, v := range []struct {
		name string
		wait func(h *Hub, ctx context.Context, id string) error
	}{
		{"derived-deadline-context", func(h *Hub, ctx context.Context, id string) error {
			ctx, cancel := context.WithTimeout(ctx, time.Hour)
			defer cancel()
			return h.Wait(ctx, id, "tenant/product/group")
		}},
		{"WaitFor", func(h *Hub, ctx context.Context, id string) error {
			return h.WaitFor(ctx, id, "tenant/product/group", time.Hour)
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			for range b.N {
				h := NewHub(n)
				reqs := make([]context.Context, n)
				cancels := make([]context.CancelFunc, n)
				ids := make([]string, n)
				for i := range n {
					reqs[i], cancels[i] = context.WithCancel(context.Background())
					ids[i] = fmt.Sprintf("device-%06d", i)
				}
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() { <-start; <-reqs[i].Done() })
				}
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				close(start)
				for i := range n {
					wg.Go(func() { v.wait(h, reqs[i], ids[i]) })
				}
				for h.Waiting() < n {
					time.Sleep(time.Millisecond)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/waiter")
				for _, c := range cancels {
					c()
				}
				wg.Wait()
			}
		})
	}
}
