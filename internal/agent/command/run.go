package command

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/agent/identity"
	"github.com/rampartsec/rampart/internal/agent/update"
)

// updateFlags are the flags of `run` and `status`, given after the verb.
type updateFlags struct {
	once         bool
	slots        string
	repoRoot     string
	directorRoot string
	interval     time.Duration
	output       string
}

func parseUpdateFlags(verb, state string, args []string, stderr io.Writer) (updateFlags, error) {
	var f updateFlags
	fs := flag.NewFlagSet("rampart-agent "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.slots, "slots", filepath.Join(state, "slots"), "A/B slot folder: a/, b/, staging/ and state.json")
	if verb == "run" {
		fs.BoolVar(&f.once, "once", false, "run one update cycle and print its outcome, then exit")
		fs.StringVar(&f.repoRoot, "repo-root", filepath.Join(state, "tuf", "root.json"), "pinned image-repository root (root.json from `rampart keys init`)")
		fs.StringVar(&f.directorRoot, "director-root", filepath.Join(state, "tuf", "director-root.json"), "pinned director root (director-root.json from `rampart keys init`)")
		fs.DurationVar(&f.interval, "interval", 5*time.Minute, "time between update cycles")
	} else {
		fs.StringVar(&f.output, "output", "json", "output format (json)")
	}
	if err := fs.Parse(args); err != nil {
		return f, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() != 0 {
		return f, fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	if f.output != "" && f.output != "json" {
		return f, fmt.Errorf("%w: --output %q is not json", ErrUsage, f.output)
	}
	if verb == "run" && f.interval < time.Second {
		return f, fmt.Errorf("%w: --interval must be at least 1s", ErrUsage)
	}
	return f, nil
}

// status prints the A/B slot state.
func status(f updateFlags, stdout io.Writer) error {
	slots, err := update.OpenSlots(f.slots, nil)
	if err != nil {
		return err
	}
	st, err := slots.State()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// run finishes a pending trial boot, then checks for updates every interval
// (or once): renew the device certificate when due, refresh the image
// repository and the director, install into the inactive slot, trial-boot
// and commit or roll back, reporting each state to the server.
func run(ctx context.Context, f updateFlags, server, state string, id *identity.Identity, logger *slog.Logger, stdout io.Writer) error {
	repoRoot, err := os.ReadFile(f.repoRoot)
	if err != nil {
		return fmt.Errorf("pinned image-repository root: %w", err)
	}
	directorRoot, err := os.ReadFile(f.directorRoot)
	if err != nil {
		return fmt.Errorf("pinned director root: %w", err)
	}
	slots, err := update.OpenSlots(f.slots, nil)
	if err != nil {
		return err
	}
	server = strings.TrimSuffix(server, "/")
	for {
		out, err := cycle(ctx, server, state, id, slots, repoRoot, directorRoot, logger)
		if f.once {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if perr := enc.Encode(out); perr != nil {
				return perr
			}
			return err
		}
		if err != nil {
			logger.Warn("update cycle failed", "err", err)
		} else if out.Installed {
			logger.Info("update cycle", "release", out.Release, "committed", out.Committed, "delta", out.Delta, "rolled_back", out.RolledBack)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.interval):
		}
	}
}

func cycle(ctx context.Context, server, state string, id *identity.Identity, slots *update.Slots, repoRoot, directorRoot []byte, logger *slog.Logger) (update.Outcome, error) {
	if _, err := id.RenewIfDue(ctx); err != nil {
		return update.Outcome{}, fmt.Errorf("device certificate: %w", err)
	}
	tenant, err := tenantOf(id)
	if err != nil {
		return update.Outcome{}, err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: id.TLSConfig()}}
	defer client.CloseIdleConnections()
	u, err := update.New(update.Config{
		DeviceID:     id.DeviceID(),
		RepoURL:      server + "/tuf/" + tenant,
		DirectorURL:  server + "/device/v1/director",
		RepoRoot:     repoRoot,
		DirectorRoot: directorRoot,
		StateDir:     filepath.Join(state, "tuf"),
		Slots:        slots,
		HTTPClient:   client,
		Reporter:     &update.HTTPReporter{URL: server + "/device/v1/install-status", Client: client},
		Health:       reachable(server, client),
		Logger:       logger,
	})
	if err != nil {
		return update.Outcome{}, err
	}
	return u.RunOnce(ctx)
}

// reachable is the default health check of a freshly booted slot: the
// device still reaches its server with its certificate.
func reachable(server string, client *http.Client) update.HealthFunc {
	return func(ctx context.Context, _ update.Boot) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/device/v1/whoami", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("server answered %s", resp.Status)
		}
		return nil
	}
}

// tenantOf reads the tenant from the device certificate's SPIFFE ID
// (spiffe://<tenant>/device/<id> or spiffe://<tenant>/update-only/device/<id>).
func tenantOf(id *identity.Identity) (string, error) {
	c := id.Certificate()
	if c == nil || len(c.Certificate) == 0 {
		return "", errors.New("no device certificate yet: the device must attest first")
	}
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return "", fmt.Errorf("device certificate: %w", err)
		}
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].Scheme != "spiffe" || leaf.URIs[0].Host == "" {
		return "", errors.New("the device certificate carries no SPIFFE ID")
	}
	return leaf.URIs[0].Host, nil
}
