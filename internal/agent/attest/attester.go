// Package attest is the device side of Rampart's remote attestation: the
// Attester interface with its backends (software, TPM 2.0 on /dev/tpmrm0,
// swtpm over TCP, and go-tpm-tools' simulator behind the "simulator" build
// tag), the measurement log the agent keeps and extends into PCRs, and the
// assembly of enrolment requests and evidence.
//
// It is imported by the agent only and must stay free of database, web and
// server code: the agent binary is small and built with CGO_ENABLED=0.
package attest

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// Sentinel errors.
var (
	ErrUnknownBackend = errors.New("unknown attester backend")
	ErrNoEK           = errors.New("attester has no endorsement key")
	ErrNotBuilt       = errors.New("attester backend not built into this binary")
)

// Quote is a TPM quote with the PCR values it covers.
type Quote struct {
	Quote     []byte          // TPMS_ATTEST
	Signature []byte          // TPMT_SIGNATURE
	PCRs      []deviceapi.PCR // SHA-256 bank, the quoted indices
}

// Attester is one attestation backend. Methods are safe for use by one
// goroutine at a time.
type Attester interface {
	// Kind names the backend.
	Kind() deviceapi.AttesterKind
	// Enrollment returns the identity material for /device/v1/enroll.
	Enrollment(ctx context.Context) (*deviceapi.EnrollRequest, error)
	// Activate answers a credential activation challenge with the secret
	// only this TPM's EK and AK together can recover. Backends without an
	// EK return ErrNoEK.
	Activate(ctx context.Context, credential, secret []byte) ([]byte, error)
	// Extend extends a SHA-256 digest into a PCR.
	Extend(ctx context.Context, pcr int, digest []byte) error
	// Quote signs the current values of pcrs with the identity key, with
	// data as the quote's extra data.
	Quote(ctx context.Context, pcrs []int, data []byte) (*Quote, error)
	// CertificateKey returns the key to be certified for mTLS, and on TPM
	// backends the AK's certification that the key lives in the TPM.
	CertificateKey(ctx context.Context) (crypto.Signer, *deviceapi.Certification, error)
	// Close releases the backend.
	Close() error
}

// Config selects and configures a backend.
type Config struct {
	// Spec is the --attester value: software, tpm, swtpm:HOST:PORT or simulator.
	Spec string
	// StateDir keeps keys, key blobs and the software PCR bank.
	StateDir string
	// BootID identifies the current boot; the software PCR bank and the
	// measurement log start over when it changes. Empty means read it from
	// /proc/sys/kernel/random/boot_id.
	BootID string
	// TPMPath is the TPM device for the tpm backend; default /dev/tpmrm0.
	TPMPath string
	Logger  *slog.Logger
	// Simulator opens the in-process simulator backend (tpmsim.Open); nil in builds without it.
	Simulator func(context.Context, Config) (Attester, error)
}

// Open returns the backend Config.Spec names.
func Open(ctx context.Context, cfg Config) (Attester, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("attest.Open: state directory is required")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("attest.Open: %w", public.Errorf(public.Unavailable, "cannot create the state folder: %w", err))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BootID == "" {
		id, err := CurrentBootID()
		if err != nil {
			return nil, fmt.Errorf("attest.Open: %w", err)
		}
		cfg.BootID = id
	}
	kind, arg, _ := strings.Cut(cfg.Spec, ":")
	var (
		a   Attester
		err error
	)
	switch deviceapi.AttesterKind(kind) {
	case deviceapi.KindSoftware:
		a, err = OpenSoftware(cfg.StateDir, cfg.BootID)
	case deviceapi.KindTPM:
		path := cfg.TPMPath
		if path == "" {
			path = "/dev/tpmrm0"
		}
		a, err = openDeviceTPM(ctx, path, cfg)
	case deviceapi.KindSWTPM:
		a, err = openSWTPM(ctx, arg, cfg)
	case deviceapi.KindSimulator:
		if cfg.Simulator == nil {
			return nil, fmt.Errorf("attest.Open: %w", public.Errorf(public.Invalid, "--attester simulator: %w: build rampart-agent with CGO_ENABLED=1 -tags simulator", ErrNotBuilt))
		}
		a, err = cfg.Simulator(ctx, cfg)
	default:
		return nil, fmt.Errorf("attest.Open: %w", public.Errorf(public.Invalid, "--attester %q: %w; use software, tpm, swtpm:HOST:PORT or simulator", cfg.Spec, ErrUnknownBackend))
	}
	if err != nil {
		return nil, fmt.Errorf("attest.Open: %w", public.Errorf(public.Unavailable, "cannot open the %s attester: %w", kind, err))
	}
	return a, nil
}

// CurrentBootID returns the kernel's identifier of this boot.
func CurrentBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
