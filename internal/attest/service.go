package attest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
)

// Service runs the device protocol of doc/attestation.md against storage and the tenant CAs:
// enrolment, claims, challenges and attestation with certificate issuance. The device API's
// handlers decode requests with internal/deviceapi and call it; it returns errors wrapping
// the sentinels below (and store.ErrNotFound, store.ErrConflict) for the edge to map.
type Service struct {
	store *store.Store
	v     *Verifier
	cas   Authorities
	refs  ReferenceSource
	log   *slog.Logger
	now   func() time.Time
}

// Authorities opens tenant CAs (internal/ca/keeper implements it).
type Authorities interface {
	Authority(ctx context.Context, tenantID, tenantName string) (*ca.Authority, error)
}

// ReferenceSource supplies the reference values of a tenant's product: the SHA-256 of every
// image of its releases, marked revoked or outdated by release.
type ReferenceSource interface {
	References(ctx context.Context, tenantID, product string) (map[string]Reference, error)
}

// ServiceConfig wires a Service.
type ServiceConfig struct {
	Store      *store.Store
	CAs        Authorities
	References ReferenceSource
	Logger     *slog.Logger
	Now        func() time.Time // default time.Now
	NonceTTL   time.Duration    // default DefaultNonceTTL
}

// Service errors, for the edge to map to HTTP statuses.
var (
	ErrBadRequest    = errors.New("bad request")            // 400: malformed or inconsistent input
	ErrUnknownDevice = errors.New("device is not enrolled") // 404
	ErrForbidden     = errors.New("not allowed")            // 403: the tenant does not trust the EK
)

