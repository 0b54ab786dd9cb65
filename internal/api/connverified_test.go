package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// keptConn is one device's keep-alive connection to the harness's server: every get goes over
// the same TLS connection, as an agent's requests do.
type keptConn struct {
	t      testing.TB
	h      *harness
	client *http.Client
	conns  int // TLS connections opened
}

func (h *harness) keptConn(t testing.TB, cert tls.Certificate) *keptConn {
	tr := h.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	t.Cleanup(tr.CloseIdleConnections)
	return &keptConn{t: t, h: h, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (k *keptConn) get(path string) (int, string) {
	k.t.Helper()
	req, _ := http.NewRequest("GET", k.h.srv.URL+path, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			if !i.Reused {
				k.conns++
			}
		},
	}))
	resp, err := k.client.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConnVerifiedChecksEveryRequest: a connection remembers what its certificate was verified
// to be, and nothing more. On one keep-alive connection, a device whose certificate a revocation
// demoted is update-only on its very next request, and a device its tenant no longer holds
// (here moved to another tenant) is refused on its very next check-in and on every other route.
func TestConnVerifiedChecksEveryRequest(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		h.tenantAdmin("globex")
		h.api.deviceHandle("GET /device/v1/test-normal-only", deviceNormal, func(w http.ResponseWriter, r *http.Request, d *device) error {
			writeJSON(w, 200, map[string]string{"device": d.id})
			return nil
		})
		dev := h.newDevice("default")
		h.updatesFor(h.admin, "lamp")
		tenant, _ := h.store.TenantByName(ctx, "default")
		globex, _ := h.store.TenantByName(ctx, "globex")
		if err := h.api.releases.Assign(ctx, store.System, tenant.ID, dev.id, "lamp", "1.0.0"); err != nil {
			t.Fatal(err)
		}
		cert := h.issue("default", dev, ca.ProfileNormal, time.Now())
		conn := h.keptConn(t, cert)
		for range 2 {
			if status, body := conn.get("/device/v1/test-normal-only"); status != http.StatusOK {
				t.Fatalf("full-access route: %d %s", status, body)
			}
			if status, body := conn.get("/device/v1/director/timestamp.json"); status != http.StatusOK {
				t.Fatalf("check-in: %d %s", status, body)
			}
		}

		// A revocation demotes the certificate: the next request on the connection is update-only.
		db := storetest.DB(h.store)
		if _, err := db.Exec(`INSERT INTO demoted_certificates (serial, tenant_id, device_id, not_after, demoted_at) VALUES ($1, $2, $3, $4, 1)`,
			cert.Leaf.SerialNumber.Text(16), tenant.ID, dev.id, cert.Leaf.NotAfter.UnixMicro()); err != nil {
			t.Fatal(err)
		}
		if status, body := conn.get("/device/v1/test-normal-only"); status != http.StatusForbidden {
			t.Errorf("full-access route after the demotion: %d %s, want 403", status, body)
		}
		if status, body := conn.get("/device/v1/whoami"); status != http.StatusOK || !strings.Contains(body, `"profile":"update-only"`) {
			t.Errorf("whoami after the demotion: %d %s, want update-only", status, body)
		}
		if status, body := conn.get("/device/v1/director/timestamp.json"); status != http.StatusOK {
			t.Errorf("check-in after the demotion (update-only certificates heal): %d %s", status, body)
		}

		// The tenant no longer holds the device: refused at once, on every route.
		if _, err := db.Exec(`UPDATE devices SET tenant_id = $1 WHERE id = $2`, globex.ID, dev.id); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/device/v1/director/timestamp.json", "/device/v1/director/targets.json", "/device/v1/whoami"} {
			if status, body := conn.get(path); status != http.StatusUnauthorized || !strings.Contains(body, "not registered") {
				t.Errorf("%s once the tenant no longer holds the device: %d %s, want 401 not registered", path, status, body)
			}
		}
		if conn.conns != 1 {
			t.Errorf("the requests took %d connections, want them all on one", conn.conns)
		}
	})
}

// TestConnVerifiedIsThatCertificate: a connection's remembered verification answers only for the
// certificate it was made for (the very one the handshake parsed); any other certificate is
// verified by itself, so another tenant's CA gets no identity of the first, and a certificate's
// expiry is checked on every request.
func TestConnVerifiedIsThatCertificate(t *testing.T) {
	h := newHarness(t, "sqlite")
	h.tenantAdmin("globex")
	dev := h.newDevice("default")
	now := time.Now()
	cert := h.issue("default", dev, ca.ProfileNormal, now)
	// globex's CA, claiming the same device: the same device ID in another tenant.
	crossKey := h.issue("globex", fleetDevice{id: dev.id, key: dev.key}, ca.ProfileNormal, now)
	// The same certificate's bytes, parsed again: equal, but not the handshake's object.
	reparsed, err := x509.ParseCertificate(cert.Leaf.Raw)
	if err != nil {
		t.Fatal(err)
	}
	connCtx := ConnContext(context.Background(), nil)
	whoami := func(c *x509.Certificate) (int, string) {
		r := httptest.NewRequest("GET", "/device/v1/whoami", nil).WithContext(connCtx)
		r.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{c}}
		w := httptest.NewRecorder()
		h.api.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if status, body := whoami(cert.Leaf); status != http.StatusOK || !strings.Contains(body, `"tenant":"default"`) {
		t.Fatalf("whoami: %d %s", status, body)
	}
	if e := connCtx.Value(connKey{}).(*connVerified).p.Load(); e == nil || e.cert != cert.Leaf || e.v.deviceID != dev.id {
		t.Fatalf("the connection remembered %+v", e)
	}
	if status, body := whoami(crossKey.Leaf); status != http.StatusUnauthorized || !strings.Contains(body, "not registered with tenant globex") {
		t.Errorf("another tenant's certificate on the connection: %d %s, want 401 not registered with globex", status, body)
	}
	if status, body := whoami(reparsed); status != http.StatusOK || !strings.Contains(body, `"tenant":"default"`) {
		t.Errorf("the certificate parsed again: %d %s", status, body)
	}
	if e := connCtx.Value(connKey{}).(*connVerified).p.Load(); e.cert != reparsed {
		t.Errorf("the connection did not take the newly verified certificate")
	}
	h.api.now = func() time.Time { return cert.Leaf.NotAfter.Add(time.Second) }
	if status, body := whoami(reparsed); status != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Errorf("after the certificate's expiry: %d %s, want 401 expired", status, body)
	}
}
