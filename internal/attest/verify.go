package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	gattest "github.com/google/go-attestation/attest"
	legacy "github.com/google/go-tpm/legacy/tpm2"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// Device is what the server knows about an enrolled device, from storage:
// never from the evidence itself.
type Device struct {
	ID       string
	Tenant   string // empty while unclaimed
	Attester deviceapi.AttesterKind
	AKPublic []byte // TPMT_PUBLIC recorded at enrolment
	// Activated is true once the device answered its credential activation
	// challenge (always false for software attesters, which have none).
	Activated bool
}

// Reference is the expected digest of one released component.
type Reference struct {
	Type    deviceapi.EventType
	Name    string
	Version string
	// Revoked marks a digest of a release that was revoked (vulnerable).
	Revoked bool
	// Outdated marks a digest of a release older than the newest one.
	Outdated bool
	// Authenticode marks the Authenticode SHA-256 of an EFI binary (a boot
	// image), the digest the firmware measures, rather than a file SHA-256.
	Authenticode bool
}

// Policy is the per-product verification policy.
type Policy struct {
	// AcceptSoftware admits software attesters (with a warning). When false
	// their evidence is refused.
	AcceptSoftware bool
	// References maps lowercase hex SHA-256 digests to known components.
	References map[string]Reference
	// RequireBootLog demands the firmware's event log: agent-only evidence
	// (and evidence from older agents) is contraindicated, and every EFI
	// application the firmware loaded must be a known boot component.
	RequireBootLog bool
	// RequireSecureBoot demands a boot log whose PCR 7 events show Secure
	// Boot enabled.
	RequireSecureBoot bool
	// BootReferences maps lowercase hex Authenticode SHA-256 digests of EFI
	// binaries (boot images of releases, and the product's extra boot
	// digests) to known components. When it is not empty, or RequireBootLog
	// is set, every EFI application in a boot log is appraised against it.
	BootReferences map[string]Reference
}

// Input is one attestation to verify.
type Input struct {
	Evidence *deviceapi.Evidence
	Device   Device // as stored
	Tenant   string // tenant the request is served for
	Policy   Policy
}

// Grant is what a result entitles the device to.
type Grant int

// Grants.
const (
	GrantNone       Grant = iota // refused: issue nothing
	GrantUpdateOnly              // contraindicated software: update-only certificate
	GrantNormal                  // affirming or warning: normal certificate
)

func (g Grant) String() string {
	switch g {
	case GrantNone:
		return "none"
	case GrantUpdateOnly:
		return "update-only"
	case GrantNormal:
		return "normal"
	}
	return fmt.Sprintf("grant(%d)", int(g))
}

// Reason codes. Refusals mean the evidence could not be trusted at all;
// contraindications mean it was trusted and showed bad software; warnings
// are admissible but worth attention.
const (
	// refusals
	ReasonDeviceMismatch      = "device_mismatch"
	ReasonUnclaimed           = "device_unclaimed"
	ReasonOtherTenant         = "device_other_tenant"
	ReasonSoftwareRefused     = "software_attester_refused"
	ReasonNonceUnknown        = "nonce_unknown"
	ReasonNonceExpired        = "nonce_expired"
	ReasonActivationMissing   = "activation_missing"
	ReasonActivationFailed    = "activation_failed"
	ReasonIdentityKey         = "identity_key_invalid"
	ReasonCertKeyInvalid      = "cert_key_invalid"
	ReasonCertKeyUncertified  = "cert_key_not_tpm_resident"
	ReasonQuoteInvalid        = "quote_invalid"
	ReasonQuotePCRs           = "quote_pcr_selection"
	ReasonLogReplay           = "log_replay_mismatch"
	ReasonVerifierUnavailable = "verifier_unavailable"
	ReasonBootLogMalformed    = "boot_log_malformed"
	ReasonBootLogReplay       = "boot_log_replay_mismatch"
	ReasonIMALogMalformed     = "ima_log_malformed"
	ReasonIMAAggregate        = "ima_aggregate_mismatch"
	ReasonIMABootAggregate    = "ima_boot_aggregate_mismatch"
	// contraindications
	ReasonLogEmpty          = "log_empty"
	ReasonUnknownComponent  = "unknown_component"
	ReasonRevokedComponent  = "revoked_component"
	ReasonComponentMismatch = "component_type_mismatch"
	ReasonBootLogMissing    = "boot_log_missing"
	ReasonSecureBootOff     = "secure_boot_disabled"
	ReasonUnknownBoot       = "unknown_boot_component"
	ReasonRevokedBoot       = "revoked_boot_component"
	// warnings
	ReasonSoftwareAttester = "software_attester"
	ReasonOutdatedRelease  = "outdated_release"
	ReasonLegacyPCRs       = "legacy_agent_pcrs"
	ReasonIMAUnknownFile   = "ima_unknown_file"
)

