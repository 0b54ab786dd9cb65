package runner_test

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/agent/runner"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
)

// TestRunnerWithoutUpdateKeys checks in a device that is enrolled, claimed and attested, in a
// tenant that has no update keys yet: no update is configured, which is a normal state, so the
// check-in succeeds, the crash reports go up and the long-poll is held. Before, the check-in
// failed with "the tenant has no update keys yet" and stopped there.
func TestRunnerWithoutUpdateKeys(t *testing.T) {
	ctx := context.Background()
	srv := clitest.StartConfig(t)
	c := clitest.New(t, cli.Root, srv, srv.Admin)
	c.OK("product", "create", "lamp")
	api, err := client.New(srv.URL, client.WithToken(srv.Admin), client.WithCAFile(srv.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := api.SetAttestationPolicy(ctx, "lamp", client.AttestationPolicy{AcceptSoftware: true}); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	spool := filepath.Join(t.TempDir(), "crash-spool")
	r := claimedRunner(t, c, runner.Config{Server: srv.URL, RootCAs: roots, StateDir: t.TempDir(), SpoolDir: spool})
	crash := `{"program":"/usr/bin/lampd","version":"0.9.0","signal":11,"frames":["lampd(led_set+0x1a) [0x55d0c0ffee00]"],"time":"` +
		time.Now().UTC().Format(time.RFC3339Nano) + `"}`
	if err := os.WriteFile(filepath.Join(spool, "lampd-1.json"), []byte(crash), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := r.Once(ctx); err != nil {
		t.Fatalf("check-in without update keys: %v", err)
	}
	st := r.Status()
	if st.CertNotAfter == nil || st.LastOutcome != "no update keys yet" || st.PendingCrashes != 0 || st.LastError != "" {
		t.Fatalf("status after the check-in: %+v", st)
	}
	groups, err := api.ListFailureGroups(ctx, client.FailureFilter{Product: "lamp"}, client.ListOptions{})
	if err != nil || len(groups.Items) != 1 || groups.Items[0].Program != "lampd" {
		t.Fatalf("failure groups %+v, %v; want the crash filed", groups, err)
	}
	// The long-poll is held and times out (no wake-up), without an error.
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("wait: %v", err)
	}
}
