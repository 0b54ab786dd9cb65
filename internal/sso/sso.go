// Package sso signs operators in to the web console with OpenID Connect: the authorization code
// flow with PKCE (RFC 7636) against the operator's identity provider, the ID token checked by
// go-oidc (signature, issuer, expiry) and here (audience, authorized party, nonce), and the two
// claims that map the user to a tenant and a role. It makes no session: the console turns the
// Identity it returns into one, exactly as it does for an API token. A pending sign-in (its PKCE
// verifier and nonce) waits in a LoginStore, the database, so that any replica can finish a
// sign-in that another began. The console, the server and its CLI verb (for the --oidc-* flags)
// import it.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/token"
)

// Default claim names: an identity provider adds these two claims to the ID tokens it issues
// for Rampart's client (Keycloak: a hard-coded or user-attribute mapper; Okta, Entra ID: a
// custom claim).
const (
	DefaultTenantClaim = "rampart_tenant"
	DefaultRoleClaim   = "rampart_role"
)

// PendingTTL is how long a sign-in may take between the redirect to the identity provider and
// its answer.
const PendingTTL = 10 * time.Minute

// StateCookie holds the state of the browser's pending sign-in, binding the provider's answer
// to the browser that asked (a forged answer from another site carries a state this browser
// never saw). SameSite=Lax, not Strict: the answer arrives as a top-level navigation from the
// provider's site, which a Strict cookie would not be sent with.
const StateCookie = "rampart_oidc_state"

// Config is the identity provider and the claims, as the server's --oidc-* flags set them.
type Config struct {
	// Issuer is the provider's issuer URL; its discovery document is read from
	// Issuer/.well-known/openid-configuration.
	Issuer string
	// ClientID and ClientSecret are Rampart's client at the provider; the secret is empty for a
	// public client, which PKCE alone protects.
	ClientID, ClientSecret string
	// RedirectURL is where the provider sends the browser back: the console's
	// /login/oidc/callback on the address browsers use.
	RedirectURL string
	// Scopes are asked for besides openid; "email profile" when nil.
	Scopes []string
	// TenantClaim and RoleClaim name the ID token's claims that hold the user's tenant (its
	// name) and role (admin, operator or reader); DefaultTenantClaim and DefaultRoleClaim when
	// empty.
	TenantClaim, RoleClaim string
}

// LoginStore keeps pending sign-ins (internal/store's PutOIDCLogin and TakeOIDCLogin).
type LoginStore interface {
	PutOIDCLogin(ctx context.Context, stateHash, verifier, nonce string, expires time.Time) error
	// TakeOIDCLogin returns and deletes a pending sign-in; found is false when there is none or
	// it expired before now.
	TakeOIDCLogin(ctx context.Context, stateHash string, now time.Time) (verifier, nonce string, found bool, err error)
}

// Tenants resolves the tenant claim: the ID of the tenant of that name, found false when there
// is none.
type Tenants interface {
	TenantID(ctx context.Context, name string) (id string, found bool, err error)
}

// Deps are what a Provider needs besides its Config.
type Deps struct {
	Logins  LoginStore
	Tenants Tenants
	// HTTPClient talks to the provider (discovery, keys, token endpoint); http.DefaultClient
	// when nil.
	HTTPClient *http.Client
	// Now is the clock the ID token's expiry is checked against; time.Now when nil.
	Now func() time.Time
	// Secure marks the state cookie Secure; the server always serves TLS, tests of plain HTTP
	// handlers may clear it.
	Secure bool
}

// Identity is a signed-in user, mapped to a tenant and a role.
type Identity struct {
	Issuer, Subject string
	// Email and Name are the provider's claims, for the session's label and the audit record;
	// either may be empty.
	Email, Name string
	TenantID    string
	TenantName  string
	Role        token.Role
}

// Label names the user in the console and in audit records: "oidc:" and the e-mail address,
// or the subject when the provider sent no address.
func (id Identity) Label() string {
	if id.Email != "" {
		return "oidc:" + id.Email
	}
	return "oidc:" + id.Subject
}

// Provider is one configured identity provider.
type Provider struct {
	cfg      Config
	deps     Deps
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// New reads the provider's discovery document and keys endpoint and returns the Provider; it
// fails when the issuer does not answer or names another issuer.
func New(ctx context.Context, cfg Config, deps Deps) (*Provider, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("sso.New: %w", err)
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = http.DefaultClient
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = DefaultTenantClaim
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = DefaultRoleClaim
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"email", "profile"}
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, deps.HTTPClient), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("sso.New: %w", public.Wrap(err, public.Unavailable,
			"the OIDC issuer %s did not answer with its discovery document (/.well-known/openid-configuration) naming itself", cfg.Issuer))
	}
	p := &Provider{cfg: cfg, deps: deps}
	p.oauth = oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
		Endpoint: op.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, cfg.Scopes...)}
	// The audience is checked below, so that a token for another client is refused with its
	// own sentence; every other check is go-oidc's.
	p.verifier = op.VerifierContext(oidc.ClientContext(context.WithoutCancel(ctx), deps.HTTPClient),
		&oidc.Config{ClientID: cfg.ClientID, SkipClientIDCheck: true, Now: deps.Now})
	return p, nil
}

