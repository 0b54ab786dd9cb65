package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/ratelimit"
)

// fleetDevice is a registered device with a key and certificates the tests choose.
type fleetDevice struct {
	id  string
	key *ecdsa.PrivateKey
}

// newDevice registers a claimed device of tenant in product "lamp" (created on demand).
func (h *harness) newDevice(tenantName string) fleetDevice {
	h.t.Helper()
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	sum := sha256.Sum256(der)
	id := hex.EncodeToString(sum[:])
	tn, err := h.store.TenantByName(ctx, tenantName)
	if err != nil {
		h.t.Fatal(err)
	}
	p, err := h.store.ProductByName(ctx, tn.ID, "lamp")
	if err != nil {
		p, _, err = h.store.CreateProduct(ctx, "system", tn.ID, "lamp", "")
		if err != nil {
			h.t.Fatal(err)
		}
	}
	g, _ := h.store.GroupByName(ctx, tn.ID, "lamp", "Production")
	h.insertDevice(tn.ID, p.ID, g.ID, id)
	return fleetDevice{id: id, key: key}
}

// issue returns a certificate for the device from its tenant's CA, issued at "at".
func (h *harness) issue(tenantName string, d fleetDevice, p ca.Profile, at time.Time) tls.Certificate {
	h.t.Helper()
	tn, _ := h.store.TenantByName(context.Background(), tenantName)
	auth, err := h.cas.Authority(context.Background(), tn.ID, tn.Name)
	if err != nil {
		h.t.Fatal(err)
	}
	cert, err := auth.Issue(d.id, &d.key.PublicKey, p, at)
	if err != nil {
		h.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: d.key, Leaf: cert}
}

// selfSigned makes a certificate that claims the device's SPIFFE ID without any CA.
func selfSigned(t testing.TB, tenant string, d fleetDevice) tls.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: d.id},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		URIs: []*neturl.URL{ca.DeviceURI(tenant, d.id, ca.ProfileNormal)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &d.key.PublicKey, d.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: d.key}
}

// deviceGet calls the device API with the given client certificate (nil for none).
func (h *harness) deviceGet(path string, cert *tls.Certificate) (int, string) {
	h.t.Helper()
	tr := h.srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(h.srv.URL + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDeviceAuthentication(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		h.tenantAdmin("globex")
		dev := h.newDevice("default")
		other := h.newDevice("globex")
		unregistered := fleetDevice{id: strings.Repeat("c", 64), key: dev.key}
		now := time.Now()
		h.api.deviceHandle("GET /device/v1/test-normal-only", deviceNormal, func(w http.ResponseWriter, r *http.Request, d *device) error {
			writeJSON(w, 200, map[string]string{"device": d.id})
			return nil
		})
		normal := h.issue("default", dev, ca.ProfileNormal, now)
		updateOnly := h.issue("default", dev, ca.ProfileUpdateOnly, now)
		expired := h.issue("default", dev, ca.ProfileNormal, now.Add(-25*time.Hour))
		globexCert := h.issue("globex", other, ca.ProfileNormal, now)
		unreg := h.issue("default", unregistered, ca.ProfileNormal, now)
		forged := selfSigned(t, "default", dev)
		// A certificate from globex's CA that claims a device of tenant default.
		crossKey := h.issue("globex", fleetDevice{id: dev.id, key: dev.key}, ca.ProfileNormal, now)

		tests := []struct {
			name   string
			path   string
			cert   *tls.Certificate
			status int
			msg    string
		}{
			{"normal certificate", "/device/v1/whoami", &normal, 200, `"profile":"normal"`},
			{"normal on normal-only", "/device/v1/test-normal-only", &normal, 200, dev.id},
			{"update-only on update endpoint", "/device/v1/whoami", &updateOnly, 200, `"profile":"update-only"`},
			{"update-only on normal endpoint", "/device/v1/test-normal-only", &updateOnly, 403, "update-only certificate"},
			{"no certificate", "/device/v1/whoami", nil, 401, "device certificate is required"},
			{"expired certificate", "/device/v1/whoami", &expired, 401, "expired"},
			{"self-signed certificate", "/device/v1/whoami", &forged, 401, "not issued by tenant default's CA"},
			{"unregistered device", "/device/v1/whoami", &unreg, 401, "not registered"},
			{"other tenant's device", "/device/v1/whoami", &globexCert, 200, `"tenant":"globex"`},
			{"other tenant's CA for this tenant's device", "/device/v1/whoami", &crossKey, 401, "not registered with tenant globex"},
			{"unknown device endpoint", "/device/v1/nothing", &normal, 404, "no such API endpoint"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := h.snapshot()
				status, body := h.deviceGet(tt.path, tt.cert)
				if status != tt.status || !strings.Contains(body, tt.msg) {
					t.Fatalf("got %d %s; want %d with %q", status, body, tt.status, tt.msg)
				}
				if status != 200 {
					var eb client.ErrorBody
					if json.Unmarshal([]byte(body), &eb) != nil || eb.Error.Code == "" {
						t.Errorf("refusal is not in the error envelope: %s", body)
					}
					if before["audit_records"] != h.snapshot()["audit_records"] {
						t.Error("a refused device request wrote to the database")
					}
				}
			})
		}
		var who deviceapi.WhoAmI
		_, body := h.deviceGet("/device/v1/whoami", &normal)
		json.Unmarshal([]byte(body), &who)
		if who.DeviceID != dev.id || who.Tenant != "default" || !who.RenewAfter.Before(who.NotAfter) || who.NotAfter.Sub(now) > 24*time.Hour+time.Minute {
			t.Errorf("whoami = %+v", who)
		}
	})
}

