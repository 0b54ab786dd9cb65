package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/token"
)

// harness is a real store behind a real API on a loopback HTTP server, with the first tenant's
// service administrator token.
type harness struct {
	t     testing.TB
	store *store.Store
	api   *API
	srv   *httptest.Server
	admin string // service admin of tenant "default"
}

func newHarness(t testing.TB, kind string) *harness {
	t.Helper()
	s := storetest.Open(t, kind)
	secret, hash := token.Generate()
	if _, _, _, err := s.Bootstrap(context.Background(), "default", hash); err != nil {
		t.Fatal(err)
	}
	a := New(Deps{Store: s, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return &harness{t: t, store: s, api: a, srv: srv, admin: secret}
}

func (h *harness) client(tok string) *client.Client {
	h.t.Helper()
	c, err := client.New(h.srv.URL, client.WithToken(tok), client.WithHTTPClient(h.srv.Client()))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// tenantAdmin creates a tenant and returns an admin token of it.
func (h *harness) tenantAdmin(name string) string {
	h.t.Helper()
	ctx := context.Background()
	c := h.client(h.admin)
	if _, err := c.CreateTenant(ctx, client.CreateTenantRequest{Name: name}); err != nil {
		h.t.Fatalf("create tenant %s: %v", name, err)
	}
	tok, err := c.CreateToken(ctx, client.CreateTokenRequest{Tenant: name, Role: "admin"})
	if err != nil {
		h.t.Fatalf("create token for %s: %v", name, err)
	}
	return tok.Secret
}

// token creates a token of the given role in the tenant of the admin token adminTok.
func (h *harness) token(adminTok, role string) client.Token {
	h.t.Helper()
	tok, err := h.client(adminTok).CreateToken(context.Background(), client.CreateTokenRequest{Role: role})
	if err != nil {
		h.t.Fatalf("create %s token: %v", role, err)
	}
	return tok
}

// raw sends a request with a literal body and returns status and body.
func (h *harness) raw(method, path, tok, contentType, body string) (int, string) {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// snapshot counts what a failed request must not change: audit records, tenants, tokens,
// products and groups.
func (h *harness) snapshot() map[string]int {
	h.t.Helper()
	out := map[string]int{}
	for _, table := range []string{"audit_records", "audit_heads", "tenants", "api_tokens", "products", "device_groups", "devices"} {
		var n int
		if err := h.store.DB().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			h.t.Fatal(err)
		}
		out[table] = n
	}
	var revoked int
	h.store.DB().QueryRow("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NOT NULL").Scan(&revoked)
	out["revoked"] = revoked
	return out
}

// insertDevice puts a claimed device straight into the registry; enrolment and claiming come
// with attestation.
func (h *harness) insertDevice(tenantID, productID, groupID, id string) {
	h.t.Helper()
	_, err := h.store.DB().Exec(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'claimed', '', '1.0.0', '', 1, 1)`, id, tenantID, productID, groupID)
	if err != nil {
		h.t.Fatal(err)
	}
}