// RuleAllKnown is Result.Rule when nothing was found: every check passed.
const RuleAllKnown = "all_known"

type severity int

// severityOf is the severity of a reason code.
func severityOf(code string) severity {
	switch code {
	case ReasonSoftwareAttester, ReasonOutdatedRelease, ReasonLegacyPCRs, ReasonIMAUnknownFile:
		return sevWarning
	case ReasonLogEmpty, ReasonUnknownComponent, ReasonRevokedComponent, ReasonComponentMismatch,
		ReasonBootLogMissing, ReasonSecureBootOff, ReasonUnknownBoot, ReasonRevokedBoot:
		return sevContraindicated
	}
	return sevRefused
}

const (
	sevWarning severity = iota + 1
	sevContraindicated
	sevRefused
)

// Result is the verifier's typed verdict.
type Result struct {
	Status   deviceapi.Status
	Reasons  []deviceapi.Reason
	Grant    Grant
	DeviceID string
	// CertKey is the key to certify when Grant is not GrantNone.
	CertKey crypto.PublicKey
	// Activated is true when this evidence completed credential activation;
	// the caller records it on the device.
	Activated bool
	// Boot is the boot state the verified evidence shows; nil when the
	// evidence was refused before it was read.
	Boot *BootState
	// Rule names what decided the status: the code of the first finding of
	// the worst severity, or RuleAllKnown.
	Rule  string
	worst severity
}

func (r *Result) add(s severity, code, format string, args ...any) {
	r.Reasons = append(r.Reasons, deviceapi.Reason{Code: code, Detail: fmt.Sprintf(format, args...)})
	r.worst = max(r.worst, s)
}

func (r *Result) refuse(code, format string, args ...any) *Result {
	r.add(sevRefused, code, format, args...)
	return r.finish()
}

func (r *Result) finish() *Result {
	r.Rule = RuleAllKnown
	for _, re := range r.Reasons {
		if severityOf(re.Code) == r.worst {
			r.Rule = re.Code
			break
		}
	}
	switch r.worst {
	case sevRefused:
		r.Status, r.Grant, r.CertKey, r.Activated = deviceapi.StatusContraindicated, GrantNone, nil, false
	case sevContraindicated:
		r.Status, r.Grant = deviceapi.StatusContraindicated, GrantUpdateOnly
	case sevWarning:
		r.Status, r.Grant = deviceapi.StatusWarning, GrantNormal
	default:
		r.Status, r.Grant = deviceapi.StatusAffirming, GrantNormal
	}
	return r
}

// Refused reports whether the evidence was refused outright.
func (r *Result) Refused() bool { return r.Grant == GrantNone }

// tpmGeneratedValue is TPM_GENERATED_VALUE, the magic a TPM puts in front
// of every structure it signs and refuses to sign for outside data.
const tpmGeneratedValue = 0xff544347

