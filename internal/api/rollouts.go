package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/failure"
	"github.com/rampartsec/rampart/internal/ratelimit"
	"github.com/rampartsec/rampart/internal/release"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
)

// Crash report budget per device: a device in a crash loop uploads a full batch now and then,
// not a stream. 200 reports an hour with bursts of two full batches.
const (
	DefaultReportsPerHour = 200.0
	reportBurst           = 2 * failure.MaxBatchReports
)

// ReportLimit returns the per-device crash report budget for perHour reports an hour; nil,
// meaning no budget, when perHour is 0.
func ReportLimit(perHour float64) *ratelimit.Limiter {
	if perHour <= 0 {
		return nil
	}
	return ratelimit.New(perHour/3600, reportBurst, 1_000_000)
}

// registerRollouts declares the routes of deployments, failure groups and coverage.
func (a *API) registerRollouts() {
	a.handle("GET /api/v1/deployments", reader, a.listDeployments, doc{summary: "List deployments in sequence order", response: client.List[client.Deployment]{}, query: []string{"product", "group", "state"}})
	a.handle("POST /api/v1/deployments", operator, a.createDeployment, doc{summary: "Deploy a signed release to a device group in phases (or to all of it at once with emergency)", body: client.CreateDeploymentRequest{}, response: client.Deployment{}, status: http.StatusCreated})
	a.handle("GET /api/v1/deployments/{id}", reader, a.getDeployment, doc{summary: "Show a deployment (by ID or sequence number) with its tally and the criteria's findings now", response: client.Deployment{}})
	a.handle("POST /api/v1/deployments/{id}/pause", operator, a.pauseDeployment, doc{summary: "Pause an active deployment", body: client.DeploymentActionRequest{}, response: client.Deployment{}})
	a.handle("POST /api/v1/deployments/{id}/resume", operator, a.resumeDeployment, doc{summary: "Resume a paused deployment; the criteria judge only evidence from now on", body: client.DeploymentActionRequest{}, response: client.Deployment{}})
	a.handle("POST /api/v1/deployments/{id}/abort", operator, a.abortDeployment, doc{summary: "Abort a deployment for good", body: client.DeploymentActionRequest{}, response: client.Deployment{}})

	a.handle("GET /api/v1/failures", reader, a.listFailures, doc{summary: "List crash failure groups", response: client.List[client.FailureGroup]{}, query: []string{"product", "release", "status"}})
	a.handle("GET /api/v1/failures/{id}", reader, a.getFailure, doc{summary: "Show a failure group with its counts per release and phase and its latest report", response: client.FailureGroup{}})
	a.handle("POST /api/v1/failures/{id}/resolve", operator, a.resolveFailure, doc{summary: "Mark a failure group resolved; a report on a release it was not seen on reopens it", response: client.FailureGroup{}})

	a.handle("GET /api/v1/products/{product}/coverage", reader, a.getCoverage, doc{summary: "Devices per release, the share on the newest and each release's time to 50/90/99/100 %", response: client.Coverage{}, query: []string{"group"}})
}

// WakeDeployment wakes the devices of the deployment's group that are waiting on
// /device/v1/wait and to which it offers the release now (active, phase open). It returns how
// many it woke. The API calls it when a deployment is created or resumed, the server's
// stepper when a phase opens.
func (a *API) WakeDeployment(d store.Deployment) int {
	return a.wake.WakeTagged(WakeTag(d.TenantID, d.ProductName, d.GroupName), d.Offers)
}

