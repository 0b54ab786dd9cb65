package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	testNow  = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	deviceID = strings.Repeat("ab", 32)
)

func testKEK(t testing.TB) []byte {
	t.Helper()
	kek := make([]byte, KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	return kek
}

func newAuthority(t testing.TB, tenant string) (*Authority, Sealed, []byte) {
	t.Helper()
	kek := testKEK(t)
	sealed, err := Create(tenant, tenant+".rampart.internal", kek, testNow)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	a, err := Open(tenant, sealed, kek)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return a, sealed, kek
}

func deviceKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCreateProfile(t *testing.T) {
	a, sealed, _ := newAuthority(t, "acme")
	c := a.Certificate()
	if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA constraints: IsCA=%v MaxPathLenZero=%v KeyUsage=%v", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	if diff := cmp.Diff(c.PermittedURIDomains, []string{"acme.rampart.internal"}); diff != "" || !c.PermittedDNSDomainsCritical {
		t.Errorf("PermittedURIDomains (-got +want):\n%s", diff)
	}
	if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key type %T, want ECDSA", c.PublicKey)
	}
	if !bytes.Equal(a.CertificatePEM(), sealed.CertPEM) {
		t.Error("CertificatePEM differs from the sealed certificate")
	}
	if bytes.Contains(sealed.EncryptedKey, []byte("PRIVATE KEY")) {
		t.Error("sealed key looks like plaintext PEM")
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tenant string
		kek    []byte
		want   error
	}{
		{"uppercase tenant", "Acme", make([]byte, KEKSize), ErrInvalidTenant},
		{"tenant with slash", "acme/x", make([]byte, KEKSize), ErrInvalidTenant},
		{"empty tenant", "", make([]byte, KEKSize), ErrInvalidTenant},
		{"short kek", "acme", make([]byte, 16), ErrBadKEK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Create(tc.tenant, tc.tenant+".rampart.internal", tc.kek, testNow)
			if !errors.Is(err, tc.want) {
				t.Errorf("Create error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOpenRefusesWrongKEKOrTenant(t *testing.T) {
	_, sealed, kek := newAuthority(t, "acme")
	if _, err := Open("acme", sealed, testKEK(t)); !errors.Is(err, ErrSealedKey) {
		t.Errorf("Open with another KEK: %v, want ErrSealedKey", err)
	}
	if _, err := Open("other", sealed, kek); !errors.Is(err, ErrSealedKey) {
		t.Errorf("Open under another tenant: %v, want ErrSealedKey", err)
	}
	tampered := Sealed{CertPEM: sealed.CertPEM, EncryptedKey: bytes.Clone(sealed.EncryptedKey)}
	tampered.EncryptedKey[len(tampered.EncryptedKey)-1] ^= 1
	if _, err := Open("acme", tampered, kek); !errors.Is(err, ErrSealedKey) {
		t.Errorf("Open tampered: %v, want ErrSealedKey", err)
	}
	_, other, _ := newAuthority(t, "acme")
	swapped := Sealed{CertPEM: other.CertPEM, EncryptedKey: sealed.EncryptedKey}
	if _, err := Open("acme", swapped, kek); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("Open with another CA's certificate: %v, want ErrKeyMismatch", err)
	}
}

func TestIssueAndClassify(t *testing.T) {
	a, _, _ := newAuthority(t, "acme")
	b, _, _ := newAuthority(t, "beta")
	key := deviceKey(t)
	for _, tc := range []struct {
		name    string
		profile Profile
		uri     string
		class   Class
	}{
		{"normal", ProfileNormal, "spiffe://acme.rampart.internal/device/" + deviceID, ClassNormal},
		{"update-only", ProfileUpdateOnly, "spiffe://acme.rampart.internal/update-only/device/" + deviceID, ClassUpdateOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := a.Issue(deviceID, key.Public(), tc.profile, testNow)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			var uris []string
			for _, u := range cert.URIs {
				uris = append(uris, u.String())
			}
			if diff := cmp.Diff(uris, []string{tc.uri}); diff != "" {
				t.Errorf("URI SANs (-got +want):\n%s", diff)
			}
			// The whole validity period, backdating for clock skew included, is 24 hours.
			if got := cert.NotAfter.Sub(cert.NotBefore); got != DeviceCertValidity {
				t.Errorf("lifetime = %v, want %v", got, DeviceCertValidity)
			}
			if !cert.NotBefore.Before(testNow) {
				t.Errorf("NotBefore %v is not backdated before issuance %v", cert.NotBefore, testNow)
			}
			if diff := cmp.Diff(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}); diff != "" {
				t.Errorf("ExtKeyUsage (-got +want):\n%s", diff)
			}
			type out struct {
				Class Class
				ID    string
			}
			for _, c := range []struct {
				name string
				auth *Authority
				at   time.Time
				want out
			}{
				{"own tenant now", a, testNow.Add(time.Hour), out{tc.class, deviceID}},
				{"own tenant after expiry", a, testNow.Add(25 * time.Hour), out{ClassExpired, deviceID}},
				{"other tenant", b, testNow.Add(time.Hour), out{ClassForeign, ""}},
			} {
				class, id := c.auth.Classify(cert, c.at)
				if diff := cmp.Diff(out{class, id}, c.want); diff != "" {
					t.Errorf("%s: Classify (-got +want):\n%s", c.name, diff)
				}
			}
		})
	}
}

