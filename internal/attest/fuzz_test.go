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

// FuzzCheckBootLog feeds firmware logs to the parser and replay against the PCRs the seed
// replays to: it must never panic, and a log it accepts must have replayed.
func FuzzCheckBootLog(f *testing.F) {
	raw := readLog(f, "ubuntu_2104_shielded_vm_no_secure_boot_eventlog")
	pcrs := replayedPCRs(f, raw)
	f.Add(raw)
	f.Add(readLog(f, "crypto_agile_eventlog"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := checkBootLog(data, pcrs)
		if err == nil && (st == nil || st.Evidence != EvidenceMeasuredBoot) {
			t.Fatalf("accepted without a measured boot state: %+v", st)
		}
	})
}

// FuzzParseIMALog: the IMA decoder never panics, and what it accepts holds at least one
// entry of a known template in PCR 10.
func FuzzParseIMALog(f *testing.F) {
	log, _, _ := imaLog(3, nil)
	f.Add(log)
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseIMALog(data)
		if err != nil {
			return
		}
		if len(entries) == 0 {
			t.Fatal("accepted an empty log")
		}
		for _, e := range entries {
			_ = e.FileDigestHex()
			if e.Template == "" {
				t.Fatal("entry without a template")
			}
		}
		replayIMA(entries, make([]byte, 32))
	})
}