// Verify checks evidence and returns the verdict. Once the device checks
// pass it consumes the nonce whatever the outcome, so evidence is never
// accepted twice. It never returns nil; every refusal carries a reason for
// the audit record.
func (v *Verifier) Verify(ctx context.Context, in Input) *Result {
	ev, dev := in.Evidence, in.Device
	r := &Result{DeviceID: dev.ID}
	if ev == nil {
		return r.refuse(ReasonQuoteInvalid, "no evidence")
	}
	if ev.DeviceID != dev.ID {
		return r.refuse(ReasonDeviceMismatch, "evidence names device %s", ev.DeviceID)
	}
	switch {
	case dev.Tenant == "":
		return r.refuse(ReasonUnclaimed, "device is not claimed by any tenant")
	case dev.Tenant != in.Tenant:
		return r.refuse(ReasonOtherTenant, "device belongs to another tenant")
	}
	if dev.Attester == deviceapi.KindSoftware {
		if !in.Policy.AcceptSoftware {
			return r.refuse(ReasonSoftwareRefused, "the product does not accept software attesters")
		}
		r.add(sevWarning, ReasonSoftwareAttester, "identity key is a software key without hardware protection")
	}

	ch, err := v.nonces.Take(ctx, dev.ID, ev.Nonce, v.now())
	switch {
	case errors.Is(err, ErrNonceExpired):
		return r.refuse(ReasonNonceExpired, "the nonce expired; ask for a new challenge")
	case errors.Is(err, ErrNonceUnknown):
		return r.refuse(ReasonNonceUnknown, "the nonce was never issued to this device or was already used")
	case err != nil:
		v.log.ErrorContext(ctx, "nonce store", "device", dev.ID, "err", err)
		return r.refuse(ReasonVerifierUnavailable, "nonce store unavailable")
	}

	if dev.Attester.IsTPM() && !dev.Activated {
		if len(ch.ActivationDigest) == 0 || len(ev.ActivationSecret) == 0 {
			return r.refuse(ReasonActivationMissing, "first attestation of a TPM device must answer the activation challenge")
		}
		sum := sha256.Sum256(ev.ActivationSecret)
		if subtle.ConstantTimeCompare(sum[:], ch.ActivationDigest) != 1 {
			return r.refuse(ReasonActivationFailed, "activation secret does not match: the AK is not bound to the EK")
		}
		r.Activated = true
	}

	ak, err := gattest.ParseAKPublic(dev.AKPublic)
	if err != nil {
		return r.refuse(ReasonIdentityKey, "stored identity key does not parse: %v", err)
	}
	certKey, err := v.checkCertKey(ev, dev, ak)
	if err != nil {
		code := ReasonCertKeyInvalid
		if errors.Is(err, errUncertified) {
			code = ReasonCertKeyUncertified
		}
		return r.refuse(code, "%v", err)
	}

	pcrs, sel, err := checkQuote(ev, ak)
	if err != nil {
		code := ReasonQuoteInvalid
		if errors.Is(err, errSelection) {
			code = ReasonQuotePCRs
		}
		return r.refuse(code, "%v", err)
	}
	if err := replay(ev.Log, sel.agent, pcrs); err != nil {
		return r.refuse(ReasonLogReplay, "%v", err)
	}
	if refused := r.checkPlatform(ev, sel, pcrs, in.Policy, v.secureBoot); refused {
		return r.finish()
	}

	compareReferences(r, ev.Log, in.Policy.References)
	r.appraiseBoot(in.Policy)
	r.CertKey = certKey
	return r.finish()
}

// checkPlatform replays the firmware's event log and the IMA log against the
// quote and records the boot state. It reports whether it refused the evidence.
func (r *Result) checkPlatform(ev *deviceapi.Evidence, sel selection, pcrs map[int][]byte, pol Policy, sbc *secureBootCache) bool {
	r.Boot = &BootState{Evidence: EvidenceAgentOnly, LegacyPCRs: sel.legacy}
	if sel.legacy {
		r.add(sevWarning, ReasonLegacyPCRs, "the agent extends pcrs 12-15, which shim, systemd-stub and systemd share; update the agent and reboot")
	}
	if len(ev.EventLog) > 0 {
		if !sel.boot {
			r.add(sevRefused, ReasonQuotePCRs, "a boot log came with a quote that does not cover pcrs 0-9")
			return true
		}
		st, err := checkBootLogWith(ev.EventLog, pcrs, sbc)
		switch {
		case errors.Is(err, errBootLogReplay):
			r.add(sevRefused, ReasonBootLogReplay, "%v", err)
			return true
		case err != nil:
			r.add(sevRefused, ReasonBootLogMalformed, "%v", err)
			return true
		}
		st.LegacyPCRs = sel.legacy
		r.Boot = st
	} else if pol.RequireBootLog || pol.RequireSecureBoot {
		if !sel.boot && !sel.legacy {
			// Agents since measured boot always quote 0-9; one that leaves them out hides them.
			r.add(sevRefused, ReasonQuotePCRs, "the quote omits pcrs 0-7, which the policy needs")
			return true
		}
		r.add(sevContraindicated, ReasonBootLogMissing, "the product requires the firmware's boot log and the evidence is agent-only")
	}
	if len(ev.IMALog) > 0 {
		if !sel.ima {
			r.add(sevRefused, ReasonQuotePCRs, "an IMA log came with a quote that does not cover pcr 10")
			return true
		}
		// One pass decodes, replays and appraises; the appraisal counts only
		// once the entries replay. Older kernels' logs take a second pass.
		// The kernel goes on measuring between the quote and the agent's
		// read of the log, so the log may run past the quote: the entries
		// that replay to the quoted pcr 10 are attested, and those after
		// them are not looked at (as Keylime does).
		var quoted [sha256.Size]byte // every quoted value is a SHA-256 (deviceapi.DigestBytes)
		copy(quoted[:], pcrs[deviceapi.IMAPCR])
		refs := newFileReferences(pol.References)
		var agg bootAggregate
		var ap imaAppraisal
		n, total, err := replayIMALog(ev.IMALog, &quoted, false, &agg, refs, &ap)
		if err != nil {
			r.add(sevRefused, ReasonIMALogMalformed, "%v", err)
			return true
		}
		if n == 0 {
			// it decoded once: it decodes again
			n, _, _ = replayIMALog(ev.IMALog, &quoted, true, &agg, refs, &ap)
		}
		if n == 0 {
			r.add(sevRefused, ReasonIMAAggregate, "no prefix of the IMA log's %d entries replays to pcr 10", total)
			return true
		}
		// The entries replay to PCR 10; the first must bind them to this boot's PCRs 0-9,
		// as Keylime checks it.
		if err := agg.check(pcrs); err != nil {
			r.add(sevRefused, ReasonIMABootAggregate, "%v", err)
			return true
		}
		r.Boot.IMA = ap.finish(r, n)
	}
	return false
}

