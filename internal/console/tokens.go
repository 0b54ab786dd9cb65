package console

import (
	"net/http"
	"net/url"

	"github.com/rampartsec/rampart/client"
)

type tokensData struct {
	Tokens  client.List[client.Token]
	Query   url.Values
	Created *client.Token // the token just made, whose secret is shown once
	Revoked *client.Token
}

// tokens lists the tenant's API tokens (GET /api/v1/tokens).
func (c *Console) tokens(w http.ResponseWriter, r *http.Request, s *Session) error {
	return c.renderTokens(w, r, s, tokensData{})
}

func (c *Console) renderTokens(w http.ResponseWriter, r *http.Request, s *Session, d tokensData) error {
	q := pageQuery(r)
	if err := c.get(r.Context(), s, &d.Tokens, q, "tokens"); err != nil {
		return err
	}
	d.Query = r.URL.Query()
	status := http.StatusOK
	if d.Created != nil {
		status = http.StatusCreated
	}
	c.render(w, r, status, "tokens", s, "API tokens", d)
	return nil
}

// createToken makes a token (POST /api/v1/tokens) and shows its secret once.
func (c *Console) createToken(w http.ResponseWriter, r *http.Request, s *Session) error {
	var tok client.Token
	req := client.CreateTokenRequest{Role: r.PostForm.Get("role"), Description: r.PostForm.Get("description")}
	if err := c.call(r.Context(), s, http.MethodPost, "/api/v1/tokens", req, &tok); err != nil {
		return err
	}
	return c.renderTokens(w, r, s, tokensData{Created: &tok})
}

// revokeToken revokes one (DELETE /api/v1/tokens/{id}).
func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, s *Session) error {
	var tok client.Token
	if err := c.call(r.Context(), s, http.MethodDelete, apiPath(nil, "tokens", r.PathValue("id")), nil, &tok); err != nil {
		return err
	}
	return c.renderTokens(w, r, s, tokensData{Revoked: &tok})
}

// pageQuery carries a page's limit and cursor on to the API.
func pageQuery(r *http.Request) url.Values {
	q := url.Values{}
	for _, k := range []string{"limit", "after"} {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	return q
}
