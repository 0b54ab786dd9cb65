package runner_test

import (
	"context"
	"crypto/x509"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/agent/runner"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/store"
)

// fleetServer is a real server with a signed product, as doc/updates.md leaves it.
type fleetServer struct {
	srv        *server.Server
	url        string
	dir        string
	admin      string
	cli        *clitest.CLI
	api        *client.Client
	keys       string
	tenant     string
	deployment string // the group's current deployment
}

// startFleet runs a server (its configuration changed by opts) with keys and the product lamp.
func startFleet(t *testing.T, opts ...func(*server.Config)) *fleetServer {
	t.Helper()
	dir := t.TempDir()
	addrc := make(chan net.Addr, 1)
	cfg := server.Config{DataDir: dir, Listen: "127.0.0.1:0", Ready: func(a net.Addr) { addrc <- a }}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	f := &fleetServer{srv: s, dir: dir, url: "https://" + (<-addrc).String(), keys: filepath.Join(t.TempDir(), "keys")}
	tok, _ := os.ReadFile(filepath.Join(dir, server.AdminTokenFile))
	f.admin = strings.TrimSpace(string(tok))
	f.cli = clitest.New(t, cli.Root, &clitest.Server{URL: f.url, Dir: dir, CAFile: filepath.Join(dir, server.ServiceCAFile), Admin: f.admin}, f.admin)
	f.cli.Env["RAMPART_KEYS_PASSPHRASE"] = "test passphrase"
	f.api, err = client.New(f.url, client.WithToken(f.admin), client.WithCAFile(filepath.Join(dir, server.ServiceCAFile)))
	if err != nil {
		t.Fatal(err)
	}
	f.cli.OK("keys", "init", "--dir", f.keys, "--threshold", "1", "--keys", "1")
	f.cli.OK("product", "create", "lamp")
	if err := f.api.SetAttestationPolicy(ctx, "lamp", client.AttestationPolicy{AcceptSoftware: true}); err != nil {
		t.Fatal(err)
	}
	tn, err := s.Store().TenantByName(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	f.tenant = tn.ID
	return f
}

// release adds an image built from seed (sharing most bytes with base) and signs a release.
func (f *fleetServer) release(t *testing.T, version string, seed uint64, base []byte) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 9))
	img := make([]byte, 256<<10)
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	if base != nil {
		img = append(append([]byte(nil), base...), img[:4096]...)
	}
	path := filepath.Join(t.TempDir(), "rootfs-"+version+".img")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(f.cli.OK("image", "add", path, "--component", "rootfs", "--version", version, "--security-version", "1"))
	f.cli.OK("release", "create", "--product", "lamp", "--version", version, "--image", id)
	f.cli.OK("release", "sign", "--product", "lamp", "--version", version, "--keys", f.keys)
	return img
}

// deploy sends a release to every device of the Production group at once, ending the group's
// previous deployment first (a group has one active deployment).
func (f *fleetServer) deploy(t *testing.T, version string) {
	t.Helper()
	ctx := context.Background()
	if f.deployment != "" {
		if _, err := f.srv.Store().AbortDeployment(ctx, store.System, f.tenant, f.deployment, "superseded"); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := rollout.NewPlan([]float64{100}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.srv.Store().CreateDeployment(ctx, store.System, f.tenant, store.DeploymentSpec{
		Product: "lamp", Group: "Production", Release: version, Plan: plan, Criteria: rollout.DefaultCriteria(), Emergency: true})
	if err != nil {
		t.Fatal(err)
	}
	f.deployment = d.ID
}

func (f *fleetServer) device(t *testing.T) *runner.Runner {
	t.Helper()
	pem, _ := os.ReadFile(filepath.Join(f.dir, server.ServiceCAFile))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	r, err := runner.New(context.Background(), runner.Config{Server: f.url, RootCAs: roots, StateDir: t.TempDir(),
		Attester: "software", KernelBootID: "boot-1", Interval: time.Second, WaitTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// TestRunnerInstallsAndHeals follows a device from enrolment through 1.0.0 and 1.1.0 (by delta)
// and refuses to go back.
func TestRunnerInstallsAndHeals(t *testing.T) {
	ctx := context.Background()
	f := startFleet(t)
	v1 := f.release(t, "1.0.0", 1, nil)
	r := f.device(t)
	if err := r.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	f.cli.OK("device", "claim", r.DeviceID(), "--product", "lamp", "--group", "Production")

	// No deployment yet. A blank device measures no software, so it gets an update-only
	// certificate: enough to install its first release, nothing else.
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	if st.CertNotAfter == nil || !st.UpdateOnly || st.Release != "" || st.LastOutcome != "no release assigned" {
		t.Fatalf("after the first check-in: %+v", st)
	}

	f.deploy(t, "1.0.0")
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	st = r.Status()
	// Booted into 1.0.0, it measured a released image: a warning (software attester), and a
	// normal certificate.
	if st.Release != "1.0.0" || st.Trial || st.LastOutcome != "committed 1.0.0" || st.Boots != 1 || st.UpdateOnly || st.Attestation != "warning" {
		t.Fatalf("after 1.0.0: %+v", st)
	}
	d, err := f.api.GetDevice(ctx, r.DeviceID())
	if err != nil || d.CurrentRelease != "1.0.0" {
		t.Fatalf("server's view after 1.0.0: %+v, %v", d, err)
	}

	f.release(t, "1.1.0", 2, v1)
	f.deploy(t, "1.1.0")
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	st = r.Status()
	if st.Release != "1.1.0" || st.LastOutcome != "committed 1.1.0 (delta: rootfs)" || st.Boots != 2 {
		t.Fatalf("after 1.1.0: %+v", st)
	}
	if d, _ := f.api.GetDevice(ctx, r.DeviceID()); d.CurrentRelease != "1.1.0" {
		t.Fatalf("server's view after 1.1.0: %+v", d)
	}

	// Pushing 1.0.0 back is refused by the agent, which stays committed on 1.1.0.
	f.deploy(t, "1.0.0")
	err = r.Once(ctx)
	st = r.Status()
	if err == nil || st.Release != "1.1.0" || st.Trial {
		t.Fatalf("after pushing 1.0.0 back: %+v (err %v); want a refusal and 1.1.0 kept", st, err)
	}
	t.Logf("rollback refused: %v", err)
}
