// Package attest is Rampart's verifier (the RATS verifier role): it checks
// enrolment requests (EK certificate chain against a tenant's manufacturer
// CAs, AK properties, credential activation), issues single-use nonces, and
// turns device evidence (TPM quote, PCR values, measurement log) into a
// typed Result compared against reference values. Service runs that protocol
// against the store and the tenant CAs for the device API.
//
// It is imported by the server only. The wire format it decodes lives in
// internal/deviceapi, shared with the agent.
package attest

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// DefaultNonceTTL is how long a challenge stays valid.
const DefaultNonceTTL = 5 * time.Minute

// Config configures a Verifier.
type Config struct {
	Nonces   Nonces
	NonceTTL time.Duration // default DefaultNonceTTL
	Logger   *slog.Logger
	Now      func() time.Time // default time.Now
}

// Verifier checks enrolments and evidence. It is safe for concurrent use.
type Verifier struct {
	nonces Nonces
	ttl    time.Duration
	log    *slog.Logger
	now    func() time.Time
	// secureBoot caches the Secure Boot state of boot logs' PCR 2 and 7 events (nil: none).
	secureBoot *secureBootCache
}

// NewVerifier returns a Verifier.
func NewVerifier(cfg Config) *Verifier {
	v := &Verifier{nonces: cfg.Nonces, ttl: cfg.NonceTTL, log: cfg.Logger, now: cfg.Now, secureBoot: &secureBootCache{}}
	if v.ttl <= 0 {
		v.ttl = DefaultNonceTTL
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v
}

// Challenge issues a fresh nonce to an enrolled device, for a renewal.
func (v *Verifier) Challenge(ctx context.Context, deviceID string) (*deviceapi.Challenge, error) {
	c, err := v.issue(ctx, deviceID, nil)
	if err != nil {
		return nil, fmt.Errorf("attest.Challenge: %w", err)
	}
	return &deviceapi.Challenge{Nonce: c.Nonce, Expires: c.Expires}, nil
}

func (v *Verifier) issue(ctx context.Context, deviceID string, activationDigest []byte) (Challenge, error) {
	nonce := make([]byte, deviceapi.NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return Challenge{}, fmt.Errorf("nonce: %w", err)
	}
	c := Challenge{
		DeviceID:         deviceID,
		Nonce:            nonce,
		Expires:          v.now().Add(v.ttl),
		ActivationDigest: activationDigest,
	}
	if err := v.nonces.Put(ctx, c); err != nil {
		return Challenge{}, fmt.Errorf("store nonce: %w", err)
	}
	return c, nil
}
