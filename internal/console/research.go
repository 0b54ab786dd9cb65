package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/api"
	"github.com/rampartsec/rampart/internal/program"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/token"
)

// The researcher portal, under /research/: researchers sign in with their researcher token,
// apply to programs, submit reports with attachments and CVSS vectors, follow each report's
// thread and state timeline, and see their award with the rules' explanation and, once a fix is
// linked, the fix release and the share of the fleet on it. Every page reads and changes
// through the researcher API's own routes (/research/v1), called in process as the signed-in
// researcher, so a researcher sees and changes exactly what the API allows them: another
// researcher's report is 404 here as there.

//go:embed research/*.html
var researchFiles embed.FS

// MaxAttachmentForm caps a portal form that carries files: the largest attachment a program
// may allow, plus the rest of the form.
const MaxAttachmentForm = program.CeilingAttachmentBytes + MaxFormBytes

// MaxPortalFiles is how many files one form may attach.
const MaxPortalFiles = 5

// ResearchSession is a live researcher session.
type ResearchSession struct {
	store.Session
	Researcher store.Researcher
}

func (s *ResearchSession) caller() api.Caller {
	r := s.Researcher
	return api.Caller{Researcher: &r}
}

var errNotResearcher = errors.New("console: an operator's session")

// researchSession finds the request's live researcher session.
func (c *Console) researchSession(r *http.Request) (*ResearchSession, error) {
	ss, err := c.liveSession(r)
	if err != nil {
		return nil, err
	}
	if ss.Kind != store.SessionResearcher {
		return nil, errNotResearcher
	}
	res, err := c.store.ResearcherByID(r.Context(), ss.TenantID, ss.ResearcherID)
	if err != nil {
		return nil, err
	}
	return &ResearchSession{Session: ss, Researcher: res}, nil
}

type researchHandler func(w http.ResponseWriter, r *http.Request, s *ResearchSession) error

// researchPage registers a portal route that needs a live researcher session. POST forms are
// parsed before the handler, multipart ones (with files) up to MaxAttachmentForm.
func (c *Console) researchPage(pattern string, h researchHandler) {
	method, p, _ := strings.Cut(pattern, " ")
	// Not an operator's route (Route.Session): a researcher's session is checked here.
	c.routes = append(c.routes, Route{Method: method, Path: p})
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s, err := c.researchSession(r)
		if err != nil {
			c.researchSignInAgain(w, r, err)
			return
		}
		if r.Method == http.MethodPost {
			if err := parsePortalForm(w, r); err != nil {
				c.researchError(w, r, s, err)
				return
			}
		}
		if err := h(w, r, s); err != nil {
			c.researchError(w, r, s, err)
		}
	})
}

// parsePortalForm parses a form: urlencoded up to MaxFormBytes, multipart up to
// MaxAttachmentForm (files beyond 1 MiB wait in temporary files, removed after the request).
func parsePortalForm(w http.ResponseWriter, r *http.Request) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		if err := r.ParseForm(); err != nil {
			return formError(err)
		}
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxAttachmentForm)
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &api.Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("the form is larger than %d bytes; attach smaller files", MaxAttachmentForm)}
		}
		return &api.Error{Status: http.StatusBadRequest, Message: "the form could not be read; send it again"}
	}
	return nil
}

// registerResearch declares the portal's routes.
func (c *Console) registerResearch() {
	c.open("GET /research/login", c.researchLoginPage)
	c.open("POST /research/login", c.researchLogin)
	c.open("POST /research/logout", c.researchLogout)
	c.open("GET /research/apply", c.researchApplyPage)
	c.open("POST /research/apply", c.researchApplyNew)
	c.researchPage("GET /research/{$}", c.researchHome)
	c.researchPage("GET /research/programs/{program}", c.researchProgram)
	c.researchPage("POST /research/programs/{program}/application", c.researchProgramApply)
	c.researchPage("POST /research/programs/{program}/reports", c.researchSubmit)
	c.researchPage("GET /research/reports/{number}", c.researchReport)
	c.researchPage("POST /research/reports/{number}/comments", c.researchComment)
	c.researchPage("POST /research/reports/{number}/attachments", c.researchAttach)
	c.researchPage("GET /research/reports/{number}/attachments/{id}", c.researchDownload)
}

