package api

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
)

// The device API (/device/v1) authenticates devices by the client certificate of the mTLS
// connection, issued by their tenant's CA after attestation. Routes declare which certificates
// they accept: update endpoints accept update-only certificates too, every other endpoint
// refuses them. Requests are rate-limited per client address before authentication and per
// device after it.

// deviceAccess is who may call a device route.
type deviceAccess int

const (
	// deviceOpen needs no certificate (enrolment, attestation challenges); rate-limited by address.
	deviceOpen deviceAccess = iota + 1
	// deviceUpdate accepts normal and update-only certificates: the update endpoints.
	deviceUpdate
	// deviceCheckIn is deviceUpdate for the check-in itself (the director files): the handler's
	// own query confirms the device is registered, reading it with the director metadata, so
	// that a check-in costs one query instead of two. Its handler must refuse an unregistered
	// device; TestDeviceUnregistered holds it to that.
	deviceCheckIn
	// deviceNormal accepts only normal certificates.
	deviceNormal
	// deviceOptional authenticates a certificate when one is presented (normal or update-only)
	// and otherwise passes no device: attestation, where the quote proves the identity.
	deviceOptional
)

// device is the authenticated device calling a device route.
type device struct {
	tenantID   string
	tenantName string
	id         string
	profile    ca.Profile
	cert       *x509.Certificate
	// record is the registry's entry; empty on deviceCheckIn routes, whose handler reads what
	// it needs itself.
	record store.Device
	// demoted is set when the certificate was issued normal but a revocation since demoted it:
	// profile is then update-only, and the device is told to attest again (deviceWait).
	demoted bool
}

// unregistered is the answer to a valid certificate of a device the registry no longer holds.
func (d *device) unregistered() error {
	return unauthorized("device %s is not registered with tenant %s", d.id, d.tenantName)
}

type deviceHandlerFunc func(w http.ResponseWriter, r *http.Request, d *device) error

// registerDevice declares every device route and what it accepts.
func (a *API) registerDevice() {
	a.deviceHandle("GET "+deviceapi.PathWhoAmI, deviceUpdate, a.deviceWhoAmI)
	a.deviceHandle("POST "+deviceapi.PathEnroll, deviceOpen, a.deviceEnroll)
	a.deviceHandle("POST "+deviceapi.PathChallenge, deviceUpdate, a.deviceChallenge)
	a.deviceHandle("POST "+deviceapi.PathAttest, deviceOptional, a.deviceAttest)
	a.deviceHandle("GET "+deviceapi.PathDirector+"/{file}", deviceCheckIn, a.deviceDirector)
	a.deviceHandle("POST "+deviceapi.PathInstallStatus, deviceUpdate, a.deviceInstallStatus)
	a.deviceHandle("GET "+deviceapi.PathWait, deviceUpdate, a.deviceWait)
	a.deviceHandle("POST "+deviceapi.PathFailures, deviceUpdate, a.deviceFailures)
	a.mux.HandleFunc("/device/", a.unmatched)
}

// deviceHandle registers one device route with address and device rate limits, certificate
// authentication and the route's access rule.
func (a *API) deviceHandle(pattern string, acc deviceAccess, h deviceHandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	a.deviceRoutes = append(a.deviceRoutes, route{method: method, path: path})
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if acc == deviceCheckIn && r.ProtoMajor == 2 {
			growStack()
		}
		if err := a.serveDevice(w, r, acc, h); err != nil {
			a.fail(w, r, err)
		}
	})
}

// checkInStack is about the stack a check-in needs below deviceHandle, through the store and
// its database driver.
const checkInStack = 8 << 10

// stackSink keeps growStack's frame from being optimised away.
var stackSink byte

// growStack grows the goroutine's stack, once, to hold checkInStack. HTTP/2 serves every
// request on a goroutine of its own, which starts with a small stack; left to itself the stack
// doubled several times on the way down a check-in, each time copying it and adjusting every
// frame above, which cost a tenth of the server's CPU on PostgreSQL at 64 connections. Grown
// here, near the top, there are few frames to move. (HTTP/1.1 serves a connection's requests
// on one goroutine, whose stack stays grown; the long-poll, which holds its goroutine for
// minutes, is left out.)
//
//go:noinline
func growStack() {
	var b [checkInStack]byte
	b[int(stackSink)%len(b)] = 1
	stackSink = b[len(b)-1-int(stackSink)%len(b)]
}

