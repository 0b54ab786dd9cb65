package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Every device of a group that checks in asks which deployment governs its group. The answer is
// the same for the whole group and changes only when a deployment is created or moves, so it is
// cached per group: an entry holds while no deployment was written through this store since it
// was read (on PostgreSQL, through another replica too: see ListenDeployments), and at most
// OfferTTL, after which even a deployment written to the database by hand is seen.

// OfferTTL bounds how long a group's cached deployment is used without asking the database.
const OfferTTL = time.Second

// offerCache maps a tenant and group ID to the group's cached governing deployment.
type offerCache struct {
	gen     atomic.Uint64 // bumped after every committed deployment write
	mu      sync.Mutex
	entries map[string]offerEntry
}

type offerEntry struct {
	gen     uint64
	read    time.Time
	found   bool
	current Deployment
}

// maxOfferEntries bounds the cache; it is emptied when full (there are few groups).
const maxOfferEntries = 10000

// deploymentsChanged is called after a transaction that may have written a deployment, whether
// it committed or not: entries read before it are no longer used.
func (s *Store) deploymentsChanged() { s.offers.gen.Add(1) }

// governing returns the deployment that governs a group, the latest one that was not aborted,
// from the cache when it is fresh.
func (s *Store) governing(ctx context.Context, tenantID, groupID string) (Deployment, bool, error) {
	now := s.Now()
	gen := s.offers.gen.Load()
	key := tenantID + "/" + groupID
	s.offers.mu.Lock()
	e, ok := s.offers.entries[key]
	s.offers.mu.Unlock()
	if ok && e.gen == gen && now.Sub(e.read) < OfferTTL {
		return e.current, e.found, nil
	}
	d, err := scanDeployment(s.queryRow(ctx, `SELECT `+deploymentColumns+deploymentJoins+`
		WHERE dp.tenant_id = $1 AND dp.group_id = $2 AND dp.state <> 'aborted'
		ORDER BY dp.seq DESC LIMIT 1`, tenantID, groupID))
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Deployment{}, false, err
	}
	s.offers.mu.Lock()
	if s.offers.entries == nil || len(s.offers.entries) >= maxOfferEntries {
		s.offers.entries = map[string]offerEntry{}
	}
	s.offers.entries[key] = offerEntry{gen: gen, read: now, found: found, current: d}
	s.offers.mu.Unlock()
	return d, found, nil
}

// errNoDeployment is OfferForGroup's answer for a group without a deployment, made once: the
// check-in of every device of such a group asks, and formatting it cost two allocations each time.
var errNoDeployment = fmt.Errorf("store.OfferForGroup: %w: the group has no deployment", ErrNotFound)

// OfferForGroup is OfferForDevice for a device whose group is known (the check-in path reads it
// with the device's director metadata); the group's deployment comes from a cache that holds
// for at most OfferTTL and never outlives a deployment change made through this store. The
// offer's deployment shares its plan with the cache: read it, never change it.
func (s *Store) OfferForGroup(ctx context.Context, tenantID, groupID, deviceID string) (DeviceOffer, error) {
	d, found, err := s.governing(ctx, tenantID, groupID)
	if err != nil {
		return DeviceOffer{}, fmt.Errorf("store.OfferForGroup: %w", s.mapErr(err))
	}
	if !found {
		return DeviceOffer{}, errNoDeployment
	}
	return DeviceOffer{Deployment: d, Offered: d.Offers(deviceID)}, nil
}
