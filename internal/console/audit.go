package console

import (
	"net/http"
	"net/url"

	"github.com/rampartsec/rampart/client"
)

type auditData struct {
	Records client.List[client.AuditRecord]
	Verify  *client.AuditVerification
	Query   url.Values
	Filter  map[string]string
}

// audit lists the tenant's audit records, newest first, filtered by action and target
// (GET /api/v1/audit?order=newest).
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *Session) error {
	return c.renderAudit(w, r, s, nil)
}

func (c *Console) renderAudit(w http.ResponseWriter, r *http.Request, s *Session, v *client.AuditVerification) error {
	in := r.URL.Query()
	q := url.Values{"order": {"newest"}}
	d := auditData{Filter: map[string]string{}, Verify: v}
	for _, k := range []string{"action", "target", "limit", "after"} {
		if val := in.Get(k); val != "" {
			q.Set(k, val)
			d.Filter[k] = val
		}
	}
	if err := c.get(r.Context(), s, &d.Records, q, "audit"); err != nil {
		return err
	}
	q.Del("order")
	d.Query = q
	c.render(w, r, http.StatusOK, "audit", s, "Audit log", d)
	return nil
}

// verifyAudit recomputes the whole chain (GET /api/v1/audit/verify) and shows the result
// above the log.
func (c *Console) verifyAudit(w http.ResponseWriter, r *http.Request, s *Session) error {
	var v client.AuditVerification
	if err := c.get(r.Context(), s, &v, nil, "audit", "verify"); err != nil {
		return err
	}
	return c.renderAudit(w, r, s, &v)
}
