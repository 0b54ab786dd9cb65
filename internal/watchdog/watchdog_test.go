package watchdog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var errSlow = errors.New("too slow")

// TestWatchCancelsAStalledTransfer: a transfer that moves nothing is cancelled with the
// caller's error, which Cause then prefers to the error the cancellation caused.
func TestWatchCancelsAStalledTransfer(t *testing.T) {
	for _, grace := range []bool{false, true} {
		ctx, _, stop := WithWatch(context.Background(), Rate{Bytes: 1, Window: 10 * time.Millisecond, Grace: grace}, func(int64) error { return errSlow })
		<-ctx.Done()
		if err := Cause(ctx, context.Canceled); !errors.Is(err, errSlow) {
			t.Errorf("grace %v: Cause = %v, want the watchdog's error", grace, err)
		}
		stop()
	}
}

// TestCauseLeavesPlainCancellation: a context cancelled without a reason leaves the error as is.
func TestCauseLeavesPlainCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	want := errors.New("read: connection reset")
	if err := Cause(ctx, want); err != want {
		t.Errorf("Cause = %v, want %v", err, want)
	}
}

// TestReaderCounts: what the reader reads is what the counter holds.
func TestReaderCounts(t *testing.T) {
	_, n, stop := WithWatch(context.Background(), Rate{Bytes: 1, Window: time.Hour}, func(int64) error { return errSlow })
	defer stop()
	b := make([]byte, 64)
	k, _ := Reader(strings.NewReader("twelve bytes"), n).Read(b)
	if k != 12 || n.Load() != 12 {
		t.Errorf("read %d bytes, counted %d; want 12 and 12", k, n.Load())
	}
}
