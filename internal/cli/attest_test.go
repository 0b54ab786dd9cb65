package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/agent/command"
)

// agentRun runs rampart-agent in-process against the server with a software attester.
func agentRun(t *testing.T, url, caFile, state string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"--server", url, "--ca-file", caFile, "--state", state, "--attester", "software"}, args...)
	err := command.Run(context.Background(), full, "test", &out, &errb)
	if err != nil {
		return errb.String(), err
	}
	return out.String(), nil
}

// TestDeviceClaimWalk enrols a device with rampart-agent, claims it with rampart device claim,
// and attests. The server knows no releases yet, so the device's measured software is
// unknown and it gets an update-only certificate, with the reasons.
func TestDeviceClaimWalk(t *testing.T) {
	dir := t.TempDir()
	url := startServer(t, dir, "")
	caFile := filepath.Join(dir, "service-ca.pem")
	c := &cli{t: t, config: filepath.Join(t.TempDir(), "config.json")}
	c.ok("login", "--server", url, "--ca-file", caFile, "--token-file", filepath.Join(dir, "admin.token"))
	c.ok("product", "create", "sensor")

	state := t.TempDir()
	out, err := agentRun(t, url, caFile, state, "enroll")
	if err != nil {
		t.Fatalf("rampart-agent enroll: %v: %s", err, out)
	}
	id := strings.TrimSpace(out)
	if len(id) != 64 {
		t.Fatalf("enroll printed %q, want a device ID", out)
	}
	if again, err := agentRun(t, url, caFile, state, "enroll"); err != nil || strings.TrimSpace(again) != id {
		t.Errorf("enrolling again: %q, %v; want the same ID", again, err)
	}

	if out, err := agentRun(t, url, caFile, state, "attest"); err == nil || !strings.Contains(out+err.Error(), "device_unclaimed") {
		t.Errorf("attest before the claim: %v %s", err, out)
	}
	c.fails("has not enrolled", "device", "claim", strings.Repeat("0", 64), "--product", "sensor")
	if out := c.ok("device", "claim", id, "--product", "sensor", "--group", "Field Test"); !strings.Contains(out, "Field Test") {
		t.Errorf("device claim output:\n%s", out)
	}
	c.fails("already claimed", "device", "claim", id, "--product", "sensor")

	// Software attesters are refused until the product accepts them.
	if _, err := agentRun(t, url, caFile, state, "attest"); err == nil || !strings.Contains(err.Error(), "software_attester_refused") {
		t.Errorf("attest with software refused by policy: %v", err)
	}
	if out := c.ok("product", "policy", "sensor"); !strings.Contains(out, "false") {
		t.Errorf("default policy:\n%s", out)
	}
	c.ok("product", "policy", "sensor", "--accept-software=true")
	out, err = agentRun(t, url, caFile, state, "attest")
	if err != nil {
		t.Fatalf("attest: %v %s", err, out)
	}
	var verdict struct {
		DeviceID   string `json:"device_id"`
		Status     string `json:"status"`
		UpdateOnly bool   `json:"update_only"`
		Reasons    []struct{ Code string }
	}
	if err := json.Unmarshal([]byte(out), &verdict); err != nil {
		t.Fatalf("attest output %q: %v", out, err)
	}
	if verdict.DeviceID != id || verdict.Status != "contraindicated" || !verdict.UpdateOnly {
		t.Errorf("verdict = %+v, want contraindicated and update-only (no releases known)", verdict)
	}
	if out := c.ok("device", "show", id); !strings.Contains(out, "contraindicated") {
		t.Errorf("device show after attestation:\n%s", out)
	}
	if out := c.ok("audit", "list"); !strings.Contains(out, "device.attest") || !strings.Contains(out, "device.claim") {
		t.Errorf("audit list lacks the claim or the attestation:\n%s", out)
	}
}
