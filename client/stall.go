package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/watchdog"
)

// UploadStall is how long an upload (AddImage) may make no progress, neither sending a byte nor
// receiving one of the answer, before it is abandoned with ErrStalled. Uploads have no overall
// timeout, since images may be large.
const UploadStall = 60 * time.Second

// ErrStalled means an upload made no progress for UploadStall.
var ErrStalled = errors.New("upload stalled: the server neither read nor answered")

type progressKey struct{}

// watchStall returns a context cancelled with ErrStalled once the counter that progress readers
// of that context add to stops moving for the stall time.
func (c *Client) watchStall(ctx context.Context) (context.Context, func()) {
	stall := c.stall
	if stall <= 0 {
		stall = UploadStall
	}
	ctx, cancel := context.WithCancelCause(ctx)
	n := new(atomic.Int64)
	stop := watchdog.Watch(ctx, cancel, n, watchdog.Rate{Bytes: 1, Window: stall, Grace: true}, func(int64) error {
		return fmt.Errorf("%w (%s)", ErrStalled, stall)
	})
	return context.WithValue(ctx, progressKey{}, n), func() { stop(); cancel(nil) }
}

// progress counts what r reads into ctx's stall counter.
func (c *Client) progress(ctx context.Context, r io.Reader) io.Reader {
	n, _ := ctx.Value(progressKey{}).(*atomic.Int64)
	if n == nil || r == nil {
		return r
	}
	return watchdog.Reader(r, n)
}

// stallCause prefers ErrStalled to the error a stalled upload's cancellation caused.
func stallCause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); errors.Is(c, ErrStalled) {
		return c
	}
	return err
}
