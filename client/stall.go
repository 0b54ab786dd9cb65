package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
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
	var n atomic.Int64
	ctx, cancel := context.WithCancelCause(context.WithValue(ctx, progressKey{}, &n))
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(stall)
		defer t.Stop()
		last := int64(-1)
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				cur := n.Load()
				if cur == last {
					cancel(fmt.Errorf("%w (%s)", ErrStalled, stall))
					return
				}
				last = cur
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// progress counts what r reads into ctx's stall counter.
func (c *Client) progress(ctx context.Context, r io.Reader) io.Reader {
	n, _ := ctx.Value(progressKey{}).(*atomic.Int64)
	if n == nil || r == nil {
		return r
	}
	return progressReader{r: r, n: n}
}

type progressReader struct {
	r io.Reader
	n *atomic.Int64
}

func (p progressReader) Read(b []byte) (int, error) {
	k, err := p.r.Read(b)
	p.n.Add(int64(k))
	return k, err
}

// stallCause prefers ErrStalled to the error a stalled upload's cancellation caused.
func stallCause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); errors.Is(c, ErrStalled) {
		return c
	}
	return err
}
