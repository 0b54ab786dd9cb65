package release

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
)

// Install states a device reports, in the order of a successful update.
const (
	InstallDownloading = string(deviceapi.InstallDownloading)
	InstallInstalling  = string(deviceapi.InstallInstalling)
	InstallInstalled   = string(deviceapi.InstallInstalled)
	InstallCommitted   = string(deviceapi.InstallCommitted)
	InstallFailed      = string(deviceapi.InstallFailed)
	InstallInterrupted = string(deviceapi.InstallInterrupted)
	InstallRebooting   = string(deviceapi.InstallRebooting)
	InstallRolledBack  = string(deviceapi.InstallRolledBack)
)

// Failed reports whether an install state counts against the release (failed, rolled back).
func Failed(state string) bool { return state == InstallFailed || state == InstallRolledBack }

// InstallReport is one state a device reported.
type InstallReport = store.InstallReport

// MaxReasonLength caps the failure reason a device may send.
const MaxReasonLength = deviceapi.MaxInstallReason

// ReportInstall records a device's install state and feeds the rollout
// engine (store.RecordDeviceRelease, store.RecordInstallFailure). A
// committed release becomes the device's current release; committed,
// failed and interrupted states are audited. An interrupted install is not
// an outcome of the deployment: the device stays pending until it reports
// the release committed or failed.
func (s *Service) ReportInstall(ctx context.Context, tenantID, deviceID string, rep InstallReport) (InstallReport, error) {
	if err := ValidateInstall(rep); err != nil {
		return InstallReport{}, fmt.Errorf("release.ReportInstall: %w", err)
	}
	rep.At = s.now()
	// The rollout engine's view comes first: a committed release becomes
	// the device's current release (with a coverage event) and the outcome
	// of its group's open deployment; a failure is that deployment's
	// outcome too. Devices outside a group, or releases not being deployed,
	// are only recorded here.
	switch {
	case rep.State == InstallCommitted:
		// The rollout engine's view, the report and its audit record in one transaction.
		if _, err := s.cfg.Store.ReportCommitted(ctx, tenantID, deviceID, rep); err != nil {
			return InstallReport{}, fmt.Errorf("release.ReportInstall: %w", fromStore(err))
		}
		return rep, nil
	case Failed(rep.State) && rep.Release != "":
		if err := s.cfg.Store.RecordInstallFailure(ctx, tenantID, deviceID, rep.Release, rep.Reason); err != nil && !errors.Is(err, store.ErrNotFound) {
			return InstallReport{}, fmt.Errorf("release.ReportInstall: %w", err)
		}
	}
	// Failed (and rolled back) and interrupted states are audited.
	audited := Failed(rep.State) || rep.State == InstallInterrupted
	if err := s.cfg.Store.AddInstallReport(ctx, tenantID, deviceID, rep, false, audited); err != nil {
		return InstallReport{}, fmt.Errorf("release.ReportInstall: %w", fromStore(err))
	}
	return rep, nil
}

// ValidateInstall checks an install report from a device: a known state,
// a well-formed release (required when committed) and a short printable
// reason.
func ValidateInstall(rep InstallReport) error {
	switch rep.State {
	case InstallDownloading, InstallInstalling, InstallInstalled, InstallRebooting, InstallCommitted, InstallFailed, InstallRolledBack, InstallInterrupted:
	default:
		return refuse("state %q", rep.State)
	}
	if rep.Release != "" && !deviceapi.ValidVersion(rep.Release) {
		return refuse("release %q", rep.Release)
	}
	if rep.State == InstallCommitted && rep.Release == "" {
		return refuse("a committed state names its release")
	}
	if len(rep.Reason) > MaxReasonLength || !utf8.ValidString(rep.Reason) || strings.ContainsFunc(rep.Reason, func(r rune) bool { return r < 0x20 && r != '\t' }) {
		return refuse("reason must be printable text of at most %d bytes", MaxReasonLength)
	}
	return nil
}

// LatestInstall returns the last install state a device reported, or
// ErrNotFound when it never reported one.
func (s *Service) LatestInstall(ctx context.Context, tenantID, deviceID string) (InstallReport, error) {
	rep, err := s.cfg.Store.LatestInstall(ctx, tenantID, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return InstallReport{}, fmt.Errorf("release.LatestInstall: %w", ErrNotFound)
	}
	if err != nil {
		return InstallReport{}, fmt.Errorf("release.LatestInstall: %w", err)
	}
	return rep, nil
}

// Interrupted counts the devices of a group that reported an interrupted install of release
// since the given time (a deployment's creation).
func (s *Service) Interrupted(ctx context.Context, tenantID, groupID, release string, since time.Time) (int, error) {
	n, err := s.cfg.Store.CountInstallReporters(ctx, tenantID, groupID, release, InstallInterrupted, since)
	if err != nil {
		return 0, fmt.Errorf("release.Interrupted: %w", err)
	}
	return n, nil
}