func (a *API) serveDevice(w http.ResponseWriter, r *http.Request, acc deviceAccess, h deviceHandlerFunc) error {
	now := a.now()
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ok, wait := a.addrLimit.Allow(host, now); !ok {
		return tooMany(w, wait, "too many requests from %s", host)
	}
	if acc == deviceOpen || (acc == deviceOptional && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0)) {
		return h(w, r, nil)
	}
	d, err := a.authenticateDevice(r, now, acc != deviceCheckIn)
	if err != nil {
		return err
	}
	if ok, wait := a.deviceLimit.Allow(d.id, now); !ok {
		return tooMany(w, wait, "too many requests from device %s", d.id)
	}
	if acc == deviceNormal && d.profile == ca.ProfileUpdateOnly {
		return forbidden("this device holds an update-only certificate (it runs revoked or unknown software); " +
			"only update endpoints accept it until the device updates and attests again")
	}
	return h(w, r, d)
}

func tooMany(w http.ResponseWriter, wait time.Duration, format string, args ...any) error {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
	return newError(http.StatusTooManyRequests, CodeRateLimited, format, args...)
}

// verified is what checking a device certificate against its tenant's CA established; it holds
// until the certificate expires, so it is cached by the certificate's hash and a keep-alive
// connection pays for the chain verification once.
type verified struct {
	tenantID, tenantName, deviceID string
	profile                        ca.Profile
	notAfter                       time.Time
}

// certCache remembers verified certificates, bounded like the rate limiter: two generations,
// the older dropped when the newer fills.
type certCache struct {
	mu       sync.Mutex
	max      int
	current  map[[32]byte]verified
	previous map[[32]byte]verified
}

func newCertCache(max int) *certCache {
	return &certCache{max: max, current: map[[32]byte]verified{}, previous: map[[32]byte]verified{}}
}

func (c *certCache) get(k [32]byte) (verified, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.current[k]; ok {
		return v, true
	}
	v, ok := c.previous[k]
	return v, ok
}

func (c *certCache) put(k [32]byte, v verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.current) >= c.max {
		c.previous, c.current = c.current, map[[32]byte]verified{}
	}
	c.current[k] = v
}

// connKey is the context key of a connection's connVerified (ConnContext).
type connKey struct{}

// connVerified is what a connection's certificate was verified to be, once a request on it was
// authenticated: the TLS handshake fixes the client certificate for the connection's life (the
// server offers no renegotiation), so later requests on it skip hashing the certificate and the
// shared cache's lock. Only the verification is remembered: whatever can change while the
// connection lasts (the registry, a demotion, the rate limits, the certificate's expiry) is
// checked on every request as before.
type connVerified struct {
	p atomic.Pointer[connEntry] // HTTP/2 serves a connection's requests at once
}

type connEntry struct {
	cert *x509.Certificate
	v    verified
}

// ConnContext gives each connection its slot for the verified certificate; the server sets it
// as its http.Server's ConnContext. Without it every request goes to the shared cache.
func ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connVerified{})
}

// verifiedCert returns what cert was verified to be: from the connection's slot when this
// connection's certificate was verified before, else from the shared cache by the certificate's
// hash, else by the full check.
func (a *API) verifiedCert(r *http.Request, cert *x509.Certificate, now time.Time) (verified, error) {
	slot, _ := r.Context().Value(connKey{}).(*connVerified)
	if slot != nil {
		// The certificate is the very object the handshake parsed, not merely equal bytes.
		if e := slot.p.Load(); e != nil && e.cert == cert {
			return e.v, nil
		}
	}
	key := sha256.Sum256(cert.Raw)
	v, ok := a.certs.get(key)
	if !ok {
		var err error
		if v, err = a.verifyDeviceCert(r.Context(), cert, now); err != nil {
			return verified{}, err
		}
		a.certs.put(key, v)
	}
	if slot != nil {
		slot.p.Store(&connEntry{cert: cert, v: v})
	}
	return v, nil
}

