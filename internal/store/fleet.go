package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Fleet is the state of every tenant's fleet in aggregate, for /metrics: counts grouped by
// bounded labels, never one row per device. Tenants and products are named (both are made by
// administrators, not by devices); every list is cut at FleetMaxRows rows, the largest first,
// and Truncated names the lists that were cut.
type Fleet struct {
	// DevicesByAttestation counts devices by tenant, product and attestation status (Key:
	// "affirming", "warning", "contraindicated", or "" before the first verdict). Unclaimed
	// devices have tenant and product "".
	DevicesByAttestation []FleetCount
	// DevicesByRelease counts claimed devices by the release they report running (Key; ""
	// when they reported none).
	DevicesByRelease []FleetCount
	// DevicesByOnline counts claimed devices by Key "online" (seen within OnlineWindow),
	// "offline" or "never" (never attested nor reported an install).
	DevicesByOnline []FleetCount
	// Deployments counts deployments by tenant and state (Key).
	Deployments []FleetCount
	// Phases counts the devices of every open (active or paused) deployment by their phase
	// and install state.
	Phases []PhaseCount
	// Fixes is the coverage of every fix linked to a report, the newest FleetMaxRows.
	Fixes []FixCoverage
	// Reports counts reports by tenant and state (Key); Clocks are each tenant's oldest open
	// reports.
	Reports []FleetCount
	Clocks  []ReportClock
	// Refusals counts refused attestations (no certificate granted) by tenant and the rule
	// that decided them (Key, a verifier reason code; "unknown" for verdicts stored before
	// rules were). InstallFailures counts failed and rolled-back installs devices reported, by
	// tenant and InstallFailureClasses (Key).
	Refusals        []FleetCount
	InstallFailures []FleetCount
	Truncated       []string
	At              time.Time
}

// FleetCount is one group's count.
type FleetCount struct {
	Tenant, Product, Key string
	N                    int64
}

// PhaseCount counts the devices of an open deployment in one phase with one install state.
type PhaseCount struct {
	Tenant, Product, Group string
	Deployment             int64 // its sequence number in the tenant
	Release, State         string
	CurrentPhase           int64 // 0-based, the deployment's
	Phase                  int64 // 0-based, the devices'
	Install                string
	N                      int64
}

// FixCoverage is how far a report's fix reached its product's claimed devices: Covered run a
// release the report does not list as affected; Unknown never reported a release.
type FixCoverage struct {
	Tenant, Product         string
	Report                  int64
	Fixed                   string
	Covered, Unknown, Total int64
}

// ReportClock is a tenant's oldest report still waiting for triage (state new) and oldest open
// report with no first response; zero times when there is none.
type ReportClock struct {
	Tenant                         string
	OldestUntriaged, OldestNoReply time.Time
}

// OnlineWindow is how recently a device must have been seen (an attestation or an install
// report) to count as online. A running agent attests at least at its certificate's half-life
// (12 h), so a device unseen for a day is not running, or cannot reach the server.
const OnlineWindow = 24 * time.Hour

// FleetMaxRows bounds every list of Fleet, and so the series of each metric built from it.
const FleetMaxRows = 500

// FleetMaxFixes bounds Fleet.Fixes to the newest fixes.
const FleetMaxFixes = 100

// InstallFailureClasses maps the sentences agents send with a failed install (internal/agent/
// update) to a bounded set of classes, first match wins, by SQL LIKE pattern; anything else is
// "other". A device's sentence never becomes a label itself.
var InstallFailureClasses = []struct{ Class, Like string }{
	{"health_check", "health check failed%"},
	{"bootloader_fallback", "the device booted slot %"},
	{"trial_boot_limit", "trial slot % booted % times%"},
	{"trial_verification", "trial slot % failed verification%"},
	{"repository_metadata", "image repository:%"},
	{"director_metadata", "director:%"},
	{"image", "component %"},
	{"previously_failed", "release %previously failed%"},
	{"installer", "rauc%"},
	{"installer", "installer%"},
}

// InstallFailureOther is the class of a failure sentence no pattern matches.
const InstallFailureOther = "other"

func installClassSQL(col string, args *[]any) string {
	var b strings.Builder
	b.WriteString("CASE")
	for _, c := range InstallFailureClasses {
		*args = append(*args, c.Like, c.Class)
		fmt.Fprintf(&b, " WHEN %s LIKE $%d THEN $%d", col, len(*args)-1, len(*args))
	}
	*args = append(*args, InstallFailureOther)
	fmt.Fprintf(&b, " ELSE $%d END", len(*args))
	return b.String()
}

