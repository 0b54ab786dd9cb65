package release

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

// Check-in reads on PostgreSQL are coalesced: while checkInReaders queries are on their way to
// the database, the check-ins that arrive queue, and the next free reader takes up to
// checkInBatch of them in one query. A lone check-in never waits (a reader is free), and under a
// wake-up storm the database answers one round trip, one plan and one result set for many
// devices instead of one each. Nothing is cached: every check-in reads its row after it arrived.
// SQLite is read in-process, where a query has no round trip to share, so it reads directly.
const (
	checkInReaders = 2
	checkInBatch   = 128
	// checkInTimeout bounds one batched query, which serves check-ins of several requests
	// and so does not run under any one request's context.
	checkInTimeout = 30 * time.Second
)

// checkInReads queues check-in reads and runs them in batches.
type checkInReads struct {
	// fetch reads the rows of the given devices, keyed by device ID; a device without a row
	// is missing from the map.
	fetch func(ctx context.Context, ids []string) (map[string]store.CheckIn, error)

	mu      sync.Mutex
	queue   []*checkInRead
	running int // readers with a query on its way or about to start one
}

// checkInRead is one check-in waiting for its row.
type checkInRead struct {
	tenantID, deviceID string
	c                  store.CheckIn
	err                error
	done               chan struct{}
}

// read returns the device's check-in row, as checkIn with timestampOnly does.
func (b *checkInReads) read(ctx context.Context, tenantID, deviceID string) (store.CheckIn, error) {
	r := &checkInRead{tenantID: tenantID, deviceID: deviceID, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, r)
	start := b.running < checkInReaders
	if start {
		b.running++
	}
	b.mu.Unlock()
	if start {
		go b.drain()
	}
	select {
	case <-r.done:
		return r.c, r.err
	case <-ctx.Done():
		// The batch still answers r, to nobody; its result is dropped with it.
		return store.CheckIn{}, ctx.Err()
	}
}

// drain runs batches until the queue is empty, then lets its reader go.
func (b *checkInReads) drain() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.queue = nil // let a long queue's backing array go
			b.running--
			b.mu.Unlock()
			return
		}
		n := min(len(b.queue), checkInBatch)
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()
		b.run(batch)
	}
}

// run answers every read of the batch from one query.
func (b *checkInReads) run(batch []*checkInRead) {
	ctx, cancel := context.WithTimeout(context.Background(), checkInTimeout)
	defer cancel()
	ids := make([]string, 0, len(batch))
	seen := make(map[string]bool, len(batch))
	for _, r := range batch {
		if !seen[r.deviceID] {
			seen[r.deviceID] = true
			ids = append(ids, r.deviceID)
		}
	}
	rows, err := b.fetch(ctx, ids)
	for _, r := range batch {
		switch row, ok := rows[r.deviceID]; {
		case err != nil:
			r.err = err
		case !ok || row.TenantID != r.tenantID:
			r.err = fmt.Errorf("%w: device %s", ErrUnregistered, r.deviceID)
		default:
			r.c = row
		}
		close(r.done)
	}
}

// newCheckInReads batches check-in reads from the store's devices and director metadata
// (store.DeviceCheckIns, one query per batch).
func newCheckInReads(st *store.Store) *checkInReads {
	return &checkInReads{fetch: st.DeviceCheckIns}
}
