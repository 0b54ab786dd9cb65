package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/certpool"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// start runs a server on a free loopback port and returns its URL; the server stops, and Run's
// error is checked, when the test ends.
func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	addrc := make(chan net.Addr, 1)
	cfg.Ready = func(a net.Addr) { addrc <- a }
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after shutdown = %v, want nil", err)
		}
	})
	select {
	case a := <-addrc:
		return s, "https://" + a.String()
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	return nil, ""
}

func httpsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pool, err := certpool.FromFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestFirstStartAndRestart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{DataDir: dir}
			if kind == "postgres" {
				cfg.Database = storetest.PostgresURL(t)
			}
			s, url := start(t, cfg)
			if !s.FirstStart {
				t.Fatal("first start did not bootstrap")
			}
			tokFile := filepath.Join(dir, AdminTokenFile)
			fi, err := os.Stat(tokFile)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("admin token file: %v, mode %v; want mode 0600", err, fi.Mode())
			}
			secret, _ := os.ReadFile(tokFile)
			hc := httpsClient(t, filepath.Join(dir, ServiceCAFile))
			for _, path := range []string{"/healthz", "/readyz"} {
				if code, body := get(t, hc, url+path); code != 200 || body != "ok\n" {
					t.Errorf("%s = %d %q", path, code, body)
				}
			}
			c, err := client.New(url, client.WithToken(string(secret)), client.WithHTTPClient(hc))
			if err != nil {
				t.Fatal(err)
			}
			who, err := c.WhoAmI(context.Background())
			if err != nil || !who.Service || who.Role != "admin" || who.Tenant != "default" {
				t.Fatalf("WhoAmI = %+v, %v", who, err)
			}
			// The image repository, outside the API, refuses paths that are not text with 400 too
			// (PostgreSQL answered 500 on the tenant lookup).
			for _, p := range []string{"/tuf/%FF/metadata/root.json", "/tuf/default/metadata/%C0%AF", "/tuf/x%00/targets/a"} {
				if code, body := get(t, hc, url+p); code != 400 || !strings.Contains(body, "UTF-8") {
					t.Errorf("GET %s = %d %q, want 400", p, code, body)
				}
			}
			if code, body := get(t, hc, url+"/metrics"); code != 200 || !strings.Contains(body, `rampart_http_requests_total{code="200",route="GET /api/v1/whoami"} 1`) {
				t.Errorf("metrics = %d, missing the whoami count:\n%.2000s", code, body)
			}

			// A second server on the same data keeps the token and CA.
			caBefore, _ := os.ReadFile(filepath.Join(dir, ServiceCAFile))
			s2, url2 := start(t, cfg)
			if s2.FirstStart {
				t.Error("restart bootstrapped again")
			}
			caAfter, _ := os.ReadFile(filepath.Join(dir, ServiceCAFile))
			if string(caBefore) != string(caAfter) {
				t.Error("restart replaced the service CA")
			}
			c2, _ := client.New(url2, client.WithToken(string(secret)), client.WithHTTPClient(hc))
			if _, err := c2.WhoAmI(context.Background()); err != nil {
				t.Errorf("first token after restart: %v", err)
			}
		})
	}
}

func TestOwnCertificate(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "own"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "own.pem"), filepath.Join(dir, "own.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)

	_, url := start(t, Config{DataDir: filepath.Join(dir, "data"), TLSCert: certFile, TLSKey: keyFile})
	if code, _ := get(t, httpsClient(t, certFile), url+"/healthz"); code != 200 {
		t.Fatalf("healthz with own certificate = %d", code)
	}
	if _, err := New(context.Background(), Config{DataDir: filepath.Join(dir, "d2"), Listen: "127.0.0.1:0", TLSCert: certFile}); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("--tls-cert without --tls-key: %v", err)
	}
}

func TestReadyzFailsWithoutDatabase(t *testing.T) {
	s, url := start(t, Config{DataDir: t.TempDir()})
	hc := httpsClient(t, filepath.Join(s.cfg.DataDir, ServiceCAFile))
	s.store.Close()
	if code, _ := get(t, hc, url+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with a closed database = %d, want 503", code)
	}
	if code, _ := get(t, hc, url+"/healthz"); code != 200 {
		t.Errorf("healthz = %d, want 200 (liveness does not depend on the database)", code)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no data", Config{Listen: "127.0.0.1:0"}, "--data is required"},
		{"bad listen", Config{DataDir: t.TempDir(), Listen: "nonsense"}, "--listen"},
		{"bad database", Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Database: "mysql://x"}, "the database URL must start with postgres://"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestDeviceRouting: device paths go to the API without the server's mux, and are answered as
// through it: the API's routes and its answer for an unknown path, the redirect of a path that
// is not clean, the subtree's redirect, and the request metrics' route label.
func TestDeviceRouting(t *testing.T) {
	s, url := start(t, Config{DataDir: t.TempDir()})
	hc := httpsClient(t, filepath.Join(s.cfg.DataDir, ServiceCAFile))
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tt := range []struct {
		path, location string
		status         int
		body           string
	}{
		{path: "/device/v1/whoami", status: http.StatusUnauthorized, body: "mutual TLS"},
		{path: "/device/v1/nothing-here", status: http.StatusNotFound, body: `"code"`},
		{path: "/device/v1//whoami", status: http.StatusTemporaryRedirect, location: "/device/v1/whoami"},
		{path: "/device/v1/../../api/v1/whoami", status: http.StatusTemporaryRedirect, location: "/api/v1/whoami"},
		{path: "/device", status: http.StatusTemporaryRedirect, location: "/device/"},
	} {
		req, _ := http.NewRequest("GET", url+tt.path, nil)
		req.URL.Opaque = tt.path // as sent, not cleaned by the client
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.body) || resp.Header.Get("Location") != tt.location {
			t.Errorf("GET %s = %d, Location %q, %s; want %d, Location %q, containing %q",
				tt.path, resp.StatusCode, resp.Header.Get("Location"), b, tt.status, tt.location, tt.body)
		}
	}
	if _, body := get(t, hc, url+"/metrics"); !strings.Contains(body, `rampart_http_requests_total{code="401",route="GET /device/v1/whoami"} 1`) {
		t.Errorf("the metrics do not count the device request by its route:\n%s", body)
	}
}
