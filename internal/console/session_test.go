package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/console"
)

func TestSignIn(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		b := h.browser()
		res := b.get("/tokens?limit=5")
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/login?next="+url.QueryEscape("/tokens?limit=5") {
			t.Fatalf("signed-out page: status %d, Location %q; want 303 to the sign-in form", res.status, res.header.Get("Location"))
		}
		before := h.auditCount("default")
		for _, tt := range []struct{ name, token, msg string }{
			{"empty", "", "enter an API token"},
			{"malformed", "hello", "that is not an API token"},
			{"unknown", "rpt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "that API token is not valid"},
		} {
			res := b.post("/login", url.Values{"token": {tt.token}})
			if res.status != http.StatusUnauthorized || !strings.Contains(res.body, tt.msg) {
				t.Errorf("%s token: status %d, want 401 saying %q; body %s", tt.name, res.status, tt.msg, res.body)
			}
			if b.cookie() != nil {
				t.Errorf("%s token: a session cookie was set", tt.name)
			}
		}
		if got := h.auditCount("default"); got != before {
			t.Errorf("refused sign-ins wrote %d audit records", got-before)
		}

		res = b.post("/login", url.Values{"token": {h.admin}, "next": {"/tokens?limit=5"}})
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/tokens?limit=5" {
			t.Fatalf("sign-in: status %d, Location %q", res.status, res.header.Get("Location"))
		}
		var set *http.Cookie
		for _, c := range (&http.Response{Header: res.header}).Cookies() {
			if c.Name == console.CookieName {
				set = c
			}
		}
		if set == nil {
			t.Fatalf("sign-in set no %s cookie: %v", console.CookieName, res.header["Set-Cookie"])
		}
		if !set.HttpOnly || !set.Secure || set.SameSite != http.SameSiteStrictMode || set.Path != "/" || set.Domain != "" {
			t.Errorf("cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/ and no Domain", set)
		}
		if ttl := time.Until(set.Expires); ttl < console.DefaultSessionTTL-time.Minute || ttl > console.DefaultSessionTTL+time.Minute {
			t.Errorf("cookie expires in %v, want %v", ttl, console.DefaultSessionTTL)
		}
		if got := h.auditCount("default"); got != before+1 {
			t.Errorf("sign-in wrote %d audit records, want 1 (session.create)", got-before)
		}
		res = b.get("/")
		if res.status != http.StatusOK || !strings.Contains(res.body, "Fleet overview") || !strings.Contains(res.body, "default · admin") {
			t.Fatalf("overview: status %d; body %s", res.status, res.body)
		}
		checkPageSecurity(t, res)

		// A next that leaves the site is replaced by the overview.
		for _, next := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example"} {
			res := h.browser().post("/login", url.Values{"token": {h.admin}, "next": {next}})
			if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
				t.Errorf("next %q: status %d, Location %q; want 303 to /", next, res.status, res.header.Get("Location"))
			}
		}
	})
}

