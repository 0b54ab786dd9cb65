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
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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
	// ErrNoDevice means the state folder holds no enrolled device (ReadLocal).
	ErrNoDevice = errors.New("no device in the state folder")
)

const (
	certFile        = "device-cert.pem"
	deviceFile      = "device.json"
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
	// Transport, when set, is cloned for the connection that asks for challenges and sends
	// evidence with the certificate; NewTransport's otherwise.
	Transport *http.Transport
	// Sessions, when set, keeps TLS sessions (tickets) to resume connections with: see
	// NewSessionCache. The agent keeps one for its whole life, across the boots it simulates.
	Sessions *SessionCache
	Logger   *slog.Logger
	Now      func() time.Time // default time.Now
}

// Identity is the device's standing with the server. It is safe for concurrent use.
type Identity struct {
	cfg      Config
	deviceID string

	mu         sync.Mutex
	cert       *tls.Certificate
	certSum    [32]byte // SHA-256 of cert's DER, which the session cache keys on
	updateOnly bool
	// mtls is the client of the calls made with the certificate (challenge, evidence), kept
	// so that a renewal's two calls share one connection; its connections are closed when the
	// certificate changes, so that the next call presents the new one.
	mtls *http.Client
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
			break
		}
		// A device enrolled by an agent that did not record itself yet: record it now, so
		// that status can read it without the attester.
		if err := i.record(); err != nil {
			return nil, fmt.Errorf("identity.New: %w", err)
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
//
// With Config.Sessions it resumes TLS sessions: a session is kept under the certificate it
// was made with and offered again only while that certificate is the current one, since a
// resumed connection authenticates as the certificate of its first handshake.
func (i *Identity) TLSConfig() *tls.Config {
	c := &tls.Config{
		RootCAs:    i.cfg.RootCAs,
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := i.valid(); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil
		},
	}
	if i.cfg.Sessions != nil {
		c.ClientSessionCache = certSessions{i}
	}
	return c
}

