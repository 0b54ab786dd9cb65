package attest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	agent "github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/agent/attest/tpmsim"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/testenv"
)

// runLifecycle enrols a device, attests it (completing credential
// activation on TPM backends), issues and uses its certificate, then renews
// with a fresh challenge. wantStatus is the verdict for healthy software.
func runLifecycle(t *testing.T, a agent.Attester, cas *ManufacturerCAs, preauth func(string) bool, wantStatus deviceapi.Status) {
	ctx := context.Background()
	rel := release(t, "1.0.0")
	d := newDevice(t, a, t.TempDir(), rel)
	s := newServer(t)
	pol := Policy{AcceptSoftware: true, References: referencesFor(rel)}
	en := s.enroll(t, d, cas, preauth)

	// First attestation: answers the activation challenge on TPM backends.
	ev := d.collect(t, en.dev.ID, en.resp.Nonce, en.activation)
	res := s.v.Verify(ctx, Input{Evidence: ev, Device: en.dev, Tenant: testTenant, Policy: pol})
	if res.Status != wantStatus || res.Grant != GrantNormal {
		t.Fatalf("first attestation: %s/%s %v, want %s/normal", res.Status, res.Grant, res.Reasons, wantStatus)
	}
	if got, want := res.Activated, a.Kind().IsTPM(); got != want {
		t.Errorf("Activated = %v, want %v", got, want)
	}
	if class := s.checkIssued(t, d, res); class != ca.ClassNormal {
		t.Errorf("issued certificate class %v, want normal", class)
	}
	en.dev.Activated = res.Activated

	// The same evidence again is a replay.
	res = s.v.Verify(ctx, Input{Evidence: ev, Device: en.dev, Tenant: testTenant, Policy: pol})
	if got := refusal(res); got != ReasonNonceUnknown {
		t.Errorf("replayed evidence: refusal %q, want %q (reasons %v)", got, ReasonNonceUnknown, res.Reasons)
	}

	// Renewal: a new challenge, no activation.
	ch, err := s.v.Challenge(ctx, en.dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	ev = d.collect(t, en.dev.ID, ch.Nonce, nil)
	res = s.v.Verify(ctx, Input{Evidence: ev, Device: en.dev, Tenant: testTenant, Policy: pol})
	if res.Status != wantStatus || res.Grant != GrantNormal || res.Activated {
		t.Fatalf("renewal: %s/%s activated=%v %v", res.Status, res.Grant, res.Activated, res.Reasons)
	}

	// An update installs revoked software: the next renewal only gets an
	// update-only certificate.
	pol.References = referencesFor(rel)
	for digest, ref := range pol.References {
		if ref.Type == deviceapi.EventApplication {
			ref.Revoked = true
			pol.References[digest] = ref
		}
	}
	ch, err = s.v.Challenge(ctx, en.dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	ev = d.collect(t, en.dev.ID, ch.Nonce, nil)
	res = s.v.Verify(ctx, Input{Evidence: ev, Device: en.dev, Tenant: testTenant, Policy: pol})
	if res.Status != deviceapi.StatusContraindicated || res.Grant != GrantUpdateOnly {
		t.Fatalf("revoked application: %s/%s %v, want contraindicated/update-only", res.Status, res.Grant, res.Reasons)
	}
	if class := s.checkIssued(t, d, res); class != ca.ClassUpdateOnly {
		t.Errorf("issued certificate class %v, want update-only", class)
	}
}

// tpmRefusals checks the TPM-only bad inputs on a fresh enrolment: a wrong
// activation answer, a missing one, and a certificate key the AK did not
// certify.
func tpmRefusals(t *testing.T, a agent.Attester, cas *ManufacturerCAs, preauth func(string) bool) {
	ctx := context.Background()
	rel := release(t, "1.0.0")
	d := newDevice(t, a, t.TempDir(), rel)
	s := newServer(t)
	pol := Policy{References: referencesFor(rel)}
	en := s.enroll(t, d, cas, preauth)

	wrong := append([]byte(nil), en.activation...)
	wrong[0] ^= 1
	ev := d.collect(t, en.dev.ID, en.resp.Nonce, wrong)
	res := s.v.Verify(ctx, Input{Evidence: ev, Device: en.dev, Tenant: testTenant, Policy: pol})
	if got := refusal(res); got != ReasonActivationFailed {
		t.Errorf("wrong activation secret: refusal %q, want %q (reasons %v)", got, ReasonActivationFailed, res.Reasons)
	}

	ch, err := s.v.Challenge(ctx, en.dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	ev = d.collect(t, en.dev.ID, ch.Nonce, nil)
	res = s.v.Verify(ctx, Input{Evidence: ev, Device: en.dev, Tenant: testTenant, Policy: pol})
	if got := refusal(res); got != ReasonActivationMissing {
		t.Errorf("no activation answer: refusal %q, want %q (reasons %v)", got, ReasonActivationMissing, res.Reasons)
	}

	en.dev.Activated = true
	ch, err = s.v.Challenge(ctx, en.dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	ev = d.collect(t, en.dev.ID, ch.Nonce, nil)
	ev.CertKeyCertification = nil
	res = s.v.Verify(ctx, Input{Evidence: ev, Device: en.dev, Tenant: testTenant, Policy: pol})
	if got := refusal(res); got != ReasonCertKeyUncertified {
		t.Errorf("uncertified certificate key: refusal %q, want %q (reasons %v)", got, ReasonCertKeyUncertified, res.Reasons)
	}
}

// reopenKeepsIdentity checks that an attester reopened on the same state
// folder (a restarted agent) has the same device ID and certificate key,
// and that its evidence still verifies for the enrolled device.
func reopenKeepsIdentity(t *testing.T, open func(dir string) agent.Attester, cas *ManufacturerCAs, preauth func(string) bool) {
	ctx := context.Background()
	dir := t.TempDir()
	rel := release(t, "1.0.0")
	a := open(dir)
	d := newDevice(t, a, dir, rel)
	s := newServer(t)
	en := s.enroll(t, d, cas, preauth)
	signer, _, err := a.CertificateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := signer.Public()
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	a = open(dir)
	d.a = a
	id, err := agent.DeviceID(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if id != en.dev.ID {
		t.Fatalf("device id after reopen %s, enrolled as %s", id, en.dev.ID)
	}
	signer, _, err = a.CertificateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(signer.Public(), before) {
		t.Error("certificate key changed across reopen")
	}
	ev := d.collect(t, en.dev.ID, en.resp.Nonce, en.activation)
	res := s.v.Verify(ctx, Input{Evidence: ev, Device: en.dev, Tenant: testTenant, Policy: Policy{AcceptSoftware: true, References: referencesFor(rel)}})
	if res.Grant != GrantNormal {
		t.Errorf("evidence after reopen: %s/%s %v", res.Status, res.Grant, res.Reasons)
	}
}

func TestLifecycleSoftware(t *testing.T) {
	a, err := agent.Open(context.Background(), agent.Config{Spec: "software", StateDir: t.TempDir(), BootID: "boot-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	runLifecycle(t, a, nil, nil, deviceapi.StatusWarning)
	t.Run("reopen", func(t *testing.T) {
		reopenKeepsIdentity(t, func(dir string) agent.Attester {
			a, err := agent.Open(context.Background(), agent.Config{Spec: "software", StateDir: dir, BootID: "boot-1"})
			if err != nil {
				t.Fatal(err)
			}
			return a
		}, nil, nil)
	})
}

func TestLifecycleSWTPM(t *testing.T) {
	// PCRs belong to the TPM, so each subtest that measures gets its own
	// freshly manufactured swtpm: one TPM, one device.
	start := func(t *testing.T) (string, *ManufacturerCAs) {
		addr, caPEM := startSWTPM(t)
		cas, err := ParseManufacturerCAs(caPEM)
		if err != nil {
			t.Fatal(err)
		}
		return addr, cas
	}
	openAt := func(t *testing.T, addr, dir string) agent.Attester {
		a, err := agent.Open(context.Background(), agent.Config{Spec: "swtpm:" + addr, StateDir: dir, BootID: "boot-1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	open := func(t *testing.T) (agent.Attester, *ManufacturerCAs) {
		addr, cas := start(t)
		return openAt(t, addr, t.TempDir()), cas
	}
	t.Run("lifecycle", func(t *testing.T) {
		a, cas := open(t)
		runLifecycle(t, a, cas, nil, deviceapi.StatusAffirming)
	})
	t.Run("refusals", func(t *testing.T) {
		a, cas := open(t)
		tpmRefusals(t, a, cas, nil)
	})
	t.Run("ek from unknown CA", func(t *testing.T) {
		a, cas := open(t)
		req, err := a.Enrollment(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(req.EKCertificate) == 0 {
			t.Fatal("swtpm enrolment carries no EK certificate")
		}
		e, err := CheckEnrollment(req)
		if err != nil {
			t.Fatal(err)
		}
		_, otherCA := selfSignedCA(t)
		other, err := ParseManufacturerCAs(otherCA)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.CheckEK(other, nil); !errors.Is(err, ErrEKUntrusted) {
			t.Errorf("CheckEK with another manufacturer CA: %v, want ErrEKUntrusted", err)
		}
		if err := e.CheckEK(nil, func(string) bool { return false }); !errors.Is(err, ErrEKNotAllowed) {
			t.Errorf("CheckEK without CAs or preauthorisation: %v, want ErrEKNotAllowed", err)
		}
		if err := e.CheckEK(cas, nil); err != nil {
			t.Errorf("CheckEK with the swtpm local CA: %v", err)
		}
	})
	t.Run("reopen", func(t *testing.T) {
		addr, cas := start(t)
		reopenKeepsIdentity(t, func(dir string) agent.Attester { return openAt(t, addr, dir) }, cas, nil)
	})
	t.Run("tampered enrolment", func(t *testing.T) {
		a, _ := open(t)
		good, err := a.Enrollment(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, otherPEM := selfSignedCA(t)
		otherCert, err := ca.ParseCertificatePEM(otherPEM)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			mutate func(r *deviceapi.EnrollRequest)
			want   error
		}{
			{"creation signature", func(r *deviceapi.EnrollRequest) { r.AKCreateSignature[len(r.AKCreateSignature)-1] ^= 1 }, ErrAKProperties},
			{"creation attestation", func(r *deviceapi.EnrollRequest) { r.AKCreateAttestation[len(r.AKCreateAttestation)-1] ^= 1 }, ErrAKProperties},
			{"ek certificate of another key", func(r *deviceapi.EnrollRequest) { r.EKCertificate = otherCert.Raw }, ErrEKMismatch},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req := *good
				req.AKCreateSignature = bytes.Clone(good.AKCreateSignature)
				req.AKCreateAttestation = bytes.Clone(good.AKCreateAttestation)
				tc.mutate(&req)
				if _, err := CheckEnrollment(&req); !errors.Is(err, tc.want) {
					t.Errorf("CheckEnrollment: %v, want %v", err, tc.want)
				}
			})
		}
	})
}

func TestLifecycleSimulator(t *testing.T) {
	if !tpmsim.Built {
		testenv.Missing(t, "the TPM simulator", "it needs cgo: CGO_ENABLED=1, gcc and libssl-dev")
	}
	// The simulator has no EK certificate: the tenant preauthorises its EK
	// hash, and without that the EK is refused.
	for _, name := range []string{"lifecycle", "refusals"} {
		t.Run(name, func(t *testing.T) {
			a, err := agent.Open(context.Background(), agent.Config{Spec: "simulator", StateDir: t.TempDir(), BootID: "boot-1", Simulator: tpmsim.Open})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			req, err := a.Enrollment(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			e, err := CheckEnrollment(req)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.CheckEK(nil, nil); !errors.Is(err, ErrEKNotAllowed) {
				t.Fatalf("CheckEK without preauthorisation: %v, want ErrEKNotAllowed", err)
			}
			preauth := func(h string) bool { return h == e.EKHash }
			if name == "lifecycle" {
				runLifecycle(t, a, nil, preauth, deviceapi.StatusAffirming)
			} else {
				tpmRefusals(t, a, nil, preauth)
			}
		})
	}
}

// refusal returns the code of the reason that refused r, or "" when r
// was not refused.
func refusal(r *Result) string {
	if r.Grant != GrantNone || len(r.Reasons) == 0 {
		return ""
	}
	return r.Reasons[len(r.Reasons)-1].Code
}
