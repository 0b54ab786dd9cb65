package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// InstallReport is one install state a device reported.
type InstallReport struct {
	State   string
	Release string
	Reason  string
	At      time.Time
}

// AddInstallReport records a device's install state and that the device was seen. With
// current, rep.Release becomes the device's current release; with audited, the report is
// appended to the tenant's audit chain as "device.install.<state>", in the same transaction.
func (s *Store) AddInstallReport(ctx context.Context, tenantID, deviceID string, rep InstallReport, current, audited bool) error {
	ctx = s.quick(ctx)
	err := s.groupTx(ctx, func(tx *sql.Tx) error {
		return s.addInstallReport(ctx, tx, tenantID, deviceID, rep, current, audited)
	})
	if err != nil {
		return fmt.Errorf("store.AddInstallReport: %w", s.mapErr(err))
	}
	return nil
}

// ReportCommitted records, in one transaction, a device's report that rep.Release is committed:
// for a claimed device what RecordDeviceRelease records (its current release, a coverage event,
// its deployment's outcome), for one outside a group the release as its current one, and in
// both cases the report and its audit record (AddInstallReport). It reports whether the device
// was claimed into a group.
func (s *Store) ReportCommitted(ctx context.Context, tenantID, deviceID string, rep InstallReport) (bool, error) {
	if err := checkRelease(rep.Release); err != nil {
		return false, fmt.Errorf("store.ReportCommitted: %w", err)
	}
	claimed := true
	ctx = s.quick(ctx)
	err := s.groupTx(ctx, func(tx *sql.Tx) error {
		claimed = true
		err := s.recordDeviceRelease(ctx, tx, tenantID, deviceID, rep.Release)
		if errors.Is(err, ErrNotFound) {
			claimed = false
		} else if err != nil {
			return err
		}
		return s.addInstallReport(ctx, tx, tenantID, deviceID, rep, !claimed, true)
	})
	if err != nil {
		return false, fmt.Errorf("store.ReportCommitted: %w", s.mapErr(err))
	}
	return claimed, nil
}

// addInstallReport is AddInstallReport inside tx.
func (s *Store) addInstallReport(ctx context.Context, tx *sql.Tx, tenantID, deviceID string, rep InstallReport, current, audited bool) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO install_reports (id, device_id, tenant_id, state, release, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		newOrderedID("ins", rep.At), deviceID, tenantID, rep.State, rep.Release, rep.Reason, micros(rep.At)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen_at = $1, updated_at = $1 WHERE id = $2 AND tenant_id = $3`, micros(rep.At), deviceID, tenantID); err != nil {
		return err
	}
	if current {
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET current_release = $1 WHERE id = $2 AND tenant_id = $3`, rep.Release, deviceID, tenantID); err != nil {
			return err
		}
	}
	if !audited {
		return nil
	}
	return s.appendAudit(ctx, tx, tenantID, Actor("device:"+deviceID), "device.install."+rep.State, "device/"+deviceID,
		Details{"release": rep.Release, "reason": rep.Reason})
}

// LatestInstall returns the last install state a device reported; ErrNotFound when it never
// reported one.
func (s *Store) LatestInstall(ctx context.Context, tenantID, deviceID string) (InstallReport, error) {
	var rep InstallReport
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT state, release, reason, at FROM install_reports
		WHERE device_id = $1 AND tenant_id = $2 ORDER BY at DESC, id DESC LIMIT 1`, deviceID, tenantID).Scan(&rep.State, &rep.Release, &rep.Reason, &at)
	if err != nil {
		return InstallReport{}, fmt.Errorf("store.LatestInstall: %w", s.mapErr(err))
	}
	rep.At = fromMicros(at)
	return rep, nil
}

// CountInstallReporters counts the devices of a group that reported the install state for
// release at or after since.
func (s *Store) CountInstallReporters(ctx context.Context, tenantID, groupID, release, state string, since time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(DISTINCT ir.device_id) FROM install_reports ir
		JOIN devices d ON d.id = ir.device_id
		WHERE ir.tenant_id = $1 AND d.group_id = $2 AND ir.release = $3 AND ir.state = $4 AND ir.at >= $5`,
		tenantID, groupID, release, state, micros(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store.CountInstallReporters: %w", err)
	}
	return n, nil
}
