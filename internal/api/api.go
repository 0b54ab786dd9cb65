// Package api serves Rampart's admin API under /api/v1: JSON over HTTPS with bearer tokens,
// one error envelope, pagination on every list, and authorisation decided per route and scoped
// to the caller's tenant on every query. Its OpenAPI document is generated from the same route
// table that serves the API, so the two cannot drift. Only the server and the web console
// (internal/console, which calls the routes in process as the signed-in caller) import it.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/attest"
	"github.com/rampartsec/rampart/internal/ca/keeper"
	"github.com/rampartsec/rampart/internal/ratelimit"
	"github.com/rampartsec/rampart/internal/release"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/tasks"
	"github.com/rampartsec/rampart/internal/token"
	"github.com/rampartsec/rampart/internal/wake"
)

// Deps are what the API needs.
type Deps struct {
	Store  *store.Store
	Logger *slog.Logger
	// CAs opens tenant certificate authorities.
	CAs *keeper.Keeper
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// AddrLimit and DeviceLimit rate-limit the device API per client address and per device.
	// Nil means no limit; the server passes limits built from --device-rate and --address-rate.
	AddrLimit, DeviceLimit *ratelimit.Limiter
	// References supplies reference values for attestation; when nil they are derived from
	// Releases (the images of signed and revoked releases), and without either no software is
	// known, so every device is contraindicated (update-only).
	References attest.ReferenceSource
	// Releases serves images, releases and the TUF roots; those routes answer 503 when nil.
	Releases *release.Service
	// ApplyLimit rate-limits the public researcher application route per client address; nil
	// means no limit. The server passes ApplyLimit(DefaultApplyRate).
	ApplyLimit *ratelimit.Limiter
	// ReportLimit caps the crash reports each device may file, counted per report rather than
	// per request; DefaultReportLimit() when nil.
	ReportLimit *ratelimit.Limiter
	// Wake holds the devices waiting on /device/v1/wait; a hub for a million waiters when nil.
	Wake *wake.Hub
	// Waker wakes the devices a deployment offers its release to when an operator creates or
	// resumes it; a tasks.Waker on Wake's hub when nil.
	Waker DeploymentWaker
	// Evidence is told of each device that reported evidence a deployment's criteria count (a
	// crash batch, a failed install), so that they are checked at once rather than at the
	// stepper's next tick (tasks.Stepper.Evidence). Nil leaves it to the tick.
	Evidence func(tenantID, deviceID string)
}

// DeploymentWaker wakes the devices of a deployment's group that it offers the release to now
// (tasks.Waker).
type DeploymentWaker interface {
	WakeDeployment(store.Deployment)
}

// Default device API rate limits: a device checks in, attests and reports a few times an hour,
// so 1 request per second with bursts of 20 leaves room for metadata refreshes and retries; an
// address may front many devices (NAT), so it gets more.
const (
	DefaultDeviceRate = 1.0
	DefaultAddrRate   = 200.0
)

// DeviceLimit returns the per-device limiter for perSecond (bursts of 20 s worth); nil, meaning
// no limit, when perSecond is 0.
func DeviceLimit(perSecond float64) *ratelimit.Limiter {
	if perSecond <= 0 {
		return nil
	}
	return ratelimit.New(perSecond, max(int(20*perSecond), 20), 1_000_000)
}

// AddrLimit returns the per-address limiter for perSecond (bursts of 10 s worth); nil when 0.
func AddrLimit(perSecond float64) *ratelimit.Limiter {
	if perSecond <= 0 {
		return nil
	}
	return ratelimit.New(perSecond, max(int(10*perSecond), 20), 100_000)
}

// API serves the admin API (/api/v1) and the device API (/device/v1).
type API struct {
	store        *store.Store
	log          *slog.Logger
	cas          *keeper.Keeper
	attest       *attest.Service
	now          func() time.Time
	addrLimit    *ratelimit.Limiter
	deviceLimit  *ratelimit.Limiter
	releases     *release.Service
	applyLimit   *ratelimit.Limiter
	reportLimit  *ratelimit.Limiter
	evidence     func(tenantID, deviceID string)
	certs        *certCache
	wake         *wake.Hub
	waker        DeploymentWaker
	mux          *http.ServeMux
	routes       []route
	deviceRoutes []route
	fleetCounts  fleetCounts
}

