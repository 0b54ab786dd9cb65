package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/program"
	"github.com/rampartsec/rampart/internal/ratelimit"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/token"
)

// The researcher API (/research/v1). A researcher authenticates with a researcher token and
// sees only their own applications and reports: every query below is scoped to the
// researcher, and a report of anyone else answers 404 exactly like a report that does not
// exist. Every refused request of an authenticated researcher is written to the tenant's
// audit chain (auditResearcherRefusal), and nothing else is written.

func newResearcherToken() (secret, hash string) { return token.GenerateResearcher() }

func (a *API) authenticateResearcher(ctx context.Context, header string) (*principal, error) {
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if header == "" {
		return nil, unauthorized("a researcher token is required (Authorization: Bearer <token>)")
	}
	secret = strings.TrimSpace(secret)
	if !ok || !token.ResearcherWellFormed(secret) {
		return nil, unauthorized("the researcher token is malformed")
	}
	r, err := a.store.ResearcherByTokenHash(ctx, token.Hash(secret))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, unauthorized("the researcher token is not valid")
		}
		return nil, internal(err)
	}
	if r.TokenRevokedAt != nil {
		return nil, unauthorized("the researcher token was revoked")
	}
	return &principal{tenantID: r.TenantID, researcher: &r}, nil
}

// revokeResearcherToken is the team's side: an administrator revokes a researcher's token.
func (a *API) revokeResearcherToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req client.RevokeResearcherTokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := checkDescription(req.Reason); err != nil {
		return badRequest("reason must be one line of at most 500 bytes")
	}
	id := r.PathValue("id")
	res, err := a.store.RevokeResearcherToken(r.Context(), p.actor(), p.tenantID, id, req.Reason)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return storeError(err, "researcher "+id)
		}
		return programError(err, "researcher "+id)
	}
	writeJSON(w, http.StatusOK, client.Researcher{ID: res.ID, Name: res.Name, Email: res.Email, CreatedAt: res.CreatedAt, TokenRevokedAt: res.TokenRevokedAt})
	return nil
}

// auditResearcherRefusal records a refused request of an authenticated researcher: a report
// from a researcher not accepted, bad input, another researcher's report.
func (a *API) auditResearcherRefusal(r *http.Request, p *principal, e *Error) {
	if p == nil || p.researcher == nil || e.Status < 400 || e.Status >= 500 {
		return
	}
	err := a.store.AuditDenied(context.WithoutCancel(r.Context()), p.researcher.TenantID, p.actor(), "research.refused",
		r.Method+" "+r.URL.Path, fmt.Sprintf("%d %s", e.Status, e.Message))
	if err != nil {
		a.log.Error("audit of a refused researcher request failed", "path", r.URL.Path, "err", err)
	}
}

// DefaultApplyRate is how many researcher applications one client address may send per second
// on average: one a minute, in bursts of 20 (a team behind one NAT applying together). Every
// attempt counts, refused ones too, so the public route cannot be used to probe tenants and
// programs or to flood the triage team.
const DefaultApplyRate = 1.0 / 60

// ApplyLimit returns the per-address limiter of researcher applications for perSecond (bursts
// of 20); nil, meaning no limit, when perSecond is 0.
func ApplyLimit(perSecond float64) *ratelimit.Limiter {
	if perSecond <= 0 {
		return nil
	}
	return ratelimit.New(perSecond, 20, 100_000)
}

func (a *API) researchApply(w http.ResponseWriter, r *http.Request, _ *principal) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ok, wait := a.applyLimit.Allow(host, a.now()); !ok {
		return tooMany(w, wait, "too many applications from %s; try again later", host)
	}
	var req client.ApplyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	app := program.Application{Name: req.Name, Email: req.Email, Country: req.Country, Affiliation: req.Affiliation, Experience: req.Experience}
	if err := app.Validate(); err != nil {
		return programError(err, "application")
	}
	if err := checkTenantName(req.Tenant); err != nil {
		return err
	}
	secret, hash := newResearcherToken()
	_, out, err := a.store.ApplyNew(r.Context(), req.Tenant, req.Program, app, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("program %s of %s not found", req.Program, req.Tenant)
	case errors.Is(err, store.ErrConflict):
		return conflict("a researcher with e-mail %s is already registered; apply with your researcher token", req.Email)
	case err != nil:
		return internal(err)
	}
	writeJSON(w, http.StatusCreated, client.ApplyResponse{Application: applicationOut(out), Token: secret})
	return nil
}

