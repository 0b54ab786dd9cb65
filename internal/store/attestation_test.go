package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func enroll(t *testing.T, s *store.Store, id, ekHash string) (store.Enrollment, store.Device) {
	t.Helper()
	e, d, err := s.EnrollDevice(context.Background(), store.Enrollment{
		DeviceID: id, Attester: "swtpm", AKPublic: []byte("ak " + id), EKHash: ekHash, EKCertificate: []byte("cert"),
	})
	if err != nil {
		t.Fatalf("EnrollDevice: %v", err)
	}
	return e, d
}

func newProductIn(t *testing.T, s *store.Store, tenantID, name string) {
	t.Helper()
	if _, _, err := s.CreateProduct(context.Background(), actor, tenantID, name, ""); err != nil {
		t.Fatal(err)
	}
}

func lastAudit(t *testing.T, s *store.Store, tenantID string) (action, target string) {
	t.Helper()
	recs, _, err := s.ListAudit(context.Background(), tenantID, store.AuditFilter{}, store.Page{})
	if err != nil || len(recs) == 0 {
		t.Fatalf("ListAudit: %v (%d records)", err, len(recs))
	}
	r := recs[0]
	for _, x := range recs {
		if x.Seq > r.Seq {
			r = x
		}
	}
	return r.Action, r.Target
}

func TestEnrollAndClaim(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := newTenant(t, s, "acme"), newTenant(t, s, "beta")
		newProductIn(t, s, a.ID, "thermostat")
		newProductIn(t, s, b.ID, "thermostat")
		id := hash("device-1")

		e, d := enroll(t, s, id, hash("ek-1"))
		if d.State != store.DeviceEnrolled || d.TenantID != "" || e.Activated {
			t.Fatalf("enrolled device = %+v, enrollment activated %v", d, e.Activated)
		}
		if _, err := s.DeviceByID(ctx, a.ID, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unclaimed device visible to a tenant: %v", err)
		}

		got, err := s.ClaimDevice(ctx, actor, a.ID, id, "thermostat", "Field Test")
		if err != nil {
			t.Fatalf("ClaimDevice: %v", err)
		}
		if got.TenantID != a.ID || got.ProductName != "thermostat" || got.GroupName != "Field Test" || got.State != store.DeviceClaimed {
			t.Errorf("claimed device = %+v", got)
		}
		if action, target := lastAudit(t, s, a.ID); action != "device.claim" || target != "device/"+id {
			t.Errorf("last audit = %s %s, want device.claim device/%s", action, target, id)
		}
		for _, tc := range []struct {
			name   string
			tenant string
			device string
			group  string
			want   error
		}{
			{"again by the same tenant", a.ID, id, "Development", store.ErrConflict},
			{"by another tenant", b.ID, id, "Development", store.ErrNotFound},
			{"unknown device", a.ID, hash("nobody"), "Development", store.ErrNotFound},
			{"unknown group", a.ID, id, "Nowhere", store.ErrNotFound},
		} {
			if _, err := s.ClaimDevice(ctx, actor, tc.tenant, tc.device, "thermostat", tc.group); !errors.Is(err, tc.want) {
				t.Errorf("%s: ClaimDevice = %v, want %v", tc.name, err, tc.want)
			}
		}

		// Enrolling again keeps the record and its activation.
		if _, err := s.RecordAttestation(ctx, store.AttestationRecord{TenantID: a.ID, DeviceID: id, Status: "affirming", Granted: "normal", Activated: true}); err != nil {
			t.Fatal(err)
		}
		again, d2 := enroll(t, s, id, hash("ek-1"))
		if !again.Activated || d2.TenantID != a.ID {
			t.Errorf("re-enrolment lost state: activated %v tenant %q", again.Activated, d2.TenantID)
		}
	})
}