// New builds the API with every route registered.
func New(d Deps) *API {
	a := &API{store: d.Store, log: d.Logger, cas: d.CAs, now: d.Now, addrLimit: d.AddrLimit, deviceLimit: d.DeviceLimit,
		releases: d.Releases, applyLimit: d.ApplyLimit, reportLimit: d.ReportLimit, evidence: d.Evidence, certs: newCertCache(100_000), mux: http.NewServeMux()}
	if a.evidence == nil {
		a.evidence = func(string, string) {}
	}
	if a.reportLimit == nil {
		a.reportLimit = DefaultReportLimit()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.wake = d.Wake; a.wake == nil {
		a.wake = wake.NewHub(1_000_000)
	}
	if a.waker = d.Waker; a.waker == nil {
		a.waker = tasks.NewWaker(d.Store, a.wake, d.Logger)
	}
	var refs attest.ReferenceSource = emptyReferences{}
	switch {
	case d.References != nil:
		refs = d.References
	case d.Releases != nil:
		refs = releaseReferences{rel: d.Releases}
	}
	a.attest = attest.NewService(attest.ServiceConfig{Store: d.Store, CAs: d.CAs, References: refs, Logger: d.Logger, Now: a.now})
	a.register()
	a.registerDevice()
	return a
}

// ServeHTTP serves the admin, researcher and device APIs. Every request's path and query are
// checked to be text first, once for every route (checkText).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e := checkText(r); e != nil {
		writeError(w, e)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// access is who may call a route.
type access struct {
	public     bool       // no token needed
	role       token.Role // the least role that may call it
	service    bool       // only service administrators
	researcher bool       // a researcher token, on the researcher API (/research/v1)
}

var (
	public   = access{public: true}
	reader   = access{role: token.Reader}
	operator = access{role: token.Operator}
	admin    = access{role: token.Admin}
	service  = access{role: token.Admin, service: true}
	// researcherOnly routes take a researcher token; the handler sees only the researcher's
	// own applications and reports.
	researcherOnly = access{researcher: true}
)

// principal is the authenticated caller.
type principal struct {
	tokenID    string
	tenantID   string
	tenantName string
	role       token.Role
	service    bool
	// researcher is set, and the fields above are empty, on researcher API routes.
	researcher *store.Researcher
	// actorName, when set, is who the audit chain names instead of the token (an in-process
	// Caller signed in another way).
	actorName store.Actor
}

func (p *principal) actor() store.Actor {
	if p.researcher != nil {
		return p.researcher.Actor()
	}
	if p.actorName != "" {
		return p.actorName
	}
	return store.Actor("token:" + p.tokenID)
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p *principal) error

// route is one entry of the route table; doc feeds the OpenAPI document.
type route struct {
	method, path string
	access       access
	doc          doc
}

// register is the one place where every admin route and its authorisation are declared.
func (a *API) register() {
	a.handle("GET /api/v1/openapi.json", public, a.openAPI, doc{summary: "This OpenAPI document", response: openAPIDoc{}})
	a.handle("GET /api/v1/whoami", reader, a.whoAmI, doc{summary: "Describe the caller's token", response: client.WhoAmI{}})

	a.handle("GET /api/v1/tenants", service, a.listTenants, doc{summary: "List tenants (service administrators)", response: client.List[client.Tenant]{}})
	a.handle("POST /api/v1/tenants", service, a.createTenant, doc{summary: "Create a tenant (service administrators)", body: client.CreateTenantRequest{}, response: client.Tenant{}, status: http.StatusCreated})

	a.handle("GET /api/v1/tokens", admin, a.listTokens, doc{summary: "List the tenant's API tokens", response: client.List[client.Token]{}})
	a.handle("POST /api/v1/tokens", admin, a.createToken, doc{summary: "Create an API token; its secret is shown only in this answer", body: client.CreateTokenRequest{}, response: client.Token{}, status: http.StatusCreated})
	a.handle("DELETE /api/v1/tokens/{id}", admin, a.revokeToken, doc{summary: "Revoke an API token", response: client.Token{}})

	a.handle("GET /api/v1/products", reader, a.listProducts, doc{summary: "List products", response: client.List[client.Product]{}})
	a.handle("POST /api/v1/products", operator, a.createProduct, doc{summary: "Create a product with the groups Development, Field Test and Production", body: client.CreateProductRequest{}, response: client.Product{}, status: http.StatusCreated})
	a.handle("GET /api/v1/products/{product}", reader, a.getProduct, doc{summary: "Show a product and its groups", response: client.Product{}})
	a.handle("GET /api/v1/products/{product}/groups", reader, a.listGroups, doc{summary: "List a product's device groups; count=false leaves their devices uncounted (devices -1)", response: client.List[client.Group]{}, query: []string{"count"}})
	a.handle("POST /api/v1/products/{product}/groups", operator, a.createGroup, doc{summary: "Create a device group", body: client.CreateGroupRequest{}, response: client.Group{}, status: http.StatusCreated})
	a.handle("GET /api/v1/products/{product}/groups/{group}", reader, a.getGroup, doc{summary: "Show a device group", response: client.Group{}})

	a.handle("GET /api/v1/ca", reader, a.getCA, doc{summary: "The tenant's certificate authority, which relying parties trust for device certificates", response: client.CA{}})

	a.handle("GET /api/v1/fleet", reader, a.fleet, doc{summary: "The fleet at a glance: devices by attestation, check-in and release; open reports by severity with their clocks", response: client.Fleet{}, query: []string{"product"}})
	a.handle("GET /api/v1/devices", reader, a.listDevices, doc{summary: "List devices, filtered and sorted", response: client.List[client.Device]{},
		query: []string{"product", "group", "release", "attestation", "update_only", "seen", "q", "sort"}})
	a.handle("GET /api/v1/devices/{id}", reader, a.getDevice, doc{summary: "Show a device", response: client.Device{}})
	a.handle("POST /api/v1/devices/{id}/claim", operator, a.claimDevice, doc{summary: "Claim an enrolled device into a product and group (TPM devices need a trusted or preauthorised EK)", body: client.ClaimDeviceRequest{}, response: client.Device{}})
	a.handle("POST /api/v1/devices/{id}/move", operator, a.moveDevice, doc{summary: "Move a claimed device to another group of its product; the group's deployment picks it up", body: client.MoveDeviceRequest{}, response: client.Device{}})
	a.handle("GET /api/v1/devices/{id}/installs", reader, a.listInstalls, doc{summary: "The device's install reports, newest first", response: client.List[client.InstallReport]{}})
	a.handle("GET /api/v1/devices/{id}/crashes", reader, a.listDeviceCrashes, doc{summary: "The device's crash reports, newest first", response: client.List[client.DeviceCrash]{}})
	a.handle("GET /api/v1/devices/{id}/attestations", reader, a.listAttestations, doc{summary: "The device's attestation results, newest first", response: client.List[client.Attestation]{}})
	a.handle("POST /api/v1/preauthorizations", operator, a.preauthorize, doc{summary: "Preauthorise a device by its EK or identity-key hash; it is claimed when it enrols", body: client.PreauthorizeRequest{}, response: client.PreauthorizeRequest{}, status: http.StatusCreated})
	a.handle("GET /api/v1/manufacturer-cas", reader, a.getManufacturerCAs, doc{summary: "The TPM manufacturer CAs the tenant trusts for EK certificates", response: client.ManufacturerCAs{}})
	a.handle("PUT /api/v1/manufacturer-cas", admin, a.setManufacturerCAs, doc{summary: "Replace the TPM manufacturer CAs the tenant trusts for EK certificates", body: client.ManufacturerCAs{}, response: client.ManufacturerCAs{}})
	a.handle("GET /api/v1/products/{product}/attestation-policy", reader, a.getAttestationPolicy, doc{summary: "The product's attestation policy", response: client.AttestationPolicy{}})
	a.handle("PUT /api/v1/products/{product}/attestation-policy", admin, a.setAttestationPolicy, doc{summary: "Set the product's attestation policy", body: client.AttestationPolicy{}, response: client.AttestationPolicy{}})

	a.handle("GET /api/v1/audit", admin, a.listAudit, doc{summary: "List the tenant's audit records in chain order (order=newest: newest first)", response: client.List[client.AuditRecord]{}, query: []string{"action", "target", "order"}})
	a.handle("GET /api/v1/audit/verify", admin, a.verifyAudit, doc{summary: "Verify the tenant's audit hash chain", response: client.AuditVerification{}})

	a.registerUpdates()
	a.registerRollouts()
	// Vulnerability response: programs, applications, reports, awards, fixes and advisories.
	a.handle("GET /api/v1/programs", reader, a.listPrograms, doc{summary: "List research programs", response: client.List[client.Program]{}})
	a.handle("POST /api/v1/programs", admin, a.createProgram, doc{summary: "Create a research program from its rules file", body: client.CreateProgramRequest{}, response: client.Program{}, status: http.StatusCreated})
	a.handle("GET /api/v1/programs/{program}", reader, a.getProgram, doc{summary: "Show a program and its rules", response: client.Program{}})
	a.handle("GET /api/v1/programs/{program}/report", reader, a.programReport, doc{summary: "Summarise a program: applications, reports, awards and median times", response: client.ProgramReport{}})
	a.handle("GET /api/v1/programs/{program}/applications", reader, a.listApplications, doc{summary: "List a program's applications", response: client.List[client.Application]{}})
	a.handle("POST /api/v1/programs/{program}/invitations", admin, a.invite, doc{summary: "Invite a researcher; the researcher token is shown only in this answer", body: client.InviteRequest{}, response: client.Invitation{}, status: http.StatusCreated})
	a.handle("POST /api/v1/programs/{program}/applications/{id}/accept", admin, a.acceptApplication, doc{summary: "Accept an application", body: client.DecideRequest{}, response: client.Application{}})
	a.handle("POST /api/v1/programs/{program}/applications/{id}/reject", admin, a.rejectApplication, doc{summary: "Reject an application", body: client.DecideRequest{}, response: client.Application{}})
	a.handle("POST /api/v1/researchers/{id}/revoke-token", admin, a.revokeResearcherToken, doc{summary: "Revoke a researcher's token; every researcher route refuses it from then on", body: client.RevokeResearcherTokenRequest{}, response: client.Researcher{}})
	a.handle("GET /api/v1/reports", reader, a.listReports, doc{summary: "List vulnerability reports", response: client.List[client.Report]{}, query: []string{"program", "state"}})
	a.handle("GET /api/v1/reports/{number}", reader, a.getReport, doc{summary: "Show a report with its award, fix coverage and metrics", response: client.Report{}})
	a.handle("POST /api/v1/reports/{number}/triage", operator, a.triageReport, doc{summary: "Change a report's state and triage fields", body: client.TriageRequest{}, response: client.Report{}})
	a.handle("GET /api/v1/reports/{number}/award", reader, a.previewAward, doc{summary: "What an award would pay now by the program's rules, with their explanation; nothing is written", response: client.AwardPreview{}})
	a.handle("GET /api/v1/cvss", reader, a.scoreCVSS, doc{summary: "Score a CVSS 3.1 or 4.0 vector as reports are scored", response: client.CVSSScore{}, query: []string{"vector"}})
	a.handle("POST /api/v1/reports/{number}/award", admin, a.awardReport, doc{summary: "Award a report by the program's rules, with an optional override and its reason", body: client.AwardRequest{}, response: client.LedgerEntry{}, status: http.StatusCreated})
	a.handle("POST /api/v1/reports/{number}/payments", admin, a.recordPayment, doc{summary: "Record a payment against a report's award", body: client.PaymentRequest{}, response: client.LedgerEntry{}, status: http.StatusCreated})
	a.handle("GET /api/v1/reports/{number}/ledger", reader, a.reportLedger, doc{summary: "List a report's award ledger", response: []client.LedgerEntry{}})
	a.handle("POST /api/v1/reports/{number}/fix", operator, a.linkFix, doc{summary: "Link a report to the releases it affects and the release that fixes it", body: client.LinkFixRequest{}, response: client.Report{}})
	a.handle("GET /api/v1/reports/{number}/comments", reader, a.reportComments(a.existingReport), doc{summary: "List a report's comment thread", response: []client.Comment{}})
	a.handle("POST /api/v1/reports/{number}/comments", operator, a.commentReport(a.existingReport), doc{summary: "Comment on a report as the triage team", body: client.CommentRequest{}, response: client.Comment{}, status: http.StatusCreated})
	a.handle("GET /api/v1/reports/{number}/events", reader, a.reportEvents, doc{summary: "List a report's history", response: []client.ReportEvent{}})
	a.handle("GET /api/v1/reports/{number}/attachments", reader, a.reportAttachments(a.existingReport), doc{summary: "List a report's attachments", response: []client.Attachment{}})
	a.handle("GET /api/v1/reports/{number}/attachments/{id}", reader, a.reportAttachment(a.existingReport), doc{summary: "Download an attachment (application/octet-stream)", response: client.Attachment{}})
	a.handle("POST /api/v1/reports/{number}/advisory", operator, a.exportAdvisory, doc{summary: "Export a fixed report's advisory as CSAF 2.0 or OpenVEX", body: client.AdvisoryRequest{}, response: json.RawMessage{}})

	// The researcher API: researcher tokens, and a researcher sees only their own reports.
	a.handle("POST /research/v1/applications", public, a.researchApply, doc{summary: "Apply to a program as a new researcher; the researcher token is shown only in this answer", body: client.ApplyRequest{}, response: client.ApplyResponse{}, status: http.StatusCreated})
	a.handle("GET /research/v1/me", researcherOnly, a.researchMe, doc{summary: "Describe the researcher and their applications", response: client.Me{}})
	a.handle("GET /research/v1/programs/{program}", researcherOnly, a.getProgram, doc{summary: "Show a program's scope, scenarios and award rules", response: client.Program{}})
	a.handle("POST /research/v1/programs/{program}/application", researcherOnly, a.researchProgramApply, doc{summary: "Apply to a program, or complete an invitation", body: client.ProgramApplyRequest{}, response: client.Application{}, status: http.StatusCreated})
	a.handle("POST /research/v1/programs/{program}/reports", researcherOnly, a.researchSubmit, doc{summary: "Submit a report (accepted researchers only)", body: client.SubmitReportRequest{}, response: client.Report{}, status: http.StatusCreated})
	a.handle("GET /research/v1/reports", researcherOnly, a.researchListReports, doc{summary: "List the researcher's own reports", response: client.List[client.Report]{}})
	a.handle("GET /research/v1/reports/{number}", researcherOnly, a.researchGetReport, doc{summary: "Show one of the researcher's reports, its award with the rules' explanation and, once fixed, the share of the fleet on the fix", response: client.ResearcherReport{}})
	a.handle("GET /research/v1/reports/{number}/events", researcherOnly, a.researchReportEvents, doc{summary: "The state timeline of one of the researcher's reports", response: []client.ResearcherEvent{}})
	a.handle("GET /research/v1/reports/{number}/comments", researcherOnly, a.reportComments(a.ownReportNumber), doc{summary: "List the thread of one of the researcher's reports", response: []client.Comment{}})
	a.handle("POST /research/v1/reports/{number}/comments", researcherOnly, a.commentReport(a.ownReportNumber), doc{summary: "Comment on one of the researcher's reports", body: client.CommentRequest{}, response: client.Comment{}, status: http.StatusCreated})
	a.handle("GET /research/v1/reports/{number}/attachments", researcherOnly, a.reportAttachments(a.ownReportNumber), doc{summary: "List the attachments of one of the researcher's reports", response: []client.Attachment{}})
	a.handle("GET /research/v1/reports/{number}/attachments/{id}", researcherOnly, a.reportAttachment(a.ownReportNumber), doc{summary: "Download an attachment of one of the researcher's reports (application/octet-stream)", response: client.Attachment{}})
	a.handle("POST /research/v1/reports/{number}/attachments", researcherOnly, a.researchAttach, doc{summary: "Attach a file (application/octet-stream, ?name=) to one of the researcher's reports", response: client.Attachment{}, status: http.StatusCreated, query: []string{"name"}})

	a.mux.HandleFunc("/api/", a.unmatched)
	a.mux.HandleFunc("/research/", a.unmatched)
}

// unmatched answers requests that no route serves: 405 with Allow when the path exists under
// another method, else 404, both in the error envelope.
func (a *API) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "/api/" && pattern != "/device/" && pattern != "/research/" {
			allow = append(allow, m)
		}
	}
	if allow != nil {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	writeError(w, notFound("no such API endpoint: %s %s", r.Method, r.URL.Path))
}

