package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/failure"
)

// FailureGroup is a stored failure group.
type FailureGroup struct {
	failure.Group
	ID          string
	TenantID    string
	ProductID   string
	ProductName string
}

// FailureCount counts one group's reports on one release, in one deployment phase.
type FailureCount struct {
	Release      string `json:"release"`
	DeploymentID string `json:"deployment_id,omitempty"`
	Phase        int    `json:"phase"` // 1-based; 0 outside a deployment
	Reports      int64  `json:"reports"`
}

// FailureGroupDetail is a group with its counts, how many devices reported it, and its latest report.
type FailureGroupDetail struct {
	FailureGroup
	Counts  []FailureCount
	Devices int64
	Sample  deviceapi.CrashReport
}

// FailureFilter narrows a failure group listing.
type FailureFilter struct {
	Product string
	Release string // groups with reports on this release
	Status  failure.GroupStatus
}

// FailureIngest says what one batch of reports did.
type FailureIngest struct {
	Accepted   int
	Duplicates int // already received (a batch resent after a restart)
	NewGroups  []string
	Regressed  []string
}

const failureGroupColumns = `fg.id, fg.tenant_id, fg.product_id, p.name, fg.signature, fg.fault, fg.status, fg.report_count,
	fg.first_seen, fg.last_seen, fg.first_release, fg.releases, fg.resolved_at, fg.resolved_releases, fg.regressed_in, fg.regressed_at`

const failureGroupJoins = ` FROM failure_groups fg JOIN products p ON p.id = fg.product_id `

func scanFailureGroup(row interface{ Scan(...any) error }) (FailureGroup, error) {
	var g FailureGroup
	var fault, releases, resolvedReleases, status string
	var first, last int64
	var resolved, regressed sql.NullInt64
	if err := row.Scan(&g.ID, &g.TenantID, &g.ProductID, &g.ProductName, &g.Signature, &fault, &status, &g.Count,
		&first, &last, &g.FirstRelease, &releases, &resolved, &resolvedReleases, &g.RegressedIn, &regressed); err != nil {
		return FailureGroup{}, err
	}
	g.Status = failure.GroupStatus(status)
	if err := json.Unmarshal([]byte(fault), &g.Fault); err != nil {
		return FailureGroup{}, fmt.Errorf("failure group %s: %w", g.ID, err)
	}
	if err := json.Unmarshal([]byte(releases), &g.Releases); err != nil {
		return FailureGroup{}, fmt.Errorf("failure group %s: %w", g.ID, err)
	}
	if err := json.Unmarshal([]byte(resolvedReleases), &g.ResolvedReleases); err != nil {
		return FailureGroup{}, fmt.Errorf("failure group %s: %w", g.ID, err)
	}
	g.FirstSeen, g.LastSeen = fromMicros(first), fromMicros(last)
	if t := fromNullMicros(resolved); t != nil {
		g.ResolvedAt = *t
	}
	if t := fromNullMicros(regressed); t != nil {
		g.RegressedAt = *t
	}
	return g, nil
}

// toJSON encodes the failure types stored as JSON columns; they hold only strings, integers
// and times, which always encode.
func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (s *Store) saveFailureGroup(ctx context.Context, tx *sql.Tx, g FailureGroup) error {
	releases, resolved := g.Releases, g.ResolvedReleases
	if resolved == nil {
		resolved = []string{}
	}
	_, err := tx.ExecContext(ctx, `UPDATE failure_groups SET status = $1, report_count = $2, first_seen = $3, last_seen = $4,
		releases = $5, resolved_at = $6, resolved_releases = $7, regressed_in = $8, regressed_at = $9 WHERE id = $10 AND tenant_id = $11`,
		string(g.Status), g.Count, micros(g.FirstSeen), micros(g.LastSeen), toJSON(releases), microsOrNull(g.ResolvedAt),
		toJSON(resolved), g.RegressedIn, microsOrNull(g.RegressedAt), g.ID, g.TenantID)
	return err
}

