// Package watchdog holds the minimum-transfer-rate watchdog that a transfer over the network
// uses against a peer that answers slowly or not at all (TUF's slow-retrieval attack): a
// counter of the bytes moved, a reader that adds to it, a goroutine that cancels the
// transfer's context once a window passes with too few bytes, and the choice between the
// context's cause and the error it caused. Its callers keep their own errors and sentences.
//
// It imports only the standard library, so the public client (client), the agent's device-API
// client (internal/agent/devclient) and its updater (internal/agent/update) may import it.
package watchdog

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// Rate is the least a transfer must move: Bytes in every Window.
type Rate struct {
	Bytes  int64
	Window time.Duration
	// Grace leaves the first window unchecked.
	Grace bool
}

// PerSecond is the Rate of at least bps bytes per second, checked over each window.
func PerSecond(bps int64, window time.Duration) Rate {
	return Rate{Bytes: int64(float64(bps) * window.Seconds()), Window: window}
}

// Watch calls cancel with slow(moved) the first time a window of r passes in which fewer than
// r.Bytes were added to n (moved is how many were). It stops when ctx is done or when the
// returned stop is called.
func Watch(ctx context.Context, cancel context.CancelCauseFunc, n *atomic.Int64, r Rate, slow func(moved int64) error) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(r.Window)
		defer t.Stop()
		last, grace := n.Load(), r.Grace
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				cur := n.Load()
				if cur-last < r.Bytes && !grace {
					cancel(slow(cur - last))
					return
				}
				last, grace = cur, false
			}
		}
	}()
	return func() { close(done) }
}

// WithWatch returns a context that Watch cancels with slow(moved), the counter to add the
// transfer's bytes to (see Reader), and the function that stops the watchdog and releases the
// context.
func WithWatch(ctx context.Context, r Rate, slow func(moved int64) error) (context.Context, *atomic.Int64, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	n := new(atomic.Int64)
	stop := Watch(ctx, cancel, n, r, slow)
	return ctx, n, func() { stop(); cancel(nil) }
}

// Reader returns r, adding what it reads to n.
func Reader(r io.Reader, n *atomic.Int64) io.Reader { return countingReader{r: r, n: n} }

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// Cause prefers the reason ctx ended (a watchdog's, or a deadline's own cause) to the error err
// it caused; a bare context.Canceled or context.DeadlineExceeded is no reason.
func Cause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(c, context.DeadlineExceeded) {
		return c
	}
	return err
}
