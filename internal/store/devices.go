package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Device is one device in the registry. Its ID is the hex SHA-256 of its identity public key.
type Device struct {
	ID             string
	TenantID       string
	ProductName    string
	GroupName      string
	State          string // enrolled, claimed
	Attestation    string // last verifier result: affirming, warning, contraindicated, or ""
	CurrentRelease string
	TargetRelease  string
	LastSeenAt     *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// DeviceFilter narrows a device listing.
type DeviceFilter struct {
	Product string
	Group   string
}

const deviceColumns = `d.id, COALESCE(d.tenant_id, ''), COALESCE(p.name, ''), COALESCE(g.name, ''), d.state, d.attestation,
	d.current_release, d.target_release, d.last_seen_at, d.created_at, d.updated_at`

const deviceJoins = ` FROM devices d LEFT JOIN products p ON p.id = d.product_id LEFT JOIN device_groups g ON g.id = d.group_id `

func scanDevice(row interface{ Scan(...any) error }) (Device, error) {
	var d Device
	var seen sql.NullInt64
	var created, updated int64
	if err := row.Scan(&d.ID, &d.TenantID, &d.ProductName, &d.GroupName, &d.State, &d.Attestation,
		&d.CurrentRelease, &d.TargetRelease, &seen, &created, &updated); err != nil {
		return Device{}, err
	}
	d.LastSeenAt = fromNullMicros(seen)
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	return d, nil
}

// ListDevices lists a tenant's devices by ID, optionally within one product or group.
func (s *Store) ListDevices(ctx context.Context, tenantID string, f DeviceFilter, p Page) ([]Device, string, error) {
	if f.Group != "" && f.Product == "" {
		return nil, "", fmt.Errorf("store.ListDevices: %w", invalid("a group is named within a product; give the product too"))
	}
	if f.Product != "" {
		if _, err := s.ProductByName(ctx, tenantID, f.Product); err != nil {
			return nil, "", fmt.Errorf("store.ListDevices: %w", err)
		}
	}
	if f.Group != "" {
		if _, err := s.GroupByName(ctx, tenantID, f.Product, f.Group); err != nil {
			return nil, "", fmt.Errorf("store.ListDevices: %w", err)
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+deviceColumns+deviceJoins+`
		WHERE d.tenant_id = $1 AND d.id > $2 AND ($3 = '' OR p.name = $3) AND ($4 = '' OR g.name = $4)
		ORDER BY d.id LIMIT $5`, tenantID, p.After, f.Product, f.Group, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDevices: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanDevice)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDevices: %w", err)
	}
	out, next := trimPage(out, p, func(d Device) string { return d.ID })
	return out, next, nil
}

// GroupDeviceIDs lists the IDs of a tenant's devices in a group, in one indexed query: what a
// deployment's wake-up needs, without the rows ListDevices reads page by page.
func (s *Store) GroupDeviceIDs(ctx context.Context, tenantID, groupID string) ([]string, error) {
	ids, err := queryIDs(ctx, s.db, `SELECT id FROM devices WHERE group_id = $1 AND tenant_id = $2`, groupID, tenantID)
	if err != nil {
		return nil, fmt.Errorf("store.GroupDeviceIDs: %w", err)
	}
	return ids, nil
}

// DeviceByID returns one of a tenant's devices; a device of another tenant, or one not yet
// claimed, is ErrNotFound.
func (s *Store) DeviceByID(ctx context.Context, tenantID, id string) (Device, error) {
	d, err := scanDevice(s.queryRow(ctx, `SELECT `+deviceColumns+deviceJoins+`WHERE d.tenant_id = $1 AND d.id = $2`, tenantID, id))
	if err != nil {
		return Device{}, fmt.Errorf("store.DeviceByID: %w", s.mapErr(err))
	}
	return d, nil
}
