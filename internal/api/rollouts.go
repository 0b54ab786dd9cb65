package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/failure"
	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
)

// registerRollouts declares the routes of deployments, failure groups and coverage.
func (a *API) registerRollouts() {
	a.handle("POST /api/v1/deployments", operator, a.createDeployment, doc{summary: "Deploy a signed release to a device group, phase by phase or (emergency) at once", body: client.CreateDeploymentRequest{}, response: client.Deployment{}, status: http.StatusCreated})
	a.handle("GET /api/v1/deployments", reader, a.listDeployments, doc{summary: "List deployments in sequence order", response: client.List[client.Deployment]{}, query: []string{"product", "group", "state"}})
	a.handle("GET /api/v1/deployments/{id}", reader, a.getDeployment, doc{summary: "Show a deployment with its phases and progress", response: client.Deployment{}})
	a.handle("POST /api/v1/deployments/{id}/{action}", operator, a.actOnDeployment, doc{summary: "Pause, resume or abort a deployment (action: pause, resume, abort)", body: client.DeploymentActionRequest{}, response: client.Deployment{}})

	a.handle("GET /api/v1/failures", reader, a.listFailures, doc{summary: "List failure groups (crash signatures)", response: client.List[client.FailureGroup]{}, query: []string{"product", "release", "status"}})
	a.handle("GET /api/v1/failures/{id}", reader, a.getFailure, doc{summary: "Show a failure group with its counts per release and phase", response: client.FailureGroupDetail{}})
	a.handle("POST /api/v1/failures/{id}/resolve", operator, a.resolveFailure, doc{summary: "Mark a failure group resolved; it reopens if it comes back on another release", response: client.FailureGroup{}})

	a.handle("GET /api/v1/coverage/series", reader, a.getCoverageSeries, doc{summary: "A release's coverage over time (it or a newer release), at most 300 readings", response: client.CoverageSeries{}, query: []string{"product", "group", "release"}})
	a.handle("GET /api/v1/coverage", reader, a.getCoverage, doc{summary: "Devices per release, the share on the newest, and each release's time to 50/90/99/100 %", response: client.Coverage{}, query: []string{"product", "group"}})
}

func deploymentOut(d store.Deployment, st *store.DeploymentStep) client.Deployment {
	out := client.Deployment{ID: d.ID, Seq: d.Seq, Product: d.ProductName, Group: d.GroupName, Release: d.Release,
		PreviousRelease: d.PreviousRelease, Emergency: d.Emergency, State: string(d.State), Phase: d.Phase + 1,
		Reason: d.Reason, CreatedBy: d.CreatedBy, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if b, err := json.Marshal(d.Criteria); err == nil {
		out.Criteria = b
	}
	out.CriteriaSummary = d.Criteria.String()
	for i, ph := range d.Plan.Phases {
		p := client.DeploymentPhase{Percent: ph.Share * 100, MinSoak: ph.MinSoak.String(), MinReporting: ph.MinReporting, Cutoff: ph.Cutoff}
		if t := d.PhaseOpenedAt(i); !t.IsZero() {
			p.OpenedAt = &t
		}
		if st != nil && i < len(st.Tally.PerPhase) {
			p.Devices, p.Reported = st.Tally.PerPhase[i].Devices, st.Tally.PerPhase[i].Reported
		}
		out.Phases = append(out.Phases, p)
	}
	if st != nil {
		t := st.Tally
		out.Progress = &client.DeploymentProgress{Devices: t.Devices, Offered: t.Offered, Pending: t.Pending, Installed: t.Installed,
			Failed: t.Failed, TimedOut: t.TimedOut, Decision: string(st.Decision.Action)}
		for _, f := range st.Decision.Findings {
			out.Progress.Findings = append(out.Progress.Findings, client.Finding{Criterion: string(f.Criterion), Action: string(f.Action),
				Reason: f.Reason, Observed: f.Observed, Threshold: f.Threshold, Sample: f.Sample, Signature: f.Signature})
		}
	}
	return out
}

// deploymentError maps the store's deployment errors to answers that say what to do.
func deploymentError(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrReleaseNotSigned):
		return &Error{Status: http.StatusConflict, Code: CodeWrongState, Message: "only a signed release can be deployed, not a draft or revoked one", Err: err}
	case errors.Is(err, store.ErrGroupBusy):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "the group already has an active or paused deployment; abort it first", Err: err}
	case errors.Is(err, rollout.ErrFinal), errors.Is(err, rollout.ErrNotActive), errors.Is(err, rollout.ErrNotPaused):
		return coded(err, CodeWrongState)
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: what + " changed concurrently; retry", Err: err}
	case errors.Is(err, rollout.ErrInvalidPlan), errors.Is(err, rollout.ErrInvalidCriteria), errors.Is(err, rollout.ErrReasonTooLong):
		return fromPublic(err)
	}
	return storeError(err, what)
}

