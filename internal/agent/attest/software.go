package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/rampartsec/rampart/internal/agent/durable"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

// Software is the development attester: an ECDSA P-256 identity key in a
// file and a software PCR bank persisted beside it. It produces TPM-format
// quotes so the server verifies one format, but nothing protects its key:
// the verifier marks its results with a warning, and a product's policy may
// refuse it.
type Software struct {
	dir      string
	bootID   string
	identity *ecdsa.PrivateKey
	certKey  *ecdsa.PrivateKey
	akPublic []byte // TPMT_PUBLIC of identity
	akName   []byte // TPM2B_NAME contents: nameAlg || SHA-256(akPublic)
	bank     pcrBank
	start    time.Time
}

// pcrBank is the persisted software PCR state.
type pcrBank struct {
	BootID string   `json:"boot_id"`
	SHA256 []string `json:"sha256"` // NumPCRs lowercase hex values
}

const (
	identityKeyFile = "identity.key"
	certKeyFile     = "cert.key"
	pcrBankFile     = "pcrs.json"
)

// OpenSoftware opens (creating on first use) the software attester state in
// dir. bootID is the current boot's identifier; a bank saved in another boot
// starts over from zero, as a TPM's PCRs do at reset.
func OpenSoftware(dir, bootID string) (*Software, error) {
	id, err := loadOrCreateKey(filepath.Join(dir, identityKeyFile))
	if err != nil {
		return nil, fmt.Errorf("software attester: %w", err)
	}
	ck, err := loadOrCreateKey(filepath.Join(dir, certKeyFile))
	if err != nil {
		return nil, fmt.Errorf("software attester: %w", err)
	}
	pub := softwareAKPublic(&id.PublicKey)
	name := sha256.Sum256(pub)
	s := &Software{
		dir: dir, bootID: bootID, identity: id, certKey: ck, akPublic: pub,
		akName: append([]byte{0x00, 0x0b}, name[:]...), start: time.Now(),
	}
	if err := s.loadBank(); err != nil {
		return nil, fmt.Errorf("software attester: %w", err)
	}
	return s, nil
}

// Rebooted is the attester of the same device's next boot, bootID: what OpenSoftware returns
// after a reboot (the same keys, a PCR bank that starts over from zero), without reading and
// parsing the keys again. The agent uses it for the reboot it simulates; s is not used after.
func (s *Software) Rebooted(bootID string) (*Software, error) {
	n := &Software{dir: s.dir, bootID: bootID, identity: s.identity, certKey: s.certKey, akPublic: s.akPublic,
		akName: s.akName, start: time.Now()}
	if err := n.loadBank(); err != nil {
		return nil, fmt.Errorf("software attester: %w", err)
	}
	return n, nil
}

// Kind implements Attester.
func (s *Software) Kind() deviceapi.AttesterKind { return deviceapi.KindSoftware }

// Enrollment implements Attester: the identity key only.
func (s *Software) Enrollment(context.Context) (*deviceapi.EnrollRequest, error) {
	return &deviceapi.EnrollRequest{Attester: deviceapi.KindSoftware, AKPublic: s.akPublic}, nil
}

// Activate implements Attester; a software attester has no EK.
func (s *Software) Activate(context.Context, []byte, []byte) ([]byte, error) {
	return nil, fmt.Errorf("software attester: %w", ErrNoEK)
}

// Extend implements Attester: PCR = SHA-256(PCR || digest), then persist.
func (s *Software) Extend(_ context.Context, pcr int, digest []byte) error {
	if pcr < 0 || pcr >= deviceapi.NumPCRs || len(digest) != sha256.Size {
		return fmt.Errorf("software attester: extend pcr %d with %d bytes: invalid", pcr, len(digest))
	}
	old, err := hex.DecodeString(s.bank.SHA256[pcr])
	if err != nil {
		return fmt.Errorf("software attester: pcr bank: %w", err)
	}
	sum := sha256.Sum256(append(old, digest...))
	s.bank.SHA256[pcr] = hex.EncodeToString(sum[:])
	return s.saveBank()
}

