package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	agent "github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

// softwareFixture is an enrolled, claimed software device with a healthy
// measurement log and the server that enrolled it.
type softwareFixture struct {
	s   *server
	d   *device
	dev Device
	rel []component
	pol Policy
}

func newSoftwareFixture(t testing.TB) *softwareFixture {
	t.Helper()
	return newSoftwareFixtureWith(t, newServer(t))
}

func newSoftwareFixtureWith(t testing.TB, s *server) *softwareFixture {
	t.Helper()
	dir := t.TempDir()
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	rel := release(t, "1.0.0")
	d := newDevice(t, a, dir, rel)
	en := s.enroll(t, d, nil, nil)
	return &softwareFixture{s: s, d: d, dev: en.dev, rel: rel, pol: Policy{AcceptSoftware: true, References: referencesFor(rel)}}
}

// evidence collects fresh evidence for a newly issued challenge.
func (f *softwareFixture) evidence(t testing.TB) *deviceapi.Evidence {
	t.Helper()
	ch, err := f.s.v.Challenge(context.Background(), f.dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	return f.d.collect(t, f.dev.ID, ch.Nonce, nil)
}

func (f *softwareFixture) verify(ev *deviceapi.Evidence) *Result {
	return f.s.v.Verify(context.Background(), Input{Evidence: ev, Device: f.dev, Tenant: testTenant, Policy: f.pol})
}

func TestVerifyRefusesBadEvidence(t *testing.T) {
	for _, tc := range []struct {
		name string
		// tamper changes the fixture or the evidence; it returns the
		// evidence to verify.
		tamper func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence
		want   string
	}{
		{
			name: "replayed nonce",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				if r := f.verify(ev); r.Grant != GrantNormal {
					t.Fatalf("first use refused: %v", r.Reasons)
				}
				return ev
			},
			want: ReasonNonceUnknown,
		},
		{
			name: "stale nonce",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				f.s.now = f.s.now.Add(DefaultNonceTTL + time.Second)
				return ev
			},
			want: ReasonNonceExpired,
		},
		{
			name: "nonce never issued",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				ev.Nonce = make([]byte, deviceapi.NonceSize)
				return ev
			},
			want: ReasonNonceUnknown,
		},
		{
			name: "nonce issued to another device",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				other := newSoftwareFixtureWith(t, f.s)
				return other.d.collect(t, f.dev.ID, other.evidence(t).Nonce, nil)
			},
			want: ReasonNonceUnknown,
		},
		{
			name: "quote signed by another key",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				// Another device answers this device's challenge in its name.
				other := newSoftwareFixture(t)
				return other.d.collect(t, f.dev.ID, ev.Nonce, nil)
			},
			want: ReasonQuoteInvalid,
		},
		{
			name: "pcr value changed after quoting",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				ev.PCRs[len(ev.PCRs)-1].Digest = hex.EncodeToString(make([]byte, sha256.Size)) // the agent's PCR
				return ev
			},
			want: ReasonQuoteInvalid,
		},
		{
			name: "certificate key swapped",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				other := newSoftwareFixture(t).evidence(t)
				ev.CertKey = other.CertKey
				return ev
			},
			want: ReasonQuoteInvalid,
		},
		{
			name: "log with an extra event",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				ev.Log = append(ev.Log, ev.Log[1])
				return ev
			},
			want: ReasonLogReplay,
		},
		{
			name: "log with a dropped event",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				ev.Log = slices.Delete(ev.Log, 3, 4)
				return ev
			},
			want: ReasonLogReplay,
		},
		{
			name: "log event digest rewritten to a known one",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				newer := release(t, "2.0.0")
				f.pol.References = referencesFor(f.rel, newer)
				ev.Log[1].Digest = hex.EncodeToString(newer[1].digest)
				return ev
			},
			want: ReasonLogReplay,
		},
		{
			name: "evidence names another device",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				ev.DeviceID = hex.EncodeToString(make([]byte, 32))
				return ev
			},
			want: ReasonDeviceMismatch,
		},
		{
			name: "unclaimed device",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				f.dev.Tenant = ""
				return ev
			},
			want: ReasonUnclaimed,
		},
		{
			name: "device of another tenant",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				f.dev.Tenant = "beta"
				return ev
			},
			want: ReasonOtherTenant,
		},
		{
			name: "software attester refused by policy",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				f.pol.AcceptSoftware = false
				return ev
			},
			want: ReasonSoftwareRefused,
		},
		{
			name: "identity key recorded as a TPM",
			tamper: func(t *testing.T, f *softwareFixture, ev *deviceapi.Evidence) *deviceapi.Evidence {
				// Evidence of a device enrolled as a TPM must answer the
				// activation challenge; a software key cannot.
				f.dev.Attester = deviceapi.KindTPM
				return ev
			},
			want: ReasonActivationMissing,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSoftwareFixture(t)
			ev := tc.tamper(t, f, f.evidence(t))
			r := f.verify(ev)
			if got := refusal(r); got != tc.want {
				t.Fatalf("refusal %q, want %q (status %s, reasons %v)", got, tc.want, r.Status, r.Reasons)
			}
			if r.Status != deviceapi.StatusContraindicated || r.CertKey != nil || r.Activated {
				t.Errorf("refused result grants something: status %s certkey %v activated %v", r.Status, r.CertKey, r.Activated)
			}
			for _, reason := range r.Reasons {
				if reason.Detail == "" {
					t.Errorf("reason %s has no detail", reason.Code)
				}
			}
		})
	}
}

