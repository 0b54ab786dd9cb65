package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/token"
)

// Caller is who an in-process request acts as: the web console's signed-in operator or
// researcher. The console authenticates the session (and that the token behind it still
// stands) and then serves each page through the same route table, authorisation and handlers
// as the HTTP API, so a page can never apply a rule the API does not.
type Caller struct {
	TenantID, TenantName string
	Role                 token.Role
	Service              bool
	// TokenID is the API token the session was opened with; empty for other sign-ins (OIDC).
	TokenID string
	// Actor is who the audit chain names; "token:<TokenID>" when empty.
	Actor store.Actor
	// Researcher is set, and the fields above are empty, for a researcher's session; such a
	// caller may use only the researcher API (/research/v1).
	Researcher *store.Researcher
}

type callerKey struct{}

func (c *Caller) principal() *principal {
	if c.Researcher != nil {
		r := *c.Researcher
		return &principal{tenantID: r.TenantID, researcher: &r}
	}
	return &principal{tokenID: c.TokenID, tenantID: c.TenantID, tenantName: c.TenantName, role: c.Role, service: c.Service, actorName: c.Actor}
}

// callerFrom is the in-process caller of r, if Serve set one.
func callerFrom(r *http.Request) (*Caller, bool) {
	c, ok := r.Context().Value(callerKey{}).(*Caller)
	return c, ok
}

// Serve serves r as c through the API's routes (admin and researcher): the route's access rule
// is checked against c's role exactly as against a bearer token's, and the handler runs as for
// an HTTP client. Any Authorization header on r is ignored.
func (a *API) Serve(w http.ResponseWriter, r *http.Request, c Caller) {
	a.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, &c)))
}

// Do calls one API route in process as c: method and target ("/api/v1/devices?product=x") name
// the route, in (when not nil) is sent as its JSON body, and a successful answer is decoded
// into out (when not nil). A refusal comes back as an *Error whose Status and Message are what
// an HTTP client would have seen.
func (a *API) Do(ctx context.Context, c Caller, method, target string, in, out any) error {
	return a.DoFrom(ctx, c, "", method, target, in, out)
}

// RawBody is a request body Do sends as it is, with its content type, instead of JSON (an
// attachment, application/octet-stream).
type RawBody struct {
	ContentType string
	Data        []byte
}

// DoFrom is Do for a request that arrived from remoteAddr (HOST:PORT), so that the routes that
// limit each client address (the public researcher application) count the browser's address.
func (a *API) DoFrom(ctx context.Context, c Caller, remoteAddr, method, target string, in, out any) error {
	var body io.Reader = http.NoBody
	ctype := ""
	switch v := in.(type) {
	case nil:
	case RawBody:
		body, ctype = bytes.NewReader(v.Data), v.ContentType
	default:
		b, err := json.Marshal(in)
		if err != nil {
			return internal(fmt.Errorf("api.Do: %w", err))
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	r, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return internal(fmt.Errorf("api.Do: %w", err))
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	if remoteAddr != "" {
		r.RemoteAddr = remoteAddr
	}
	rec := &recorder{header: http.Header{}}
	a.Serve(rec, r, c)
	if rec.status >= 300 {
		var eb client.ErrorBody
		if err := json.Unmarshal(rec.body.Bytes(), &eb); err != nil || eb.Error.Message == "" {
			return internal(fmt.Errorf("api.Do: %s %s answered %d without the error envelope", method, target, rec.status))
		}
		return replayed(rec.status, eb.Error.Code, eb.Error.Message)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = rec.body.Bytes()
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return internal(fmt.Errorf("api.Do: decode %s %s: %w", method, target, err))
	}
	return nil
}

// AsError returns err's status and client-safe message: an *Error from Do as it is, anything
// else as a 500 with "internal error".
func AsError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return asError(err)
}

// recorder collects an in-process answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
