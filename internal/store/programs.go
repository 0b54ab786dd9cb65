package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rampartsec/rampart/internal/program"
	"github.com/rampartsec/rampart/internal/public"
)

// Errors of the vulnerability-response side.
var (
	// ErrNotAccepted: the researcher's application to the program is not accepted.
	ErrNotAccepted = errors.New("researcher is not accepted in this program")
	// ErrNotFixed: the report has no fix release linked.
	ErrNotFixed = errors.New("report has no fix release")
)

// StateError refuses a change that the current state of an application, report or ledger
// does not allow. Its message is a sentence meant for the client; it matches ErrConflict.
type StateError struct{ Msg string }

func (e *StateError) Error() string { return e.Msg }

// Is makes a StateError match ErrConflict.
func (e *StateError) Is(target error) bool { return target == ErrConflict }

// stateErrorf makes a StateError whose message is also its public sentence (a conflict).
func stateErrorf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return public.Mark(&StateError{Msg: msg}, public.Conflict, "%s", msg)
}

// Program is a research program of a tenant with its rules.
type Program struct {
	ID        string
	TenantID  string
	Name      string
	Rules     *program.Program
	CreatedAt time.Time
}

// CreateProgram stores a program whose rules were parsed and validated by program.ParseRules.
func (s *Store) CreateProgram(ctx context.Context, actor Actor, tenantID string, rules *program.Program) (Program, error) {
	js, err := json.Marshal(rules)
	if err != nil {
		return Program{}, fmt.Errorf("store.CreateProgram: %w", err)
	}
	p := Program{ID: NewID("prg"), TenantID: tenantID, Name: rules.Name, Rules: rules, CreatedAt: s.Now()}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO programs (id, tenant_id, name, rules, created_at) VALUES ($1, $2, $3, $4, $5)`,
			p.ID, p.TenantID, p.Name, string(js), micros(p.CreatedAt)); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, tenantID, actor, "program.create", "program/"+p.ID, Details{
			"name": p.Name, "scenarios": len(rules.Scenarios), "currency": rules.Awards.Currency,
		})
	})
	if err != nil {
		return Program{}, fmt.Errorf("store.CreateProgram: %w", s.mapErr(err))
	}
	return p, nil
}

func scanProgram(row interface{ Scan(...any) error }) (Program, error) {
	var p Program
	var rules string
	var at int64
	if err := row.Scan(&p.ID, &p.TenantID, &p.Name, &rules, &at); err != nil {
		return Program{}, err
	}
	p.CreatedAt = fromMicros(at)
	r, err := program.ParseStoredRules([]byte(rules))
	if err != nil {
		return Program{}, fmt.Errorf("stored rules of program %s: %w", p.Name, err)
	}
	p.Rules = r
	return p, nil
}

const programColumns = `id, tenant_id, name, rules, created_at`

func (s *Store) programByName(ctx context.Context, q querier, tenantID, name string) (Program, error) {
	return scanProgram(q.QueryRowContext(ctx, `SELECT `+programColumns+` FROM programs WHERE tenant_id = $1 AND name = $2`, tenantID, name))
}

// ProgramByName returns a tenant's program; another tenant's program is ErrNotFound.
func (s *Store) ProgramByName(ctx context.Context, tenantID, name string) (Program, error) {
	p, err := s.programByName(ctx, s.db, tenantID, name)
	if err != nil {
		return Program{}, fmt.Errorf("store.ProgramByName: %w", s.mapErr(err))
	}
	return p, nil
}

// ListPrograms lists a tenant's programs by name.
func (s *Store) ListPrograms(ctx context.Context, tenantID string, p Page) ([]Program, string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+programColumns+` FROM programs
		WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3`, tenantID, p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListPrograms: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanProgram)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListPrograms: %w", err)
	}
	out, next := trimPage(out, p, func(p Program) string { return p.Name })
	return out, next, nil
}

// Application statuses.
const (
	ApplicationInvited  = "invited"
	ApplicationApplied  = "applied"
	ApplicationAccepted = "accepted"
	ApplicationRejected = "rejected"
)

// Researcher is a security researcher registered with a tenant.
type Researcher struct {
	ID        string
	TenantID  string
	Name      string
	Email     string
	CreatedAt time.Time
	// TokenRevokedAt is when a tenant administrator revoked the researcher's token; nil while
	// it is valid.
	TokenRevokedAt *time.Time
}

// Actor is how the researcher appears in the audit chain.
func (r Researcher) Actor() Actor { return Actor("researcher:" + r.ID) }

// Application is a researcher's application to one program.
type Application struct {
	ID             string
	TenantID       string
	ProgramName    string
	ResearcherID   string
	ResearcherName string
	Email          string
	Status         string
	Country        string
	Affiliation    string
	Experience     string
	CreatedAt      time.Time
	AppliedAt      *time.Time
	DecidedAt      *time.Time
	DecidedBy      string
	Reason         string
}

const applicationColumns = `a.id, a.tenant_id, p.name, a.researcher_id, r.name, r.email, a.status, a.country, a.affiliation,
	a.experience, a.created_at, a.applied_at, a.decided_at, a.decided_by, a.reason`

const applicationJoins = ` FROM applications a JOIN programs p ON p.id = a.program_id JOIN researchers r ON r.id = a.researcher_id `

func scanApplication(row interface{ Scan(...any) error }) (Application, error) {
	var a Application
	var created int64
	var applied, decided sql.NullInt64
	if err := row.Scan(&a.ID, &a.TenantID, &a.ProgramName, &a.ResearcherID, &a.ResearcherName, &a.Email, &a.Status,
		&a.Country, &a.Affiliation, &a.Experience, &created, &applied, &decided, &a.DecidedBy, &a.Reason); err != nil {
		return Application{}, err
	}
	a.CreatedAt = fromMicros(created)
	a.AppliedAt, a.DecidedAt = fromNullMicros(applied), fromNullMicros(decided)
	return a, nil
}

func (s *Store) applicationByID(ctx context.Context, q querier, tenantID, id string) (Application, error) {
	return scanApplication(q.QueryRowContext(ctx, `SELECT `+applicationColumns+applicationJoins+`WHERE a.tenant_id = $1 AND a.id = $2`, tenantID, id))
}

func (s *Store) insertResearcher(ctx context.Context, tx *sql.Tx, actor Actor, tenantID, name, email, tokenHash string) (Researcher, error) {
	r := Researcher{ID: NewID("rsr"), TenantID: tenantID, Name: name, Email: email, CreatedAt: s.Now()}
	if _, err := tx.ExecContext(ctx, `INSERT INTO researchers (id, tenant_id, name, email, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ID, r.TenantID, r.Name, r.Email, tokenHash, micros(r.CreatedAt)); err != nil {
		return Researcher{}, err
	}
	if actor == "" {
		actor = r.Actor()
	}
	return r, s.appendAudit(ctx, tx, tenantID, actor, "researcher.create", "researcher/"+r.ID, Details{"email": email})
}

