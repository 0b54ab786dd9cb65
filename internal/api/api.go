// Package api serves Rampart's admin API under /api/v1: JSON over HTTPS with bearer tokens,
// one error envelope, pagination on every list, and authorisation decided per route and scoped
// to the caller's tenant on every query. Its OpenAPI document is generated from the same route
// table that serves the API, so the two cannot drift. Only the server imports it.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/token"
)

// Deps are what the API needs.
type Deps struct {
	Store  *store.Store
	Logger *slog.Logger
}

// API is the admin API handler.
type API struct {
	store  *store.Store
	log    *slog.Logger
	mux    *http.ServeMux
	routes []route
}

// New builds the API with every route registered.
func New(d Deps) *API {
	a := &API{store: d.Store, log: d.Logger, mux: http.NewServeMux()}
	a.register()
	return a
}

// ServeHTTP serves the admin API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// access is who may call a route.
type access struct {
	public  bool       // no token needed
	role    token.Role // the least role that may call it
	service bool       // only service administrators
}

var (
	public   = access{public: true}
	reader   = access{role: token.Reader}
	operator = access{role: token.Operator}
	admin    = access{role: token.Admin}
	service  = access{role: token.Admin, service: true}
)

// principal is the authenticated caller.
type principal struct {
	tokenID    string
	tenantID   string
	tenantName string
	role       token.Role
	service    bool
}

func (p *principal) actor() store.Actor { return store.Actor("token:" + p.tokenID) }

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
	a.handle("GET /api/v1/products/{product}/groups", reader, a.listGroups, doc{summary: "List a product's device groups", response: client.List[client.Group]{}})
	a.handle("POST /api/v1/products/{product}/groups", operator, a.createGroup, doc{summary: "Create a device group", body: client.CreateGroupRequest{}, response: client.Group{}, status: http.StatusCreated})
	a.handle("GET /api/v1/products/{product}/groups/{group}", reader, a.getGroup, doc{summary: "Show a device group", response: client.Group{}})

	a.handle("GET /api/v1/devices", reader, a.listDevices, doc{summary: "List devices", response: client.List[client.Device]{}, query: []string{"product", "group"}})
	a.handle("GET /api/v1/devices/{id}", reader, a.getDevice, doc{summary: "Show a device", response: client.Device{}})

	a.handle("GET /api/v1/audit", admin, a.listAudit, doc{summary: "List the tenant's audit records in chain order", response: client.List[client.AuditRecord]{}, query: []string{"action"}})
	a.handle("GET /api/v1/audit/verify", admin, a.verifyAudit, doc{summary: "Verify the tenant's audit hash chain", response: client.AuditVerification{}})

	a.mux.HandleFunc("/api/", a.unmatched)
}

// unmatched answers requests that no route serves: 405 with Allow when the path exists under
// another method, else 404, both in the error envelope.
func (a *API) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "/api/" {
			allow = append(allow, m)
		}
	}
	if allow != nil {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, newError(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
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
		err := a.serve(w, r, acc, h)
		if err == nil {
			return
		}
		e := asError(err)
		if e.Status >= 500 {
			a.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			a.log.Debug("api request refused", "method", r.Method, "path", r.URL.Path, "status", e.Status, "err", err)
		}
		writeError(w, e)
	})
}

func (a *API) serve(w http.ResponseWriter, r *http.Request, acc access, h handlerFunc) error {
	if acc.public {
		return h(w, r, nil)
	}
	p, err := a.authenticate(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if acc.service && !p.service {
		return forbidden("this endpoint needs a service administrator's token")
	}
	if !p.role.Allows(acc.role) {
		return forbidden("this endpoint needs the %s role; the token has %s", acc.role, p.role)
	}
	return h(w, r, p)
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