// replayIMALog decodes the IMA log, replays it (see imaReplay) and appraises
// its entries against refs in one pass. It returns how many entries replay
// to quoted (0 if no prefix does) and how many the log holds; agg keeps the
// first entry, and ap (reset first) counts only the entries that replayed.
func replayIMALog(log []byte, quoted *[sha256.Size]byte, padded bool, agg *bootAggregate, refs fileReferences, ap *imaAppraisal) (matched, total int, err error) {
	*ap = imaAppraisal{refs: refs}
	x := imaReplay{padded: padded}
	rd := imaReader{b: log}
	var e IMAEntry // on the stack, reused: nothing allocated per entry
	for {
		ok, err := rd.next(&e)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			return matched, rd.n, nil
		}
		if matched > 0 {
			continue // decoded, so the whole log is well formed, but past the quote
		}
		if rd.n == 1 {
			agg.keep(&e)
		}
		x.extend(&e)
		ap.add(&e)
		if x.pcr == *quoted {
			matched = rd.n
		}
	}
}

// fileReferences indexes reference values by the binary SHA-256 an IMA entry
// carries, so each of thousands of entries is looked up without hex encoding.
type fileReferences map[[sha256.Size]byte]Reference

// newFileReferences indexes the references whose key is a lowercase hex
// SHA-256, the only keys an entry's digest could match.
func newFileReferences(refs map[string]Reference) fileReferences {
	out := make(fileReferences, len(refs))
	var d [sha256.Size]byte
	var back [2 * sha256.Size]byte
	for k, ref := range refs {
		if len(k) != hex.EncodedLen(sha256.Size) {
			continue
		}
		if _, err := hex.Decode(d[:], []byte(k)); err != nil || string(hex.AppendEncode(back[:0], d[:])) != k {
			continue // not lowercase hex: no entry's digest names it
		}
		out[d] = ref
	}
	return out
}

// imaAppraisal matches every measured file against the released images.
type imaAppraisal struct {
	refs         fileReferences
	known        int
	unknown      int
	firstUnknown string
	revoked      []string // one sentence per file of a revoked release
}

func (a *imaAppraisal) add(e *IMAEntry) {
	if e.violation || string(e.path) == "boot_aggregate" {
		return
	}
	var ref Reference
	ok := false
	if e.FileAlg == "sha256" && len(e.FileDigest) == sha256.Size {
		ref, ok = a.refs[[sha256.Size]byte(e.FileDigest)]
	}
	switch {
	case ok && ref.Revoked:
		a.known++
		a.revoked = append(a.revoked, fmt.Sprintf("file %q is %s %q %s, of a revoked release", e.path, ref.Type, ref.Name, ref.Version))
	case ok:
		a.known++
	default:
		a.unknown++
		if a.unknown == 1 {
			a.firstUnknown = string(e.path)
		}
	}
}

// finish records the appraisal's reasons in r, once the n entries replayed.
func (a *imaAppraisal) finish(r *Result, n int) *IMAState {
	for _, s := range a.revoked {
		r.add(sevContraindicated, ReasonRevokedComponent, "%s", s)
	}
	if a.unknown > 0 {
		r.add(sevWarning, ReasonIMAUnknownFile, "%d measured files are in no release, the first %q", a.unknown, a.firstUnknown)
	}
	return &IMAState{Entries: n, Known: a.known, Unknown: a.unknown}
}

