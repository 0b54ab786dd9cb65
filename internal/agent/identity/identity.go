// Package identity keeps a device's identity with its Rampart server: it enrols the device,
// answers the credential activation challenge, attests with fresh evidence and keeps the 24 h
// device certificate renewed at half life, over the device API (/device/v1). It hands the
// agent's other parts a TLS configuration that presents the current certificate, whose key
// stays in the attester (inside the TPM on TPM backends).
//
// It is imported by the agent only; like everything under internal/agent it links no
// database, web or server code.
package identity

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/agent/devclient"
	"github.com/rampartsec/rampart/internal/agent/durable"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// Errors.
var (
	// ErrRefused means the server refused the evidence; the message carries its reason.
	ErrRefused = errors.New("attestation refused")
	// ErrServer wraps any other answer the server gave.
	ErrServer = errors.New("device API error")
)

const (
	certFile        = "device-cert.pem"
	maxResponseSize = 64 << 10
)

// Config wires an Identity.
type Config struct {
	// Server is the base URL, e.g. https://rampart.example:8443.
	Server string
	// RootCAs verify the server's certificate.
	RootCAs *x509.CertPool
	// Attester and Log produce the evidence.
	Attester attest.Attester
	Log      *attest.MeasurementLog
	// Platform names the firmware's event log and the IMA log sent with each quote.
	Platform attest.PlatformLogs
	// StateDir keeps the current device certificate.
	StateDir string
	// Limits bound each call to the device API (deadline, minimum rate); devclient's defaults
	// when zero.
	Limits devclient.Limits
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
}

// Identity is the device's standing with the server. It is safe for concurrent use.
type Identity struct {
	cfg      Config
	deviceID string

	mu         sync.Mutex
	cert       *tls.Certificate
	updateOnly bool
}

// New loads the certificate kept in the state folder, if any.
func New(ctx context.Context, cfg Config) (*Identity, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	id, err := attest.DeviceID(ctx, cfg.Attester)
	if err != nil {
		return nil, fmt.Errorf("identity.New: %w", err)
	}
	i := &Identity{cfg: cfg, deviceID: id}
	b, err := os.ReadFile(filepath.Join(cfg.StateDir, certFile))
	switch {
	case err == nil:
		if err := i.setCertificate(ctx, b); err != nil {
			cfg.Logger.Warn("stored device certificate unusable; will attest again", "err", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("identity.New: %w", err)
	}
	return i, nil
}

// DeviceID is the hex SHA-256 of the identity key.
func (i *Identity) DeviceID() string { return i.deviceID }

// Certificate returns the current device certificate, or nil before the first attestation.
func (i *Identity) Certificate() *tls.Certificate {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cert
}

// UpdateOnly reports whether the current certificate is update-only.
func (i *Identity) UpdateOnly() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.updateOnly
}

// TLSConfig returns a client configuration that trusts the server's CA and presents the
// current device certificate (none before the first attestation).
func (i *Identity) TLSConfig() *tls.Config {
	return &tls.Config{
		RootCAs:    i.cfg.RootCAs,
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := i.valid(); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil
		},
	}
}

// valid returns the current certificate if it is within its validity period.
func (i *Identity) valid() *tls.Certificate {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := i.cfg.Now()
	if i.cert == nil || now.After(i.cert.Leaf.NotAfter) || now.Before(i.cert.Leaf.NotBefore) {
		return nil
	}
	return i.cert
}

// RenewAt is when the current certificate reaches half life; the zero time without one.
func (i *Identity) RenewAt() time.Time {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cert == nil {
		return time.Time{}
	}
	l := i.cert.Leaf
	return l.NotBefore.Add(l.NotAfter.Sub(l.NotBefore) / 2)
}

// Enroll registers the device with the server and returns the server's first challenge. The
// server records the device until a tenant claims it.
func (i *Identity) Enroll(ctx context.Context) (*deviceapi.EnrollResponse, error) {
	req, err := i.cfg.Attester.Enrollment(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity.Enroll: %w", err)
	}
	var resp deviceapi.EnrollResponse
	if err := i.post(ctx, deviceapi.PathEnroll, req, &resp, false); err != nil {
		return nil, fmt.Errorf("identity.Enroll: %w", err)
	}
	if resp.DeviceID != i.deviceID {
		return nil, fmt.Errorf("identity.Enroll: server computed device id %s, this device is %s", resp.DeviceID, i.deviceID)
	}
	return &resp, nil
}

