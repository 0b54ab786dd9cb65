package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/program"
	"github.com/rampartsec/rampart/internal/public"
)

// Report is a vulnerability report. Number is its ID as people see it, unique in the tenant.
type Report struct {
	ID             string
	TenantID       string
	Number         int64
	ProgramName    string
	ResearcherID   string
	ResearcherName string
	Title          string
	Description    string
	Scenario       string
	Product        string
	Components     []string
	Releases       []string
	CVSS31         string
	CVSS40         string
	// TeamCVSS is the triage team's vector (3.1 or 4.0), "" until the team scores the report.
	TeamCVSS          string
	State             program.State
	StateReason       string
	DuplicateOf       int64
	Impact            string
	Severity          program.Severity
	Quality           program.Quality
	CVE               string
	NeedsInfoDeadline *time.Time
	SubmittedAt       time.Time
	UpdatedAt         time.Time
	FirstResponseAt   *time.Time
	TriagedAt         *time.Time
	AwardedAt         *time.Time
}

// Ref is what the duplicate rule needs of the report.
func (r Report) Ref() program.ReportRef {
	return program.ReportRef{ID: r.Number, Program: r.ProgramName, State: r.State, DuplicateOf: r.DuplicateOf, SubmittedAt: r.SubmittedAt}
}

// ReportFilter narrows a report listing.
type ReportFilter struct {
	Program      string
	State        program.State
	ResearcherID string // only this researcher's reports
}

const reportColumns = `r.id, r.tenant_id, r.number, p.name, r.researcher_id, rs.name, r.title, r.description, r.scenario,
	r.product, r.components, r.releases, r.cvss31, r.cvss40, r.state, r.state_reason, r.duplicate_of, r.impact, r.severity,
	r.quality, r.cve, r.needs_info_deadline, r.submitted_at, r.updated_at, r.first_response_at, r.triaged_at, r.awarded_at, r.team_cvss`

const reportJoins = ` FROM reports r JOIN programs p ON p.id = r.program_id JOIN researchers rs ON rs.id = r.researcher_id `

func scanReport(row interface{ Scan(...any) error }) (Report, error) {
	var r Report
	var comps, rels string
	var dup, deadline, first, triaged, awarded sql.NullInt64
	var submitted, updated int64
	if err := row.Scan(&r.ID, &r.TenantID, &r.Number, &r.ProgramName, &r.ResearcherID, &r.ResearcherName, &r.Title,
		&r.Description, &r.Scenario, &r.Product, &comps, &rels, &r.CVSS31, &r.CVSS40, &r.State, &r.StateReason, &dup,
		&r.Impact, &r.Severity, &r.Quality, &r.CVE, &deadline, &submitted, &updated, &first, &triaged, &awarded, &r.TeamCVSS); err != nil {
		return Report{}, err
	}
	if err := json.Unmarshal([]byte(comps), &r.Components); err != nil {
		return Report{}, fmt.Errorf("report %d components: %w", r.Number, err)
	}
	if err := json.Unmarshal([]byte(rels), &r.Releases); err != nil {
		return Report{}, fmt.Errorf("report %d releases: %w", r.Number, err)
	}
	r.DuplicateOf = dup.Int64
	r.NeedsInfoDeadline = fromNullMicros(deadline)
	r.SubmittedAt, r.UpdatedAt = fromMicros(submitted), fromMicros(updated)
	r.FirstResponseAt, r.TriagedAt, r.AwardedAt = fromNullMicros(first), fromNullMicros(triaged), fromNullMicros(awarded)
	return r, nil
}

func (s *Store) reportByNumber(ctx context.Context, q querier, tenantID string, number int64) (Report, error) {
	return scanReport(q.QueryRowContext(ctx, `SELECT `+reportColumns+reportJoins+`WHERE r.tenant_id = $1 AND r.number = $2`, tenantID, number))
}

