package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/coverage"
	"github.com/rampartsec/rampart/internal/rollout"
)

// DeploymentStep is the outcome of evaluating a deployment: what changed, why, and the tally.
type DeploymentStep struct {
	Deployment Deployment
	Events     []rollout.Event
	Decision   rollout.Decision
	Tally      rollout.Tally
}

// DeploymentStatus evaluates a deployment without changing it, for display.
func (s *Store) DeploymentStatus(ctx context.Context, tenantID, id string) (DeploymentStep, error) {
	var st DeploymentStep
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		d, err := loadDeployment(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		agg, _, err := s.aggregate(ctx, tx, d, s.Now())
		if err != nil {
			return err
		}
		st.Deployment = d
		st.Decision, st.Tally = d.EvaluateAggregate(agg)
		return nil
	})
	if err != nil {
		return DeploymentStep{}, fmt.Errorf("store.DeploymentStatus: %w", s.mapErr(err))
	}
	return st, nil
}

// StepDeployment picks up devices that joined the group, evaluates the criteria and moves the
// deployment by at most one transition, auditing it in the transaction that records it. It reads
// without the write lock and writes only when something changed (stepDeployment). The server's
// stepper calls it on a timer; a deployment that is not active is left as it is.
func (s *Store) StepDeployment(ctx context.Context, tenantID, id string) (DeploymentStep, error) {
	st, err := s.stepDeployment(ctx, tenantID, id, true)
	if err != nil {
		return DeploymentStep{}, fmt.Errorf("store.StepDeployment: %w", err)
	}
	return st, nil
}

// CheckDeployment is StepDeployment for new evidence (a crash batch, a failed install): it
// evaluates the criteria on the group as it is now and pauses or aborts the deployment when one
// crossed, but never opens a phase (rollout.Deployment.Check).
func (s *Store) CheckDeployment(ctx context.Context, tenantID, id string) (DeploymentStep, error) {
	st, err := s.stepDeployment(ctx, tenantID, id, false)
	if err != nil {
		return DeploymentStep{}, fmt.Errorf("store.CheckDeployment: %w", err)
	}
	return st, nil
}