// certSum is the key of the current valid certificate's sessions; ok is false without one.
func (i *Identity) currentSum() ([32]byte, bool) {
	if i.valid() == nil {
		return [32]byte{}, false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.certSum, true
}

// certSessions is the tls.ClientSessionCache of one identity: the shared SessionCache, under
// the current certificate. Without a valid certificate nothing is offered or kept.
type certSessions struct{ i *Identity }

func (c certSessions) Get(key string) (*tls.ClientSessionState, bool) {
	sum, ok := c.i.currentSum()
	if !ok {
		return nil, false
	}
	return c.i.cfg.Sessions.get(key, sum)
}

func (c certSessions) Put(key string, cs *tls.ClientSessionState) {
	if sum, ok := c.i.currentSum(); ok {
		c.i.cfg.Sessions.put(key, sum, cs)
	}
}

// SessionCache keeps the last TLS session (ticket) per server and device certificate, in
// memory, so that a connection made again (after a wake-up, a dropped connection, or a reboot
// the agent simulates) resumes instead of making a full handshake. The server still checks the
// certificate the session was made with on every request. A restarted agent starts empty.
type SessionCache struct {
	mu sync.Mutex
	m  map[sessionKey]*tls.ClientSessionState
}

type sessionKey struct {
	server string
	cert   [32]byte
}

// NewSessionCache makes an empty cache.
func NewSessionCache() *SessionCache {
	return &SessionCache{m: map[sessionKey]*tls.ClientSessionState{}}
}

func (s *SessionCache) get(server string, cert [32]byte) (*tls.ClientSessionState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.m[sessionKey{server, cert}]
	return cs, ok
}

func (s *SessionCache) put(server string, cert [32]byte, cs *tls.ClientSessionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs == nil {
		delete(s.m, sessionKey{server, cert})
		return
	}
	// One certificate at a time: sessions of the certificates before it are of no more use.
	for k := range s.m {
		if k.server == server && k.cert != cert {
			delete(s.m, k)
		}
	}
	s.m[sessionKey{server, cert}] = cs
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
	if err := i.record(); err != nil {
		return nil, fmt.Errorf("identity.Enroll: %w", err)
	}
	return &resp, nil
}

// Device is what the state folder records about the device once the server has enrolled it:
// enough for `rampart-agent status` to say which device this is without opening the attester.
type Device struct {
	DeviceID string                 `json:"device_id"`
	Attester deviceapi.AttesterKind `json:"attester"`
}

// record writes the device's record into the state folder, durably, unless it is there already.
func (i *Identity) record() error {
	b, err := json.Marshal(Device{DeviceID: i.deviceID, Attester: i.cfg.Attester.Kind()})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	path := filepath.Join(i.cfg.StateDir, deviceFile)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return durable.WriteFile(path, b)
}

// Local is what the state folder says about the device, read without the attester or the
// server: the record written at enrolment and the current device certificate.
type Local struct {
	Device Device
	// Certificate is the stored device certificate; nil before the first attestation (or when
	// the file is damaged: the next attestation replaces it).
	Certificate *x509.Certificate
	UpdateOnly  bool
}

// ReadLocal reads the device's record and certificate from stateDir and writes nothing. A
// folder of an agent that enrolled before the record existed has the certificate alone: the
// device ID is then the one the certificate names, and Device.Attester is empty. It returns
// ErrNoDevice when the folder holds neither.
func ReadLocal(stateDir string) (*Local, error) {
	l := &Local{}
	recorded := false
	switch b, err := os.ReadFile(filepath.Join(stateDir, deviceFile)); {
	case err == nil:
		if err := json.Unmarshal(b, &l.Device); err != nil || l.Device.DeviceID == "" {
			return nil, public.Errorf(public.Internal, "the device record %s is damaged; rampart-agent enroll writes it again",
				filepath.Join(stateDir, deviceFile))
		}
		recorded = true
	case !errors.Is(err, fs.ErrNotExist):
		return nil, public.Wrap(err, public.Internal, "cannot read the device record: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(stateDir, certFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, public.Wrap(err, public.Internal, "cannot read the device certificate: %v", err)
	}
	if err == nil {
		if block, _ := pem.Decode(b); block != nil && block.Type == "CERTIFICATE" {
			if leaf, err := x509.ParseCertificate(block.Bytes); err == nil {
				l.Certificate, l.UpdateOnly = leaf, isUpdateOnly(leaf)
			}
		}
	}
	if !recorded {
		id := ""
		if l.Certificate != nil {
			id = certDeviceID(l.Certificate)
		}
		if id == "" {
			return nil, ErrNoDevice
		}
		l.Device.DeviceID = id
	}
	return l, nil
}

// isUpdateOnly reports whether leaf is an update-only device certificate.
func isUpdateOnly(leaf *x509.Certificate) bool {
	return len(leaf.URIs) == 1 && strings.Contains(leaf.URIs[0].Path, "/update-only/")
}

// certDeviceID is the device ID a device certificate names (spiffe://DOMAIN/device/ID or
// spiffe://DOMAIN/update-only/device/ID); "" when it names none.
func certDeviceID(leaf *x509.Certificate) string {
	if len(leaf.URIs) != 1 {
		return ""
	}
	_, id, ok := strings.Cut(leaf.URIs[0].Path, "/device/")
	if !ok || strings.Contains(id, "/") {
		return ""
	}
	return id
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
	if err := i.post(ctx, deviceapi.PathAttest, deviceapi.EvidenceBody{Evidence: ev}, &resp, withCert); err != nil {
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
	updateOnly := isUpdateOnly(leaf)
	i.mu.Lock()
	changed := i.cert != nil && !bytes.Equal(i.cert.Certificate[0], leaf.Raw)
	i.cert = &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: signer, Leaf: leaf}
	i.certSum = sha256.Sum256(leaf.Raw)
	i.updateOnly = updateOnly
	mtls := i.mtls
	i.mu.Unlock()
	if changed && mtls != nil {
		mtls.CloseIdleConnections()
	}
	return nil
}

// NewTransport is the transport the agent speaks to the device API with, unless told otherwise:
// http.DefaultTransport's settings (proxy from the environment, dial and handshake timeouts,
// idle connections kept 90 s), over HTTP/1.1 only. A device makes one call at a time, so
// HTTP/2's streams would bring it nothing, while on the server an HTTP/2 connection holding the
// long-poll costs a goroutine and its stack more than an HTTP/1.1 one (three against two; about
// 12 KiB a device: doc/benchmarks.md, "memory per held long-poll").
func NewTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	return tr
}

// client is the kept client of the calls made with the certificate.
func (i *Identity) client() *http.Client {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mtls == nil {
		tr := i.cfg.Transport
		if tr == nil {
			tr = NewTransport()
		}
		tr = tr.Clone()
		tr.TLSClientConfig = i.TLSConfig()
		i.mtls = &http.Client{Transport: tr}
	}
	return i.mtls
}

// Close closes the identity's idle connections.
func (i *Identity) Close() {
	i.mu.Lock()
	mtls := i.mtls
	i.mu.Unlock()
	if mtls != nil {
		mtls.CloseIdleConnections()
	}
}

// post sends one JSON request to the device API and decodes the answer into out: presenting
// the device certificate when withCert is set, over the identity's kept connection (a
// challenge and its evidence go over one), and otherwise over a connection of its own that
// presents none (enrolment, and attestation by a device whose certificate lapsed).
func (i *Identity) post(ctx context.Context, path string, in, out any, withCert bool) error {
	var hc *http.Client
	if withCert {
		hc = i.client()
	} else {
		tr := NewTransport()
		tr.TLSClientConfig = &tls.Config{RootCAs: i.cfg.RootCAs, MinVersion: tls.VersionTLS12}
		hc = &http.Client{Transport: tr}
		defer hc.CloseIdleConnections()
	}
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