// reportForUpdate reads a report inside a transaction that will change it, after taking its
// row lock (PostgreSQL; SQLite transactions hold the write lock already) with a no-op update,
// so that two changes of one report run one after the other and each sees the other's result.
func (s *Store) reportForUpdate(ctx context.Context, tx *sql.Tx, tenantID string, number int64) (Report, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE reports SET number = number WHERE tenant_id = $1 AND number = $2`, tenantID, number); err != nil {
		return Report{}, err
	}
	return s.reportByNumber(ctx, tx, tenantID, number)
}

// ReportByNumber returns a tenant's report.
func (s *Store) ReportByNumber(ctx context.Context, tenantID string, number int64) (Report, error) {
	r, err := s.reportByNumber(ctx, s.db, tenantID, number)
	if err != nil {
		return Report{}, fmt.Errorf("store.ReportByNumber: %w", s.mapErr(err))
	}
	return r, nil
}

// ResearcherReport returns a report only when the researcher wrote it; any other report, of
// the same tenant or not, is ErrNotFound.
func (s *Store) ResearcherReport(ctx context.Context, researcher Researcher, number int64) (Report, error) {
	r, err := scanReport(s.db.QueryRowContext(ctx, `SELECT `+reportColumns+reportJoins+`
		WHERE r.tenant_id = $1 AND r.number = $2 AND r.researcher_id = $3`, researcher.TenantID, number, researcher.ID))
	if err != nil {
		return Report{}, fmt.Errorf("store.ResearcherReport: %w", s.mapErr(err))
	}
	return r, nil
}

// ListReports lists a tenant's reports by number.
func (s *Store) ListReports(ctx context.Context, tenantID string, f ReportFilter, p Page) ([]Report, string, error) {
	after, err := p.afterInt()
	if err != nil {
		return nil, "", fmt.Errorf("store.ListReports: %w", err)
	}
	if f.Program != "" {
		if _, err := s.ProgramByName(ctx, tenantID, f.Program); err != nil {
			return nil, "", fmt.Errorf("store.ListReports: %w", err)
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+reportColumns+reportJoins+`
		WHERE r.tenant_id = $1 AND r.number > $2 AND ($3 = '' OR p.name = $3) AND ($4 = '' OR r.state = $4)
		AND ($5 = '' OR r.researcher_id = $5) ORDER BY r.number LIMIT $6`,
		tenantID, after, f.Program, string(f.State), f.ResearcherID, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListReports: %w", err)
	}
	defer rows.Close()
	out, err := scanAll(rows, scanReport)
	if err != nil {
		return nil, "", fmt.Errorf("store.ListReports: %w", err)
	}
	out, next := trimPage(out, p, func(r Report) string { return fmt.Sprint(r.Number) })
	return out, next, nil
}

// nextSeq returns the next sequence number of a report's rows in table; the report's row
// was read in the same transaction, and the (report_id, seq) unique index refuses a race.
func nextSeq(ctx context.Context, tx *sql.Tx, table, reportID string) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM `+table+` WHERE report_id = $1`, reportID).Scan(&seq)
	return seq, err
}

// event appends a report event and the matching audit record.
func (s *Store) event(ctx context.Context, tx *sql.Tx, actor Actor, r Report, kind string, from, to program.State, details Details) error {
	if details == nil {
		details = Details{}
	}
	d, err := json.Marshal(details)
	if err != nil {
		return err
	}
	seq, err := nextSeq(ctx, tx, "report_events", r.ID)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO report_events (id, tenant_id, report_id, seq, at, actor, kind, from_state, to_state, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		NewID("rev"), r.TenantID, r.ID, seq, micros(s.Now()), string(actor), kind, string(from), string(to), string(d)); err != nil {
		return err
	}
	audit := Details{"report": r.Number}
	for k, v := range details {
		audit[k] = v
	}
	if from != to {
		audit["from"], audit["to"] = from, to
	}
	return s.appendAudit(ctx, tx, r.TenantID, actor, "report."+kind, fmt.Sprintf("report/%d", r.Number), audit)
}

