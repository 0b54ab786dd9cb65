package sso_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/sso"
	"github.com/rampartsec/rampart/internal/sso/ssotest"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/token"
)

// tenants resolves tenant names through the store, as the console does.
type tenants struct{ s *store.Store }

func (t tenants) TenantID(ctx context.Context, name string) (string, bool, error) {
	ten, err := t.s.TenantByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	return ten.ID, err == nil, err
}

// rig is a relying party (the console's two sign-in routes, over TLS) in front of a real
// OpenID Connect provider, and a browser-like client with a cookie jar.
type rig struct {
	st     *store.Store
	idp    *ssotest.Provider
	rp     *httptest.Server
	sso    *sso.Provider
	client *http.Client
	tenant store.Tenant
	// signedIn holds each identity the callback accepted: the sessions the console would make.
	signedIn []sso.Identity
	now      func() time.Time
}

var users = []ssotest.User{
	{Subject: "u-ada", Username: "ada", Password: "pw-ada", Email: "ada@example.test", Name: "Ada",
		Claims: map[string]any{"rampart_tenant": "acme", "rampart_role": "operator"}},
	{Subject: "u-grp", Username: "grace", Password: "pw-grace", Email: "grace@example.test",
		Claims: map[string]any{"rampart_tenant": "acme", "rampart_role": []any{"staff", "reader", "admin"}}},
	{Subject: "u-none", Username: "nobody", Password: "pw-nobody", Email: "nobody@example.test"},
	{Subject: "u-else", Username: "eve", Password: "pw-eve", Email: "eve@example.test",
		Claims: map[string]any{"rampart_tenant": "globex", "rampart_role": "admin"}},
	{Subject: "u-badrole", Username: "mallory", Password: "pw-mallory",
		Claims: map[string]any{"rampart_tenant": "acme", "rampart_role": "root"}},
}

// newRig starts the provider with the client rampart-console; the relying party is configured
// with clientID ("rampart-console" when empty).
func newRig(t *testing.T, clientID ...string) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{st: storetest.Open(t, "sqlite"), now: time.Now}
	var err error
	if r.tenant, err = r.st.CreateTenant(ctx, store.System, "", "acme"); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	r.rp = httptest.NewUnstartedServer(mux)
	r.rp.StartTLS()
	t.Cleanup(r.rp.Close)
	r.idp = ssotest.Start(t, "rampart-console", r.rp.URL+"/login/oidc/callback", users...)
	cid := r.idp.ClientID
	if len(clientID) > 0 {
		cid = clientID[0]
		r.idp.SetAlias(cid)
	}
	r.sso, err = sso.New(ctx, sso.Config{Issuer: r.idp.Issuer, ClientID: cid, ClientSecret: r.idp.ClientSecret,
		RedirectURL: r.rp.URL + "/login/oidc/callback"},
		sso.Deps{Logins: r.st, Tenants: tenants{r.st}, Secure: true, Now: func() time.Time { return r.now() }})
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("GET /login/oidc", func(w http.ResponseWriter, req *http.Request) {
		u, err := r.sso.Begin(req.Context(), w)
		if err != nil {
			http.Error(w, "begin: "+err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, req, u, http.StatusFound)
	})
	mux.HandleFunc("GET /login/oidc/callback", func(w http.ResponseWriter, req *http.Request) {
		id, err := r.sso.Finish(req.Context(), w, req)
		if err != nil {
			msg, ok := public.Message(err)
			if !ok {
				msg = "internal: " + err.Error()
			}
			status := http.StatusInternalServerError
			switch public.KindOf(err) {
			case public.Unauthorized:
				status = http.StatusUnauthorized
			case public.Forbidden:
				status = http.StatusForbidden
			}
			w.WriteHeader(status)
			fmt.Fprint(w, msg)
			return
		}
		r.signedIn = append(r.signedIn, id)
		json.NewEncoder(w).Encode(id)
	})
	jar, _ := cookiejar.New(nil)
	r.client = r.rp.Client()
	r.client.Jar = jar
	r.client.Timeout = 20 * time.Second
	return r
}

