package attest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	agent "github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
)

// fakeCAs opens one real tenant CA per tenant on first use, as the server's keeper does.
type fakeCAs struct {
	mu   sync.Mutex
	kek  []byte
	auth map[string]*ca.Authority
}

func (f *fakeCAs) Authority(_ context.Context, tenantID, tenantName string) (*ca.Authority, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.auth[tenantID]; ok {
		return a, nil
	}
	sealed, err := ca.Create(tenantName, tenantName+".rampart.internal", f.kek, time.Now())
	if err != nil {
		return nil, err
	}
	a, err := ca.Open(tenantName, sealed, f.kek)
	if err != nil {
		return nil, err
	}
	f.auth[tenantID] = a
	return a, nil
}

// fakeRefs serves reference values per product from memory.
type fakeRefs map[string]map[string]Reference

func (f fakeRefs) References(_ context.Context, _, product string) (map[string]Reference, error) {
	return f[product], nil
}

type serviceHarness struct {
	svc    *Service
	st     *store.Store
	cas    *fakeCAs
	refs   fakeRefs
	tenant store.Tenant
	other  store.Tenant
}

const admin = store.Actor("token:test")

func newServiceHarness(t testing.TB) *serviceHarness {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{SQLitePath: filepath.Join(t.TempDir(), "rampart.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := make([]byte, ca.KEKSize)
	rand.Read(kek)
	h := &serviceHarness{st: st, cas: &fakeCAs{kek: kek, auth: map[string]*ca.Authority{}}, refs: fakeRefs{}}
	if h.tenant, err = st.CreateTenant(ctx, admin, "", testTenant); err != nil {
		t.Fatal(err)
	}
	if h.other, err = st.CreateTenant(ctx, admin, "", "beta"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateProduct(ctx, admin, h.tenant.ID, "thermostat", ""); err != nil {
		t.Fatal(err)
	}
	h.svc = NewService(ServiceConfig{Store: st, CAs: h.cas, References: h.refs})
	return h
}

// enroll sends the device's enrolment through the wire and the service.
func (h *serviceHarness) enroll(t testing.TB, d *device) *deviceapi.EnrollResponse {
	t.Helper()
	req, err := d.a.Enrollment(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.svc.Enroll(context.Background(), roundTrip(t, req, decodeEnroll))
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	return resp
}

// attest answers resp (activating on TPM backends) and attests.
func (h *serviceHarness) attest(t *testing.T, d *device, resp *deviceapi.EnrollResponse, callerTenant string) *deviceapi.AttestResponse {
	t.Helper()
	var activation []byte
	if len(resp.Credential) > 0 {
		var err error
		if activation, err = d.a.Activate(context.Background(), resp.Credential, resp.Secret); err != nil {
			t.Fatal(err)
		}
	}
	ev := d.collect(t, resp.DeviceID, resp.Nonce, activation)
	out, err := h.svc.Attest(context.Background(), ev, callerTenant)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	return out
}

func refusedWith(t *testing.T, r *deviceapi.AttestResponse, code string) {
	t.Helper()
	if r.Status != deviceapi.StatusContraindicated || len(r.Certificate) != 0 || len(r.Reasons) == 0 || r.Reasons[len(r.Reasons)-1].Code != code {
		t.Fatalf("response %s %v with certificate %v, want refusal %s", r.Status, r.Reasons, len(r.Certificate) != 0, code)
	}
}

func (h *serviceHarness) lastResult(t *testing.T, deviceID string) store.AttestationRecord {
	t.Helper()
	list, err := h.st.ListAttestations(context.Background(), deviceID, 1)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListAttestations: %v, %d", err, len(list))
	}
	return list[0]
}

func TestServiceSoftwareDevice(t *testing.T) {
	ctx := context.Background()
	h := newServiceHarness(t)
	dir := t.TempDir()
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	rel := release(t, "1.0.0")
	h.refs["thermostat"] = referencesFor(rel)
	d := newDevice(t, a, dir, rel)

	// Unclaimed: refused, stored without a tenant.
	resp := h.enroll(t, d)
	refusedWith(t, h.attest(t, d, resp, ""), ReasonUnclaimed)
	if rec := h.lastResult(t, resp.DeviceID); rec.TenantID != "" || rec.Granted != "none" {
		t.Errorf("stored refusal = %+v", rec)
	}

	// Claimed, but the product refuses software attesters by default.
	if _, err := h.svc.Claim(ctx, admin, h.tenant.ID, resp.DeviceID, "thermostat", "Development"); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	refusedWith(t, h.attest(t, d, h.enroll(t, d), ""), ReasonSoftwareRefused)

	// Accepted by policy: a warning and a normal certificate for the device's key.
	if err := h.st.SetAttestationPolicy(ctx, admin, h.tenant.ID, "thermostat", store.AttestationPolicy{AcceptSoftware: true}); err != nil {
		t.Fatal(err)
	}
	out := h.attest(t, d, h.enroll(t, d), "")
	if out.Status != deviceapi.StatusWarning || out.UpdateOnly || len(out.Certificate) == 0 {
		t.Fatalf("accepted software device: %s %v update-only %v", out.Status, out.Reasons, out.UpdateOnly)
	}
	cert, err := x509.ParseCertificate(out.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	auth, _ := h.cas.Authority(ctx, h.tenant.ID, h.tenant.Name)
	if class, id := auth.Classify(cert, time.Now()); class != ca.ClassNormal || id != resp.DeviceID {
		t.Errorf("issued certificate classifies as %v %s", class, id)
	}
	if !out.RenewAt.Equal(ca.RenewAt(cert).UTC()) {
		t.Errorf("renew_at %v, want the half life %v", out.RenewAt, ca.RenewAt(cert))
	}
	if rec := h.lastResult(t, resp.DeviceID); rec.TenantID != h.tenant.ID || rec.Status != "warning" || rec.CertSerial == "" {
		t.Errorf("stored result = %+v", rec)
	}
	if dev, err := h.st.DeviceByID(ctx, h.tenant.ID, resp.DeviceID); err != nil || dev.Attestation != "warning" {
		t.Errorf("device after attestation = %+v, %v", dev, err)
	}

	// Renewal over the device's certificate: a challenge, then evidence.
	ch, err := h.svc.Challenge(ctx, resp.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := h.svc.Attest(ctx, d.collect(t, resp.DeviceID, ch.Nonce, nil), h.tenant.ID)
	if err != nil || len(renewed.Certificate) == 0 {
		t.Fatalf("renewal: %+v, %v", renewed, err)
	}

	// The same device presenting another tenant's certificate is refused.
	ch, err = h.svc.Challenge(ctx, resp.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := h.svc.Attest(ctx, d.collect(t, resp.DeviceID, ch.Nonce, nil), h.other.ID)
	if err != nil {
		t.Fatal(err)
	}
	refusedWith(t, foreign, ReasonOtherTenant)

	// Its application release is revoked: update-only.
	for digest, ref := range h.refs["thermostat"] {
		if ref.Type == deviceapi.EventApplication {
			ref.Revoked = true
			h.refs["thermostat"][digest] = ref
		}
	}
	ch, err = h.svc.Challenge(ctx, resp.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	upd, err := h.svc.Attest(ctx, d.collect(t, resp.DeviceID, ch.Nonce, nil), h.tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(upd.Certificate)
	if err != nil || !upd.UpdateOnly {
		t.Fatalf("revoked release: update-only %v, %v", upd.UpdateOnly, err)
	}
	if class, _ := auth.Classify(cert, time.Now()); class != ca.ClassUpdateOnly {
		t.Errorf("certificate after revocation classifies as %v", class)
	}
	if v, err := h.st.VerifyAudit(ctx, h.tenant.ID); err != nil || v.Records == 0 {
		t.Errorf("audit chain: %+v, %v", v, err)
	}
}

func TestServiceRejects(t *testing.T) {
	ctx := context.Background()
	h := newServiceHarness(t)
	if _, err := h.svc.Enroll(ctx, &deviceapi.EnrollRequest{Attester: deviceapi.KindSoftware, AKPublic: []byte{1, 2, 3}}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Enroll with a garbage key: %v, want ErrBadRequest", err)
	}
	unknown := hex.EncodeToString(make([]byte, 32))
	if _, err := h.svc.Claim(ctx, admin, h.tenant.ID, unknown, "thermostat", "Development"); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("Claim of an unknown device: %v, want ErrUnknownDevice", err)
	}
	ev := &deviceapi.Evidence{DeviceID: unknown}
	if _, err := h.svc.Attest(ctx, ev, ""); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("Attest of an unknown device: %v, want ErrUnknownDevice", err)
	}
}

func TestServiceSWTPMDevice(t *testing.T) {
	ctx := context.Background()
	addr, caPEM := startSWTPM(t)
	h := newServiceHarness(t)
	a, err := agent.Open(ctx, agent.Config{Spec: "swtpm:" + addr, StateDir: t.TempDir(), BootID: "boot-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rel := release(t, "1.0.0")
	h.refs["thermostat"] = referencesFor(rel)
	d := newDevice(t, a, t.TempDir(), rel)
	resp := h.enroll(t, d)

	// Without manufacturer CAs the tenant cannot vouch for the EK.
	if _, err := h.svc.Claim(ctx, admin, h.tenant.ID, resp.DeviceID, "thermostat", "Production"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Claim without manufacturer CAs: %v, want ErrForbidden", err)
	}
	_, otherCA := selfSignedCA(t)
	if err := h.st.SetManufacturerCAs(ctx, admin, h.tenant.ID, string(otherCA)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Claim(ctx, admin, h.tenant.ID, resp.DeviceID, "thermostat", "Production"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Claim with another manufacturer's CA: %v, want ErrForbidden", err)
	}
	if err := h.st.SetManufacturerCAs(ctx, admin, h.tenant.ID, string(caPEM)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Claim(ctx, admin, h.tenant.ID, resp.DeviceID, "thermostat", "Production"); err != nil {
		t.Fatalf("Claim with the swtpm CA: %v", err)
	}

	// The first attestation activates the credential; TPM evidence is affirming.
	out := h.attest(t, d, h.enroll(t, d), "")
	if out.Status != deviceapi.StatusAffirming || len(out.Certificate) == 0 {
		t.Fatalf("swtpm device: %s %v", out.Status, out.Reasons)
	}
	e, _, err := h.st.EnrollmentByDevice(ctx, resp.DeviceID)
	if err != nil || !e.Activated {
		t.Errorf("enrolment after first attestation: activated %v, %v", e.Activated, err)
	}
	ch, err := h.svc.Challenge(ctx, resp.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := h.svc.Attest(ctx, d.collect(t, resp.DeviceID, ch.Nonce, nil), h.tenant.ID)
	if err != nil || renewed.Status != deviceapi.StatusAffirming {
		t.Fatalf("renewal without activation: %+v, %v", renewed, err)
	}
}

func TestServiceEKPreauthorisation(t *testing.T) {
	ctx := context.Background()
	addr, _ := startSWTPM(t)
	h := newServiceHarness(t)
	a, err := agent.Open(ctx, agent.Config{Spec: "swtpm:" + addr, StateDir: t.TempDir(), BootID: "boot-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	req, err := a.Enrollment(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.st.Preauthorize(ctx, admin, h.tenant.ID, store.PreauthEK, deviceapi.KeyHash(req.EKPublic), "thermostat", "Field Test"); err != nil {
		t.Fatal(err)
	}
	rel := release(t, "1.0.0")
	h.refs["thermostat"] = referencesFor(rel)
	d := newDevice(t, a, t.TempDir(), rel)
	resp := h.enroll(t, d)
	dev, err := h.st.DeviceByID(ctx, h.tenant.ID, resp.DeviceID)
	if err != nil || dev.GroupName != "Field Test" {
		t.Fatalf("preauthorised device after enrolment = %+v, %v", dev, err)
	}
	if out := h.attest(t, d, resp, ""); out.Status != deviceapi.StatusAffirming {
		t.Errorf("preauthorised device: %s %v", out.Status, out.Reasons)
	}
}
