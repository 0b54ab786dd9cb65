package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rampartsec/rampart/internal/program"
	"github.com/rampartsec/rampart/internal/public"
)

// Fix is a report's link to the releases it affects and the one that fixes it.
type Fix struct {
	Affected   []string
	Fixed      string
	ReleasedAt time.Time
	// RevokeAffected records, in the link's event and audit record, that the caller revokes
	// the affected releases in the same request (the API does it through the updates area).
	RevokeAffected bool
}

// ErrUnknownRelease: a fix names a version that is not a release of the report's product in
// the tenant.
var ErrUnknownRelease = errors.New("unknown release")

// linkedRelease is what a fix link needs to know of a release.
type linkedRelease struct {
	state     string
	createdAt time.Time
	signedAt  *time.Time
}

// publishedAt is when the release was published: its signing time, else its creation.
func (l linkedRelease) publishedAt() time.Time {
	if l.signedAt != nil {
		return *l.signedAt
	}
	return l.createdAt
}

// releaseOf reads a release of a tenant's product from the updates area's table.
func releaseOf(ctx context.Context, q querier, tenantID, product, version string) (linkedRelease, error) {
	var l linkedRelease
	var created int64
	var signed sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT r.state, r.created_at, r.signed_at FROM releases r JOIN products p ON p.id = r.product_id
		WHERE r.tenant_id = $1 AND p.tenant_id = $1 AND p.name = $2 AND r.version = $3`, tenantID, product, version).Scan(&l.state, &created, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		return l, public.Errorf(public.NotFound, "%w: %s has no release %s; create it with rampart release create first", ErrUnknownRelease, product, version)
	}
	if err != nil {
		return l, err
	}
	l.createdAt = fromMicros(created)
	if signed.Valid {
		t := fromMicros(signed.Int64)
		l.signedAt = &t
	}
	return l, nil
}

// LinkFix links a valid report to the releases of its product it affects and to the release
// that fixes it; a triaged report becomes resolved. Every version must be a release of the
// report's product in the tenant (ErrUnknownRelease otherwise), and the fix may not be a
// revoked release. The fix's release time is fix.ReleasedAt, or when zero the fix release's
// signing time (its creation time while unsigned). It records the first coverage sample.
// Linking again replaces the links. Nothing is written when it fails.
func (s *Store) LinkFix(ctx context.Context, actor Actor, tenantID string, number int64, fix Fix) (Report, error) {
	var r Report
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = s.reportForUpdate(ctx, tx, tenantID, number); err != nil {
			return err
		}
		if r.State != program.StateTriaged && r.State != program.StateResolved {
			return public.Errorf(public.Conflict, "%w: report %d is %s; only triaged or resolved reports get a fix", program.ErrInvalidTransition, number, r.State.Describe())
		}
		fixed, err := releaseOf(ctx, tx, tenantID, r.Product, fix.Fixed)
		if err != nil {
			return err
		}
		if fixed.state == "revoked" {
			return stateErrorf("release %s is revoked; a revoked release cannot be the fix", fix.Fixed)
		}
		for _, v := range fix.Affected {
			if _, err := releaseOf(ctx, tx, tenantID, r.Product, v); err != nil {
				return err
			}
		}
		if fix.ReleasedAt.IsZero() {
			fix.ReleasedAt = fixed.publishedAt()
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM report_releases WHERE report_id = $1`, r.ID); err != nil {
			return err
		}
		for _, v := range fix.Affected {
			if _, err := tx.ExecContext(ctx, `INSERT INTO report_releases (tenant_id, report_id, version, role) VALUES ($1, $2, $3, 'affected')`,
				tenantID, r.ID, v); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO report_releases (tenant_id, report_id, version, role, released_at) VALUES ($1, $2, $3, 'fixed', $4)`,
			tenantID, r.ID, fix.Fixed, micros(fix.ReleasedAt.UTC())); err != nil {
			return err
		}
		details := Details{"affected": fix.Affected, "fixed": fix.Fixed, "released_at": fix.ReleasedAt.UTC().Format(time.RFC3339)}
		if fix.RevokeAffected {
			details["revoke_affected"] = true
		}
		if err := s.event(ctx, tx, actor, r, "link_fix", r.State, r.State, details); err != nil {
			return err
		}
		if _, err := s.sampleCoverage(ctx, tx, r); err != nil {
			return err
		}
		if r.State == program.StateTriaged {
			p, err := s.programByName(ctx, tx, tenantID, r.ProgramName)
			if err != nil {
				return err
			}
			return s.transition(ctx, tx, actor, p.Rules, &r, Transition{To: program.StateResolved})
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("store.LinkFix: %w", s.mapErr(err))
	}
	return r, nil
}

// ReportFix returns a report's fix links; a report without a fix is ErrNotFixed.
func (s *Store) ReportFix(ctx context.Context, tenantID string, number int64) (Fix, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return Fix{}, fmt.Errorf("store.ReportFix: %w", err)
	}
	f, err := s.reportFix(ctx, s.db, r.ID)
	if err != nil {
		return Fix{}, fmt.Errorf("store.ReportFix: %w", err)
	}
	return f, nil
}

func (s *Store) reportFix(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, reportID string) (Fix, error) {
	rows, err := q.QueryContext(ctx, `SELECT version, role, released_at FROM report_releases WHERE report_id = $1 ORDER BY role, version`, reportID)
	if err != nil {
		return Fix{}, err
	}
	defer rows.Close()
	var f Fix
	for rows.Next() {
		var v, role string
		var at sql.NullInt64
		if err := rows.Scan(&v, &role, &at); err != nil {
			return Fix{}, err
		}
		if role == "fixed" {
			f.Fixed = v
			f.ReleasedAt = fromMicros(at.Int64)
		} else {
			f.Affected = append(f.Affected, v)
		}
	}
	if err := rows.Err(); err != nil {
		return Fix{}, err
	}
	if f.Fixed == "" {
		return Fix{}, public.Errorf(public.Conflict, "%w", ErrNotFixed)
	}
	return f, nil
}

// AffectedRelease is a release of a product that fixed reports name as affected.
type AffectedRelease struct {
	Version string
	Reports []int64 // the reports, by number
	FixedIn []string
}

// AffectedReleases lists the releases of a tenant's product that reports with a linked fix
// name as affected, by version: what the update side revokes.
func (s *Store) AffectedReleases(ctx context.Context, tenantID, product string) ([]AffectedRelease, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT a.version, r.number, f.version FROM report_releases a
		JOIN reports r ON r.id = a.report_id
		JOIN report_releases f ON f.report_id = a.report_id AND f.role = 'fixed'
		WHERE a.tenant_id = $1 AND r.product = $2 AND a.role = 'affected'
		ORDER BY a.version, r.number`, tenantID, product)
	if err != nil {
		return nil, fmt.Errorf("store.AffectedReleases: %w", err)
	}
	defer rows.Close()
	var out []AffectedRelease
	for rows.Next() {
		var v, fixed string
		var n int64
		if err := rows.Scan(&v, &n, &fixed); err != nil {
			return nil, fmt.Errorf("store.AffectedReleases: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Version != v {
			out = append(out, AffectedRelease{Version: v})
		}
		last := &out[len(out)-1]
		last.Reports = append(last.Reports, n)
		if !slices.Contains(last.FixedIn, fixed) {
			last.FixedIn = append(last.FixedIn, fixed)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store.AffectedReleases: %w", err)
	}
	return out, nil
}