// appraiseBoot applies the product's boot policy to the verified boot state.
func (r *Result) appraiseBoot(pol Policy) {
	st := r.Boot
	if st == nil || st.Evidence != EvidenceMeasuredBoot {
		return
	}
	if pol.RequireSecureBoot && !st.SecureBoot {
		r.add(sevContraindicated, ReasonSecureBootOff, "the firmware booted with Secure Boot disabled")
	}
	if !pol.RequireBootLog && len(pol.BootReferences) == 0 {
		return
	}
	for i, app := range st.Applications {
		ref, ok := pol.BootReferences[app.Digest]
		switch {
		case !ok:
			r.add(sevContraindicated, ReasonUnknownBoot, "EFI application %s is in no release and not among the product's boot digests", app.Digest)
		case ref.Revoked:
			st.Applications[i].Known = ref.Name + " " + ref.Version
			r.add(sevContraindicated, ReasonRevokedBoot, "EFI application %s is %q %s, of a revoked release", app.Digest, ref.Name, ref.Version)
		default:
			st.Applications[i].Known = strings.TrimSpace(ref.Name + " " + ref.Version)
		}
	}
	if pol.RequireBootLog && len(st.Applications) == 0 {
		r.add(sevContraindicated, ReasonUnknownBoot, "the boot log names no EFI application")
	}
}

var (
	errUncertified = errors.New("certificate key is not certified as TPM-resident by the AK")
	errSelection   = errors.New("quote does not cover exactly the Rampart PCRs")
)

// checkCertKey parses the key to certify and, on TPM backends, checks the
// AK's certification that it was created inside the TPM and cannot leave it.
func (v *Verifier) checkCertKey(ev *deviceapi.Evidence, dev Device, ak *gattest.AKPublic) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(ev.CertKey)
	if err != nil {
		return nil, fmt.Errorf("certificate key: %w", err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || (k.Curve != elliptic.P256() && k.Curve != elliptic.P384()) {
		return nil, fmt.Errorf("certificate key must be ECDSA P-256 or P-384, not %T", pub)
	}
	if !dev.Attester.IsTPM() {
		return pub, nil
	}
	c := ev.CertKeyCertification
	if c == nil {
		return nil, errUncertified
	}
	cp := gattest.CertificationParameters{Public: c.Public, CreateAttestation: c.CreateAttestation, CreateSignature: c.CreateSignature}
	if err := cp.Verify(gattest.VerifyOpts{Public: ak.Public, Hash: ak.Hash}); err != nil {
		return nil, fmt.Errorf("%w: %v", errUncertified, err)
	}
	tp, err := legacy.DecodePublic(c.Public)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUncertified, err)
	}
	certified, err := tp.Key()
	if err != nil || !publicKeysEqual(certified, pub) {
		return nil, fmt.Errorf("%w: certified key differs from cert_key", errUncertified)
	}
	return pub, nil
}

// selection is what a quote's PCR selection covers.
type selection struct {
	agent  []int // the agent's PCRs: AgentPCR, or LegacyAgentPCRs
	legacy bool  // the agent PCRs are the legacy ones
	boot   bool  // PCRs 0-9 are quoted
	ima    bool  // PCR 10 is quoted
}

// parseSelection accepts the selections agents make: the agent's PCRs (23,
// or 12-15 for older agents), alone or with 0-9 or 0-10.
func parseSelection(got []int) (selection, error) {
	var sel selection
	var platform []int
	for _, p := range got {
		switch {
		case p == deviceapi.AgentPCR:
			sel.agent = append(sel.agent, p)
		case slices.Contains(deviceapi.LegacyAgentPCRs, p):
			sel.agent, sel.legacy = append(sel.agent, p), true
		default:
			platform = append(platform, p)
		}
	}
	if !slices.Equal(sel.agent, []int{deviceapi.AgentPCR}) && !slices.Equal(sel.agent, deviceapi.LegacyAgentPCRs) {
		return sel, fmt.Errorf("%w: quoted %v, want pcr %d (or 12-15 from older agents)", errSelection, got, deviceapi.AgentPCR)
	}
	switch {
	case len(platform) == 0:
	case slices.Equal(platform, deviceapi.BootPCRs):
		sel.boot = true
	case slices.Equal(platform, append(slices.Clone(deviceapi.BootPCRs), deviceapi.IMAPCR)):
		sel.boot, sel.ima = true, true
	default:
		return sel, fmt.Errorf("%w: quoted %v, want pcrs 0-9 or 0-10 beside the agent's", errSelection, got)
	}
	return sel, nil
}

