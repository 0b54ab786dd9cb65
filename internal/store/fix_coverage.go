package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/rampartsec/rampart/internal/coverage"
	"github.com/rampartsec/rampart/internal/program"
)

// countCoverage counts the report's product's claimed devices and those covered by the fix, at
// the store's now: a device is covered when it reports running a release not listed as
// affected. A device that never reported a release is counted in Total but not covered, so
// unknown never passes for fixed; unknown says how many such devices there are.
func (s *Store) countCoverage(ctx context.Context, q querier, r Report, f Fix) (sample program.CoverageSample, unknown int64, err error) {
	sample = program.CoverageSample{At: s.Now()}
	args := []any{r.TenantID, r.Product, UnknownRelease}
	ph := make([]string, len(f.Affected))
	for i, v := range f.Affected {
		args = append(args, v)
		ph[i] = fmt.Sprintf(", $%d", i+4)
	}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN d.current_release NOT IN ('', $3`+strings.Join(ph, "")+`) THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN d.current_release IN ('', $3) THEN 1 ELSE 0 END), 0)
		FROM devices d JOIN products p ON p.id = d.product_id
		WHERE d.tenant_id = $1 AND p.name = $2`, args...).Scan(&sample.Total, &sample.Covered, &unknown); err != nil {
		return program.CoverageSample{}, 0, err
	}
	return sample, unknown, nil
}

// sampleCoverage counts the coverage of the report's fix now and stores the sample.
func (s *Store) sampleCoverage(ctx context.Context, tx *sql.Tx, r Report) (program.CoverageSample, error) {
	f, err := s.reportFix(ctx, tx, r.ID)
	if err != nil {
		return program.CoverageSample{}, err
	}
	sample, _, err := s.countCoverage(ctx, tx, r, f)
	if err != nil {
		return program.CoverageSample{}, err
	}
	// One sample per instant: a second sample at the same microsecond replaces the first.
	if _, err := tx.ExecContext(ctx, `DELETE FROM report_coverage WHERE report_id = $1 AND at = $2`, r.ID, micros(sample.At)); err != nil {
		return program.CoverageSample{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO report_coverage (tenant_id, report_id, at, covered, total) VALUES ($1, $2, $3, $4, $5)`,
		r.TenantID, r.ID, micros(sample.At), sample.Covered, sample.Total); err != nil {
		return program.CoverageSample{}, err
	}
	return sample, nil
}

// CurrentCoverage counts the coverage of a report's fix now, without recording it.
func (s *Store) CurrentCoverage(ctx context.Context, tenantID string, number int64) (program.CoverageSample, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return program.CoverageSample{}, fmt.Errorf("store.CurrentCoverage: %w", err)
	}
	f, err := s.reportFix(ctx, s.db, r.ID)
	if err != nil {
		return program.CoverageSample{}, fmt.Errorf("store.CurrentCoverage: %w", err)
	}
	c, _, err := s.countCoverage(ctx, s.db, r, f)
	if err != nil {
		return program.CoverageSample{}, fmt.Errorf("store.CurrentCoverage: %w", err)
	}
	return c, nil
}

// SampleCoverage records the current coverage of a report's fix and returns it.
func (s *Store) SampleCoverage(ctx context.Context, tenantID string, number int64) (program.CoverageSample, error) {
	var out program.CoverageSample
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.reportForUpdate(ctx, tx, tenantID, number)
		if err != nil {
			return err
		}
		out, err = s.sampleCoverage(ctx, tx, r)
		return err
	})
	if err != nil {
		return program.CoverageSample{}, fmt.Errorf("store.SampleCoverage: %w", s.mapErr(err))
	}
	return out, nil
}