func TestClassifyForgedCertificate(t *testing.T) {
	// A certificate from another CA that claims the same tenant's SPIFFE ID
	// is foreign, never expired or normal.
	a, _, _ := newAuthority(t, "acme")
	impostor, _, _ := newAuthority(t, "acme")
	cert, err := impostor.Issue(deviceID, deviceKey(t).Public(), ProfileNormal, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{testNow, testNow.Add(48 * time.Hour)} {
		if class, id := a.Classify(cert, at); class != ClassForeign || id != "" {
			t.Errorf("Classify at %v = %v %q, want foreign", at, class, id)
		}
	}
	if class, _ := a.Classify(nil, testNow); class != ClassForeign {
		t.Errorf("Classify(nil) = %v, want foreign", class)
	}
}

func TestIssueRejectsBadInput(t *testing.T) {
	a, _, _ := newAuthority(t, "acme")
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	for _, tc := range []struct {
		name string
		id   string
		pub  any
		want error
	}{
		{"short id", "abcd", deviceKey(t).Public(), ErrInvalidDeviceID},
		{"uppercase id", strings.ToUpper(deviceID), deviceKey(t).Public(), ErrInvalidDeviceID},
		{"ed25519 key", deviceID, edKey.Public(), ErrUnsupportedKey},
		{"p224 key", deviceID, p224.Public(), ErrUnsupportedKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := a.Issue(tc.id, tc.pub, ProfileNormal, testNow); !errors.Is(err, tc.want) {
				t.Errorf("Issue error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseDeviceURI(t *testing.T) {
	type out struct {
		Tenant, ID string
		Profile    Profile
		Err        bool
	}
	for _, tc := range []struct {
		uri  string
		want out
	}{
		{"spiffe://acme/device/" + deviceID, out{"acme", deviceID, ProfileNormal, false}},
		{"spiffe://acme/update-only/device/" + deviceID, out{"acme", deviceID, ProfileUpdateOnly, false}},
		{"spiffe://acme/device/" + deviceID + "/x", out{Err: true}},
		{"https://acme/device/" + deviceID, out{Err: true}},
		{"spiffe://acme/device/" + deviceID + "?q=1", out{Err: true}},
		{"spiffe://ACME/device/" + deviceID, out{Err: true}},
		{"spiffe://acme/workload/" + deviceID, out{Err: true}},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			u, err := url.Parse(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			tenant, id, p, err := ParseDeviceURI(u)
			got := out{tenant, id, p, err != nil}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ParseDeviceURI (-got +want):\n%s", diff)
			}
		})
	}
}

func TestRenewal(t *testing.T) {
	a, _, _ := newAuthority(t, "acme")
	cert, err := a.Issue(deviceID, deviceKey(t).Public(), ProfileNormal, testNow)
	if err != nil {
		t.Fatal(err)
	}
	half := RenewAt(cert)
	if want := cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) / 2); !half.Equal(want) {
		t.Errorf("RenewAt = %v, want %v", half, want)
	}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{testNow, false},
		{half.Add(-time.Second), false},
		{half, true},
		{testNow.Add(23 * time.Hour), true},
	} {
		if got := NeedsRenewal(cert, tc.at); got != tc.want {
			t.Errorf("NeedsRenewal at %v = %v, want %v", tc.at, got, tc.want)
		}
	}
}
