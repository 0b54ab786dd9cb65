package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	gattest "github.com/google/go-attestation/attest"

	"github.com/rampartsec/rampart/client"
	agent "github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/attest"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

// TestMeasuredBootPolicy: a product's boot policy travels through the API, a device sending a
// real firmware log is appraised by it, and the device's attestations show the boot state and
// the rule that decided.
func TestMeasuredBootPolicy(t *testing.T) {
	h := newHarness(t, "sqlite")
	h.api.attest = attest.NewService(attest.ServiceConfig{Store: h.store, CAs: h.cas, References: releaseReferences{rel: h.api.releases}})
	ctx := context.Background()
	admin := h.client(h.admin)
	if _, err := admin.CreateProduct(ctx, client.CreateProductRequest{Name: "sensor"}); err != nil {
		t.Fatal(err)
	}
	bad := client.AttestationPolicy{AcceptSoftware: true, BootDigests: []string{"not-a-digest"}}
	var apiErr *client.Error
	if err := admin.SetAttestationPolicy(ctx, "sensor", bad); !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("a bad boot digest: %v, want 400", err)
	}
	pol := client.AttestationPolicy{AcceptSoftware: true, RequireBootLog: true, RequireSecureBoot: false}
	if err := admin.SetAttestationPolicy(ctx, "sensor", pol); err != nil {
		t.Fatal(err)
	}

	// A device whose firmware measured a real boot (Ubuntu on a Shielded VM, Secure Boot off).
	raw, err := os.ReadFile(filepath.Join("..", "attest", "testdata", "eventlogs", "ubuntu_2104_shielded_vm_no_secure_boot_eventlog"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	el, err := gattest.ParseEventLog(raw)
	if err != nil {
		t.Fatal(err)
	}
	var apps []string
	for _, e := range el.Events(gattest.HashSHA256) {
		if e.Index > 9 || e.Type == 3 {
			continue
		}
		if err := a.Extend(ctx, e.Index, e.Digest); err != nil {
			t.Fatal(err)
		}
		if e.Index == 4 && uint32(e.Type) == 0x80000003 {
			apps = append(apps, hex.EncodeToString(e.Digest))
		}
	}
	evPath := filepath.Join(dir, "binary_bios_measurements")
	if err := os.WriteFile(evPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := agent.OpenLog(filepath.Join(dir, "log.json"), "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	agentImage := []byte("rampart-agent 1.0.0")
	h.signedRelease(h.admin, h.keysInit(h.admin), "sensor", "1.0.0", agentImage)
	sum := sha256.Sum256(agentImage)
	if err := log.Measure(ctx, a, deviceapi.EventAgent, "rampart-agent", "1.0.0", sum[:]); err != nil {
		t.Fatal(err)
	}
	id, err := agent.DeviceID(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	d := &attestedDevice{a: a, log: log, id: id, platform: agent.PlatformLogs{EventLog: evPath, IMALog: "-"}}
	h.enrollOverHTTP(t, d)
	if _, err := admin.ClaimDevice(ctx, id, client.ClaimDeviceRequest{Product: "sensor"}); err != nil {
		t.Fatal(err)
	}
	attestOnce := func() *deviceapi.AttestResponse {
		t.Helper()
		resp, _ := h.enrollOverHTTP(t, d)
		// Framed, as agents send it: the logs as raw bytes beside the JSON.
		var ev deviceapi.Evidence
		if err := json.Unmarshal(h.evidence(t, d, resp.Nonce, nil), &ev); err != nil {
			t.Fatal(err)
		}
		framed, err := deviceapi.EncodeEvidence(&ev)
		if err != nil {
			t.Fatal(err)
		}
		status, body := h.devicePostType("/device/v1/attest", deviceapi.ContentTypeEvidence, framed, nil)
		if status != http.StatusOK {
			t.Fatalf("attest: %d %s", status, body)
		}
		_, ar := deviceCert(t, d, body)
		return ar
	}
	latest := func() client.Attestation {
		t.Helper()
		list, err := admin.ListAttestations(ctx, id)
		if err != nil || len(list.Items) == 0 {
			t.Fatalf("attestations: %v", err)
		}
		return list.Items[0]
	}

	// Its shim and GRUB are in no release and not among the product's digests.
	if ar := attestOnce(); !ar.UpdateOnly {
		t.Fatalf("unknown boot chain: %s %v, want update-only", ar.Status, ar.Reasons)
	}
	got := latest()
	if got.Rule != attest.ReasonUnknownBoot || got.Boot == nil || got.Boot.Evidence != attest.EvidenceMeasuredBoot ||
		got.Boot.KernelCommandLine == "" || len(got.Boot.Applications) != 2 || got.Boot.SecureBoot {
		b, _ := json.Marshal(got)
		t.Fatalf("attestation %s", b)
	}

	// The operator lists them as the product's boot digests: the chain is known.
	pol.BootDigests = apps
	if err := admin.SetAttestationPolicy(ctx, "sensor", pol); err != nil {
		t.Fatal(err)
	}
	if ar := attestOnce(); ar.UpdateOnly {
		t.Fatalf("known boot chain: %s %v", ar.Status, ar.Reasons)
	}
	if got := latest(); got.Rule != attest.ReasonSoftwareAttester || got.Boot.Applications[0].Known == "" {
		t.Errorf("known chain decided by %q, applications %+v", got.Rule, got.Boot.Applications)
	}

	// Secure Boot required: this firmware booted without it.
	pol.RequireSecureBoot = true
	if err := admin.SetAttestationPolicy(ctx, "sensor", pol); err != nil {
		t.Fatal(err)
	}
	if ar := attestOnce(); !ar.UpdateOnly {
		t.Fatalf("secure boot off: %s %v, want update-only", ar.Status, ar.Reasons)
	}
	if got := latest(); got.Rule != attest.ReasonSecureBootOff {
		t.Errorf("secure boot off decided by %q", got.Rule)
	}

	// The same device without its firmware log is agent-only: never affirming under this policy.
	d.platform.EventLog = "-"
	if ar := attestOnce(); !ar.UpdateOnly {
		t.Fatalf("agent-only: %s %v, want update-only", ar.Status, ar.Reasons)
	}
	if got := latest(); got.Rule != attest.ReasonBootLogMissing || got.Boot.Evidence != attest.EvidenceAgentOnly {
		t.Errorf("agent-only decided by %q, boot %+v", got.Rule, got.Boot)
	}
}
