// Package ssotest runs a real OpenID Connect provider for tests: zitadel/oidc's op package (the
// provider library ZITADEL itself serves with) on a loopback listener, with an in-memory user
// table, one confidential web client that must use PKCE, a login form, and switches to make it
// misbehave as a misconfigured provider would (ID tokens for another audience, or already
// expired). Only tests import it.
package ssotest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is an account at the provider; Claims are added to its ID tokens (the tenant and role
// claims, for Rampart).
type User struct {
	Subject, Username, Password, Email, Name string
	Claims                                   map[string]any
}

// Provider is a running OpenID Connect provider.
type Provider struct {
	// Issuer is the provider's issuer URL (http://127.0.0.1:PORT).
	Issuer       string
	ClientID     string
	ClientSecret string

	srv   *httptest.Server
	store *storage
}

// Start runs a provider with one client (clientID, a random secret, redirectURL) and the users,
// and stops it when the test ends.
func Start(t testing.TB, clientID, redirectURL string, users ...User) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	secret := randomHex(16)
	st := &storage{
		key:      key,
		keyID:    randomHex(8),
		client:   &client{id: clientID, secret: secret, redirect: redirectURL, lifetime: 5 * time.Minute},
		users:    map[string]User{},
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
	}
	for _, u := range users {
		st.users[u.Username] = u
	}
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	var crypto [32]byte
	rand.Read(crypto[:])
	provider, err := op.NewProvider(&op.Config{CryptoKey: crypto, CodeMethodS256: true, AuthMethodPost: true},
		st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	callback := op.AuthCallbackURL(provider)
	mux.Handle("/login", op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.login(w, r, callback)
	}))
	mux.Handle("/", provider)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return &Provider{Issuer: issuer, ClientID: clientID, ClientSecret: secret, srv: srv, store: st}
}

// SetAudience makes the provider name these audiences in its next ID tokens, besides the
// client's ID (which the op package always adds, with the client as authorized party); nil
// restores the client's alone.
func (p *Provider) SetAudience(aud []string) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.audience = aud
}

// SetAlias makes the provider accept its client under a second ID too, as providers that know
// a client by a name and by an ID do, while the tokens it issues name the client's own ID: a
// relying party configured with the alias is handed ID tokens for another audience.
func (p *Provider) SetAlias(alias string) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.alias = alias
}

// SetIDTokenLifetime sets how long the next ID tokens are valid; a negative lifetime makes
// them expired when issued (a provider whose clock is wrong).
func (p *Provider) SetIDTokenLifetime(d time.Duration) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.client.lifetime = d
}

// Logins counts the successful password checks at the login form.
func (p *Provider) Logins() int {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	return p.store.logins
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title></head>
<body><main><h1>Sign in to the test identity provider</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label for="username">Username</label> <input id="username" name="username" autocomplete="username">
<label for="password">Password</label> <input id="password" name="password" type="password">
<button type="submit">Sign in</button>
</form></main></body></html>`))

// login is the provider's own sign-in form: it checks the user's password, marks the
// authorization request done and sends the browser back to the provider's callback.
func (s *storage) login(w http.ResponseWriter, r *http.Request, callback func(context.Context, string) string) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.Form.Get("id")
	if r.Method == http.MethodGet {
		loginPage.Execute(w, map[string]string{"ID": id})
		return
	}
	s.mu.Lock()
	u, ok := s.users[r.Form.Get("username")]
	req := s.requests[id]
	if ok && req != nil && u.Password == r.Form.Get("password") {
		req.subject, req.done, req.authTime = u.Subject, true, time.Now()
		s.logins++
	}
	done := req != nil && req.done
	s.mu.Unlock()
	if !done {
		w.WriteHeader(http.StatusUnauthorized)
		loginPage.Execute(w, map[string]string{"ID": id, "Error": "wrong username or password"})
		return
	}
	http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
}

// storage is op.Storage in memory, for one client.
type storage struct {
	mu       sync.Mutex
	key      *rsa.PrivateKey
	keyID    string
	client   *client
	users    map[string]User
	requests map[string]*authRequest
	codes    map[string]string
	audience []string
	alias    string
	logins   int
}

// knows reports whether id names the client, by its ID or its alias.
func (s *storage) knows(id string) bool { return id == s.client.id || s.alias != "" && id == s.alias }

var _ op.Storage = (*storage)(nil)

type authRequest struct {
	id, clientID, redirectURI, state, nonce, subject string
	scopes                                           []string
	audience                                         []string
	challenge                                        *oidc.CodeChallenge
	responseType                                     oidc.ResponseType
	done                                             bool
	authTime                                         time.Time
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return a.audience }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return "" }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

var errUnknown = errors.New("unknown")

func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("this client must use PKCE")
	}
	if !s.knows(r.ClientID) {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown client")
	}
	aud := slices.Clone(s.audience)
	a := &authRequest{id: randomHex(16), clientID: s.client.id, redirectURI: r.RedirectURI, state: r.State, nonce: r.Nonce,
		scopes: r.Scopes, audience: aud, responseType: r.ResponseType,
		challenge: &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}}
	s.requests[a.id] = a
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[id]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("auth request %s: %w", id, errUnknown)
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("code: %w", errUnknown)
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return randomHex(16), time.Now().Add(5 * time.Minute), nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not offered")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

type signingKey struct{ s *storage }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.s.key }
func (k signingKey) ID() string                                  { return k.s.keyID }

type publicKey struct{ s *storage }

func (k publicKey) ID() string                         { return k.s.keyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.s.key.PublicKey }

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return signingKey{s}, nil }
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}
func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{publicKey{s}}, nil }

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.knows(id) {
		return nil, fmt.Errorf("client %s: %w", id, errUnknown)
	}
	c := *s.client
	return &c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.knows(id) || secret != s.client.secret {
		return errors.New("wrong client credentials")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts the user's e-mail, name and extra claims in the ID token.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, r op.IDTokenRequest, _ []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Subject != r.GetSubject() {
			continue
		}
		info.Subject, info.Email, info.Name = u.Subject, u.Email, u.Name
		for k, v := range u.Claims {
			info.AppendClaims(k, v)
		}
		return nil
	}
	return fmt.Errorf("user %s: %w", r.GetSubject(), errUnknown)
}

func (s *storage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return nil
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("no JWT profile keys")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("no JWT profile")
}

func (s *storage) Health(context.Context) error { return nil }

// client is the one registered client: confidential (secret in the form post or basic auth),
// the authorization code flow only, the ID token carrying the user's claims.
type client struct {
	id, secret, redirect string
	lifetime             time.Duration
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return []string{c.redirect} }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *client) LoginURL(id string) string            { return "/login?id=" + id }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return c.lifetime }
func (c *client) DevMode() bool                        { return true }
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
