// Package console serves Rampart's web console for operators at / on the server's listen
// address: server-rendered pages (html/template) from files embedded in the binary, a session
// cookie opened with an API token (or another sign-in plugged in through StartSession), a
// strict Content-Security-Policy and cross-origin protection on every state-changing request.
// Every page reads and changes data only through the admin API's own routes, called in process
// as the signed-in caller (api.API.Do), so a page is scoped to the caller's tenant and role
// exactly as the API is and applies no rule of its own. Only the server imports it.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/api"
	"github.com/rampartsec/rampart/internal/sso"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Deps are what the console needs.
type Deps struct {
	// API serves every read and change a page makes, as the signed-in caller.
	API *api.API
	// Store holds the sessions.
	Store  *store.Store
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// SessionTTL is how long a session lasts from sign-in; DefaultSessionTTL when zero.
	SessionTTL time.Duration
	// LiveEvery is how often a live page (server-sent events) looks for changes;
	// DefaultLiveEvery when zero.
	LiveEvery time.Duration
	// OIDC is the identity provider operators may sign in with (internal/sso); nil offers the
	// API token sign-in alone.
	OIDC *sso.Provider
}

// DefaultSessionTTL is a session's lifetime: a working day.
const DefaultSessionTTL = 12 * time.Hour

// DefaultLiveEvery is how often a deployment's live page is refreshed.
const DefaultLiveEvery = 2 * time.Second

// MaxFormBytes caps every form the console accepts.
const MaxFormBytes = 64 << 10

// Console is the web console's handler.
type Console struct {
	api       *api.API
	store     *store.Store
	log       *slog.Logger
	now       func() time.Time
	ttl       time.Duration
	liveEvery time.Duration
	oidc      *sso.Provider
	pages     map[string]*template.Template
	research  map[string]*template.Template // the researcher portal's pages
	mux       *http.ServeMux
	handler   http.Handler
	routes    []Route
}

// Route is one entry of the console's route table.
type Route struct {
	Method, Path string
	// Session is set for routes that need a signed-in operator. What the operator may read or
	// change is decided by the API routes the page calls, with the session's tenant and role.
	Session bool
}

// Pattern is the route's ServeMux pattern.
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// New builds the console with every route registered.
func New(d Deps) (*Console, error) {
	c := &Console{api: d.API, store: d.Store, log: d.Logger, now: d.Now, ttl: d.SessionTTL, liveEvery: d.LiveEvery, oidc: d.OIDC, mux: http.NewServeMux()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ttl <= 0 {
		c.ttl = DefaultSessionTTL
	}
	if c.liveEvery <= 0 {
		c.liveEvery = DefaultLiveEvery
	}
	var err error
	if c.pages, err = parsePages(templateFiles, "templates"); err != nil {
		return nil, fmt.Errorf("console.New: %w", err)
	}
	if c.research, err = parsePages(researchFiles, "research", researchFuncs); err != nil {
		return nil, fmt.Errorf("console.New: %w", err)
	}
	c.register()
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, nil, &api.Error{Status: http.StatusForbidden,
			Message: "this request came from another site, so it was refused and nothing was changed; use the console's own pages"})
	}))
	c.handler = cop.Handler(c.mux)
	return c, nil
}

// ServeHTTP serves the console with its security headers on every answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.handler.ServeHTTP(w, r)
}

// ContentSecurityPolicy allows scripts, styles and images from the console's own embedded
// files only: no inline script or style, nothing from another site, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Routes lists the console's routes, for tests that must cover each one.
func (c *Console) Routes() []Route { return append([]Route(nil), c.routes...) }

// handler is a page behind a session.
type handler func(w http.ResponseWriter, r *http.Request, s *Session) error

// page registers a route that needs a live operator session. It has no role of its own: the
// API routes it calls refuse what the session's role may not do, with the API's own sentence.
func (c *Console) page(pattern string, h handler) {
	method, path, _ := strings.Cut(pattern, " ")
	c.routes = append(c.routes, Route{Method: method, Path: path, Session: true})
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r)
		if err != nil {
			c.signInAgain(w, r, err)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
			if err := r.ParseForm(); err != nil {
				c.renderError(w, r, s, formError(err))
				return
			}
		}
		if err := h(w, r, s); err != nil {
			c.renderError(w, r, s, err)
		}
	})
}

// open registers a route that needs no session (sign-in, static files).
func (c *Console) open(pattern string, h http.HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	c.routes = append(c.routes, Route{Method: method, Path: path})
	c.mux.HandleFunc(pattern, h)
}

// register is the one place where every console route and the least role it needs are
// declared.
func (c *Console) register() {
	c.open("GET /static/{file}", c.static)
	c.open("GET /login", c.loginPage)
	c.open("POST /login", c.login)
	c.open("POST /logout", c.logout)
	c.registerOIDC()
	c.registerResearch()
	c.page("GET /{$}", c.overview)
	c.registerPages()
	c.mux.HandleFunc("/", c.notFound)
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	s, _ := c.session(r)
	c.renderError(w, r, s, &api.Error{Status: http.StatusNotFound, Message: "there is no page at " + r.URL.Path})
}

func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	b, err := fs.ReadFile(staticFiles, "static/"+r.PathValue("file"))
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	switch {
	case strings.HasSuffix(r.PathValue("file"), ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(r.PathValue("file"), ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(r.PathValue("file"), ".svg"):
		w.Header().Set("Content-Type", "image/svg+xml")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}

// call runs one admin API route in process as the session's caller.
func (c *Console) call(ctx context.Context, s *Session, method, target string, in, out any) error {
	return c.api.Do(ctx, s.Caller(), method, target, in, out)
}

// get is call for a GET whose path is built from parts, each escaped, and a query.
func (c *Console) get(ctx context.Context, s *Session, out any, q url.Values, parts ...string) error {
	return c.call(ctx, s, http.MethodGet, apiPath(q, parts...), nil, out)
}

// apiPath joins /api/v1 and parts, each path-escaped, with q as the query.
func apiPath(q url.Values, parts ...string) string {
	var b strings.Builder
	b.WriteString("/api/v1")
	for _, p := range parts {
		b.WriteString("/")
		b.WriteString(url.PathEscape(p))
	}
	if enc := q.Encode(); enc != "" {
		b.WriteString("?")
		b.WriteString(enc)
	}
	return b.String()
}

// formError answers a form the console could not read.
func formError(err error) *api.Error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &api.Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("the form is larger than %d bytes; nothing was changed", MaxFormBytes)}
	}
	return &api.Error{Status: http.StatusBadRequest, Message: "the form could not be read; nothing was changed"}
}