// authenticateDevice checks the client certificate against its tenant's CA and, when lookup is
// set, finds the device in the registry (otherwise the handler does; see deviceCheckIn).
func (a *API) authenticateDevice(r *http.Request, now time.Time, lookup bool) (*device, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, unauthorized("a device certificate is required (mutual TLS)")
	}
	cert := r.TLS.PeerCertificates[0]
	v, err := a.verifiedCert(r, cert, now)
	if err != nil {
		return nil, err
	}
	if !now.Before(v.notAfter) {
		return nil, unauthorized("the device certificate has expired; attest again to renew it")
	}
	d := &device{tenantID: v.tenantID, tenantName: v.tenantName, id: v.deviceID, profile: v.profile, cert: cert}
	if !lookup {
		return d, nil
	}
	// The lookups are short, and made under a context the request's end does not cancel:
	// database/sql derives a cancelable context for each query, and one derived from the
	// request's would leave its trace there (the parent's map of children and its done
	// channel) for as long as the request lasts, minutes on the long-poll.
	ctx := context.WithoutCancel(r.Context())
	rec, err := a.store.DeviceByID(ctx, v.tenantID, v.deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, d.unregistered()
	} else if err != nil {
		return nil, internal(err)
	}
	d.record = rec
	if d.profile == ca.ProfileNormal {
		if err := a.checkDemoted(ctx, d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// checkDemoted treats a normal certificate that a revocation demoted
// (store.UpdatesTx.DemoteRevoked) as update-only: the device runs a release revoked after the
// certificate was issued.
func (a *API) checkDemoted(ctx context.Context, d *device) error {
	demoted, err := a.store.CertificateDemoted(ctx, d.tenantID, d.cert.SerialNumber.Text(16))
	if err != nil {
		return internal(err)
	}
	if demoted {
		d.profile, d.demoted = ca.ProfileUpdateOnly, true
	}
	return nil
}

// verifyDeviceCert does the full check of a certificate not seen before.
func (a *API) verifyDeviceCert(ctx context.Context, cert *x509.Certificate, now time.Time) (verified, error) {
	if len(cert.URIs) != 1 {
		return verified{}, unauthorized("the client certificate is not a Rampart device certificate")
	}
	trustDomain, _, _, err := ca.ParseDeviceURI(cert.URIs[0])
	if err != nil {
		return verified{}, unauthorized("the client certificate is not a Rampart device certificate")
	}
	// The trust domain's first label is the tenant (the whole name in certificates issued before
	// trust domains were DNS names); the tenant's CA then checks the rest.
	tenant, err := a.store.TenantByName(ctx, ca.TenantOf(trustDomain))
	if errors.Is(err, store.ErrNotFound) {
		return verified{}, unauthorized("the client certificate names an unknown tenant")
	} else if err != nil {
		return verified{}, internal(err)
	}
	auth, err := a.cas.Existing(ctx, tenant.ID, tenant.Name)
	if errors.Is(err, store.ErrNotFound) {
		return verified{}, unauthorized("the client certificate was not issued by tenant %s's CA", tenant.Name)
	} else if err != nil {
		return verified{}, internal(err)
	}
	class, id := auth.Classify(cert, now)
	switch class {
	case ca.ClassExpired:
		return verified{}, unauthorized("the device certificate has expired; attest again to renew it")
	case ca.ClassNormal:
		return verified{tenantID: tenant.ID, tenantName: tenant.Name, deviceID: id, profile: ca.ProfileNormal, notAfter: cert.NotAfter}, nil
	case ca.ClassUpdateOnly:
		return verified{tenantID: tenant.ID, tenantName: tenant.Name, deviceID: id, profile: ca.ProfileUpdateOnly, notAfter: cert.NotAfter}, nil
	}
	return verified{}, unauthorized("the client certificate was not issued by tenant %s's CA", tenant.Name)
}

func (a *API) deviceWhoAmI(w http.ResponseWriter, r *http.Request, d *device) error {
	writeJSON(w, http.StatusOK, deviceapi.WhoAmI{DeviceID: d.id, Tenant: d.tenantName, Profile: d.profile.String(),
		NotAfter: d.cert.NotAfter.UTC(), RenewAfter: ca.RenewAt(d.cert).UTC()})
	return nil
}