// releaseAt is the release a device ran at an instant, from the coverage history; its current
// release when the history does not say.
func releaseAt(ctx context.Context, tx *sql.Tx, tenantID, deviceID, current string, at time.Time) (string, error) {
	var rel string
	err := tx.QueryRowContext(ctx, `SELECT release_version FROM coverage_events WHERE tenant_id = $1 AND device_id = $2 AND at <= $3
		AND release_version <> '' ORDER BY at DESC LIMIT 1`, tenantID, deviceID, micros(at)).Scan(&rel)
	if errors.Is(err, sql.ErrNoRows) {
		return current, nil
	}
	return rel, err
}

// AddFailureReports stores a batch of crash reports from one claimed device of the tenant (the
// caller has decoded and validated it with deviceapi.DecodeCrashBatch). Each report is attributed to
// the release the device ran when it crashed and, if a deployment brought that release to the
// device's group, to the device's phase in it; it joins the group of its signature within the
// device's product, which is created on first sight (new in that release) or reopened when it
// comes back on a release it was not seen on before it was resolved. Reports already received
// are skipped. Group creations and regressions are audited. A device that is not claimed by the
// tenant is ErrNotFound and nothing is stored.
func (s *Store) AddFailureReports(ctx context.Context, tenantID, deviceID string, reports []deviceapi.CrashReport) (FailureIngest, error) {
	var in FailureIngest
	if len(reports) > deviceapi.MaxCrashBatchReports {
		return in, fmt.Errorf("store.AddFailureReports: %w", invalid("%d reports, at most %d", len(reports), deviceapi.MaxCrashBatchReports))
	}
	for i := range reports {
		if err := reports[i].Validate(); err != nil {
			return in, fmt.Errorf("store.AddFailureReports: %w", invalid("report %d: %w", i, err))
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		in = FailureIngest{}
		dev, err := loadClaimedDevice(ctx, tx, tenantID, deviceID)
		if err != nil {
			return err
		}
		now := s.Now()
		for _, r := range reports {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM failure_reports WHERE tenant_id = $1 AND device_id = $2 AND report_id = $3`,
				tenantID, deviceID, r.ID).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				in.Duplicates++
				continue
			}
			crashed := r.Time.UTC().Truncate(time.Microsecond)
			release, err := releaseAt(ctx, tx, tenantID, deviceID, dev.current, crashed)
			if err != nil {
				return err
			}
			if release == "" {
				release = "unknown"
			}
			depID, phase := "", -1
			err = tx.QueryRowContext(ctx, `SELECT dd.deployment_id, dd.phase FROM deployment_devices dd JOIN deployments dp ON dp.id = dd.deployment_id
				WHERE dd.device_id = $1 AND dp.tenant_id = $2 AND dp.group_id = $3 AND dp.release_version = $4 ORDER BY dp.seq DESC LIMIT 1`,
				deviceID, tenantID, dev.groupID, release).Scan(&depID, &phase)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			fault := failure.Analyze(r)
			sig := fault.Signature()
			g, created, err := s.lockFailureGroup(ctx, tx, tenantID, dev.productID, fault, release, crashed)
			if err != nil {
				return err
			}
			if created {
				in.NewGroups = append(in.NewGroups, g.ID)
				if err := s.appendAudit(ctx, tx, tenantID, Actor("device:"+deviceID), "failure_group.create", "failure_group/"+g.ID,
					Details{"signature": sig, "program": fault.Program, "fault_type": fault.FaultType, "release": release}); err != nil {
					return err
				}
			} else {
				var mark failure.Mark
				g.Group, mark = g.Observe(release, crashed)
				if err := s.saveFailureGroup(ctx, tx, g); err != nil {
					return err
				}
				if mark == failure.MarkRegressed {
					in.Regressed = append(in.Regressed, g.ID)
					if err := s.appendAudit(ctx, tx, tenantID, Actor("device:"+deviceID), "failure_group.regress", "failure_group/"+g.ID,
						Details{"signature": sig, "release": release}); err != nil {
						return err
					}
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO failure_counts (group_id, release_version, deployment_id, phase, report_count)
				VALUES ($1, $2, $3, $4, 1) ON CONFLICT (group_id, release_version, deployment_id, phase)
				DO UPDATE SET report_count = failure_counts.report_count + 1`, g.ID, release, depID, phase); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO failure_reports (tenant_id, device_id, report_id, group_id, product_id, release_version,
				deployment_id, phase, signature, crashed_at, received_at, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				tenantID, deviceID, r.ID, g.ID, dev.productID, release, depID, phase, sig, micros(crashed), micros(now), toJSON(r)); err != nil {
				return err
			}
			in.Accepted++
		}
		return nil
	})
	if err != nil {
		return FailureIngest{}, fmt.Errorf("store.AddFailureReports: %w", s.mapErr(err))
	}
	return in, nil
}

