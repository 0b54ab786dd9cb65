package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
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

// DeviceFilter narrows a device listing. Every field is optional; set fields are all applied.
type DeviceFilter struct {
	Product string
	Group   string // within Product
	// Release is the release the device reports running.
	Release string
	// Attestation is the last verifier result: affirming, warning, contraindicated, or none
	// (never attested).
	Attestation string
	// UpdateOnly keeps the devices limited to update endpoints: a contraindicated result, or a
	// certificate a revocation demoted that has not expired.
	UpdateOnly bool
	// Seen is online, overdue or offline (DeviceOnlineWithin, DeviceOverdueWithin).
	Seen string
	// IDPrefix keeps the devices whose ID starts with it (lowercase hex).
	IDPrefix string
	// Sort is the order: id (the default), seen (last seen, newest first), stale (last seen,
	// oldest and never first) or release (by release, then ID).
	Sort string
}

// How recently a device must have been seen (an attestation or an install report) to count as
// online (OnlineWindow, as /metrics counts it: a running agent attests at least at its
// certificate's half-life) or overdue (its certificate has lapsed, but lately); longer ago, or
// never, it is offline.
const (
	DeviceOnlineWithin  = OnlineWindow
	DeviceOverdueWithin = 72 * time.Hour
)

// Device listing sort orders (DeviceFilter.Sort).
var DeviceSorts = []string{"id", "seen", "stale", "release"}

// Attestation states a device list filters on (DeviceFilter.Attestation).
var DeviceAttestations = []string{"affirming", "warning", "contraindicated", "none"}

// Device last-seen buckets (DeviceFilter.Seen).
var DeviceSeen = []string{"online", "overdue", "offline"}

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

// ListDevices lists one page of a tenant's devices matching f, in f.Sort's order. Each filter
// and order reads an index of its own, so a page costs the same at any fleet size.
func (s *Store) ListDevices(ctx context.Context, tenantID string, f DeviceFilter, p Page) ([]Device, string, error) {
	q, args, err := s.deviceQuery(ctx, tenantID, f, p)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDevices: %w", err)
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDevices: %w", err)
	}
	out, err := scanAll(rows, scanDevice)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDevices: %w", err)
	}
	out, next := trimPage(out, p, func(d Device) string { return deviceCursor(f.Sort, d) })
	return out, next, nil
}

// seenExpr is a device's last check-in with never as 0, the expression the seen index holds.
const seenExpr = `COALESCE(d.last_seen_at, 0)`

// updateOnly holds for a device limited to the update endpoints; now is the clock's placeholder.
func updateOnly(now string) string {
	return `(d.attestation = 'contraindicated' OR EXISTS (SELECT 1 FROM demoted_certificates dc WHERE dc.device_id = d.id AND dc.not_after > ` + now + `))`
}

func deviceCursor(sort string, d Device) string {
	switch sort {
	case "seen", "stale":
		var v int64
		if d.LastSeenAt != nil {
			v = micros(*d.LastSeenAt)
		}
		return d.ID + ":" + strconv.FormatInt(v, 10)
	case "release":
		return d.ID + ":" + d.CurrentRelease
	}
	return d.ID
}

