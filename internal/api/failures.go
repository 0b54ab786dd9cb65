package api

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/failure"
	"github.com/rampartsec/rampart/internal/store"
)

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func failureGroupOut(g store.FailureGroup) client.FailureGroup {
	frames := g.Fault.Frames
	if frames == nil {
		frames = []string{}
	}
	return client.FailureGroup{ID: g.ID, Product: g.ProductName, Signature: g.Signature, Program: g.Fault.Program,
		Component: g.Fault.Component, FaultType: g.Fault.FaultType, Frames: frames, Message: g.Fault.Message,
		Status: string(g.Status), Reports: g.Count, FirstSeen: g.FirstSeen, LastSeen: g.LastSeen, NewIn: g.FirstRelease,
		Releases: g.Releases, ResolvedAt: timePtr(g.ResolvedAt), RegressedIn: g.RegressedIn, RegressedAt: timePtr(g.RegressedAt)}
}

func (a *API) listFailures(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.FailureFilter{Product: q.Get("product"), Release: q.Get("release"), Status: failure.GroupStatus(q.Get("status"))}
	switch f.Status {
	case "", failure.GroupOpen, failure.GroupResolved:
	default:
		return badRequest("status must be open or resolved")
	}
	if len(f.Release) > store.MaxReleaseLen {
		return badRequest("release is longer than %d characters", store.MaxReleaseLen)
	}
	gs, next, err := a.store.ListFailureGroups(r.Context(), p.tenantID, f, pg)
	if err != nil {
		return storeError(err, "product "+f.Product)
	}
	list(w, gs, next, failureGroupOut)
	return nil
}

func (a *API) getFailure(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	d, err := a.store.FailureGroupByID(r.Context(), p.tenantID, id)
	if err != nil {
		return storeError(err, "failure group "+id)
	}
	out := failureGroupOut(d.FailureGroup)
	out.Devices = d.Devices
	for _, c := range d.Counts {
		out.Counts = append(out.Counts, client.FailureCount{Release: c.Release, DeploymentID: c.DeploymentID, Phase: c.Phase, Reports: c.Reports})
	}
	if out.Sample, err = json.Marshal(d.Sample); err != nil {
		return internal(err)
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
	product, group := r.PathValue("product"), r.URL.Query().Get("group")
	rep, err := a.store.Coverage(r.Context(), p.tenantID, product, group)
	if errors.Is(err, store.ErrNotFound) {
		if group != "" {
			return notFound("product %s or its group %s not found", product, group)
		}
		return notFound("product %s not found", product)
	} else if err != nil {
		return storeError(err, "coverage")
	}
	out := client.Coverage{Product: rep.Product, Group: rep.Group, At: rep.Now.At, Devices: rep.Now.Devices,
		PerRelease: []client.ReleaseCount{}, Newest: rep.Now.Newest, NewestShare: rep.Now.NewestShare, Releases: []client.ReleaseCoverage{}}
	for _, c := range rep.Now.PerRelease {
		out.PerRelease = append(out.PerRelease, client.ReleaseCount{Release: c.Release, Devices: c.Devices, Share: c.Share})
	}
	for _, rc := range rep.Releases {
		c := client.ReleaseCoverage{Release: rc.Release, Since: rc.Since}
		for _, m := range rc.Milestones {
			cm := client.Milestone{Threshold: m.Threshold, Reached: m.Reached}
			if m.Reached {
				cm.At, cm.AfterSeconds = timePtr(m.At), m.After.Seconds()
			}
			c.Milestones = append(c.Milestones, cm)
		}
		out.Releases = append(out.Releases, c)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deviceFailures stores a batch of crash reports from the calling device. Update-only
// certificates are accepted: the crashes of revoked software are what tells an operator how
// urgent the fix is. The batch is decoded by failure.DecodeBatch (size-capped, strict; one bad
// report refuses the whole batch) and charged to the device's report budget before anything is
// stored.
func (a *API) deviceFailures(w http.ResponseWriter, r *http.Request, d *device) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "crash reports are sent as application/json")
		}
	}
	if r.ContentLength > failure.MaxBatchBytes {
		return newError(http.StatusRequestEntityTooLarge, "too_large", "a batch of crash reports is at most %d bytes", failure.MaxBatchBytes)
	}
	b, err := failure.DecodeBatch(r.Body)
	switch {
	case errors.Is(err, failure.ErrTooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: failureMessage(err), Err: err}
	case err != nil:
		return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: failureMessage(err), Err: err}
	}
	if ok, wait := a.reportLimit.AllowN(d.id, len(b.Reports), a.now()); !ok {
		return tooMany(w, wait, "device %s sent more crash reports than its budget of %.0f an hour; keep them and retry later", d.id, a.reportsPerHour())
	}
	in, err := a.store.AddFailureReports(r.Context(), d.tenantID, d.id, b.Reports)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return forbidden("device %s is not claimed into a product; crash reports are accepted from claimed devices only", d.id)
	case errors.Is(err, store.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "a crash report is invalid", Err: err}
	case err != nil:
		return internal(err)
	}
	writeJSON(w, http.StatusOK, client.FailureIngest{Accepted: in.Accepted, Duplicates: in.Duplicates, NewGroups: len(in.NewGroups), Regressed: len(in.Regressed)})
	return nil
}

// failureMessage is the part of a decoding error meant for the device: the sentence after the
// sentinel, which names the report and the field.
func failureMessage(err error) string {
	msg := err.Error()
	for _, s := range []error{failure.ErrMalformed, failure.ErrTooLarge} {
		if i := strings.Index(msg, s.Error()); i >= 0 {
			return msg[i:]
		}
	}
	return "malformed crash report batch"
}

func (a *API) reportsPerHour() float64 {
	if a.reportLimit == nil {
		return 0
	}
	return a.reportLimit.PerSecond() * 3600
}
