// Package devclient is the agent's one client of the device API (/device/v1): Do sends a
// request, bounds it with a deadline and a minimum transfer rate, checks the status, reads the
// error envelope, and decodes the answer within a size limit. Every device-API
// call the agent makes (enrolment, challenge, attestation, the director probe, pinned roots,
// install-status reports, crash uploads, the long-poll) goes through it, so that a server, or
// someone on the path, that answers slowly or not at all cannot hold the agent (TUF's
// slow-retrieval attack, refused on every path).
//
// It is imported by the agent only and links no database, web or server code.
package devclient

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/watchdog"
)

// Defaults of Limits.
const (
	DefaultDeadline   = 30 * time.Second
	DefaultMinRate    = 1 << 10 // bytes per second
	DefaultRateWindow = 10 * time.Second
	DefaultMaxAnswer  = 1 << 20
	// LongPollGrace is how much longer than its own timeout a long-poll may take.
	LongPollGrace = 10 * time.Second
)

// Errors.
var (
	// ErrSlow means the server moved fewer than MinRate bytes per second over a RateWindow.
	ErrSlow = errors.New("device API: answer too slow")
	// ErrDeadline means a call did not finish within its deadline.
	ErrDeadline = errors.New("device API: no answer within the deadline")
	// ErrTooLarge means an answer exceeded MaxAnswer bytes.
	ErrTooLarge = errors.New("device API: answer too large")
)

// StatusError is a non-2xx answer, with the error envelope's code and message when it had one.
type StatusError struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Code != "" || e.Message != "" {
		s += ": " + e.Code + ": " + e.Message
	}
	return s
}

// IsStatus reports whether err is a StatusError with one of the given statuses.
func IsStatus(err error, statuses ...int) bool {
	e, ok := errors.AsType[*StatusError](err)
	if !ok {
		return false
	}
	for _, s := range statuses {
		if e.Status == s {
			return true
		}
	}
	return false
}

// Limits bound every call.
type Limits struct {
	// Deadline bounds one call from the first byte sent to the last byte of the answer (the
	// long-poll gets its own timeout plus LongPollGrace). DefaultDeadline when zero.
	Deadline time.Duration
	// MinRate and RateWindow: once the answer's headers have arrived, a call that reads fewer
	// than MinRate bytes per second of body over any RateWindow is abandoned with ErrSlow.
	MinRate    int64
	RateWindow time.Duration
	// MaxAnswer caps an answer's body, in bytes. DefaultMaxAnswer when zero.
	MaxAnswer int64
}

// WithDefaults fills the zero fields.
func (l Limits) WithDefaults() Limits {
	if l.Deadline <= 0 {
		l.Deadline = DefaultDeadline
	}
	if l.MinRate <= 0 {
		l.MinRate = DefaultMinRate
	}
	if l.RateWindow <= 0 {
		l.RateWindow = DefaultRateWindow
	}
	if l.MaxAnswer <= 0 {
		l.MaxAnswer = DefaultMaxAnswer
	}
	return l
}

// Client calls one server's device API.
type Client struct {
	server string
	http   *http.Client
	limits Limits
}

// New returns a client of the device API at server (https://host:port) over hc.
func New(server string, hc *http.Client, limits Limits) *Client {
	return &Client{server: strings.TrimSuffix(server, "/"), http: hc, limits: limits.WithDefaults()}
}

// BodyMarshaler is a request body that encodes itself rather than as JSON (the framed
// evidence, deviceapi.EvidenceBody).
type BodyMarshaler interface {
	MarshalBody() (contentType string, body []byte, err error)
}

// Do sends in as JSON (no body when nil; a BodyMarshaler encodes itself) to method path within the default deadline and
// decodes the answer into out: the JSON value for a pointer (fields it does not know are
// ignored, so that a newer server may add some; data after the value is refused), the raw bytes
// for a *[]byte, nothing for nil. A non-2xx answer is a *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return c.DoWithin(ctx, c.limits.Deadline, method, path, in, out)
}

// DoWithin is Do with its own deadline, for the long-poll.
func (c *Client) DoWithin(ctx context.Context, deadline time.Duration, method, path string, in, out any) error {
	err := c.do(ctx, deadline, method, path, in, out)
	if errors.Is(err, ErrDeadline) || errors.Is(err, ErrSlow) {
		// The connection may be dead or held (a multiplexed HTTP/2 connection outlives the
		// cancelled call): the next call dials afresh.
		c.http.CloseIdleConnections()
	}
	return err
}

func (c *Client) do(ctx context.Context, deadline time.Duration, method, path string, in, out any) error {
	ctx, cancelDeadline := context.WithTimeoutCause(ctx, deadline, fmt.Errorf("%w (%s)", ErrDeadline, deadline))
	defer cancelDeadline()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var body io.Reader
	contentType := "application/json"
	if m, ok := in.(BodyMarshaler); ok {
		ct, b, err := m.MarshalBody()
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		contentType, body = ct, bytes.NewReader(b)
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, unreachable(c.server, deadline, watchdog.Cause(ctx, err)))
	}
	defer resp.Body.Close()
	var n atomic.Int64
	stop := watchdog.Watch(ctx, cancel, &n, watchdog.PerSecond(c.limits.MinRate, c.limits.RateWindow), func(moved int64) error {
		return fmt.Errorf("%w: %d bytes in %s, at least %d B/s wanted", ErrSlow, moved, c.limits.RateWindow, c.limits.MinRate)
	})
	b, err := io.ReadAll(io.LimitReader(watchdog.Reader(resp.Body, &n), c.limits.MaxAnswer+1))
	stop()
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, unreachable(c.server, deadline, watchdog.Cause(ctx, err)))
	}
	if int64(len(b)) > c.limits.MaxAnswer {
		return fmt.Errorf("%s %s: %w: over %d bytes", method, path, ErrTooLarge, c.limits.MaxAnswer)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &StatusError{Method: method, Path: path, Status: resp.StatusCode}
		var eb deviceapi.ErrorBody
		if json.Unmarshal(b, &eb) == nil {
			se.Code, se.Message = eb.Error.Code, eb.Error.Message
		}
		return se
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = b
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// unreachable gives a call that got no answer the sentence the agent prints on its last line:
// what to check, as the CLI says it (internal/cli/clienv), and not Go's "Post URL: ..." chain.
func unreachable(server string, deadline time.Duration, err error) error {
	switch {
	case errors.Is(err, ErrDeadline):
		return public.Wrap(err, public.Unavailable, "%s did not answer within %s; check --server and the network", server, deadline)
	case errors.Is(err, ErrSlow):
		return public.Wrap(err, public.Unavailable, "%s answered too slowly; check the network", server)
	}
	u, ok := errors.AsType[*url.Error](err)
	if !ok {
		return err
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return public.Wrap(err, public.Unavailable, "cannot verify the certificate of %s: pass --ca-file with the CA that signed it (the server's DATA/service-ca.pem)", server)
	case errors.As(err, &hostname):
		var names []string
		if c := hostname.Certificate; c != nil {
			names = append(names, c.DNSNames...)
			for _, ip := range c.IPAddresses {
				names = append(names, ip.String())
			}
		}
		return public.Wrap(err, public.Unavailable, "the certificate of %s is not for %s; use a name it holds in --server: %s", server, hostname.Host, strings.Join(names, ", "))
	case errors.Is(err, syscall.ECONNREFUSED):
		return public.Wrap(err, public.Unavailable, "nothing answers at %s: is rampart server running there, and is --server right?", server)
	}
	return public.Wrap(err, public.Unavailable, "cannot reach %s: %v", server, u.Err)
}
