package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net/url"
	"slices"
	"testing"
	"time"

	agent "github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
)

// BenchmarkAttestAndIssue measures what the server does per software device
// renewal: issue a nonce, verify the evidence (quote signature, PCRs, log
// replay, reference values) and issue the 24 h certificate. The evidence is
// collected outside the timer, since the device does that work.
// Compare with BenchmarkCeilingVerifyPlusCreate from the same run.
func BenchmarkAttestAndIssue(b *testing.B) {
	ctx := context.Background()
	s := newServer(b)
	f := newSoftwareFixtureWith(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		ch, err := s.v.Challenge(ctx, f.dev.ID)
		if err != nil {
			b.Fatal(err)
		}
		ev := f.d.collect(b, f.dev.ID, ch.Nonce, nil)
		b.StartTimer()
		r := s.v.Verify(ctx, Input{Evidence: ev, Device: f.dev, Tenant: testTenant, Policy: f.pol})
		if r.Grant != GrantNormal {
			b.Fatalf("grant %v: %v", r.Grant, r.Reasons)
		}
		if _, err := s.ca.Issue(f.dev.ID, r.CertKey, ca.ProfileNormal, s.now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCeilingVerifyPlusCreate is the raw crypto ceiling for one
// attestation with issuance: one ECDSA P-256 signature verification plus
// one x509.CreateCertificate signed with a P-256 key.
func BenchmarkCeilingVerifyPlusCreate(b *testing.B) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	devKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ceiling CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		b.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	digest := sha256.Sum256([]byte("quote"))
	sig, err := ecdsa.SignASN1(rand.Reader, devKey, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("spiffe://acme/device/x")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&devKey.PublicKey, digest[:], sig) {
			b.Fatal("verify failed")
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2), NotBefore: time.Now(), NotAfter: time.Now().Add(24 * time.Hour),
			URIs: []*url.URL{u}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if _, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, devKey.Public(), caKey); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServiceAttest measures the whole server side of a renewal as the device API runs
// it, on SQLite: the nonce taken from the database, the device and its policy loaded, the
// evidence verified, the certificate issued, and the result stored with its audit record.
// The challenge and the device's evidence are prepared outside the timer.
func BenchmarkServiceAttest(b *testing.B) {
	ctx := context.Background()
	h := newServiceHarness(b)
	dir := b.TempDir()
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		b.Fatal(err)
	}
	rel := release(b, "1.0.0")
	h.refs["thermostat"] = referencesFor(rel)
	d := newDevice(b, a, dir, rel)
	resp := h.enroll(b, d)
	if _, err := h.svc.Claim(ctx, admin, h.tenant.ID, resp.DeviceID, "thermostat", "Development"); err != nil {
		b.Fatal(err)
	}
	if err := h.st.SetAttestationPolicy(ctx, admin, h.tenant.ID, "thermostat", store.AttestationPolicy{AcceptSoftware: true}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		ch, err := h.svc.Challenge(ctx, resp.DeviceID)
		if err != nil {
			b.Fatal(err)
		}
		ev := d.collect(b, resp.DeviceID, ch.Nonce, nil)
		b.StartTimer()
		out, err := h.svc.Attest(ctx, ev, h.tenant.ID)
		if err != nil || len(out.Certificate) == 0 {
			b.Fatalf("attest: %v %v", err, out)
		}
	}
}

// BenchmarkMeasuredBootVerify measures the server side of one attestation with measured boot:
// the evidence decoded as agents send it (framed, deviceapi.ContentTypeEvidence: a real UEFI
// log of 38 kB and an IMA log of 5,000 entries, about 0.6 MB), the quote checked, the agent
// log, the firmware log and the IMA log replayed, the boot state read and appraised under a
// policy requiring the boot log. Compare with BenchmarkCeilingQuoteVerify and
// BenchmarkCeilingQuoteVerifyPlusHashes from the same run. BenchmarkMeasuredBootVerifyJSON is
// the same with the JSON evidence older agents send (the logs in base64).
func BenchmarkMeasuredBootVerify(b *testing.B) {
	benchmarkMeasuredBoot(b, deviceapi.EncodeEvidence, deviceapi.DecodeEvidenceFramed)
}

func BenchmarkMeasuredBootVerifyJSON(b *testing.B) {
	benchmarkMeasuredBoot(b, func(ev *deviceapi.Evidence) ([]byte, error) { return json.Marshal(ev) }, deviceapi.DecodeEvidence)
}

func benchmarkMeasuredBoot(b *testing.B, encode func(*deviceapi.Evidence) ([]byte, error), decode func(io.Reader) (*deviceapi.Evidence, error)) {
	ctx := context.Background()
	dir := b.TempDir()
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		b.Fatal(err)
	}
	m := newMeasuredDevice(b, a, dir, nil, "ubuntu_2104_shielded_vm_no_secure_boot_eventlog", 5000)
	pol := m.policy()
	pol.RequireBootLog, pol.BootReferences = true, bootRefs(b, m.raw, false)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		body, err := encode(m.evidence(b))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		ev, err := decode(bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		r := m.s.v.Verify(ctx, Input{Evidence: ev, Device: m.dev, Tenant: testTenant, Policy: pol})
		if r.Grant != GrantNormal || r.Boot.IMA == nil || r.Boot.IMA.Entries != 5000 {
			b.Fatalf("grant %v: %v", r.Grant, r.Reasons)
		}
	}
}