// SubmitReport files a report from a researcher whose application to the program is
// accepted. The submission must have been validated against the program
// (program.Submission.Validate). A researcher who is not accepted gets ErrNotAccepted and
// nothing is written.
func (s *Store) SubmitReport(ctx context.Context, researcher Researcher, programName string, sub program.Submission) (Report, error) {
	var r Report
	comps, _ := json.Marshal(sub.Components)
	rels, _ := json.Marshal(nonNil(sub.Releases))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		p, err := s.programByName(ctx, tx, researcher.TenantID, programName)
		if err != nil {
			return err
		}
		var status string
		err = tx.QueryRowContext(ctx, `SELECT status FROM applications WHERE program_id = $1 AND researcher_id = $2`, p.ID, researcher.ID).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && status != ApplicationAccepted) {
			return ErrNotAccepted
		}
		if err != nil {
			return err
		}
		// A no-op update of the tenant's row takes its row lock (PostgreSQL) or the write lock
		// (SQLite), so that submissions to one tenant number their reports one at a time.
		if _, err := tx.ExecContext(ctx, `UPDATE tenants SET name = name WHERE id = $1`, researcher.TenantID); err != nil {
			return err
		}
		var number int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(number), 0) + 1 FROM reports WHERE tenant_id = $1`, researcher.TenantID).Scan(&number); err != nil {
			return err
		}
		now := s.Now()
		id := NewID("vrp")
		if _, err := tx.ExecContext(ctx, `INSERT INTO reports (id, tenant_id, number, program_id, researcher_id, title, description,
			scenario, product, components, releases, cvss31, cvss40, state, state_reason, impact, severity, quality, cve,
			submitted_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, '', '', '', '', '', $15, $15)`,
			id, researcher.TenantID, number, p.ID, researcher.ID, sub.Title, sub.Description, sub.Scenario, sub.Product,
			string(comps), string(rels), sub.CVSS31, sub.CVSS40, string(program.StateNew), micros(now)); err != nil {
			return err
		}
		if r, err = s.reportByNumber(ctx, tx, researcher.TenantID, number); err != nil {
			return err
		}
		return s.event(ctx, tx, researcher.Actor(), r, "submitted", "", program.StateNew,
			Details{"program": programName, "scenario": sub.Scenario, "title": sub.Title})
	})
	if err != nil {
		return Report{}, fmt.Errorf("store.SubmitReport: %w", s.mapErr(err))
	}
	return r, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Triage is what the team decides about a report, all optional.
type Triage struct {
	Impact   string
	Severity program.Severity
	Quality  program.Quality
	CVE      string
	// CVSS is the team's vector, already checked (program.ParseCVSS); "" keeps the one saved.
	CVSS string
}

// Transition is a state change requested by the triage team.
type Transition struct {
	To          program.State
	Reason      string
	DuplicateOf int64 // the original, for StateDuplicate
	Triage      Triage
}

// TransitionReport moves a report to another state by the program's state machine and
// records triage decisions. Errors wrap program.ErrInvalidTransition, ErrReasonRequired,
// ErrDuplicateTarget or ErrNotFirstArrival when the move is refused; nothing is written then.
func (s *Store) TransitionReport(ctx context.Context, actor Actor, tenantID string, number int64, t Transition) (Report, error) {
	var r Report
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = s.reportForUpdate(ctx, tx, tenantID, number); err != nil {
			return err
		}
		p, err := s.programByName(ctx, tx, tenantID, r.ProgramName)
		if err != nil {
			return err
		}
		return s.transition(ctx, tx, actor, p.Rules, &r, t)
	})
	if err != nil {
		return Report{}, fmt.Errorf("store.TransitionReport: %w", s.mapErr(err))
	}
	return r, nil
}

func (s *Store) transition(ctx context.Context, tx *sql.Tx, actor Actor, rules *program.Program, r *Report, t Transition) error {
	if err := program.CheckTransition(r.State, t.To, t.Reason); err != nil {
		return err
	}
	from := r.State
	now := s.Now()
	var dup any
	if t.To == program.StateDuplicate {
		orig, err := s.reportByNumber(ctx, tx, r.TenantID, t.DuplicateOf)
		if errors.Is(err, sql.ErrNoRows) {
			return public.Errorf(public.Invalid, "%w: report %d does not exist", program.ErrDuplicateTarget, t.DuplicateOf)
		}
		if err != nil {
			return err
		}
		var root *program.ReportRef
		if orig.State == program.StateDuplicate {
			rt, err := s.reportByNumber(ctx, tx, r.TenantID, orig.DuplicateOf)
			if err != nil {
				return err
			}
			ref := rt.Ref()
			root = &ref
		}
		target, err := program.DuplicateOriginal(r.Ref(), orig.Ref(), root)
		if err != nil {
			return err
		}
		dup, r.DuplicateOf = target, target
	} else {
		r.DuplicateOf = 0
	}
	var deadline any
	r.NeedsInfoDeadline = nil
	if t.To == program.StateNeedsMoreInfo {
		d := rules.NeedsInfoDeadline(now)
		deadline, r.NeedsInfoDeadline = micros(d), &d
	}
	if t.Triage.Impact != "" {
		if !slices.ContainsFunc(rules.Impacts, func(i program.Impact) bool { return i.ID == t.Triage.Impact }) {
			return public.Errorf(public.Invalid, "%w: %q", program.ErrUnknownImpact, t.Triage.Impact)
		}
		r.Impact = t.Triage.Impact
	}
	if t.Triage.Severity != "" {
		r.Severity = t.Triage.Severity
	}
	if t.Triage.Quality != "" {
		r.Quality = t.Triage.Quality
	}
	if t.Triage.CVE != "" {
		r.CVE = t.Triage.CVE
	}
	if t.Triage.CVSS != "" {
		r.TeamCVSS = t.Triage.CVSS
	}
	r.State, r.StateReason, r.UpdatedAt = t.To, t.Reason, now
	team := !isResearcher(actor)
	if team && r.FirstResponseAt == nil {
		r.FirstResponseAt = &now
	}
	if t.To == program.StateTriaged && r.TriagedAt == nil {
		r.TriagedAt = &now
	}
	if _, err := tx.ExecContext(ctx, `UPDATE reports SET state = $1, state_reason = $2, duplicate_of = $3, needs_info_deadline = $4,
		impact = $5, severity = $6, quality = $7, cve = $8, updated_at = $9, first_response_at = $10, triaged_at = $11, team_cvss = $12 WHERE id = $13`,
		string(r.State), r.StateReason, dup, deadline, r.Impact, string(r.Severity), string(r.Quality), r.CVE, micros(now),
		nullMicros(r.FirstResponseAt), nullMicros(r.TriagedAt), r.TeamCVSS, r.ID); err != nil {
		return err
	}
	details := Details{}
	if t.Reason != "" {
		details["reason"] = t.Reason
	}
	if r.DuplicateOf != 0 {
		details["duplicate_of"] = r.DuplicateOf
	}
	if t.Triage != (Triage{}) {
		details["impact"], details["severity"], details["quality"] = r.Impact, r.Severity, r.Quality
	}
	if t.Triage.CVSS != "" {
		details["cvss"] = r.TeamCVSS
	}
	kind := "state"
	if actor == System && t.To == program.StateNotApplicable && from == program.StateNeedsMoreInfo {
		kind = "auto_close"
	}
	return s.event(ctx, tx, actor, *r, kind, from, t.To, details)
}

func isResearcher(a Actor) bool { return strings.HasPrefix(string(a), "researcher:") }

// Comment is one message on a report's thread.
type Comment struct {
	ID         string
	Author     string
	AuthorKind string // researcher or team
	Body       string
	CreatedAt  time.Time
}

// AddComment adds a comment to a report's thread. A team comment is a response (it sets the
// first response time); a researcher's comment on a report in needs_more_info answers it and
// moves the report back to new.
func (s *Store) AddComment(ctx context.Context, actor Actor, tenantID string, number int64, body string) (Comment, error) {
	c := Comment{ID: NewID("cmt"), Author: string(actor), AuthorKind: "team", Body: body, CreatedAt: s.Now()}
	if isResearcher(actor) {
		c.AuthorKind = "researcher"
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.reportForUpdate(ctx, tx, tenantID, number)
		if err != nil {
			return err
		}
		if c.AuthorKind == "researcher" && Actor("researcher:"+r.ResearcherID) != actor {
			return sql.ErrNoRows
		}
		seq, err := nextSeq(ctx, tx, "report_comments", r.ID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO report_comments (id, seq, tenant_id, report_id, author, author_kind, body, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, c.ID, seq, tenantID, r.ID, c.Author, c.AuthorKind, c.Body, micros(c.CreatedAt)); err != nil {
			return err
		}
		if c.AuthorKind == "team" && r.FirstResponseAt == nil {
			if _, err := tx.ExecContext(ctx, `UPDATE reports SET first_response_at = $1 WHERE id = $2`, micros(c.CreatedAt), r.ID); err != nil {
				return err
			}
		}
		if err := s.event(ctx, tx, actor, r, "comment", r.State, r.State, Details{"comment": c.ID}); err != nil {
			return err
		}
		if c.AuthorKind == "researcher" && r.State == program.StateNeedsMoreInfo {
			p, err := s.programByName(ctx, tx, tenantID, r.ProgramName)
			if err != nil {
				return err
			}
			return s.transition(ctx, tx, actor, p.Rules, &r, Transition{To: program.StateNew})
		}
		return nil
	})
	if err != nil {
		return Comment{}, fmt.Errorf("store.AddComment: %w", s.mapErr(err))
	}
	return c, nil
}

// ListComments returns a report's thread, oldest first.
func (s *Store) ListComments(ctx context.Context, tenantID string, number int64) ([]Comment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.id, c.author, c.author_kind, c.body, c.created_at FROM report_comments c
		JOIN reports r ON r.id = c.report_id WHERE r.tenant_id = $1 AND r.number = $2 ORDER BY c.seq`, tenantID, number)
	if err != nil {
		return nil, fmt.Errorf("store.ListComments: %w", err)
	}
	defer rows.Close()
	var out []Comment
	for rows.Next() {
		var c Comment
		var at int64
		if err := rows.Scan(&c.ID, &c.Author, &c.AuthorKind, &c.Body, &at); err != nil {
			return nil, fmt.Errorf("store.ListComments: %w", err)
		}
		c.CreatedAt = fromMicros(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store.ListComments: %w", err)
	}
	return out, nil
}