var researchFuncs = template.FuncMap{
	"money": func(n int64, cur string) string {
		s := strconv.FormatInt(n, 10)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s + " " + cur
	},
	"percent": func(p float64) string { return strconv.FormatFloat(p, 'f', 1, 64) + " %" },
	"pwidth":  func(p float64) int { return min(100, max(0, int(p+0.999))) },
	"state":   func(s string) string { return strings.ReplaceAll(s, "_", " ") },
}

type researchPageData struct {
	Title   string
	Session *ResearchSession
	Path    string
	Data    any
}

func (c *Console) renderResearch(w http.ResponseWriter, r *http.Request, status int, page string, s *ResearchSession, title string, data any) {
	t, ok := c.research[page]
	if !ok {
		c.log.Error("console: no such portal template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", researchPageData{Title: title, Session: s, Path: r.URL.Path, Data: data}); err != nil {
		c.log.Error("console: portal render failed", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// researchError shows a refusal with the researcher API's own sentence and status.
func (c *Console) researchError(w http.ResponseWriter, r *http.Request, s *ResearchSession, err error) {
	d := c.errorPage(r, "portal", err)
	c.renderResearch(w, r, d.Status, "error", s, d.Heading, d)
}

type researchLoginData struct {
	Next, Message string
}

func (c *Console) researchLoginPage(w http.ResponseWriter, r *http.Request) {
	c.renderResearch(w, r, http.StatusOK, "login", nil, "Researcher sign-in", researchLoginData{Next: safeResearchNext(r.URL.Query().Get("next"))})
}

// safeResearchNext keeps a return address inside the portal.
func safeResearchNext(next string) string {
	if n := safeNext(next); strings.HasPrefix(n, "/research/") && !strings.HasPrefix(n, "/research/v1/") {
		return n
	}
	return "/research/"
}

// researchLogin opens a researcher session for a valid researcher token (form field token).
func (c *Console) researchLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		e := formError(err)
		c.renderResearch(w, r, e.Status, "login", nil, "Researcher sign-in", researchLoginData{Message: e.Message})
		return
	}
	next := safeResearchNext(r.PostForm.Get("next"))
	refuse := func(status int, msg string) {
		c.renderResearch(w, r, status, "login", nil, "Researcher sign-in", researchLoginData{Next: next, Message: msg})
	}
	secret := strings.TrimSpace(r.PostForm.Get("token"))
	switch {
	case secret == "":
		refuse(http.StatusUnauthorized, "enter your researcher token")
		return
	case !token.ResearcherWellFormed(secret):
		refuse(http.StatusUnauthorized, "that is not a researcher token (they start with "+token.ResearcherPrefix+")")
		return
	}
	res, err := c.store.ResearcherByTokenHash(r.Context(), token.Hash(secret))
	switch {
	case errors.Is(err, store.ErrNotFound):
		refuse(http.StatusUnauthorized, "that researcher token is not valid")
		return
	case err != nil:
		c.log.Error("portal sign-in failed", "err", err)
		refuse(http.StatusInternalServerError, "internal error; try again")
		return
	case res.TokenRevokedAt != nil:
		refuse(http.StatusUnauthorized, "that researcher token was revoked; ask the program's team for a new one")
		return
	}
	if _, err := c.StartSession(r.Context(), w, store.Session{TenantID: res.TenantID, Kind: store.SessionResearcher, ResearcherID: res.ID,
		Subject: res.Email}); err != nil {
		c.log.Error("portal sign-in failed", "err", err)
		refuse(http.StatusInternalServerError, "internal error; try again")
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// researchLogout ends a researcher's session; an operator's session is left to the console's
// own sign-out.
func (c *Console) researchLogout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(CookieName); err == nil && len(ck.Value) <= 100 {
		ss, err := c.store.SessionByHash(r.Context(), hashSecret(ck.Value))
		if err == nil && ss.Kind != store.SessionResearcher {
			c.renderResearch(w, r, http.StatusOK, "login", nil, "Researcher sign-in", researchLoginData{Next: "/research/",
				Message: "you are signed in to the operator console, not as a researcher; sign out there"})
			return
		}
		if err == nil {
			if err := c.store.RevokeSession(r.Context(), ss); err != nil {
				c.researchError(w, r, nil, err)
				return
			}
		}
	}
	clearCookie(w)
	c.renderResearch(w, r, http.StatusOK, "login", nil, "Signed out", researchLoginData{Next: "/research/", Message: "You are signed out."})
}

// researchSignInAgain answers a portal request without a live researcher session.
func (c *Console) researchSignInAgain(w http.ResponseWriter, r *http.Request, err error) {
	msg := "sign in to continue"
	switch {
	case errors.Is(err, errNoSession):
		if r.Method == http.MethodGet {
			http.Redirect(w, r, "/research/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
	case errors.Is(err, errSessionExpired):
		msg = "your session expired; sign in again (nothing was changed)"
	case errors.Is(err, errSessionRevoked):
		msg = "your researcher token was revoked, which ended your session (nothing was changed)"
	case errors.Is(err, errSessionEnded):
		msg = "your session has ended; sign in again (nothing was changed)"
	case errors.Is(err, errNotResearcher):
		msg = "you are signed in to the operator console; the researcher portal needs a researcher token (sign out first)"
	default:
		c.researchError(w, r, nil, err)
		return
	}
	if !errors.Is(err, errNotResearcher) {
		clearCookie(w)
	}
	next := ""
	if r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	c.renderResearch(w, r, http.StatusUnauthorized, "login", nil, "Researcher sign-in", researchLoginData{Next: safeResearchNext(next), Message: msg})
}

// rcall calls a researcher API route as the session's researcher.
func (c *Console) rcall(ctx context.Context, s *ResearchSession, method, target string, in, out any) error {
	return c.api.Do(ctx, s.caller(), method, target, in, out)
}

func researchPath(parts ...string) string {
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/research/v1/" + strings.Join(parts, "/")
}

type portalHomeData struct {
	Me      client.Me
	Reports client.List[client.Report]
	Query   url.Values
}

// researchHome lists the researcher's applications (GET /research/v1/me) and reports
// (GET /research/v1/reports, paged).
func (c *Console) researchHome(w http.ResponseWriter, r *http.Request, s *ResearchSession) error {
	var d portalHomeData
	ctx := r.Context()
	if err := c.rcall(ctx, s, http.MethodGet, "/research/v1/me", nil, &d.Me); err != nil {
		return err
	}
	q := pageQuery(r)
	if err := c.rcall(ctx, s, http.MethodGet, "/research/v1/reports?"+q.Encode(), nil, &d.Reports); err != nil {
		return err
	}
	d.Query = r.URL.Query()
	c.renderResearch(w, r, http.StatusOK, "home", s, "Your research", d)
	return nil
}

type portalProgramData struct {
	Program     client.Program
	Rules       *program.Program
	Application *client.Application // the researcher's, if any
	Applied     *client.Application // just made
	Form        url.Values          // a refused submission's fields, to correct
	Message     string
	MaxFiles    int
}

// researchProgram shows a program's scope, scenarios and award rules
// (GET /research/v1/programs/{program}), the researcher's application, and the report form
// when the researcher is accepted.
func (c *Console) researchProgram(w http.ResponseWriter, r *http.Request, s *ResearchSession) error {
	return c.renderProgram(w, r, s, http.StatusOK, portalProgramData{})
}

func (c *Console) renderProgram(w http.ResponseWriter, r *http.Request, s *ResearchSession, status int, d portalProgramData) error {
	ctx := r.Context()
	name := r.PathValue("program")
	if err := c.rcall(ctx, s, http.MethodGet, researchPath("programs", name), nil, &d.Program); err != nil {
		return err
	}
	rules, err := program.ParseStoredRules(d.Program.Rules)
	if err != nil {
		return err
	}
	d.Rules = rules
	var me client.Me
	if err := c.rcall(ctx, s, http.MethodGet, "/research/v1/me", nil, &me); err != nil {
		return err
	}
	for i, a := range me.Applications {
		if a.Program == d.Program.Name {
			d.Application = &me.Applications[i]
		}
	}
	d.MaxFiles = MaxPortalFiles
	c.renderResearch(w, r, status, "program", s, d.Program.Title, d)
	return nil
}

// researchProgramApply applies to a program, or completes an invitation
// (POST /research/v1/programs/{program}/application).
func (c *Console) researchProgramApply(w http.ResponseWriter, r *http.Request, s *ResearchSession) error {
	f := r.PostForm
	var app client.Application
	req := client.ProgramApplyRequest{Country: f.Get("country"), Affiliation: f.Get("affiliation"), Experience: f.Get("experience")}
	if err := c.rcall(r.Context(), s, http.MethodPost, researchPath("programs", r.PathValue("program"), "application"), req, &app); err != nil {
		return err
	}
	return c.renderProgram(w, r, s, http.StatusCreated, portalProgramData{Applied: &app})
}

// splitList reads a list field: items separated by commas or new lines, blanks dropped.
func splitList(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// upload is one file of a form.
type upload struct {
	name string
	data []byte
}

// formFiles reads the form's files (field "files"), at most MaxPortalFiles, each checked
// against the program's attachment rule before anything is written.
func formFiles(r *http.Request, rules *program.Program) ([]upload, error) {
	if r.MultipartForm == nil {
		return nil, nil
	}
	var out []upload
	for _, fh := range r.MultipartForm.File["files"] {
		if fh.Filename == "" && fh.Size == 0 {
			continue // an empty file input
		}
		if len(out) == MaxPortalFiles {
			return nil, &api.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("attach at most %d files at once", MaxPortalFiles)}
		}
		name := path.Base(strings.ReplaceAll(fh.Filename, `\`, "/"))
		if err := rules.CheckAttachment(name, fh.Size); err != nil {
			msg, ok := public.Message(err)
			if !ok {
				return nil, err
			}
			status := http.StatusBadRequest
			if errors.Is(err, program.ErrAttachmentTooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			return nil, &api.Error{Status: status, Message: name + ": " + msg}
		}
		f, err := fh.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(f, rules.MaxAttachmentBytes+1))
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, upload{name: name, data: data})
	}
	return out, nil
}

// researchSubmit submits a report (POST /research/v1/programs/{program}/reports) and then its
// files (POST /research/v1/reports/{number}/attachments). The files are checked against the
// program's rule first, so a refused file writes no report.
func (c *Console) researchSubmit(w http.ResponseWriter, r *http.Request, s *ResearchSession) error {
	ctx := r.Context()
	name := r.PathValue("program")
	var p client.Program
	if err := c.rcall(ctx, s, http.MethodGet, researchPath("programs", name), nil, &p); err != nil {
		return err
	}
	rules, err := program.ParseStoredRules(p.Rules)
	if err != nil {
		return err
	}
	f := r.Form
	refuse := func(err error) error {
		e := api.AsError(err)
		if e.Status >= 500 {
			return err
		}
		return c.renderProgram(w, r, s, e.Status, portalProgramData{Form: f, Message: e.Message})
	}
	files, err := formFiles(r, rules)
	if err != nil {
		return refuse(err)
	}
	sub := client.SubmitReportRequest{Title: f.Get("title"), Description: f.Get("description"), Scenario: f.Get("scenario"),
		Product: f.Get("product"), Components: f["components"], Releases: splitList(f.Get("releases")),
		CVSS31: strings.TrimSpace(f.Get("cvss31")), CVSS40: strings.TrimSpace(f.Get("cvss40"))}
	var rep client.Report
	if err := c.rcall(ctx, s, http.MethodPost, researchPath("programs", name, "reports"), sub, &rep); err != nil {
		return refuse(err)
	}
	for _, u := range files {
		target := researchPath("reports", strconv.FormatInt(rep.Number, 10), "attachments") + "?name=" + url.QueryEscape(u.name)
		if err := c.rcall(ctx, s, http.MethodPost, target, api.RawBody{ContentType: "application/octet-stream", Data: u.data}, nil); err != nil {
			return err
		}
	}
	http.Redirect(w, r, fmt.Sprintf("/research/reports/%d", rep.Number), http.StatusSeeOther)
	return nil
}

type portalReportData struct {
	Report      client.ResearcherReport
	Events      []client.ResearcherEvent
	Comments    []client.Comment
	Attachments []client.Attachment
	Message     string
}

// researchReport shows one of the researcher's reports: its fields and scores, the state
// timeline, the award with its explanation, the fix's reach, the thread and the files.
func (c *Console) researchReport(w http.ResponseWriter, r *http.Request, s *ResearchSession) error {
	return c.renderReport(w, r, s, http.StatusOK, "")
}

func (c *Console) renderReport(w http.ResponseWriter, r *http.Request, s *ResearchSession, status int, msg string) error {
	ctx := r.Context()
	n := r.PathValue("number")
	d := portalReportData{Message: msg}
	if err := c.rcall(ctx, s, http.MethodGet, researchPath("reports", n), nil, &d.Report); err != nil {
		return err
	}
	if err := c.rcall(ctx, s, http.MethodGet, researchPath("reports", n, "events"), nil, &d.Events); err != nil {
		return err
	}
	if err := c.rcall(ctx, s, http.MethodGet, researchPath("reports", n, "comments"), nil, &d.Comments); err != nil {
		return err
	}
	if err := c.rcall(ctx, s, http.MethodGet, researchPath("reports", n, "attachments"), nil, &d.Attachments); err != nil {
		return err
	}
	c.renderResearch(w, r, status, "report", s, fmt.Sprintf("Report %d", d.Report.Number), d)
	return nil
}

// researchComment adds to the thread (POST /research/v1/reports/{number}/comments).
func (c *Console) researchComment(w http.ResponseWriter, r *http.Request, s *ResearchSession) error {
	n := r.PathValue("number")
	if err := c.rcall(r.Context(), s, http.MethodPost, researchPath("reports", n, "comments"), client.CommentRequest{Body: r.PostForm.Get("body")}, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/research/reports/"+url.PathEscape(n)+"#thread", http.StatusSeeOther)
	return nil
}

// researchAttach attaches files to a report (POST /research/v1/reports/{number}/attachments).
func (c *Console) researchAttach(w http.ResponseWriter, r *http.Request, s *ResearchSession) error {
	ctx := r.Context()
	n := r.PathValue("number")
	var rep client.ResearcherReport
	if err := c.rcall(ctx, s, http.MethodGet, researchPath("reports", n), nil, &rep); err != nil {
		return err
	}
	var p client.Program
	if err := c.rcall(ctx, s, http.MethodGet, researchPath("programs", rep.Program), nil, &p); err != nil {
		return err
	}
	rules, err := program.ParseStoredRules(p.Rules)
	if err != nil {
		return err
	}
	files, err := formFiles(r, rules)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return &api.Error{Status: http.StatusBadRequest, Message: "choose a file to attach"}
	}
	for _, u := range files {
		target := researchPath("reports", n, "attachments") + "?name=" + url.QueryEscape(u.name)
		if err := c.rcall(ctx, s, http.MethodPost, target, api.RawBody{ContentType: "application/octet-stream", Data: u.data}, nil); err != nil {
			return err
		}
	}
	http.Redirect(w, r, "/research/reports/"+url.PathEscape(n)+"#files", http.StatusSeeOther)
	return nil
}

// researchDownload sends one of the report's files
// (GET /research/v1/reports/{number}/attachments/{id}) as a download, never rendered.
func (c *Console) researchDownload(w http.ResponseWriter, r *http.Request, s *ResearchSession) error {
	ctx := r.Context()
	n, id := r.PathValue("number"), r.PathValue("id")
	var atts []client.Attachment
	if err := c.rcall(ctx, s, http.MethodGet, researchPath("reports", n, "attachments"), nil, &atts); err != nil {
		return err
	}
	var data []byte
	if err := c.rcall(ctx, s, http.MethodGet, researchPath("reports", n, "attachments", id), nil, &data); err != nil {
		return err
	}
	name := "attachment"
	for _, a := range atts {
		if a.ID == id {
			name = a.Name
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
	return nil
}

type portalApplyData struct {
	Form    url.Values
	Message string
	Applied *client.ApplyResponse
}

// researchApplyPage is the form for a new researcher, who has no token yet.
func (c *Console) researchApplyPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c.renderResearch(w, r, http.StatusOK, "apply", nil, "Apply to a program", portalApplyData{Form: url.Values{"tenant": {q.Get("tenant")}, "program": {q.Get("program")}}})
}

// researchApplyNew applies as a new researcher (the public POST /research/v1/applications,
// limited per client address like the API) and shows the researcher token once.
func (c *Console) researchApplyNew(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		e := formError(err)
		c.renderResearch(w, r, e.Status, "apply", nil, "Apply to a program", portalApplyData{Message: e.Message})
		return
	}
	f := r.PostForm
	req := client.ApplyRequest{Tenant: f.Get("tenant"), Program: f.Get("program"), Name: f.Get("name"), Email: f.Get("email"),
		Country: f.Get("country"), Affiliation: f.Get("affiliation"), Experience: f.Get("experience")}
	var out client.ApplyResponse
	if err := c.api.DoFrom(r.Context(), api.Caller{}, r.RemoteAddr, http.MethodPost, "/research/v1/applications", req, &out); err != nil {
		e := api.AsError(err)
		if e.Status >= 500 {
			c.log.Error("portal application failed", "err", err)
		}
		c.renderResearch(w, r, e.Status, "apply", nil, "Apply to a program", portalApplyData{Form: f, Message: e.Message})
		return
	}
	c.renderResearch(w, r, http.StatusCreated, "apply", nil, "Application sent", portalApplyData{Applied: &out})
}
