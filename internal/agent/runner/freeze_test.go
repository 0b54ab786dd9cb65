package runner_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/rampartsec/rampart/internal/agent/runner"
	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/tuf"
)

// TestRunnerRefusesExpiredMetadata is TUF's freeze attack against a running server: a device
// whose clock has passed the expiry of the image repository's timestamp, or of its director
// metadata, refuses the metadata and installs nothing, though every signature verifies. The
// clock is the agent's own (runner.Config.Now), not the machine's. Each role is shortened in
// turn on the server, so that each refusal is that role's own.
func TestRunnerRefusesExpiredMetadata(t *testing.T) {
	for _, c := range []struct {
		name    string
		shorten func(*tuf.Expiry)
		role    string // as the updater's error names it
	}{
		{"image repository timestamp", func(e *tuf.Expiry) { e.Timestamp = time.Hour }, "image repository"},
		{"director metadata", func(e *tuf.Expiry) { e.Director = time.Hour }, "director"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			exp := tuf.DefaultExpiry()
			c.shorten(&exp)
			f := startFleet(t, func(cfg *server.Config) { cfg.TUFExpiry = exp })
			v1 := f.release(t, "1.0.0", 1, nil)
			var ahead atomic.Int64 // how far the agent's clock runs ahead of the machine's
			r := claimedRunner(t, f.CLI, runner.Config{Server: f.URL, RootCAs: f.Roots, StateDir: t.TempDir(),
				Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
			f.Deploy(t, "1.0.0")
			if err := r.Once(ctx); err != nil {
				t.Fatal(err)
			}
			if st := r.Status(); st.Release != "1.0.0" {
				t.Fatalf("with fresh metadata: %+v", st)
			}

			// Two hours on, the shortened role's metadata (signed an hour's life) has expired;
			// the other's (a day, or more) has not.
			f.release(t, "1.1.0", 2, v1)
			f.Deploy(t, "1.1.0")
			ahead.Store(int64(2 * time.Hour))
			err := r.Once(ctx)
			var expired *metadata.ErrExpiredMetadata
			if !errors.Is(err, update.ErrMetadata) || !errors.As(err, &expired) || !strings.Contains(err.Error(), "update.Install: "+c.role+": ") {
				t.Fatalf("check-in two hours ahead = %v; want the %s's metadata refused as expired", err, c.role)
			}
			if st := r.Status(); st.Release != "1.0.0" || st.Trial {
				t.Fatalf("after the refusal: %+v; want 1.0.0 kept", st)
			}
			t.Logf("refused: %v", err)

			// Back on time, the same metadata is accepted and 1.1.0 installs.
			ahead.Store(0)
			if err := r.Once(ctx); err != nil {
				t.Fatal(err)
			}
			if st := r.Status(); st.Release != "1.1.0" {
				t.Fatalf("back on time: %+v", st)
			}
		})
	}
}
