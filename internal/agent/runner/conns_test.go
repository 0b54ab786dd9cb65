package runner_test

import (
	"context"
	"crypto/tls"
	"net/http/httptrace"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/internal/agent/runner"
)

// handshakes counts the TLS connections a device opens, full and resumed, from the calls made
// with a context that carries its trace (every call of a check-in and a long-poll does).
type handshakes struct {
	mu            sync.Mutex
	full, resumed int
}

func (h *handshakes) trace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if i.Reused {
			return
		}
		c, ok := i.Conn.(*tls.Conn)
		h.mu.Lock()
		defer h.mu.Unlock()
		if ok && c.ConnectionState().DidResume {
			h.resumed++
		} else {
			h.full++
		}
	}})
}

// TestHealConnections counts the TLS handshakes of one heal: the long-poll's connection wakes
// the device and serves the whole check-in (director and repository metadata, the delta, the
// install reports); after the reboot one resumed connection with the old certificate carries
// the challenge and the evidence, and the long-poll opens one with the new certificate (full:
// it has no session yet). An answer the updater expects (the 404 of the next root) must not
// cost its connection.
func TestHealConnections(t *testing.T) {
	ctx := context.Background()
	f := startFleet(t)
	v1 := f.release(t, "1.0.0", 1, nil)
	r := claimedRunner(t, f.CLI, runner.Config{Server: f.URL, RootCAs: f.Roots, StateDir: t.TempDir()})
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	f.Deploy(t, "1.0.0")
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	f.release(t, "1.1.0", 2, v1)
	// On the long-poll, as the fleet is when a heal starts.
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	var h handshakes
	tctx := h.trace(ctx)
	f.Deploy(t, "1.1.0")
	if err := r.Wait(tctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Once(tctx); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Release != "1.1.0" || st.Boots != 2 {
		t.Fatalf("after the heal: %+v", st)
	}
	if err := r.Wait(tctx); err != nil {
		t.Fatal(err)
	}
	if h.full != 1 || h.resumed != 1 {
		t.Errorf("TLS handshakes of one heal: %d full, %d resumed; want 1 and 1", h.full, h.resumed)
	}
}
