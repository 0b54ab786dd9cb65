package runner

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/agent/devclient"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

// fakeClock is the retries' clock in these tests: Sleep records the wait and moves the time on
// at once, so that the schedule is asserted without waiting for it.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	return ctx.Err()
}

// waitServer answers the long-poll with the statuses in fail, one per call, then wakes the
// device (or, with none left and forever set, fails with the last one).
type waitServer struct {
	calls atomic.Int32
	fail  []int
}

func (s *waitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != deviceapi.PathWait {
		http.NotFound(w, r)
		return
	}
	n := int(s.calls.Add(1))
	if n <= len(s.fail) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.fail[n-1])
		w.Write([]byte(`{"error":{"code":"busy","message":"try again"}}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"woken":true}`))
}

// newWaitRunner is a Runner whose device API is srv, with the fake clock and a fixed jitter
// (Rand 0.5: every wait is exactly its nominal value).
func newWaitRunner(t *testing.T, srv *httptest.Server, clock *fakeClock, failed *atomic.Int32) *Runner {
	t.Helper()
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	r, err := New(context.Background(), Config{Server: srv.URL, RootCAs: roots, StateDir: t.TempDir(),
		Attester: "software", KernelBootID: "boot-1", Interval: time.Hour, WaitTimeout: 5 * time.Minute,
		LongPollFailed: func(error) { failed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	r.clock = clock
	r.rand = func() float64 { return 0.5 }
	return r
}

// TestWaitRetriesFailedLongPoll: a long-poll that fails is opened again after 1, 2, 4, 8 s...
// (not after the whole check-in interval, which stalled 1,505 of 10,000 devices in a bench
// run), and the wake-up that follows is returned.
func TestWaitRetriesFailedLongPoll(t *testing.T) {
	ws := &waitServer{fail: []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable}}
	srv := httptest.NewTLSServer(ws)
	t.Cleanup(srv.Close)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	var failed atomic.Int32
	r := newWaitRunner(t, srv, clock, &failed)
	if err := r.Wait(context.Background()); err != nil {
		t.Fatalf("Wait = %v; want the wake-up after the failures", err)
	}
	if got := ws.calls.Load(); got != 6 {
		t.Errorf("long-polls = %d; want 6 (5 failures, then the wake-up)", got)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	if diff := cmp.Diff(want, clock.sleeps); diff != "" {
		t.Errorf("waits between the long-polls (-want +got):\n%s", diff)
	}
	if got := failed.Load(); got != 5 {
		t.Errorf("LongPollFailed called %d times; want 5", got)
	}
	st := r.Status()
	if st.LongPollFailures != 5 || st.LastLongPollError == "" || r.LongPollFailing() {
		t.Errorf("status after the wake-up: failures %d, last error %q, failing %v; want 5, the 503, false",
			st.LongPollFailures, st.LastLongPollError, r.LongPollFailing())
	}
}

// TestWaitChecksInAfterFailingAMinute: a long-poll that keeps failing is retried with waits
// capped at LongPollMaxRetry, and after LongPollCheckInAfter Wait returns the error so that the
// caller checks in (a wake-up sent meanwhile may no longer be remembered by the server).
func TestWaitChecksInAfterFailingAMinute(t *testing.T) {
	fail := make([]int, 100)
	for i := range fail {
		fail[i] = http.StatusServiceUnavailable
	}
	ws := &waitServer{fail: fail}
	srv := httptest.NewTLSServer(ws)
	t.Cleanup(srv.Close)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	var failed atomic.Int32
	r := newWaitRunner(t, srv, clock, &failed)
	err := r.Wait(context.Background())
	if !devclient.IsStatus(err, http.StatusServiceUnavailable) {
		t.Fatalf("Wait = %v; want the 503 after a minute of failures", err)
	}
	// 1+2+4+8+16 = 31 s, then the cap of 30 s: 61 s after the first failure, the 7th fails
	// and Wait returns.
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, LongPollMaxRetry}
	if diff := cmp.Diff(want, clock.sleeps); diff != "" {
		t.Errorf("waits between the long-polls (-want +got):\n%s", diff)
	}
	if got := ws.calls.Load(); got != 7 {
		t.Errorf("long-polls = %d; want 7", got)
	}
	if !r.LongPollFailing() {
		t.Error("LongPollFailing = false after a failed long-poll")
	}
}

// TestWaitWithoutLongPoll: a server without the long-poll (404) is not asked again and again;
// the device waits for its periodic check-in.
func TestWaitWithoutLongPoll(t *testing.T) {
	ws := &waitServer{fail: []int{http.StatusNotFound}}
	srv := httptest.NewTLSServer(ws)
	t.Cleanup(srv.Close)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	var failed atomic.Int32
	r := newWaitRunner(t, srv, clock, &failed)
	err := r.Wait(context.Background())
	if !devclient.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("Wait = %v; want the 404", err)
	}
	if got := ws.calls.Load(); got != 1 {
		t.Errorf("long-polls = %d; want 1", got)
	}
	if len(clock.sleeps) != 1 || clock.sleeps[0] < 54*time.Minute || clock.sleeps[0] > 66*time.Minute {
		t.Errorf("waits = %v; want one, the check-in interval (1 h ±10 %%)", clock.sleeps)
	}
}

// TestWaitStopsWithContext: a cancelled context ends the retries.
func TestWaitStopsWithContext(t *testing.T) {
	ws := &waitServer{fail: []int{http.StatusServiceUnavailable}}
	srv := httptest.NewTLSServer(ws)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	clock := &cancelClock{fakeClock: fakeClock{t: time.Unix(1_800_000_000, 0)}, cancel: cancel}
	var failed atomic.Int32
	r := newWaitRunner(t, srv, &clock.fakeClock, &failed)
	r.clock = clock
	if err := r.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v; want context.Canceled", err)
	}
	if got := ws.calls.Load(); got != 1 {
		t.Errorf("long-polls = %d; want 1", got)
	}
}

// cancelClock cancels the context at the first wait.
type cancelClock struct {
	fakeClock
	cancel context.CancelFunc
}

func (c *cancelClock) Sleep(ctx context.Context, d time.Duration) error {
	c.cancel()
	return c.fakeClock.Sleep(ctx, d)
}

// TestBackoff checks the schedule's doubling, its cap and the jitter's range.
func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name string
		rand float64
		want []time.Duration
	}{
		{"lowest", 0, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"nominal", 0.5, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}},
		{"above", 0.75, []time.Duration{1250 * time.Millisecond, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 12500 * time.Millisecond, 12500 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Min: time.Second, Max: 10 * time.Second, Rand: func() float64 { return tc.rand }}
			var got []time.Duration
			for range tc.want {
				got = append(got, b.Next())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("schedule (-want +got):\n%s", diff)
			}
			if b.Tries() != len(tc.want) {
				t.Errorf("Tries = %d; want %d", b.Tries(), len(tc.want))
			}
			b.Reset()
			if d := b.Next(); d != got[0] {
				t.Errorf("after Reset: %s; want %s", d, got[0])
			}
		})
	}
}