func TestPreauthorize(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := newTenant(t, s, "acme"), newTenant(t, s, "beta")
		newProductIn(t, s, a.ID, "thermostat")
		newProductIn(t, s, b.ID, "thermostat")

		// By EK, before the device enrols: enrolment claims it.
		if err := s.Preauthorize(ctx, actor, a.ID, store.PreauthEK, hash("ek-2"), "thermostat", "Production"); err != nil {
			t.Fatalf("Preauthorize: %v", err)
		}
		_, d := enroll(t, s, hash("device-2"), hash("ek-2"))
		if d.TenantID != a.ID || d.GroupName != "Production" || d.State != store.DeviceClaimed {
			t.Errorf("preauthorised device after enrolment = %+v", d)
		}

		// By key, after the device enrolled: preauthorising claims it at once.
		id := hash("device-3")
		enroll(t, s, id, "")
		if err := s.Preauthorize(ctx, actor, a.ID, store.PreauthKey, id, "thermostat", "Development"); err != nil {
			t.Fatalf("Preauthorize: %v", err)
		}
		if d, err := s.DeviceByID(ctx, a.ID, id); err != nil || d.GroupName != "Development" {
			t.Errorf("device after key preauthorisation = %+v, %v", d, err)
		}

		for _, tc := range []struct {
			name, tenant, kind, hash string
			want                     error
		}{
			{"same EK by another tenant", b.ID, store.PreauthEK, hash("ek-2"), store.ErrConflict},
			{"unknown kind", a.ID, "serial", hash("x"), store.ErrInvalid},
			{"not a hash", a.ID, store.PreauthEK, "ABC", store.ErrInvalid},
		} {
			if err := s.Preauthorize(ctx, actor, tc.tenant, tc.kind, tc.hash, "thermostat", "Development"); !errors.Is(err, tc.want) {
				t.Errorf("%s: Preauthorize = %v, want %v", tc.name, err, tc.want)
			}
		}
	})
}

// TestChallengeTakenOnce: of many concurrent takers of one challenge, exactly one gets it.
func TestChallengeTakenOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := store.Challenge{DeviceID: hash("d"), Nonce: bytes.Repeat([]byte{9}, 32), ExpiresAt: s.Now().Add(time.Minute)}
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		const takers = 16
		errs := make(chan error, takers)
		for range takers {
			go func() {
				_, err := s.TakeChallenge(ctx, c.DeviceID, c.Nonce)
				errs <- err
			}()
		}
		taken := 0
		for range takers {
			switch err := <-errs; {
			case err == nil:
				taken++
			case !errors.Is(err, store.ErrNotFound):
				t.Errorf("TakeChallenge = %v, want nil or ErrNotFound", err)
			}
		}
		if taken != 1 {
			t.Errorf("the challenge was taken %d times, want once", taken)
		}
	})
}

func TestChallenges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := s.Now()
		c := store.Challenge{DeviceID: hash("d"), Nonce: bytes.Repeat([]byte{7}, 32), ExpiresAt: now.Add(time.Minute), ActivationDigest: []byte{1, 2}}
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeChallenge(ctx, hash("other"), c.Nonce); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TakeChallenge for another device = %v, want ErrNotFound", err)
		}
		got, err := s.TakeChallenge(ctx, c.DeviceID, c.Nonce)
		if err != nil {
			t.Fatalf("TakeChallenge: %v", err)
		}
		if diff := cmp.Diff(got, c); diff != "" {
			t.Errorf("challenge (-got +want):\n%s", diff)
		}
		if _, err := s.TakeChallenge(ctx, c.DeviceID, c.Nonce); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second TakeChallenge = %v, want ErrNotFound", err)
		}

		// Putting a challenge sweeps expired ones.
		old := store.Challenge{DeviceID: c.DeviceID, Nonce: []byte{1}, ExpiresAt: now.Add(-time.Minute)}
		if err := s.PutChallenge(ctx, old); err != nil {
			t.Fatal(err)
		}
		if err := s.PutChallenge(ctx, store.Challenge{DeviceID: c.DeviceID, Nonce: []byte{2}, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeChallenge(ctx, c.DeviceID, old.Nonce); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired challenge survived the sweep: %v", err)
		}
	})
}