// handle registers one route: authentication, the route's authorisation, the handler, and the
// mapping of its error to the envelope.
func (a *API) handle(pattern string, acc access, h handlerFunc, d doc) {
	method, path, _ := strings.Cut(pattern, " ")
	a.routes = append(a.routes, route{method: method, path: path, access: acc, doc: d})
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if p, err := a.serve(w, r, acc, h); err != nil {
			a.auditResearcherRefusal(r, p, asError(err))
			a.fail(w, r, err)
		}
	})
}

// fail logs a handler's error (faults at error level, refusals at debug) and answers with the
// envelope.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if e.Status >= 500 {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		a.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", e.Status, "err", err)
	}
	writeError(w, e)
}

// serve authenticates the caller as the route demands and runs the handler; it returns the
// principal it found, if any, with the handler's error.
func (a *API) serve(w http.ResponseWriter, r *http.Request, acc access, h handlerFunc) (*principal, error) {
	if acc.public {
		return nil, h(w, r, nil)
	}
	c, inProcess := callerFrom(r)
	if acc.researcher {
		var p *principal
		var err error
		switch {
		case !inProcess:
			p, err = a.authenticateResearcher(r.Context(), r.Header.Get("Authorization"))
		case c.Researcher == nil:
			err = unauthorized("a researcher must sign in to the researcher portal for this")
		default:
			p = c.principal()
		}
		if err != nil {
			return nil, err
		}
		return p, h(w, r, p)
	}
	var p *principal
	var err error
	switch {
	case !inProcess:
		p, err = a.authenticate(r.Context(), r.Header.Get("Authorization"))
	case c.Researcher != nil:
		err = unauthorized("a researcher's session cannot use the operator API")
	default:
		p = c.principal()
	}
	if err != nil {
		return nil, err
	}
	if acc.service && !p.service {
		return p, forbidden("this endpoint needs a service administrator's token")
	}
	if !p.role.Allows(acc.role) {
		return p, forbidden("this endpoint needs the %s role; the token has %s", acc.role, p.role)
	}
	return p, h(w, r, p)
}

func (a *API) authenticate(ctx context.Context, header string) (*principal, error) {
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if header == "" {
		return nil, unauthorized("an API token is required (Authorization: Bearer <token>)")
	}
	secret = strings.TrimSpace(secret)
	if !ok || !token.WellFormed(secret) {
		return nil, unauthorized("the API token is malformed")
	}
	tok, err := a.store.TokenByHash(ctx, token.Hash(secret))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, unauthorized("the API token is not valid")
		}
		return nil, internal(err)
	}
	if tok.RevokedAt != nil {
		return nil, unauthorized("the API token was revoked")
	}
	return &principal{tokenID: tok.ID, tenantID: tok.TenantID, tenantName: tok.TenantName, role: token.Role(tok.Role), service: tok.Service}, nil
}