// lockFailureGroup returns the group of a fault's signature, creating it from this report when
// it is the first (created is then true), with its row locked for the rest of the transaction:
// concurrent reports of one signature from many devices queue on the row instead of creating it
// twice or losing counts.
func (s *Store) lockFailureGroup(ctx context.Context, tx *sql.Tx, tenantID, productID string, fault failure.Fault, release string, at time.Time) (FailureGroup, bool, error) {
	sig := fault.Signature()
	g := FailureGroup{Group: failure.NewGroup(fault, release, at), ID: NewID("flg"), TenantID: tenantID, ProductID: productID}
	res, err := tx.ExecContext(ctx, `INSERT INTO failure_groups (id, tenant_id, product_id, signature, fault, status, report_count,
		first_seen, last_seen, first_release, releases, resolved_at, resolved_releases, regressed_in, regressed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, '[]', '', NULL)
		ON CONFLICT (tenant_id, product_id, signature) DO NOTHING`,
		g.ID, tenantID, productID, sig, toJSON(g.Fault), string(g.Status), g.Count, micros(g.FirstSeen), micros(g.LastSeen),
		g.FirstRelease, toJSON(g.Releases))
	if err != nil {
		return FailureGroup{}, false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return FailureGroup{}, false, err
	} else if n == 1 {
		return g, true, nil
	}
	// It exists: take its row lock (PostgreSQL; SQLite holds the write lock already), then read it.
	if _, err := tx.ExecContext(ctx, `UPDATE failure_groups SET report_count = report_count
		WHERE tenant_id = $1 AND product_id = $2 AND signature = $3`, tenantID, productID, sig); err != nil {
		return FailureGroup{}, false, err
	}
	g, err = scanFailureGroup(tx.QueryRowContext(ctx, `SELECT `+failureGroupColumns+failureGroupJoins+`
		WHERE fg.tenant_id = $1 AND fg.product_id = $2 AND fg.signature = $3`, tenantID, productID, sig))
	return g, false, err
}

// ListFailureGroups lists a tenant's failure groups, most recently seen first.
func (s *Store) ListFailureGroups(ctx context.Context, tenantID string, f FailureFilter, p Page) ([]FailureGroup, string, error) {
	if f.Product != "" {
		if _, err := s.ProductByName(ctx, tenantID, f.Product); err != nil {
			return nil, "", fmt.Errorf("store.ListFailureGroups: %w", err)
		}
	}
	// The cursor is the last group's ID; groups are ordered by ID so pages are stable while
	// reports keep arriving.
	rows, err := s.db.QueryContext(ctx, `SELECT `+failureGroupColumns+failureGroupJoins+`
		WHERE fg.tenant_id = $1 AND fg.id > $2 AND ($3 = '' OR p.name = $3) AND ($4 = '' OR fg.status = $4)
		AND ($5 = '' OR EXISTS (SELECT 1 FROM failure_counts fc WHERE fc.group_id = fg.id AND fc.release_version = $5))
		ORDER BY fg.id LIMIT $6`, tenantID, p.After, f.Product, string(f.Status), f.Release, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListFailureGroups: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanFailureGroup)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListFailureGroups: %w", err)
	}
	out, next := trimPage(out, p, func(g FailureGroup) string { return g.ID })
	return out, next, nil
}