// Quote implements Attester: a TPMS_ATTEST quote structure signed with the
// identity key, exactly as a TPM with an ECDSA P-256 AK would produce it.
func (s *Software) Quote(_ context.Context, pcrs []int, data []byte) (*Quote, error) {
	sel := make([]byte, 3)
	digest := sha256.New()
	var values []deviceapi.PCR
	prev := -1
	for _, p := range pcrs {
		if p <= prev || p >= deviceapi.NumPCRs {
			return nil, fmt.Errorf("software attester: quote: pcrs must be ascending and below %d", deviceapi.NumPCRs)
		}
		prev = p
		sel[p/8] |= 1 << (p % 8)
		v, err := hex.DecodeString(s.bank.SHA256[p])
		if err != nil {
			return nil, fmt.Errorf("software attester: pcr bank: %w", err)
		}
		digest.Write(v)
		values = append(values, deviceapi.PCR{Index: p, Digest: s.bank.SHA256[p]})
	}
	att := tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: s.akName},
		ExtraData:       tpm2.TPM2BData{Buffer: data},
		ClockInfo: tpm2.TPMSClockInfo{
			Clock: uint64(time.Since(s.start).Milliseconds()),
			Safe:  true,
		},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: sel}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: digest.Sum(nil)},
		}),
	}
	quote := tpm2.Marshal(att)
	h := sha256.Sum256(quote)
	r, ss, err := ecdsa.Sign(rand.Reader, s.identity, h[:])
	if err != nil {
		return nil, fmt.Errorf("software attester: sign quote: %w", err)
	}
	sig := tpm2.TPMTSignature{
		SigAlg: tpm2.TPMAlgECDSA,
		Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
			Hash:       tpm2.TPMAlgSHA256,
			SignatureR: tpm2.TPM2BECCParameter{Buffer: r.FillBytes(make([]byte, 32))},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: ss.FillBytes(make([]byte, 32))},
		}),
	}
	return &Quote{Quote: quote, Signature: tpm2.Marshal(sig), PCRs: values}, nil
}

// CertificateKey implements Attester: a second software key kept beside the
// identity key; the quote's extra data binds it to the evidence.
func (s *Software) CertificateKey(context.Context) (crypto.Signer, *deviceapi.Certification, error) {
	return s.certKey, nil, nil
}

// Close implements Attester.
func (s *Software) Close() error { return nil }

// softwareAKPublic encodes pub as the TPMT_PUBLIC of an ECDSA-SHA256 signing key.
func softwareAKPublic(pub *ecdsa.PublicKey) []byte {
	// Bytes is the uncompressed point 0x04 || X || Y, each coordinate 32 bytes on P-256; it
	// fails only for a key off the curve, which ecdsa.GenerateKey never returns.
	point, err := pub.Bytes()
	if err != nil || len(point) != 65 {
		panic(fmt.Sprintf("softwareAKPublic: a P-256 key's point: %d bytes, %v", len(point), err))
	}
	return tpm2.Marshal(tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			SensitiveDataOrigin: true,
			UserWithAuth:        true,
			SignEncrypt:         true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: point[1:33]},
			Y: tpm2.TPM2BECCParameter{Buffer: point[33:65]},
		}),
	})
}

func (s *Software) loadBank() error {
	b, err := os.ReadFile(filepath.Join(s.dir, pcrBankFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("pcr bank: %w", err)
	default:
		var bank pcrBank
		if err := json.Unmarshal(b, &bank); err != nil {
			return fmt.Errorf("pcr bank: %w", err)
		}
		if bank.BootID == s.bootID && len(bank.SHA256) == deviceapi.NumPCRs {
			s.bank = bank
			return nil
		}
	}
	s.bank = pcrBank{BootID: s.bootID, SHA256: make([]string, deviceapi.NumPCRs)}
	zero := hex.EncodeToString(make([]byte, sha256.Size))
	for i := range s.bank.SHA256 {
		s.bank.SHA256[i] = zero
	}
	return s.saveBank()
}

func (s *Software) saveBank() error {
	b, err := json.Marshal(s.bank)
	if err != nil {
		return fmt.Errorf("pcr bank: %w", err)
	}
	return durable.WriteFile(filepath.Join(s.dir, pcrBankFile), b)
}

func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("encode key: %w", err)
		}
		if err := durable.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return nil, err
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("read key %s: no PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("read key %s: not an ECDSA P-256 key", path)
	}
	return key, nil
}
