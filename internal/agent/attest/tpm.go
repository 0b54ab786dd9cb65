package attest

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	gattest "github.com/google/go-attestation/attest"
	legacy "github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpmutil"

	"github.com/rampartsec/rampart/internal/agent/durable"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

// TPM is an attester on a TPM 2.0, reached through any go-tpm transport:
// the kernel resource manager, swtpm over TCP or the in-process simulator.
// The identity key is an ECDSA P-256 attestation key (AK) created in the
// TPM; the certificate key is a TPM-resident ECDSA P-256 key certified by
// the AK. Only opaque key blobs, wrapped by the TPM's storage root key,
// are kept in the state directory.
type TPM struct {
	kind deviceapi.AttesterKind
	dir  string
	log  *slog.Logger
	ch   *commandChannel
	tpm  *gattest.TPM

	mu      sync.Mutex // serialises commands on ch
	ek      *gattest.EK
	certKey *gattest.Key
	signer  crypto.Signer
}

const (
	akBlobFile      = "ak.blob"
	certKeyBlobFile = "certkey.blob"
)

// TPMKeyBlobFiles are the key blobs a TPM backend keeps in its state folder; a freshly
// manufactured simulator cannot load an earlier one's, so tpmsim removes them.
var TPMKeyBlobFiles = []string{akBlobFile, certKeyBlobFile}

// NewTPM returns an attester of the given kind on t, keeping key blobs in
// dir. It takes ownership of t.
func NewTPM(kind deviceapi.AttesterKind, t transport.TPMCloser, dir string, log *slog.Logger) (*TPM, error) {
	ch := &commandChannel{tpm: t}
	tpm, err := gattest.OpenTPM(&gattest.OpenConfig{CommandChannel: ch})
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("%s attester: open: %w", kind, err)
	}
	return &TPM{kind: kind, dir: dir, log: log, ch: ch, tpm: tpm}, nil
}

// Kind implements Attester.
func (a *TPM) Kind() deviceapi.AttesterKind { return a.kind }

// Enrollment implements Attester: the AK with its creation attestation, the
// EK public key and, when the TPM holds one, the EK certificate.
func (a *TPM) Enrollment(context.Context) (*deviceapi.EnrollRequest, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ek, err := a.endorsementKey()
	if err != nil {
		return nil, fmt.Errorf("%s attester: enrollment: %w", a.kind, err)
	}
	ekPub, err := x509.MarshalPKIXPublicKey(ek.Public)
	if err != nil {
		return nil, fmt.Errorf("%s attester: enrollment: ek public: %w", a.kind, err)
	}
	ak, err := a.loadAK()
	if err != nil {
		return nil, fmt.Errorf("%s attester: enrollment: %w", a.kind, err)
	}
	defer ak.Close(a.tpm)
	p := ak.AttestationParameters()
	req := &deviceapi.EnrollRequest{
		Attester:            a.kind,
		AKPublic:            p.Public,
		AKCreateData:        p.CreateData,
		AKCreateAttestation: p.CreateAttestation,
		AKCreateSignature:   p.CreateSignature,
		EKPublic:            ekPub,
	}
	if ek.Certificate != nil {
		req.EKCertificate = ek.Certificate.Raw
	}
	return req, nil
}

// Activate implements Attester with TPM2_ActivateCredential.
func (a *TPM) Activate(_ context.Context, credential, secret []byte) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ek, err := a.endorsementKey()
	if err != nil {
		return nil, fmt.Errorf("%s attester: activate: %w", a.kind, err)
	}
	ak, err := a.loadAK()
	if err != nil {
		return nil, fmt.Errorf("%s attester: activate: %w", a.kind, err)
	}
	defer ak.Close(a.tpm)
	out, err := ak.ActivateCredentialWithEK(a.tpm, gattest.EncryptedCredential{Credential: credential, Secret: secret}, *ek)
	if err != nil {
		return nil, fmt.Errorf("%s attester: activate: %w", a.kind, err)
	}
	return out, nil
}