// Attest collects fresh evidence and exchanges it for a device certificate. With a valid
// certificate it asks for a challenge over mutual TLS; without one it enrols again, which
// also answers the credential activation challenge on TPM backends.
func (i *Identity) Attest(ctx context.Context) (*deviceapi.AttestResponse, error) {
	var nonce, activation []byte
	withCert := i.valid() != nil
	if withCert {
		var ch deviceapi.Challenge
		if err := i.post(ctx, deviceapi.PathChallenge, struct{}{}, &ch, true); err != nil {
			i.cfg.Logger.Info("challenge over mutual TLS failed; enrolling again", "err", err)
			withCert = false
		} else {
			nonce = ch.Nonce
		}
	}
	if !withCert {
		resp, err := i.Enroll(ctx)
		if err != nil {
			return nil, fmt.Errorf("identity.Attest: %w", err)
		}
		nonce = resp.Nonce
		if len(resp.Credential) > 0 {
			if activation, err = i.cfg.Attester.Activate(ctx, resp.Credential, resp.Secret); err != nil {
				return nil, fmt.Errorf("identity.Attest: %w", err)
			}
		}
	}
	ev, err := attest.Collect(ctx, i.cfg.Attester, i.cfg.Log, i.cfg.Platform, i.deviceID, nonce, activation)
	if err != nil {
		return nil, fmt.Errorf("identity.Attest: %w", err)
	}
	var resp deviceapi.AttestResponse
	if err := i.post(ctx, deviceapi.PathAttest, ev, &resp, withCert); err != nil {
		return nil, fmt.Errorf("identity.Attest: %w", err)
	}
	der := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.Certificate})
	if err := i.setCertificate(ctx, der); err != nil {
		return nil, fmt.Errorf("identity.Attest: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(i.cfg.StateDir, certFile), der); err != nil {
		return nil, fmt.Errorf("identity.Attest: %w", err)
	}
	i.cfg.Logger.Info("attested", "device", i.deviceID, "status", resp.Status, "update_only", resp.UpdateOnly, "renew_at", resp.RenewAt)
	return &resp, nil
}

// RenewIfDue attests when there is no certificate or the current one reached half life.
func (i *Identity) RenewIfDue(ctx context.Context) (bool, error) {
	if at := i.RenewAt(); !at.IsZero() && i.cfg.Now().Before(at) {
		return false, nil
	}
	if _, err := i.Attest(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// Run keeps the certificate renewed until ctx ends, retrying failures with backoff (capped
// at ten minutes).
func (i *Identity) Run(ctx context.Context) error {
	backoff := 5 * time.Second
	for {
		var wait time.Duration
		if _, err := i.RenewIfDue(ctx); err != nil {
			i.cfg.Logger.Warn("attestation failed", "err", err, "retry_in", backoff)
			wait, backoff = backoff, min(2*backoff, 10*time.Minute)
		} else {
			backoff = 5 * time.Second
			wait = time.Until(i.RenewAt())
		}
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (i *Identity) setCertificate(ctx context.Context, pemBytes []byte) error {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("device certificate: no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("device certificate: %w", err)
	}
	signer, _, err := i.cfg.Attester.CertificateKey(ctx)
	if err != nil {
		return fmt.Errorf("device certificate: %w", err)
	}
	if k, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(signer.Public()) {
		return errors.New("device certificate is not for the attester's certificate key")
	}
	updateOnly := len(leaf.URIs) == 1 && strings.Contains(leaf.URIs[0].Path, "/update-only/")
	i.mu.Lock()
	i.cert = &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: signer, Leaf: leaf}
	i.updateOnly = updateOnly
	i.mu.Unlock()
	return nil
}

// post sends one JSON request to the device API and decodes the answer into out, over a
// connection of its own: presenting the device certificate when withCert is set, none
// otherwise (enrolment, and attestation by a device whose certificate lapsed).
func (i *Identity) post(ctx context.Context, path string, in, out any, withCert bool) error {
	tlsConf := &tls.Config{RootCAs: i.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if withCert {
		tlsConf = i.TLSConfig()
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: 10 * time.Second}}
	defer hc.CloseIdleConnections()
	limits := i.cfg.Limits
	limits.MaxAnswer = maxResponseSize
	err := devclient.New(i.cfg.Server, hc, limits).Do(ctx, http.MethodPost, path, in, out)
	if se, ok := errors.AsType[*devclient.StatusError](err); ok {
		// The server's message is already the sentence for the device's operator; say it once.
		if se.Code == deviceapi.CodeAttestationRefused {
			return public.Wrap(fmt.Errorf("%w: %s", ErrRefused, se.Message), public.Forbidden, "%s", se.Message)
		}
		return public.Wrap(fmt.Errorf("%w: %s: %d %s: %s", ErrServer, path, se.Status, se.Code, se.Message), public.Unavailable,
			"the server refused %s: %s (HTTP %d)", path, se.Message, se.Status)
	}
	return err
}