// NewService returns a Service whose nonces live in the store on PostgreSQL, so that the
// replicas sharing it share them, and in memory on SQLite, which one server holds alone: a
// challenge there costs no write transaction to issue and none to take. Either way a nonce is
// used once and expires; one issued before a restart of a SQLite server is unknown after it,
// and the device asks for another.
func NewService(cfg ServiceConfig) *Service {
	s := &Service{store: cfg.Store, cas: cfg.CAs, refs: cfg.References, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var nonces Nonces = StoreNonces{Store: cfg.Store}
	if cfg.Store.Dialect() == "sqlite" {
		nonces = &prunedNonces{MemoryNonces: NewMemoryNonces(), now: s.now}
	}
	s.v = NewVerifier(Config{Nonces: nonces, NonceTTL: cfg.NonceTTL, Logger: s.log, Now: s.now})
	return s
}

// prunedNonces is MemoryNonces dropping expired challenges every pruneEvery issued, so that
// challenges never answered do not pile up.
type prunedNonces struct {
	*MemoryNonces
	now    func() time.Time
	issued atomic.Int64
}

const pruneEvery = 4096

func (p *prunedNonces) Put(ctx context.Context, c Challenge) error {
	if p.issued.Add(1)%pruneEvery == 0 {
		p.Prune(p.now())
	}
	return p.MemoryNonces.Put(ctx, c)
}

// Enroll records a device (or finds it again) and answers with a fresh challenge: a nonce and,
// on TPM backends, a credential activation challenge. A device a tenant preauthorised (by EK
// or identity-key hash, which vouches for it) is claimed here.
func (s *Service) Enroll(ctx context.Context, req *deviceapi.EnrollRequest) (*deviceapi.EnrollResponse, error) {
	e, err := CheckEnrollment(req)
	if err != nil {
		return nil, fmt.Errorf("attest.Service.Enroll: %w: %w", ErrBadRequest, err)
	}
	rec := store.Enrollment{DeviceID: e.DeviceID, Attester: string(e.Attester), AKPublic: e.AKPublic, EKHash: e.EKHash}
	if e.EKCertificate != nil {
		rec.EKCertificate = e.EKCertificate.Raw
		for _, c := range e.EKIntermediates {
			rec.EKChain = append(rec.EKChain, c.Raw...)
		}
	}
	stored, _, err := s.store.EnrollDevice(ctx, rec)
	if err != nil {
		return nil, fmt.Errorf("attest.Service.Enroll: %w", err)
	}
	if !bytes.Equal(stored.AKPublic, e.AKPublic) || stored.Attester != string(e.Attester) {
		return nil, fmt.Errorf("attest.Service.Enroll: %w: device %s enrolled before with another attester", ErrBadRequest, e.DeviceID)
	}
	resp, err := s.v.Begin(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("attest.Service.Enroll: %w", err)
	}
	return resp, nil
}

// Claim puts an enrolled device into a tenant's product and group. A TPM device is claimed
// only when its EK certificate chains to the tenant's manufacturer CAs or its EK hash was
// preauthorised.
func (s *Service) Claim(ctx context.Context, actor store.Actor, tenantID, deviceID, product, group string) (store.Device, error) {
	e, dev, err := s.store.EnrollmentByDevice(ctx, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Device{}, fmt.Errorf("attest.Service.Claim: %w: %s", ErrUnknownDevice, deviceID)
	}
	if err != nil {
		return store.Device{}, fmt.Errorf("attest.Service.Claim: %w", err)
	}
	if dev.TenantID == "" && deviceapi.AttesterKind(e.Attester).IsTPM() {
		if err := s.checkEK(ctx, tenantID, e); err != nil {
			return store.Device{}, fmt.Errorf("attest.Service.Claim: %w: %w", ErrForbidden, err)
		}
	}
	d, err := s.store.ClaimDevice(ctx, actor, tenantID, deviceID, product, group)
	if err != nil {
		return store.Device{}, fmt.Errorf("attest.Service.Claim: %w", err)
	}
	return d, nil
}

// checkEK decides whether tenantID trusts the EK of an enrolment.
func (s *Service) checkEK(ctx context.Context, tenantID string, e store.Enrollment) error {
	var cas *ManufacturerCAs
	pem, err := s.store.ManufacturerCAs(ctx, tenantID)
	switch {
	case err == nil:
		if cas, err = ParseManufacturerCAs([]byte(pem)); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	en := &Enrollment{DeviceID: e.DeviceID, Attester: deviceapi.AttesterKind(e.Attester), EKHash: e.EKHash}
	if len(e.EKCertificate) > 0 {
		if en.EKCertificate, err = x509.ParseCertificate(e.EKCertificate); err != nil {
			return fmt.Errorf("stored ek certificate: %w", err)
		}
		if en.EKIntermediates, err = x509.ParseCertificates(e.EKChain); err != nil {
			return fmt.Errorf("stored ek chain: %w", err)
		}
	}
	preauthorised, err := s.store.IsPreauthorized(ctx, tenantID, store.PreauthEK, e.EKHash)
	if err != nil {
		return err
	}
	return en.CheckEK(cas, func(hash string) bool { return preauthorised && hash == e.EKHash })
}

// Challenge issues a nonce to an enrolled device for a renewal.
func (s *Service) Challenge(ctx context.Context, deviceID string) (*deviceapi.Challenge, error) {
	c, err := s.v.Challenge(ctx, deviceID)
	if err != nil {
		return nil, fmt.Errorf("attest.Service.Challenge: %w", err)
	}
	return c, nil
}

// Attest verifies evidence, issues the certificate its result grants and stores (and, for a
// claimed device, audits) the verdict. callerTenantID is the tenant of the client certificate
// the request came with, or "" when it came without one (the first attestation, or a device
// whose certificate expired): the quote by the enrolled identity key is the proof then.
func (s *Service) Attest(ctx context.Context, ev *deviceapi.Evidence, callerTenantID string) (*deviceapi.AttestResponse, error) {
	e, dev, err := s.store.EnrollmentByDevice(ctx, ev.DeviceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("attest.Service.Attest: %w: %s", ErrUnknownDevice, ev.DeviceID)
	}
	if err != nil {
		return nil, fmt.Errorf("attest.Service.Attest: %w", err)
	}
	tenant := dev.TenantID
	if callerTenantID != "" {
		tenant = callerTenantID
	}
	in := Input{
		Evidence: ev,
		Device:   Device{ID: e.DeviceID, Tenant: dev.TenantID, Attester: deviceapi.AttesterKind(e.Attester), AKPublic: e.AKPublic, Activated: e.Activated},
		Tenant:   tenant,
	}
	var tenantName string
	if dev.TenantID != "" && dev.TenantID == tenant {
		if in.Policy, tenantName, err = s.policy(ctx, dev); err != nil {
			return nil, fmt.Errorf("attest.Service.Attest: %w", err)
		}
	}
	res := s.v.Verify(ctx, in)
	resp := &deviceapi.AttestResponse{Status: res.Status, Reasons: res.Reasons}
	rec := store.AttestationRecord{DeviceID: dev.ID, Status: string(res.Status), Granted: res.Grant.String(), Activated: res.Activated, Rule: res.Rule}
	if res.Boot != nil {
		if rec.BootState, err = json.Marshal(res.Boot); err != nil {
			return nil, fmt.Errorf("attest.Service.Attest: %w", err)
		}
	}
	if dev.TenantID == tenant {
		rec.TenantID = dev.TenantID
	}
	for _, r := range res.Reasons {
		rec.Reasons = append(rec.Reasons, store.AttestationReason{Code: r.Code, Detail: r.Detail})
	}
	if res.Grant != GrantNone {
		for _, e := range ev.Log {
			rec.Measured = append(rec.Measured, e.Digest)
		}
		cert, err := s.issue(ctx, dev.TenantID, tenantName, res)
		if err != nil {
			return nil, fmt.Errorf("attest.Service.Attest: %w", err)
		}
		resp.Certificate, resp.UpdateOnly, resp.RenewAt = cert.Raw, res.Grant == GrantUpdateOnly, ca.RenewAt(cert).UTC()
		rec.CertSerial, rec.CertNotAfter = cert.SerialNumber.Text(16), &cert.NotAfter
	}
	if _, err := s.store.RecordAttestation(ctx, rec); err != nil {
		return nil, fmt.Errorf("attest.Service.Attest: %w", err)
	}
	s.log.InfoContext(ctx, "attestation", "device", dev.ID, "status", res.Status, "grant", res.Grant.String(), "reasons", len(res.Reasons))
	return resp, nil
}

func (s *Service) policy(ctx context.Context, dev store.Device) (Policy, string, error) {
	name, err := s.store.TenantNameByID(ctx, dev.TenantID)
	if err != nil {
		return Policy{}, "", err
	}
	p, err := s.store.AttestationPolicy(ctx, dev.TenantID, dev.ProductName)
	if err != nil {
		return Policy{}, "", err
	}
	refs, err := s.refs.References(ctx, dev.TenantID, dev.ProductName)
	if err != nil {
		return Policy{}, "", fmt.Errorf("reference values: %w", err)
	}
	return policyFrom(p, refs), name, nil
}

// policyFrom joins a product's stored policy with its releases' reference values: the boot
// references are the releases' EFI binaries (by Authenticode digest) and the product's extra
// boot digests.
func policyFrom(p store.AttestationPolicy, refs map[string]Reference) Policy {
	pol := Policy{AcceptSoftware: p.AcceptSoftware, References: refs, RequireBootLog: p.RequireBootLog,
		RequireSecureBoot: p.RequireSecureBoot}
	for d, ref := range refs {
		if ref.Authenticode {
			if pol.BootReferences == nil {
				pol.BootReferences = make(map[string]Reference)
			}
			pol.BootReferences[d] = ref
		}
	}
	for _, d := range p.BootDigests {
		if pol.BootReferences == nil {
			pol.BootReferences = make(map[string]Reference)
		}
		if _, ok := pol.BootReferences[d]; !ok {
			pol.BootReferences[d] = Reference{Type: deviceapi.EventBoot, Name: "product boot digest", Authenticode: true}
		}
	}
	return pol
}

func (s *Service) issue(ctx context.Context, tenantID, tenantName string, res *Result) (*x509.Certificate, error) {
	auth, err := s.cas.Authority(ctx, tenantID, tenantName)
	if err != nil {
		return nil, fmt.Errorf("tenant CA: %w", err)
	}
	profile := ca.ProfileNormal
	if res.Grant == GrantUpdateOnly {
		profile = ca.ProfileUpdateOnly
	}
	return auth.Issue(res.DeviceID, res.CertKey, profile, s.now())
}

// StoreNonces keeps challenges in the database, shared by every server replica.
type StoreNonces struct {
	Store *store.Store
}

// Put implements Nonces.
func (n StoreNonces) Put(ctx context.Context, c Challenge) error {
	return n.Store.PutChallenge(ctx, store.Challenge{DeviceID: c.DeviceID, Nonce: c.Nonce, ExpiresAt: c.Expires, ActivationDigest: c.ActivationDigest})
}

// Take implements Nonces.
func (n StoreNonces) Take(ctx context.Context, deviceID string, nonce []byte, now time.Time) (Challenge, error) {
	c, err := n.Store.TakeChallenge(ctx, deviceID, nonce)
	if errors.Is(err, store.ErrNotFound) {
		return Challenge{}, ErrNonceUnknown
	}
	if err != nil {
		return Challenge{}, err
	}
	if now.After(c.ExpiresAt) {
		return Challenge{}, ErrNonceExpired
	}
	return Challenge{DeviceID: c.DeviceID, Nonce: c.Nonce, Expires: c.ExpiresAt, ActivationDigest: c.ActivationDigest}, nil
}
