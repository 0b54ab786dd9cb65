package device_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/agent/command"
	"github.com/rampartsec/rampart/internal/cli/audit"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/device"
	"github.com/rampartsec/rampart/internal/cli/product"
)

// agentRun runs rampart-agent in-process against srv with a software attester.
func agentRun(srv *clitest.Server, state string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	full := append([]string{"--server", srv.URL, "--ca-file", srv.CAFile, "--state", state, "--attester", "software"}, args...)
	if err := command.Run(context.Background(), full, "test", &out, &errb); err != nil {
		return errb.String(), err
	}
	return out.String(), nil
}

// TestClaimWalk enrols a device with rampart-agent, claims it with rampart device claim, and
// attests. The server knows no releases yet, so the device's measured software is unknown
// and it gets an update-only certificate, with the reasons.
func TestClaimWalk(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(product.Command, device.Command, audit.Command), srv, srv.Admin)
	c.OK("product", "create", "sensor")

	state := t.TempDir()
	out, err := agentRun(srv, state, "enroll")
	if err != nil {
		t.Fatalf("rampart-agent enroll: %v: %s", err, out)
	}
	id := strings.TrimSpace(out)
	if len(id) != 64 {
		t.Fatalf("enroll printed %q, want a device ID", out)
	}
	if again, err := agentRun(srv, state, "enroll"); err != nil || strings.TrimSpace(again) != id {
		t.Errorf("enrolling again: %q, %v; want the same ID", again, err)
	}
	if _, err := agentRun(srv, state, "attest"); err == nil || !strings.Contains(err.Error(), "device_unclaimed") {
		t.Errorf("attest before the claim: %v", err)
	}

	c.Fails("has not enrolled", "device", "claim", strings.Repeat("0", 64), "--product", "sensor")
	if out := c.OK("device", "claim", id, "--product", "sensor", "--group", "Field Test"); !strings.Contains(out, "Field Test") {
		t.Errorf("device claim output:\n%s", out)
	}
	c.Fails("already claimed", "device", "claim", id, "--product", "sensor")

	// Software attesters are refused until the product accepts them.
	if _, err := agentRun(srv, state, "attest"); err == nil || !strings.Contains(err.Error(), "software_attester_refused") {
		t.Errorf("attest with software refused by policy: %v", err)
	}
	if out := c.OK("product", "policy", "sensor"); !strings.Contains(out, "false") {
		t.Errorf("default policy:\n%s", out)
	}
	c.OK("product", "policy", "sensor", "--accept-software=true")
	out, err = agentRun(srv, state, "attest")
	if err != nil {
		t.Fatalf("attest: %v %s", err, out)
	}
	var verdict struct {
		DeviceID   string `json:"device_id"`
		Status     string `json:"status"`
		UpdateOnly bool   `json:"update_only"`
	}
	if err := json.Unmarshal([]byte(out), &verdict); err != nil {
		t.Fatalf("attest output %q: %v", out, err)
	}
	if verdict.DeviceID != id || verdict.Status != "contraindicated" || !verdict.UpdateOnly {
		t.Errorf("verdict = %+v, want contraindicated and update-only (no releases known)", verdict)
	}
	if out := c.OK("device", "show", id); !strings.Contains(out, "contraindicated") {
		t.Errorf("device show after attestation:\n%s", out)
	}
	out = c.OK("device", "attestations", id)
	for _, want := range []string{"contraindicated", "update-only", "unknown_component", "software_attester", "software_attester_refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("device attestations lacks %q:\n%s", want, out)
		}
	}
	if out := c.OK("audit", "list"); !strings.Contains(out, "device.attest") || !strings.Contains(out, "device.claim") {
		t.Errorf("audit list lacks the claim or the attestation:\n%s", out)
	}
}

func TestPreauthorizeVerb(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(product.Command, device.Command), srv, srv.Admin)
	c.OK("product", "create", "sensor")
	state := t.TempDir()
	// Preauthorise by identity key: the device ID, printed by enroll, is that hash; enrol in a
	// throwaway server first to learn it.
	other := clitest.Start(t, "")
	out, err := agentRun(other, state, "enroll")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	c.Fails("exactly one of", "device", "preauthorize", "--product", "sensor")
	c.OK("device", "preauthorize", "--key-hash", id, "--product", "sensor", "--group", "Production")
	c.Fails("already preauthorised", "device", "preauthorize", "--key-hash", id, "--product", "sensor")
	if _, err := agentRun(srv, state, "enroll"); err != nil {
		t.Fatal(err)
	}
	if out := c.OK("device", "show", id); !strings.Contains(out, "Production") || !strings.Contains(out, "claimed") {
		t.Errorf("preauthorised device after enrolment:\n%s", out)
	}
}

// TestMoveWalk claims an enrolled device and moves it between groups with rampart device move.
func TestMoveWalk(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(product.Command, device.Command, audit.Command), srv, srv.Admin)
	c.OK("product", "create", "sensor")
	out, err := agentRun(srv, t.TempDir(), "enroll")
	if err != nil {
		t.Fatalf("rampart-agent enroll: %v: %s", err, out)
	}
	id := strings.TrimSpace(out)
	c.Fails("is not claimed by this tenant", "device", "move", id, "--group", "Production")
	c.OK("device", "claim", id, "--product", "sensor", "--group", "Field Test")

	c.Fails(`required flag(s) "group" not set`, "device", "move", id)
	c.Fails("its product has no group Nowhere", "device", "move", id, "--group", "Nowhere")
	if out := c.OK("device", "move", id, "--group", "Production"); !strings.Contains(out, "Production") {
		t.Errorf("device move output:\n%s", out)
	}
	var d struct {
		Group string `json:"group"`
	}
	if err := json.Unmarshal([]byte(c.OK("device", "show", id, "--output", "json")), &d); err != nil || d.Group != "Production" {
		t.Errorf("device show after the move: %+v, %v", d, err)
	}
	c.OK("device", "move", id, "--group", "Production") // already there: nothing changes
	if n := strings.Count(c.OK("audit", "list"), "device.move"); n != 1 {
		t.Errorf("%d device.move audit records, want 1", n)
	}
}
