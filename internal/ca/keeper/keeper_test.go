package keeper

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func TestKeeper(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn, err := s.CreateTenant(ctx, store.System, "", "acme")
		if err != nil {
			t.Fatal(err)
		}
		kek := make([]byte, 32)
		rand.Read(kek)
		k, err := New(s, kek, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Existing(ctx, tn.ID, tn.Name); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Existing before creation = %v, want ErrNotFound", err)
		}
		a, err := k.Authority(ctx, tn.ID, tn.Name)
		if err != nil {
			t.Fatal(err)
		}
		// A second keeper (another replica, or a restart) opens the same CA.
		k2, _ := New(s, kek, nil, "")
		b, err := k2.Existing(ctx, tn.ID, tn.Name)
		if err != nil || !b.Certificate().Equal(a.Certificate()) {
			t.Fatalf("second keeper: %v, same CA %v", err, err == nil && b.Certificate().Equal(a.Certificate()))
		}
		// The wrong key-encryption key cannot open it.
		wrong := make([]byte, 32)
		k3, _ := New(s, wrong, nil, "")
		if _, err := k3.Existing(ctx, tn.ID, tn.Name); err == nil {
			t.Fatal("a wrong KEK opened the CA")
		}
		recs, _, _ := s.ListAudit(ctx, tn.ID, store.AuditFilter{Action: "ca.create"}, store.Page{})
		if len(recs) != 1 {
			t.Fatalf("ca.create audit records = %d, want 1", len(recs))
		}
		if _, err := New(s, kek[:16], nil, ""); err == nil {
			t.Fatal("a short KEK was accepted")
		}
	})
}

// TestKeeperReissuesLegacyCA: a tenant CA stored before trust domains were DNS names (the bare
// tenant name as a non-critical URI constraint) is reissued on first use, over the same key,
// for <tenant>.<suffix>, once across keepers, with a ca.reissue audit record; the device
// certificates it had signed keep classifying as normal.
func TestKeeperReissuesLegacyCA(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn, err := s.CreateTenant(ctx, store.System, "", "acme")
		if err != nil {
			t.Fatal(err)
		}
		kek := make([]byte, 32)
		rand.Read(kek)
		now := time.Now()
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Rampart tenant CA acme", Organization: []string{"acme"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(ca.CAValidity), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true, SubjectKeyId: []byte{1, 2, 3}, PermittedURIDomains: []string{"acme"}}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		caCert, _ := x509.ParseCertificate(caDER)
		devKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		id := strings.Repeat("cd", 32)
		devDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: id},
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, URIs: []*url.URL{{Scheme: "spiffe", Host: "acme", Path: "/device/" + id}}},
			caCert, devKey.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		devCert, _ := x509.ParseCertificate(devDER)
		// The sealed-key format of internal/ca: version 1, AES-256-GCM nonce, PKCS#8, tenant in the AAD.
		pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
		block, _ := aes.NewCipher(kek)
		gcm, _ := cipher.NewGCM(block)
		sealed := make([]byte, 1+gcm.NonceSize())
		sealed[0] = 1
		rand.Read(sealed[1:])
		sealed = gcm.Seal(sealed, sealed[1:], pkcs8, []byte("rampart/ca-key/v1/acme"))
		legacyPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
		if _, err := s.EnsureTenantCA(ctx, tn.ID, func() (store.TenantCA, error) {
			return store.TenantCA{CertPEM: legacyPEM, EncryptedKey: sealed}, nil
		}); err != nil {
			t.Fatal(err)
		}

		k, err := New(s, kek, nil, "devices.example.com")
		if err != nil {
			t.Fatal(err)
		}
		a, err := k.Existing(ctx, tn.ID, tn.Name)
		if err != nil {
			t.Fatal(err)
		}
		if a.TrustDomain() != "acme.devices.example.com" || !a.Certificate().PermittedDNSDomainsCritical || !a.Certificate().PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
			t.Errorf("reissued CA: trust domain %q, critical %v, same key %v", a.TrustDomain(), a.Certificate().PermittedDNSDomainsCritical,
				a.Certificate().PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey))
		}
		if class, got := a.Classify(devCert, now); class != ca.ClassNormal || got != id {
			t.Errorf("a device certificate of the legacy CA: %v %q, want normal", class, got)
		}
		// A second keeper (another replica) finds it current and does not reissue again.
		k2, _ := New(s, kek, nil, "other.example.org")
		a2, err := k2.Authority(ctx, tn.ID, tn.Name)
		if err != nil || !a2.Certificate().Equal(a.Certificate()) {
			t.Errorf("second keeper: %v, same CA %v", err, err == nil && a2.Certificate().Equal(a.Certificate()))
		}
		recs, _, err := s.ListAudit(ctx, tn.ID, store.AuditFilter{Action: "ca.reissue"}, store.Page{})
		if err != nil || len(recs) != 1 {
			t.Errorf("ca.reissue audit records: %d, %v; want 1", len(recs), err)
		}
	})
}
