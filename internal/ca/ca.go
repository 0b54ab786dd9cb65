// Package ca owns the tenant certificate authorities: creating a tenant CA,
// keeping its private key encrypted at rest, issuing short-lived device
// certificates (normal and update-only) and classifying the client
// certificates that devices present.
//
// Only server-side packages import it (the API, the verifier in internal/attest, the keeper,
// the server and its CLI verb, for the trust-domain suffix) and the benchmark seeder
// (bench/seed); the agent never links it.
//
// Certificate profile (see doc/attestation.md), following RFC 5280 and the
// SPIFFE X.509-SVID specification:
//   - each tenant has a SPIFFE trust domain that is a DNS name,
//     <tenant>.<suffix> (TrustDomain), whose first label is the tenant;
//   - the tenant CA is an ECDSA P-256 self-signed root, valid ten years, with a
//     critical name constraints extension permitting only URIs in that trust
//     domain;
//   - a normal device certificate carries exactly one URI SAN
//     spiffe://<trust domain>/device/<id>, and a subject key identifier;
//   - an update-only certificate carries
//     spiffe://<trust domain>/update-only/device/<id>, a path that a relying
//     party matching spiffe://<trust domain>/device/ refuses without knowing
//     about update-only certificates at all;
//   - both are valid 24 hours, usable for TLS client authentication only, and
//     should be renewed at half life.
//
// CAs made before trust domains were DNS names used the bare tenant name
// (spiffe://default/...), a constraint that is not a DNS name and not
// critical. Reissue remakes such a CA certificate over the same key, and
// Classify still accepts the device certificates it signed until they
// expire, so devices keep working across the change.
package ca

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Validity periods of the certificates this package creates.
const (
	DeviceCertValidity = 24 * time.Hour
	CAValidity         = 10 * 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so that a device whose clock is slightly
	// behind the server's accepts its fresh certificate.
	clockSkew = 5 * time.Minute
)

// KEKSize is the length in bytes of the key-encryption key (AES-256-GCM).
const KEKSize = 32

// sealedKeyVersion prefixes a sealed CA key so the format can evolve.
const sealedKeyVersion = 1

// DefaultTrustDomainSuffix is the trust domain suffix when the server has no
// DNS name of its own: tenant default gets default.rampart.internal.
const DefaultTrustDomainSuffix = "rampart.internal"

// Sentinel errors.
var (
	ErrInvalidTenant      = errors.New("tenant name is not a valid SPIFFE trust domain")
	ErrInvalidTrustDomain = errors.New("trust domain must be a DNS name of at least two labels (letters, digits, dashes)")
	ErrInvalidDeviceID    = errors.New("device id must be 64 lowercase hex characters")
	ErrBadKEK             = errors.New("key-encryption key must be 32 bytes")
	ErrSealedKey          = errors.New("sealed CA key cannot be opened")
	ErrKeyMismatch        = errors.New("CA key does not match the CA certificate")
	ErrUnsupportedKey     = errors.New("unsupported device public key")
	ErrNotDeviceURI       = errors.New("not a device SPIFFE ID")
)

