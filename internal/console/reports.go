package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/api"
)

// reportStates are the report states a queue filters on and triage moves to (program.States).
var reportStates = []string{"new", "triaged", "needs_more_info", "resolved", "duplicate", "by_design", "informative", "not_applicable", "spam"}

type reportsData struct {
	Reports  client.List[client.Report]
	Programs []client.Program
	Query    url.Values
	Filter   map[string]string
	States   []string
}

// reports is the report queue with its clocks (GET /api/v1/reports, /api/v1/programs).
func (c *Console) reports(w http.ResponseWriter, r *http.Request, s *Session) error {
	ctx := r.Context()
	in := r.URL.Query()
	q := url.Values{}
	d := reportsData{Filter: map[string]string{}, States: reportStates}
	for _, k := range []string{"program", "state", "limit", "after"} {
		if v := in.Get(k); v != "" {
			q.Set(k, v)
			d.Filter[k] = v
		}
	}
	if err := c.get(ctx, s, &d.Reports, q, "reports"); err != nil {
		return err
	}
	var progs client.List[client.Program]
	if err := c.get(ctx, s, &progs, url.Values{"limit": {"500"}}, "programs"); err != nil {
		return err
	}
	d.Programs = progs.Items
	d.Query = q
	c.render(w, r, http.StatusOK, "reports", s, "Vulnerability reports", d)
	return nil
}

type reportData struct {
	Report   client.Report
	Comments []client.Comment
	Events   []client.ReportEvent
	Ledger   []client.LedgerEntry
	// Preview is what an award would pay now; PreviewRefused says why there is none.
	Preview        *client.AwardPreview
	PreviewRefused string
	// Score is the calculator's result for Vector; ScoreRefused the API's sentence.
	Vector       string
	Score        *client.CVSSScore
	ScoreRefused string
	Metrics      []cvssMetric
	States       []string
	Severities   []string
	Done         string
}

// cvssMetric is one base metric of the CVSS 3.1 calculator, with the value chosen.
type cvssMetric struct {
	Key, Label string
	Values     []option
	Chosen     string
}

var cvss31Metrics = []cvssMetric{
	{Key: "AV", Label: "Attack vector", Values: []option{{"N", "Network"}, {"A", "Adjacent"}, {"L", "Local"}, {"P", "Physical"}}},
	{Key: "AC", Label: "Attack complexity", Values: []option{{"L", "Low"}, {"H", "High"}}},
	{Key: "PR", Label: "Privileges required", Values: []option{{"N", "None"}, {"L", "Low"}, {"H", "High"}}},
	{Key: "UI", Label: "User interaction", Values: []option{{"N", "None"}, {"R", "Required"}}},
	{Key: "S", Label: "Scope", Values: []option{{"U", "Unchanged"}, {"C", "Changed"}}},
	{Key: "C", Label: "Confidentiality", Values: []option{{"H", "High"}, {"L", "Low"}, {"N", "None"}}},
	{Key: "I", Label: "Integrity", Values: []option{{"H", "High"}, {"L", "Low"}, {"N", "None"}}},
	{Key: "A", Label: "Availability", Values: []option{{"H", "High"}, {"L", "Low"}, {"N", "None"}}},
}

// report is a report's triage page: the report with its fix and metrics, thread, history and
// ledger, the award the rules would pay now, and the CVSS calculator. Every part is an API
// read; the calculator scores with GET /api/v1/cvss.
func (c *Console) report(w http.ResponseWriter, r *http.Request, s *Session) error {
	ctx := r.Context()
	n := r.PathValue("number")
	in := r.URL.Query()
	d := reportData{States: reportStates, Severities: []string{"critical", "high", "medium", "low", "none"}, Done: in.Get("done")}
	if err := c.get(ctx, s, &d.Report, nil, "reports", n); err != nil {
		return err
	}
	if err := c.get(ctx, s, &d.Comments, nil, "reports", n, "comments"); err != nil {
		return err
	}
	if err := c.get(ctx, s, &d.Events, nil, "reports", n, "events"); err != nil {
		return err
	}
	if err := c.get(ctx, s, &d.Ledger, nil, "reports", n, "ledger"); err != nil {
		return err
	}
	var preview client.AwardPreview
	if err := c.get(ctx, s, &preview, nil, "reports", n, "award"); err != nil {
		e := api.AsError(err)
		if e.Status >= 500 {
			return err
		}
		d.PreviewRefused = e.Message
	} else {
		d.Preview = &preview
	}
	// The calculator: a vector typed in, or one built from the 3.1 base metrics chosen.
	d.Vector = strings.TrimSpace(in.Get("vector"))
	var parts []string
	for _, m := range cvss31Metrics {
		m.Chosen = in.Get("m_" + m.Key)
		if m.Chosen != "" {
			parts = append(parts, m.Key+":"+m.Chosen)
		}
		d.Metrics = append(d.Metrics, m)
	}
	if d.Vector == "" && len(parts) > 0 {
		d.Vector = "CVSS:3.1/" + strings.Join(parts, "/")
	}
	if d.Vector != "" {
		var sc client.CVSSScore
		if err := c.get(ctx, s, &sc, url.Values{"vector": {d.Vector}}, "cvss"); err != nil {
			e := api.AsError(err)
			if e.Status >= 500 {
				return err
			}
			d.ScoreRefused = e.Message
		} else {
			d.Score = &sc
		}
	}
	c.render(w, r, http.StatusOK, "report", s, fmt.Sprintf("Report %s", n), d)
	return nil
}

// reportBack answers a change to report n by opening its page again with what was done.
func reportBack(w http.ResponseWriter, r *http.Request, n int64, done string) {
	http.Redirect(w, r, fmt.Sprintf("/reports/%d?done=%s", n, url.QueryEscape(done)), http.StatusSeeOther)
}