func TestVerifyReferenceValues(t *testing.T) {
	type verdict struct {
		Status deviceapi.Status
		Grant  Grant
		Codes  []string
	}
	for _, tc := range []struct {
		name  string
		refs  func(f *softwareFixture) map[string]Reference
		want  verdict
		strip bool // policy without the software warning, to isolate reference findings
	}{
		{
			name: "all known",
			refs: func(f *softwareFixture) map[string]Reference { return referencesFor(f.rel) },
			want: verdict{deviceapi.StatusWarning, GrantNormal, []string{ReasonSoftwareAttester}},
		},
		{
			name: "outdated release",
			refs: func(f *softwareFixture) map[string]Reference {
				refs := referencesFor(f.rel)
				d := hex.EncodeToString(f.rel[1].digest)
				r := refs[d]
				r.Outdated = true
				refs[d] = r
				return refs
			},
			want: verdict{deviceapi.StatusWarning, GrantNormal, []string{ReasonSoftwareAttester, ReasonOutdatedRelease}},
		},
		{
			name: "unknown agent",
			refs: func(f *softwareFixture) map[string]Reference {
				refs := referencesFor(f.rel)
				delete(refs, hex.EncodeToString(f.rel[2].digest))
				return refs
			},
			want: verdict{deviceapi.StatusContraindicated, GrantUpdateOnly, []string{ReasonSoftwareAttester, ReasonUnknownComponent}},
		},
		{
			name: "revoked os and application",
			refs: func(f *softwareFixture) map[string]Reference {
				refs := referencesFor(f.rel)
				for _, c := range []component{f.rel[1], f.rel[3]} {
					d := hex.EncodeToString(c.digest)
					r := refs[d]
					r.Revoked = true
					refs[d] = r
				}
				return refs
			},
			want: verdict{deviceapi.StatusContraindicated, GrantUpdateOnly, []string{ReasonSoftwareAttester, ReasonRevokedComponent, ReasonRevokedComponent}},
		},
		{
			name: "digest of another component class",
			refs: func(f *softwareFixture) map[string]Reference {
				refs := referencesFor(f.rel)
				d := hex.EncodeToString(f.rel[3].digest)
				r := refs[d]
				r.Type = deviceapi.EventBoot
				refs[d] = r
				return refs
			},
			want: verdict{deviceapi.StatusContraindicated, GrantUpdateOnly, []string{ReasonSoftwareAttester, ReasonComponentMismatch}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSoftwareFixture(t)
			f.pol.References = tc.refs(f)
			r := f.verify(f.evidence(t))
			var got verdict
			got.Status, got.Grant = r.Status, r.Grant
			for _, reason := range r.Reasons {
				got.Codes = append(got.Codes, reason.Code)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("verdict (-got +want):\n%s", diff)
			}
			if r.CertKey == nil {
				t.Error("admissible result carries no certificate key")
			}
		})
	}
}

func TestVerifyEmptyLog(t *testing.T) {
	s := newServer(t)
	dir := t.TempDir()
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, a, dir, nil)
	en := s.enroll(t, d, nil, nil)
	ev := d.collect(t, en.dev.ID, en.resp.Nonce, nil)
	r := s.v.Verify(context.Background(), Input{Evidence: ev, Device: en.dev, Tenant: testTenant, Policy: Policy{AcceptSoftware: true}})
	if r.Grant != GrantUpdateOnly || r.Reasons[len(r.Reasons)-1].Code != ReasonLogEmpty {
		t.Errorf("empty log: grant %v reasons %v, want update-only with %s", r.Grant, r.Reasons, ReasonLogEmpty)
	}
}

func TestCheckEnrollmentRejects(t *testing.T) {
	dir := t.TempDir()
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	good, err := a.Enrollment(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(r *deviceapi.EnrollRequest)
	}{
		{"garbage identity key", func(r *deviceapi.EnrollRequest) { r.AKPublic = []byte{0, 1, 2, 3} }},
		{"truncated identity key", func(r *deviceapi.EnrollRequest) { r.AKPublic = r.AKPublic[:len(r.AKPublic)-5] }},
		{"TPM kind without creation data", func(r *deviceapi.EnrollRequest) { r.Attester = deviceapi.KindSWTPM }},
		{"unknown attester", func(r *deviceapi.EnrollRequest) { r.Attester = "fpga" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := *good
			req.AKPublic = slices.Clone(good.AKPublic)
			tc.mutate(&req)
			if e, err := CheckEnrollment(&req); err == nil {
				t.Errorf("CheckEnrollment accepted it: device %s", e.DeviceID)
			}
		})
	}
}