func (a *API) createDeployment(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req client.CreateDeploymentRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Product == "" || req.Group == "" || req.Release == "" {
		return badRequest("product, group and release are required")
	}
	var plan rollout.Plan
	if req.Emergency {
		if req.Phases != "" || req.Soak != "" {
			return badRequest("an emergency deployment goes to every device at once: give no phases or soak")
		}
		plan = rollout.EmergencyPlan()
	} else {
		var err error
		if plan, err = rollout.ParsePlan(req.Phases, req.Soak); err != nil {
			return err // rollout's public error: 400 and the sentence
		}
	}
	criteria, err := rollout.DefaultCriteria().WithSettings(req.Criteria)
	if err != nil {
		return err
	}
	if _, err := a.store.GroupByName(r.Context(), p.tenantID, req.Product, req.Group); err != nil {
		return storeError(err, fmt.Sprintf("group %s of product %s", req.Group, req.Product))
	}
	d, err := a.store.CreateDeployment(r.Context(), p.actor(), p.tenantID, store.DeploymentSpec{Product: req.Product, Group: req.Group,
		Release: req.Release, Plan: plan, Criteria: criteria, Emergency: req.Emergency})
	if err != nil {
		return deploymentError(err, "release "+req.Release+" of product "+req.Product)
	}
	a.wakeDeployment(d)
	writeJSON(w, http.StatusCreated, deploymentOut(d, nil))
	return nil
}

// wakeDeployment wakes the group's devices that the deployment now offers the release to
// (tasks.Waker.WakeDeployment).
func (a *API) wakeDeployment(d store.Deployment) { a.waker.WakeDeployment(d) }

