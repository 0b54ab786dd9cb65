package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// StartSWTPM manufactures a TPM 2.0 state with an RSA EK certificate issued by a local CA in a
// temporary folder (swtpm_setup with swtpm_localca pointed there, never at /var/lib), starts
// Debian's swtpm on a free loopback port and stops it when the test ends. It returns the
// address for the agent's swtpm:HOST:PORT attester and the local CA's root and issuer
// certificates in PEM: the manufacturer CAs a tenant trusts in tests. A missing swtpm is
// Missing. PCRs belong to the TPM, so each simulated device needs its own swtpm.
func StartSWTPM(t testing.TB) (addr string, manufacturerPEM []byte) {
	t.Helper()
	for _, bin := range []string{"swtpm", "swtpm_setup", "swtpm_localca"} {
		if _, err := exec.LookPath(bin); err != nil {
			Missing(t, bin, "install the Debian packages swtpm and swtpm-tools")
		}
	}
	dir := t.TempDir()
	state, caDir := filepath.Join(dir, "state"), filepath.Join(dir, "ca")
	for _, d := range []string{state, caDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	localca := filepath.Join(dir, "swtpm-localca.conf")
	setup := filepath.Join(dir, "swtpm_setup.conf")
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(localca, fmt.Sprintf("statedir = %[1]s\nsigningkey = %[1]s/signkey.pem\nissuercert = %[1]s/issuercert.pem\ncertserial = %[1]s/certserial\n", caDir))
	write(setup, fmt.Sprintf("create_certs_tool = swtpm_localca\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = /dev/null\nactive_pcr_banks = sha256\n", localca))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "swtpm_setup", "--tpm2", "--tpmstate", state, "--create-ek-cert",
		"--config", setup, "--overwrite").CombinedOutput()
	if err != nil {
		t.Fatalf("swtpm_setup: %v\n%s", err, out)
	}
	for _, f := range []string{"swtpm-localca-rootca-cert.pem", "issuercert.pem"} {
		b, err := os.ReadFile(filepath.Join(caDir, f))
		if err != nil {
			t.Fatal(err)
		}
		manufacturerPEM = append(manufacturerPEM, b...)
	}
	port := freePortPair(t)
	cmd := exec.Command("swtpm", "socket", "--tpm2",
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
		"--tpmstate", "dir="+state, "--flags", "not-need-init,startup-clear")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr, manufacturerPEM
		}
		if time.Now().After(deadline) {
			t.Fatalf("swtpm did not listen on %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePortPair returns a loopback port P such that P and P+1 were free.
func freePortPair(t testing.TB) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no free loopback port pair")
	return 0
}