// checkPageSecurity checks a page's headers and that it needs no inline script or style.
func checkPageSecurity(t *testing.T, res response) {
	t.Helper()
	if got := res.header.Get("Content-Security-Policy"); got != console.ContentSecurityPolicy {
		t.Errorf("Content-Security-Policy = %q", got)
	}
	for _, csp := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(console.ContentSecurityPolicy, csp) {
			t.Errorf("the policy lacks %s", csp)
		}
	}
	if strings.Contains(console.ContentSecurityPolicy, "unsafe") {
		t.Errorf("the policy allows something unsafe: %s", console.ContentSecurityPolicy)
	}
	if res.header.Get("X-Content-Type-Options") != "nosniff" || res.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", res.header)
	}
	inline := regexp.MustCompile(`(?i)<script[^>]*>\s*[^<\s]|\sstyle=|\son[a-z]+=|<style`)
	if m := inline.FindString(res.body); m != "" {
		t.Errorf("page holds inline script or style (%q), which the policy would block", m)
	}
	for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(res.body, -1) {
		if !strings.Contains(tag, `src="/static/`) {
			t.Errorf("script %s is not one of the console's own files", tag)
		}
	}
	for _, want := range []string{`<html lang="en">`, `<main id="main"`, `href="#main"`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestSessionEnds(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		t.Run("sign out", func(t *testing.T) {
			b := h.signedIn(h.admin)
			old := b.cookie()
			res := b.post("/logout", nil)
			if res.status != http.StatusOK || !strings.Contains(res.body, "You are signed out") {
				t.Fatalf("sign out: status %d; body %s", res.status, res.body)
			}
			// The old cookie, replayed, no longer works.
			replay := h.browser()
			u, _ := url.Parse(h.ts.URL)
			replay.jar.SetCookies(u, []*http.Cookie{old})
			before := h.auditCount("default")
			res = replay.post("/tokens", url.Values{"role": {"admin"}})
			if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "your session has ended") {
				t.Errorf("after sign-out: status %d; body %s", res.status, res.body)
			}
			if h.auditCount("default") != before {
				t.Error("a request of an ended session wrote to the audit chain")
			}
		})
		t.Run("token revoked", func(t *testing.T) {
			tok := h.token(h.admin, "operator")
			b := h.signedIn(tok.Secret)
			if res := b.get("/"); res.status != http.StatusOK {
				t.Fatalf("overview: %d", res.status)
			}
			if _, err := h.api(h.admin).RevokeToken(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
			res := b.get("/")
			if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "was revoked, which ended your session") {
				t.Errorf("after revocation: status %d; body %s", res.status, res.body)
			}
			if res := h.browser().post("/login", url.Values{"token": {tok.Secret}}); res.status != http.StatusUnauthorized || !strings.Contains(res.body, "was revoked") {
				t.Errorf("signing in with a revoked token: status %d; body %s", res.status, res.body)
			}
		})
		t.Run("expired", func(t *testing.T) {
			b := h.signedIn(h.admin)
			h.clock.Add(console.DefaultSessionTTL + time.Second)
			defer h.clock.Add(-console.DefaultSessionTTL - time.Second)
			res := b.post("/logout", nil) // signing out of an expired session is harmless
			if res.status != http.StatusOK {
				t.Errorf("sign out of an expired session: %d", res.status)
			}
			b = h.signedIn(h.admin)
			h.clock.Add(console.DefaultSessionTTL + time.Second)
			defer h.clock.Add(-console.DefaultSessionTTL - time.Second)
			before := h.auditCount("default")
			res = b.post("/tokens", url.Values{"role": {"admin"}})
			if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "your session expired") {
				t.Errorf("expired session: status %d; body %s", res.status, res.body)
			}
			if h.auditCount("default") != before {
				t.Error("a request of an expired session wrote to the audit chain")
			}
		})
	})
}

func TestCrossSiteRefused(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		b := h.signedIn(h.admin)
		before := h.auditCount("default")
		for _, tt := range []struct{ name, site, origin string }{
			{"cross-site fetch", "cross-site", ""},
			{"same-site fetch", "same-site", ""},
			{"foreign origin", "", "https://evil.example"},
		} {
			for _, path := range []string{"/logout", "/tokens", "/login"} {
				res := b.postWith(path, url.Values{"role": {"admin"}, "token": {h.admin}}, tt.site, tt.origin)
				if res.status != http.StatusForbidden || !strings.Contains(res.body, "came from another site") {
					t.Errorf("%s POST %s: status %d; body %s", tt.name, path, res.status, res.body)
				}
			}
		}
		if got := h.auditCount("default"); got != before {
			t.Errorf("forged requests wrote %d audit records", got-before)
		}
		if res := b.get("/"); res.status != http.StatusOK {
			t.Errorf("the session did not survive forged sign-outs: %d", res.status)
		}
	})
}

func TestBadForms(t *testing.T) {
	h := newHarness(t, "sqlite")
	b := h.signedIn(h.admin)
	before := h.auditCount("default")
	res := b.post("/tokens", url.Values{"role": {"admin"}, "description": {strings.Repeat("x", console.MaxFormBytes)}})
	if res.status != http.StatusRequestEntityTooLarge || !strings.Contains(res.body, "the form is larger than") {
		t.Errorf("oversized form: status %d; body %s", res.status, res.body)
	}
	res = b.postWith("/login", nil, "same-origin", "")
	if res.status != http.StatusUnauthorized {
		t.Errorf("empty sign-in: %d", res.status)
	}
	if got := h.auditCount("default"); got != before {
		t.Errorf("refused forms wrote %d audit records", got-before)
	}
	if res := b.get("/no/such/page"); res.status != http.StatusNotFound || !strings.Contains(res.body, "there is no page at /no/such/page") {
		t.Errorf("unknown page: %d %s", res.status, res.body)
	}
	if res := b.get("/static/console.css"); res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %s", res.status, res.header.Get("Content-Type"))
	}
}
