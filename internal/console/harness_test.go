package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/console"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// clock is a settable clock shared by the server's store and console.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testLog sends the server's error log to the test's.
type testLog struct{ t testing.TB }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Helper()
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// harness is a real Rampart server (storage, API and console) behind a loopback TLS
// httptest server, with the first tenant's service administrator token.
type harness struct {
	t     testing.TB
	srv   *server.Server
	ts    *httptest.Server
	admin string
	clock *clock
}

func newHarness(t testing.TB, kind string) *harness {
	t.Helper()
	cfg := server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", LiveEvery: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelError}))}
	if kind == "postgres" {
		cfg.Database = storetest.PostgresURL(t)
	}
	ck := &clock{t: time.Now().UTC()}
	cfg.Now = ck.Now
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Store().Close() })
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.EnableHTTP2 = false
	ts.StartTLS()
	t.Cleanup(ts.Close)
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, srv: srv, ts: ts, admin: strings.TrimSpace(string(b)), clock: ck}
}

func eachDB(t *testing.T, fn func(t *testing.T, h *harness)) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) { fn(t, newHarness(t, kind)) })
	}
}

// api is an API client with tok.
func (h *harness) api(tok string) *client.Client {
	h.t.Helper()
	c, err := client.New(h.ts.URL, client.WithToken(tok), client.WithHTTPClient(h.ts.Client()))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// token creates a token of role in the tenant of the admin token given.
func (h *harness) token(admin, role string) client.Token {
	h.t.Helper()
	tok, err := h.api(admin).CreateToken(context.Background(), client.CreateTokenRequest{Role: role})
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// tenantAdmin creates a tenant and returns its administrator token.
func (h *harness) tenantAdmin(name string) string {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.api(h.admin).CreateTenant(ctx, client.CreateTenantRequest{Name: name}); err != nil {
		h.t.Fatal(err)
	}
	tok, err := h.api(h.admin).CreateToken(ctx, client.CreateTokenRequest{Role: "admin", Tenant: name})
	if err != nil {
		h.t.Fatal(err)
	}
	return tok.Secret
}

// browser is a cookie-keeping HTTPS client that does not follow redirects, so tests see them.
type browser struct {
	h   *harness
	c   *http.Client
	jar *cookiejar.Jar
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := h.ts.Client()
	cc := *c
	cc.Jar = jar
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cc.Timeout = 30 * time.Second
	return &browser{h: h, c: &cc, jar: jar}
}

// signedIn is a browser signed in with tok.
func (h *harness) signedIn(tok string) *browser {
	h.t.Helper()
	b := h.browser()
	res := b.post("/login", url.Values{"token": {tok}})
	if res.status != http.StatusSeeOther {
		h.t.Fatalf("sign-in: status %d, want 303; body %s", res.status, res.body)
	}
	return b
}

type response struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) response {
	b.h.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	return response{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(path string) response {
	b.h.t.Helper()
	req, _ := http.NewRequest("GET", b.h.ts.URL+path, nil)
	return b.do(req)
}

// post sends a form as a same-origin browser does (Sec-Fetch-Site: same-origin).
func (b *browser) post(path string, form url.Values) response {
	b.h.t.Helper()
	return b.postWith(path, form, "same-origin", "")
}

// postWith sends a form with the Sec-Fetch-Site and Origin a browser would send.
func (b *browser) postWith(path string, form url.Values, fetchSite, origin string) response {
	b.h.t.Helper()
	req, _ := http.NewRequest("POST", b.h.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if fetchSite != "" {
		req.Header.Set("Sec-Fetch-Site", fetchSite)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return b.do(req)
}

// cookie is the browser's session cookie as the server set it.
func (b *browser) cookie() *http.Cookie {
	u, _ := url.Parse(b.h.ts.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == console.CookieName {
			return c
		}
	}
	return nil
}

// auditCount is the number of records in the tenant's audit chain: a refused request must
// leave it as it was.
func (h *harness) auditCount(tenant string) int64 {
	h.t.Helper()
	ctx := context.Background()
	t, err := h.srv.Store().TenantByName(ctx, tenant)
	if err != nil {
		h.t.Fatal(err)
	}
	v, err := h.srv.Store().VerifyAudit(ctx, t.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return v.Records
}

var _ = store.SessionToken

// snapshot counts the rows of every table a console page may change, with the revoked tokens
// and ended sessions: a refused request must leave it as it was.
func (h *harness) snapshot() map[string]int {
	h.t.Helper()
	out := map[string]int{}
	db := storetest.DB(h.srv.Store())
	for _, q := range []string{"audit_records", "tenants", "api_tokens", "products", "device_groups", "devices", "releases",
		"deployments", "failure_groups", "reports", "report_comments", "report_events", "award_ledger", "report_releases",
		"console_sessions",
		"api_tokens WHERE revoked_at IS NOT NULL", "console_sessions WHERE revoked_at IS NOT NULL",
		"deployments WHERE state = 'paused'", "deployments WHERE state = 'aborted'", "releases WHERE revoked_at IS NOT NULL"} {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + q).Scan(&n); err != nil {
			h.t.Fatalf("snapshot %s: %v", q, err)
		}
		out[q] = n
	}
	return out
}
