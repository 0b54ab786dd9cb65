package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/sso"
	"github.com/rampartsec/rampart/internal/store"
)

// OIDCCallbackPath is where the identity provider sends the browser back; the server's
// --oidc-redirect-url must end in it.
const OIDCCallbackPath = "/login/oidc/callback"

// registerOIDC adds the OpenID Connect sign-in when the server has an identity provider: /login
// offers it, /login/oidc sends the browser to the provider (authorization code with PKCE) and
// the callback opens a session with the tenant and role the provider's claims map to
// (internal/sso), exactly as a token's session.
func (c *Console) registerOIDC() {
	if c.oidc == nil {
		return
	}
	c.open("GET /login/oidc", c.oidcBegin)
	c.open("GET "+OIDCCallbackPath, c.oidcFinish)
}

func (c *Console) oidcBegin(w http.ResponseWriter, r *http.Request) {
	u, err := c.oidc.Begin(r.Context(), w)
	if err != nil {
		c.log.Error("console OIDC sign-in failed", "err", err)
		c.render(w, r, http.StatusInternalServerError, "login", nil, "Sign in", c.loginData("", "internal error; try again"))
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// oidcFinish opens the session. It answers a page that moves on to the console itself, rather
// than a redirect: the browser arrives here from the provider's site, and a SameSite=Strict
// session cookie would not be sent on a redirect that continues that cross-site navigation.
func (c *Console) oidcFinish(w http.ResponseWriter, r *http.Request) {
	id, err := c.oidc.Finish(r.Context(), w, r)
	if err != nil {
		msg, ok := public.Message(err)
		status := http.StatusUnauthorized
		switch {
		case !ok:
			c.log.Error("console OIDC sign-in failed", "err", err)
			msg, status = "internal error; try again", http.StatusInternalServerError
		case public.KindOf(err) == public.Forbidden:
			status = http.StatusForbidden
		}
		c.log.Info("console OIDC sign-in refused", "reason", msg)
		c.render(w, r, status, "login", nil, "Sign in", c.loginData("", msg))
		return
	}
	subject := id.Subject
	if id.Email != "" {
		subject = fmt.Sprintf("%s (sub %s)", id.Email, id.Subject)
	}
	if _, err := c.StartSession(r.Context(), w, store.Session{TenantID: id.TenantID, Kind: store.SessionOIDC, Subject: subject,
		Role: string(id.Role)}); err != nil {
		c.log.Error("console OIDC sign-in failed", "err", err)
		c.render(w, r, http.StatusInternalServerError, "login", nil, "Sign in", c.loginData("", "internal error; try again"))
		return
	}
	c.render(w, r, http.StatusOK, "signedin", nil, "Signed in", signedInData{Label: id.Label(), Tenant: id.TenantName, Role: string(id.Role)})
}

type signedInData struct {
	Label, Tenant, Role string
}

// Tenants resolves the tenant claim of an ID token through the store (sso.Tenants).
type Tenants struct{ Store *store.Store }

// TenantID is the ID of the tenant named name; found is false when there is none.
func (t Tenants) TenantID(ctx context.Context, name string) (string, bool, error) {
	ten, err := t.Store.TenantByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return ten.ID, true, nil
}

var _ sso.Tenants = Tenants{}
