package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// buildAgent builds this binary (without cgo, as devices get it) into a temporary folder.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rampart-agent")
	cmd := exec.Command(goTool(t), "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// realAgent is one device: a state folder that the rampart-agent binary runs on.
type realAgent struct {
	bin, server, caFile, state string
	id                         string
	mu                         sync.Mutex
	log                        bytes.Buffer // what its `run` printed, for a failing test
}

func (a *realAgent) args(verb ...string) []string {
	return append([]string{"--server", a.server, "--ca-file", a.caFile, "--state", a.state, "--attester", "software"}, verb...)
}

// run runs one verb to its end and returns its standard output.
func (a *realAgent) run(t *testing.T, verb ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(a.bin, a.args(verb...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("rampart-agent %s: %v\n%s%s", strings.Join(verb, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func (a *realAgent) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.Write(p)
}

// start runs `rampart-agent run` (its loop, one-hour interval) until the test ends.
func (a *realAgent) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(a.bin, a.args("--verbose", "run", "--interval", "1h")...)
	cmd.Stdout, cmd.Stderr = a, a
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			a.mu.Lock()
			t.Logf("rampart-agent run (%s):\n%s", a.id[:12], a.log.String())
			a.mu.Unlock()
		}
	})
}

// certificate is the device certificate the agent holds now, with its key.
func (a *realAgent) certificate(t *testing.T) (tls.Certificate, ca.Profile) {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(a.state, "device-cert.pem"), filepath.Join(a.state, "cert.key"))
	if err != nil {
		return tls.Certificate{}, 0
	}
	_, _, p, err := ca.ParseDeviceURI(c.Leaf.URIs[0])
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

// TestRevocationReachesRealAgents runs real rampart-agent processes against a real server.
// Three devices run their loop and one runs `run --once`; all install release 1.0.0 (a root file
// system and the agent binary) and hold normal certificates. The moment `rampart release revoke`
// returns, the certificates the devices hold count as update-only, and each running agent,
// woken on its long-poll, attests again and holds an update-only certificate, without waiting
// for the certificate's half-life. `rampart-agent attest` measures what the device booted (the
// installed slot), so it too gets an update-only certificate.
func TestRevocationReachesRealAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent and runs four processes")
	}
	bin := buildAgent(t)
	f := clitest.StartFleet(t, cli.Root)
	ctx := context.Background()

	// Two releases share the agent binary; only the root file system differs, so revoking
	// 1.0.0 leaves the agent binary known (in 1.1.0) and makes the 1.0.0 root file system the
	// one revoked component.
	agentImage := strings.TrimSpace(f.CLI.OK("image", "add", bin, "--component", "rampart-agent", "--version", "1.0.0"))
	for i, version := range []string{"1.0.0", "1.1.0"} {
		img := make([]byte, 64<<10)
		r := rand.New(rand.NewPCG(uint64(i+1), 7))
		for j := range img {
			img[j] = byte(r.Uint32())
		}
		path := filepath.Join(t.TempDir(), "rootfs.img")
		if err := os.WriteFile(path, img, 0o644); err != nil {
			t.Fatal(err)
		}
		rootfs := strings.TrimSpace(f.CLI.OK("image", "add", path, "--component", "rootfs", "--version", version, "--security-version", "1"))
		f.CLI.OK("release", "create", "--product", "lamp", "--version", version, "--image", rootfs, "--image", agentImage)
		f.CLI.OK("release", "sign", "--product", "lamp", "--version", version, "--keys", f.Keys)
	}
	f.Deploy(t, "1.0.0")

	agents := make([]*realAgent, 4)
	for i := range agents {
		a := &realAgent{bin: bin, server: f.URL, caFile: f.CAFile, state: t.TempDir()}
		a.id = strings.TrimSpace(a.run(t, "enroll"))
		// status names the enrolled device and its attester from the state folder alone,
		// even with --attester tpm (the last one given wins) on a machine without a TPM.
		var st struct {
			DeviceID string `json:"device_id"`
			Attester string `json:"attester"`
		}
		if out := a.run(t, "--attester", "tpm", "status", "--output", "json"); json.Unmarshal([]byte(out), &st) != nil ||
			st.DeviceID != a.id || st.Attester != "software" {
			t.Fatalf("status after enroll: %s, want device %s on software", out, a.id)
		}
		if _, err := f.API.ClaimDevice(ctx, a.id, client.ClaimDeviceRequest{Product: "lamp", Group: "Production"}); err != nil {
			t.Fatal(err)
		}
		agents[i] = a
	}
	running, once := agents[:3], agents[3]
	for _, a := range running {
		a.start(t)
	}
	once.run(t, "run", "--once")

	onRelease := func(a *realAgent) bool {
		d, err := f.API.GetDevice(ctx, a.id)
		if err != nil {
			t.Fatal(err)
		}
		_, p := a.certificate(t)
		return d.CurrentRelease == "1.0.0" && p == ca.ProfileNormal
	}
	for _, a := range agents {
		testenv.WaitFor(t, "device "+a.id[:12]+" on 1.0.0 with a normal certificate", func() bool { return onRelease(a) })
	}
	testenv.WaitFor(t, "the running agents waiting on their long-poll", func() bool { return f.Service.Wake().Waiting() == len(running) })
	held := make([]tls.Certificate, len(agents))
	for i, a := range agents {
		held[i], _ = a.certificate(t)
	}

	f.CLI.OK("release", "revoke", "--product", "lamp", "--version", "1.0.0", "--reason", "CVE-2026-0001")

	// At once: the certificates the devices held when the release was revoked are update-only.
	for i, a := range agents {
		if p := whoami(t, f.URL, f.Roots, held[i]); p != "update-only" {
			t.Errorf("device %s: its certificate from before the revocation counts as %q, want update-only", a.id[:12], p)
		}
	}
	// Promptly: each running agent attests again and holds an update-only certificate.
	for _, a := range running {
		testenv.WaitFor(t, "device "+a.id[:12]+" attesting again after the revocation", func() bool {
			_, p := a.certificate(t)
			return p == ca.ProfileUpdateOnly
		})
		list, err := f.API.ListAttestations(ctx, a.id)
		if err != nil || len(list.Items) == 0 || list.Items[0].Granted != "update-only" || !hasReason(list.Items[0], "revoked_component") {
			t.Errorf("device %s: newest attestation %+v %v, want update-only for a revoked component", a.id[:12], list.Items, err)
		}
	}
	// `attest` measures the booted slot, as `run` does.
	var verdict struct {
		Status     string `json:"status"`
		UpdateOnly bool   `json:"update_only"`
	}
	out := once.run(t, "attest")
	if err := json.Unmarshal([]byte(out), &verdict); err != nil {
		t.Fatalf("attest: %v\n%s", err, out)
	}
	if verdict.Status != "contraindicated" || !verdict.UpdateOnly {
		t.Errorf("rampart-agent attest on revoked 1.0.0: %s", out)
	}
}

func hasReason(a client.Attestation, code string) bool {
	for _, r := range a.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// whoami asks the device API how it sees the certificate.
func whoami(t *testing.T, server string, roots *x509.CertPool, cert tls.Certificate) string {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(server + "/device/v1/whoami")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Profile string `json:"profile"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %s %v", resp.Status, err)
	}
	return body.Profile
}
