package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	gattest "github.com/google/go-attestation/attest"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// Enrolment errors.
var (
	ErrIdentityKey  = errors.New("identity key invalid")
	ErrAKProperties = errors.New("attestation key is not a TPM-bound restricted signing key")
	ErrEKMismatch   = errors.New("EK certificate does not certify the EK public key")
	ErrEKMissing    = errors.New("TPM enrolment needs an EK")
	ErrEKUntrusted  = errors.New("EK certificate does not chain to a trusted manufacturer CA")
	ErrEKNotAllowed = errors.New("EK neither certified by a trusted manufacturer nor preauthorised")
)

// Enrollment is a checked enrolment request: what the server stores about
// a device until it is claimed and activated.
type Enrollment struct {
	DeviceID string
	Attester deviceapi.AttesterKind
	AKPublic []byte // TPMT_PUBLIC, the identity key
	// TPM backends only.
	EKPublic        crypto.PublicKey
	EKHash          string // hex SHA-256 of the EK's PKIX encoding
	EKCertificate   *x509.Certificate
	EKIntermediates []*x509.Certificate
	akParams        gattest.AttestationParameters
}

// CheckEnrollment validates a decoded enrolment request: the identity key
// parses and is a signing key of sufficient strength; on TPM backends the
// AK was created by the TPM as a restricted, non-exportable key and the EK
// certificate (if any) certifies the EK public key. It does not decide
// trust in the EK; see Enrollment.CheckEK.
func CheckEnrollment(req *deviceapi.EnrollRequest) (*Enrollment, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("attest.CheckEnrollment: %w", err)
	}
	ak, err := gattest.ParseAKPublic(req.AKPublic)
	if err != nil {
		return nil, fmt.Errorf("attest.CheckEnrollment: %w: %w", ErrIdentityKey, err)
	}
	if err := checkKeyStrength(ak.Public); err != nil {
		return nil, fmt.Errorf("attest.CheckEnrollment: %w: %w", ErrIdentityKey, err)
	}
	id, err := deviceapi.DeviceID(ak.Public)
	if err != nil {
		return nil, fmt.Errorf("attest.CheckEnrollment: %w: %w", ErrIdentityKey, err)
	}
	e := &Enrollment{DeviceID: id, Attester: req.Attester, AKPublic: slices.Clone(req.AKPublic)}
	if !req.Attester.IsTPM() {
		return e, nil
	}
	e.akParams = gattest.AttestationParameters{
		Public:            req.AKPublic,
		CreateData:        req.AKCreateData,
		CreateAttestation: req.AKCreateAttestation,
		CreateSignature:   req.AKCreateSignature,
	}
	ap := gattest.ActivationParameters{AK: e.akParams}
	if err := ap.CheckAKParameters(); err != nil {
		return nil, fmt.Errorf("attest.CheckEnrollment: %w: %w", ErrAKProperties, err)
	}
	ekPub, err := x509.ParsePKIXPublicKey(req.EKPublic)
	if err != nil {
		return nil, fmt.Errorf("attest.CheckEnrollment: %w: %w", ErrEKMissing, err)
	}
	if err := checkKeyStrength(ekPub); err != nil {
		return nil, fmt.Errorf("attest.CheckEnrollment: ek: %w", err)
	}
	e.EKPublic, e.EKHash = ekPub, deviceapi.KeyHash(req.EKPublic)
	if len(req.EKCertificate) > 0 {
		cert, err := x509.ParseCertificate(req.EKCertificate)
		if err != nil {
			return nil, fmt.Errorf("attest.CheckEnrollment: ek certificate: %w", err)
		}
		if !publicKeysEqual(cert.PublicKey, ekPub) {
			return nil, fmt.Errorf("attest.CheckEnrollment: %w", ErrEKMismatch)
		}
		e.EKCertificate = cert
		for _, der := range req.EKIntermediates {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("attest.CheckEnrollment: ek intermediate: %w", err)
			}
			e.EKIntermediates = append(e.EKIntermediates, c)
		}
	}
	return e, nil
}