// ActiveDeploymentOfDevice returns the ID of the active deployment of the device's group, or
// ErrNotFound when there is none.
func (s *Store) ActiveDeploymentOfDevice(ctx context.Context, tenantID, deviceID string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT d.id FROM deployments d JOIN devices dv ON dv.group_id = d.group_id
		WHERE dv.tenant_id = $1 AND dv.id = $2 AND d.tenant_id = $1 AND d.state = 'active' ORDER BY d.seq DESC LIMIT 1`,
		tenantID, deviceID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store.ActiveDeploymentOfDevice: %w", ErrNotFound)
	} else if err != nil {
		return "", fmt.Errorf("store.ActiveDeploymentOfDevice: %w", err)
	}
	return id, nil
}

// stepDeployment evaluates the deployment over its group as the stepper remembers it, brought up
// to date by reading again only the members that changed since its last step (step_cache.go),
// in a read transaction, which holds no write lock. It takes the write lock only for what it
// must write: devices that joined the group, and a transition with its audit record. The
// transition is recorded only if the deployment is still as it was read (its version); if an
// operator or another replica moved it meanwhile, the step starts over once on the new state,
// then reports ErrConflict.
func (s *Store) stepDeployment(ctx context.Context, tenantID, id string, advance bool) (DeploymentStep, error) {
	changed := false
	defer func() {
		if changed {
			s.deploymentsChanged()
		}
	}()
	s.steps.mu.Lock()
	defer s.steps.mu.Unlock()
	for attempt := 0; ; attempt++ {
		st, err := s.stepOnce(ctx, tenantID, id, advance, &changed)
		if errors.Is(err, errMovedMeanwhile) && attempt == 0 {
			continue
		}
		if errors.Is(err, errMovedMeanwhile) {
			err = fmt.Errorf("%w: deployment %s changed concurrently; retry", ErrConflict, id)
		}
		if err != nil {
			return DeploymentStep{}, s.mapErr(err)
		}
		return st, nil
	}
}

// errMovedMeanwhile is the deployment changing between a step's read and its write.
var errMovedMeanwhile = errors.New("deployment moved since it was read")

// stepOnce is one attempt of stepDeployment; s.steps.mu is held.
func (s *Store) stepOnce(ctx context.Context, tenantID, id string, advance bool, changed *bool) (DeploymentStep, error) {
	var st DeploymentStep
	now := s.Now()
	d, err := loadDeployment(ctx, s.db, tenantID, id)
	if err != nil {
		return st, err
	}
	if s.steps.m == nil {
		s.steps.m = map[string]*groupMemory{}
	}
	g := s.steps.m[id]
	delete(s.steps.m, id) // kept again below once read
	full := g == nil || !g.evidenceSince.Equal(d.EvidenceSince) || now.Before(g.readAt) || now.Sub(g.fullAt) >= fullRefreshEvery
	if d.State == rollout.StateActive {
		// Devices that joined the group since the last step become members as of now: on a full
		// read, every device of the group the deployment has not seen; else those among the
		// devices with a coverage event in the group since then (joining writes one).
		var joiners []string
		if full {
			joiners, err = deploymentJoiners(ctx, s.db, d)
		} else {
			var ids []string
			if ids, err = queryIDs(ctx, s.db, `SELECT DISTINCT device_id FROM coverage_events WHERE group_id = $1 AND at >= $2`,
				d.GroupID, micros(g.readAt.Add(-changeMargin))); err == nil {
				joiners, err = notMembers(ctx, s.db, d, ids)
			}
		}
		if err != nil {
			return st, err
		}
		if len(joiners) > 0 {
			err = s.inTx(ctx, func(tx *sql.Tx) error {
				ids, err := stillInGroup(ctx, tx, d, joiners)
				if err != nil {
					return err
				}
				return insertDeploymentMembers(ctx, tx, d, ids, &now)
			})
			if err != nil {
				return st, err
			}
		}
	}
	err = s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		g, err = s.readGroup(ctx, tx, d, g, full, now)
		return err
	})
	if err != nil {
		return st, err
	}
	snap := rollout.Snapshot{Now: now, Devices: g.devices, KnownSignatures: g.known}
	step := d.Step
	if !advance {
		step = d.Check
	}
	dom, evs, dec, tally := step(snap)
	st.Deployment, st.Decision, st.Tally = d, dec, tally
	if len(evs) > 0 {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			cur, err := loadDeployment(ctx, tx, tenantID, id)
			if err != nil {
				return err
			}
			if cur.Version != d.Version {
				return errMovedMeanwhile
			}
			d.Deployment = dom
			if err := saveDeployment(ctx, tx, &d); err != nil {
				return err
			}
			for _, ev := range evs {
				if err := s.auditDeployment(ctx, tx, d, System, ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return DeploymentStep{}, err
		}
		*changed = true
		st.Deployment, st.Events = d, evs
	}
	if st.Deployment.State == rollout.StateActive {
		s.steps.m[id] = g
	}
	return st, nil
}

// OpenDeployments lists the active deployments of every tenant, for the server's stepping timer.
func (s *Store) OpenDeployments(ctx context.Context) ([]Deployment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deploymentColumns+deploymentJoins+`WHERE dp.state = 'active' ORDER BY dp.tenant_id, dp.seq`)
	if err != nil {
		return nil, fmt.Errorf("store.OpenDeployments: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanDeployment)
	if err != nil {
		return nil, fmt.Errorf("store.OpenDeployments: %w", err)
	}
	// The stepper forgets the groups of deployments that are no longer active.
	open := make(map[string]bool, len(out))
	for _, d := range out {
		open[d.ID] = true
	}
	s.steps.forget(open)
	return out, nil
}

// DeviceOffer is what a checking-in device should do about its group's deployment.
type DeviceOffer struct {
	Deployment Deployment
	// Offered is true when the device should install Deployment.Release: the deployment is
	// active and the device's phase is open, or it completed.
	Offered bool
}

// OfferForDevice returns the deployment that governs a claimed device's group, the latest one
// that was not aborted, and whether it offers the release to the device now. A group without
// one is ErrNotFound.
func (s *Store) OfferForDevice(ctx context.Context, tenantID, deviceID string) (DeviceOffer, error) {
	var group sql.NullString
	err := s.queryRow(ctx, `SELECT group_id FROM devices WHERE tenant_id = $1 AND id = $2`, tenantID, deviceID).Scan(&group)
	if err != nil {
		return DeviceOffer{}, fmt.Errorf("store.OfferForDevice: %w", s.mapErr(err))
	}
	if !group.Valid {
		return DeviceOffer{}, fmt.Errorf("store.OfferForDevice: %w: device %s is not in a group", ErrNotFound, deviceID)
	}
	return s.OfferForGroup(ctx, tenantID, group.String, deviceID)
}

type claimedDevice struct {
	productID, groupID, current string
}

func loadClaimedDevice(ctx context.Context, q querier, tenantID, deviceID string) (claimedDevice, error) {
	var c claimedDevice
	var product, group sql.NullString
	err := q.QueryRowContext(ctx, `SELECT product_id, group_id, current_release FROM devices WHERE tenant_id = $1 AND id = $2`,
		tenantID, deviceID).Scan(&product, &group, &c.current)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return c, fmt.Errorf("%w: device %s is not claimed by this tenant", ErrNotFound, deviceID)
		}
		return c, err
	}
	if !product.Valid || !group.Valid {
		return c, fmt.Errorf("%w: device %s is not in a device group", ErrNotFound, deviceID)
	}
	c.productID, c.groupID = product.String, group.String
	return c, nil
}

// UnknownRelease is the release coverage records for a claimed device that has not reported one;
// it never counts as covered (coverage.Unknown).
const UnknownRelease = coverage.Unknown

// AppendCoverageEvent records, inside tx, that from now on a device runs release in a group; an
// empty release records that it left the group. The claim and move verbs call it with the old
// group and "" and the new group and the device's release, so coverage follows group changes.
// A device's events get strictly increasing times, so two changes within one clock tick keep
// their order on every database.
func (s *Store) AppendCoverageEvent(ctx context.Context, tx *sql.Tx, tenantID, productID, groupID, deviceID, release string) error {
	at := micros(s.Now())
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(at) FROM coverage_events WHERE device_id = $1`, deviceID).Scan(&last); err != nil {
		return err
	}
	if last.Valid && at <= last.Int64 {
		at = last.Int64 + 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO coverage_events (tenant_id, product_id, group_id, device_id, release_version, at)
		VALUES ($1, $2, $3, $4, $5, $6)`, tenantID, productID, groupID, deviceID, release, at)
	return err
}

// RecordDeviceRelease stores the release a claimed device reports running. A change appends a
// coverage event, and when a deployment of that release to the group was not aborted the
// device's outcome in it becomes installed.
func (s *Store) RecordDeviceRelease(ctx context.Context, tenantID, deviceID, release string) error {
	if err := checkRelease(release); err != nil {
		return fmt.Errorf("store.RecordDeviceRelease: %w", err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return s.recordDeviceRelease(ctx, tx, tenantID, deviceID, release)
	})
	if err != nil {
		return fmt.Errorf("store.RecordDeviceRelease: %w", s.mapErr(err))
	}
	return nil
}

// recordDeviceRelease is RecordDeviceRelease inside tx.
func (s *Store) recordDeviceRelease(ctx context.Context, tx *sql.Tx, tenantID, deviceID, release string) error {
	dev, err := loadClaimedDevice(ctx, tx, tenantID, deviceID)
	if err != nil {
		return err
	}
	now := s.Now()
	if dev.current != release {
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET current_release = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4`,
			release, micros(now), tenantID, deviceID); err != nil {
			return err
		}
		if err := s.AppendCoverageEvent(ctx, tx, tenantID, dev.productID, dev.groupID, deviceID, release); err != nil {
			return err
		}
	}
	return s.recordOutcome(ctx, tx, tenantID, deviceID, dev.groupID, release, rollout.InstallInstalled, "", now)
}

