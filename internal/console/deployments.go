package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rampartsec/rampart/client"
)

type deploymentsData struct {
	Deployments client.List[client.Deployment]
	Query       url.Values
	Filter      map[string]string
	States      []option
}

// deployments lists deployments, newest sequence last, filtered by state, product and group
// (GET /api/v1/deployments).
func (c *Console) deployments(w http.ResponseWriter, r *http.Request, s *Session) error {
	in := r.URL.Query()
	q := url.Values{}
	d := deploymentsData{Filter: map[string]string{}}
	for _, k := range []string{"state", "product", "group", "limit", "after"} {
		if v := in.Get(k); v != "" {
			q.Set(k, v)
			d.Filter[k] = v
		}
	}
	if err := c.get(r.Context(), s, &d.Deployments, q, "deployments"); err != nil {
		return err
	}
	d.Query = q
	d.States = []option{{"", "Any"}, {"active", "Active"}, {"paused", "Paused"}, {"aborted", "Aborted"}, {"completed", "Completed"}}
	c.render(w, r, http.StatusOK, "deployments", s, "Deployments", d)
	return nil
}

// criteriaFields are the abort criteria a deployment form may override, by the API's names
// (client.CreateDeploymentRequest.Criteria).
var criteriaFields = []struct{ Name, Label, Help string }{
	{"on_failure", "On failure", "pause or abort"},
	{"max_install_failures", "Most install failures", `a share such as "5%", or "off"`},
	{"max_timeouts", "Most timeouts", `a share such as "10%", or "off"`},
	{"min_sample", "Least sample", "devices reporting before the shares count"},
	{"report_deadline", "Report deadline", `such as "24h" or "2d"`},
	{"max_crash_ratio", "Most crash ratio", `crash rate against the previous release, or "off"`},
	{"max_new_signature_devices", "Most devices with a new crash", `a number, or "off"`},
}

type newDeploymentData struct {
	Groups   []productGroup
	Criteria any
	Form     url.Values
}

type productGroup struct{ Product, Group string }

// newDeployment is the form to create one: the groups come from GET /api/v1/products and
// their groups.
func (c *Console) newDeployment(w http.ResponseWriter, r *http.Request, s *Session) error {
	ctx := r.Context()
	var prods client.List[client.Product]
	if err := c.get(ctx, s, &prods, url.Values{"limit": {"500"}}, "products"); err != nil {
		return err
	}
	d := newDeploymentData{Criteria: criteriaFields, Form: r.URL.Query()}
	for _, p := range prods.Items {
		var gs client.List[client.Group]
		if err := c.get(ctx, s, &gs, url.Values{"limit": {"500"}}, "products", p.Name, "groups"); err != nil {
			return err
		}
		for _, g := range gs.Items {
			d.Groups = append(d.Groups, productGroup{p.Name, g.Name})
		}
	}
	c.render(w, r, http.StatusOK, "deployment_new", s, "New deployment", d)
	return nil
}

// createDeployment creates one (POST /api/v1/deployments) and opens its live page.
func (c *Console) createDeployment(w http.ResponseWriter, r *http.Request, s *Session) error {
	f := r.PostForm
	req := client.CreateDeploymentRequest{Release: strings.TrimSpace(f.Get("release")), Phases: strings.TrimSpace(f.Get("phases")),
		Soak: strings.TrimSpace(f.Get("soak")), Emergency: f.Get("emergency") == "true"}
	req.Product, req.Group, _ = strings.Cut(f.Get("group"), "/")
	for _, cf := range criteriaFields {
		if v := strings.TrimSpace(f.Get("criteria." + cf.Name)); v != "" {
			if req.Criteria == nil {
				req.Criteria = map[string]string{}
			}
			req.Criteria[cf.Name] = v
		}
	}
	var dep client.Deployment
	if err := c.call(r.Context(), s, http.MethodPost, "/api/v1/deployments", req, &dep); err != nil {
		return err
	}
	http.Redirect(w, r, "/deployments/"+url.PathEscape(dep.ID), http.StatusSeeOther)
	return nil
}

type deploymentData struct {
	Deployment client.Deployment
	Criteria   map[string]any
	Done       string // what this request just did
	Open       bool   // active or paused: it may be paused, resumed or aborted
}

// deployment is a deployment's live page (GET /api/v1/deployments/{id}); its events route
// keeps it current.
func (c *Console) deployment(w http.ResponseWriter, r *http.Request, s *Session) error {
	var d deploymentData
	if err := c.get(r.Context(), s, &d.Deployment, nil, "deployments", r.PathValue("id")); err != nil {
		return err
	}
	if len(d.Deployment.Criteria) > 0 {
		json.Unmarshal(d.Deployment.Criteria, &d.Criteria)
	}
	d.Done = r.URL.Query().Get("done")
	d.Open = d.Deployment.State == "active" || d.Deployment.State == "paused"
	c.render(w, r, http.StatusOK, "deployment", s, fmt.Sprintf("Deployment %d", d.Deployment.Seq), d)
	return nil
}

// actOnDeployment pauses, resumes or aborts (POST /api/v1/deployments/{id}/{action}); the API
// refuses an unknown action, a reader, a final deployment.
func (c *Console) actOnDeployment(w http.ResponseWriter, r *http.Request, s *Session) error {
	id, action := r.PathValue("id"), r.PathValue("action")
	var dep client.Deployment
	if err := c.call(r.Context(), s, http.MethodPost, apiPath(nil, "deployments", id, action),
		client.DeploymentActionRequest{Reason: r.PostForm.Get("reason")}, &dep); err != nil {
		return err
	}
	http.Redirect(w, r, "/deployments/"+url.PathEscape(dep.ID)+"?done="+url.QueryEscape(dep.State), http.StatusSeeOther)
	return nil
}

// liveFor bounds one event stream; the browser reconnects after it.
const liveFor = 10 * time.Minute

// deploymentEvents streams the deployment as server-sent events ("deployment", the API's JSON)
// whenever it changes, until it is final, the session ends or the client goes.
func (c *Console) deploymentEvents(w http.ResponseWriter, r *http.Request, s *Session) error {
	ctx := r.Context()
	id := r.PathValue("id")
	var dep client.Deployment
	if err := c.get(ctx, s, &dep, nil, "deployments", id); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var last []byte
	tick := time.NewTicker(c.liveEvery)
	defer tick.Stop()
	stop := time.After(liveFor)
	for {
		b, err := json.Marshal(dep)
		if err != nil {
			return nil
		}
		if !bytes.Equal(b, last) {
			if _, err := fmt.Fprintf(w, "event: deployment\ndata: %s\n\n", b); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
			last = b
		}
		if dep.State == "aborted" || dep.State == "completed" {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		case <-tick.C:
		}
		if _, err := c.session(r); err != nil {
			fmt.Fprintf(w, "event: ended\ndata: {}\n\n")
			rc.Flush()
			return nil
		}
		if err := c.get(ctx, s, &dep, nil, "deployments", id); err != nil {
			return nil
		}
	}
}