// TestDeviceUnregistered holds the deviceCheckIn routes, whose handlers confirm registration in
// their own query, to the answer every other device route gives: a valid certificate of a device
// the registry does not hold, or one from another tenant's CA, is refused for every file.
func TestDeviceUnregistered(t *testing.T) {
	eachDB(t, func(t *testing.T, h *harness) {
		h.tenantAdmin("globex")
		dev := h.newDevice("default")
		now := time.Now()
		unreg := h.issue("default", fleetDevice{id: strings.Repeat("c", 64), key: dev.key}, ca.ProfileUpdateOnly, now)
		crossKey := h.issue("globex", fleetDevice{id: dev.id, key: dev.key}, ca.ProfileNormal, now)
		checked := 0
		for _, rt := range h.api.deviceRoutes {
			if !strings.Contains(rt.path, "/director/") {
				continue
			}
			for _, file := range []string{"timestamp.json", "snapshot.json", "targets.json", "root.json", "1.root.json"} {
				path := strings.Replace(rt.path, "{file}", file, 1)
				for name, cert := range map[string]*tls.Certificate{"unregistered": &unreg, "other tenant's CA": &crossKey} {
					before := h.snapshot()
					status, body := h.deviceGet(path, cert)
					if status != 401 || !strings.Contains(body, "not registered") {
						t.Errorf("%s %s: %d %s; want 401 not registered", name, path, status, body)
					}
					if diff := cmp.Diff(before, h.snapshot()); diff != "" {
						t.Errorf("%s %s changed the database:\n%s", name, path, diff)
					}
					checked++
				}
			}
		}
		if checked == 0 {
			t.Fatal("no director route found")
		}
	})
}

func TestDeviceRateLimits(t *testing.T) {
	h := newHarness(t, "sqlite")
	h.api.deviceLimit = ratelimit.New(0.001, 3, 100)
	dev := h.newDevice("default")
	cert := h.issue("default", dev, ca.ProfileNormal, time.Now())
	for i := range 3 {
		if status, body := h.deviceGet("/device/v1/whoami", &cert); status != 200 {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
	}
	status, body := h.deviceGet("/device/v1/whoami", &cert)
	if status != http.StatusTooManyRequests || !strings.Contains(body, "rate_limited") {
		t.Fatalf("fourth request = %d %s, want 429", status, body)
	}
	// Another device is not limited by the first one's bucket.
	dev2 := h.newDevice("default")
	cert2 := h.issue("default", dev2, ca.ProfileNormal, time.Now())
	if status, _ := h.deviceGet("/device/v1/whoami", &cert2); status != 200 {
		t.Fatalf("second device = %d", status)
	}
	// Per address: everything here comes from 127.0.0.1.
	h.api.addrLimit = ratelimit.New(0.001, 1, 100)
	h.deviceGet("/device/v1/whoami", &cert2)
	if status, _ := h.deviceGet("/device/v1/whoami", &cert2); status != http.StatusTooManyRequests {
		t.Fatalf("address over its limit = %d, want 429", status)
	}
}

func TestCAShow(t *testing.T) {
	h := newHarness(t, "sqlite")
	ctx := context.Background()
	got, err := h.client(h.admin).GetCA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ParseCertificatePEM([]byte(got.PEM))
	if err != nil || !cert.IsCA || got.Tenant != "default" || got.TrustDomain != "default.rampart.internal" || cert.PermittedURIDomains[0] != got.TrustDomain {
		t.Fatalf("CA = %+v, %v", got, err)
	}
	again, _ := h.client(h.admin).GetCA(ctx)
	if again.SHA256 != got.SHA256 {
		t.Error("the tenant CA changed between calls")
	}
	// A device certificate of the tenant verifies against it; another tenant's does not.
	dev := h.newDevice("default")
	leaf := h.issue("default", dev, ca.ProfileNormal, time.Now()).Leaf
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("device certificate does not verify against ca show: %v", err)
	}
	globex := h.tenantAdmin("globex")
	other, _ := h.client(globex).GetCA(ctx)
	if other.SHA256 == got.SHA256 {
		t.Error("two tenants share a CA")
	}
}
