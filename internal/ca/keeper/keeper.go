// Package keeper hands out opened tenant certificate authorities: it creates a tenant's CA on
// first use, keeps it sealed in the store under the server's key-encryption key, and caches the
// opened authority, since a tenant CA never changes once made. The server, the API and the benchmark seeder (bench/seed) import it.
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
	store *store.Store
	kek   []byte
	now   func() time.Time

	mu     sync.Mutex
	opened map[string]*ca.Authority // by tenant ID
}

// New returns a keeper that seals and opens CAs with kek (ca.KEKSize bytes).
func New(s *store.Store, kek []byte, now func() time.Time) (*Keeper, error) {
	if len(kek) != ca.KEKSize {
		return nil, fmt.Errorf("keeper.New: %w", ca.ErrBadKEK)
	}
	if now == nil {
		now = time.Now
	}
	return &Keeper{store: s, kek: kek, now: now, opened: map[string]*ca.Authority{}}, nil
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

// Authority returns the tenant's CA, creating it on first use. tenantName is the SPIFFE trust
// domain the CA issues for.
func (k *Keeper) Authority(ctx context.Context, tenantID, tenantName string) (*ca.Authority, error) {
	k.mu.Lock()
	a := k.opened[tenantID]
	k.mu.Unlock()
	if a != nil {
		return a, nil
	}
	sealed, err := k.store.EnsureTenantCA(ctx, tenantID, func() (store.TenantCA, error) {
		s, err := ca.Create(tenantName, k.kek, k.now())
		return store.TenantCA{CertPEM: s.CertPEM, EncryptedKey: s.EncryptedKey}, err
	})
	if err != nil {
		return nil, fmt.Errorf("keeper.Authority: %w", err)
	}
	a, err = ca.Open(tenantName, ca.Sealed{CertPEM: sealed.CertPEM, EncryptedKey: sealed.EncryptedKey}, k.kek)
	if err != nil {
		return nil, fmt.Errorf("keeper.Authority: %w", err)
	}
	k.mu.Lock()
	k.opened[tenantID] = a
	k.mu.Unlock()
	return a, nil
}
