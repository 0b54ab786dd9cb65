package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/rollout"
)

// MaxReleaseLen bounds a release version named in a deployment or a report.
const MaxReleaseLen = 64

// Errors that tell apart why a deployment cannot be created; both wrap a store sentinel.
var (
	// ErrReleaseNotSigned (with ErrConflict): the release is a draft or revoked.
	ErrReleaseNotSigned = errors.New("only a signed release can be deployed")
	// ErrGroupBusy (with ErrConflict): the group already has an active or paused deployment.
	ErrGroupBusy = errors.New("the group already has an open deployment")
)

// Deployment is a stored deployment: the rollout state plus where it goes.
type Deployment struct {
	rollout.Deployment
	TenantID    string
	Seq         int64
	ProductID   string
	ProductName string
	GroupID     string
	GroupName   string
	// Release is the version being deployed; PreviousRelease the version
	// most of the group ran when it was created (the crash-rate baseline).
	Release         string
	PreviousRelease string
	CreatedBy       string
	// Version counts the changes to the row; updates check it so that two
	// replicas cannot both move the same deployment.
	Version int64
}

// DeploymentSpec is what an operator asks for.
type DeploymentSpec struct {
	Product   string
	Group     string
	Release   string
	Plan      rollout.Plan
	Criteria  rollout.Criteria
	Emergency bool
}

// DeploymentFilter narrows a deployment listing.
type DeploymentFilter struct {
	Product string
	Group   string
	State   rollout.State
}

const deploymentColumns = `dp.id, dp.tenant_id, dp.seq, dp.product_id, p.name, dp.group_id, g.name, dp.release_version,
	dp.previous_release, dp.emergency, dp.plan, dp.criteria, dp.state, dp.phase, dp.phases_opened_at, dp.soak_since,
	dp.evidence_since, dp.reason, dp.version, dp.created_by, dp.created_at, dp.updated_at`

const deploymentJoins = ` FROM deployments dp JOIN products p ON p.id = dp.product_id JOIN device_groups g ON g.id = dp.group_id `

func scanDeployment(row interface{ Scan(...any) error }) (Deployment, error) {
	var d Deployment
	var plan, crit, opened string
	var soak, evidence, created, updated int64
	if err := row.Scan(&d.ID, &d.TenantID, &d.Seq, &d.ProductID, &d.ProductName, &d.GroupID, &d.GroupName, &d.Release,
		&d.PreviousRelease, &d.Emergency, &plan, &crit, &d.State, &d.Phase, &opened, &soak,
		&evidence, &d.Reason, &d.Version, &d.CreatedBy, &created, &updated); err != nil {
		return Deployment{}, err
	}
	if err := json.Unmarshal([]byte(plan), &d.Plan); err != nil {
		return Deployment{}, fmt.Errorf("deployment %s: plan: %w", d.ID, err)
	}
	if err := json.Unmarshal([]byte(crit), &d.Criteria); err != nil {
		return Deployment{}, fmt.Errorf("deployment %s: criteria: %w", d.ID, err)
	}
	var openedMicros []int64
	if err := json.Unmarshal([]byte(opened), &openedMicros); err != nil {
		return Deployment{}, fmt.Errorf("deployment %s: phases opened: %w", d.ID, err)
	}
	for _, m := range openedMicros {
		d.PhasesOpenedAt = append(d.PhasesOpenedAt, fromMicros(m))
	}
	d.SoakSince, d.EvidenceSince = fromMicros(soak), fromMicros(evidence)
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	return d, nil
}

func openedJSON(ts []time.Time) string {
	ms := make([]int64, len(ts))
	for i, t := range ts {
		ms[i] = micros(t)
	}
	b, _ := json.Marshal(ms)
	return string(b)
}

func loadDeployment(ctx context.Context, q querier, tenantID, id string) (Deployment, error) {
	return scanDeployment(q.QueryRowContext(ctx, `SELECT `+deploymentColumns+deploymentJoins+`WHERE dp.tenant_id = $1 AND dp.id = $2`, tenantID, id))
}

func checkRelease(v string) error {
	if strings.TrimSpace(v) == "" || len(v) > MaxReleaseLen || strings.ContainsAny(v, " \t\r\n") {
		return invalid("release %q must be 1 to %d characters without spaces", v, MaxReleaseLen)
	}
	return nil
}

