package runner_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/agent/runner"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/server"
)

// fleetServer is a real server with a signed product, as doc/updates.md leaves it.
type fleetServer struct{ *clitest.Fleet }

// startFleet runs a server (its configuration changed by opts) with keys and the product lamp.
func startFleet(t *testing.T, opts ...func(*server.Config)) *fleetServer {
	t.Helper()
	return &fleetServer{clitest.StartFleet(t, cli.Root, opts...)}
}

// claimedRunner makes a runner from cfg (a software attester, boot ID boot-1 and a one-second
// interval and wait where cfg leaves them unset), enrols it and claims it into lamp's
// Production group with c, as an operator would.
func claimedRunner(t *testing.T, c *clitest.CLI, cfg runner.Config) *runner.Runner {
	t.Helper()
	if cfg.Attester == "" {
		cfg.Attester = "software"
	}
	if cfg.KernelBootID == "" {
		cfg.KernelBootID = "boot-1"
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = time.Second
	}
	r, err := runner.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if err := r.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.OK("device", "claim", r.DeviceID(), "--product", "lamp", "--group", "Production")
	return r
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
	f.Release(t, version, img)
	return img
}

func (f *fleetServer) device(t *testing.T) *runner.Runner {
	t.Helper()
	r, err := runner.New(context.Background(), runner.Config{Server: f.URL, RootCAs: f.Roots, StateDir: t.TempDir(),
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
	f.CLI.OK("device", "claim", r.DeviceID(), "--product", "lamp", "--group", "Production")

	// No deployment yet. A blank device measures no software, so it gets an update-only
	// certificate: enough to install its first release, nothing else.
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	if st.CertNotAfter == nil || !st.UpdateOnly || st.Release != "" || st.LastOutcome != "no release assigned" {
		t.Fatalf("after the first check-in: %+v", st)
	}

	f.Deploy(t, "1.0.0")
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	st = r.Status()
	// Booted into 1.0.0, it measured a released image: a warning (software attester), and a
	// normal certificate.
	if st.Release != "1.0.0" || st.Trial || st.LastOutcome != "committed 1.0.0" || st.Boots != 1 || st.UpdateOnly || st.Attestation != "warning" {
		t.Fatalf("after 1.0.0: %+v", st)
	}
	d, err := f.API.GetDevice(ctx, r.DeviceID())
	if err != nil || d.CurrentRelease != "1.0.0" {
		t.Fatalf("server's view after 1.0.0: %+v, %v", d, err)
	}

	f.release(t, "1.1.0", 2, v1)
	f.Deploy(t, "1.1.0")
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	st = r.Status()
	if st.Release != "1.1.0" || st.LastOutcome != "committed 1.1.0 (delta: rootfs)" || st.Boots != 2 {
		t.Fatalf("after 1.1.0: %+v", st)
	}
	if d, _ := f.API.GetDevice(ctx, r.DeviceID()); d.CurrentRelease != "1.1.0" {
		t.Fatalf("server's view after 1.1.0: %+v", d)
	}

	// Pushing 1.0.0 back is refused by the agent, which stays committed on 1.1.0.
	f.Deploy(t, "1.0.0")
	err = r.Once(ctx)
	st = r.Status()
	if err == nil || st.Release != "1.1.0" || st.Trial {
		t.Fatalf("after pushing 1.0.0 back: %+v (err %v); want a refusal and 1.1.0 kept", st, err)
	}
	t.Logf("rollback refused: %v", err)
}