var (
	trustDomainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,253}[a-z0-9])?$`)
	deviceIDRE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	dnsLabelRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// ValidateTrustDomain reports whether td is a trust domain as Rampart issues
// them: a lowercase DNS name (RFC 1035 labels of letters, digits and dashes)
// of at least two labels and at most 253 characters, which is also a valid
// SPIFFE trust domain.
func ValidateTrustDomain(td string) error {
	labels := strings.Split(td, ".")
	if len(td) > 253 || len(labels) < 2 {
		return fmt.Errorf("%w: %q", ErrInvalidTrustDomain, td)
	}
	for _, l := range labels {
		if !dnsLabelRE.MatchString(l) || l == "" {
			return fmt.Errorf("%w: %q", ErrInvalidTrustDomain, td)
		}
	}
	return nil
}

// TrustDomain is tenant's SPIFFE trust domain under suffix: <tenant>.<suffix>.
func TrustDomain(tenant, suffix string) (string, error) {
	td := tenant + "." + strings.TrimSuffix(strings.ToLower(suffix), ".")
	if err := ValidateTrustDomain(td); err != nil {
		return "", fmt.Errorf("ca.TrustDomain: %w", err)
	}
	return td, nil
}

// TenantOf returns the tenant a trust domain belongs to: its first label (the
// whole name for a CA made before trust domains were DNS names).
func TenantOf(trustDomain string) string {
	t, _, _ := strings.Cut(trustDomain, ".")
	return t
}

// Profile selects the kind of device certificate to issue.
type Profile int

// Certificate profiles.
const (
	// ProfileNormal is issued after an affirming or warning attestation result.
	ProfileNormal Profile = iota + 1
	// ProfileUpdateOnly is issued after a contraindicated result: update
	// endpoints accept it, every other endpoint refuses it.
	ProfileUpdateOnly
)

func (p Profile) String() string {
	switch p {
	case ProfileNormal:
		return "normal"
	case ProfileUpdateOnly:
		return "update-only"
	default:
		return fmt.Sprintf("profile(%d)", int(p))
	}
}

// Sealed is the stored form of a tenant CA: the certificate in PEM and the
// private key encrypted with the caller's key-encryption key.
type Sealed struct {
	CertPEM      []byte
	EncryptedKey []byte
}

// Authority is an opened tenant CA, able to issue device certificates.
type Authority struct {
	tenant      string
	trustDomain string // from the CA's name constraint; the tenant name for a legacy CA
	cert        *x509.Certificate
	key         *ecdsa.PrivateKey
	pool        *x509.CertPool
}

// ValidateTenant reports whether tenant can serve as a SPIFFE trust domain.
func ValidateTenant(tenant string) error {
	if !trustDomainRE.MatchString(tenant) || strings.Contains(tenant, "..") {
		return fmt.Errorf("%w: %q", ErrInvalidTenant, tenant)
	}
	return nil
}

// Create makes a new tenant CA for trustDomain, valid from now, and returns it
// sealed under kek. The caller stores the result; Open turns it back into an
// Authority.
func Create(tenant, trustDomain string, kek []byte, now time.Time) (Sealed, error) {
	if err := ValidateTenant(tenant); err != nil {
		return Sealed{}, fmt.Errorf("ca.Create: %w", err)
	}
	if len(kek) != KEKSize {
		return Sealed{}, fmt.Errorf("ca.Create: %w", ErrBadKEK)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Sealed{}, fmt.Errorf("ca.Create: generate key: %w", err)
	}
	der, err := caCertificate(tenant, trustDomain, key, now)
	if err != nil {
		return Sealed{}, fmt.Errorf("ca.Create: %w", err)
	}
	enc, err := sealKey(key, kek, tenant)
	if err != nil {
		return Sealed{}, fmt.Errorf("ca.Create: %w", err)
	}
	return Sealed{
		CertPEM:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		EncryptedKey: enc,
	}, nil
}

// Reissue remakes a tenant CA's certificate for trustDomain over the same key
// and subject, valid from now: the certificates the old one signed still
// check against the key (see Classify), new ones carry the new trust domain.
func Reissue(tenant, trustDomain string, s Sealed, kek []byte, now time.Time) (Sealed, error) {
	a, err := Open(tenant, s, kek)
	if err != nil {
		return Sealed{}, fmt.Errorf("ca.Reissue: %w", err)
	}
	der, err := caCertificate(tenant, trustDomain, a.key, now)
	if err != nil {
		return Sealed{}, fmt.Errorf("ca.Reissue: %w", err)
	}
	return Sealed{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), EncryptedKey: s.EncryptedKey}, nil
}

// caCertificate makes the self-signed CA certificate: RFC 5280's name
// constraints extension is critical and its URI constraint is the trust
// domain, a fully qualified domain name.
func caCertificate(tenant, trustDomain string, key *ecdsa.PrivateKey, now time.Time) ([]byte, error) {
	if err := ValidateTrustDomain(trustDomain); err != nil {
		return nil, err
	}
	if TenantOf(trustDomain) != tenant {
		return nil, fmt.Errorf("%w: %q does not start with the tenant %q", ErrInvalidTrustDomain, trustDomain, tenant)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Rampart tenant CA " + tenant, Organization: []string{tenant}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
		PermittedURIDomains:   []string{trustDomain},
		// Go marks the whole name constraints extension critical with this flag.
		PermittedDNSDomainsCritical: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return der, nil
}

// Current reports whether a stored CA certificate follows the profile: its
// URI constraint is a DNS trust domain and the extension is critical. A legacy CA (bare
// tenant name, not critical) is not current and gets reissued.
func Current(s Sealed) (bool, error) {
	cert, err := ParseCertificatePEM(s.CertPEM)
	if err != nil {
		return false, fmt.Errorf("ca.Current: %w", err)
	}
	return len(cert.PermittedURIDomains) == 1 && ValidateTrustDomain(cert.PermittedURIDomains[0]) == nil && cert.PermittedDNSDomainsCritical, nil
}

// Open decrypts a sealed tenant CA with kek and checks that the key matches
// the certificate.
func Open(tenant string, s Sealed, kek []byte) (*Authority, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("ca.Open: %w", ErrBadKEK)
	}
	cert, err := ParseCertificatePEM(s.CertPEM)
	if err != nil {
		return nil, fmt.Errorf("ca.Open: %w", err)
	}
	key, err := openKey(s.EncryptedKey, kek, tenant)
	if err != nil {
		return nil, fmt.Errorf("ca.Open: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("ca.Open: %w", ErrKeyMismatch)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	td := tenant
	if len(cert.PermittedURIDomains) == 1 {
		td = cert.PermittedURIDomains[0]
	}
	return &Authority{tenant: tenant, trustDomain: td, cert: cert, key: key, pool: pool}, nil
}

// Tenant returns the tenant the authority belongs to.
func (a *Authority) Tenant() string { return a.tenant }

// TrustDomain returns the SPIFFE trust domain the authority issues for.
func (a *Authority) TrustDomain() string { return a.trustDomain }

// Certificate returns the CA certificate.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// CertificatePEM returns the CA certificate in PEM, as `rampart ca show` prints it.
func (a *Authority) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw})
}

// Pool returns a pool holding only this CA, for TLS client verification.
func (a *Authority) Pool() *x509.CertPool { return a.pool }

// DeviceURI returns the SPIFFE ID that a certificate of the given profile
// carries for deviceID in trustDomain.
func DeviceURI(trustDomain, deviceID string, p Profile) *url.URL {
	path := "/device/" + deviceID
	if p == ProfileUpdateOnly {
		path = "/update-only/device/" + deviceID
	}
	return &url.URL{Scheme: "spiffe", Host: trustDomain, Path: path}
}

// ParseDeviceURI splits a device SPIFFE ID into its trust domain, device ID
// and profile. It accepts exactly the two forms DeviceURI produces; TenantOf
// gives the tenant of the trust domain.
func ParseDeviceURI(u *url.URL) (trustDomain, deviceID string, p Profile, err error) {
	if u == nil || u.Scheme != "spiffe" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", "", 0, ErrNotDeviceURI
	}
	if ValidateTenant(u.Host) != nil {
		return "", "", 0, ErrNotDeviceURI
	}
	switch {
	case strings.HasPrefix(u.Path, "/device/"):
		deviceID, p = strings.TrimPrefix(u.Path, "/device/"), ProfileNormal
	case strings.HasPrefix(u.Path, "/update-only/device/"):
		deviceID, p = strings.TrimPrefix(u.Path, "/update-only/device/"), ProfileUpdateOnly
	default:
		return "", "", 0, ErrNotDeviceURI
	}
	if !deviceIDRE.MatchString(deviceID) {
		return "", "", 0, ErrNotDeviceURI
	}
	return u.Host, deviceID, p, nil
}

// Issue creates a device certificate of profile p for deviceID over pub,
// valid DeviceCertValidity from now. The caller has already established
// that the device holds the key (by a CSR or by the attestation evidence).
func (a *Authority) Issue(deviceID string, pub crypto.PublicKey, p Profile, now time.Time) (*x509.Certificate, error) {
	if !deviceIDRE.MatchString(deviceID) {
		return nil, fmt.Errorf("ca.Issue: %w", ErrInvalidDeviceID)
	}
	if p != ProfileNormal && p != ProfileUpdateOnly {
		return nil, fmt.Errorf("ca.Issue: unknown profile %d", int(p))
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("ca.Issue: %w: curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("ca.Issue: %w: %T", ErrUnsupportedKey, pub)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("ca.Issue: %w", err)
	}
	skid, err := subjectKeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("ca.Issue: %w", err)
	}
	if a.trustDomain == a.tenant {
		return nil, fmt.Errorf("ca.Issue: %w: the CA of %s predates DNS trust domains; reissue it first", ErrInvalidTrustDomain, a.tenant)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: deviceID, Organization: []string{a.tenant}},
		NotBefore:      now.Add(-clockSkew),
		NotAfter:       now.Add(-clockSkew + DeviceCertValidity), // the whole lifetime is 24 h, skew included
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:           []*url.URL{DeviceURI(a.trustDomain, deviceID, p)},
		SubjectKeyId:   skid,
		AuthorityKeyId: a.cert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, pub, a.key)
	if err != nil {
		return nil, fmt.Errorf("ca.Issue: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca.Issue: parse certificate: %w", err)
	}
	return cert, nil
}

// Class is what a presented client certificate amounts to for this tenant.
type Class int

// Certificate classes.
const (
	ClassForeign    Class = iota + 1 // not issued by this tenant's CA, or not a device certificate
	ClassExpired                     // issued by this CA but outside its validity period
	ClassNormal                      // a valid normal device certificate
	ClassUpdateOnly                  // a valid update-only device certificate
)

func (c Class) String() string {
	switch c {
	case ClassForeign:
		return "foreign"
	case ClassExpired:
		return "expired"
	case ClassNormal:
		return "normal"
	case ClassUpdateOnly:
		return "update-only"
	default:
		return fmt.Sprintf("class(%d)", int(c))
	}
}

// Classify verifies a presented client certificate against this CA at now
// and returns its class and, unless foreign, the device ID it names. A
// certificate in the CA's trust domain is verified as a chain to the CA. One
// in the legacy trust domain (the bare tenant name, issued before the CA was
// reissued for a DNS trust domain) is checked against the CA's key, validity
// and usage by hand, since the reissued CA's constraint no longer covers it.
func (a *Authority) Classify(cert *x509.Certificate, now time.Time) (Class, string) {
	if cert == nil || len(cert.URIs) != 1 {
		return ClassForeign, ""
	}
	td, deviceID, p, err := ParseDeviceURI(cert.URIs[0])
	if err != nil {
		return ClassForeign, ""
	}
	class := ClassNormal
	if p == ProfileUpdateOnly {
		class = ClassUpdateOnly
	}
	switch {
	case td == a.trustDomain:
		opts := x509.VerifyOptions{
			Roots:       a.pool,
			CurrentTime: now,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if _, err := cert.Verify(opts); err != nil {
			if ce, ok := errors.AsType[x509.CertificateInvalidError](err); ok && ce.Reason == x509.Expired {
				// Only call it expired when the signature is ours: re-verify
				// inside the validity window.
				opts.CurrentTime = cert.NotBefore.Add(time.Second)
				if _, err2 := cert.Verify(opts); err2 == nil {
					return ClassExpired, deviceID
				}
			}
			return ClassForeign, ""
		}
	case td == a.tenant:
		if !a.signedLegacy(cert) {
			return ClassForeign, ""
		}
		if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
			return ClassExpired, deviceID
		}
	default:
		return ClassForeign, ""
	}
	return class, deviceID
}

// signedLegacy reports whether cert is a device certificate this CA's key
// signed under the legacy trust domain: issuer, signature and client usage.
func (a *Authority) signedLegacy(cert *x509.Certificate) bool {
	if !bytes.Equal(cert.RawIssuer, a.cert.RawSubject) || cert.IsCA {
		return false
	}
	if err := cert.CheckSignatureFrom(a.cert); err != nil {
		return false
	}
	return slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
}

// RenewAt returns the half-life point of cert, when a device should renew.
func RenewAt(cert *x509.Certificate) time.Time {
	return cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) / 2)
}

// NeedsRenewal reports whether cert has reached its half life at now.
func NeedsRenewal(cert *x509.Certificate, now time.Time) bool {
	return !now.Before(RenewAt(cert))
}

// ParseCertificatePEM parses exactly one PEM certificate.
func ParseCertificatePEM(b []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("parse certificate: no PEM certificate block")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("parse certificate: trailing data after certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// sealKey encrypts the PKCS#8 encoding of key with AES-256-GCM under kek.
// Layout: version byte || 12-byte nonce || ciphertext+tag. The additional
// data binds the ciphertext to its tenant, so a sealed key moved to another
// tenant's row does not open.
func sealKey(key *ecdsa.PrivateKey, kek []byte, tenant string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(der)+aead.Overhead())
	out[0] = sealedKeyVersion
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("seal key: nonce: %w", err)
	}
	return aead.Seal(out, out[1:], der, sealAAD(tenant)), nil
}

func openKey(sealed, kek []byte, tenant string) (*ecdsa.PrivateKey, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() || sealed[0] != sealedKeyVersion {
		return nil, ErrSealedKey
	}
	nonce, ct := sealed[1:1+aead.NonceSize()], sealed[1+aead.NonceSize():]
	der, err := aead.Open(nil, nonce, ct, sealAAD(tenant))
	if err != nil {
		return nil, ErrSealedKey
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSealedKey, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an ECDSA key", ErrSealedKey)
	}
	return key, nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != KEKSize {
		return nil, ErrBadKEK
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

func sealAAD(tenant string) []byte { return []byte("rampart/ca-key/v1/" + tenant) }

func randomSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("subject key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}
