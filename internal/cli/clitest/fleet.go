package clitest

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/certpool"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/sim"
	"github.com/rampartsec/rampart/internal/store"
)

// Fleet is a running server set up as doc/updates.md leaves it, for tests that run real agents
// against it: offline keys in Keys, and the product lamp, whose policy accepts software
// attesters. Release and Deploy put releases on its Production group.
type Fleet struct {
	*Server
	CLI      *CLI
	API      *client.Client
	Roots    *x509.CertPool // the service CA, for the agents' TLS
	Keys     string         // the offline key folder
	TenantID string         // the default tenant
	// Deployment is the Production group's current deployment, from the last Deploy.
	Deployment string
}

// StartFleet starts a server (its configuration changed by opts) and sets it up with root's
// verbs: keys init, product create lamp, software attesters accepted.
func StartFleet(t testing.TB, root Root, opts ...func(*server.Config)) *Fleet {
	t.Helper()
	srv := StartConfig(t, opts...)
	f := &Fleet{Server: srv, Keys: filepath.Join(t.TempDir(), "keys")}
	f.CLI = New(t, root, srv, srv.Admin)
	f.CLI.Env["RAMPART_KEYS_PASSPHRASE"] = "test passphrase"
	var err error
	if f.API, err = client.New(srv.URL, client.WithToken(srv.Admin), client.WithCAFile(srv.CAFile)); err != nil {
		t.Fatal(err)
	}
	if f.Roots, err = certpool.FromFile(srv.CAFile); err != nil {
		t.Fatal(err)
	}
	f.CLI.OK("keys", "init", "--dir", f.Keys)
	f.CLI.OK("product", "create", "lamp")
	ctx := context.Background()
	if err := f.API.SetAttestationPolicy(ctx, "lamp", client.AttestationPolicy{AcceptSoftware: true}); err != nil {
		t.Fatal(err)
	}
	tn, err := srv.Service.Store().TenantByName(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	f.TenantID = tn.ID
	return f
}

// Release adds img as the rootfs image of version and creates and signs the release of lamp,
// as `rampart image add`, `release create` and `release sign` do.
func (f *Fleet) Release(t testing.TB, version string, img []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rootfs-"+version+".img")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(f.CLI.OK("image", "add", path, "--component", "rootfs", "--version", version, "--security-version", "1"))
	f.CLI.OK("release", "create", "--product", "lamp", "--version", version, "--image", id)
	f.CLI.OK("release", "sign", "--product", "lamp", "--version", version, "--keys", f.Keys)
}

// Deploy sends version to the whole Production group at once (an emergency deployment), ending
// the group's previous deployment first: a group has one open deployment.
func (f *Fleet) Deploy(t testing.TB, version string) {
	t.Helper()
	ctx := context.Background()
	st := f.Service.Store()
	if f.Deployment != "" {
		if _, err := st.AbortDeployment(ctx, store.System, f.TenantID, f.Deployment, "superseded"); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := rollout.NewPlan([]float64{100}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.CreateDeployment(ctx, store.System, f.TenantID, store.DeploymentSpec{
		Product: "lamp", Group: "Production", Release: version, Plan: plan, Criteria: rollout.DefaultCriteria(), Emergency: true})
	if err != nil {
		t.Fatal(err)
	}
	f.Deployment = d.ID
}

// Sim makes the simulated fleet cfg, its devices enrolled and claimed into lamp/Production
// through this server's API, and closes it when the test ends. cfg.Server and cfg.RootCAs, when
// empty, are this server's (a test may point the devices at a replica or a proxy instead).
func (f *Fleet) Sim(t testing.TB, cfg sim.Config) *sim.Fleet {
	t.Helper()
	if cfg.Server == "" {
		cfg.Server = f.URL
	}
	if cfg.RootCAs == nil {
		cfg.RootCAs = f.Roots
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	ctx := context.Background()
	s, err := sim.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Claim(ctx, f.API, "lamp", "Production"); err != nil {
		t.Fatal(err)
	}
	return s
}

// RunSim runs s's devices (sim.Fleet.Run) until stop is called or the test ends; stop returns
// what Run returned, and later calls return it again.
func RunSim(t testing.TB, s *sim.Fleet) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}