// signIn walks the whole flow as a browser would: the console's /login/oidc, the provider's
// login form, and back to the callback. It returns the callback's status and body.
func (r *rig) signIn(t *testing.T, username, password string) (int, string) {
	t.Helper()
	resp, err := r.client.Get(r.rp.URL + "/login/oidc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/login" {
		t.Fatalf("sign-in landed on %s (%d), want the provider's login form", resp.Request.URL, resp.StatusCode)
	}
	q := resp.Request.URL.Query()
	resp, err = r.client.PostForm(r.idp.Issuer+"/login", url.Values{"id": {q.Get("id")}, "username": {username}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func TestSignIn(t *testing.T) {
	r := newRig(t)
	code, body := r.signIn(t, "ada", "pw-ada")
	if code != 200 {
		t.Fatalf("callback answered %d: %s", code, body)
	}
	want := []sso.Identity{{Issuer: r.idp.Issuer, Subject: "u-ada", Email: "ada@example.test", Name: "Ada",
		TenantID: r.tenant.ID, TenantName: "acme", Role: token.Operator}}
	if diff := cmp.Diff(r.signedIn, want); diff != "" {
		t.Errorf("identities (-got +want):\n%s", diff)
	}
	if got := r.signedIn[0].Label(); got != "oidc:ada@example.test" {
		t.Errorf("label %q", got)
	}
	// A list of roles (a groups claim) maps to the most able role named in it.
	if code, body := r.signIn(t, "grace", "pw-grace"); code != 200 {
		t.Fatalf("grace: %d %s", code, body)
	}
	if got := r.signedIn[1].Role; got != token.Admin {
		t.Errorf("grace's role %q, want admin", got)
	}
	// Another audience beside this client, which is the authorized party, is accepted.
	r.idp.SetAudience([]string{"api://rampart"})
	if code, body := r.signIn(t, "ada", "pw-ada"); code != 200 {
		t.Fatalf("two audiences, azp this client: %d %s", code, body)
	}
}

// TestRefusals: each refusal is a sentence saying why, and nothing is signed in.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name           string
		clientID       string
		user, password string
		setup          func(r *rig)
		status         int
		want           string
		kind           error
	}{
		// The provider knows the client as rampart-console and accepts the alias rampart too;
		// this server, configured with the alias, is handed tokens for rampart-console.
		{name: "wrong audience", clientID: "rampart", user: "ada", password: "pw-ada",
			status: 401, want: "the ID token was issued for rampart-console, not for this server's client rampart; it is refused"},
		{name: "two audiences without this client as authorized party", clientID: "rampart", user: "ada", password: "pw-ada",
			setup:  func(r *rig) { r.idp.SetAudience([]string{"rampart"}) },
			status: 401, want: "names several audiences but not this server's client rampart as its authorized party"},
		{name: "expired at the provider", user: "ada", password: "pw-ada", setup: func(r *rig) { r.idp.SetIDTokenLifetime(-time.Minute) },
			status: 401, want: "the identity provider's ID token expired at"},
		{name: "expired by this server's clock", user: "ada", password: "pw-ada",
			setup:  func(r *rig) { r.now = func() time.Time { return time.Now().Add(time.Hour) } },
			status: 401, want: "check both clocks and sign in again"},
		{name: "no tenant claim", user: "nobody", password: "pw-nobody", status: 403,
			want: "nobody@example.test carries no rampart_tenant claim (a tenant's name); ask your identity provider's administrator to map you to a Rampart tenant and role"},
		{name: "unknown tenant", user: "eve", password: "pw-eve", status: 403,
			want: `eve@example.test names tenant "globex" in rampart_tenant, which this server does not have`},
		{name: "unknown role", user: "mallory", password: "pw-mallory", status: 403,
			want: "subject u-badrole carries no rampart_role claim naming admin, operator or reader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *rig
			if tc.clientID != "" {
				r = newRig(t, tc.clientID)
			} else {
				r = newRig(t)
			}
			if tc.setup != nil {
				tc.setup(r)
			}
			code, body := r.signIn(t, tc.user, tc.password)
			if code != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("callback answered %d %q; want %d containing %q", code, body, tc.status, tc.want)
			}
			if strings.Contains(body, "internal") {
				t.Errorf("the refusal leaks an internal error: %q", body)
			}
			if len(r.signedIn) != 0 {
				t.Errorf("signed in %v", r.signedIn)
			}
			if r.idp.Logins() != 1 {
				t.Errorf("the provider checked %d passwords, want 1: the refusal must come after a real sign-in there", r.idp.Logins())
			}
		})
	}
}

// TestState: an answer that no sign-in of this browser began, or one replayed, is refused
// before the code is exchanged.
func TestState(t *testing.T) {
	r := newRig(t)
	if code, body := r.signIn(t, "ada", "pw-ada"); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	// Replaying the callback URL the provider sent (its state was taken).
	resp, err := r.client.Get(r.rp.URL + "/login/oidc/callback?code=x&state=y")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(body), "belongs to no sign-in begun in this browser") {
		t.Errorf("forged callback: %d %s", resp.StatusCode, body)
	}

	// A sign-in begun in one browser and finished in another (login CSRF): the second browser
	// has no state cookie.
	resp, err = r.client.Get(r.rp.URL + "/login/oidc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("id")
	other := r.rp.Client()
	jar, _ := cookiejar.New(nil)
	other.Jar = jar
	resp, err = other.PostForm(r.idp.Issuer+"/login", url.Values{"id": {id}, "username": {"ada"}, "password": {"pw-ada"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(body), "belongs to no sign-in begun in this browser") {
		t.Errorf("callback in another browser: %d %s", resp.StatusCode, body)
	}
	if len(r.signedIn) != 1 {
		t.Errorf("%d sign-ins, want the first only", len(r.signedIn))
	}
}

// TestPendingExpires: a sign-in finished after PendingTTL is refused, and the store keeps
// none of it.
func TestPendingExpires(t *testing.T) {
	r := newRig(t)
	resp, err := r.client.Get(r.rp.URL + "/login/oidc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("id")
	r.now = func() time.Time { return time.Now().Add(sso.PendingTTL + time.Minute) }
	resp, err = r.client.PostForm(r.idp.Issuer+"/login", url.Values{"id": {id}, "username": {"ada"}, "password": {"pw-ada"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(body), "already used or took longer than 10 minutes") {
		t.Errorf("late callback: %d %s", resp.StatusCode, body)
	}
	var n int
	if err := storetest.QueryRow(context.Background(), r.st, `SELECT COUNT(*) FROM oidc_logins`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d pending sign-ins left (%v)", n, err)
	}
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	_, err := sso.New(ctx, sso.Config{Issuer: "ftp://x", RedirectURL: "nope", TenantClaim: "bad claim"}, sso.Deps{})
	msg, _ := public.Message(err)
	for _, want := range []string{`--oidc-issuer "ftp://x" must be`, "--oidc-client-id is required", `--oidc-redirect-url "nope"`, `--oidc-tenant-claim "bad claim"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	// An issuer that does not answer.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, err = sso.New(ctx, sso.Config{Issuer: dead.URL, ClientID: "c", RedirectURL: "https://h/login/oidc/callback"}, sso.Deps{})
	if msg, _ := public.Message(err); !strings.Contains(msg, "did not answer with its discovery document") {
		t.Errorf("dead issuer: %v", err)
	}
}