// SampleAllCoverage records a coverage sample for every fixed report whose fix has not yet
// reached the whole fleet; the server runs it periodically. It returns how many it sampled.
func (s *Store) SampleAllCoverage(ctx context.Context) (int, error) {
	todo, err := s.reportKeys(ctx, `SELECT r.tenant_id, r.number FROM reports r
		WHERE EXISTS (SELECT 1 FROM report_releases f WHERE f.report_id = r.id AND f.role = 'fixed')
		AND NOT EXISTS (SELECT 1 FROM report_coverage c WHERE c.report_id = r.id AND c.total > 0 AND c.covered = c.total)`)
	if err != nil {
		return 0, fmt.Errorf("store.SampleAllCoverage: %w", err)
	}
	for _, k := range todo {
		if _, err := s.SampleCoverage(ctx, k.tenant, k.number); err != nil {
			return 0, fmt.Errorf("store.SampleAllCoverage: %w", err)
		}
	}
	return len(todo), nil
}

// CoverageHistory returns a report's coverage samples, oldest first.
func (s *Store) CoverageHistory(ctx context.Context, tenantID string, number int64) ([]program.CoverageSample, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return nil, fmt.Errorf("store.CoverageHistory: %w", err)
	}
	out, err := s.coverageHistory(ctx, r.ID)
	if err != nil {
		return nil, fmt.Errorf("store.CoverageHistory: %w", err)
	}
	return out, nil
}

func (s *Store) coverageHistory(ctx context.Context, reportID string) ([]program.CoverageSample, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, covered, total FROM report_coverage WHERE report_id = $1 ORDER BY at`, reportID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []program.CoverageSample
	for rows.Next() {
		var c program.CoverageSample
		var at int64
		if err := rows.Scan(&at, &c.Covered, &c.Total); err != nil {
			return nil, err
		}
		c.At = fromMicros(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// ExposedDevices lists the IDs of the report's product's devices still running an affected
// release, at most limit of them.
func (s *Store) ExposedDevices(ctx context.Context, tenantID string, number int64, limit int) ([]string, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return nil, fmt.Errorf("store.ExposedDevices: %w", err)
	}
	f, err := s.reportFix(ctx, s.db, r.ID)
	if err != nil {
		return nil, fmt.Errorf("store.ExposedDevices: %w", err)
	}
	out, err := s.exposedDevices(ctx, r, f, limit)
	if err != nil {
		return nil, fmt.Errorf("store.ExposedDevices: %w", err)
	}
	return out, nil
}

func (s *Store) exposedDevices(ctx context.Context, r Report, f Fix, limit int) ([]string, error) {
	out := []string{}
	args := []any{r.TenantID, r.Product, limit, UnknownRelease}
	ph := make([]string, len(f.Affected))
	for i, v := range f.Affected {
		args = append(args, v)
		ph[i] = fmt.Sprintf(", $%d", i+5)
	}
	// Not covered: on an affected release, or never reported one.
	rows, err := s.db.QueryContext(ctx, `SELECT d.id FROM devices d JOIN products p ON p.id = d.product_id
		WHERE d.tenant_id = $1 AND p.name = $2 AND d.current_release IN ('', $4`+strings.Join(ph, "")+`) ORDER BY d.id LIMIT $3`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// historyCoverage derives the coverage of a fix from the product's coverage history (which
// release each device ran since when, kept by the rollouts area): one sample as the fleet stood
// when the fix was released, then one at each later instant where the covered share changed by
// at least a tenth of a percent. A device counts as covered when it runs a release not listed
// as affected, as in the samples. It returns nil when the product has no history.
func (s *Store) historyCoverage(ctx context.Context, r Report, f Fix) ([]program.CoverageSample, error) {
	events, err := s.CoverageEvents(ctx, r.TenantID, r.Product, "")
	if errors.Is(err, ErrNotFound) || len(events) == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	fixed := coverage.FixHistory(events, f.Affected, f.ReleasedAt)
	out := make([]program.CoverageSample, len(fixed))
	for i, c := range fixed {
		out[i] = program.CoverageSample{At: c.At, Covered: c.Covered, Total: c.Total}
	}
	return out, nil
}