// FleetState reads Fleet in one read-only pass of aggregate queries.
func (s *Store) FleetState(ctx context.Context) (Fleet, error) {
	now := s.Now()
	f := Fleet{At: now}
	counts := func(name string, dst *[]FleetCount, query string, args ...any) error {
		rows, err := s.db.QueryContext(ctx, query+fmt.Sprintf(" ORDER BY 4 DESC, 1, 2, 3 LIMIT %d", FleetMaxRows+1), args...)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer rows.Close()
		for rows.Next() {
			var c FleetCount
			if err := rows.Scan(&c.Tenant, &c.Product, &c.Key, &c.N); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			*dst = append(*dst, c)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(*dst) > FleetMaxRows {
			*dst = (*dst)[:FleetMaxRows]
			f.Truncated = append(f.Truncated, name)
		}
		return nil
	}
	const devFrom = ` FROM devices d LEFT JOIN tenants t ON t.id = d.tenant_id LEFT JOIN products p ON p.id = d.product_id`
	if err := counts("devices_by_attestation", &f.DevicesByAttestation,
		`SELECT COALESCE(t.name, ''), COALESCE(p.name, ''), d.attestation, COUNT(*)`+devFrom+
			` GROUP BY t.name, p.name, d.attestation`); err != nil {
		return Fleet{}, fmt.Errorf("store.FleetState: %w", err)
	}
	if err := counts("devices_by_release", &f.DevicesByRelease,
		`SELECT t.name, COALESCE(p.name, ''), d.current_release, COUNT(*)`+devFrom+
			` WHERE d.tenant_id IS NOT NULL GROUP BY t.name, p.name, d.current_release`); err != nil {
		return Fleet{}, fmt.Errorf("store.FleetState: %w", err)
	}
	if err := counts("devices_by_online", &f.DevicesByOnline,
		`SELECT t.name, COALESCE(p.name, ''),
			CASE WHEN d.last_seen_at IS NULL THEN 'never' WHEN d.last_seen_at >= $1 THEN 'online' ELSE 'offline' END AS seen, COUNT(*)`+devFrom+
			` WHERE d.tenant_id IS NOT NULL GROUP BY t.name, p.name, seen`, micros(now.Add(-OnlineWindow))); err != nil {
		return Fleet{}, fmt.Errorf("store.FleetState: %w", err)
	}
	if err := counts("deployments", &f.Deployments,
		`SELECT t.name, p.name, dp.state, COUNT(*) FROM deployments dp JOIN tenants t ON t.id = dp.tenant_id
			JOIN products p ON p.id = dp.product_id GROUP BY t.name, p.name, dp.state`); err != nil {
		return Fleet{}, fmt.Errorf("store.FleetState: %w", err)
	}
	if err := counts("reports", &f.Reports,
		`SELECT t.name, r.product, r.state, COUNT(*) FROM reports r JOIN tenants t ON t.id = r.tenant_id
			GROUP BY t.name, r.product, r.state`); err != nil {
		return Fleet{}, fmt.Errorf("store.FleetState: %w", err)
	}
	if err := counts("attestation_refusals", &f.Refusals,
		`SELECT COALESCE(t.name, ''), '', CASE WHEN ar.rule = '' THEN 'unknown' ELSE ar.rule END AS rule, COUNT(*)
			FROM attestation_results ar LEFT JOIN tenants t ON t.id = ar.tenant_id
			WHERE ar.granted = 'none' GROUP BY t.name, rule`); err != nil {
		return Fleet{}, fmt.Errorf("store.FleetState: %w", err)
	}
	var args []any
	class := installClassSQL("ir.reason", &args)
	if err := counts("install_failures", &f.InstallFailures,
		`SELECT t.name, '', `+class+` AS class, COUNT(*)
			FROM install_reports ir JOIN tenants t ON t.id = ir.tenant_id
			WHERE ir.state IN ('failed', 'rolled_back') GROUP BY t.name, class`, args...); err != nil {
		return Fleet{}, fmt.Errorf("store.FleetState: %w", err)
	}
	if err := s.fleetPhases(ctx, &f); err != nil {
		return Fleet{}, fmt.Errorf("store.FleetState: phases: %w", err)
	}
	if err := s.fleetFixes(ctx, &f); err != nil {
		return Fleet{}, fmt.Errorf("store.FleetState: fixes: %w", err)
	}
	if err := s.fleetClocks(ctx, &f); err != nil {
		return Fleet{}, fmt.Errorf("store.FleetState: report clocks: %w", err)
	}
	return f, nil
}

func (s *Store) fleetPhases(ctx context.Context, f *Fleet) error {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT t.name, p.name, g.name, dp.seq, dp.release_version, dp.state, dp.phase,
			dd.phase, dd.install, COUNT(*)
		FROM deployments dp JOIN tenants t ON t.id = dp.tenant_id JOIN products p ON p.id = dp.product_id
			JOIN device_groups g ON g.id = dp.group_id JOIN deployment_devices dd ON dd.deployment_id = dp.id
		WHERE dp.state IN ('active', 'paused')
		GROUP BY t.name, p.name, g.name, dp.seq, dp.release_version, dp.state, dp.phase, dd.phase, dd.install
		ORDER BY t.name, p.name, g.name, dd.phase, dd.install LIMIT %d`, FleetMaxRows+1))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c PhaseCount
		if err := rows.Scan(&c.Tenant, &c.Product, &c.Group, &c.Deployment, &c.Release, &c.State, &c.CurrentPhase, &c.Phase, &c.Install, &c.N); err != nil {
			return err
		}
		f.Phases = append(f.Phases, c)
	}
	if len(f.Phases) > FleetMaxRows {
		f.Phases = f.Phases[:FleetMaxRows]
		f.Truncated = append(f.Truncated, "deployment_phases")
	}
	return rows.Err()
}

func (s *Store) fleetFixes(ctx context.Context, f *Fleet) error {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT t.name, r.product, r.number, fx.version,
			COALESCE(SUM(CASE WHEN d.current_release IN ('', $1) THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN d.current_release NOT IN ('', $1) AND NOT EXISTS (SELECT 1 FROM report_releases a
				WHERE a.report_id = r.id AND a.role = 'affected' AND a.version = d.current_release) THEN 1 ELSE 0 END), 0),
			COUNT(d.id)
		FROM reports r JOIN tenants t ON t.id = r.tenant_id
			JOIN report_releases fx ON fx.report_id = r.id AND fx.role = 'fixed'
			LEFT JOIN products p ON p.tenant_id = r.tenant_id AND p.name = r.product
			LEFT JOIN devices d ON d.tenant_id = r.tenant_id AND d.product_id = p.id
		GROUP BY t.name, r.product, r.number, fx.version
		ORDER BY r.number DESC, t.name LIMIT %d`, FleetMaxFixes+1), UnknownRelease)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c FixCoverage
		if err := rows.Scan(&c.Tenant, &c.Product, &c.Report, &c.Fixed, &c.Unknown, &c.Covered, &c.Total); err != nil {
			return err
		}
		f.Fixes = append(f.Fixes, c)
	}
	if len(f.Fixes) > FleetMaxFixes {
		f.Fixes = f.Fixes[:FleetMaxFixes]
		f.Truncated = append(f.Truncated, "fix_coverage")
	}
	return rows.Err()
}

func (s *Store) fleetClocks(ctx context.Context, f *Fleet) error {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT t.name,
			MIN(CASE WHEN r.state = 'new' THEN r.submitted_at END),
			MIN(CASE WHEN r.first_response_at IS NULL THEN r.submitted_at END)
		FROM reports r JOIN tenants t ON t.id = r.tenant_id
		WHERE r.state IN ('new', 'triaged', 'needs_more_info')
		GROUP BY t.name ORDER BY t.name LIMIT %d`, FleetMaxRows+1))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c ReportClock
		var untriaged, noReply sql.NullInt64
		if err := rows.Scan(&c.Tenant, &untriaged, &noReply); err != nil {
			return err
		}
		if untriaged.Valid {
			c.OldestUntriaged = fromMicros(untriaged.Int64)
		}
		if noReply.Valid {
			c.OldestNoReply = fromMicros(noReply.Int64)
		}
		f.Clocks = append(f.Clocks, c)
	}
	if len(f.Clocks) > FleetMaxRows {
		f.Clocks = f.Clocks[:FleetMaxRows]
		f.Truncated = append(f.Truncated, "report_clocks")
	}
	return rows.Err()
}