func deploymentOut(d store.Deployment, st *store.DeploymentStep) client.Deployment {
	crit, _ := json.Marshal(d.Criteria)
	out := client.Deployment{ID: d.ID, Seq: d.Seq, Product: d.ProductName, Group: d.GroupName, Release: d.Release,
		PreviousRelease: d.PreviousRelease, Emergency: d.Emergency, State: string(d.State), Phase: d.Phase + 1,
		Criteria: crit, Reason: d.Reason, CreatedBy: d.CreatedBy, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	for i, ph := range d.Plan.Phases {
		p := client.DeploymentPhase{Percent: ph.Share * 100, MinSoak: ph.MinSoak.String(), MinReporting: ph.MinReporting}
		if at := d.PhaseOpenedAt(i); !at.IsZero() {
			p.OpenedAt = &at
		}
		if st != nil && i < len(st.Tally.PerPhase) {
			p.Devices, p.Reported = st.Tally.PerPhase[i].Devices, st.Tally.PerPhase[i].Reported
		}
		out.Phases = append(out.Phases, p)
	}
	if st != nil {
		t := st.Tally
		out.Tally = &client.DeploymentTally{Devices: t.Devices, Offered: t.Offered, Pending: t.Pending, Installed: t.Installed,
			Failed: t.Failed, TimedOut: t.TimedOut, WindowReported: t.WindowReported, WindowFailed: t.WindowFailed,
			WindowTimedOut: t.WindowTimedOut, NewCrashes: t.NewCrashes, NewExposureHours: t.NewExposureHours,
			NewCrashedDevices: t.NewCrashed, PreviousCrashes: t.PrevCrashes, PreviousExposureHours: t.PrevExposureHrs,
			ReportedShareOfOffered: t.ReportedShare()}
		for _, f := range st.Decision.Findings {
			out.Findings = append(out.Findings, client.Finding{Criterion: string(f.Criterion), Action: string(f.Action), Reason: f.Reason,
				Observed: f.Observed, Threshold: f.Threshold, Sample: f.Sample, Signature: f.Signature})
		}
	}
	return out
}

// deploymentPlan turns the request's phases and soak into a plan; nil phases and an empty
// soak take the defaults.
func deploymentPlan(req client.CreateDeploymentRequest) (rollout.Plan, error) {
	if req.Emergency {
		if len(req.Phases) > 0 || req.Soak != "" {
			return rollout.Plan{}, badRequest("an emergency deployment offers the release to the whole group at once; give no phases or soak")
		}
		return rollout.EmergencyPlan(), nil
	}
	percents := req.Phases
	if percents == nil {
		percents, _ = rollout.ParsePhases(rollout.DefaultPhases)
	}
	soak := rollout.DefaultSoak
	if req.Soak != "" {
		var err error
		if soak, err = rollout.ParseSoak(req.Soak); err != nil {
			return rollout.Plan{}, badRequest("%s", err.Error())
		}
	}
	for i, pc := range percents {
		if pc <= 0 || pc > 100 {
			return rollout.Plan{}, badRequest("%s: phase %d: %v%% is not in (0, 100]", rollout.ErrInvalidPlan, i+1, pc)
		}
	}
	plan, err := rollout.NewPlan(percents, soak, rollout.DefaultMinReporting)
	if err != nil {
		return rollout.Plan{}, badRequest("%s", err.Error())
	}
	return plan, nil
}

func (a *API) createDeployment(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req client.CreateDeploymentRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Product == "" || req.Group == "" || req.Release == "" {
		return badRequest("product, group and release are required")
	}
	if err := checkName("product", req.Product); err != nil {
		return err
	}
	if err := checkName("group", req.Group); err != nil {
		return err
	}
	plan, err := deploymentPlan(req)
	if err != nil {
		return err
	}
	svc, err := a.updates()
	if err != nil {
		return err
	}
	rel, err := svc.GetRelease(r.Context(), p.tenantID, req.Product, req.Release)
	if err != nil {
		return releaseError(err, "release "+req.Product+" "+req.Release)
	}
	switch rel.State {
	case release.StateSigned:
	case release.StateRevoked:
		return conflict("release %s %s is revoked (%s); deploy a fixed release instead", req.Product, req.Release, rel.RevokedReason)
	default:
		return conflict("release %s %s is not signed yet; run `rampart release sign` first", req.Product, req.Release)
	}
	d, err := a.store.CreateDeployment(r.Context(), p.actor(), p.tenantID, store.DeploymentSpec{
		Product: req.Product, Group: req.Group, Release: req.Release, Plan: plan, Criteria: rollout.DefaultCriteria(), Emergency: req.Emergency})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("group %s of product %s not found", req.Group, req.Product)
	case errors.Is(err, store.ErrConflict):
		return conflict("group %s of product %s already has an active or paused deployment; abort it first", req.Group, req.Product)
	case err != nil:
		return storeError(err, "deployment")
	}
	a.WakeDeployment(d)
	return a.writeDeployment(w, r, p, d, http.StatusCreated)
}

// writeDeployment answers with the deployment and its tally now.
func (a *API) writeDeployment(w http.ResponseWriter, r *http.Request, p *principal, d store.Deployment, status int) error {
	st, err := a.store.DeploymentStatus(r.Context(), p.tenantID, d.ID)
	if err != nil {
		return storeError(err, "deployment "+d.ID)
	}
	writeJSON(w, status, deploymentOut(st.Deployment, &st))
	return nil
}

