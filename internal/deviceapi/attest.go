package deviceapi

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/public"
)

// Limits on attestation messages. A message over its limit is refused before
// it is parsed.
const (
	MaxEnrollSize    = 32 << 10  // bytes of an encoded EnrollRequest
	MaxEvidenceSize  = 4 << 20   // bytes of an encoded Evidence (the platform logs are most of it)
	MaxEventLog      = 512 << 10 // bytes of the firmware's TCG event log (real ones are 10-100 KiB)
	MaxIMALog        = 2 << 20   // bytes of the IMA runtime log (about 14,000 ima-ng entries)
	MaxEvents        = 512       // measurement log entries in one Evidence
	MaxTPMBlob       = 2048      // bytes of one TPM structure (public area, quote, signature)
	MaxCertificate   = 4096      // bytes of one DER certificate or public key
	MaxIntermediates = 4         // EK intermediate certificates
	MaxTextField     = 128       // bytes of an event name or version
	NonceSize        = 32        // bytes of a server nonce
	ActivationSize   = 32        // bytes of a credential activation secret
	NumPCRs          = 24        // PCR indices are 0..NumPCRs-1
)

// AttesterKind names an attester backend.
type AttesterKind string

// Attester backends.
const (
	KindSoftware  AttesterKind = "software"  // key in a file, software PCR bank; development only
	KindTPM       AttesterKind = "tpm"       // a TPM 2.0 through /dev/tpmrm0
	KindSWTPM     AttesterKind = "swtpm"     // swtpm over TCP
	KindSimulator AttesterKind = "simulator" // go-tpm-tools' in-process simulator
)

// IsTPM reports whether the backend speaks TPM 2.0 commands and so has an
// endorsement key and creation attestations.
func (k AttesterKind) IsTPM() bool {
	return k == KindTPM || k == KindSWTPM || k == KindSimulator
}

func (k AttesterKind) valid() bool { return k == KindSoftware || k.IsTPM() }

// EventType classifies a measured component.
type EventType string

// Measured component classes, in boot order.
const (
	EventBoot        EventType = "boot"        // boot chain: firmware, bootloader, kernel
	EventOS          EventType = "os"          // root file system image
	EventAgent       EventType = "agent"       // the rampart-agent binary
	EventApplication EventType = "application" // application images
)

// PCRs a real boot chain extends, and the one Rampart's agent owns. The
// firmware measures into 0-7, GRUB into 8-9, IMA into 10, systemd-stub into
// 11-13, shim into 14 (its MokList) and systemd into 15; 17-22 belong to
// dynamic launch and cannot be extended from locality 0. That leaves 16
// (debug) and 23 (application support): the agent extends 23, the PCR the
// PC Client specification sets aside for applications. Like 16 it can be
// reset from locality 0, which is why agent measurements alone never make a
// root of trust (doc/attestation.md).
const (
	AgentPCR = 23 // every event the agent measures itself
	IMAPCR   = 10 // the kernel's IMA measurements
)

// BootPCRs are the PCRs the firmware and bootloader extend, which the
// firmware's event log describes: SRTM 0-7, the bootloader's 8-9.
var BootPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}

// LegacyAgentPCRs are the PCRs agents before 0.19's measured boot extended,
// one per event type (LegacyPCRFor). The verifier still accepts them, labelled,
// so enrolled devices keep working until they update and reboot.
var LegacyAgentPCRs = []int{12, 13, 14, 15}

// PCRFor returns the PCR Rampart extends for a component class: AgentPCR for
// all of them (each event names its type).
func PCRFor(t EventType) (int, bool) {
	switch t {
	case EventBoot, EventOS, EventAgent, EventApplication:
		return AgentPCR, true
	}
	return 0, false
}

// LegacyPCRFor returns the PCR older agents extended for a component class
// (12-15), which shim, systemd-stub and systemd also extend on real devices.
func LegacyPCRFor(t EventType) (int, bool) {
	switch t {
	case EventBoot:
		return 12, true
	case EventOS:
		return 13, true
	case EventAgent:
		return 14, true
	case EventApplication:
		return 15, true
	}
	return 0, false
}

// QuotedPCRs is the PCR selection every quote covers, ascending: the boot
// PCRs, IMA's and the agent's own.
var QuotedPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, IMAPCR, AgentPCR}

// LegacyQuotedPCRs is what an agent quotes during a boot whose log it began
// with the legacy PCRs: the boot and IMA PCRs with LegacyAgentPCRs.
var LegacyQuotedPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, IMAPCR, 12, 13, 14, 15}