// MaxInstallDetail bounds the text a device sends with a failed install.
const MaxInstallDetail = 1000

// RecordInstallFailure stores that a claimed device failed to install (or rolled back) release,
// the release of its group's latest deployment that was not aborted. Reporting a release that
// was never deployed to the device's group is ErrNotFound.
func (s *Store) RecordInstallFailure(ctx context.Context, tenantID, deviceID, release, detail string) error {
	if err := checkRelease(release); err != nil {
		return fmt.Errorf("store.RecordInstallFailure: %w", err)
	}
	detail = strings.ToValidUTF8(detail, "")
	if len(detail) > MaxInstallDetail {
		detail = detail[:MaxInstallDetail]
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		dev, err := loadClaimedDevice(ctx, tx, tenantID, deviceID)
		if err != nil {
			return err
		}
		var id string
		err = tx.QueryRowContext(ctx, `SELECT id FROM deployments WHERE group_id = $1 AND release_version = $2 AND state <> 'aborted'
			ORDER BY seq DESC LIMIT 1`, dev.groupID, release).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no deployment of %s to the device's group", ErrNotFound, release)
		} else if err != nil {
			return err
		}
		return s.recordOutcome(ctx, tx, tenantID, deviceID, dev.groupID, release, rollout.InstallFailed, detail, s.Now())
	})
	if err != nil {
		return fmt.Errorf("store.RecordInstallFailure: %w", s.mapErr(err))
	}
	return nil
}

// recordOutcome sets the device's outcome in the group's latest deployment of release that was
// not aborted, if any.
// A device installed stays installed; a failure after success is not recorded over it.
func (s *Store) recordOutcome(ctx context.Context, tx *sql.Tx, tenantID, deviceID, groupID, release string, install rollout.InstallState, detail string, now time.Time) error {
	var depID, planJSON string
	err := tx.QueryRowContext(ctx, `SELECT id, plan FROM deployments WHERE group_id = $1 AND release_version = $2 AND state <> 'aborted'
		ORDER BY seq DESC LIMIT 1`, groupID, release).Scan(&depID, &planJSON)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE deployment_devices SET install = $1, detail = $2, reported_at = $3
		WHERE deployment_id = $4 AND device_id = $5 AND install <> 'installed' AND install <> $1`,
		string(install), detail, micros(now), depID, deviceID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	// A device the deployment has not seen yet joined the group after the last step.
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployment_devices WHERE deployment_id = $1 AND device_id = $2`, depID, deviceID).Scan(&exists); err != nil {
		return err
	}
	if exists > 0 {
		return nil
	}
	var plan rollout.Plan
	if err := jsonUnmarshal(planJSON, &plan); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO deployment_devices (deployment_id, device_id, tenant_id, phase, install, detail, joined_at, reported_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, depID, deviceID, tenantID, plan.Assign(depID, deviceID), string(install), detail, micros(now))
	return err
}