// Event is one entry of a report's history.
type Event struct {
	Seq       int64
	At        time.Time
	Actor     string
	Kind      string
	FromState string
	ToState   string
	Details   string
}

// ListEvents returns a report's history in order.
func (s *Store) ListEvents(ctx context.Context, tenantID string, number int64) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT e.seq, e.at, e.actor, e.kind, e.from_state, e.to_state, e.details FROM report_events e
		JOIN reports r ON r.id = e.report_id WHERE r.tenant_id = $1 AND r.number = $2 ORDER BY e.seq`, tenantID, number)
	if err != nil {
		return nil, fmt.Errorf("store.ListEvents: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Kind, &e.FromState, &e.ToState, &e.Details); err != nil {
			return nil, fmt.Errorf("store.ListEvents: %w", err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store.ListEvents: %w", err)
	}
	return out, nil
}

// Attachment is a file attached to a report.
type Attachment struct {
	ID         string
	Name       string
	Size       int64
	SHA256     string
	UploadedBy string
	CreatedAt  time.Time
}

// AddAttachment stores a file on a report. The caller checks name and size against the
// program (program.CheckAttachment) before reading the content. Researchers may attach only
// to their own reports.
func (s *Store) AddAttachment(ctx context.Context, actor Actor, tenantID string, number int64, name string, content []byte) (Attachment, error) {
	sum := sha256.Sum256(content)
	a := Attachment{ID: NewID("att"), Name: name, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:]), UploadedBy: string(actor), CreatedAt: s.Now()}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r, err := s.reportForUpdate(ctx, tx, tenantID, number)
		if err != nil {
			return err
		}
		if isResearcher(actor) && Actor("researcher:"+r.ResearcherID) != actor {
			return sql.ErrNoRows
		}
		seq, err := nextSeq(ctx, tx, "report_attachments", r.ID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO report_attachments (id, seq, tenant_id, report_id, name, size, sha256, content, uploaded_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, a.ID, seq, tenantID, r.ID, a.Name, a.Size, a.SHA256, content, a.UploadedBy, micros(a.CreatedAt)); err != nil {
			return err
		}
		return s.event(ctx, tx, actor, r, "attachment", r.State, r.State, Details{"attachment": a.ID, "name": name, "size": a.Size, "sha256": a.SHA256})
	})
	if err != nil {
		return Attachment{}, fmt.Errorf("store.AddAttachment: %w", s.mapErr(err))
	}
	return a, nil
}

// ListAttachments lists a report's attachments without their content.
func (s *Store) ListAttachments(ctx context.Context, tenantID string, number int64) ([]Attachment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT a.id, a.name, a.size, a.sha256, a.uploaded_by, a.created_at FROM report_attachments a
		JOIN reports r ON r.id = a.report_id WHERE r.tenant_id = $1 AND r.number = $2 ORDER BY a.seq`, tenantID, number)
	if err != nil {
		return nil, fmt.Errorf("store.ListAttachments: %w", err)
	}
	defer rows.Close()
	var out []Attachment
	for rows.Next() {
		var a Attachment
		var at int64
		if err := rows.Scan(&a.ID, &a.Name, &a.Size, &a.SHA256, &a.UploadedBy, &at); err != nil {
			return nil, fmt.Errorf("store.ListAttachments: %w", err)
		}
		a.CreatedAt = fromMicros(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store.ListAttachments: %w", err)
	}
	return out, nil
}