// EnrollRequest is what a device sends to /device/v1/enroll.
type EnrollRequest struct {
	Attester AttesterKind `json:"attester"`
	// AKPublic is the identity (attestation) key as a TPMT_PUBLIC. The device
	// ID is the hex SHA-256 of its PKIX encoding.
	AKPublic []byte `json:"ak_public"`
	// TPM backends only: the AK's creation data, TPMS_ATTEST creation
	// certification and TPMT_SIGNATURE over it.
	AKCreateData        []byte `json:"ak_create_data,omitempty"`
	AKCreateAttestation []byte `json:"ak_create_attestation,omitempty"`
	AKCreateSignature   []byte `json:"ak_create_signature,omitempty"`
	// TPM backends only: the EK public key (PKIX DER) and, when the TPM holds
	// one, its EK certificate (DER) with intermediates.
	EKPublic        []byte   `json:"ek_public,omitempty"`
	EKCertificate   []byte   `json:"ek_certificate,omitempty"`
	EKIntermediates [][]byte `json:"ek_intermediates,omitempty"`
}

// EnrollResponse answers an EnrollRequest with the first challenge.
type EnrollResponse struct {
	DeviceID string    `json:"device_id"`
	Nonce    []byte    `json:"nonce"`
	Expires  time.Time `json:"expires"`
	// TPM backends only: the credential activation challenge
	// (TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET).
	Credential []byte `json:"credential,omitempty"`
	Secret     []byte `json:"secret,omitempty"`
}

// Challenge is the answer of /device/v1/challenge: a fresh nonce.
type Challenge struct {
	Nonce   []byte    `json:"nonce"`
	Expires time.Time `json:"expires"`
}

// PCR is one quoted SHA-256 PCR value.
type PCR struct {
	Index  int    `json:"index"`
	Digest string `json:"digest"` // lowercase hex SHA-256
}

// Event is one entry of the measurement log, modelled on the TCG Canonical
// Event Log: the component's SHA-256 was extended into PCR.
type Event struct {
	PCR     int       `json:"pcr"`
	Digest  string    `json:"digest"` // lowercase hex SHA-256 of the component
	Type    EventType `json:"type"`
	Name    string    `json:"name"`
	Version string    `json:"version,omitempty"`
}

// Certification proves that a key lives in the TPM: a TPMS_ATTEST of type
// certify signed by the AK.
type Certification struct {
	Public            []byte `json:"public"` // TPMT_PUBLIC of the key
	CreateAttestation []byte `json:"create_attestation"`
	CreateSignature   []byte `json:"create_signature"`
}

// Evidence is what a device sends to /device/v1/attest.
type Evidence struct {
	DeviceID string `json:"device_id"`
	Nonce    []byte `json:"nonce"`
	// ActivationSecret answers the credential activation challenge; present
	// on the first attestation of a TPM device only.
	ActivationSecret []byte `json:"activation_secret,omitempty"`
	// Quote is a TPMS_ATTEST of type quote whose extra data is
	// QualifyingData(Nonce, CertKey); QuoteSignature a TPMT_SIGNATURE by the AK.
	Quote          []byte  `json:"quote"`
	QuoteSignature []byte  `json:"quote_signature"`
	PCRs           []PCR   `json:"pcrs"`
	Log            []Event `json:"log"`
	// CertKey is the PKIX DER public key the device wants certified.
	CertKey []byte `json:"cert_key"`
	// CertKeyCertification proves CertKey lives in the TPM (TPM backends).
	CertKeyCertification *Certification `json:"cert_key_certification,omitempty"`
	// EventLog is the firmware's TCG PC Client event log as the kernel exposes
	// it (binary_bios_measurements), describing PCRs 0-9; absent on boards
	// whose firmware measures nothing (the evidence is then agent-only).
	EventLog []byte `json:"event_log,omitempty"`
	// IMALog is the kernel's IMA runtime log (binary_runtime_measurements),
	// describing PCR 10; absent when IMA is off.
	IMALog []byte `json:"ima_log,omitempty"`
}

// Status is the verdict of the verifier, after the RATS attestation results.
type Status string

// Verdicts.
const (
	StatusAffirming       Status = "affirming"
	StatusWarning         Status = "warning"
	StatusContraindicated Status = "contraindicated"
)

