package attest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
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