// triageReport changes a report's state and triage fields (POST /api/v1/reports/{n}/triage).
func (c *Console) triageReport(w http.ResponseWriter, r *http.Request, s *Session) error {
	f := r.PostForm
	req := client.TriageRequest{State: f.Get("state"), Reason: f.Get("reason"), Impact: f.Get("impact"), Severity: f.Get("severity"),
		Quality: f.Get("quality"), CVE: strings.TrimSpace(f.Get("cve")), CVSS: strings.TrimSpace(f.Get("cvss"))}
	if v := strings.TrimSpace(f.Get("duplicate_of")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return &api.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("duplicate of %q must be a report number; nothing was changed", v)}
		}
		req.DuplicateOf = n
	}
	var rep client.Report
	if err := c.call(r.Context(), s, http.MethodPost, apiPath(nil, "reports", r.PathValue("number"), "triage"), req, &rep); err != nil {
		return err
	}
	reportBack(w, r, rep.Number, "triaged: "+rep.State)
	return nil
}

// commentReport adds the team's comment (POST /api/v1/reports/{n}/comments).
func (c *Console) commentReport(w http.ResponseWriter, r *http.Request, s *Session) error {
	var cm client.Comment
	n := r.PathValue("number")
	if err := c.call(r.Context(), s, http.MethodPost, apiPath(nil, "reports", n, "comments"), client.CommentRequest{Body: r.PostForm.Get("body")}, &cm); err != nil {
		return err
	}
	num, _ := strconv.ParseInt(n, 10, 64)
	reportBack(w, r, num, "commented")
	return nil
}

// awardReport awards by the rules, with an optional override and its reason
// (POST /api/v1/reports/{n}/award).
func (c *Console) awardReport(w http.ResponseWriter, r *http.Request, s *Session) error {
	f := r.PostForm
	req := client.AwardRequest{Reason: strings.TrimSpace(f.Get("reason"))}
	if v := strings.TrimSpace(f.Get("override")); v != "" {
		amt, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return &api.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("the override %q must be a whole amount; nothing was changed", v)}
		}
		req.Override = &amt
	}
	n := r.PathValue("number")
	var e client.LedgerEntry
	if err := c.call(r.Context(), s, http.MethodPost, apiPath(nil, "reports", n, "award"), req, &e); err != nil {
		return err
	}
	num, _ := strconv.ParseInt(n, 10, 64)
	reportBack(w, r, num, fmt.Sprintf("awarded %d %s", e.Amount, e.Currency))
	return nil
}

// linkFix links the affected releases and the fix (POST /api/v1/reports/{n}/fix).
func (c *Console) linkFix(w http.ResponseWriter, r *http.Request, s *Session) error {
	f := r.PostForm
	req := client.LinkFixRequest{Fixed: strings.TrimSpace(f.Get("fixed")), RevokeAffected: f.Get("revoke_affected") == "true", Affected: []string{}}
	for _, v := range strings.Split(f.Get("affected"), ",") {
		if v = strings.TrimSpace(v); v != "" {
			req.Affected = append(req.Affected, v)
		}
	}
	var rep client.Report
	if err := c.call(r.Context(), s, http.MethodPost, apiPath(nil, "reports", r.PathValue("number"), "fix"), req, &rep); err != nil {
		return err
	}
	reportBack(w, r, rep.Number, "fix linked: "+req.Fixed)
	return nil
}

// exportAdvisory answers the report's advisory as a download (POST /api/v1/reports/{n}/advisory).
func (c *Console) exportAdvisory(w http.ResponseWriter, r *http.Request, s *Session) error {
	f := r.PostForm
	req := client.AdvisoryRequest{Format: f.Get("format"), Publisher: strings.TrimSpace(f.Get("publisher")), Namespace: strings.TrimSpace(f.Get("namespace"))}
	n := r.PathValue("number")
	var doc []byte
	if err := c.call(r.Context(), s, http.MethodPost, apiPath(nil, "reports", n, "advisory"), req, &doc); err != nil {
		return err
	}
	num, _ := strconv.ParseInt(n, 10, 64)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="report-%d-%s.json"`, num, strings.ReplaceAll(req.Format, `"`, "")))
	w.Write(doc)
	return nil
}

type programsData struct {
	Programs []client.Program
	Report   *client.ProgramReport
	Medians  []median
}

type median struct {
	Milestone string
	After     string
}

// programs lists the programs (GET /api/v1/programs).
func (c *Console) programs(w http.ResponseWriter, r *http.Request, s *Session) error {
	var d programsData
	var progs client.List[client.Program]
	if err := c.get(r.Context(), s, &progs, url.Values{"limit": {"500"}}, "programs"); err != nil {
		return err
	}
	d.Programs = progs.Items
	c.render(w, r, http.StatusOK, "programs", s, "Research programs", d)
	return nil
}

// programReport is a program's summary (GET /api/v1/programs/{program}/report).
func (c *Console) programReport(w http.ResponseWriter, r *http.Request, s *Session) error {
	var rep client.ProgramReport
	if err := c.get(r.Context(), s, &rep, nil, "programs", r.PathValue("program"), "report"); err != nil {
		return err
	}
	d := programsData{Report: &rep}
	for _, m := range []string{"first_response", "triage", "award", "fix_release", "coverage_50", "coverage_90", "coverage_99", "coverage_100"} {
		if v, ok := rep.Medians[m]; ok {
			d.Medians = append(d.Medians, median{Milestone: strings.ReplaceAll(m, "_", " "), After: duration(time.Duration(v) * time.Second)})
		}
	}
	c.render(w, r, http.StatusOK, "program", s, "Program "+rep.Program, d)
	return nil
}