// domainErr maps rollout's sentinel errors to the store's.
func domainErr(err error) error {
	switch {
	case errors.Is(err, rollout.ErrInvalidPlan), errors.Is(err, rollout.ErrInvalidCriteria),
		errors.Is(err, rollout.ErrReasonMissing), errors.Is(err, rollout.ErrReasonTooLong):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, rollout.ErrFinal), errors.Is(err, rollout.ErrNotActive), errors.Is(err, rollout.ErrNotPaused):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// auditActions names each deployment event in the audit chain.
var auditActions = map[rollout.EventKind]string{
	rollout.EventCreated:       "deployment.create",
	rollout.EventPhaseAdvanced: "deployment.advance",
	rollout.EventPaused:        "deployment.pause",
	rollout.EventResumed:       "deployment.resume",
	rollout.EventAborted:       "deployment.abort",
	rollout.EventCompleted:     "deployment.complete",
}

// auditDeployment records a deployment event in the audit chain and, on PostgreSQL, tells the
// other replicas of the change when tx commits. Every deployment write passes through it.
func (s *Store) auditDeployment(ctx context.Context, tx *sql.Tx, d Deployment, actor Actor, ev rollout.Event) error {
	details := Details{"seq": d.Seq, "release": d.Release, "group": d.GroupName, "product": d.ProductName,
		"phase": ev.Phase + 1, "state": string(ev.To)}
	if ev.Reason != "" {
		details["reason"] = ev.Reason
	}
	if len(ev.Findings) > 0 {
		details["findings"] = ev.Findings
	}
	if ev.Actor == rollout.ActorCriteria {
		details["by"] = rollout.ActorCriteria
	}
	if ev.Kind == rollout.EventCreated {
		details["plan"] = d.Plan.String()
		details["criteria"] = d.Criteria.String()
		details["emergency"] = d.Emergency
		details["previous_release"] = d.PreviousRelease
	}
	if err := s.notifyDeployment(ctx, tx, d.TenantID, d.ID); err != nil {
		return err
	}
	return s.appendAudit(ctx, tx, d.TenantID, actor, auditActions[ev.Kind], "deployment/"+d.ID, details)
}

// CreateDeployment starts a deployment of a signed release of the group's product to the group:
// an unknown release is ErrNotFound, a draft or revoked one ErrConflict. A group has at most one
// active or paused deployment; a second is ErrConflict. The group's members at creation are recorded with
// their phase; devices that join later are picked up by StepDeployment.
func (s *Store) CreateDeployment(ctx context.Context, actor Actor, tenantID string, spec DeploymentSpec) (Deployment, error) {
	if err := checkRelease(spec.Release); err != nil {
		return Deployment{}, fmt.Errorf("store.CreateDeployment: %w", err)
	}
	var d Deployment
	defer s.deploymentsChanged()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if err = tx.QueryRowContext(ctx, `SELECT p.id, p.name, g.id, g.name FROM device_groups g JOIN products p ON p.id = g.product_id
			WHERE g.tenant_id = $1 AND p.name = $2 AND g.name = $3`, tenantID, spec.Product, spec.Group).
			Scan(&d.ProductID, &d.ProductName, &d.GroupID, &d.GroupName); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: no group %q in product %q", ErrNotFound, spec.Group, spec.Product)
			}
			return err
		}
		// Only a signed release can be deployed: not a draft, not a revoked one.
		var relState string
		err = tx.QueryRowContext(ctx, `SELECT state FROM releases WHERE tenant_id = $1 AND product_id = $2 AND version = $3`,
			tenantID, d.ProductID, spec.Release).Scan(&relState)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: no release %q in product %q", ErrNotFound, spec.Release, d.ProductName)
		case err != nil:
			return err
		case relState != "signed":
			return fmt.Errorf("%w: %w: release %q is %s", ErrConflict, ErrReleaseNotSigned, spec.Release, relState)
		}
		var open string
		err = tx.QueryRowContext(ctx, `SELECT id FROM deployments WHERE group_id = $1 AND state IN ('active', 'paused')`, d.GroupID).Scan(&open)
		if err == nil {
			return fmt.Errorf("%w: %w: group %q has deployment %s open; abort it first", ErrConflict, ErrGroupBusy, d.GroupName, open)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO deployment_seqs (tenant_id, seq) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING`, tenantID); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `UPDATE deployment_seqs SET seq = seq + 1 WHERE tenant_id = $1 RETURNING seq`, tenantID).Scan(&d.Seq); err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT current_release FROM devices WHERE group_id = $1 AND current_release <> '' AND current_release <> $2
			GROUP BY current_release ORDER BY COUNT(*) DESC, current_release LIMIT 1`, d.GroupID, spec.Release).Scan(&d.PreviousRelease)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		now := s.Now()
		dom, ev, err := rollout.New(NewID("dep"), spec.Plan, spec.Criteria, spec.Emergency, string(actor), now)
		if err != nil {
			return domainErr(err)
		}
		d.Deployment, d.TenantID, d.Release, d.CreatedBy, d.Version = dom, tenantID, spec.Release, string(actor), 1
		// Each phase gets its share of the group's devices now, rounded up to a whole device.
		members, err := queryIDs(ctx, tx, `SELECT id FROM devices WHERE group_id = $1 AND tenant_id = $2`, d.GroupID, tenantID)
		if err != nil {
			return err
		}
		d.Plan = d.Plan.Fit(d.ID, members)
		plan, _ := json.Marshal(d.Plan)
		crit, _ := json.Marshal(d.Criteria)
		if _, err := tx.ExecContext(ctx, `INSERT INTO deployments (id, tenant_id, seq, product_id, group_id, release_version, previous_release,
			emergency, plan, criteria, state, phase, phases_opened_at, soak_since, evidence_since, reason, version, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
			d.ID, tenantID, d.Seq, d.ProductID, d.GroupID, d.Release, d.PreviousRelease, d.Emergency, string(plan), string(crit),
			string(d.State), d.Phase, openedJSON(d.PhasesOpenedAt), micros(d.SoakSince), micros(d.EvidenceSince), d.Reason,
			d.Version, d.CreatedBy, micros(d.CreatedAt), micros(d.UpdatedAt)); err != nil {
			return err
		}
		if err := s.addDeploymentMembers(ctx, tx, d, nil); err != nil {
			return err
		}
		return s.auditDeployment(ctx, tx, d, actor, ev)
	})
	if err != nil {
		return Deployment{}, fmt.Errorf("store.CreateDeployment: %w", s.mapErr(err))
	}
	return d, nil
}

// addDeploymentMembers records the group's devices that the deployment has not seen yet, with
// their phase. joinedAt is nil at creation, else the time the step first saw them.
func (s *Store) addDeploymentMembers(ctx context.Context, tx *sql.Tx, d Deployment, joinedAt *time.Time) error {
	ids, err := deploymentJoiners(ctx, tx, d)
	if err != nil {
		return err
	}
	return insertDeploymentMembers(ctx, tx, d, ids, joinedAt)
}

// deploymentJoiners lists the group's devices that the deployment has not seen yet.
func deploymentJoiners(ctx context.Context, q querier, d Deployment) ([]string, error) {
	return queryIDs(ctx, q, `SELECT dv.id FROM devices dv WHERE dv.group_id = $1 AND dv.tenant_id = $2
		AND NOT EXISTS (SELECT 1 FROM deployment_devices dd WHERE dd.deployment_id = $3 AND dd.device_id = dv.id)`, d.GroupID, d.TenantID, d.ID)
}

// insertDeploymentMembers records the devices as members of the deployment with their phase, as
// pending; one it has seen already (a report recorded it since they were listed) is left as it is.
func insertDeploymentMembers(ctx context.Context, tx *sql.Tx, d Deployment, ids []string, joinedAt *time.Time) error {
	var joined any
	if joinedAt != nil {
		joined = micros(*joinedAt)
	}
	const chunk = 200
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		var sb strings.Builder
		args := make([]any, 0, n*5)
		sb.WriteString(`INSERT INTO deployment_devices (deployment_id, device_id, tenant_id, phase, install, detail, joined_at) VALUES `)
		for i, id := range ids[:n] {
			if i > 0 {
				sb.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&sb, "($%d, $%d, $%d, $%d, '%s', '', $%d)", k+1, k+2, k+3, k+4, rollout.InstallPending, k+5)
			args = append(args, d.ID, id, d.TenantID, d.Plan.Assign(d.ID, id), joined)
		}
		sb.WriteString(` ON CONFLICT (deployment_id, device_id) DO NOTHING`)
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// DeploymentByID returns one of a tenant's deployments; another tenant's is ErrNotFound.
func (s *Store) DeploymentByID(ctx context.Context, tenantID, id string) (Deployment, error) {
	d, err := loadDeployment(ctx, s.db, tenantID, id)
	if err != nil {
		return Deployment{}, fmt.Errorf("store.DeploymentByID: %w", s.mapErr(err))
	}
	return d, nil
}

// ListDeployments lists a tenant's deployments in sequence order.
func (s *Store) ListDeployments(ctx context.Context, tenantID string, f DeploymentFilter, p Page) ([]Deployment, string, error) {
	after, err := p.afterInt()
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDeployments: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+deploymentColumns+deploymentJoins+`
		WHERE dp.tenant_id = $1 AND dp.seq > $2 AND ($3 = '' OR p.name = $3) AND ($4 = '' OR g.name = $4) AND ($5 = '' OR dp.state = $5)
		ORDER BY dp.seq LIMIT $6`, tenantID, after, f.Product, f.Group, string(f.State), p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDeployments: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanDeployment)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListDeployments: %w", err)
	}
	out, next := trimPage(out, p, func(d Deployment) string { return fmt.Sprint(d.Seq) })
	return out, next, nil
}

// saveDeployment writes the moving parts of a deployment if nobody changed it since it was read.
func saveDeployment(ctx context.Context, tx *sql.Tx, d *Deployment) error {
	res, err := tx.ExecContext(ctx, `UPDATE deployments SET state = $1, phase = $2, phases_opened_at = $3, soak_since = $4,
		evidence_since = $5, reason = $6, updated_at = $7, version = version + 1
		WHERE tenant_id = $8 AND id = $9 AND version = $10`,
		string(d.State), d.Phase, openedJSON(d.PhasesOpenedAt), micros(d.SoakSince), micros(d.EvidenceSince), d.Reason,
		micros(d.UpdatedAt), d.TenantID, d.ID, d.Version)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("%w: deployment %s changed concurrently; retry", ErrConflict, d.ID)
	}
	d.Version++
	return nil
}

type deploymentOp func(d rollout.Deployment, actor, reason string, now time.Time) (rollout.Deployment, rollout.Event, error)

func (s *Store) operate(ctx context.Context, op string, fn deploymentOp, actor Actor, tenantID, id, reason string) (Deployment, error) {
	var d Deployment
	defer s.deploymentsChanged()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if d, err = loadDeployment(ctx, tx, tenantID, id); err != nil {
			return err
		}
		dom, ev, err := fn(d.Deployment, string(actor), reason, s.Now())
		if err != nil {
			return domainErr(err)
		}
		d.Deployment = dom
		if err := saveDeployment(ctx, tx, &d); err != nil {
			return err
		}
		return s.auditDeployment(ctx, tx, d, actor, ev)
	})
	if err != nil {
		return Deployment{}, fmt.Errorf("store.%s: %w", op, s.mapErr(err))
	}
	return d, nil
}

// PauseDeployment pauses an active deployment; anything else is ErrConflict.
func (s *Store) PauseDeployment(ctx context.Context, actor Actor, tenantID, id, reason string) (Deployment, error) {
	return s.operate(ctx, "PauseDeployment", rollout.Deployment.Pause, actor, tenantID, id, reason)
}

// ResumeDeployment resumes a paused deployment; anything else is ErrConflict.
func (s *Store) ResumeDeployment(ctx context.Context, actor Actor, tenantID, id, reason string) (Deployment, error) {
	return s.operate(ctx, "ResumeDeployment", rollout.Deployment.Resume, actor, tenantID, id, reason)
}

// AbortDeployment ends a deployment for good; a finished one is ErrConflict.
func (s *Store) AbortDeployment(ctx context.Context, actor Actor, tenantID, id, reason string) (Deployment, error) {
	return s.operate(ctx, "AbortDeployment", rollout.Deployment.Abort, actor, tenantID, id, reason)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
