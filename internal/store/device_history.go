package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// InstallEntry is one install state a device reported, with its ID (the listing's cursor).
type InstallEntry struct {
	ID string
	InstallReport
}

// ListInstallReports lists one page of a device's install reports, newest first. A device of
// another tenant is ErrNotFound.
func (s *Store) ListInstallReports(ctx context.Context, tenantID, deviceID string, p Page) ([]InstallEntry, string, error) {
	if _, err := s.DeviceByID(ctx, tenantID, deviceID); err != nil {
		return nil, "", fmt.Errorf("store.ListInstallReports: %w", err)
	}
	at, id, err := timeCursor(p.After)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListInstallReports: %w", err)
	}
	rows, err := s.query(ctx, `SELECT id, state, release, reason, at FROM install_reports
		WHERE device_id = $1 AND tenant_id = $2 AND ($3 = 0 OR (at, id) < ($3, $4))
		ORDER BY at DESC, id DESC LIMIT $5`, deviceID, tenantID, at, id, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListInstallReports: %w", err)
	}
	out, err := scanAll(rows, func(r rowScanner) (InstallEntry, error) {
		var e InstallEntry
		var at int64
		err := r.Scan(&e.ID, &e.State, &e.Release, &e.Reason, &at)
		e.At = fromMicros(at)
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("store.ListInstallReports: %w", err)
	}
	out, next := trimPage(out, p, func(e InstallEntry) string { return strconv.FormatInt(micros(e.At), 10) + ":" + e.ID })
	return out, next, nil
}

// DeviceCrash is one crash report a device filed, as accepted.
type DeviceCrash struct {
	ReportID     string
	GroupID      string
	Signature    string
	Release      string
	DeploymentID string
	Phase        int
	CrashedAt    time.Time
	ReceivedAt   time.Time
	Report       string // the report as the device sent it (JSON)
}

// ListDeviceCrashes lists one page of a device's crash reports, newest first. A device of
// another tenant is ErrNotFound.
func (s *Store) ListDeviceCrashes(ctx context.Context, tenantID, deviceID string, p Page) ([]DeviceCrash, string, error) {
	if _, err := s.DeviceByID(ctx, tenantID, deviceID); err != nil {
		return nil, "", fmt.Errorf("store.ListDeviceCrashes: %w", err)
	}
	at, id, err := timeCursor(p.After)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDeviceCrashes: %w", err)
	}
	rows, err := s.query(ctx, `SELECT report_id, group_id, signature, release_version, deployment_id, phase, crashed_at, received_at, report
		FROM failure_reports WHERE device_id = $1 AND tenant_id = $2 AND ($3 = 0 OR (crashed_at, report_id) < ($3, $4))
		ORDER BY crashed_at DESC, report_id DESC LIMIT $5`, deviceID, tenantID, at, id, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDeviceCrashes: %w", err)
	}
	out, err := scanAll(rows, func(r rowScanner) (DeviceCrash, error) {
		var c DeviceCrash
		var crashed, received int64
		err := r.Scan(&c.ReportID, &c.GroupID, &c.Signature, &c.Release, &c.DeploymentID, &c.Phase, &crashed, &received, &c.Report)
		c.CrashedAt, c.ReceivedAt = fromMicros(crashed), fromMicros(received)
		return c, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDeviceCrashes: %w", err)
	}
	out, next := trimPage(out, p, func(c DeviceCrash) string { return strconv.FormatInt(micros(c.CrashedAt), 10) + ":" + c.ReportID })
	return out, next, nil
}

// timeCursor reads a "<micros>:<id>" cursor; "" is the first page (0, "").
func timeCursor(after string) (int64, string, error) {
	if after == "" {
		return 0, "", nil
	}
	v, id, ok := strings.Cut(after, ":")
	at, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil || at <= 0 || id == "" {
		return 0, "", badCursor()
	}
	return at, id, nil
}