// BenchmarkCeilingQuoteVerify is the raw crypto ceiling of an attestation: the quote's ECDSA
// P-256 signature verification alone.
func BenchmarkCeilingQuoteVerify(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("quote"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			b.Fatal("verify failed")
		}
	}
}

// BenchmarkCeilingQuoteVerifyPlusHashes is the crypto no verifier of the same evidence can
// skip: the quote's signature, and the hashes a replay of the SHA-256 bank needs: one extend
// per firmware event, and per IMA entry its SHA-256 template digest and one extend.
func BenchmarkCeilingQuoteVerifyPlusHashes(b *testing.B) {
	c := newHashCeiling(b)
	b.ReportAllocs()
	for b.Loop() {
		c.run(b)
	}
}

// hashCeiling is BenchmarkCeilingQuoteVerifyPlusHashes's work on the evidence of
// BenchmarkMeasuredBootVerify: a real UEFI log and an IMA log of 5,000 entries.
type hashCeiling struct {
	key      *ecdsa.PublicKey
	digest   [sha256.Size]byte
	sig      []byte
	firmware int
	entries  []IMAEntry
}

func newHashCeiling(b *testing.B) *hashCeiling {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &hashCeiling{key: &key.PublicKey, digest: sha256.Sum256([]byte("quote"))}
	var err error
	if c.sig, err = ecdsa.SignASN1(rand.Reader, key, c.digest[:]); err != nil {
		b.Fatal(err)
	}
	for _, ds := range logDigests(b, readLog(b, "ubuntu_2104_shielded_vm_no_secure_boot_eventlog")) {
		c.firmware += len(ds)
	}
	if c.entries, err = ParseIMALog(func() []byte { l, _, _ := imaLog(5000, nil); return l }()); err != nil {
		b.Fatal(err)
	}
	return c
}

func (c *hashCeiling) run(b *testing.B) {
	if !ecdsa.VerifyASN1(c.key, c.digest[:], c.sig) {
		b.Fatal("verify failed")
	}
	pcr := make([]byte, 64)
	for range c.firmware {
		s := sha256.Sum256(pcr)
		copy(pcr, s[:])
	}
	for i := range c.entries {
		s := sha256.Sum256(c.entries[i].templateData)
		copy(pcr[32:], s[:])
		s = sha256.Sum256(pcr)
		copy(pcr, s[:])
	}
}

// BenchmarkMeasuredBootRatio does BenchmarkMeasuredBootVerify's work and the ceiling's
// (BenchmarkCeilingQuoteVerifyPlusHashes) in every iteration, one after the other (the order
// alternating), and reports each one's time per operation and ceiling/verify, the ratio the
// goal is about, with the median of the iterations' own ratios. On a machine whose load swings
// from second to second, separate benchmarks see different loads; here both see the same. The
// verifier reads the Secure Boot state of the log's PCR 2 and 7 events once and then from its
// cache, as it does for a fleet whose devices share a firmware configuration;
// BenchmarkMeasuredBootRatioUncachedSecureBoot reads it at every attestation, as for a device
// whose configuration no other device shares.
func BenchmarkMeasuredBootRatio(b *testing.B) { benchmarkMeasuredBootRatio(b, true) }

func BenchmarkMeasuredBootRatioUncachedSecureBoot(b *testing.B) {
	benchmarkMeasuredBootRatio(b, false)
}

func benchmarkMeasuredBootRatio(b *testing.B, cache bool) {
	ctx := context.Background()
	dir := b.TempDir()
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		b.Fatal(err)
	}
	m := newMeasuredDevice(b, a, dir, nil, "ubuntu_2104_shielded_vm_no_secure_boot_eventlog", 5000)
	pol := m.policy()
	pol.RequireBootLog, pol.BootReferences = true, bootRefs(b, m.raw, false)
	c := newHashCeiling(b)
	if !cache {
		m.s.v.secureBoot = nil
	}
	var verify, ceiling time.Duration
	var pairs []float64 // each iteration's ceiling/verify
	n := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		body, err := deviceapi.EncodeEvidence(m.evidence(b))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		verifyOnce := func() {
			t0 := time.Now()
			ev, err := deviceapi.DecodeEvidenceFramed(bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			r := m.s.v.Verify(ctx, Input{Evidence: ev, Device: m.dev, Tenant: testTenant, Policy: pol})
			verify += time.Since(t0)
			if r.Grant != GrantNormal || r.Boot.IMA == nil || r.Boot.IMA.Entries != 5000 {
				b.Fatalf("grant %v: %v", r.Grant, r.Reasons)
			}
		}
		ceilingOnce := func() {
			t0 := time.Now()
			c.run(b)
			ceiling += time.Since(t0)
		}
		v0, c0 := verify, ceiling
		if n%2 == 0 {
			verifyOnce()
			ceilingOnce()
		} else {
			ceilingOnce()
			verifyOnce()
		}
		pairs = append(pairs, float64(ceiling-c0)/float64(verify-v0))
		n++
	}
	b.ReportMetric(float64(verify.Nanoseconds())/float64(n), "verify-ns/op")
	b.ReportMetric(float64(ceiling.Nanoseconds())/float64(n), "ceiling-ns/op")
	b.ReportMetric(float64(ceiling)/float64(verify), "ceiling/verify")
	// The median of the iterations' own ratios: a load spike on a shared machine lands on one
	// of the two and skews the totals' ratio, but only one pair's ratio.
	slices.Sort(pairs)
	b.ReportMetric(pairs[len(pairs)/2], "pair-median-ceiling/verify")
}