// Reason explains one finding of the verifier.
type Reason struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// AttestResponse answers Evidence.
type AttestResponse struct {
	Status  Status   `json:"status"`
	Reasons []Reason `json:"reasons,omitempty"`
	// Certificate is the issued device certificate (DER) and UpdateOnly tells
	// which profile it has; empty when nothing was issued.
	Certificate []byte    `json:"certificate,omitempty"`
	UpdateOnly  bool      `json:"update_only,omitempty"`
	RenewAt     time.Time `json:"renew_at,omitzero"`
}

// DeviceID returns the device ID for an identity public key: the lowercase
// hex SHA-256 of its PKIX encoding.
func DeviceID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("deviceapi.DeviceID: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// KeyHash returns the lowercase hex SHA-256 of a PKIX DER public key, the
// form in which tenants preauthorise EKs and identity keys.
func KeyHash(pkix []byte) string {
	sum := sha256.Sum256(pkix)
	return hex.EncodeToString(sum[:])
}

// QualifyingData is the extra data a quote must carry: it binds the quote to
// the server's nonce and to the key the device asks to have certified, so
// neither can be swapped by someone in the middle.
func QualifyingData(nonce, certKey []byte) []byte {
	k := sha256.Sum256(certKey)
	h := sha256.New()
	h.Write([]byte("rampart attest v1\x00"))
	h.Write(nonce)
	h.Write(k[:])
	return h.Sum(nil)
}

// DecodeEnrollRequest reads one EnrollRequest from r strictly: at most
// MaxEnrollSize bytes, no unknown fields, no trailing data, every field
// within its limits.
func DecodeEnrollRequest(r io.Reader) (*EnrollRequest, error) {
	var req EnrollRequest
	if err := decodeStrict(r, MaxEnrollSize, &req); err != nil {
		return nil, fmt.Errorf("deviceapi.DecodeEnrollRequest: %w", err)
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("deviceapi.DecodeEnrollRequest: %w", err)
	}
	return &req, nil
}

// Validate checks field presence and limits.
func (r *EnrollRequest) Validate() error {
	if !r.Attester.valid() {
		return malformed("unknown attester %q", r.Attester)
	}
	if err := blob("ak_public", r.AKPublic, MaxTPMBlob, true); err != nil {
		return err
	}
	tpm := r.Attester.IsTPM()
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{"ak_create_data", r.AKCreateData},
		{"ak_create_attestation", r.AKCreateAttestation},
		{"ak_create_signature", r.AKCreateSignature},
		{"ek_public", r.EKPublic},
	} {
		if !tpm && len(f.b) != 0 {
			return malformed("%s is only sent by TPM attesters", f.name)
		}
		if err := blob(f.name, f.b, MaxTPMBlob, tpm); err != nil {
			return err
		}
	}
	if !tpm && (len(r.EKCertificate) != 0 || len(r.EKIntermediates) != 0) {
		return malformed("ek_certificate is only sent by TPM attesters")
	}
	if err := blob("ek_certificate", r.EKCertificate, MaxCertificate, false); err != nil {
		return err
	}
	if len(r.EKIntermediates) > MaxIntermediates {
		return malformed("more than %d ek_intermediates", MaxIntermediates)
	}
	if len(r.EKIntermediates) != 0 && len(r.EKCertificate) == 0 {
		return malformed("ek_intermediates without ek_certificate")
	}
	for _, c := range r.EKIntermediates {
		if err := blob("ek_intermediates", c, MaxCertificate, true); err != nil {
			return err
		}
	}
	return nil
}

// DecodeEvidence reads one Evidence from r strictly: at most
// MaxEvidenceSize bytes, no unknown fields, no trailing data, every field
// within its limits.
func DecodeEvidence(r io.Reader) (*Evidence, error) {
	data, err := readLimited(r, MaxEvidenceSize)
	if err != nil {
		return nil, fmt.Errorf("deviceapi.DecodeEvidence: %w", err)
	}
	var ev Evidence
	body, spans, lifted := liftBlobs(data, "event_log", "ima_log")
	if !lifted {
		body = data
	}
	if err := decodeJSON(body, &ev); err != nil {
		return nil, fmt.Errorf("deviceapi.DecodeEvidence: %w", err)
	}
	if lifted {
		for k, dst := range []*[]byte{&ev.EventLog, &ev.IMALog} {
			if spans[k].end == spans[k].start {
				continue // absent or "": decoded by encoding/json
			}
			b, err := decodeBlob([]string{"event_log", "ima_log"}[k], data[spans[k].start:spans[k].end])
			if err != nil {
				return nil, fmt.Errorf("deviceapi.DecodeEvidence: %w", err)
			}
			*dst = b
		}
	}
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("deviceapi.DecodeEvidence: %w", err)
	}
	return &ev, nil
}