func (a *API) researchMe(w http.ResponseWriter, r *http.Request, p *principal) error {
	as, err := a.store.ResearcherApplications(r.Context(), *p.researcher)
	if err != nil {
		return internal(err)
	}
	out := client.Me{ID: p.researcher.ID, Name: p.researcher.Name, Email: p.researcher.Email, Applications: []client.Application{}}
	for _, app := range as {
		out.Applications = append(out.Applications, applicationOut(app))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) researchProgramApply(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req client.ProgramApplyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	app := program.Application{Name: p.researcher.Name, Email: p.researcher.Email, Country: req.Country, Affiliation: req.Affiliation, Experience: req.Experience}
	if err := app.Validate(); err != nil {
		return programError(err, "application")
	}
	name := r.PathValue("program")
	out, err := a.store.Apply(r.Context(), *p.researcher, name, app)
	if err != nil {
		return programError(err, "program "+name)
	}
	writeJSON(w, http.StatusCreated, applicationOut(out))
	return nil
}

func (a *API) researchSubmit(w http.ResponseWriter, r *http.Request, p *principal) error {
	sub, err := program.DecodeSubmission(http.MaxBytesReader(w, r.Body, program.MaxSubmissionBytes+1))
	if err != nil {
		return programError(err, "report")
	}
	ctx := r.Context()
	name := r.PathValue("program")
	pr, err := a.store.ProgramByName(ctx, p.tenantID, name)
	if err != nil {
		return storeError(err, "program "+name)
	}
	if _, err := sub.Validate(pr.Rules, a.store.Now()); err != nil {
		return programError(err, "report")
	}
	rep, err := a.store.SubmitReport(ctx, *p.researcher, name, sub)
	if err != nil {
		return programError(err, "program "+name)
	}
	writeJSON(w, http.StatusCreated, reportOut(rep))
	return nil
}

func (a *API) researchListReports(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	rs, next, err := a.store.ListReports(r.Context(), p.tenantID, store.ReportFilter{ResearcherID: p.researcher.ID}, pg)
	if err != nil {
		return storeError(err, "report")
	}
	list(w, rs, next, reportOut)
	return nil
}

// ownReport returns the researcher's report, or 404 for any other.
func (a *API) ownReport(r *http.Request, p *principal) (store.Report, error) {
	n, err := reportNumber(r)
	if err != nil {
		return store.Report{}, err
	}
	rep, err := a.store.ResearcherReport(r.Context(), *p.researcher, n)
	if err != nil {
		return store.Report{}, storeError(err, fmt.Sprintf("report %d", n))
	}
	return rep, nil
}

// ownReportNumber is ownReport as a reportFinder.
func (a *API) ownReportNumber(r *http.Request, p *principal) (int64, error) {
	rep, err := a.ownReport(r, p)
	return rep.Number, err
}

// researchGetReport answers the researcher's own report with what the researcher may know of
// its outcome: the award and the rules' explanation, and once a fix is linked, the fix
// release and the share of the product's devices that run a fixed release; never device IDs,
// device counts or the team's ledger entries.
func (a *API) researchGetReport(w http.ResponseWriter, r *http.Request, p *principal) error {
	rep, err := a.ownReport(r, p)
	if err != nil {
		return err
	}
	ctx := r.Context()
	out := client.ResearcherReport{Report: reportOut(rep)}
	out.Report.TeamCVSS = nil // the team's own score stays the team's
	l, err := a.store.ReportLedger(ctx, p.tenantID, rep.Number)
	if err != nil {
		return internal(err)
	}
	for _, e := range l.Entries {
		if e.Kind != store.LedgerAward {
			continue
		}
		aw := &client.ResearcherAward{Amount: e.Amount, Currency: e.Currency, Computed: e.Amount, Explanation: []string{}, DecidedAt: e.CreatedAt}
		if e.Award != nil {
			aw.Computed, aw.Explanation = e.Award.Computed, e.Award.Explanation
			if e.Award.Override != nil {
				aw.OverrideReason = e.Award.Override.Reason
			}
		}
		out.Award = aw // the latest decision counts
	}
	if out.Award != nil {
		out.Award.Paid = l.Paid()
	}
	fix, err := a.store.ReportFix(ctx, p.tenantID, rep.Number)
	switch {
	case errors.Is(err, store.ErrNotFixed):
	case err != nil:
		return internal(err)
	default:
		cov, err := a.store.CurrentCoverage(ctx, p.tenantID, rep.Number)
		if err != nil {
			return internal(err)
		}
		out.Fix = &client.ResearcherFix{Fixed: fix.Fixed, ReleasedAt: fix.ReleasedAt, CoveragePercent: CoveragePercent(cov.Covered, cov.Total), At: cov.At}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// CoveragePercent is covered of total in percent, rounded down to a tenth so that 100 means
// every device; 0 when there are no devices.
func CoveragePercent(covered, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return float64(covered*1000/total) / 10
}

// researchReportEvents answers the state timeline of the researcher's own report. Who acted is
// said as "researcher", "team" or "system", never which token; the events' details (the team's
// notes, amounts, device figures) stay with the team.
func (a *API) researchReportEvents(w http.ResponseWriter, r *http.Request, p *principal) error {
	rep, err := a.ownReport(r, p)
	if err != nil {
		return err
	}
	es, err := a.store.ListEvents(r.Context(), p.tenantID, rep.Number)
	if err != nil {
		return internal(err)
	}
	out := make([]client.ResearcherEvent, 0, len(es))
	for _, e := range es {
		who := "team"
		switch store.Actor(e.Actor) {
		case p.researcher.Actor():
			who = "researcher"
		case store.System:
			who = "system"
		}
		out = append(out, client.ResearcherEvent{At: e.At, Kind: e.Kind, From: e.FromState, To: e.ToState, Actor: who})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) researchAttach(w http.ResponseWriter, r *http.Request, p *principal) error {
	rep, err := a.ownReport(r, p)
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		return newError(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "an attachment is sent as application/octet-stream")
	}
	ctx := r.Context()
	pr, err := a.store.ProgramByName(ctx, p.tenantID, rep.ProgramName)
	if err != nil {
		return internal(err)
	}
	limit := pr.Rules.MaxAttachmentBytes
	name := r.URL.Query().Get("name")
	if err := program.ValidAttachmentName(name); err != nil {
		return programError(err, "attachment")
	}
	if r.ContentLength > limit {
		return programError(pr.Rules.CheckAttachment(name, r.ContentLength), "attachment")
	}
	content, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return badRequest("the attachment could not be read")
	}
	if err := pr.Rules.CheckAttachment(name, int64(len(content))); err != nil {
		return programError(err, "attachment")
	}
	att, err := a.store.AddAttachment(ctx, p.actor(), p.tenantID, rep.Number, name, content)
	if err != nil {
		return programError(err, fmt.Sprintf("report %d", rep.Number))
	}
	writeJSON(w, http.StatusCreated, attachmentsOut([]store.Attachment{att})[0])
	return nil
}
