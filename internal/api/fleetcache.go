package api

import (
	"context"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// FleetCountsTTL is how long one count of a tenant's devices (store.FleetSummary: by
// attestation, by last check-in, by release) serves GET /api/v1/fleet, and with it the
// console's overview. Counting reads every device of the tenant (about 150 ms at 100,000
// devices); within the TTL a request costs a map lookup, so an overview left open, or many
// operators opening it, cost one count per replica and interval. The answer says when it was
// counted (counted_at). /metrics keeps its own reading for the same time (server.FleetCacheTTL).
const FleetCountsTTL = 15 * time.Second

// fleetCounts caches store.FleetSummary per tenant and product filter. A count serves while
// it is younger than FleetCountsTTL by the wall clock and by the server's clock (a test's clock
// that moves on makes the online and overdue thresholds move, so it counts again).
type fleetCounts struct {
	mu      sync.Mutex
	entries map[fleetKey]*fleetEntry
}

type fleetKey struct{ tenant, product string }

type fleetEntry struct {
	mu      sync.Mutex // one count at a time per key: concurrent requests wait for it
	wall    time.Time  // when counted, by the wall clock
	at      time.Time  // when counted, by the server's clock
	fleet   store.TenantFleet
	counted bool
}

// fleetCountsMax bounds the cache; past it, entries older than the TTL are dropped.
const fleetCountsMax = 10_000

func (c *fleetCounts) get(ctx context.Context, st *store.Store, now func() time.Time, tenantID, product string) (store.TenantFleet, time.Time, error) {
	k := fleetKey{tenantID, product}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[fleetKey]*fleetEntry{}
	}
	e := c.entries[k]
	if e == nil {
		if len(c.entries) >= fleetCountsMax {
			for k, old := range c.entries {
				if old.mu.TryLock() {
					if time.Since(old.wall) >= FleetCountsTTL {
						delete(c.entries, k)
					}
					old.mu.Unlock()
				}
			}
		}
		e = &fleetEntry{}
		c.entries[k] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	t := now()
	if e.counted && time.Since(e.wall) < FleetCountsTTL && t.Sub(e.at) < FleetCountsTTL && !t.Before(e.at) {
		return e.fleet, e.at, nil
	}
	f, err := st.FleetSummary(ctx, tenantID, product)
	if err != nil {
		return store.TenantFleet{}, time.Time{}, err
	}
	e.fleet, e.wall, e.at, e.counted = f, time.Now(), t, true
	return f, t, nil
}