// Validate checks field presence, formats and limits. It does not verify
// anything cryptographic; that is the verifier's work.
func (e *Evidence) Validate() error {
	if !isHexDigest(e.DeviceID) {
		return malformed("device_id must be 64 lowercase hex characters")
	}
	if len(e.Nonce) != NonceSize {
		return malformed("nonce must be %d bytes", NonceSize)
	}
	if len(e.ActivationSecret) != 0 && len(e.ActivationSecret) != ActivationSize {
		return malformed("activation_secret must be %d bytes", ActivationSize)
	}
	if err := blob("quote", e.Quote, MaxTPMBlob, true); err != nil {
		return err
	}
	if err := blob("quote_signature", e.QuoteSignature, MaxTPMBlob, true); err != nil {
		return err
	}
	if err := blob("cert_key", e.CertKey, MaxCertificate, true); err != nil {
		return err
	}
	if c := e.CertKeyCertification; c != nil {
		for _, f := range []struct {
			name string
			b    []byte
		}{{"public", c.Public}, {"create_attestation", c.CreateAttestation}, {"create_signature", c.CreateSignature}} {
			if err := blob("cert_key_certification."+f.name, f.b, MaxTPMBlob, true); err != nil {
				return err
			}
		}
	}
	if len(e.PCRs) == 0 || len(e.PCRs) > NumPCRs {
		return malformed("pcrs must hold 1 to %d values", NumPCRs)
	}
	var seen [NumPCRs]bool
	for _, p := range e.PCRs {
		if p.Index < 0 || p.Index >= NumPCRs {
			return malformed("pcr index %d out of range", p.Index)
		}
		if seen[p.Index] {
			return malformed("pcr %d listed twice", p.Index)
		}
		seen[p.Index] = true
		if !isHexDigest(p.Digest) {
			return malformed("pcr %d digest must be 64 lowercase hex characters", p.Index)
		}
	}
	if err := blob("event_log", e.EventLog, MaxEventLog, false); err != nil {
		return err
	}
	if err := blob("ima_log", e.IMALog, MaxIMALog, false); err != nil {
		return err
	}
	if len(e.Log) > MaxEvents {
		return malformed("log has more than %d events", MaxEvents)
	}
	for i, ev := range e.Log {
		if err := ev.validate(); err != nil {
			return public.Errorf(public.KindOf(err), "log event %d: %w", i, err)
		}
	}
	return nil
}

func (e Event) validate() error {
	pcr, ok := PCRFor(e.Type)
	if !ok {
		return malformed("unknown event type %q", e.Type)
	}
	if legacy, _ := LegacyPCRFor(e.Type); e.PCR != pcr && e.PCR != legacy {
		return malformed("%s events go to pcr %d (or %d on older agents), not %d", e.Type, pcr, legacy, e.PCR)
	}
	if !isHexDigest(e.Digest) {
		return malformed("digest must be 64 lowercase hex characters")
	}
	if err := text("name", e.Name, true); err != nil {
		return err
	}
	return text("version", e.Version, false)
}

// DigestBytes decodes a validated hex SHA-256 digest.
func DigestBytes(s string) ([]byte, error) {
	if !isHexDigest(s) {
		return nil, malformed("digest must be 64 lowercase hex characters")
	}
	return hex.DecodeString(s)
}

func decodeStrict(r io.Reader, limit int64, v any) error {
	data, err := readLimited(r, limit)
	if err != nil {
		return err
	}
	return decodeJSON(data, v)
}

// decodeJSON decodes data into v: one JSON value, no unknown fields, no trailing data.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return public.Errorf(public.Invalid, "%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("trailing data after the JSON object")
	}
	return nil
}

func blob(name string, b []byte, limit int, required bool) error {
	if required && len(b) == 0 {
		return malformed("%s is missing", name)
	}
	if len(b) > limit {
		return malformed("%s is over %d bytes", name, limit)
	}
	return nil
}

func text(name, s string, required bool) error {
	if required && s == "" {
		return malformed("%s is missing", name)
	}
	if len(s) > MaxTextField {
		return malformed("%s is over %d bytes", name, MaxTextField)
	}
	if !utf8.ValidString(s) {
		return malformed("%s is not UTF-8", name)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return malformed("%s holds a control character", name)
		}
	}
	return nil
}

func isHexDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// malformed and the other decoding errors carry their whole text as the public sentence: it
// describes only the client's own input.
func malformed(format string, args ...any) error {
	return public.Errorf(public.Invalid, "%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