var claimRE = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,100}$`)

func (c Config) check() error {
	var bad []string
	u, err := url.Parse(c.Issuer)
	if c.Issuer == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad = append(bad, fmt.Sprintf("--oidc-issuer %q must be the provider's http(s) issuer URL", c.Issuer))
	}
	if c.ClientID == "" {
		bad = append(bad, "--oidc-client-id is required with --oidc-issuer")
	}
	r, err := url.Parse(c.RedirectURL)
	if c.RedirectURL == "" || err != nil || (r.Scheme != "https" && r.Scheme != "http") || r.Host == "" {
		bad = append(bad, fmt.Sprintf("--oidc-redirect-url %q must be the console's https://HOST/login/oidc/callback as browsers reach it", c.RedirectURL))
	}
	for _, cl := range []struct{ flag, v string }{{"--oidc-tenant-claim", c.TenantClaim}, {"--oidc-role-claim", c.RoleClaim}} {
		if cl.v != "" && !claimRE.MatchString(cl.v) {
			bad = append(bad, fmt.Sprintf("%s %q must be a claim name (letters, digits, _ . : / -)", cl.flag, cl.v))
		}
	}
	if len(bad) > 0 {
		return public.Errorf(public.Invalid, "%s", strings.Join(bad, "; "))
	}
	return nil
}

// CallbackPath is the path of the RedirectURL, where the console serves Finish.
func (p *Provider) CallbackPath() string {
	u, _ := url.Parse(p.cfg.RedirectURL)
	return u.Path
}

// Begin starts a sign-in: it keeps a new state, PKCE verifier and nonce, sets the state cookie
// on w and returns the provider's authorization URL to redirect the browser to.
func (p *Provider) Begin(ctx context.Context, w http.ResponseWriter) (string, error) {
	state, nonce := random(), random()
	verifier := oauth2.GenerateVerifier()
	now := p.deps.Now()
	if err := p.deps.Logins.PutOIDCLogin(ctx, hash(state), verifier, nonce, now.Add(PendingTTL)); err != nil {
		return "", fmt.Errorf("sso.Begin: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: StateCookie, Value: state, Path: p.CallbackPath(), MaxAge: int(PendingTTL / time.Second),
		HttpOnly: true, Secure: p.deps.Secure, SameSite: http.SameSiteLaxMode})
	return p.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), nil
}

// Errors of Finish; each is wrapped in a public error whose sentence the console shows.
var (
	// ErrNoPendingSignIn: the answer's state matches no sign-in this browser began (or it
	// expired, or was used).
	ErrNoPendingSignIn = errors.New("no pending sign-in")
	// ErrProviderRefused: the provider answered with an error, or refused the code.
	ErrProviderRefused = errors.New("the identity provider refused the sign-in")
	// ErrBadToken: the ID token did not verify (signature, issuer, audience, nonce).
	ErrBadToken = errors.New("the ID token did not verify")
	// ErrExpired: the ID token had expired.
	ErrExpired = errors.New("the ID token expired")
	// ErrUnmapped: the user's claims name no tenant of this server or no role.
	ErrUnmapped = errors.New("the user is not mapped to a tenant and role")
)

var errCode = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Finish completes a sign-in from the provider's answer at the callback: it checks the state
// against the browser's cookie, exchanges the code with the PKCE verifier, verifies the ID token
// and maps its claims. It clears the state cookie whatever happens. Every refusal is a public
// error of kind Unauthorized (or Forbidden for an unmapped user) saying what to do.
func (p *Provider) Finish(ctx context.Context, w http.ResponseWriter, r *http.Request) (Identity, error) {
	http.SetCookie(w, &http.Cookie{Name: StateCookie, Value: "", Path: p.CallbackPath(), MaxAge: -1,
		HttpOnly: true, Secure: p.deps.Secure, SameSite: http.SameSiteLaxMode})
	id, err := p.finish(ctx, r)
	if err != nil {
		return Identity{}, fmt.Errorf("sso.Finish: %w", err)
	}
	return id, nil
}

func (p *Provider) finish(ctx context.Context, r *http.Request) (Identity, error) {
	q := r.URL.Query()
	state := q.Get("state")
	c, cerr := r.Cookie(StateCookie)
	if state == "" || cerr != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		return Identity{}, public.Errorf(public.Unauthorized, "%w: this answer of the identity provider belongs to no sign-in begun in this browser in the last %d minutes; sign in again",
			ErrNoPendingSignIn, int(PendingTTL/time.Minute))
	}
	verifier, nonce, found, err := p.deps.Logins.TakeOIDCLogin(ctx, hash(state), p.deps.Now())
	if err != nil {
		return Identity{}, err
	}
	if !found {
		return Identity{}, public.Errorf(public.Unauthorized, "%w: this sign-in was already used or took longer than %d minutes; sign in again",
			ErrNoPendingSignIn, int(PendingTTL/time.Minute))
	}
	if e := q.Get("error"); e != "" {
		if !errCode.MatchString(e) {
			e = "an unreadable error"
		}
		return Identity{}, public.Errorf(public.Unauthorized, "%w (%s); sign in again or ask the provider's administrator", ErrProviderRefused, e)
	}
	code := q.Get("code")
	if code == "" {
		return Identity{}, public.Errorf(public.Unauthorized, "%w: its answer carried no authorization code", ErrProviderRefused)
	}
	hctx := oidc.ClientContext(ctx, p.deps.HTTPClient)
	tok, err := p.oauth.Exchange(hctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, public.Wrap(fmt.Errorf("%w: %w", ErrProviderRefused, err), public.Unauthorized,
			"the identity provider did not accept the sign-in's code (check --oidc-client-id, the client secret and --oidc-redirect-url against the provider's client)")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, public.Errorf(public.Unauthorized, "%w: the identity provider sent no ID token (is openid among the client's scopes?)", ErrBadToken)
	}
	idt, err := p.verifier.Verify(hctx, raw)
	if err != nil {
		if te, ok := errors.AsType[*oidc.TokenExpiredError](err); ok {
			return Identity{}, public.Wrap(fmt.Errorf("%w: %w", ErrExpired, err), public.Unauthorized,
				"the identity provider's ID token expired at %s (this server's clock reads %s); check both clocks and sign in again",
				te.Expiry.UTC().Format(time.RFC3339), p.deps.Now().UTC().Format(time.RFC3339))
		}
		return Identity{}, public.Wrap(fmt.Errorf("%w: %w", ErrBadToken, err), public.Unauthorized,
			"the identity provider's ID token did not verify (signature or issuer); sign in again")
	}
	if !slices.Contains(idt.Audience, p.cfg.ClientID) {
		return Identity{}, public.Errorf(public.Unauthorized, "%w: the ID token was issued for %s, not for this server's client %s; it is refused",
			ErrBadToken, quoteList(idt.Audience), p.cfg.ClientID)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, public.Wrap(fmt.Errorf("%w: %w", ErrBadToken, err), public.Unauthorized, "the ID token's claims do not decode")
	}
	if len(idt.Audience) > 1 {
		if azp, _ := claims["azp"].(string); azp != p.cfg.ClientID {
			return Identity{}, public.Errorf(public.Unauthorized, "%w: the ID token names several audiences but not this server's client %s as its authorized party; it is refused",
				ErrBadToken, p.cfg.ClientID)
		}
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Identity{}, public.Errorf(public.Unauthorized, "%w: the ID token carries another sign-in's nonce; it is refused", ErrBadToken)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return Identity{}, public.Wrap(fmt.Errorf("%w: %w", ErrBadToken, err), public.Unauthorized, "the ID token's at_hash does not match its access token; it is refused")
		}
	}
	id := Identity{Issuer: idt.Issuer, Subject: idt.Subject}
	id.Email, _ = claims["email"].(string)
	id.Name, _ = claims["name"].(string)
	return p.mapClaims(ctx, id, claims)
}

// mapClaims reads the tenant and role claims and resolves the tenant.
func (p *Provider) mapClaims(ctx context.Context, id Identity, claims map[string]any) (Identity, error) {
	who := id.Email
	if who == "" {
		who = "subject " + id.Subject
	}
	unmapped := func(format string, args ...any) error {
		return public.Errorf(public.Forbidden, "%w: %s %s; ask your identity provider's administrator to map you to a Rampart tenant and role",
			ErrUnmapped, who, fmt.Sprintf(format, args...))
	}
	tenant, ok := claims[p.cfg.TenantClaim].(string)
	if !ok || tenant == "" {
		return Identity{}, unmapped("carries no %s claim (a tenant's name)", p.cfg.TenantClaim)
	}
	tid, found, err := p.deps.Tenants.TenantID(ctx, tenant)
	if err != nil {
		return Identity{}, err
	}
	if !found {
		return Identity{}, unmapped("names tenant %q in %s, which this server does not have,", tenant, p.cfg.TenantClaim)
	}
	role, ok := roleOf(claims[p.cfg.RoleClaim])
	if !ok {
		return Identity{}, unmapped("carries no %s claim naming admin, operator or reader", p.cfg.RoleClaim)
	}
	id.TenantID, id.TenantName, id.Role = tid, tenant, role
	return id, nil
}

// roleOf reads a role claim: one role name, or a list (such as groups) of which the most able
// role named counts; other entries are ignored.
func roleOf(v any) (token.Role, bool) {
	var names []string
	switch v := v.(type) {
	case string:
		names = []string{v}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				names = append(names, s)
			}
		}
	}
	var best token.Role
	for _, n := range names {
		r, err := token.ParseRole(n)
		if err == nil && (best == "" || r.Allows(best)) {
			best = r
		}
	}
	return best, best != ""
}

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "no audience"
	}
	return strings.Join(ss, ", ")
}

func random() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