// Extend implements Attester with TPM2_PCR_Extend on the SHA-256 bank.
func (a *TPM) Extend(_ context.Context, pcr int, digest []byte) error {
	if pcr < 0 || pcr >= deviceapi.NumPCRs || len(digest) != 32 {
		return fmt.Errorf("%s attester: extend pcr %d with %d bytes: invalid", a.kind, pcr, len(digest))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := legacy.PCRExtend(a.ch, tpmutil.Handle(pcr), legacy.AlgSHA256, digest, ""); err != nil {
		return fmt.Errorf("%s attester: extend pcr %d: %w", a.kind, pcr, err)
	}
	return nil
}

// Quote implements Attester with TPM2_Quote by the AK.
func (a *TPM) Quote(_ context.Context, pcrs []int, data []byte) (*Quote, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ak, err := a.loadAK()
	if err != nil {
		return nil, fmt.Errorf("%s attester: quote: %w", a.kind, err)
	}
	defer ak.Close(a.tpm)
	q, err := ak.QuotePCRs(a.tpm, data, gattest.HashSHA256, pcrs)
	if err != nil {
		return nil, fmt.Errorf("%s attester: quote: %w", a.kind, err)
	}
	all, err := a.tpm.PCRs(gattest.HashSHA256)
	if err != nil {
		return nil, fmt.Errorf("%s attester: read pcrs: %w", a.kind, err)
	}
	byIndex := make(map[int][]byte, len(all))
	for _, p := range all {
		byIndex[p.Index] = p.Digest
	}
	out := &Quote{Quote: q.Quote, Signature: q.Signature}
	for _, i := range pcrs {
		d, ok := byIndex[i]
		if !ok {
			return nil, fmt.Errorf("%s attester: pcr %d not readable", a.kind, i)
		}
		out.PCRs = append(out.PCRs, deviceapi.PCR{Index: i, Digest: hex.EncodeToString(d)})
	}
	return out, nil
}

// CertificateKey implements Attester: a TPM-resident ECDSA P-256 key,
// created once and certified by the AK. The signer stays loaded until Close.
func (a *TPM) CertificateKey(context.Context) (crypto.Signer, *deviceapi.Certification, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.certKey == nil {
		k, err := a.loadCertKey()
		if err != nil {
			return nil, nil, fmt.Errorf("%s attester: certificate key: %w", a.kind, err)
		}
		signer, err := k.Private(k.Public())
		if err != nil {
			k.Close()
			return nil, nil, fmt.Errorf("%s attester: certificate key: %w", a.kind, err)
		}
		s, ok := signer.(crypto.Signer)
		if !ok {
			k.Close()
			return nil, nil, fmt.Errorf("%s attester: certificate key: %T is not a signer", a.kind, signer)
		}
		a.certKey, a.signer = k, &lockedSigner{mu: &a.mu, s: s}
	}
	p := a.certKey.CertificationParameters()
	return a.signer, &deviceapi.Certification{
		Public:            p.Public,
		CreateAttestation: p.CreateAttestation,
		CreateSignature:   p.CreateSignature,
	}, nil
}

// Close implements Attester: it flushes the loaded certificate key (swtpm
// keeps objects across connections) and closes the transport.
func (a *TPM) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	if a.certKey != nil {
		errs = append(errs, a.certKey.Close())
		a.certKey, a.signer = nil, nil
	}
	errs = append(errs, a.tpm.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s attester: close: %w", a.kind, err)
	}
	return nil
}

// endorsementKey prefers an EK that comes with a certificate.
func (a *TPM) endorsementKey() (*gattest.EK, error) {
	if a.ek != nil {
		return a.ek, nil
	}
	eks, err := a.tpm.EKCertificates()
	if err != nil || len(eks) == 0 {
		eks, err = a.tpm.EKs()
	}
	if err != nil {
		return nil, fmt.Errorf("endorsement key: %w", err)
	}
	if len(eks) == 0 {
		return nil, ErrNoEK
	}
	a.ek = &eks[0]
	return a.ek, nil
}

// loadAK loads the AK from its blob, creating it on first use. The caller
// closes it after the operation so no object stays loaded.
func (a *TPM) loadAK() (*gattest.AK, error) {
	path := filepath.Join(a.dir, akBlobFile)
	blob, err := os.ReadFile(path)
	if err == nil {
		ak, err := a.tpm.LoadAK(blob)
		if err != nil {
			return nil, fmt.Errorf("load ak: %w", err)
		}
		return ak, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load ak: %w", err)
	}
	ak, err := a.tpm.NewAK(&gattest.AKConfig{Algorithm: gattest.ECDSA})
	if err != nil {
		return nil, fmt.Errorf("create ak: %w", err)
	}
	blob, err = ak.Marshal()
	if err == nil {
		err = durable.WriteFile(path, blob)
	}
	if err != nil {
		ak.Close(a.tpm)
		return nil, fmt.Errorf("save ak: %w", err)
	}
	return ak, nil
}

func (a *TPM) loadCertKey() (*gattest.Key, error) {
	path := filepath.Join(a.dir, certKeyBlobFile)
	blob, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := a.tpm.LoadKey(blob)
		if err == nil {
			return k, nil
		}
		// The TPM no longer accepts the blob (its storage hierarchy was
		// cleared). The certificate key is not the device's identity:
		// make a new one, which the next attestation certifies.
		a.log.Warn("certificate key blob not loadable, creating a new key", "attester", a.kind, "err", err)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("load key: %w", err)
	}
	ak, err := a.loadAK()
	if err != nil {
		return nil, err
	}
	defer ak.Close(a.tpm)
	k, err := a.tpm.NewKey(ak, &gattest.KeyConfig{Algorithm: gattest.ECDSA, Size: 256})
	if err != nil {
		return nil, fmt.Errorf("create key: %w", err)
	}
	blob, err = k.Marshal()
	if err == nil {
		err = durable.WriteFile(path, blob)
	}
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("save key: %w", err)
	}
	return k, nil
}

// lockedSigner serialises signatures with the attester's other commands,
// since TLS may sign from another goroutine.
type lockedSigner struct {
	mu *sync.Mutex
	s  crypto.Signer
}

func (l *lockedSigner) Public() crypto.PublicKey { return l.s.Public() }

func (l *lockedSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Sign(r, digest, opts)
}
