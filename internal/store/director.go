package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DirectorMetadata is the director metadata signed for one device: which release of which
// product it must install, and the signed files (Files holds all three as JSON encoded by
// internal/release; Timestamp is timestamp.json alone, which every check-in serves).
type DirectorMetadata struct {
	DeviceID, TenantID string
	Version            int64
	Product, Release   string
	Files, Timestamp   string
	Expires            time.Time
}

// DeviceTenant reads the tenant a device belongs to in the transaction: "" when it belongs to
// none, ErrNotFound when there is no such device.
func (t *UpdatesTx) DeviceTenant(ctx context.Context, deviceID string) (string, error) {
	var tenant sql.NullString
	err := t.tx.QueryRowContext(t.ctx(ctx), `SELECT tenant_id FROM devices WHERE id = $1`, deviceID).Scan(&tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return tenant.String, err
}

// DirectorVersion reads the version of a device's director metadata in the transaction; 0
// when the director never named anything for it.
func (t *UpdatesTx) DirectorVersion(ctx context.Context, deviceID string) (int64, error) {
	var v int64
	err := t.tx.QueryRowContext(t.ctx(ctx), `SELECT version FROM director_metadata WHERE device_id = $1`, deviceID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// SaveDirector stores a device's director metadata m, replacing version prev (0: none yet)
// only if it is still the stored one; it reports whether it did.
func (t *UpdatesTx) SaveDirector(ctx context.Context, m DirectorMetadata, prev int64) (bool, error) {
	ctx = t.ctx(ctx)
	if prev == 0 {
		_, err := t.tx.ExecContext(ctx, `INSERT INTO director_metadata (device_id, tenant_id, version, product, release, files, timestamp_file, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			m.DeviceID, m.TenantID, m.Version, m.Product, m.Release, m.Files, m.Timestamp, micros(m.Expires))
		return err == nil, err
	}
	res, err := t.tx.ExecContext(ctx, `UPDATE director_metadata SET version = $1, product = $2, release = $3, files = $4, timestamp_file = $5,
		expires_at = $6 WHERE device_id = $7 AND version = $8`,
		m.Version, m.Product, m.Release, m.Files, m.Timestamp, micros(m.Expires), m.DeviceID, prev)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return err == nil && n == 1, nil
}

// RaiseDirectorVersions adds margin to the version of every director metadata of the tenant and
// marks it due (expired), so that the next re-issue (release's refresh) signs each device's
// metadata above anything signed before; it returns how many devices it raised. A restored
// server calls it before it serves.
func (t *UpdatesTx) RaiseDirectorVersions(ctx context.Context, tenantID string, margin int64) (int64, error) {
	res, err := t.tx.ExecContext(ctx, `UPDATE director_metadata SET version = version + $1, expires_at = 0 WHERE tenant_id = $2`, margin, tenantID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// SetTargetRelease records the release the director named for a device.
func (t *UpdatesTx) SetTargetRelease(ctx context.Context, deviceID, version string, now time.Time) error {
	_, err := t.tx.ExecContext(t.ctx(ctx), `UPDATE devices SET target_release = $1, updated_at = $2 WHERE id = $3`, version, micros(now), deviceID)
	return err
}

// DirectorDue is a device's director metadata that is due to be re-issued.
type DirectorDue struct {
	DeviceID, TenantID, Product, Release string
}

// DirectorDueBefore lists the director metadata that expires before limit.
func (s *Store) DirectorDueBefore(ctx context.Context, limit time.Time) ([]DirectorDue, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device_id, tenant_id, product, release FROM director_metadata WHERE expires_at < $1`, micros(limit))
	if err != nil {
		return nil, fmt.Errorf("store.DirectorDueBefore: %w", err)
	}
	return scanAll(rows, func(r rowScanner) (DirectorDue, error) {
		var d DirectorDue
		err := r.Scan(&d.DeviceID, &d.TenantID, &d.Product, &d.Release)
		return d, err
	})
}

// DirectorVersion returns the version and expiry of a device's director metadata;
// ErrNotFound when the director never named anything for it.
func (s *Store) DirectorVersion(ctx context.Context, tenantID, deviceID string) (int64, time.Time, error) {
	var v, exp int64
	err := s.queryRow(ctx, `SELECT version, expires_at FROM director_metadata WHERE device_id = $1 AND tenant_id = $2`, deviceID, tenantID).Scan(&v, &exp)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("store.DirectorVersion: %w", s.mapErr(err))
	}
	return v, fromMicros(exp), nil
}

// CheckIn is what one query tells about a device when it checks in: its group and what the
// director last named for it.
type CheckIn struct {
	TenantID string
	GroupID  string // "" when the device is in no group
	Named    bool   // the director has metadata for the device
	Product  string
	Release  string
	// Timestamp is the stored timestamp.json, unless HasTimestamp is false (rows written
	// before it had a column of its own); Files holds the three files, read only when they
	// are needed or Timestamp is missing.
	Timestamp    string
	HasTimestamp bool
	Files        string
}

// Two texts of one query: the check-in reads the timestamp alone unless the row predates its
// column; the other director files need the whole set.
const (
	checkInTimestampQuery = `SELECT COALESCE(d.group_id, ''), m.product, m.release, m.timestamp_file,
		CASE WHEN m.timestamp_file IS NULL THEN m.files END
		FROM devices d LEFT JOIN director_metadata m ON m.device_id = d.id AND m.tenant_id = d.tenant_id
		WHERE d.tenant_id = $1 AND d.id = $2`
	checkInFilesQuery = `SELECT COALESCE(d.group_id, ''), m.product, m.release, m.timestamp_file, m.files
		FROM devices d LEFT JOIN director_metadata m ON m.device_id = d.id AND m.tenant_id = d.tenant_id
		WHERE d.tenant_id = $1 AND d.id = $2`
	// checkInBatchQuery is checkInTimestampQuery for many devices at once (PostgreSQL only).
	// Device IDs are unique across tenants; each row carries its tenant.
	checkInBatchQuery = `SELECT d.id, d.tenant_id, COALESCE(d.group_id, ''), m.product, m.release, m.timestamp_file,
		CASE WHEN m.timestamp_file IS NULL THEN m.files END
		FROM devices d LEFT JOIN director_metadata m ON m.device_id = d.id AND m.tenant_id = d.tenant_id
		WHERE d.id = ANY($1)`
)

// checkInNulls holds a check-in row's nullable columns while it is scanned: one variable, as
// every variable whose address Scan takes is an allocation and every check-in scans a row.
type checkInNulls struct{ product, rel, timestamp, files sql.NullString }

// fill sets the fields of c that the nullable columns give.
func (n *checkInNulls) fill(c *CheckIn) {
	c.Named, c.Product, c.Release = n.product.Valid, n.product.String, n.rel.String
	c.Timestamp, c.HasTimestamp, c.Files = n.timestamp.String, n.timestamp.Valid, n.files.String
}

// DeviceCheckIn reads a registered device's check-in row: with the three director files when
// files is true, else with timestamp.json alone. It is ErrNotFound when the tenant has no such
// device. It runs through the cache of prepared statements: every check-in calls it.
func (s *Store) DeviceCheckIn(ctx context.Context, tenantID, deviceID string, files bool) (CheckIn, error) {
	q := checkInTimestampQuery
	if files {
		q = checkInFilesQuery
	}
	if s.dialect.name() == "sqlite" {
		// A keyed read of one row, which in WAL mode never waits for a writer, finishes in
		// microseconds whether or not the client is still there; without the request's
		// cancellation neither the driver nor database/sql starts a goroutine to watch it,
		// which cost a fifth of the check-in's time in the database layer.
		ctx = context.WithoutCancel(ctx)
	}
	c := CheckIn{TenantID: tenantID}
	var n checkInNulls
	if err := s.queryRow(ctx, q, tenantID, deviceID).Scan(&c.GroupID, &n.product, &n.rel, &n.timestamp, &n.files); err != nil {
		return CheckIn{}, s.mapErr(err)
	}
	n.fill(&c)
	return c, nil
}

// DeviceCheckIns reads the check-in rows (timestamp.json alone, as DeviceCheckIn without
// files) of many devices in one query, keyed by device ID; a device that is not registered is
// missing from the map, and each row names its tenant for the caller to compare. PostgreSQL
// only: it passes the IDs as one array.
func (s *Store) DeviceCheckIns(ctx context.Context, ids []string) (map[string]CheckIn, error) {
	rows, err := s.query(ctx, checkInBatchQuery, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]CheckIn, len(ids))
	for rows.Next() {
		var id string
		var c CheckIn
		var n checkInNulls
		if err := rows.Scan(&id, &c.TenantID, &c.GroupID, &n.product, &n.rel, &n.timestamp, &n.files); err != nil {
			return nil, err
		}
		n.fill(&c)
		out[id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
