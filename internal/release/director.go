package release

import (
	"context"
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
	_, err := s.assign(ctx, actor, tenantID, deviceID, product, version)
	return err
}

// assign is Assign returning the director files it issued, as committed.
func (s *Service) assign(ctx context.Context, actor store.Actor, tenantID, deviceID, product, version string) (*tuf.DirectorFiles, error) {
	var f *tuf.DirectorFiles
	err := s.cfg.Store.InDeviceUpdateTx(ctx, func(tx *store.UpdatesTx) error {
		var err error
		f, err = s.issue(ctx, tx, actor, tenantID, deviceID, product, version, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release.Assign: %w", fromStore(err))
	}
	return f, nil
}

// issue signs the next director metadata version for a device, naming the
// release's images. A refresh (signedOnly false) re-issues what the device
// was told even if the release was revoked since: a device must never be
// left with expired metadata, and a revoked release is replaced by
// assigning the fix. It returns the files it saved.
func (s *Service) issue(ctx context.Context, tx *store.UpdatesTx, actor store.Actor, tenantID, deviceID, product, version string, signedOnly bool) (*tuf.DirectorFiles, error) {
	now := s.now()
	r, err := tx.Release(ctx, tenantID, product, version)
	if err != nil {
		return nil, err
	}
	if r.State == StateDraft || (signedOnly && r.State != StateSigned) {
		return nil, fmt.Errorf("%w: %s is %s", ErrWrongState, version, r.State)
	}
	devTenant, err := tx.DeviceTenant(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	if devTenant != tenantID {
		return nil, fmt.Errorf("%w: device %s", ErrNotFound, deviceID)
	}
	roots, err := tx.DirectorRoots(ctx, tenantID)
	dir, err := s.director(tenantID, store.Repo{DirectorRoots: roots}, err)
	if err != nil {
		return nil, err
	}
	ver, err := tx.DirectorVersion(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	a := tuf.Assignment{DeviceID: deviceID, Version: ver + 1, Release: version, Deltas: tufDeltas(r.Deltas)}
	for _, im := range r.Images {
		a.Images = append(a.Images, tufImage(im))
	}
	f, err := dir.Issue(a, now)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(directorFiles{Targets: f.Targets, Snapshot: f.Snapshot, Timestamp: f.Timestamp})
	if err != nil {
		return nil, err
	}
	saved, err := tx.SaveDirector(ctx, store.DirectorMetadata{DeviceID: deviceID, TenantID: tenantID, Version: f.Version, Product: product,
		Release: version, Files: string(b), Timestamp: string(f.Timestamp), Expires: f.Expires}, ver)
	if err != nil {
		return nil, err
	}
	if !saved {
		return nil, ErrConcurrently
	}
	if !signedOnly {
		return f, nil
	}
	if err := tx.SetTargetRelease(ctx, deviceID, version, now); err != nil {
		return nil, err
	}
	if err := tx.Audit(ctx, tenantID, actor, "director.assign", "device/"+deviceID,
		store.Details{"product": product, "release": version, "director_version": f.Version}); err != nil {
		return nil, err
	}
	return f, nil
}

// director returns the tenant's director over the stored root chain, verifying the chain (every
// root's signatures, by the root before it) only when it differs from the one verified last
// for the tenant, or the online director key changed.
func (s *Service) director(tenantID string, r store.Repo, err error) (*tuf.Director, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotInit
	}
	if err != nil {
		return nil, err
	}
	key := s.cfg.Online.Director
	s.dmu.Lock()
	c, ok := s.directors[tenantID]
	s.dmu.Unlock()
	if ok && c.roots == r.DirectorRoots && c.key == key {
		return c.dir, nil
	}
	var roots [][]byte
	if err := json.Unmarshal([]byte(r.DirectorRoots), &roots); err != nil {
		return nil, fmt.Errorf("decode director roots: %w", err)
	}
	dir, err := tuf.NewDirector(roots, key, s.cfg.Expiry)
	if err != nil {
		return nil, err
	}
	s.dmu.Lock()
	if s.directors == nil {
		s.directors = map[string]cachedDirector{}
	}
	s.directors[tenantID] = cachedDirector{roots: r.DirectorRoots, key: key, dir: dir}
	s.dmu.Unlock()
	return dir, nil
}

// refreshDirector re-issues every device's director metadata that has less
// than half of its lifetime left.
func (s *Service) refreshDirector(ctx context.Context) error {
	limit := s.now().Add(s.cfg.Expiry.Director / 2)
	due, err := s.cfg.Store.DirectorDueBefore(ctx, limit)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range due {
		err := s.cfg.Store.InUpdatesTx(ctx, func(tx *store.UpdatesTx) error {
			_, err := s.issue(ctx, tx, store.System, d.TenantID, d.DeviceID, d.Product, d.Release, false)
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", d.DeviceID, err))
		}
	}
	return errors.Join(errs...)
}

// DirectorVersion returns the version and expiry of a device's director
// metadata, for status pages and tests.
func (s *Service) DirectorVersion(ctx context.Context, tenantID, deviceID string) (int64, time.Time, error) {
	v, exp, err := s.cfg.Store.DirectorVersion(ctx, tenantID, deviceID)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("release.DirectorVersion: %w", fromStore(err))
	}
	return v, exp, nil
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
	// Roots come from the tenant's director root chain alone (every healing agent asks for the
	// next one, a 404); the per-device files do not need it.
	if strings.HasSuffix(name, "root.json") {
		stored, err := s.cfg.Store.DirectorRoots(ctx, tenantID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("release.DirectorFile: %w", ErrNotInit)
		}
		if err != nil {
			return nil, fmt.Errorf("release.DirectorFile: %w", err)
		}
		var roots [][]byte
		if err := json.Unmarshal([]byte(stored), &roots); err != nil {
			return nil, fmt.Errorf("release.DirectorFile: decode director roots: %w", err)
		}
		// The roots were verified when stored; serve them without re-verifying.
		for i, b := range roots {
			if name == strconv.Itoa(i+1)+".root.json" || (name == "root.json" && i == len(roots)-1) {
				return b, nil
			}
		}
		return nil, fmt.Errorf("release.DirectorFile: %w: %s", ErrNotFound, name)
	}
	if name != "timestamp.json" && name != "snapshot.json" && name != "targets.json" {
		return nil, fmt.Errorf("release.DirectorFile: %w: %s", ErrNotFound, name)
	}
	if name == "timestamp.json" && c.GroupID != "" {
		f, err := s.followDeployment(ctx, tenantID, deviceID, c)
		if err != nil {
			// The device keeps its current metadata; the next poll retries.
			s.log.Warn("director could not follow the deployment", "device", deviceID, "err", err)
		} else if f != nil {
			// The timestamp just committed; reading the row back would give the same bytes
			// unless another assignment committed since, which the next poll serves.
			return f.Timestamp, nil
		}
	}
	if !c.Named {
		// Say why: a tenant without update keys, or a device nothing was named for yet.
		if _, err := s.loadRepo(ctx, tenantID); err != nil {
			return nil, fmt.Errorf("release.DirectorFile: %w", fromStore(err))
		}
		return nil, fmt.Errorf("release.DirectorFile: %w: no release was named for device %s yet", ErrNotFound, deviceID)
	}
	if name == "timestamp.json" && c.HasTimestamp {
		return []byte(c.Timestamp), nil
	}
	var f directorFiles
	if err := json.Unmarshal([]byte(c.Files), &f); err != nil {
		return nil, fmt.Errorf("release.DirectorFile: %w", err)
	}
	return map[string][]byte{"targets.json": f.Targets, "snapshot.json": f.Snapshot, "timestamp.json": f.Timestamp}[name], nil
}

// checkIn reads a device's check-in row (store.DeviceCheckIn): timestamp.json alone when
// timestampOnly, through the batched reads on PostgreSQL. A device the tenant does not hold is
// ErrUnregistered.
func (s *Service) checkIn(ctx context.Context, tenantID, deviceID string, timestampOnly bool) (store.CheckIn, error) {
	if timestampOnly && s.reads != nil {
		return s.reads.read(ctx, tenantID, deviceID)
	}
	return readCheckIn(ctx, s.cfg.Store, tenantID, deviceID, !timestampOnly)
}

// readCheckIn reads one device's check-in row by itself, with the three director files when
// files is true.
func readCheckIn(ctx context.Context, st *store.Store, tenantID, deviceID string, files bool) (store.CheckIn, error) {
	c, err := st.DeviceCheckIn(ctx, tenantID, deviceID, files)
	if errors.Is(err, store.ErrNotFound) {
		return c, fmt.Errorf("%w: device %s", ErrUnregistered, deviceID)
	}
	return c, err
}

// followDeployment assigns the release of the device's group deployment
// when the deployment offers it to the device now and the director names
// something else; it returns the director files it issued then, nil when
// it assigned nothing.
func (s *Service) followDeployment(ctx context.Context, tenantID, deviceID string, c store.CheckIn) (*tuf.DirectorFiles, error) {
	offer, err := s.cfg.Store.OfferForGroup(ctx, tenantID, c.GroupID, deviceID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !offer.Offered) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d := offer.Deployment
	if c.Named && c.Product == d.ProductName && c.Release == d.Release {
		return nil, nil
	}
	return s.assign(ctx, store.Actor("deployment:"+d.ID), tenantID, deviceID, d.ProductName, d.Release)
}
