package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/rollout"
)

// Running classes of a member in the aggregate queries: what dv.current_release is to the
// deployment, in the order rollout's snapshot tells them apart.
const runningClass = `CASE WHEN dv.current_release = $4 THEN 1 WHEN dv.current_release = $5 THEN 2 ELSE 0 END`

// aggregate reads the group as the deployment sees it, reduced to the sums its criteria read
// (rollout.Aggregate): its current members' outcomes counted per phase, what they run and their
// crashes in the evidence window. Every member is counted in SQL; only the devices whose release
// changed since the evidence window opened, and those that crashed in it, come back a row each.
// It also returns how many devices of the group the deployment has not seen yet.
//
// q should be a read transaction (readTx), so that the queries see one state of the group.
func (s *Store) aggregate(ctx context.Context, q querier, d Deployment, now time.Time) (rollout.Aggregate, int, error) {
	a := rollout.Aggregate{Now: now, Phases: make([]rollout.PhaseAggregate, len(d.Plan.Phases))}
	ev := micros(d.EvidenceSince)
	// A pending member times out once it joined no later than this (rollout.PhaseAggregate.PendingDue).
	due := micros(now.Add(-d.Criteria.Timeouts.Deadline))
	rows, err := q.QueryContext(ctx, `SELECT dd.phase, dd.install,
			CASE WHEN dd.reported_at >= $6 THEN 1 ELSE 0 END, CASE WHEN dd.joined_at IS NULL OR dd.joined_at <= $7 THEN 1 ELSE 0 END,
			`+runningClass+`, COUNT(*)
		FROM devices dv LEFT JOIN deployment_devices dd ON dd.deployment_id = $1 AND dd.device_id = dv.id
		WHERE dv.group_id = $2 AND dv.tenant_id = $3
		GROUP BY dd.phase, dd.install, 3, 4, 5`, d.ID, d.GroupID, d.TenantID, d.Release, d.PreviousRelease, ev, due)
	if err != nil {
		return a, 0, err
	}
	missing := 0
	var members [3]int // per running class
	for rows.Next() {
		var phase sql.NullInt64
		var install sql.NullString
		var inWindow, old, class, n int
		if err := rows.Scan(&phase, &install, &inWindow, &old, &class, &n); err != nil {
			rows.Close()
			return a, 0, err
		}
		if !phase.Valid {
			missing += n
			continue
		}
		if phase.Int64 < 0 || int(phase.Int64) >= len(a.Phases) {
			rows.Close()
			return a, 0, fmt.Errorf("deployment %s: member in phase %d of %d", d.ID, phase.Int64, len(a.Phases))
		}
		members[class] += n
		p := &a.Phases[phase.Int64]
		p.Devices += n
		switch rollout.InstallState(install.String) {
		case rollout.InstallInstalled:
			p.Installed += n
			if inWindow == 1 {
				p.WindowInstalled += n
			}
		case rollout.InstallFailed:
			p.Failed += n
			if inWindow == 1 {
				p.WindowFailed += n
			}
		default:
			p.Pending += n
			if old == 1 {
				p.PendingDue += n
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return a, 0, err
	}

	// Exposure: a member runs its release since its last coverage event in the group, or since
	// the evidence window opened if that is later. Only the members with an event after it (whose
	// release changed in the window) need their own start; the rest share the window's.
	nowMicros := micros(now)
	rows, err = q.QueryContext(ctx, `SELECT `+runningClass+`, COUNT(*),
			COALESCE(SUM(CAST(CASE WHEN r.since < $6 THEN $6 - r.since ELSE 0 END AS DOUBLE PRECISION)), 0)
		FROM (SELECT device_id, MAX(at) AS since FROM coverage_events WHERE group_id = $2 AND tenant_id = $3 AND at > $7
			GROUP BY device_id) r
		JOIN devices dv ON dv.id = r.device_id
		JOIN deployment_devices dd ON dd.deployment_id = $1 AND dd.device_id = r.device_id
		WHERE dv.group_id = $2 AND dv.tenant_id = $3
		GROUP BY 1`, d.ID, d.GroupID, d.TenantID, d.Release, d.PreviousRelease, nowMicros, ev)
	if err != nil {
		return a, 0, err
	}
	var moved [3]int
	var movedMicros [3]float64
	for rows.Next() {
		var class, n int
		var sum float64
		if err := rows.Scan(&class, &n, &sum); err != nil {
			rows.Close()
			return a, 0, err
		}
		moved[class], movedMicros[class] = n, sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return a, 0, err
	}
	window := 0.0
	if now.After(d.EvidenceSince) {
		window = now.Sub(d.EvidenceSince).Hours()
	}
	running := [3]*rollout.RunningAggregate{nil, &a.New, &a.Previous}
	for class := 1; class <= 2; class++ {
		running[class].ExposureHours = float64(members[class]-moved[class])*window + movedMicros[class]/float64(time.Hour/time.Microsecond)
	}

	// Crashes of the members on the release each runs now, since it started running it (and
	// within the evidence window), up to now. The start is read through the device's index of
	// coverage events (the group's filter is in the CASE, so that SQLite does not walk the whole
	// group's events for each crash).
	known := map[string]bool{}
	if d.PreviousRelease != "" {
		sigs, err := queryIDs(ctx, q, `SELECT DISTINCT signature FROM failure_reports
			WHERE tenant_id = $1 AND product_id = $2 AND release_version = $3`, d.TenantID, d.ProductID, d.PreviousRelease)
		if err != nil {
			return a, 0, err
		}
		for _, sig := range sigs {
			known[sig] = true
		}
	}
	rows, err = q.QueryContext(ctx, `SELECT fr.device_id, `+runningClass+`, fr.signature, fr.crashed_at,
			(SELECT MAX(CASE WHEN ce.tenant_id = $3 AND ce.group_id = $2 THEN ce.at END) FROM coverage_events ce WHERE ce.device_id = fr.device_id)
		FROM failure_reports fr JOIN devices dv ON dv.id = fr.device_id
		JOIN deployment_devices dd ON dd.deployment_id = $1 AND dd.device_id = fr.device_id
		WHERE fr.tenant_id = $3 AND dv.group_id = $2 AND dv.tenant_id = $3 AND fr.release_version = dv.current_release
			AND (dv.current_release = $4 OR dv.current_release = $5) AND fr.crashed_at >= $6 AND fr.crashed_at <= $7
		ORDER BY fr.device_id`, d.ID, d.GroupID, d.TenantID, d.Release, d.PreviousRelease, ev, nowMicros)
	if err != nil {
		return a, 0, err
	}
	defer rows.Close()
	sigDevices := map[string]int{}
	var last string
	var seen map[string]bool
	counted := false
	for rows.Next() {
		var id, sig string
		var class int
		var at int64
		var since sql.NullInt64
		if err := rows.Scan(&id, &class, &sig, &at, &since); err != nil {
			return a, 0, err
		}
		if id != last {
			last, seen, counted = id, nil, false
		}
		if since.Valid && at < since.Int64 {
			continue // before the device started running its release
		}
		r := running[class]
		r.Crashes++
		if !counted {
			r.Crashed++
			counted = true
		}
		if class == 1 && sig != "" && !known[sig] && !seen[sig] {
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[sig] = true
			sigDevices[sig]++
		}
	}
	if err := rows.Err(); err != nil {
		return a, 0, err
	}
	if len(sigDevices) > 0 {
		a.NewSignatures = sigDevices
	}
	return a, missing, nil
}

// readTx runs fn in a read-only transaction that sees one state of the database throughout:
// on SQLite a deferred transaction, which takes no write lock; on PostgreSQL REPEATABLE READ.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
