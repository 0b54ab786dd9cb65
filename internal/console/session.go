package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/api"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/token"
)

// CookieName is the session cookie. The __Host- prefix makes browsers insist that it is
// Secure, has Path=/ and no Domain, so no other host or path can set or read it.
const CookieName = "__Host-rampart_session"

// Session is a live, signed-in console session.
type Session struct {
	store.Session
	Role token.Role
}

// Caller is who the session acts as on the API.
func (s *Session) Caller() api.Caller {
	return api.Caller{TenantID: s.TenantID, TenantName: s.TenantName, Role: s.Role, Service: s.Service, TokenID: s.TokenID, Actor: s.Actor()}
}

// Can reports whether the session's role allows what needs role, for showing or hiding a
// page's buttons (the API decides).
func (s *Session) Can(role string) bool { return s.Role.Allows(token.Role(role)) }

// errSignedOut and its kin say why a request has no session.
var (
	errNoSession      = errors.New("console: no session")
	errSessionEnded   = errors.New("console: session ended")
	errSessionExpired = errors.New("console: session expired")
	errSessionRevoked = errors.New("console: token revoked")
	errNotOperator    = errors.New("console: a researcher's session")
)

// liveSession finds the request's session that is neither signed out, revoked nor expired,
// whoever it belongs to: operators' and researchers' pages then check its kind.
func (c *Console) liveSession(r *http.Request) (store.Session, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" || len(ck.Value) > 100 {
		return store.Session{}, errNoSession
	}
	ss, err := c.store.SessionByHash(r.Context(), hashSecret(ck.Value))
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, errSessionEnded
	}
	if err != nil {
		return store.Session{}, err
	}
	switch {
	case ss.CredentialRevokedAt != nil:
		return store.Session{}, errSessionRevoked
	case ss.RevokedAt != nil:
		return store.Session{}, errSessionEnded
	case !c.now().Before(ss.ExpiresAt):
		return store.Session{}, errSessionExpired
	}
	return ss, nil
}

// session finds the request's live operator session.
func (c *Console) session(r *http.Request) (*Session, error) {
	ss, err := c.liveSession(r)
	if err != nil {
		return nil, err
	}
	if ss.Kind == store.SessionResearcher {
		return nil, errNotOperator
	}
	return &Session{Session: ss, Role: token.Role(ss.Role)}, nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// StartSession opens a session for a sign-in that has been checked, and sets its cookie: the
// /login form does it for an API token; another sign-in method (OIDC) fills in s with the
// tenant, kind SessionOIDC, the subject and the role it maps to, and calls it the same way.
// s.ExpiresAt defaults to now plus the console's session lifetime.
func (c *Console) StartSession(ctx context.Context, w http.ResponseWriter, s store.Session) (store.Session, error) {
	var b [32]byte
	rand.Read(b[:])
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	if s.ExpiresAt.IsZero() {
		s.ExpiresAt = c.now().Add(c.ttl)
	}
	s, err := c.store.CreateSession(ctx, s, hashSecret(secret))
	if err != nil {
		return store.Session{}, err
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: secret, Path: "/", Expires: s.ExpiresAt, MaxAge: int(time.Until(s.ExpiresAt).Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return s, nil
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

type loginData struct {
	Next    string
	Message string
	// OIDC offers the identity provider's sign-in beside the token's.
	OIDC bool
}

func (c *Console) loginData(next, msg string) loginData {
	return loginData{Next: next, Message: msg, OIDC: c.oidc != nil}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", nil, "Sign in", c.loginData(safeNext(r.URL.Query().Get("next")), ""))
}

// login opens a session for a valid API token given in the form field token.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		e := formError(err)
		c.render(w, r, e.Status, "login", nil, "Sign in", c.loginData("", e.Message))
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	refuse := func(msg string) {
		c.render(w, r, http.StatusUnauthorized, "login", nil, "Sign in", c.loginData(next, msg))
	}
	secret := strings.TrimSpace(r.PostForm.Get("token"))
	switch {
	case secret == "":
		refuse("enter an API token")
		return
	case !token.WellFormed(secret):
		refuse("that is not an API token (they start with rpt_)")
		return
	}
	tok, err := c.store.TokenByHash(r.Context(), token.Hash(secret))
	switch {
	case errors.Is(err, store.ErrNotFound):
		refuse("that API token is not valid")
		return
	case err != nil:
		c.log.Error("console sign-in failed", "err", err)
		c.render(w, r, http.StatusInternalServerError, "login", nil, "Sign in", c.loginData(next, "internal error; try again"))
		return
	case tok.RevokedAt != nil:
		refuse("that API token was revoked")
		return
	}
	if _, err := c.StartSession(r.Context(), w, store.Session{TenantID: tok.TenantID, Kind: store.SessionToken, TokenID: tok.ID,
		Role: tok.Role, Service: tok.Service}); err != nil {
		c.log.Error("console sign-in failed", "err", err)
		c.render(w, r, http.StatusInternalServerError, "login", nil, "Sign in", c.loginData(next, "internal error; try again"))
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session (signing out twice is harmless) and forgets its cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(CookieName); err == nil && len(ck.Value) <= 100 {
		ss, err := c.store.SessionByHash(r.Context(), hashSecret(ck.Value))
		if err == nil {
			if err := c.store.RevokeSession(r.Context(), ss); err != nil {
				c.log.Error("console sign-out failed", "err", err)
				c.renderError(w, r, nil, err)
				return
			}
		}
	}
	clearCookie(w)
	c.render(w, r, http.StatusOK, "login", nil, "Signed out", c.loginData("", "You are signed out."))
}

// signInAgain answers a request without a live session: a page read goes to the sign-in form
// and comes back; anything else is refused with the reason, and nothing is changed.
func (c *Console) signInAgain(w http.ResponseWriter, r *http.Request, err error) {
	msg := "sign in to continue"
	switch {
	case errors.Is(err, errNoSession):
		if r.Method == http.MethodGet {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
	case errors.Is(err, errSessionExpired):
		msg = "your session expired; sign in again (nothing was changed)"
	case errors.Is(err, errSessionRevoked):
		msg = "the API token you signed in with was revoked, which ended your session; sign in again (nothing was changed)"
	case errors.Is(err, errSessionEnded):
		msg = "your session has ended; sign in again (nothing was changed)"
	case errors.Is(err, errNotOperator):
		msg = "you are signed in as a researcher; the operator console needs an operator's sign-in"
	default:
		c.log.Error("console session lookup failed", "err", err)
		c.renderError(w, r, nil, err)
		return
	}
	if !errors.Is(err, errNotOperator) {
		clearCookie(w)
	}
	next := ""
	if r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	c.render(w, r, http.StatusUnauthorized, "login", nil, "Sign in", c.loginData(safeNext(next), msg))
}

// safeNext keeps a return address on this site: a path, never another host.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}
