package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rampartsec/rampart/internal/coverage"
)

// ReleaseCoverage is one release's milestones, measured from its first deployment (or, for a
// release never deployed, from its first appearance).
type ReleaseCoverage struct {
	Release string    `json:"release"`
	Since   time.Time `json:"since"`
	// Preinstalled is a version devices reported that no release of the product names: it ran
	// before Rampart managed the devices, never spread, and has no milestones.
	Preinstalled bool                 `json:"preinstalled,omitempty"`
	Milestones   []coverage.Milestone `json:"milestones"`
}

// CoverageReport is what `rampart coverage` shows.
type CoverageReport struct {
	Product  string            `json:"product"`
	Group    string            `json:"group,omitempty"`
	Now      coverage.Snapshot `json:"now"`
	Releases []ReleaseCoverage `json:"releases"`
}

// CoverageEvents returns the coverage history of a tenant's product, or of one of its groups,
// in time order.
func (s *Store) CoverageEvents(ctx context.Context, tenantID, product, group string) ([]coverage.Event, error) {
	var groupID string
	if group != "" {
		g, err := s.GroupByName(ctx, tenantID, product, group)
		if err != nil {
			return nil, fmt.Errorf("store.CoverageEvents: %w", err)
		}
		groupID = g.ID
	}
	p, err := s.ProductByName(ctx, tenantID, product)
	if err != nil {
		return nil, fmt.Errorf("store.CoverageEvents: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT at, device_id, release_version FROM coverage_events
		WHERE tenant_id = $1 AND product_id = $2 AND ($3 = '' OR group_id = $3) ORDER BY at`, tenantID, p.ID, groupID)
	if err != nil {
		return nil, fmt.Errorf("store.CoverageEvents: %w", err)
	}
	defer rows.Close()
	var out []coverage.Event
	// Across the whole product a move between groups is two events at one instant (left the
	// old group, runs R in the new one); applied in that order they leave the device counted.
	for rows.Next() {
		var e coverage.Event
		var at int64
		if err := rows.Scan(&at, &e.DeviceID, &e.Release); err != nil {
			return nil, fmt.Errorf("store.CoverageEvents: %w", err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store.CoverageEvents: %w", err)
	}
	slices.SortStableFunc(out, func(a, b coverage.Event) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		// At one instant, departures before arrivals.
		switch {
		case a.Release == "" && b.Release != "":
			return -1
		case a.Release != "" && b.Release == "":
			return 1
		}
		return 0
	})
	return out, nil
}

// ReleaseOrder lists a product's releases oldest first, with the instant each one's coverage is
// measured from. Versions seen on devices but unknown to the release table (installed before
// Rampart managed them) come first, by first appearance, measured from then; then the product's
// releases in the order they were created, each measured from its first deployment, or from its
// signing or creation when it was never deployed.
func (s *Store) ReleaseOrder(ctx context.Context, tenantID, product string) ([]string, map[string]time.Time, error) {
	order, since, _, err := s.releaseOrder(ctx, tenantID, product)
	return order, since, err
}

// releaseOrder is ReleaseOrder, and how many of the first versions are unknown to the release
// table.
func (s *Store) releaseOrder(ctx context.Context, tenantID, product string) ([]string, map[string]time.Time, int, error) {
	p, err := s.ProductByName(ctx, tenantID, product)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("store.ReleaseOrder: %w", err)
	}
	since := map[string]time.Time{}
	var known []string
	rows, err := s.db.QueryContext(ctx, `SELECT r.version, COALESCE((SELECT MIN(dp.created_at) FROM deployments dp
		WHERE dp.tenant_id = r.tenant_id AND dp.product_id = r.product_id AND dp.release_version = r.version), r.signed_at, r.created_at)
		FROM releases r WHERE r.tenant_id = $1 AND r.product_id = $2 AND r.state <> 'draft' ORDER BY r.created_at, r.version`, tenantID, p.ID)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("store.ReleaseOrder: %w", err)
	}
	for rows.Next() {
		var r string
		var at int64
		if err := rows.Scan(&r, &at); err != nil {
			rows.Close()
			return nil, nil, 0, fmt.Errorf("store.ReleaseOrder: %w", err)
		}
		known = append(known, r)
		since[r] = fromMicros(at)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, 0, fmt.Errorf("store.ReleaseOrder: %w", err)
	}
	var order []string
	// A device that never reported what it runs is not on a release: "unknown" gets no place in
	// the order and no milestones.
	rows, err = s.db.QueryContext(ctx, `SELECT release_version, MIN(at) FROM coverage_events WHERE tenant_id = $1 AND product_id = $2
		AND release_version <> '' AND release_version <> $3 GROUP BY release_version ORDER BY MIN(at), release_version`, tenantID, p.ID, UnknownRelease)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("store.ReleaseOrder: %w", err)
	}
	for rows.Next() {
		var r string
		var at int64
		if err := rows.Scan(&r, &at); err != nil {
			rows.Close()
			return nil, nil, 0, fmt.Errorf("store.ReleaseOrder: %w", err)
		}
		if _, ok := since[r]; !ok {
			order = append(order, r)
			since[r] = fromMicros(at)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, 0, fmt.Errorf("store.ReleaseOrder: %w", err)
	}
	return append(order, known...), since, len(order), nil
}

// Coverage computes devices per release now, the share on the newest release, and every
// release's time to 50/90/99/100 % for a tenant's product or one of its groups.
func (s *Store) Coverage(ctx context.Context, tenantID, product, group string) (CoverageReport, error) {
	events, err := s.CoverageEvents(ctx, tenantID, product, group)
	if err != nil {
		return CoverageReport{}, fmt.Errorf("store.Coverage: %w", err)
	}
	order, since, preinstalled, err := s.releaseOrder(ctx, tenantID, product)
	if err != nil {
		return CoverageReport{}, fmt.Errorf("store.Coverage: %w", err)
	}
	rep := CoverageReport{Product: product, Group: group, Now: coverage.At(events, order, s.Now())}
	for i := len(order) - 1; i >= 0; i-- {
		r := order[i]
		if i < preinstalled {
			// It was there before Rampart, never spread: a milestone "reached" at its first
			// sighting would read as 0 s.
			rep.Releases = append(rep.Releases, ReleaseCoverage{Release: r, Since: since[r], Preinstalled: true, Milestones: []coverage.Milestone{}})
			continue
		}
		ms, err := coverage.Milestones(events, order, r, since[r], coverage.DefaultThresholds())
		if err != nil {
			return CoverageReport{}, fmt.Errorf("store.Coverage: %w", err)
		}
		rep.Releases = append(rep.Releases, ReleaseCoverage{Release: r, Since: since[r], Milestones: ms})
	}
	return rep, nil
}

// CoverageSeries is the share of a product's devices (or one group's) on release or a newer
// one over time, from the release's first deployment to now, in at most max points
// (coverage.Series). A release the product's order does not hold is ErrNotFound.
func (s *Store) CoverageSeries(ctx context.Context, tenantID, product, group, release string, max int) (time.Time, []coverage.Point, error) {
	events, err := s.CoverageEvents(ctx, tenantID, product, group)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("store.CoverageSeries: %w", err)
	}
	order, since, _, err := s.releaseOrder(ctx, tenantID, product)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("store.CoverageSeries: %w", err)
	}
	start, ok := since[release]
	if !ok {
		return time.Time{}, nil, fmt.Errorf("store.CoverageSeries: release %q: %w", release, ErrNotFound)
	}
	pts, err := coverage.Series(events, order, release, start, s.Now(), max)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("store.CoverageSeries: %w", ErrNotFound)
	}
	return start, pts, nil
}