// ManufacturerCAs are the TPM manufacturer certificates a tenant trusts
// for EK certificates: self-signed roots and the intermediates under them.
type ManufacturerCAs struct {
	roots         *x509.CertPool
	intermediates *x509.CertPool
	n             int
}

// ParseManufacturerCAs reads PEM certificates; self-signed ones become
// roots, the others intermediates.
func ParseManufacturerCAs(pemData []byte) (*ManufacturerCAs, error) {
	m := &ManufacturerCAs{roots: x509.NewCertPool(), intermediates: x509.NewCertPool()}
	for rest := pemData; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("attest.ParseManufacturerCAs: %w", err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("attest.ParseManufacturerCAs: %q is not a CA", c.Subject)
		}
		if c.CheckSignatureFrom(c) == nil {
			m.roots.AddCert(c)
		} else {
			m.intermediates.AddCert(c)
		}
		m.n++
	}
	if m.n == 0 {
		return nil, errors.New("attest.ParseManufacturerCAs: no certificates")
	}
	return m, nil
}

// oidSubjectAltName is the extension swtpm (and the TCG EK profile, for an
// empty subject) marks critical while holding only a directoryName with
// TPM manufacturer attributes, which Go's verifier does not process.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// CheckEK decides whether the enrolment's EK is trusted: its certificate
// chains to cas, or its hash is among preauthorised EK hashes. Software
// enrolments have no EK and pass.
func (e *Enrollment) CheckEK(cas *ManufacturerCAs, preauthorised func(ekHash string) bool) error {
	if !e.Attester.IsTPM() {
		return nil
	}
	if preauthorised != nil && preauthorised(e.EKHash) {
		return nil
	}
	if e.EKCertificate == nil || cas == nil {
		return fmt.Errorf("attest.CheckEK: %w", ErrEKNotAllowed)
	}
	if err := verifyEKCertificate(e.EKCertificate, e.EKIntermediates, cas); err != nil {
		return fmt.Errorf("attest.CheckEK: %w: %w", ErrEKUntrusted, err)
	}
	return nil
}

func verifyEKCertificate(cert *x509.Certificate, extra []*x509.Certificate, cas *ManufacturerCAs) error {
	// Clear exactly the critical subject-alt-name from the unhandled list,
	// and only when it carries no name Go would check: everything else
	// that Go does not understand still fails the verification.
	if len(cert.DNSNames)+len(cert.EmailAddresses)+len(cert.IPAddresses)+len(cert.URIs) == 0 &&
		slices.ContainsFunc(cert.UnhandledCriticalExtensions, oidSubjectAltName.Equal) {
		c := *cert
		c.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(cert.UnhandledCriticalExtensions), oidSubjectAltName.Equal)
		cert = &c
	}
	inter := cas.intermediates.Clone()
	for _, c := range extra {
		inter.AddCert(c)
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:         cas.roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

// Begin issues the first challenge of an enrolment: a nonce and, on TPM
// backends, a credential activation challenge that only the TPM holding
// both the EK and the AK can answer. The caller has stored the enrolment
// and decided trust in the EK (CheckEK).
func (v *Verifier) Begin(ctx context.Context, e *Enrollment) (*deviceapi.EnrollResponse, error) {
	resp := &deviceapi.EnrollResponse{DeviceID: e.DeviceID}
	var digest []byte
	if e.Attester.IsTPM() {
		ap := gattest.ActivationParameters{EK: e.EKPublic, AK: e.akParams}
		secret, ec, err := ap.Generate()
		if err != nil {
			return nil, fmt.Errorf("attest.Begin: activation challenge: %w", err)
		}
		sum := sha256.Sum256(secret)
		digest = sum[:]
		resp.Credential, resp.Secret = ec.Credential, ec.Secret
	}
	c, err := v.issue(ctx, e.DeviceID, digest)
	if err != nil {
		return nil, fmt.Errorf("attest.Begin: %w", err)
	}
	resp.Nonce, resp.Expires = c.Nonce, c.Expires
	return resp, nil
}

func checkKeyStrength(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize < 256 {
			return fmt.Errorf("ecdsa curve %s too small", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("rsa key of %d bits too small", k.N.BitLen())
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
