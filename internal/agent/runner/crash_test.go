package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/agent/runner"
)

// TestRunnerReportsCrashes follows a crash from an application's spool file through the agent's
// outbox and /device/v1/failures to a failure group the operator sees, counted in the phase of
// the deployment that brought the release.
func TestRunnerReportsCrashes(t *testing.T) {
	ctx := context.Background()
	f := startFleet(t)
	f.release(t, "1.0.0", 1, nil)
	spool := filepath.Join(t.TempDir(), "crash-spool")
	cfg := runner.Config{Server: f.URL, RootCAs: f.Roots, StateDir: t.TempDir(), SpoolDir: spool,
		Attester: "software", KernelBootID: "boot-1", Interval: time.Second, WaitTimeout: time.Second}
	r := claimedRunner(t, f.CLI, cfg)
	f.Deploy(t, "1.0.0")
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Release != "1.0.0" || st.UpdateOnly {
		t.Fatalf("device after 1.0.0: %+v", st)
	}
	// `rampart-agent status` reads the same from the state folder alone (no attester, no server).
	want := r.Status()
	got, err := runner.ReadStatus(runner.Config{StateDir: cfg.StateDir, Attester: "tpm"})
	if err != nil || got.DeviceID != want.DeviceID || got.Attester != "software" || got.Release != "1.0.0" || got.Slot != want.Slot ||
		got.Trial != want.Trial || got.UpdateOnly != want.UpdateOnly || got.CertNotAfter == nil || !got.CertNotAfter.Equal(*want.CertNotAfter) ||
		got.Boots != want.Boots {
		t.Fatalf("ReadStatus = %+v, %v; the running agent says %+v", got, err, want)
	}
	// The crash time keeps its fraction of a second: truncated, it could fall before the moment
	// within the same second at which the server recorded the device on 1.0.0, and the crash
	// would be counted on the release before.
	crash := `{"program":"/usr/bin/lampd","component":"rootfs","signal":11,"frames":["lampd(led_set+0x1a) [0x55d0c0ffee00]","lampd(main+0x10) [0x55d0c0ff0000]"],"time":"` +
		time.Now().UTC().Format(time.RFC3339Nano) + `"}`
	if err := os.WriteFile(filepath.Join(spool, ".tmp-crash"), []byte(crash), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(spool, ".tmp-crash"), filepath.Join(spool, "lampd-1.json")); err != nil {
		t.Fatal(err)
	}
	if err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.PendingCrashes != 0 {
		t.Fatalf("crash reports still pending: %+v", st)
	}
	groups, err := f.API.ListFailureGroups(ctx, client.FailureFilter{Product: "lamp"}, client.ListOptions{})
	if err != nil || len(groups.Items) != 1 {
		t.Fatalf("failure groups %+v, %v", groups, err)
	}
	g := groups.Items[0]
	if g.Program != "lampd" || g.FaultType != "SIGSEGV" || len(g.Frames) == 0 || g.Frames[0] != "led_set" || g.NewInRelease != "1.0.0" {
		t.Errorf("failure group %+v", g)
	}
	det, err := f.API.GetFailureGroup(ctx, g.ID)
	if err != nil || len(det.Counts) != 1 || det.Counts[0].Phase != 1 || det.Counts[0].DeploymentID != f.Deployment {
		t.Errorf("failure counts %+v, %v; want phase 1 of %s", det.Counts, err, f.Deployment)
	}
}
