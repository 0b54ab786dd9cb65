// Package deviceapi holds the types of the device API (/device/v1): every message a device and
// the server exchange, the paths they are exchanged on, the limits on each and the strict,
// size-limited decoders the server reads device input with. Attestation (enrolment, challenge,
// evidence, verdict), update metadata (target paths, the custom objects of image and delta
// targets, version order), install-status reports, the long-poll, and crash reports.
//
// Both ends import it: the agent (internal/agent/...) builds requests and reads answers, the
// server (internal/api, internal/attest, internal/release, internal/tuf, internal/failure)
// decodes requests and writes answers. Compare Tailscale's tailcfg. It imports only the standard
// library, go-tuf's metadata types and internal/public (a refusal's sentence is public: it
// describes only the device's own input), and must stay free of server, database and TPM code
// so that the agent binary stays small (cmd/rampart-agent's dependency test holds it to that).
package deviceapi

import (
	"errors"
	"time"
)

// Paths of the device API, relative to the server's base URL.
const (
	PathEnroll        = "/device/v1/enroll"
	PathChallenge     = "/device/v1/challenge"
	PathAttest        = "/device/v1/attest"
	PathWhoAmI        = "/device/v1/whoami"
	PathDirector      = "/device/v1/director" // + "/" + a TUF metadata file name
	PathInstallStatus = "/device/v1/install-status"
	PathWait          = "/device/v1/wait"
	PathFailures      = "/device/v1/failures"
)

// TUFPath is the image repository of a tenant, relative to the server's base URL: its metadata
// under /metadata/, its targets under /targets/.
func TUFPath(tenantPathEscaped string) string { return "/tuf/" + tenantPathEscaped }

// Sentinel errors of the decoders; every decoding error wraps one of them, so the edge answers
// 413 for ErrTooLarge and 400 for ErrMalformed.
var (
	ErrTooLarge  = errors.New("message too large")
	ErrMalformed = errors.New("malformed message")
)

// kindError is a sentinel with its own text that errors.Is also matches against a more general
// one (a crash report's "malformed crash report" is an ErrMalformed).
type kindError struct {
	text string
	kind error
}

func (e *kindError) Error() string        { return e.text }
func (e *kindError) Is(target error) bool { return target == e.kind }

// ErrorBody is the error envelope every non-2xx answer carries:
// {"error":{"code":"...","message":"..."}}.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// CodeAttestationRefused is the error code of a refused attestation (403).
const CodeAttestationRefused = "attestation_refused"

// WhoAmI is the answer of GET /device/v1/whoami: how the device API sees the device calling it.
type WhoAmI struct {
	DeviceID   string    `json:"device_id"`
	Tenant     string    `json:"tenant"`
	Profile    string    `json:"profile"` // normal or update-only
	NotAfter   time.Time `json:"not_after"`
	RenewAfter time.Time `json:"renew_after"`
}

// InstallState is a step of an install that a device reports.
type InstallState string

// Install states, in the order of a successful update.
const (
	InstallDownloading InstallState = "downloading"
	InstallInstalling  InstallState = "installing"
	InstallInstalled   InstallState = "installed"
	InstallCommitted   InstallState = "committed"
	// InstallFailed counts against the release: its metadata or data was refused, its trial
	// boot failed the health check or never reached it.
	InstallFailed InstallState = "failed"
	// InstallInterrupted does not: the install stopped for a reason of the device's or the
	// network's (a power cut or another local write error, a dropped connection, a slow
	// download) and resumes at the next check-in, from the committed slot, which it never
	// touched. It is recorded and audited but never counted as a failure of the release.
	InstallInterrupted InstallState = "interrupted"
	// InstallRebooting says the installer wrote the other slot and the device reboots into it
	// (RAUC, or an update module that asked for a reboot).
	InstallRebooting InstallState = "rebooting"
	// InstallRolledBack counts against the release like InstallFailed: the device rebooted into
	// the new software and came back on the old (the bootloader fell back, the health check
	// failed and the slot was marked bad, or a module rolled back). The reason says which.
	InstallRolledBack InstallState = "rolled_back"
)

// MaxInstallReason caps the failure reason of an install-status report, in bytes.
const MaxInstallReason = 1000

// InstallStatus is what a device posts to /device/v1/install-status, and the server's answer,
// which adds the time it recorded the report. A device leaves At out.
type InstallStatus struct {
	State   InstallState `json:"state"`
	Release string       `json:"release,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	At      time.Time    `json:"at,omitzero"`
}

// Long-poll bounds: a device waits at most MaxWait per call, DefaultWait when it does not say
// (GET /device/v1/wait?timeout=300s).
const (
	DefaultWait = 5 * time.Minute
	MaxWait     = 15 * time.Minute
)

// WaitAnswer is the answer of GET /device/v1/wait.
type WaitAnswer struct {
	// Woken is true when the server has something for the device (a deployment phase opened for
	// its group, say); false when the wait timed out or a newer wait replaced it.
	Woken bool `json:"woken"`
	// Reattest is true when the device must attest again now: a revocation demoted its normal
	// certificate to update-only (it runs a revoked release), so only a fresh verdict tells
	// what it may do.
	Reattest bool `json:"reattest,omitempty"`
}

// FailureAnswer is the answer to a batch of crash reports (POST /device/v1/failures).
type FailureAnswer struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}