// checkQuote verifies the quote's signature by the AK, its magic, its extra
// data (nonce bound to the certificate key) and that it covers a selection
// agents make with the reported values. It returns the verified values.
func checkQuote(ev *deviceapi.Evidence, ak *gattest.AKPublic) (map[int][]byte, selection, error) {
	pcrs := make([]gattest.PCR, 0, len(ev.PCRs))
	values := make(map[int][]byte, len(ev.PCRs))
	for _, p := range ev.PCRs {
		d, err := deviceapi.DigestBytes(p.Digest)
		if err != nil {
			return nil, selection{}, fmt.Errorf("pcr %d: %w", p.Index, err)
		}
		pcrs = append(pcrs, gattest.PCR{Index: p.Index, Digest: d, DigestAlg: crypto.SHA256})
		values[p.Index] = d
	}
	q := gattest.Quote{Quote: ev.Quote, Signature: ev.QuoteSignature}
	if err := ak.Verify(q, pcrs, deviceapi.QualifyingData(ev.Nonce, ev.CertKey)); err != nil {
		return nil, selection{}, fmt.Errorf("quote: %v", err)
	}
	att, err := legacy.DecodeAttestationData(ev.Quote)
	if err != nil {
		return nil, selection{}, fmt.Errorf("quote: %v", err)
	}
	if att.Magic != tpmGeneratedValue {
		return nil, selection{}, errors.New("quote: not a TPM-generated structure")
	}
	if att.AttestedQuoteInfo == nil || att.AttestedQuoteInfo.PCRSelection.Hash != legacy.AlgSHA256 {
		return nil, selection{}, fmt.Errorf("%w: not the SHA-256 bank", errSelection)
	}
	got := slices.Sorted(slices.Values(att.AttestedQuoteInfo.PCRSelection.PCRs))
	sel, err := parseSelection(got)
	if err != nil {
		return nil, selection{}, err
	}
	for _, p := range got {
		if values[p] == nil {
			return nil, selection{}, fmt.Errorf("%w: pcr %d is quoted but its value is not reported", errSelection, p)
		}
	}
	return values, sel, nil
}

// replay recomputes the agent's PCRs from zero through the log's events and
// compares them with the quoted values.
func replay(log []deviceapi.Event, agentPCRs []int, quoted map[int][]byte) error {
	state := make(map[int][]byte, len(agentPCRs))
	for _, i := range agentPCRs {
		state[i] = make([]byte, sha256.Size)
	}
	buf := make([]byte, 0, 2*sha256.Size)
	for n, ev := range log {
		cur, ok := state[ev.PCR]
		if !ok {
			return fmt.Errorf("event %d extends pcr %d, which the quote does not cover", n, ev.PCR)
		}
		d, err := deviceapi.DigestBytes(ev.Digest)
		if err != nil {
			return fmt.Errorf("event %d: %w", n, err)
		}
		sum := sha256.Sum256(append(append(buf[:0], cur...), d...))
		copy(cur, sum[:])
	}
	for _, i := range slices.Sorted(maps.Keys(state)) {
		if !bytes.Equal(state[i], quoted[i]) {
			return fmt.Errorf("the log replays pcr %d to %x, the quote says %x", i, state[i], quoted[i])
		}
	}
	return nil
}

func compareReferences(r *Result, log []deviceapi.Event, refs map[string]Reference) {
	if len(log) == 0 {
		r.add(sevContraindicated, ReasonLogEmpty, "no component was measured")
		return
	}
	for _, ev := range log {
		ref, ok := refs[ev.Digest]
		switch {
		case !ok:
			r.add(sevContraindicated, ReasonUnknownComponent, "%s %q %s: digest %s is not in any release", ev.Type, ev.Name, ev.Version, ev.Digest)
		case ref.Type != "" && ref.Type != ev.Type:
			r.add(sevContraindicated, ReasonComponentMismatch, "%s %q: digest %s belongs to %s %q", ev.Type, ev.Name, ev.Digest, ref.Type, ref.Name)
		case ref.Revoked:
			r.add(sevContraindicated, ReasonRevokedComponent, "%s %q %s is in a revoked release", ev.Type, ref.Name, ref.Version)
		case ref.Outdated:
			r.add(sevWarning, ReasonOutdatedRelease, "%s %q %s is not the newest release", ev.Type, ref.Name, ref.Version)
		}
	}
}
