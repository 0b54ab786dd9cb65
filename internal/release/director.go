package release

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/tuf"
)

// directorFiles is the stored form of a device's director metadata.
type directorFiles struct {
	Targets   []byte `json:"targets"`
	Snapshot  []byte `json:"snapshot"`
	Timestamp []byte `json:"timestamp"`
}

// Assign has the director name a signed release's images for a device of
// the tenant; the rollout engine calls it when a deployment reaches the
// device. A revoked or unsigned release is refused. Each call issues a new
// director metadata version.
func (s *Service) Assign(ctx context.Context, actor store.Actor, tenantID, deviceID, product, version string) error {
	err := s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		return s.issue(ctx, tx, actor, tenantID, deviceID, product, version, true)
	})
	if err != nil {
		return fmt.Errorf("release.Assign: %w", mapErr(err))
	}
	return nil
}

// issue signs the next director metadata version for a device, naming the
// release's images. A refresh (signedOnly false) re-issues what the device
// was told even if the release was revoked since: a device must never be
// left with expired metadata, and a revoked release is replaced by
// assigning the fix.
func (s *Service) issue(ctx context.Context, tx *sql.Tx, actor store.Actor, tenantID, deviceID, product, version string, signedOnly bool) error {
	now := s.now()
	r, err := s.getRelease(ctx, tx, tenantID, product, version)
	if err != nil {
		return err
	}
	if r.State == StateDraft || (signedOnly && r.State != StateSigned) {
		return fmt.Errorf("%w: %s is %s", ErrWrongState, version, r.State)
	}
	var devTenant sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT tenant_id FROM devices WHERE id = $1`, deviceID).Scan(&devTenant); err != nil {
		return err
	}
	if !devTenant.Valid || devTenant.String != tenantID {
		return fmt.Errorf("%w: device %s", ErrNotFound, deviceID)
	}
	row, err := s.loadRepo(ctx, tx, tenantID)
	if err != nil {
		return err
	}
	dir, err := tuf.NewDirector(row.director, s.cfg.Online.Director, s.cfg.Expiry)
	if err != nil {
		return err
	}
	var ver int64
	err = tx.QueryRowContext(ctx, `SELECT version FROM director_metadata WHERE device_id = $1`, deviceID).Scan(&ver)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	a := tuf.Assignment{DeviceID: deviceID, Version: ver + 1, Release: version, Deltas: r.Deltas}
	for _, im := range r.Images {
		a.Images = append(a.Images, im.tuf())
	}
	f, err := dir.Issue(a, now)
	if err != nil {
		return err
	}
	b, err := json.Marshal(directorFiles{Targets: f.Targets, Snapshot: f.Snapshot, Timestamp: f.Timestamp})
	if err != nil {
		return err
	}
	if ver == 0 {
		_, err = tx.ExecContext(ctx, `INSERT INTO director_metadata (device_id, tenant_id, version, product, release, files, timestamp_file, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			deviceID, tenantID, f.Version, product, version, string(b), string(f.Timestamp), micros(f.Expires))
	} else {
		var res sql.Result
		res, err = tx.ExecContext(ctx, `UPDATE director_metadata SET version = $1, product = $2, release = $3, files = $4, timestamp_file = $5,
			expires_at = $6 WHERE device_id = $7 AND version = $8`,
			f.Version, product, version, string(b), string(f.Timestamp), micros(f.Expires), deviceID, ver)
		if err == nil {
			if n, rerr := res.RowsAffected(); rerr != nil || n != 1 {
				return ErrConcurrently
			}
		}
	}
	if err != nil {
		return err
	}
	if !signedOnly {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET target_release = $1, updated_at = $2 WHERE id = $3`, version, micros(now), deviceID); err != nil {
		return err
	}
	return s.cfg.Store.AppendAudit(ctx, tx, tenantID, actor, "director.assign", "device/"+deviceID,
		store.Details{"product": product, "release": version, "director_version": f.Version})
}

// refreshDirector re-issues every device's director metadata that has less
// than half of its lifetime left.
func (s *Service) refreshDirector(ctx context.Context) error {
	limit := s.now().Add(s.cfg.Expiry.Director / 2)
	rows, err := s.cfg.Store.DB().QueryContext(ctx, `SELECT device_id, tenant_id, product, release FROM director_metadata WHERE expires_at < $1`, micros(limit))
	if err != nil {
		return err
	}
	type due struct{ device, tenant, product, release string }
	var all []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.device, &d.tenant, &d.product, &d.release); err != nil {
			rows.Close()
			return err
		}
		all = append(all, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var errs []error
	for _, d := range all {
		err := s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
			return s.issue(ctx, tx, store.System, d.tenant, d.device, d.product, d.release, false)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", d.device, err))
		}
	}
	return errors.Join(errs...)
}

// DirectorVersion returns the version and expiry of a device's director
// metadata, for status pages and tests.
func (s *Service) DirectorVersion(ctx context.Context, tenantID, deviceID string) (int64, time.Time, error) {
	var v, exp int64
	err := s.cfg.Store.QueryRow(ctx, `SELECT version, expires_at FROM director_metadata WHERE device_id = $1 AND tenant_id = $2`, deviceID, tenantID).Scan(&v, &exp)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("release.DirectorVersion: %w", mapErr(err))
	}
	return v, fromMicros(exp), nil
}

// ErrUnregistered is a director request from a device the tenant's registry does not hold (it
// was deleted after its certificate was issued).
var ErrUnregistered = errors.New("release: the device is not registered with the tenant")

// DirectorFile returns one file of a device's director metadata
// (targets.json, snapshot.json, timestamp.json or N.root.json). A request
// for timestamp.json, which starts every refresh, first follows the
// device's group deployment: when it offers a release the director does
// not name yet, new director metadata naming it is issued.
//
// It confirms the device is registered, so that the device API can serve
// a check-in with one query: the device's group and its director
// metadata are read together, and the group's deployment comes from the
// store's per-group cache. A device that is not registered is
// ErrUnregistered.
func (s *Service) DirectorFile(ctx context.Context, tenantID, deviceID, name string) ([]byte, error) {
	c, err := s.checkIn(ctx, tenantID, deviceID, name != "targets.json" && name != "snapshot.json")
	if err != nil {
		return nil, fmt.Errorf("release.DirectorFile: %w", err)
	}
	// Roots come from the tenant's repository state; the per-device files do not need it.
	if strings.HasSuffix(name, "root.json") {
		row, err := s.loadRepo(ctx, s.cfg.Store.DB(), tenantID)
		if err != nil {
			return nil, fmt.Errorf("release.DirectorFile: %w", mapErr(err))
		}
		// The roots were verified when stored; serve them without re-verifying.
		for i, b := range row.director {
			if name == strconv.Itoa(i+1)+".root.json" || (name == "root.json" && i == len(row.director)-1) {
				return b, nil
			}
		}
		return nil, fmt.Errorf("release.DirectorFile: %w: %s", ErrNotFound, name)
	}
	if name != "timestamp.json" && name != "snapshot.json" && name != "targets.json" {
		return nil, fmt.Errorf("release.DirectorFile: %w: %s", ErrNotFound, name)
	}
	if name == "timestamp.json" && c.groupID != "" {
		assigned, err := s.followDeployment(ctx, tenantID, deviceID, c)
		if err != nil {
			// The device keeps its current metadata; the next poll retries.
			s.log.Warn("director could not follow the deployment", "device", deviceID, "err", err)
		} else if assigned {
			if c, err = s.checkIn(ctx, tenantID, deviceID, true); err != nil {
				return nil, fmt.Errorf("release.DirectorFile: %w", err)
			}
		}
	}
	if !c.named {
		// Say why: a tenant without update keys, or a device nothing was named for yet.
		if _, err := s.loadRepo(ctx, s.cfg.Store.DB(), tenantID); err != nil {
			return nil, fmt.Errorf("release.DirectorFile: %w", mapErr(err))
		}
		return nil, fmt.Errorf("release.DirectorFile: %w: no release was named for device %s yet", ErrNotFound, deviceID)
	}
	if name == "timestamp.json" && c.timestamp.Valid {
		return []byte(c.timestamp.String), nil
	}
	var f directorFiles
	if err := json.Unmarshal([]byte(c.files.String), &f); err != nil {
		return nil, fmt.Errorf("release.DirectorFile: %w", err)
	}
	return map[string][]byte{"targets.json": f.Targets, "snapshot.json": f.Snapshot, "timestamp.json": f.Timestamp}[name], nil
}

// deviceCheckIn is what one query tells about a device at its check-in.
type deviceCheckIn struct {
	groupID          string
	named            bool // the director has metadata for the device
	product, release string
	// timestamp is the stored timestamp.json (NULL in rows written before it had a column of
	// its own); files holds the three files, read only when they are needed.
	timestamp, files sql.NullString
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
)

func (s *Service) checkIn(ctx context.Context, tenantID, deviceID string, timestampOnly bool) (deviceCheckIn, error) {
	if timestampOnly && s.reads != nil {
		return s.reads.read(ctx, tenantID, deviceID)
	}
	q := checkInFilesQuery
	if timestampOnly {
		q = checkInTimestampQuery
	}
	return queryCheckIn(ctx, s.cfg.Store, q, tenantID, deviceID)
}

// queryCheckIn reads one device's check-in row with q, one of the two check-in queries.
func queryCheckIn(ctx context.Context, st *store.Store, q, tenantID, deviceID string) (deviceCheckIn, error) {
	var c deviceCheckIn
	var product, rel sql.NullString
	err := st.QueryRow(ctx, q, tenantID, deviceID).Scan(&c.groupID, &product, &rel, &c.timestamp, &c.files)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("%w: device %s", ErrUnregistered, deviceID)
	} else if err != nil {
		return c, err
	}
	c.named, c.product, c.release = product.Valid, product.String, rel.String
	return c, nil
}

// followDeployment assigns the release of the device's group deployment
// when the deployment offers it to the device now and the director names
// something else; it reports whether it did.
func (s *Service) followDeployment(ctx context.Context, tenantID, deviceID string, c deviceCheckIn) (bool, error) {
	offer, err := s.cfg.Store.OfferForGroup(ctx, tenantID, c.groupID, deviceID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !offer.Offered) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	d := offer.Deployment
	if c.named && c.product == d.ProductName && c.release == d.Release {
		return false, nil
	}
	if err := s.Assign(ctx, store.Actor("deployment:"+d.ID), tenantID, deviceID, d.ProductName, d.Release); err != nil {
		return false, err
	}
	return true, nil
}