func (a *API) listDeployments(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	state := rollout.State(q.Get("state"))
	switch state {
	case "", rollout.StateActive, rollout.StatePaused, rollout.StateAborted, rollout.StateCompleted:
	default:
		return badRequest("state must be active, paused, aborted or completed")
	}
	ds, next, err := a.store.ListDeployments(r.Context(), p.tenantID, store.DeploymentFilter{Product: q.Get("product"), Group: q.Get("group"), State: state}, pg)
	if err != nil {
		return storeError(err, "deployments")
	}
	out := client.List[client.Deployment]{Items: []client.Deployment{}, Next: next}
	for _, d := range ds {
		out.Items = append(out.Items, deploymentOut(d, nil))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getDeployment(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	st, err := a.store.DeploymentStatus(r.Context(), p.tenantID, id)
	if err != nil {
		return storeError(err, "deployment "+id)
	}
	out := deploymentOut(st.Deployment, &st)
	if a.releases != nil {
		// Counted apart from failures: an interrupted install resumes (doc/rollouts.md).
		n, err := a.releases.Interrupted(r.Context(), p.tenantID, st.Deployment.GroupID, st.Deployment.Release, st.Deployment.CreatedAt)
		if err != nil {
			return internal(err)
		}
		out.Progress.Interrupted = n
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) actOnDeployment(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, action := r.PathValue("id"), r.PathValue("action")
	ops := map[string]func(ctx context.Context, actor store.Actor, tenantID, id, reason string) (store.Deployment, error){
		"pause": a.store.PauseDeployment, "resume": a.store.ResumeDeployment, "abort": a.store.AbortDeployment,
	}
	op, ok := ops[action]
	if !ok {
		return notFound("no action %q on deployments: use pause, resume or abort", clip(action, 32))
	}
	var req client.DeploymentActionRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	d, err := op(r.Context(), p.actor(), p.tenantID, id, req.Reason)
	if err != nil {
		return deploymentError(err, "deployment "+id)
	}
	if action == "resume" {
		a.wakeDeployment(d)
	}
	writeJSON(w, http.StatusOK, deploymentOut(d, nil))
	return nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "")
	}
	return s
}

func failureGroupOut(g store.FailureGroup) client.FailureGroup {
	out := client.FailureGroup{ID: g.ID, Product: g.ProductName, Signature: g.Signature, Program: g.Fault.Program, Component: g.Fault.Component,
		FaultType: g.Fault.FaultType, Frames: g.Fault.Frames, Message: g.Fault.Message, Status: string(g.Status), Count: g.Count,
		FirstSeen: g.FirstSeen, LastSeen: g.LastSeen, NewInRelease: g.FirstRelease, Releases: g.Releases, RegressedIn: g.RegressedIn}
	if out.Frames == nil {
		out.Frames = []string{}
	}
	if !g.ResolvedAt.IsZero() {
		t := g.ResolvedAt
		out.ResolvedAt = &t
	}
	return out
}

func (a *API) listFailures(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	status := failure.GroupStatus(q.Get("status"))
	if status != "" && status != failure.GroupOpen && status != failure.GroupResolved {
		return badRequest("status must be open or resolved")
	}
	gs, next, err := a.store.ListFailureGroups(r.Context(), p.tenantID, store.FailureFilter{Product: q.Get("product"), Release: q.Get("release"), Status: status}, pg)
	if err != nil {
		return storeError(err, "product "+q.Get("product"))
	}
	out := client.List[client.FailureGroup]{Items: []client.FailureGroup{}, Next: next}
	for _, g := range gs {
		out.Items = append(out.Items, failureGroupOut(g))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getFailure(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	d, err := a.store.FailureGroupByID(r.Context(), p.tenantID, id)
	if err != nil {
		return storeError(err, "failure group "+id)
	}
	out := client.FailureGroupDetail{FailureGroup: failureGroupOut(d.FailureGroup), Devices: d.Devices, Counts: []client.FailureCount{}}
	for _, c := range d.Counts {
		out.Counts = append(out.Counts, client.FailureCount{Release: c.Release, DeploymentID: c.DeploymentID, Phase: c.Phase, Reports: c.Reports})
	}
	if b, err := json.Marshal(d.Sample); err == nil {
		out.Sample = b
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) resolveFailure(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	g, err := a.store.ResolveFailureGroup(r.Context(), p.actor(), p.tenantID, id)
	if errors.Is(err, store.ErrConflict) {
		return conflict("failure group %s is already resolved", id)
	} else if err != nil {
		return storeError(err, "failure group "+id)
	}
	writeJSON(w, http.StatusOK, failureGroupOut(g))
	return nil
}

func (a *API) getCoverage(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	product, group := q.Get("product"), q.Get("group")
	if product == "" {
		return badRequest("product is required")
	}
	rep, err := a.store.Coverage(r.Context(), p.tenantID, product, group)
	if err != nil {
		return storeError(err, "product "+product)
	}
	out := client.Coverage{Product: rep.Product, Group: rep.Group, At: rep.Now.At, Devices: rep.Now.Devices, Newest: rep.Now.Newest,
		NewestShare: rep.Now.NewestShare, PerRelease: []client.ReleaseShare{}, Releases: []client.ReleaseCoverage{}}
	for _, c := range rep.Now.PerRelease {
		out.PerRelease = append(out.PerRelease, client.ReleaseShare{Release: c.Release, Devices: c.Devices, Share: c.Share})
	}
	for _, rc := range rep.Releases {
		o := client.ReleaseCoverage{Release: rc.Release, Since: rc.Since, Preinstalled: rc.Preinstalled, Milestones: []client.CoverageMilestone{}}
		for _, m := range rc.Milestones {
			cm := client.CoverageMilestone{Threshold: fmt.Sprintf("%g%%", m.Threshold*100), Reached: m.Reached}
			if m.Reached {
				at := m.At
				cm.At, cm.After = &at, int64(m.After/time.Second)
			}
			o.Milestones = append(o.Milestones, cm)
		}
		out.Releases = append(out.Releases, o)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// MaxSeriesPoints caps the readings of a coverage series, so a chart costs the same at any
// fleet size.
const MaxSeriesPoints = 300

func (a *API) getCoverageSeries(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	product, group, release := q.Get("product"), q.Get("group"), q.Get("release")
	if product == "" || release == "" {
		return badRequest("product and release are required")
	}
	since, pts, err := a.store.CoverageSeries(r.Context(), p.tenantID, product, group, release, MaxSeriesPoints)
	if err != nil {
		what := "release " + release + " of product " + product
		if group != "" {
			what += " (group " + group + ")"
		}
		return storeError(err, what)
	}
	out := client.CoverageSeries{Product: product, Group: group, Release: release, Since: since, Points: make([]client.CoveragePoint, 0, len(pts))}
	for _, pt := range pts {
		out.Points = append(out.Points, client.CoveragePoint{At: pt.At, Covered: pt.Covered, Devices: pt.Devices})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