func (s *Store) insertApplication(ctx context.Context, tx *sql.Tx, actor Actor, p Program, r Researcher, status string, app program.Application) (Application, error) {
	a := Application{ID: NewID("app"), TenantID: p.TenantID, ProgramName: p.Name, ResearcherID: r.ID, ResearcherName: r.Name,
		Email: r.Email, Status: status, Country: app.Country, Affiliation: app.Affiliation, Experience: app.Experience, CreatedAt: s.Now()}
	var applied any
	if status == ApplicationApplied {
		applied = micros(a.CreatedAt)
		a.AppliedAt = &a.CreatedAt
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO applications (id, tenant_id, program_id, researcher_id, status, country, affiliation,
		experience, created_at, applied_at, decided_by, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', '')`,
		a.ID, a.TenantID, p.ID, r.ID, status, a.Country, a.Affiliation, a.Experience, micros(a.CreatedAt), applied); err != nil {
		return Application{}, err
	}
	action := "application.submit"
	if status == ApplicationInvited {
		action = "application.invite"
	}
	return a, s.appendAudit(ctx, tx, p.TenantID, actor, action, "application/"+a.ID, Details{"program": p.Name, "researcher": r.ID, "country": a.Country})
}

// ApplyNew registers a new researcher with the tenant named tenantName and files their
// application to the program; tokenHash is the hash of the researcher token handed back.
// An email already registered with the tenant is ErrConflict.
func (s *Store) ApplyNew(ctx context.Context, tenantName, programName string, app program.Application, tokenHash string) (Researcher, Application, error) {
	var r Researcher
	var a Application
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var tenantID string
		if err := tx.QueryRowContext(ctx, `SELECT id FROM tenants WHERE name = $1`, tenantName).Scan(&tenantID); err != nil {
			return err
		}
		p, err := s.programByName(ctx, tx, tenantID, programName)
		if err != nil {
			return err
		}
		if r, err = s.insertResearcher(ctx, tx, "", tenantID, app.Name, app.Email, tokenHash); err != nil {
			return err
		}
		a, err = s.insertApplication(ctx, tx, r.Actor(), p, r, ApplicationApplied, app)
		return err
	})
	if err != nil {
		return Researcher{}, Application{}, fmt.Errorf("store.ApplyNew: %w", s.mapErr(err))
	}
	return r, a, nil
}