// FailureGroupByID returns one of a tenant's failure groups with its counts per release and
// phase, the number of devices that reported it and its latest report.
func (s *Store) FailureGroupByID(ctx context.Context, tenantID, id string) (FailureGroupDetail, error) {
	var d FailureGroupDetail
	var err error
	d.FailureGroup, err = scanFailureGroup(s.db.QueryRowContext(ctx, `SELECT `+failureGroupColumns+failureGroupJoins+`
		WHERE fg.tenant_id = $1 AND fg.id = $2`, tenantID, id))
	if err != nil {
		return FailureGroupDetail{}, fmt.Errorf("store.FailureGroupByID: %w", s.mapErr(err))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT release_version, deployment_id, phase, report_count FROM failure_counts
		WHERE group_id = $1 ORDER BY release_version, deployment_id, phase`, id)
	if err != nil {
		return FailureGroupDetail{}, fmt.Errorf("store.FailureGroupByID: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c FailureCount
		if err := rows.Scan(&c.Release, &c.DeploymentID, &c.Phase, &c.Reports); err != nil {
			return FailureGroupDetail{}, fmt.Errorf("store.FailureGroupByID: %w", err)
		}
		c.Phase++ // stored 0-based, -1 outside a deployment
		d.Counts = append(d.Counts, c)
	}
	if err := rows.Err(); err != nil {
		return FailureGroupDetail{}, fmt.Errorf("store.FailureGroupByID: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(DISTINCT device_id) FROM failure_reports WHERE tenant_id = $1 AND group_id = $2`,
		tenantID, id).Scan(&d.Devices); err != nil {
		return FailureGroupDetail{}, fmt.Errorf("store.FailureGroupByID: %w", err)
	}
	var sample string
	err = s.db.QueryRowContext(ctx, `SELECT report FROM failure_reports WHERE tenant_id = $1 AND group_id = $2
		ORDER BY crashed_at DESC, report_id LIMIT 1`, tenantID, id).Scan(&sample)
	if err != nil {
		return FailureGroupDetail{}, fmt.Errorf("store.FailureGroupByID: %w", err)
	}
	if err := json.Unmarshal([]byte(sample), &d.Sample); err != nil {
		return FailureGroupDetail{}, fmt.Errorf("store.FailureGroupByID: %w", err)
	}
	return d, nil
}

// ResolveFailureGroup marks a group resolved; reports from a release it was not seen on before
// reopen it. Resolving a resolved group is ErrConflict.
func (s *Store) ResolveFailureGroup(ctx context.Context, actor Actor, tenantID, id string) (FailureGroup, error) {
	var g FailureGroup
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		g, err = scanFailureGroup(tx.QueryRowContext(ctx, `SELECT `+failureGroupColumns+failureGroupJoins+`
			WHERE fg.tenant_id = $1 AND fg.id = $2`, tenantID, id))
		if err != nil {
			return err
		}
		if g.Group, err = g.Resolve(s.Now()); err != nil {
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
		if err := s.saveFailureGroup(ctx, tx, g); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, tenantID, actor, "failure_group.resolve", "failure_group/"+g.ID,
			Details{"signature": g.Signature, "releases": g.ResolvedReleases})
	})
	if err != nil {
		return FailureGroup{}, fmt.Errorf("store.ResolveFailureGroup: %w", s.mapErr(err))
	}
	return g, nil
}
