package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// FuzzVerifyEvidence feeds decoded evidence to the verifier for a software
// device and for an activated TPM device with the same identity key. The
// nonce is always accepted so the fuzzer reaches the TPM structure parsers,
// the quote check, the log replay and the reference comparison. The
// verifier must never panic and its verdict must be consistent.
func FuzzVerifyEvidence(f *testing.F) {
	fx := newSoftwareFixture(f)
	valid, err := json.Marshal(fx.evidence(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := deviceapi.DecodeEvidence(bytes.NewReader(data))
		if err != nil {
			return
		}
		ev.DeviceID = fx.dev.ID
		for _, kind := range []deviceapi.AttesterKind{deviceapi.KindSoftware, deviceapi.KindSWTPM} {
			dev := fx.dev
			dev.Attester, dev.Activated = kind, true
			ch := Challenge{DeviceID: dev.ID, Nonce: ev.Nonce, Expires: fx.s.now.Add(time.Minute)}
			if err := fx.s.nonces.Put(context.Background(), ch); err != nil {
				t.Fatal(err)
			}
			r := fx.s.v.Verify(context.Background(), Input{Evidence: ev, Device: dev, Tenant: testTenant, Policy: fx.pol})
			checkConsistent(t, r)
		}
	})
}

func checkConsistent(t *testing.T, r *Result) {
	t.Helper()
	switch r.Grant {
	case GrantNone:
		if r.Status != deviceapi.StatusContraindicated || r.CertKey != nil || len(r.Reasons) == 0 {
			t.Fatalf("refusal inconsistent: %+v", r)
		}
	case GrantUpdateOnly:
		if r.Status != deviceapi.StatusContraindicated || r.CertKey == nil {
			t.Fatalf("update-only inconsistent: %+v", r)
		}
	case GrantNormal:
		if r.Status == deviceapi.StatusContraindicated || r.CertKey == nil {
			t.Fatalf("normal grant inconsistent: %+v", r)
		}
	default:
		t.Fatalf("unknown grant %v", r.Grant)
	}
}