// deviceQuery builds the listing's SQL. $1 is the tenant; the rest follow.
func (s *Store) deviceQuery(ctx context.Context, tenantID string, f DeviceFilter, p Page) (string, []any, error) {
	now := s.Now()
	args := []any{tenantID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where := []string{"d.tenant_id = $1"}
	if f.Group != "" && f.Product == "" {
		return "", nil, invalid("a group is named within a product; give the product too")
	}
	if f.Product != "" {
		prod, err := s.ProductByName(ctx, tenantID, f.Product)
		if err != nil {
			return "", nil, err
		}
		if f.Group != "" {
			g, err := s.groupByName(ctx, tenantID, f.Product, f.Group, groupColumnsUncounted)
			if err != nil {
				return "", nil, err
			}
			where = append(where, "d.group_id = "+arg(g.ID))
		} else {
			where = append(where, "d.product_id = "+arg(prod.ID))
		}
	}
	if f.Release != "" {
		where = append(where, "d.current_release = "+arg(f.Release))
	}
	switch f.Attestation {
	case "":
	case "none":
		where = append(where, "d.attestation = ''")
	case "affirming", "warning", "contraindicated":
		where = append(where, "d.attestation = "+arg(f.Attestation))
	default:
		return "", nil, invalid("attestation %q is not one of %s", f.Attestation, strings.Join(DeviceAttestations, ", "))
	}
	if f.UpdateOnly {
		where = append(where, updateOnly(arg(micros(now))))
	}
	online, overdue := micros(now.Add(-DeviceOnlineWithin)), micros(now.Add(-DeviceOverdueWithin))
	switch f.Seen {
	case "":
	case "online":
		where = append(where, seenExpr+" >= "+arg(online))
	case "overdue":
		where = append(where, seenExpr+" < "+arg(online), seenExpr+" >= "+arg(overdue))
	case "offline":
		where = append(where, seenExpr+" < "+arg(overdue))
	default:
		return "", nil, invalid("seen %q is not one of %s", f.Seen, strings.Join(DeviceSeen, ", "))
	}
	if f.IDPrefix != "" {
		if len(f.IDPrefix) > 64 || strings.Trim(f.IDPrefix, "0123456789abcdef") != "" {
			return "", nil, invalid("a device ID search must be up to 64 lowercase hex digits")
		}
		where = append(where, "d.id >= "+arg(f.IDPrefix), "d.id < "+arg(f.IDPrefix+"g"))
	}
	var order string
	cursorID, cursorVal, hasVal := strings.Cut(p.After, ":")
	switch f.Sort {
	case "", "id":
		if hasVal {
			return "", nil, badCursor()
		}
		if p.After != "" {
			where = append(where, "d.id > "+arg(p.After))
		}
		order = "d.id"
	case "seen", "stale":
		if p.After != "" {
			v, err := strconv.ParseInt(cursorVal, 10, 64)
			if !hasVal || err != nil {
				return "", nil, badCursor()
			}
			op := "<"
			if f.Sort == "stale" {
				op = ">"
			}
			where = append(where, "("+seenExpr+", d.id) "+op+" ("+arg(v)+", "+arg(cursorID)+")")
		}
		order = seenExpr + " DESC, d.id DESC"
		if f.Sort == "stale" {
			order = seenExpr + ", d.id"
		}
	case "release":
		if p.After != "" {
			if !hasVal {
				return "", nil, badCursor()
			}
			where = append(where, "(d.current_release, d.id) > ("+arg(cursorVal)+", "+arg(cursorID)+")")
		}
		order = "d.current_release, d.id"
	default:
		return "", nil, invalid("sort %q is not one of %s", f.Sort, strings.Join(DeviceSorts, ", "))
	}
	q := `SELECT ` + deviceColumns + deviceJoins + ` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + order + ` LIMIT ` + arg(p.limit()+1)
	return q, args, nil
}

func badCursor() error {
	return invalid("the after cursor is not one this server issued; start from the first page")
}

// TenantFleet counts a tenant's devices by attestation, by how recently they checked in and by
// release.
type TenantFleet struct {
	Devices int
	// ByAttestation counts affirming, warning, update-only and none (never attested); a device
	// counts as update-only as in DeviceFilter.UpdateOnly.
	ByAttestation map[string]int
	// BySeen counts online, overdue and offline (DeviceOnlineWithin, DeviceOverdueWithin).
	BySeen map[string]int
	// ByRelease is the releases devices run, most devices first, at most FleetReleases of them;
	// OtherReleases counts the devices on the rest.
	ByRelease     []ReleaseCount
	OtherReleases int
}

// ReleaseCount is how many devices run one release ("" for none reported yet).
type ReleaseCount struct {
	Release string
	Devices int
}

// FleetReleases caps the releases TenantFleet lists by name.
const FleetReleases = 20

// FleetSummary counts a tenant's devices, or one product's when product is not "", for the
// console's fleet overview, in two grouped reads of the devices.
func (s *Store) FleetSummary(ctx context.Context, tenantID, product string) (TenantFleet, error) {
	now := s.Now()
	f := TenantFleet{ByAttestation: map[string]int{}, BySeen: map[string]int{}}
	productID := ""
	if product != "" {
		p, err := s.ProductByName(ctx, tenantID, product)
		if err != nil {
			return TenantFleet{}, fmt.Errorf("store.FleetSummary: %w", err)
		}
		productID = p.ID
	}
	// By attestation: one grouped read of the (tenant, attestation) index.
	rows, err := s.query(ctx, `SELECT attestation, COUNT(*) FROM devices WHERE tenant_id = $1 AND ($2 = '' OR product_id = $2)
		GROUP BY attestation`, tenantID, productID)
	if err != nil {
		return TenantFleet{}, fmt.Errorf("store.FleetSummary: %w", err)
	}
	err = scanEach(rows, func(r rowScanner) error {
		var att string
		var n int
		if err := r.Scan(&att, &n); err != nil {
			return err
		}
		switch att {
		case "":
			att = "none"
		case "contraindicated":
			att = "update-only"
		}
		f.ByAttestation[att] += n
		f.Devices += n
		return nil
	})
	if err != nil {
		return TenantFleet{}, fmt.Errorf("store.FleetSummary: %w", err)
	}
	// Devices whose certificate a revocation demoted are update-only whatever they last
	// attested: few rows, read from the demotions' side.
	rows, err = s.query(ctx, `SELECT d.attestation, COUNT(DISTINCT d.id) FROM demoted_certificates dc JOIN devices d ON d.id = dc.device_id
		WHERE dc.tenant_id = $1 AND dc.not_after > $2 AND d.tenant_id = $1 AND d.attestation <> 'contraindicated' AND ($3 = '' OR d.product_id = $3)
		GROUP BY d.attestation`, tenantID, micros(now), productID)
	if err != nil {
		return TenantFleet{}, fmt.Errorf("store.FleetSummary: %w", err)
	}
	err = scanEach(rows, func(r rowScanner) error {
		var att string
		var n int
		if err := r.Scan(&att, &n); err != nil {
			return err
		}
		if att == "" {
			att = "none"
		}
		f.ByAttestation[att] -= n
		f.ByAttestation["update-only"] += n
		return nil
	})
	if err != nil {
		return TenantFleet{}, fmt.Errorf("store.FleetSummary: %w", err)
	}
	// By last seen: one pass over the (tenant, last seen) index, no sort.
	var online, overdue sql.NullInt64
	if err := s.queryRow(ctx, `SELECT SUM(CASE WHEN `+seenExpr+` >= $2 THEN 1 ELSE 0 END), SUM(CASE WHEN `+seenExpr+` < $2 AND `+seenExpr+` >= $3 THEN 1 ELSE 0 END)
		FROM devices d WHERE d.tenant_id = $1 AND ($4 = '' OR d.product_id = $4)`,
		tenantID, micros(now.Add(-DeviceOnlineWithin)), micros(now.Add(-DeviceOverdueWithin)), productID).Scan(&online, &overdue); err != nil {
		return TenantFleet{}, fmt.Errorf("store.FleetSummary: %w", err)
	}
	f.BySeen["online"], f.BySeen["overdue"] = int(online.Int64), int(overdue.Int64)
	f.BySeen["offline"] = f.Devices - f.BySeen["online"] - f.BySeen["overdue"]
	rows, err = s.query(ctx, `SELECT current_release, COUNT(*) FROM devices WHERE tenant_id = $1 AND ($3 = '' OR product_id = $3)
		GROUP BY current_release ORDER BY 2 DESC, 1 LIMIT $2`, tenantID, FleetReleases+1, productID)
	if err != nil {
		return TenantFleet{}, fmt.Errorf("store.FleetSummary: %w", err)
	}
	counts, err := scanAll(rows, func(r rowScanner) (ReleaseCount, error) {
		var c ReleaseCount
		err := r.Scan(&c.Release, &c.Devices)
		return c, err
	})
	if err != nil {
		return TenantFleet{}, fmt.Errorf("store.FleetSummary: %w", err)
	}
	listed := 0
	if len(counts) > FleetReleases {
		counts = counts[:FleetReleases]
	}
	for _, c := range counts {
		listed += c.Devices
	}
	f.ByRelease, f.OtherReleases = counts, f.Devices-listed
	return f, nil
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