// Invite registers a researcher with the tenant and invites them to the program. The
// researcher completes the application with Apply.
func (s *Store) Invite(ctx context.Context, actor Actor, tenantID, programName, name, email, tokenHash string) (Researcher, Application, error) {
	var r Researcher
	var a Application
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		p, err := s.programByName(ctx, tx, tenantID, programName)
		if err != nil {
			return err
		}
		if r, err = s.insertResearcher(ctx, tx, actor, tenantID, name, email, tokenHash); err != nil {
			return err
		}
		a, err = s.insertApplication(ctx, tx, actor, p, r, ApplicationInvited, program.Application{})
		return err
	})
	if err != nil {
		return Researcher{}, Application{}, fmt.Errorf("store.Invite: %w", s.mapErr(err))
	}
	return r, a, nil
}

// Apply files a registered researcher's application to a program of their tenant, or
// completes an invitation. Applying again once applied, accepted or rejected is ErrConflict.
func (s *Store) Apply(ctx context.Context, r Researcher, programName string, app program.Application) (Application, error) {
	var a Application
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		p, err := s.programByName(ctx, tx, r.TenantID, programName)
		if err != nil {
			return err
		}
		var id, status string
		err = tx.QueryRowContext(ctx, `SELECT id, status FROM applications WHERE program_id = $1 AND researcher_id = $2`, p.ID, r.ID).Scan(&id, &status)
		if errors.Is(err, sql.ErrNoRows) {
			a, err = s.insertApplication(ctx, tx, r.Actor(), p, r, ApplicationApplied, app)
			return err
		}
		if err != nil {
			return err
		}
		if status != ApplicationInvited {
			return stateErrorf("the application is already %s", status)
		}
		now := s.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE applications SET status = $1, country = $2, affiliation = $3, experience = $4, applied_at = $5
			WHERE id = $6`, ApplicationApplied, app.Country, app.Affiliation, app.Experience, micros(now), id); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, r.TenantID, r.Actor(), "application.submit", "application/"+id,
			Details{"program": p.Name, "researcher": r.ID, "country": app.Country}); err != nil {
			return err
		}
		a, err = s.applicationByID(ctx, tx, r.TenantID, id)
		return err
	})
	if err != nil {
		return Application{}, fmt.Errorf("store.Apply: %w", s.mapErr(err))
	}
	return a, nil
}

// DecideApplication accepts or rejects an application that was applied for. Deciding an
// invitation not yet completed, or deciding twice, is ErrConflict.
func (s *Store) DecideApplication(ctx context.Context, actor Actor, tenantID, programName, applicationID string, accept bool, reason string) (Application, error) {
	var a Application
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = s.applicationByID(ctx, tx, tenantID, applicationID)
		if err != nil {
			return err
		}
		if a.ProgramName != programName {
			return sql.ErrNoRows
		}
		if a.Status != ApplicationApplied {
			return stateErrorf("the application is %s; only an application that was applied for can be accepted or rejected", a.Status)
		}
		status, action := ApplicationRejected, "application.reject"
		if accept {
			status, action = ApplicationAccepted, "application.accept"
		}
		now := s.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE applications SET status = $1, decided_at = $2, decided_by = $3, reason = $4 WHERE id = $5`,
			status, micros(now), string(actor), reason, a.ID); err != nil {
			return err
		}
		a.Status, a.DecidedAt, a.DecidedBy, a.Reason = status, &now, string(actor), reason
		return s.appendAudit(ctx, tx, tenantID, actor, action, "application/"+a.ID, Details{"program": programName, "researcher": a.ResearcherID, "reason": reason})
	})
	if err != nil {
		return Application{}, fmt.Errorf("store.DecideApplication: %w", s.mapErr(err))
	}
	return a, nil
}

