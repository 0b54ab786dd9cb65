package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// OpenReports counts a tenant's open reports (new, triaged, needs more information) of one
// severity, with their response clocks.
type OpenReports struct {
	Severity string // critical, high, medium, low, none, or "" when not yet scored
	Reports  int
	Oldest   time.Time // the oldest open report's submission
	// AwaitingResponse counts the reports without a first response from the team, the oldest
	// submitted at OldestAwaitingResponse; AwaitingTriage those not yet triaged.
	AwaitingResponse       int
	OldestAwaitingResponse *time.Time
	AwaitingTriage         int
	OldestAwaitingTriage   *time.Time
}

// OpenReportSummary groups a tenant's open reports by severity, most severe first.
func (s *Store) OpenReportSummary(ctx context.Context, tenantID string) ([]OpenReports, error) {
	rows, err := s.query(ctx, `SELECT severity, COUNT(*), MIN(submitted_at),
			SUM(CASE WHEN first_response_at IS NULL THEN 1 ELSE 0 END), MIN(CASE WHEN first_response_at IS NULL THEN submitted_at END),
			SUM(CASE WHEN triaged_at IS NULL THEN 1 ELSE 0 END), MIN(CASE WHEN triaged_at IS NULL THEN submitted_at END)
		FROM reports WHERE tenant_id = $1 AND state IN ('new', 'triaged', 'needs_more_info')
		GROUP BY severity
		ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 WHEN 'none' THEN 4 ELSE 5 END`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("store.OpenReportSummary: %w", err)
	}
	out, err := scanAll(rows, func(r rowScanner) (OpenReports, error) {
		var o OpenReports
		var oldest int64
		var resp, triage sql.NullInt64
		err := r.Scan(&o.Severity, &o.Reports, &oldest, &o.AwaitingResponse, &resp, &o.AwaitingTriage, &triage)
		o.Oldest, o.OldestAwaitingResponse, o.OldestAwaitingTriage = fromMicros(oldest), fromNullMicros(resp), fromNullMicros(triage)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("store.OpenReportSummary: %w", err)
	}
	return out, nil
}
