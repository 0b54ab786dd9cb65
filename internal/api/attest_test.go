package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	agent "github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/attest"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/ratelimit"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/testenv"
)

// references is an in-memory reference source, as releases will supply.
type references map[string]attest.Reference

func (r references) References(context.Context, string, string) (map[string]attest.Reference, error) {
	return r, nil
}

// attestedDevice is an agent-side attester with its measurement log.
type attestedDevice struct {
	a        agent.Attester
	log      *agent.MeasurementLog
	id       string
	platform agent.PlatformLogs // none unless a test sets them
}

// newAttestedDevice measures one random image per component class and returns the reference
// values that describe them.
func newAttestedDevice(t *testing.T, a agent.Attester) (*attestedDevice, references) {
	t.Helper()
	ctx := context.Background()
	log, err := agent.OpenLog(filepath.Join(t.TempDir(), "log.json"), "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	refs := references{}
	for _, typ := range []deviceapi.EventType{deviceapi.EventBoot, deviceapi.EventOS, deviceapi.EventAgent, deviceapi.EventApplication} {
		img := make([]byte, 64)
		rand.Read(img)
		sum := sha256.Sum256(img)
		if err := log.Measure(ctx, a, typ, string(typ)+"-image", "1.0.0", sum[:]); err != nil {
			t.Fatal(err)
		}
		refs[hexDigest(sum[:])] = attest.Reference{Type: typ, Name: string(typ) + "-image", Version: "1.0.0"}
	}
	id, err := agent.DeviceID(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return &attestedDevice{a: a, log: log, id: id}, refs
}

func hexDigest(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// devicePost sends a JSON body to the device API with an optional client certificate.
func (h *harness) devicePost(path string, body []byte, cert *tls.Certificate) (int, []byte) {
	h.t.Helper()
	return h.devicePostType(path, "application/json", body, cert)
}

func (h *harness) devicePostType(path, contentType string, body []byte, cert *tls.Certificate) (int, []byte) {
	h.t.Helper()
	tr := h.srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Post(h.srv.URL+path, contentType, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// enrollOverHTTP enrols the device and answers the activation challenge if any.
func (h *harness) enrollOverHTTP(t *testing.T, d *attestedDevice) (*deviceapi.EnrollResponse, []byte) {
	t.Helper()
	req, err := d.a.Enrollment(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	status, body := h.devicePost("/device/v1/enroll", mustJSON(t, req), nil)
	if status != http.StatusOK {
		t.Fatalf("enroll: %d %s", status, body)
	}
	var resp deviceapi.EnrollResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.DeviceID != d.id {
		t.Fatalf("server device id %s, agent %s", resp.DeviceID, d.id)
	}
	var activation []byte
	if len(resp.Credential) > 0 {
		if activation, err = d.a.Activate(context.Background(), resp.Credential, resp.Secret); err != nil {
			t.Fatal(err)
		}
	}
	return &resp, activation
}

func (h *harness) evidence(t *testing.T, d *attestedDevice, nonce, activation []byte) []byte {
	t.Helper()
	ev, err := agent.Collect(context.Background(), d.a, d.log, d.platform, d.id, nonce, activation)
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, ev)
}

// deviceCert turns an attestation answer into the TLS certificate the agent presents, with
// the attester's certificate key (inside the TPM on TPM backends).
func deviceCert(t *testing.T, d *attestedDevice, body []byte) (tls.Certificate, *deviceapi.AttestResponse) {
	t.Helper()
	var resp deviceapi.AttestResponse
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Certificate) == 0 {
		t.Fatalf("attest answer %s: %v", body, err)
	}
	leaf, err := x509.ParseCertificate(resp.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := d.a.CertificateKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{resp.Certificate}, PrivateKey: signer, Leaf: leaf}, &resp
}

// runDeviceAPI drives one device through the device API and the admin API: enrol, claim,
// attest, use the certificate, renew, and the refusals around them.
func runDeviceAPI(t *testing.T, h *harness, d *attestedDevice, refs references, manufacturerPEM []byte) {
	ctx := context.Background()
	admin := h.client(h.admin)
	if _, err := admin.CreateProduct(ctx, client.CreateProductRequest{Name: "sensor"}); err != nil {
		t.Fatal(err)
	}
	for digest, ref := range refs {
		h.refs[digest] = ref
	}
	resp, activation := h.enrollOverHTTP(t, d)

	// Unclaimed: refused with the reason, nothing issued.
	status, body := h.devicePost("/device/v1/attest", h.evidence(t, d, resp.Nonce, activation), nil)
	if status != http.StatusForbidden || !strings.Contains(string(body), "attestation_refused") || !strings.Contains(string(body), attest.ReasonUnclaimed) {
		t.Fatalf("unclaimed device attest: %d %s", status, body)
	}

	// Claim (TPM devices: the tenant must trust the EK first).
	if manufacturerPEM != nil {
		if _, err := admin.ClaimDevice(ctx, d.id, client.ClaimDeviceRequest{Product: "sensor"}); err == nil || !strings.Contains(err.Error(), "EK") {
			t.Fatalf("claim without manufacturer CAs: %v, want an EK refusal", err)
		}
		if err := admin.SetManufacturerCAs(ctx, string(manufacturerPEM)); err != nil {
			t.Fatal(err)
		}
	} else if err := admin.SetAttestationPolicy(ctx, "sensor", client.AttestationPolicy{AcceptSoftware: true}); err != nil {
		t.Fatal(err)
	}
	dev, err := admin.ClaimDevice(ctx, d.id, client.ClaimDeviceRequest{Product: "sensor", Group: "Field Test"})
	if err != nil || dev.Group != "Field Test" {
		t.Fatalf("claim: %+v, %v", dev, err)
	}

	// First attestation: a normal certificate that works for mTLS on a normal endpoint.
	resp, activation = h.enrollOverHTTP(t, d)
	status, body = h.devicePost("/device/v1/attest", h.evidence(t, d, resp.Nonce, activation), nil)
	if status != http.StatusOK {
		t.Fatalf("attest: %d %s", status, body)
	}
	cert, ar := deviceCert(t, d, body)
	if ar.UpdateOnly || ar.RenewAt.IsZero() {
		t.Errorf("attest answer: %+v", ar)
	}
	if status, body := h.deviceGet("/device/v1/whoami", &cert); status != http.StatusOK || !strings.Contains(body, `"profile":"normal"`) {
		t.Fatalf("whoami with the issued certificate: %d %s", status, body)
	}

	// Renewal over mTLS.
	status, body = h.devicePost("/device/v1/challenge", nil, &cert)
	if status != http.StatusOK {
		t.Fatalf("challenge: %d %s", status, body)
	}
	var ch deviceapi.Challenge
	json.Unmarshal(body, &ch)
	status, body = h.devicePost("/device/v1/attest", h.evidence(t, d, ch.Nonce, nil), &cert)
	if status != http.StatusOK {
		t.Fatalf("renewal: %d %s", status, body)
	}

	// The same evidence again: a replay, refused.
	ch2Status, ch2 := h.devicePost("/device/v1/challenge", nil, &cert)
	if ch2Status != http.StatusOK {
		t.Fatal(string(ch2))
	}
	json.Unmarshal(ch2, &ch)
	ev := h.evidence(t, d, ch.Nonce, nil)
	if status, body := h.devicePost("/device/v1/attest", ev, &cert); status != http.StatusOK {
		t.Fatalf("attest: %d %s", status, body)
	}
	if status, body := h.devicePost("/device/v1/attest", ev, &cert); status != http.StatusForbidden || !strings.Contains(string(body), attest.ReasonNonceUnknown) {
		t.Errorf("replayed evidence: %d %s", status, body)
	}

	// Revoked software: update-only, refused by normal endpoints, accepted by update ones.
	for digest, ref := range h.refs {
		if ref.Type == deviceapi.EventApplication {
			ref.Revoked = true
			h.refs[digest] = ref
		}
	}
	json.Unmarshal(mustPost(t, h, "/device/v1/challenge", nil, &cert), &ch)
	status, body = h.devicePost("/device/v1/attest", h.evidence(t, d, ch.Nonce, nil), &cert)
	if status != http.StatusOK {
		t.Fatalf("attest with revoked software: %d %s", status, body)
	}
	updCert, ar := deviceCert(t, d, body)
	if !ar.UpdateOnly || ar.Status != deviceapi.StatusContraindicated {
		t.Errorf("revoked software answer: %+v", ar)
	}
	if status, body := h.deviceGet("/device/v1/whoami", &updCert); status != http.StatusOK || !strings.Contains(body, `"profile":"update-only"`) {
		t.Errorf("update endpoint with the update-only certificate: %d %s", status, body)
	}
	// An update-only device may still ask for a challenge to attest again after updating.
	if status, _ := h.devicePost("/device/v1/challenge", nil, &updCert); status != http.StatusOK {
		t.Errorf("challenge with the update-only certificate: %d", status)
	}

	// The admin API shows the results, newest first.
	list, err := admin.ListAttestations(ctx, d.id)
	if err != nil || len(list.Items) < 4 || list.Items[0].Granted != "update-only" {
		t.Errorf("attestations: %+v, %v", list, err)
	}
	if v, err := admin.VerifyAudit(ctx); err != nil || !v.Intact {
		t.Errorf("audit chain: %+v, %v", v, err)
	}
}

func mustPost(t *testing.T, h *harness, path string, body []byte, cert *tls.Certificate) []byte {
	t.Helper()
	status, b := h.devicePost(path, body, cert)
	if status != http.StatusOK {
		t.Fatalf("%s: %d %s", path, status, b)
	}
	return b
}

func TestDeviceAttestationSoftware(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		a, err := agent.OpenSoftware(t.TempDir(), "boot-1")
		if err != nil {
			t.Fatal(err)
		}
		d, refs := newAttestedDevice(t, a)
		runDeviceAPI(t, h, d, refs, nil)
	})
}

func TestDeviceAttestationSWTPM(t *testing.T) {
	addr, caPEM := testenv.StartSWTPM(t)
	h := newHarness(t, "sqlite")
	a, err := agent.Open(context.Background(), agent.Config{Spec: "swtpm:" + addr, StateDir: t.TempDir(), BootID: "boot-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	d, refs := newAttestedDevice(t, a)
	runDeviceAPI(t, h, d, refs, caPEM)
}

func TestDeviceAttestationBadInput(t *testing.T) {
	h := newHarness(t, "sqlite")
	a, err := agent.OpenSoftware(t.TempDir(), "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := newAttestedDevice(t, a)
	resp, _ := h.enrollOverHTTP(t, d)
	good := h.evidence(t, d, resp.Nonce, nil)
	other := h.newDevice("default")
	otherCert := h.issue("default", other, ca.ProfileNormal, time.Now())
	for _, tc := range []struct {
		name   string
		path   string
		body   []byte
		cert   *tls.Certificate
		status int
		code   string
	}{
		{"oversized evidence", "/device/v1/attest", append(bytes.Repeat([]byte(" "), deviceapi.MaxEvidenceSize), good...), nil, 413, "too_large"},
		{"truncated evidence", "/device/v1/attest", good[:len(good)/2], nil, 400, "bad_request"},
		{"evidence of an unknown device", "/device/v1/attest", bytes.Replace(good, []byte(d.id), []byte(strings.Repeat("0", 64)), 1), nil, 404, "not_found"},
		{"evidence of another device under a certificate", "/device/v1/attest", good, &otherCert, 403, "forbidden"},
		{"garbage enrolment", "/device/v1/enroll", []byte(`{"attester":"software","ak_public":"AAEC"}`), nil, 400, "bad_request"},
		{"enrolment with unknown field", "/device/v1/enroll", []byte(`{"attester":"software","ak_public":"AAEC","x":1}`), nil, 400, "bad_request"},
		{"challenge without certificate", "/device/v1/challenge", nil, nil, 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot()
			status, body := h.devicePost(tc.path, tc.body, tc.cert)
			var eb client.ErrorBody
			if status != tc.status || json.Unmarshal(body, &eb) != nil || eb.Error.Code != tc.code {
				t.Fatalf("got %d %s; want %d %s", status, body, tc.status, tc.code)
			}
			if diff := h.snapshot(); diff["audit_records"] != before["audit_records"] {
				t.Error("a refused request wrote an audit record")
			}
		})
	}
}

func TestDeviceAttestationRateLimit(t *testing.T) {
	h := newHarness(t, "sqlite")
	h.api.deviceLimit = ratelimit.New(0.001, 1, 100)
	a, err := agent.OpenSoftware(t.TempDir(), "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := newAttestedDevice(t, a)
	resp, _ := h.enrollOverHTTP(t, d)
	ev := h.evidence(t, d, resp.Nonce, nil)
	h.devicePost("/device/v1/attest", ev, nil)
	if status, body := h.devicePost("/device/v1/attest", ev, nil); status != http.StatusTooManyRequests {
		t.Errorf("second anonymous attest of one device: %d %s, want 429", status, body)
	}
}

// TestAttestationFollowsReleases is step 5 of the loop: reference values come from the
// product's releases, so a device on the newest release is admitted, one on an older release
// is warned, and once its release is revoked it only gets an update-only certificate.
func TestAttestationFollowsReleases(t *testing.T) {
	h := newHarness(t, "sqlite")
	h.api.attest = attest.NewService(attest.ServiceConfig{Store: h.store, CAs: h.cas, References: releaseReferences{rel: h.api.releases}})
	ctx := context.Background()
	admin := h.client(h.admin)
	if _, err := admin.CreateProduct(ctx, client.CreateProductRequest{Name: "sensor"}); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetAttestationPolicy(ctx, "sensor", client.AttestationPolicy{AcceptSoftware: true}); err != nil {
		t.Fatal(err)
	}
	k := h.keysInit(h.admin)
	rootfs := []byte("rootfs image 1.0.0")
	h.signedRelease(h.admin, k, "sensor", "1.0.0", rootfs)

	// The device runs release 1.0.0: it measured exactly its rootfs image.
	a, err := agent.OpenSoftware(t.TempDir(), "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	log, err := agent.OpenLog(filepath.Join(t.TempDir(), "log.json"), "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(rootfs)
	if err := log.Measure(ctx, a, deviceapi.EventOS, "rootfs", "1.0.0", sum[:]); err != nil {
		t.Fatal(err)
	}
	id, err := agent.DeviceID(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	d := &attestedDevice{a: a, log: log, id: id}
	h.enrollOverHTTP(t, d)
	if _, err := admin.ClaimDevice(ctx, id, client.ClaimDeviceRequest{Product: "sensor"}); err != nil {
		t.Fatal(err)
	}
	attestOnce := func() *deviceapi.AttestResponse {
		t.Helper()
		resp, _ := h.enrollOverHTTP(t, d)
		status, body := h.devicePost("/device/v1/attest", h.evidence(t, d, resp.Nonce, nil), nil)
		if status != http.StatusOK {
			t.Fatalf("attest: %d %s", status, body)
		}
		_, ar := deviceCert(t, d, body)
		return ar
	}
	codes := func(ar *deviceapi.AttestResponse) []string {
		var out []string
		for _, r := range ar.Reasons {
			out = append(out, r.Code)
		}
		return out
	}

	ar := attestOnce()
	if ar.Status != deviceapi.StatusWarning || ar.UpdateOnly || strings.Join(codes(ar), ",") != attest.ReasonSoftwareAttester {
		t.Errorf("on the newest release: %s update-only %v %v", ar.Status, ar.UpdateOnly, codes(ar))
	}

	h.signedRelease(h.admin, k, "sensor", "2.0.0", []byte("rootfs image 2.0.0"))
	ar = attestOnce()
	if ar.UpdateOnly || !strings.Contains(strings.Join(codes(ar), ","), attest.ReasonOutdatedRelease) {
		t.Errorf("on an older release: update-only %v %v", ar.UpdateOnly, codes(ar))
	}

	if _, err := admin.RevokeRelease(ctx, "sensor", "1.0.0", client.RevokeReleaseRequest{Reason: "CVE-2026-1234"}); err != nil {
		t.Fatal(err)
	}
	ar = attestOnce()
	if ar.Status != deviceapi.StatusContraindicated || !ar.UpdateOnly || !strings.Contains(strings.Join(codes(ar), ","), attest.ReasonRevokedComponent) {
		t.Errorf("on a revoked release: %s update-only %v %v", ar.Status, ar.UpdateOnly, codes(ar))
	}
	// Each reason names the measured component's type: no detail starts with a blank.
	for _, r := range ar.Reasons {
		if strings.HasPrefix(r.Detail, " ") || r.Detail == "" {
			t.Errorf("reason %s detail %q", r.Code, r.Detail)
		}
	}
}

// TestRevocationDemotesAtOnce: the moment a release is revoked, a device whose last attestation
// measured it loses its full access (its normal certificate counts as update-only) and its
// long-poll tells it to attest again; a device on another release keeps its access.
func TestRevocationDemotesAtOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		h.api.attest = attest.NewService(attest.ServiceConfig{Store: h.store, CAs: h.cas, References: releaseReferences{rel: h.api.releases}})
		ctx := context.Background()
		admin := h.client(h.admin)
		if _, err := admin.CreateProduct(ctx, client.CreateProductRequest{Name: "sensor"}); err != nil {
			t.Fatal(err)
		}
		if err := admin.SetAttestationPolicy(ctx, "sensor", client.AttestationPolicy{AcceptSoftware: true}); err != nil {
			t.Fatal(err)
		}
		h.api.deviceHandle("GET /device/v1/test-normal-only", deviceNormal, func(w http.ResponseWriter, r *http.Request, d *device) error {
			writeJSON(w, 200, map[string]string{"device": d.id})
			return nil
		})
		k := h.keysInit(h.admin)
		old, fixed := []byte("rootfs image 1.0.0"), []byte("rootfs image 2.0.0")
		h.signedRelease(h.admin, k, "sensor", "1.0.0", old)
		h.signedRelease(h.admin, k, "sensor", "2.0.0", fixed)

		// Two devices, one on each release, each with a normal certificate.
		attested := func(rootfs []byte, version string) (string, tls.Certificate) {
			t.Helper()
			dir := t.TempDir()
			a, err := agent.OpenSoftware(dir, "boot-1")
			if err != nil {
				t.Fatal(err)
			}
			log, err := agent.OpenLog(filepath.Join(dir, "log.json"), "boot-1")
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(rootfs)
			if err := log.Measure(ctx, a, deviceapi.EventOS, "rootfs", version, sum[:]); err != nil {
				t.Fatal(err)
			}
			id, err := agent.DeviceID(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			d := &attestedDevice{a: a, log: log, id: id}
			h.enrollOverHTTP(t, d)
			if _, err := admin.ClaimDevice(ctx, id, client.ClaimDeviceRequest{Product: "sensor"}); err != nil {
				t.Fatal(err)
			}
			resp, _ := h.enrollOverHTTP(t, d)
			status, body := h.devicePost("/device/v1/attest", h.evidence(t, d, resp.Nonce, nil), nil)
			if status != http.StatusOK {
				t.Fatalf("attest: %d %s", status, body)
			}
			cert, ar := deviceCert(t, d, body)
			if ar.UpdateOnly {
				t.Fatalf("release %s: update-only before any revocation: %v", version, ar.Reasons)
			}
			return id, cert
		}
		oldID, oldCert := attested(old, "1.0.0")
		_, fixedCert := attested(fixed, "2.0.0")

		rel, err := admin.RevokeRelease(ctx, "sensor", "1.0.0", client.RevokeReleaseRequest{Reason: "CVE-2026-1234"})
		if err != nil {
			t.Fatal(err)
		}
		if rel.State != "revoked" {
			t.Fatalf("release state %q", rel.State)
		}

		// At once, with the certificate it already holds: update-only.
		if status, body := h.deviceGet("/device/v1/test-normal-only", &oldCert); status != http.StatusForbidden {
			t.Errorf("full-access route with the demoted certificate: %d %s, want 403", status, body)
		}
		if status, body := h.deviceGet("/device/v1/whoami", &oldCert); status != http.StatusOK || !strings.Contains(body, `"profile":"update-only"`) {
			t.Errorf("whoami with the demoted certificate: %d %s", status, body)
		}
		if status, body := h.deviceGet("/device/v1/wait?timeout=1s", &oldCert); status != http.StatusOK || !strings.Contains(body, `"woken":true,"reattest":true`) {
			t.Errorf("wait with the demoted certificate: %d %s, want reattest", status, body)
		}
		// Told once: an agent that waits again with the same certificate (one that does not act
		// on it) waits as usual, and hears it again at the end, instead of calling in a loop.
		if status, body := h.deviceGet("/device/v1/wait?timeout=1s", &oldCert); status != http.StatusOK || !strings.Contains(body, `"woken":false,"reattest":true`) {
			t.Errorf("second wait with the demoted certificate: %d %s, want a wait that ends with reattest", status, body)
		}
		// The device on the fixed release keeps its access and is not told to attest again.
		if status, body := h.deviceGet("/device/v1/test-normal-only", &fixedCert); status != http.StatusOK {
			t.Errorf("full-access route on the fixed release: %d %s", status, body)
		}
		if status, body := h.deviceGet("/device/v1/wait?timeout=1s", &fixedCert); status != http.StatusOK || strings.Contains(body, "reattest") {
			t.Errorf("wait on the fixed release: %d %s", status, body)
		}
		ten, err := h.store.TenantByName(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		recs, _, err := h.store.ListAudit(ctx, ten.ID, store.AuditFilter{Action: "device.demote"}, store.Page{Limit: 10})
		if err != nil || len(recs) != 1 || !strings.Contains(recs[0].Details, `"devices":1`) {
			t.Errorf("device.demote audit records: %v %+v", err, recs)
		}
		// Attesting again on the revoked release gives an update-only certificate, as before.
		if _, err := h.store.DeviceByID(ctx, ten.ID, oldID); err != nil {
			t.Fatal(err)
		}
	})
}