// deploymentID resolves the {id} path value: a deployment ID, or its sequence number.
func (a *API) deploymentID(r *http.Request, p *principal) (string, error) {
	id := r.PathValue("id")
	seq, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		if len(id) > 64 || !strings.HasPrefix(id, "dep") {
			return "", notFound("deployment %q not found", id)
		}
		return id, nil
	}
	if seq < 1 {
		return "", notFound("deployment %d not found", seq)
	}
	l, _, err := a.store.ListDeployments(r.Context(), p.tenantID, store.DeploymentFilter{}, store.Page{After: strconv.FormatInt(seq-1, 10), Limit: 1})
	if err != nil {
		return "", internal(err)
	}
	if len(l) == 0 || l[0].Seq != seq {
		return "", notFound("deployment %d not found", seq)
	}
	return l[0].ID, nil
}

func (a *API) getDeployment(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := a.deploymentID(r, p)
	if err != nil {
		return err
	}
	st, err := a.store.DeploymentStatus(r.Context(), p.tenantID, id)
	if err != nil {
		return storeError(err, "deployment "+r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, deploymentOut(st.Deployment, &st))
	return nil
}

func (a *API) listDeployments(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.DeploymentFilter{Product: q.Get("product"), Group: q.Get("group"), State: rollout.State(q.Get("state"))}
	switch f.State {
	case "", rollout.StateActive, rollout.StatePaused, rollout.StateAborted, rollout.StateCompleted:
	default:
		return badRequest("state must be active, paused, aborted or completed")
	}
	ds, next, err := a.store.ListDeployments(r.Context(), p.tenantID, f, pg)
	if errors.Is(err, store.ErrInvalid) {
		return badRequest("after is not a cursor this server returned")
	} else if err != nil {
		return storeError(err, "deployments")
	}
	list(w, ds, next, func(d store.Deployment) client.Deployment { return deploymentOut(d, nil) })
	return nil
}

type deploymentAction func(s *store.Store, r *http.Request, actor store.Actor, tenantID, id, reason string) (store.Deployment, error)

func (a *API) operateDeployment(w http.ResponseWriter, r *http.Request, p *principal, verb string, op deploymentAction) error {
	var req client.DeploymentActionRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	if len(req.Reason) > rollout.MaxReasonLen || strings.ContainsAny(req.Reason, "\x00\r\n") {
		return badRequest("reason must be one line of at most %d bytes", rollout.MaxReasonLen)
	}
	id, err := a.deploymentID(r, p)
	if err != nil {
		return err
	}
	d, err := op(a.store, r, p.actor(), p.tenantID, id, req.Reason)
	switch {
	case errors.Is(err, rollout.ErrNotActive):
		return conflict("deployment %s is not active; only an active deployment can be paused", r.PathValue("id"))
	case errors.Is(err, rollout.ErrNotPaused):
		return conflict("deployment %s is not paused; only a paused deployment can be resumed", r.PathValue("id"))
	case errors.Is(err, rollout.ErrFinal):
		return conflict("deployment %s is already finished (aborted or completed)", r.PathValue("id"))
	case errors.Is(err, store.ErrNotFound):
		return notFound("deployment %s not found", r.PathValue("id"))
	case err != nil:
		return storeError(err, "deployment "+verb)
	}
	if d.State == rollout.StateActive {
		a.WakeDeployment(d)
	}
	return a.writeDeployment(w, r, p, d, http.StatusOK)
}

func (a *API) pauseDeployment(w http.ResponseWriter, r *http.Request, p *principal) error {
	return a.operateDeployment(w, r, p, "pause", func(s *store.Store, r *http.Request, actor store.Actor, t, id, reason string) (store.Deployment, error) {
		return s.PauseDeployment(r.Context(), actor, t, id, reason)
	})
}

func (a *API) resumeDeployment(w http.ResponseWriter, r *http.Request, p *principal) error {
	return a.operateDeployment(w, r, p, "resume", func(s *store.Store, r *http.Request, actor store.Actor, t, id, reason string) (store.Deployment, error) {
		return s.ResumeDeployment(r.Context(), actor, t, id, reason)
	})
}

func (a *API) abortDeployment(w http.ResponseWriter, r *http.Request, p *principal) error {
	return a.operateDeployment(w, r, p, "abort", func(s *store.Store, r *http.Request, actor store.Actor, t, id, reason string) (store.Deployment, error) {
		return s.AbortDeployment(r.Context(), actor, t, id, reason)
	})
}
