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

// snapshot reads the group as the deployment sees it: its current members with their outcome,
// what they run since when, their crashes in the evidence window, and the crash signatures
// already known on the previous release.
func (s *Store) snapshot(ctx context.Context, q querier, d Deployment, now time.Time) (rollout.Snapshot, error) {
	snap := rollout.Snapshot{Now: now, KnownSignatures: map[string]bool{}}
	rows, err := q.QueryContext(ctx, `SELECT dv.id, dv.current_release, dd.install, dd.joined_at, dd.reported_at
		FROM devices dv JOIN deployment_devices dd ON dd.device_id = dv.id AND dd.deployment_id = $1
		WHERE dv.group_id = $2 AND dv.tenant_id = $3 ORDER BY dv.id`, d.ID, d.GroupID, d.TenantID)
	if err != nil {
		return snap, err
	}
	index := map[string]int{}
	for rows.Next() {
		var ds rollout.DeviceStatus
		var current, install string
		var joined, reported sql.NullInt64
		if err := rows.Scan(&ds.DeviceID, &current, &install, &joined, &reported); err != nil {
			rows.Close()
			return snap, err
		}
		ds.Install = rollout.InstallState(install)
		if joined.Valid {
			ds.JoinedAt = fromMicros(joined.Int64)
		}
		if reported.Valid {
			ds.ReportedAt = fromMicros(reported.Int64)
		}
		switch current {
		case d.Release:
			ds.Running = rollout.RunningNew
		case d.PreviousRelease:
			ds.Running = rollout.RunningPrevious
		default:
			ds.Running = rollout.RunningOther
		}
		index[ds.DeviceID] = len(snap.Devices)
		snap.Devices = append(snap.Devices, ds)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return snap, err
	}
	// When each device started running what it runs: its last coverage event in the group.
	rows, err = q.QueryContext(ctx, `SELECT device_id, MAX(at) FROM coverage_events WHERE tenant_id = $1 AND group_id = $2
		GROUP BY device_id`, d.TenantID, d.GroupID)
	if err != nil {
		return snap, err
	}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return snap, err
		}
		if i, ok := index[id]; ok {
			snap.Devices[i].RunningSince = fromMicros(at)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return snap, err
	}
	// Crashes of the group's devices in the evidence window, on the release each runs now.
	rows, err = q.QueryContext(ctx, `SELECT fr.device_id, fr.signature, fr.crashed_at, fr.release_version FROM failure_reports fr
		JOIN devices dv ON dv.id = fr.device_id
		WHERE fr.tenant_id = $1 AND dv.group_id = $2 AND fr.crashed_at >= $3 AND fr.release_version = dv.current_release`,
		d.TenantID, d.GroupID, micros(d.EvidenceSince))
	if err != nil {
		return snap, err
	}
	for rows.Next() {
		var id, sig, rel string
		var at int64
		if err := rows.Scan(&id, &sig, &at, &rel); err != nil {
			rows.Close()
			return snap, err
		}
		if i, ok := index[id]; ok {
			snap.Devices[i].Crashes = append(snap.Devices[i].Crashes, rollout.Crash{Signature: sig, At: fromMicros(at)})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return snap, err
	}
	if d.PreviousRelease != "" {
		rows, err = q.QueryContext(ctx, `SELECT DISTINCT signature FROM failure_reports
			WHERE tenant_id = $1 AND product_id = $2 AND release_version = $3`, d.TenantID, d.ProductID, d.PreviousRelease)
		if err != nil {
			return snap, err
		}
		for rows.Next() {
			var sig string
			if err := rows.Scan(&sig); err != nil {
				rows.Close()
				return snap, err
			}
			snap.KnownSignatures[sig] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return snap, err
		}
	}
	return snap, nil
}

// DeploymentStatus evaluates a deployment without changing it, for display.
func (s *Store) DeploymentStatus(ctx context.Context, tenantID, id string) (DeploymentStep, error) {
	var st DeploymentStep
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		d, err := loadDeployment(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		snap, err := s.snapshot(ctx, tx, d, s.Now())
		if err != nil {
			return err
		}
		st.Deployment = d
		st.Decision, st.Tally = d.Evaluate(snap)
		return nil
	})
	if err != nil {
		return DeploymentStep{}, fmt.Errorf("store.DeploymentStatus: %w", s.mapErr(err))
	}
	return st, nil
}

// StepDeployment picks up devices that joined the group, evaluates the criteria and moves the
// deployment by at most one transition, auditing it in the same transaction. The server's
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

func (s *Store) stepDeployment(ctx context.Context, tenantID, id string, advance bool) (DeploymentStep, error) {
	var st DeploymentStep
	changed := false
	defer func() {
		if changed {
			s.deploymentsChanged()
		}
	}()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		d, err := loadDeployment(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		now := s.Now()
		if d.State == rollout.StateActive {
			if err := s.addDeploymentMembers(ctx, tx, d, &now); err != nil {
				return err
			}
		}
		snap, err := s.snapshot(ctx, tx, d, now)
		if err != nil {
			return err
		}
		step := d.Step
		if !advance {
			step = d.Check
		}
		dom, evs, dec, tally := step(snap)
		st.Decision, st.Tally = dec, tally
		if len(evs) > 0 {
			d.Deployment, changed = dom, true
			if err := saveDeployment(ctx, tx, &d); err != nil {
				return err
			}
			for _, ev := range evs {
				if err := s.auditDeployment(ctx, tx, d, System, ev); err != nil {
					return err
				}
			}
		}
		st.Deployment, st.Events = d, evs
		return nil
	})
	if err != nil {
		return DeploymentStep{}, s.mapErr(err)
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