func TestRecordAttestation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newTenant(t, s, "acme")
		newProductIn(t, s, a.ID, "thermostat")
		id := hash("device-4")
		enroll(t, s, id, hash("ek-4"))

		// Unclaimed: stored, not audited in any tenant.
		if _, err := s.RecordAttestation(ctx, store.AttestationRecord{DeviceID: id, Status: "contraindicated", Granted: "none",
			Reasons: []store.AttestationReason{{Code: "device_unclaimed", Detail: "not claimed"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClaimDevice(ctx, actor, a.ID, id, "thermostat", "Development"); err != nil {
			t.Fatal(err)
		}
		notAfter := s.Now().Add(24 * time.Hour)
		rec, err := s.RecordAttestation(ctx, store.AttestationRecord{TenantID: a.ID, DeviceID: id, Status: "affirming", Granted: "normal",
			CertSerial: "1234", CertNotAfter: &notAfter, Activated: true, Rule: "all_known",
			BootState: []byte(`{"evidence":"measured_boot","secure_boot":true}`)})
		if err != nil {
			t.Fatal(err)
		}
		if action, target := lastAudit(t, s, a.ID); action != "device.attest" || target != "device/"+id {
			t.Errorf("last audit = %s %s, want device.attest", action, target)
		}
		e, d, err := s.EnrollmentByDevice(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !e.Activated || d.Attestation != "affirming" || d.LastSeenAt == nil {
			t.Errorf("after attestation: activated %v, device %+v", e.Activated, d)
		}
		list, err := s.ListAttestations(ctx, id, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != rec.ID || list[1].Reasons[0].Code != "device_unclaimed" || list[1].TenantID != "" {
			t.Errorf("ListAttestations = %+v", list)
		} else if list[0].Rule != "all_known" || string(list[0].BootState) != `{"evidence":"measured_boot","secure_boot":true}` || list[1].BootState != nil {
			t.Errorf("boot state and rule not kept: %+v", list)
		}
		if v, err := s.VerifyAudit(ctx, a.ID); err != nil || v.Records == 0 {
			t.Errorf("audit chain after attestation: %+v, %v", v, err)
		}
	})
}

func TestManufacturerCAs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newTenant(t, s, "acme")
		if _, err := s.ManufacturerCAs(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ManufacturerCAs before any = %v, want ErrNotFound", err)
		}
		for _, pem := range []string{"first", "second"} {
			if err := s.SetManufacturerCAs(ctx, actor, a.ID, pem); err != nil {
				t.Fatal(err)
			}
			if got, err := s.ManufacturerCAs(ctx, a.ID); err != nil || got != pem {
				t.Errorf("ManufacturerCAs = %q, %v; want %q", got, err, pem)
			}
		}
	})
}

func TestAttestationPolicy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := newTenant(t, s, "acme"), newTenant(t, s, "beta")
		newProductIn(t, s, a.ID, "thermostat")
		if p, err := s.AttestationPolicy(ctx, a.ID, "thermostat"); err != nil || p.AcceptSoftware {
			t.Errorf("default policy = %+v, %v; want software refused", p, err)
		}
		for _, accept := range []bool{true, false, true} {
			if err := s.SetAttestationPolicy(ctx, actor, a.ID, "thermostat", store.AttestationPolicy{AcceptSoftware: accept}); err != nil {
				t.Fatal(err)
			}
			if p, err := s.AttestationPolicy(ctx, a.ID, "thermostat"); err != nil || p.AcceptSoftware != accept {
				t.Errorf("policy = %+v, %v; want accept %v", p, err, accept)
			}
		}
		boot := store.AttestationPolicy{RequireSecureBoot: true, RequireBootLog: true, BootDigests: []string{hash("shim"), hash("grub")}}
		if err := s.SetAttestationPolicy(ctx, actor, a.ID, "thermostat", boot); err != nil {
			t.Fatal(err)
		}
		if p, err := s.AttestationPolicy(ctx, a.ID, "thermostat"); err != nil || !cmp.Equal(p, boot) {
			t.Errorf("boot policy = %+v, %v; want %+v", p, err, boot)
		}
		for _, bad := range [][]string{{"not-a-digest"}, {strings.ToUpper(hash("x"))}, make([]string, store.MaxBootDigests+1)} {
			err := s.SetAttestationPolicy(ctx, actor, a.ID, "thermostat", store.AttestationPolicy{BootDigests: bad})
			if public.KindOf(err) != public.Invalid {
				t.Errorf("boot digests %.40q: %v, want invalid", bad, err)
			}
		}
		if p, err := s.AttestationPolicy(ctx, a.ID, "thermostat"); err != nil || !cmp.Equal(p, boot) {
			t.Errorf("a refused policy changed it: %+v, %v", p, err)
		}
		if _, err := s.AttestationPolicy(ctx, b.ID, "thermostat"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("policy of another tenant's product = %v, want ErrNotFound", err)
		}
		if err := s.SetAttestationPolicy(ctx, actor, b.ID, "thermostat", store.AttestationPolicy{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("setting another tenant's product = %v, want ErrNotFound", err)
		}
	})
}
