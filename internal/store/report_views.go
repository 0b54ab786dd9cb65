package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/rampartsec/rampart/internal/program"
)

// ReportTimeline gathers the timestamps and coverage history the metrics need.
func (s *Store) ReportTimeline(ctx context.Context, tenantID string, number int64) (program.Timeline, error) {
	r, err := s.ReportByNumber(ctx, tenantID, number)
	if err != nil {
		return program.Timeline{}, fmt.Errorf("store.ReportTimeline: %w", err)
	}
	t, _, err := s.timeline(ctx, r)
	if err != nil {
		return program.Timeline{}, fmt.Errorf("store.ReportTimeline: %w", err)
	}
	return t, nil
}

// timeline returns the report's timeline and its fix (nil when none).
func (s *Store) timeline(ctx context.Context, r Report) (program.Timeline, *Fix, error) {
	t := program.Timeline{SubmittedAt: r.SubmittedAt,
		FirstResponseAt: derefTime(r.FirstResponseAt), TriagedAt: derefTime(r.TriagedAt), AwardedAt: derefTime(r.AwardedAt)}
	f, err := s.reportFix(ctx, s.db, r.ID)
	switch {
	case errors.Is(err, ErrNotFixed):
		return t, nil, nil
	case err != nil:
		return program.Timeline{}, nil, err
	}
	t.FixReleasedAt = f.ReleasedAt
	// The fleet's recorded history of releases is exact; the periodic samples are the fallback
	// for products whose devices have no history.
	if t.Coverage, err = s.historyCoverage(ctx, r, f); err != nil {
		return program.Timeline{}, nil, err
	}
	if t.Coverage == nil {
		if t.Coverage, err = s.coverageHistory(ctx, r.ID); err != nil {
			return program.Timeline{}, nil, err
		}
	}
	return t, &f, nil
}

// ReportDetail is everything the triage team's view of a report shows.
type ReportDetail struct {
	Report   Report
	Ledger   Ledger
	Fix      *Fix                   // nil until a fix is linked
	Current  program.CoverageSample // the fix's coverage now (zero without a fix)
	Unknown  int64                  // of Current's devices, those that never reported a release (not covered)
	Exposed  []string               // devices not covered (on an affected release or unknown), at most the limit asked
	Revoked  []string               // the affected releases that are revoked
	Timeline program.Timeline
}

// ReportDetail reads a report with its ledger, fix, current coverage, up to exposedLimit
// exposed devices and its timeline.
func (s *Store) ReportDetail(ctx context.Context, tenantID string, number int64, exposedLimit int) (ReportDetail, error) {
	var d ReportDetail
	var err error
	if d.Report, err = s.ReportByNumber(ctx, tenantID, number); err != nil {
		return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
	}
	if d.Ledger, err = s.ledger(ctx, s.db, d.Report.ID); err != nil {
		return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
	}
	if d.Timeline, d.Fix, err = s.timeline(ctx, d.Report); err != nil {
		return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
	}
	if d.Fix != nil {
		if d.Current, d.Unknown, err = s.countCoverage(ctx, s.db, d.Report, *d.Fix); err != nil {
			return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
		}
		if d.Exposed, err = s.exposedDevices(ctx, d.Report, *d.Fix, exposedLimit); err != nil {
			return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
		}
		for _, v := range d.Fix.Affected {
			l, err := releaseOf(ctx, s.db, tenantID, d.Report.Product, v)
			if errors.Is(err, ErrUnknownRelease) {
				continue // links made before releases were checked
			}
			if err != nil {
				return ReportDetail{}, fmt.Errorf("store.ReportDetail: %w", err)
			}
			if l.state == "revoked" {
				d.Revoked = append(d.Revoked, v)
			}
		}
	}
	return d, nil
}

// ProgramFacts gathers what program.Summarize needs: every applicant and every report.
func (s *Store) ProgramFacts(ctx context.Context, tenantID, programName string) (Program, []program.ResearcherFacts, []program.ReportFacts, error) {
	p, err := s.ProgramByName(ctx, tenantID, programName)
	if err != nil {
		return Program{}, nil, nil, fmt.Errorf("store.ProgramFacts: %w", err)
	}
	var applicants []program.ResearcherFacts
	for pg := (Page{Limit: MaxPageSize}); ; {
		as, next, err := s.ListApplications(ctx, tenantID, programName, pg)
		if err != nil {
			return Program{}, nil, nil, fmt.Errorf("store.ProgramFacts: %w", err)
		}
		for _, a := range as {
			if a.Status == ApplicationInvited {
				continue // an invitation is not an application until completed
			}
			applicants = append(applicants, program.ResearcherFacts{Country: a.Country, Accepted: a.Status == ApplicationAccepted})
		}
		if next == "" {
			break
		}
		pg.After = next
	}
	var reports []program.ReportFacts
	for pg := (Page{Limit: MaxPageSize}); ; {
		rs, next, err := s.ListReports(ctx, tenantID, ReportFilter{Program: programName}, pg)
		if err != nil {
			return Program{}, nil, nil, fmt.Errorf("store.ProgramFacts: %w", err)
		}
		for _, r := range rs {
			f := program.ReportFacts{State: r.State, Severity: r.Severity}
			l, err := s.ledger(ctx, s.db, r.ID)
			if err != nil {
				return Program{}, nil, nil, fmt.Errorf("store.ProgramFacts: %w", err)
			}
			f.Award, f.Awarded = l.Awarded()
			if f.Timeline, _, err = s.timeline(ctx, r); err != nil {
				return Program{}, nil, nil, fmt.Errorf("store.ProgramFacts: %w", err)
			}
			f.FixLinked = !f.Timeline.FixReleasedAt.IsZero()
			reports = append(reports, f)
		}
		if next == "" {
			break
		}
		pg.After = next
	}
	return p, applicants, reports, nil
}
