package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/sso"
	"github.com/rampartsec/rampart/internal/sso/ssotest"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// oidcRig is a real server whose console signs operators in with a real OpenID Connect
// provider (ssotest, zitadel/oidc's op package) running beside it.
type oidcRig struct {
	dir string
	ts  *httptest.Server
	srv *server.Server
	idp *ssotest.Provider
	web *http.Client // follows redirects, keeps cookies: a browser without script
}

var oidcUsers = []ssotest.User{
	{Subject: "u-ada", Username: "ada", Password: "pw-ada", Email: "ada@example.test", Name: "Ada",
		Claims: map[string]any{"rampart_tenant": "default", "rampart_role": "operator"}},
	{Subject: "u-none", Username: "nobody", Password: "pw-nobody", Email: "nobody@example.test"},
}

// newOIDCRig starts the provider with the client rampart-console and a server configured with
// clientID ("rampart-console" when empty; the provider accepts it as an alias otherwise).
func newOIDCRig(t *testing.T, clientID string) *oidcRig {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.EnableHTTP2 = false
	redirect := "https://" + ts.Listener.Addr().String() + "/login/oidc/callback"
	idp := ssotest.Start(t, "rampart-console", redirect, oidcUsers...)
	if clientID == "" {
		clientID = idp.ClientID
	} else {
		idp.SetAlias(clientID)
	}
	dir := t.TempDir()
	cfg := server.Config{DataDir: dir, Listen: "127.0.0.1:0",
		OIDC: &sso.Config{Issuer: idp.Issuer, ClientID: clientID, ClientSecret: idp.ClientSecret, RedirectURL: redirect}}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Store().Close() })
	ts.Config.Handler = srv.Handler()
	ts.StartTLS()
	t.Cleanup(ts.Close)
	web := ts.Client()
	jar, _ := cookiejar.New(nil)
	web.Jar = jar
	web.Timeout = 30 * time.Second
	return &oidcRig{dir: dir, ts: ts, srv: srv, idp: idp, web: web}
}

func (r *oidcRig) get(t *testing.T, u string) (int, string, *url.URL) {
	t.Helper()
	res, err := r.web.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Request.URL
}

// signIn follows the console's "Sign in with your identity provider" to the provider's form,
// signs in there, and returns the page the console answers at the end.
func (r *oidcRig) signIn(t *testing.T, user, password string) (int, string) {
	t.Helper()
	st, body, _ := r.get(t, r.ts.URL+"/login")
	if st != 200 || !strings.Contains(body, `href="/login/oidc"`) {
		t.Fatalf("/login offers no identity provider sign-in: %d\n%s", st, body)
	}
	st, _, at := r.get(t, r.ts.URL+"/login/oidc")
	if st != 200 || at.Path != "/login" || !strings.HasPrefix(at.String(), r.idp.Issuer) {
		t.Fatalf("/login/oidc led to %s (%d), want the provider's form", at, st)
	}
	res, err := r.web.PostForm(r.idp.Issuer+"/login", url.Values{"id": {at.Query().Get("id")}, "username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (r *oidcRig) sessions(t *testing.T) int {
	t.Helper()
	var n int
	if err := storetest.QueryRow(context.Background(), r.srv.Store(), `SELECT COUNT(*) FROM console_sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOIDCSignIn: an operator signs in through the identity provider and the console acts with
// the tenant and role the provider's claims name, audited under the user's name.
func TestOIDCSignIn(t *testing.T) {
	r := newOIDCRig(t, "")
	st, body := r.signIn(t, "ada", "pw-ada")
	if st != 200 || !strings.Contains(body, "Signed in as oidc:ada@example.test, operator of default") || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("callback: %d\n%s", st, body)
	}
	st, body, at := r.get(t, r.ts.URL+"/")
	if st != 200 || at.Path != "/" || !strings.Contains(body, "default · operator") {
		t.Fatalf("the console after the sign-in: %d at %s\n%s", st, at, body)
	}
	// The role is the claim's: an operator may not list tokens.
	if st, body, _ := r.get(t, r.ts.URL+"/tokens"); st != http.StatusForbidden || !strings.Contains(body, "needs the admin role") {
		t.Errorf("an OIDC operator on /tokens: %d\n%s", st, body)
	}
	b, err := os.ReadFile(filepath.Join(r.dir, server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	adminTok := strings.TrimSpace(string(b))
	c, err := client.New(r.ts.URL, client.WithToken(adminTok), client.WithHTTPClient(r.ts.Client()))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := c.ListAudit(context.Background(), "session.create", client.ListOptions{})
	if err != nil || len(recs.Items) != 1 || recs.Items[0].Actor != "oidc:ada@example.test (sub u-ada)" {
		t.Errorf("session.create audit records = %+v, %v", recs.Items, err)
	}
}

// TestOIDCRefusals: a wrong audience, an expired ID token and an unmapped user are each refused
// on the sign-in page with the reason, and no session is made.
func TestOIDCRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, clientID, user, password string
		setup                          func(r *oidcRig)
		status                         int
		want                           string
	}{
		{name: "wrong audience", clientID: "rampart", user: "ada", password: "pw-ada", status: 401,
			want: "the ID token was issued for rampart-console, not for this server&#39;s client rampart; it is refused"},
		{name: "expired", user: "ada", password: "pw-ada", setup: func(r *oidcRig) { r.idp.SetIDTokenLifetime(-time.Minute) }, status: 401,
			want: "the identity provider&#39;s ID token expired at"},
		{name: "unmapped user", user: "nobody", password: "pw-nobody", status: 403,
			want: "nobody@example.test carries no rampart_tenant claim (a tenant&#39;s name); ask your identity provider&#39;s administrator to map you to a Rampart tenant and role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newOIDCRig(t, tc.clientID)
			if tc.setup != nil {
				tc.setup(r)
			}
			st, body := r.signIn(t, tc.user, tc.password)
			if st != tc.status || !strings.Contains(body, tc.want) || !strings.Contains(body, `action="/login"`) {
				t.Errorf("callback: %d, want %d with %q on the sign-in page\n%s", st, tc.status, tc.want, body)
			}
			if n := r.sessions(t); n != 0 {
				t.Errorf("%d sessions made", n)
			}
			if st, _, at := r.get(t, r.ts.URL+"/"); at.Path != "/login" {
				t.Errorf("the console after a refused sign-in: %d at %s, want the sign-in page", st, at)
			}
		})
	}
}

// TestOIDCNeedsCallbackPath: a redirect URL elsewhere than the console's callback is refused
// at start.
func TestOIDCNeedsCallbackPath(t *testing.T) {
	_, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		OIDC: &sso.Config{Issuer: "http://127.0.0.1:1", ClientID: "c", RedirectURL: "https://h/callback"}})
	if err == nil || !strings.Contains(err.Error(), "must end in /login/oidc/callback") {
		t.Errorf("server.New = %v", err)
	}
}
