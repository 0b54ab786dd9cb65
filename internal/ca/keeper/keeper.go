// Package keeper hands out opened tenant certificate authorities: it creates a tenant's CA on
// first use for the tenant's SPIFFE trust domain, keeps it sealed in the store under the server's
// key-encryption key, reissues a CA made before trust domains were DNS names (same key, so the
// devices it certified keep working), and caches the opened authority. The server, the API and
// the benchmark seeder (bench/seed) import it.
package keeper

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
)

// Keeper opens tenant CAs.
type Keeper struct {
	store  *store.Store
	kek    []byte
	now    func() time.Time
	suffix string

	mu     sync.Mutex
	opened map[string]*ca.Authority // by tenant ID
}

// New returns a keeper that seals and opens CAs with kek (ca.KEKSize bytes). A tenant's trust
// domain is <tenant>.<suffix> (ca.DefaultTrustDomainSuffix when suffix is empty); it is fixed
// when the tenant's CA is made.
func New(s *store.Store, kek []byte, now func() time.Time, suffix string) (*Keeper, error) {
	if len(kek) != ca.KEKSize {
		return nil, fmt.Errorf("keeper.New: %w", ca.ErrBadKEK)
	}
	if now == nil {
		now = time.Now
	}
	if suffix == "" {
		suffix = ca.DefaultTrustDomainSuffix
	}
	if _, err := ca.TrustDomain("tenant", suffix); err != nil {
		return nil, fmt.Errorf("keeper.New: trust domain suffix: %w", err)
	}
	return &Keeper{store: s, kek: kek, now: now, suffix: suffix, opened: map[string]*ca.Authority{}}, nil
}

// Existing returns the tenant's CA only if it was already made: the device API uses it, so that
// an unauthenticated client cannot cause a CA to be created. It returns store.ErrNotFound
// otherwise.
func (k *Keeper) Existing(ctx context.Context, tenantID, tenantName string) (*ca.Authority, error) {
	k.mu.Lock()
	a := k.opened[tenantID]
	k.mu.Unlock()
	if a != nil {
		return a, nil
	}
	if _, err := k.store.TenantCA(ctx, tenantID); err != nil {
		return nil, fmt.Errorf("keeper.Existing: %w", err)
	}
	return k.Authority(ctx, tenantID, tenantName)
}

// Authority returns the tenant's CA, creating it on first use for the trust domain
// <tenantName>.<suffix>, and reissuing a legacy CA (whose trust domain was the bare tenant name)
// for that trust domain over the same key.
func (k *Keeper) Authority(ctx context.Context, tenantID, tenantName string) (*ca.Authority, error) {
	k.mu.Lock()
	a := k.opened[tenantID]
	k.mu.Unlock()
	if a != nil {
		return a, nil
	}
	td, err := ca.TrustDomain(tenantName, k.suffix)
	if err != nil {
		return nil, fmt.Errorf("keeper.Authority: %w", err)
	}
	stored, err := k.store.EnsureTenantCA(ctx, tenantID, func() (store.TenantCA, error) {
		s, err := ca.Create(tenantName, td, k.kek, k.now())
		return store.TenantCA{CertPEM: s.CertPEM, EncryptedKey: s.EncryptedKey}, err
	})
	if err != nil {
		return nil, fmt.Errorf("keeper.Authority: %w", err)
	}
	sealed := ca.Sealed{CertPEM: stored.CertPEM, EncryptedKey: stored.EncryptedKey}
	current, err := ca.Current(sealed)
	if err != nil {
		return nil, fmt.Errorf("keeper.Authority: %w", err)
	}
	if !current {
		fresh, err := ca.Reissue(tenantName, td, sealed, k.kek, k.now())
		if err != nil {
			return nil, fmt.Errorf("keeper.Authority: %w", err)
		}
		// Another replica may reissue at the same time: the first write wins and both read it.
		got, err := k.store.ReplaceTenantCACert(ctx, tenantID, stored.CertPEM, fresh.CertPEM, td)
		if err != nil {
			return nil, fmt.Errorf("keeper.Authority: %w", err)
		}
		sealed.CertPEM = got.CertPEM
	}
	a, err = ca.Open(tenantName, sealed, k.kek)
	if err != nil {
		return nil, fmt.Errorf("keeper.Authority: %w", err)
	}
	k.mu.Lock()
	k.opened[tenantID] = a
	k.mu.Unlock()
	return a, nil
}
