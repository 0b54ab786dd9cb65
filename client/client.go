// Package client is Rampart's public Go client for the admin API (/api/v1). The rampart CLI,
// the fleet simulator and the tests use it; other programs may import it too. Its types are the
// wire types of the API.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/certpool"
	"github.com/rampartsec/rampart/internal/public"
)

// Error is an error answered by the server, with its HTTP status and the envelope's code.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Client talks to one Rampart server with one token.
type Client struct {
	base  string
	token string
	http  *http.Client
	// stall bounds an upload that makes no progress (UploadStall when zero).
	stall time.Duration
}

// Option configures a Client.
type Option func(*Client) error

// WithToken sets the bearer token sent with every request.
func WithToken(token string) Option {
	return func(c *Client) error { c.token = strings.TrimSpace(token); return nil }
}

// WithHTTPClient replaces the HTTP client, for example to share a transport.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) error { c.http = h; return nil }
}

// WithRootCAs trusts the given pool for the server's certificate.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(c *Client) error {
		c.http = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 16,
		}}
		return nil
	}
}

// WithCAFile trusts the PEM certificates in file (for example the server's service-ca.pem).
func WithCAFile(file string) Option {
	return func(c *Client) error {
		pool, err := certpool.FromFile(file)
		if errors.Is(err, certpool.ErrNoCertificate) {
			return public.Errorf(public.Invalid, "the CA file %s holds no PEM certificate; pass the CA that signed the server's certificate (the server's DATA/service-ca.pem)", file)
		}
		if err != nil {
			return public.Errorf(public.Invalid, "cannot read the CA file: %w", err)
		}
		return WithRootCAs(pool)(c)
	}
}

// New returns a client for the server at base, such as https://127.0.0.1:8443.
func New(base string, opts ...Option) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("client.New: %w", public.Errorf(public.Invalid, "server %q is not a URL; write it as https://HOST:PORT", base))
	}
	c := &Client{base: strings.TrimSuffix(base, "/"), http: &http.Client{Timeout: 60 * time.Second}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("client.New: %w", err)
		}
	}
	return c, nil
}

// Do sends one request with in as its JSON body (nil for none) and decodes the answer into out
// (nil to discard it). Other packages' clients build on it.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &eb) != nil || eb.Error.Message == "" {
			msg := fmt.Sprintf("server answered %s", resp.Status)
			if resp.StatusCode == http.StatusBadRequest && req.URL.Scheme == "http" {
				// An HTTPS server answers a plain-HTTP request with a bare 400.
				msg += fmt.Sprintf(" to plain HTTP; Rampart speaks HTTPS: use https://%s", req.URL.Host)
			}
			return &Error{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: msg}
		}
		return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// IsStatus reports whether err is a server answer with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

func listQuery(o ListOptions, extra url.Values) string {
	q := url.Values{}
	for k, v := range extra {
		if len(v) > 0 && v[0] != "" {
			q[k] = v
		}
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.After != "" {
		q.Set("after", o.After)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// All walks every page of a listing, calling page for each cursor in turn.
func All[T any](ctx context.Context, page func(ctx context.Context, o ListOptions) (List[T], error)) ([]T, error) {
	var out []T
	o := ListOptions{Limit: 500}
	for {
		l, err := page(ctx, o)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Items...)
		if l.Next == "" {
			return out, nil
		}
		o.After = l.Next
	}
}

func esc(s string) string { return url.PathEscape(s) }
