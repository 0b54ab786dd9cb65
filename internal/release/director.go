package release

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

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
	now := s.now()
	err := s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		r, err := s.getRelease(ctx, tx, tenantID, product, version)
		if err != nil {
			return err
		}
		if r.State != StateSigned {
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
			_, err = tx.ExecContext(ctx, `INSERT INTO director_metadata (device_id, tenant_id, version, release, files, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				deviceID, tenantID, f.Version, version, string(b), micros(f.Expires))
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE director_metadata SET version = $1, release = $2, files = $3, expires_at = $4 WHERE device_id = $5 AND version = $6`,
				f.Version, version, string(b), micros(f.Expires), deviceID, ver)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET target_release = $1, updated_at = $2 WHERE id = $3`, version, micros(now), deviceID); err != nil {
			return err
		}
		return s.cfg.Store.AppendAudit(ctx, tx, tenantID, actor, "director.assign", "device/"+deviceID,
			store.Details{"product": product, "release": version, "director_version": f.Version})
	})
	if err != nil {
		return fmt.Errorf("release.Assign: %w", mapErr(err))
	}
	return nil
}

// DirectorFile returns one file of a device's director metadata
// (targets.json, snapshot.json, timestamp.json or N.root.json).
func (s *Service) DirectorFile(ctx context.Context, tenantID, deviceID, name string) ([]byte, error) {
	row, err := s.loadRepo(ctx, s.cfg.Store.DB(), tenantID)
	if err != nil {
		return nil, fmt.Errorf("release.DirectorFile: %w", mapErr(err))
	}
	dir, err := tuf.NewDirector(row.director, s.cfg.Online.Director, s.cfg.Expiry)
	if err != nil {
		return nil, fmt.Errorf("release.DirectorFile: %w", err)
	}
	if b, ok := dir.RootFiles()[name]; ok {
		return b, nil
	}
	var raw string
	err = s.cfg.Store.DB().QueryRowContext(ctx, `SELECT files FROM director_metadata WHERE device_id = $1 AND tenant_id = $2`, deviceID, tenantID).Scan(&raw)
	if err != nil {
		return nil, fmt.Errorf("release.DirectorFile: %w", mapErr(err))
	}
	var f directorFiles
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		return nil, fmt.Errorf("release.DirectorFile: %w", err)
	}
	b, ok := map[string][]byte{"targets.json": f.Targets, "snapshot.json": f.Snapshot, "timestamp.json": f.Timestamp}[name]
	if !ok {
		return nil, fmt.Errorf("release.DirectorFile: %w: %s", ErrNotFound, name)
	}
	return b, nil
}
