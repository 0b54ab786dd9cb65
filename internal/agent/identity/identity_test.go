package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	agent "github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/agent/identity"
	"github.com/rampartsec/rampart/internal/api"
	"github.com/rampartsec/rampart/internal/attest"
	"github.com/rampartsec/rampart/internal/ca/keeper"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/token"
)

type refs map[string]attest.Reference

func (r refs) References(context.Context, string, string) (map[string]attest.Reference, error) {
	return r, nil
}

// server is a real API on a loopback TLS server with tenant "default" and product "sensor".
type server struct {
	url   string
	store *store.Store
	admin *client.Client
	srv   *httptest.Server
	refs  refs
}

func newServer(t *testing.T) *server {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, "sqlite")
	secret, hash := token.Generate()
	if _, _, _, err := st.Bootstrap(ctx, "default", hash); err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	cas, err := keeper.New(st, kek, time.Now, "")
	if err != nil {
		t.Fatal(err)
	}
	r := refs{}
	srv := httptest.NewUnstartedServer(api.New(api.Deps{Store: st, Logger: slog.New(slog.DiscardHandler), CAs: cas, References: r}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	admin, err := client.New(srv.URL, client.WithToken(secret), client.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateProduct(ctx, client.CreateProductRequest{Name: "sensor"}); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetAttestationPolicy(ctx, "sensor", client.AttestationPolicy{AcceptSoftware: true}); err != nil {
		t.Fatal(err)
	}
	return &server{url: srv.URL, store: st, admin: admin, srv: srv, refs: r}
}

func (s *server) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	return pool
}

// measure records one random image per component class and makes them known releases.
func (s *server) measure(t *testing.T, a agent.Attester, log *agent.MeasurementLog) {
	t.Helper()
	for _, typ := range []deviceapi.EventType{deviceapi.EventBoot, deviceapi.EventOS, deviceapi.EventAgent, deviceapi.EventApplication} {
		img := make([]byte, 64)
		rand.Read(img)
		sum := sha256.Sum256(img)
		if err := log.Measure(context.Background(), a, typ, string(typ), "1.0.0", sum[:]); err != nil {
			t.Fatal(err)
		}
		s.refs[hex.EncodeToString(sum[:])] = attest.Reference{Type: typ, Name: string(typ), Version: "1.0.0"}
	}
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newIdentity(t *testing.T, s *server, stateDir string, c *clock) *identity.Identity {
	t.Helper()
	ctx := context.Background()
	a, err := agent.OpenSoftware(stateDir, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	log, err := agent.OpenLog(filepath.Join(stateDir, "log.json"), "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Events) == 0 {
		s.measure(t, a, log)
	}
	id, err := identity.New(ctx, identity.Config{Server: s.url, RootCAs: s.roots(), Attester: a, Log: log, StateDir: stateDir, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEnrolClaimAttestRenew(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	dir := t.TempDir()
	c := &clock{now: time.Now()}
	id := newIdentity(t, s, dir, c)

	resp, err := id.Enroll(ctx)
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if resp.DeviceID != id.DeviceID() {
		t.Fatalf("enrolled as %s, device is %s", resp.DeviceID, id.DeviceID())
	}
	_, err = id.Attest(ctx)
	if !errors.Is(err, identity.ErrRefused) {
		t.Fatalf("Attest before the claim: %v, want ErrRefused", err)
	}
	// The operator reads the server's sentence once, with no function name or repeat before it.
	if msg, ok := public.Message(err); !ok || !strings.HasPrefix(msg, "attestation refused (") || strings.Count(msg, "attestation refused") != 1 || strings.Contains(msg, "identity.") {
		t.Errorf("the refusal reads %q (public %v)", msg, ok)
	}
	if id.Certificate() != nil {
		t.Fatal("a refused attestation left a certificate")
	}
	if _, err := s.admin.ClaimDevice(ctx, id.DeviceID(), client.ClaimDeviceRequest{Product: "sensor"}); err != nil {
		t.Fatal(err)
	}
	renewed, err := id.RenewIfDue(ctx)
	if err != nil || !renewed {
		t.Fatalf("RenewIfDue without a certificate: %v, %v", renewed, err)
	}
	cert := id.Certificate()
	if cert == nil || id.UpdateOnly() {
		t.Fatalf("certificate after attestation: %v update-only %v", cert, id.UpdateOnly())
	}
	if renewed, err := id.RenewIfDue(ctx); err != nil || renewed {
		t.Errorf("RenewIfDue before half life: %v, %v", renewed, err)
	}

	// A restarted agent finds its certificate and renews over mutual TLS at half life.
	again := newIdentity(t, s, dir, c)
	if again.Certificate() == nil || !again.RenewAt().Equal(id.RenewAt()) {
		t.Fatalf("restarted identity lost its certificate")
	}
	c.now = again.RenewAt().Add(time.Minute)
	if renewed, err := again.RenewIfDue(ctx); err != nil || !renewed {
		t.Fatalf("RenewIfDue at half life: %v, %v", renewed, err)
	}
	if again.Certificate().Leaf.SerialNumber.Cmp(cert.Leaf.SerialNumber) == 0 {
		t.Error("renewal kept the old certificate")
	}

	// Past expiry the certificate is not presented; the agent enrols again and recovers.
	c.now = time.Now().Add(72 * time.Hour)
	if got, err := again.TLSConfig().GetClientCertificate(nil); err != nil || len(got.Certificate) != 0 {
		t.Errorf("expired certificate still presented: %v", err)
	}
	before := again.Certificate().Leaf.SerialNumber
	if _, err := again.Attest(ctx); err != nil {
		t.Fatalf("Attest with an expired certificate: %v", err)
	}
	if again.Certificate().Leaf.SerialNumber.Cmp(before) == 0 {
		t.Error("attesting after expiry kept the expired certificate")
	}
	list, err := s.admin.ListAttestations(ctx, id.DeviceID())
	if err != nil || len(list.Items) < 3 {
		t.Errorf("attestations on the server: %+v, %v", list, err)
	}
}

func TestStoredCertificateForAnotherKeyIsIgnored(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	c := &clock{now: time.Now()}
	first := newIdentity(t, s, t.TempDir(), c)
	if _, err := first.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin.ClaimDevice(ctx, first.DeviceID(), client.ClaimDeviceRequest{Product: "sensor"}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Attest(ctx); err != nil {
		t.Fatal(err)
	}
	// Another device's state folder with this certificate copied in.
	dir := t.TempDir()
	pemBytes := pemOf(first.Certificate().Leaf.Raw)
	if err := writeState(dir, pemBytes); err != nil {
		t.Fatal(err)
	}
	other := newIdentity(t, s, dir, c)
	if other.Certificate() != nil {
		t.Error("identity accepted a certificate for another key")
	}
}

func pemOf(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }

func writeState(dir string, certPEM []byte) error {
	return os.WriteFile(filepath.Join(dir, "device-cert.pem"), certPEM, 0o600)
}

func TestRunKeepsACertificateAndStops(t *testing.T) {
	s := newServer(t)
	id := newIdentity(t, s, t.TempDir(), &clock{now: time.Now()})
	if _, err := id.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin.ClaimDevice(context.Background(), id.DeviceID(), client.ClaimDeviceRequest{Product: "sensor"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- id.Run(ctx) }()
	deadline := time.After(30 * time.Second)
	for id.Certificate() == nil {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-deadline:
			t.Fatal("Run obtained no certificate")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

// TestLocalStateRecordsTheDevice pins what `rampart-agent status` reads without the attester: no
// device before enrolment; the device ID and attester once the server enrolled it; the
// certificate after attestation; and for a folder an older agent enrolled (certificate, no
// record) the ID the certificate names, recorded at the next start.
func TestLocalStateRecordsTheDevice(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	dir := t.TempDir()
	c := &clock{now: time.Now()}
	id := newIdentity(t, s, dir, c)
	if _, err := identity.ReadLocal(dir); !errors.Is(err, identity.ErrNoDevice) {
		t.Fatalf("ReadLocal before enrolment: %v, want ErrNoDevice", err)
	}
	if _, err := id.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := identity.ReadLocal(dir)
	if err != nil || l.Device.DeviceID != id.DeviceID() || l.Device.Attester != deviceapi.KindSoftware || l.Certificate != nil {
		t.Fatalf("ReadLocal after enrolment: %+v, %v", l, err)
	}
	if _, err := s.admin.ClaimDevice(ctx, id.DeviceID(), client.ClaimDeviceRequest{Product: "sensor"}); err != nil {
		t.Fatal(err)
	}
	if _, err := id.Attest(ctx); err != nil {
		t.Fatal(err)
	}
	l, err = identity.ReadLocal(dir)
	if err != nil || l.Certificate == nil || !l.Certificate.NotAfter.Equal(id.Certificate().Leaf.NotAfter) || l.UpdateOnly {
		t.Fatalf("ReadLocal after attestation: %+v, %v", l, err)
	}

	// An older agent's folder: the certificate without the record.
	if err := os.Remove(filepath.Join(dir, "device.json")); err != nil {
		t.Fatal(err)
	}
	l, err = identity.ReadLocal(dir)
	if err != nil || l.Device.DeviceID != id.DeviceID() || l.Device.Attester != "" {
		t.Fatalf("ReadLocal of an unrecorded folder: %+v, %v", l, err)
	}
	newIdentity(t, s, dir, c)
	if l, err = identity.ReadLocal(dir); err != nil || l.Device.Attester != deviceapi.KindSoftware {
		t.Fatalf("the next start did not record the device: %+v, %v", l, err)
	}
}

// A connection made again with the same certificate resumes its TLS session, and the server
// still sees that certificate; a new certificate makes a full handshake of its own, so that a
// resumed connection never presents a certificate the device has replaced.
func TestSessionsResumePerCertificate(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	dir := t.TempDir()
	c := &clock{now: time.Now()}
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	log, err := agent.OpenLog(filepath.Join(dir, "log.json"), "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	s.measure(t, a, log)
	id, err := identity.New(ctx, identity.Config{Server: s.url, RootCAs: s.roots(), Attester: a, Log: log, StateDir: dir, Now: c.Now,
		Sessions: identity.NewSessionCache()})
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	if _, err := id.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin.ClaimDevice(ctx, id.DeviceID(), client.ClaimDeviceRequest{Product: "sensor"}); err != nil {
		t.Fatal(err)
	}
	if _, err := id.Attest(ctx); err != nil {
		t.Fatal(err)
	}
	// whoami over a new connection: whether it resumed.
	whoami := func() bool {
		t.Helper()
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: id.TLSConfig(), DisableKeepAlives: true}}
		resp, err := hc.Get(s.url + deviceapi.PathWhoAmI)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("whoami: %s", resp.Status)
		}
		return resp.TLS.DidResume
	}
	first := id.Certificate().Leaf.SerialNumber.String()
	whoami() // the first connection with this certificate may or may not find a session
	if !whoami() {
		t.Error("a second connection with the same certificate made a full handshake")
	}
	if _, err := id.Attest(ctx); err != nil {
		t.Fatal(err)
	}
	second := id.Certificate().Leaf.SerialNumber.String()
	if second == first {
		t.Fatal("attesting again kept the certificate")
	}
	if whoami() {
		t.Error("the first connection with a new certificate resumed a session of the old one")
	}
	if !whoami() {
		t.Error("a second connection with the new certificate made a full handshake")
	}
	// The server authenticates the device on a resumed connection.
	var who deviceapi.WhoAmI
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: id.TLSConfig()}}
	resp, err := hc.Get(s.url + deviceapi.PathWhoAmI)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&who); err != nil || who.DeviceID != id.DeviceID() || !resp.TLS.DidResume {
		t.Errorf("whoami on a resumed connection: %+v, %v (resumed %v)", who, err, resp.TLS.DidResume)
	}
}

// The agent speaks HTTP/1.1 to the device API even to a server that offers HTTP/2.
func TestTransportSpeaksHTTP1(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	proto := func(tr *http.Transport) string {
		t.Helper()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := proto(&http.Transport{ForceAttemptHTTP2: true}); got != "HTTP/2.0" {
		t.Fatalf("the test server does not offer HTTP/2: %s", got)
	}
	if got := proto(identity.NewTransport()); got != "HTTP/1.1" {
		t.Errorf("identity.NewTransport speaks %s, want HTTP/1.1", got)
	}
}
