package ca

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// rfc5280 is zlint's registry of RFC 5280 lints. The CA/Browser Forum's lints are left out: a
// tenant CA is a private root for device client certificates, not a publicly trusted TLS CA.
func rfc5280(t testing.TB) lint.Registry {
	r, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: lint.SourceList{lint.RFC5280}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// zlintProblems returns every RFC 5280 lint a certificate fails (warnings included).
func zlintProblems(t testing.TB, der []byte) []string {
	t.Helper()
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("zcrypto cannot parse the certificate: %v", err)
	}
	var out []string
	for name, r := range zlint.LintCertificateEx(c, rfc5280(t)).Results {
		if r.Status == lint.Error || r.Status == lint.Warn || r.Status == lint.Fatal {
			out = append(out, name+" "+r.Status.String()+" "+r.Details)
		}
	}
	return out
}

// TestCertificatesFollowRFC5280AndSPIFFE runs zlint's RFC 5280 lints over the tenant CA and both
// kinds of device certificate, and go-spiffe's X.509-SVID parser and verifier over the device
// certificates. Before trust domains were DNS names zlint found the CA's name constraints not
// critical and not a DNS name, and the device certificate's URI host not a DNS name and its
// subject key identifier missing.
func TestCertificatesFollowRFC5280AndSPIFFE(t *testing.T) {
	a, _, _ := newAuthority(t, "acme")
	if p := zlintProblems(t, a.Certificate().Raw); len(p) > 0 {
		t.Errorf("tenant CA: %v", p)
	}
	td := spiffeid.RequireTrustDomainFromString(a.TrustDomain())
	bundle := x509bundle.FromX509Authorities(td, []*x509.Certificate{a.Certificate()})
	for _, p := range []Profile{ProfileNormal, ProfileUpdateOnly} {
		cert, err := a.Issue(deviceID, deviceKey(t).Public(), p, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if probs := zlintProblems(t, cert.Raw); len(probs) > 0 {
			t.Errorf("%s device certificate: %v", p, probs)
		}
		id, _, err := x509svid.ParseAndVerify([][]byte{cert.Raw}, bundle)
		if err != nil {
			t.Errorf("%s device certificate is not an X.509-SVID of %s: %v", p, td, err)
			continue
		}
		if want := DeviceURI(a.TrustDomain(), deviceID, p).String(); id.String() != want {
			t.Errorf("SPIFFE ID = %s, want %s", id, want)
		}
	}
}

// legacyCA makes a tenant CA as Rampart made them before trust domains were DNS names: the bare
// tenant name as URI constraint, not critical, and a device certificate it signed.
func legacyCA(t *testing.T, tenant string, kek []byte) (Sealed, *x509.Certificate) {
	t.Helper()
	fresh, _, _ := newAuthority(t, tenant) // only for a key
	key := fresh.key
	skid, _ := subjectKeyID(key.Public())
	tmpl := &x509.Certificate{SerialNumber: mustSerial(t), Subject: pkix.Name{CommonName: "Rampart tenant CA " + tenant, Organization: []string{tenant}},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(CAValidity), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true, SubjectKeyId: skid, PermittedURIDomains: []string{tenant}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(der)
	enc, err := sealKey(key, kek, tenant)
	if err != nil {
		t.Fatal(err)
	}
	dev := &x509.Certificate{SerialNumber: mustSerial(t), Subject: pkix.Name{CommonName: deviceID, Organization: []string{tenant}},
		NotBefore: testNow.Add(-clockSkew), NotAfter: testNow.Add(-clockSkew + DeviceCertValidity), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, URIs: []*url.URL{{Scheme: "spiffe", Host: tenant, Path: "/device/" + deviceID}},
		AuthorityKeyId: skid}
	devKey := deviceKey(t)
	dder, err := x509.CreateCertificate(rand.Reader, dev, caCert, devKey.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	devCert, _ := x509.ParseCertificate(dder)
	return Sealed{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), EncryptedKey: enc}, devCert
}

func mustSerial(t *testing.T) *big.Int {
	t.Helper()
	s, err := randomSerial()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReissueKeepsLegacyDevices: a CA made before DNS trust domains is not current; reissued over
// the same key for acme.rampart.internal it passes zlint, issues in the new trust domain, and
// still accepts the device certificates the old one signed, until they expire.
func TestReissueKeepsLegacyDevices(t *testing.T) {
	kek := testKEK(t)
	old, legacyCert := legacyCA(t, "acme", kek)
	if cur, err := Current(old); err != nil || cur {
		t.Fatalf("Current(legacy CA) = %v, %v; want false", cur, err)
	}
	if p := zlintProblems(t, mustParse(t, old.CertPEM).Raw); len(p) == 0 {
		t.Error("zlint finds nothing wrong with the legacy CA; the check would not catch the defect")
	}
	fresh, err := Reissue("acme", "acme.rampart.internal", old, kek, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := Current(fresh); err != nil || !cur {
		t.Fatalf("Current(reissued CA) = %v, %v; want true", cur, err)
	}
	a, err := Open("acme", fresh, kek)
	if err != nil {
		t.Fatal(err)
	}
	if p := zlintProblems(t, a.Certificate().Raw); len(p) > 0 {
		t.Errorf("reissued CA: %v", p)
	}
	if a.TrustDomain() != "acme.rampart.internal" {
		t.Errorf("trust domain = %q", a.TrustDomain())
	}
	for _, tc := range []struct {
		at   time.Time
		want Class
	}{{testNow.Add(time.Hour), ClassNormal}, {testNow.Add(25 * time.Hour), ClassExpired}} {
		if class, id := a.Classify(legacyCert, tc.at); class != tc.want || id != deviceID {
			t.Errorf("legacy device certificate at %v: %v %q, want %v", tc.at, class, id, tc.want)
		}
	}
	// Another CA's legacy certificate for the same tenant name is foreign.
	_, forged := legacyCA(t, "acme", kek)
	if class, _ := a.Classify(forged, testNow.Add(time.Hour)); class != ClassForeign {
		t.Errorf("another CA's legacy certificate: %v, want foreign", class)
	}
	cert, err := a.Issue(deviceID, deviceKey(t).Public(), ProfileNormal, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if cert.URIs[0].Host != "acme.rampart.internal" {
		t.Errorf("new certificate names %s", cert.URIs[0])
	}
	// A legacy CA cannot issue: the keeper reissues it first.
	legacy, _ := Open("acme", old, kek)
	if _, err := legacy.Issue(deviceID, deviceKey(t).Public(), ProfileNormal, testNow); err == nil {
		t.Error("a legacy CA issued a certificate in the bare tenant name")
	}
}

func mustParse(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	c, err := ParseCertificatePEM(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTrustDomain(t *testing.T) {
	for _, tc := range []struct {
		tenant, suffix, want string
	}{
		{"default", "rampart.internal", "default.rampart.internal"},
		{"acme", "Devices.Example.COM.", "acme.devices.example.com"},
		{"acme", "", ""},
		{"acme", "bad_suffix.example", ""},
		{"acme", "-x.example", ""},
	} {
		got, err := TrustDomain(tc.tenant, tc.suffix)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("TrustDomain(%q, %q) = %q, %v; want %q", tc.tenant, tc.suffix, got, err, tc.want)
		}
		if tc.want != "" && TenantOf(got) != tc.tenant {
			t.Errorf("TenantOf(%q) = %q", got, TenantOf(got))
		}
	}
}
