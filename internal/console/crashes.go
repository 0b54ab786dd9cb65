package console

import (
	"net/http"
	"net/url"

	"github.com/rampartsec/rampart/client"
)

type crashesData struct {
	Groups client.List[client.FailureGroup]
	Query  url.Values
	Filter map[string]string
}

// crashes lists failure groups, filtered by product, release and status
// (GET /api/v1/failures).
func (c *Console) crashes(w http.ResponseWriter, r *http.Request, s *Session) error {
	in := r.URL.Query()
	q := url.Values{}
	d := crashesData{Filter: map[string]string{}}
	for _, k := range []string{"product", "release", "status", "limit", "after"} {
		if v := in.Get(k); v != "" {
			q.Set(k, v)
			d.Filter[k] = v
		}
	}
	if err := c.get(r.Context(), s, &d.Groups, q, "failures"); err != nil {
		return err
	}
	d.Query = q
	c.render(w, r, http.StatusOK, "crashes", s, "Crash groups", d)
	return nil
}

type crashData struct {
	Group    client.FailureGroupDetail
	Sample   string
	Resolved bool
}

// crash shows one failure group with its counts per release and phase and a sample report
// (GET /api/v1/failures/{id}).
func (c *Console) crash(w http.ResponseWriter, r *http.Request, s *Session) error {
	return c.renderCrash(w, r, s, false)
}

func (c *Console) renderCrash(w http.ResponseWriter, r *http.Request, s *Session, resolved bool) error {
	d := crashData{Resolved: resolved}
	if err := c.get(r.Context(), s, &d.Group, nil, "failures", r.PathValue("id")); err != nil {
		return err
	}
	d.Sample = string(d.Group.Sample)
	c.render(w, r, http.StatusOK, "crash", s, "Crash group", d)
	return nil
}

// resolveCrash marks a group resolved (POST /api/v1/failures/{id}/resolve).
func (c *Console) resolveCrash(w http.ResponseWriter, r *http.Request, s *Session) error {
	var g client.FailureGroup
	if err := c.call(r.Context(), s, http.MethodPost, apiPath(nil, "failures", r.PathValue("id"), "resolve"), nil, &g); err != nil {
		return err
	}
	return c.renderCrash(w, r, s, true)
}