// AttachmentContent returns one attachment of a tenant's report with its content.
func (s *Store) AttachmentContent(ctx context.Context, tenantID string, number int64, id string) (Attachment, []byte, error) {
	var a Attachment
	var at int64
	var content []byte
	err := s.db.QueryRowContext(ctx, `SELECT a.id, a.name, a.size, a.sha256, a.uploaded_by, a.created_at, a.content FROM report_attachments a
		JOIN reports r ON r.id = a.report_id WHERE r.tenant_id = $1 AND r.number = $2 AND a.id = $3`, tenantID, number, id).
		Scan(&a.ID, &a.Name, &a.Size, &a.SHA256, &a.UploadedBy, &at, &content)
	if err != nil {
		return Attachment{}, nil, fmt.Errorf("store.AttachmentContent: %w", s.mapErr(err))
	}
	a.CreatedAt = fromMicros(at)
	return a, content, nil
}

// AutoCloseExpired closes every report whose needs-more-info deadline has passed, as the
// system actor, and returns how many it closed.
func (s *Store) AutoCloseExpired(ctx context.Context) (int, error) {
	now := s.Now()
	due, err := s.reportKeys(ctx, `SELECT tenant_id, number FROM reports WHERE state = $1 AND needs_info_deadline <= $2`,
		string(program.StateNeedsMoreInfo), micros(now))
	if err != nil {
		return 0, fmt.Errorf("store.AutoCloseExpired: %w", err)
	}
	closed := 0
	for _, k := range due {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			r, err := s.reportForUpdate(ctx, tx, k.tenant, k.number)
			if err != nil {
				return err
			}
			// Re-check inside the transaction: the researcher may have answered meanwhile.
			to, ok := program.AutoClose(r.State, derefTime(r.NeedsInfoDeadline), now)
			if !ok {
				return nil
			}
			p, err := s.programByName(ctx, tx, k.tenant, r.ProgramName)
			if err != nil {
				return err
			}
			closed++
			return s.transition(ctx, tx, System, p.Rules, &r, Transition{To: to, Reason: program.AutoCloseReason})
		})
		if err != nil {
			return closed, fmt.Errorf("store.AutoCloseExpired: report %d: %w", k.number, err)
		}
	}
	return closed, nil
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// reportKey names a report across tenants, for the server's timers.
type reportKey struct {
	tenant string
	number int64
}

// reportKeys runs a query selecting (tenant_id, number) and reads all its rows before
// returning, so that the caller may open transactions for each.
func (s *Store) reportKeys(ctx context.Context, query string, args ...any) ([]reportKey, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []reportKey
	for rows.Next() {
		var k reportKey
		if err := rows.Scan(&k.tenant, &k.number); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
