package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAddImageStalls uploads an image to a server that never answers, and to one that stops
// reading: each upload is abandoned with ErrStalled instead of holding `rampart image add`
// forever (uploads have no overall timeout, so before the stall watchdog both waited until the
// caller's context ended).
func TestAddImageStalls(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("version") == "1.0.0" {
			io.Copy(io.Discard, r.Body) // read it all, then never answer
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.stall = 300 * time.Millisecond
	for _, tc := range []struct {
		name, version string
		size          int64
	}{
		{"no answer", "1.0.0", 1 << 20},
		{"not read", "2.0.0", 256 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A bound for the test only: the upload must end by itself long before this.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			body := io.LimitReader(zeros{}, tc.size)
			_, err := c.AddImage(ctx, body, tc.size, "rootfs", tc.version, 1)
			if !errors.Is(err, ErrStalled) {
				t.Fatalf("AddImage = %v, want ErrStalled", err)
			}
			if ctx.Err() != nil {
				t.Fatal("the upload was held until the test gave up")
			}
			if !strings.Contains(err.Error(), "stalled") {
				t.Errorf("error %q does not say the upload stalled", err)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
