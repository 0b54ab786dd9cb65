package attest

import (
	"bytes"
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
	"encoding/pem"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	agent "github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/testenv"
)

const testTenant = "acme"

// component is one released image the fake device measures.
type component struct {
	typ     deviceapi.EventType
	name    string
	version string
	digest  []byte
}

// release returns one component of each class with random content, as a
// product's images would be.
func release(t testing.TB, version string) []component {
	t.Helper()
	var out []component
	for _, c := range []struct {
		typ  deviceapi.EventType
		name string
	}{
		{deviceapi.EventBoot, "u-boot"}, {deviceapi.EventOS, "rootfs"}, {deviceapi.EventAgent, "rampart-agent"}, {deviceapi.EventApplication, "sensor-app"},
	} {
		img := make([]byte, 256)
		if _, err := rand.Read(img); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(img)
		out = append(out, component{c.typ, c.name, version, sum[:]})
	}
	return out
}

// referencesFor derives reference values from released components.
func referencesFor(rels ...[]component) map[string]Reference {
	refs := make(map[string]Reference)
	for _, rel := range rels {
		for _, c := range rel {
			refs[hex.EncodeToString(c.digest)] = Reference{Type: c.typ, Name: c.name, Version: c.version}
		}
	}
	return refs
}

// device is the agent side of a test: an attester and its measurement log.
type device struct {
	a   agent.Attester
	log *agent.MeasurementLog
	dir string
	// platform names the firmware and IMA logs the device sends (none by default).
	platform agent.PlatformLogs
}

func newDevice(t testing.TB, a agent.Attester, dir string, measured []component) *device {
	t.Helper()
	log, err := agent.OpenLog(filepath.Join(dir, "measurements.json"), "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	d := &device{a: a, log: log, dir: dir}
	for _, c := range measured {
		if err := log.Measure(context.Background(), a, c.typ, c.name, c.version, c.digest); err != nil {
			t.Fatalf("Measure %s: %v", c.name, err)
		}
	}
	return d
}

// roundTrip encodes v as the agent would send it and decodes it with the
// server's strict decoder.
func roundTrip[T any](t testing.TB, v any, decode func(*bytes.Reader) (T, error)) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out
}

func decodeEnroll(r *bytes.Reader) (*deviceapi.EnrollRequest, error) {
	return deviceapi.DecodeEnrollRequest(r)
}
func decodeEvidence(r *bytes.Reader) (*deviceapi.Evidence, error) { return deviceapi.DecodeEvidence(r) }

// server is the server side of a test: verifier, nonce store and tenant CA.
type server struct {
	v      *Verifier
	nonces *MemoryNonces
	ca     *ca.Authority
	now    time.Time
}

func newServer(t testing.TB) *server {
	t.Helper()
	kek := make([]byte, ca.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	s := &server{nonces: NewMemoryNonces(), now: time.Now()}
	sealed, err := ca.Create(testTenant, testTenant+".rampart.internal", kek, s.now)
	if err != nil {
		t.Fatal(err)
	}
	if s.ca, err = ca.Open(testTenant, sealed, kek); err != nil {
		t.Fatal(err)
	}
	s.v = NewVerifier(Config{Nonces: s.nonces, Now: func() time.Time { return s.now }})
	return s
}

// enrolled is the outcome of a device's enrolment.
type enrolled struct {
	dev        Device
	resp       *deviceapi.EnrollResponse
	activation []byte // the device's answer, nil for software
}

// enroll runs the enrolment on both sides and claims the device into the
// test tenant.
func (s *server) enroll(t testing.TB, d *device, cas *ManufacturerCAs, preauth func(string) bool) enrolled {
	t.Helper()
	ctx := context.Background()
	req, err := d.a.Enrollment(ctx)
	if err != nil {
		t.Fatalf("Enrollment: %v", err)
	}
	req = roundTrip(t, req, decodeEnroll)
	e, err := CheckEnrollment(req)
	if err != nil {
		t.Fatalf("CheckEnrollment: %v", err)
	}
	if err := e.CheckEK(cas, preauth); err != nil {
		t.Fatalf("CheckEK: %v", err)
	}
	id, err := agent.DeviceID(ctx, d.a)
	if err != nil {
		t.Fatal(err)
	}
	if id != e.DeviceID {
		t.Fatalf("agent device id %s, server computed %s", id, e.DeviceID)
	}
	resp, err := s.v.Begin(ctx, e)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	out := enrolled{
		dev:  Device{ID: e.DeviceID, Tenant: testTenant, Attester: e.Attester, AKPublic: e.AKPublic},
		resp: resp,
	}
	if req.Attester.IsTPM() {
		if len(resp.Credential) == 0 {
			t.Fatal("TPM enrolment without activation challenge")
		}
		if out.activation, err = d.a.Activate(ctx, resp.Credential, resp.Secret); err != nil {
			t.Fatalf("Activate: %v", err)
		}
	}
	return out
}

// collect gathers evidence on the device and passes it through the deviceapi.
func (d *device) collect(t testing.TB, id string, nonce, activation []byte) *deviceapi.Evidence {
	t.Helper()
	ev, err := agent.Collect(context.Background(), d.a, d.log, d.platform, id, nonce, activation)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return roundTrip(t, ev, decodeEvidence)
}

// checkIssued issues the certificate the result grants and proves it works
// for mTLS with the device's certificate key (inside the TPM on TPM
// backends), then classifies it.
func (s *server) checkIssued(t testing.TB, d *device, res *Result) ca.Class {
	t.Helper()
	profile := ca.ProfileNormal
	if res.Grant == GrantUpdateOnly {
		profile = ca.ProfileUpdateOnly
	}
	cert, err := s.ca.Issue(res.DeviceID, res.CertKey, profile, s.now)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	signer, _, err := d.a.CertificateKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(cert.PublicKey, signer.Public()) {
		t.Fatal("issued certificate is not for the device's certificate key")
	}
	mtlsHandshake(t, s.ca.Pool(), tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: signer})
	class, id := s.ca.Classify(cert, s.now)
	if id != res.DeviceID {
		t.Errorf("Classify device id %q, want %q", id, res.DeviceID)
	}
	return class
}

// mtlsHandshake completes a TLS 1.3 handshake in memory where the server
// requires a client certificate from pool.
func mtlsHandshake(t testing.TB, pool *x509.CertPool, clientCert tls.Certificate) {
	t.Helper()
	srvKey, srvCert := selfSigned(t)
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	errc := make(chan error, 1)
	go func() {
		srv := tls.Server(c1, &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS13,
		})
		errc <- srv.Handshake()
	}()
	roots := x509.NewCertPool()
	roots.AddCert(srvCert)
	cli := tls.Client(c2, &tls.Config{
		RootCAs: roots, ServerName: "rampart.test",
		Certificates: []tls.Certificate{clientCert},
		MinVersion:   tls.VersionTLS13,
	})
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	// The server verifies the client certificate after the client's last
	// flight; read once so it completes.
	go cli.Read(make([]byte, 1))
	if err := <-errc; err != nil {
		t.Fatalf("server handshake with device certificate: %v", err)
	}
}

// startSWTPM starts a freshly manufactured swtpm for one device.
func startSWTPM(t testing.TB) (addr string, caPEM []byte) {
	t.Helper()
	return testenv.StartSWTPM(t)
}

func selfSigned(t testing.TB) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "rampart.test"},
		DNSNames:     []string{"rampart.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// selfSignedCA returns an unrelated CA certificate in PEM.
func selfSignedCA(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "Unknown TPM manufacturer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
