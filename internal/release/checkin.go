package release

import (
	"context"
	"database/sql"
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

// checkInBatchQuery is checkInTimestampQuery for many devices at once. Device IDs are unique
// across tenants; each row carries its tenant, and a row of another tenant than the request's
// counts as no row at all.
const checkInBatchQuery = `SELECT d.id, d.tenant_id, COALESCE(d.group_id, ''), m.product, m.release, m.timestamp_file,
		CASE WHEN m.timestamp_file IS NULL THEN m.files END
		FROM devices d LEFT JOIN director_metadata m ON m.device_id = d.id AND m.tenant_id = d.tenant_id
		WHERE d.id = ANY($1)`

// checkInReads queues check-in reads and runs them in batches.
type checkInReads struct {
	// fetch reads the rows of the given devices, keyed by device ID; a device without a row
	// is missing from the map.
	fetch func(ctx context.Context, ids []string) (map[string]batchRow, error)

	mu      sync.Mutex
	queue   []*checkInRead
	running int // readers with a query on its way or about to start one
}

// checkInRead is one check-in waiting for its row.
type checkInRead struct {
	tenantID, deviceID string
	c                  deviceCheckIn
	err                error
	done               chan struct{}
}

// read returns the device's check-in row, as checkIn with timestampOnly does.
func (b *checkInReads) read(ctx context.Context, tenantID, deviceID string) (deviceCheckIn, error) {
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
		return deviceCheckIn{}, ctx.Err()
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
		case !ok || row.tenantID != r.tenantID:
			r.err = fmt.Errorf("%w: device %s", ErrUnregistered, r.deviceID)
		default:
			r.c = row.c
		}
		close(r.done)
	}
}

// batchRow is one device's row of a batched check-in query.
type batchRow struct {
	tenantID string
	c        deviceCheckIn
}

// newCheckInReads batches check-in reads from the store's devices and director metadata.
func newCheckInReads(st *store.Store) *checkInReads {
	return &checkInReads{fetch: func(ctx context.Context, ids []string) (map[string]batchRow, error) {
		return fetchCheckIns(ctx, st, ids)
	}}
}

// fetchCheckIns reads the check-in rows of the given devices in one query.
func fetchCheckIns(ctx context.Context, st *store.Store, ids []string) (map[string]batchRow, error) {
	rows, err := st.Query(ctx, checkInBatchQuery, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]batchRow, len(ids))
	for rows.Next() {
		var id string
		var row batchRow
		var product, rel sql.NullString
		if err := rows.Scan(&id, &row.tenantID, &row.c.groupID, &product, &rel, &row.c.timestamp, &row.c.files); err != nil {
			return nil, err
		}
		row.c.named, row.c.product, row.c.release = product.Valid, product.String, rel.String
		out[id] = row
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