// ListApplications lists a program's applications by ID.
func (s *Store) ListApplications(ctx context.Context, tenantID, programName string, p Page) ([]Application, string, error) {
	if _, err := s.ProgramByName(ctx, tenantID, programName); err != nil {
		return nil, "", fmt.Errorf("store.ListApplications: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+applicationColumns+applicationJoins+`
		WHERE a.tenant_id = $1 AND p.name = $2 AND a.id > $3 ORDER BY a.id LIMIT $4`, tenantID, programName, p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListApplications: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanApplication)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListApplications: %w", err)
	}
	out, next := trimPage(out, p, func(a Application) string { return a.ID })
	return out, next, nil
}

// ResearcherApplications lists the researcher's own applications.
func (s *Store) ResearcherApplications(ctx context.Context, r Researcher) ([]Application, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+applicationColumns+applicationJoins+`
		WHERE a.tenant_id = $1 AND a.researcher_id = $2 ORDER BY p.name`, r.TenantID, r.ID)
	if err != nil {
		return nil, fmt.Errorf("store.ResearcherApplications: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanApplication)
	if err != nil {
		return nil, fmt.Errorf("store.ResearcherApplications: %w", err)
	}
	return out, nil
}

// ResearcherByTokenHash finds the researcher a researcher token belongs to.
func (s *Store) ResearcherByTokenHash(ctx context.Context, hash string) (Researcher, error) {
	r, err := scanResearcher(s.db.QueryRowContext(ctx, `SELECT `+researcherColumns+` FROM researchers WHERE token_hash = $1`, hash))
	if err != nil {
		return Researcher{}, fmt.Errorf("store.ResearcherByTokenHash: %w", s.mapErr(err))
	}
	return r, nil
}

const researcherColumns = `id, tenant_id, name, email, created_at, token_revoked_at`

func scanResearcher(row interface{ Scan(...any) error }) (Researcher, error) {
	var r Researcher
	var at int64
	var revoked sql.NullInt64
	if err := row.Scan(&r.ID, &r.TenantID, &r.Name, &r.Email, &at, &revoked); err != nil {
		return Researcher{}, err
	}
	r.CreatedAt = fromMicros(at)
	if revoked.Valid {
		t := fromMicros(revoked.Int64)
		r.TokenRevokedAt = &t
	}
	return r, nil
}

// RevokeResearcherToken revokes the token of a tenant's researcher: from the next request on,
// every researcher route refuses it. The researcher's applications and reports stay. A
// researcher of another tenant is ErrNotFound; a token already revoked is a StateError.
func (s *Store) RevokeResearcherToken(ctx context.Context, actor Actor, tenantID, researcherID, reason string) (Researcher, error) {
	var r Researcher
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The conditional update takes the row lock, so two revocations cannot both succeed.
		res, err := tx.ExecContext(ctx, `UPDATE researchers SET token_revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND token_revoked_at IS NULL`,
			micros(s.Now()), tenantID, researcherID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		r, err = scanResearcher(tx.QueryRowContext(ctx, `SELECT `+researcherColumns+` FROM researchers WHERE tenant_id = $1 AND id = $2`,
			tenantID, researcherID))
		if err != nil {
			return err
		}
		if n == 0 {
			return stateErrorf("the token of researcher %s was already revoked on %s", researcherID, r.TokenRevokedAt.Format(time.RFC3339))
		}
		return s.appendAudit(ctx, tx, tenantID, actor, "researcher.revoke_token", "researcher/"+r.ID,
			Details{"name": r.Name, "email": r.Email, "reason": reason})
	})
	if err != nil {
		return Researcher{}, fmt.Errorf("store.RevokeResearcherToken: %w", s.mapErr(err))
	}
	return r, nil
}

// AuditDenied records a refused request: nothing else is written, but the attempt is in the
// tenant's audit chain.
func (s *Store) AuditDenied(ctx context.Context, tenantID string, actor Actor, action, target, reason string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return s.appendAudit(ctx, tx, tenantID, actor, action, target, Details{"denied": reason})
	})
	if err != nil {
		return fmt.Errorf("store.AuditDenied: %w", err)
	}
	return nil
}
