package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/tuf"
	"github.com/rampartsec/rampart/internal/updatemeta"
)

func writeImage(t *testing.T, path string, seed uint64, base []byte) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 5))
	b := make([]byte, 200<<10)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if base != nil {
		b = append(append([]byte(nil), base...), b[:2000]...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReleaseWalk follows doc/updates.md: keys, images, releases 1.0.0 and
// 1.1.0 signed offline (1.1.0 with a delta), refusals for a wrong
// passphrase and too few keys, a revocation, and a TUF client reading the
// published repository.
func TestReleaseWalk(t *testing.T) {
	dir := t.TempDir()
	url := startServer(t, dir, "")
	work := t.TempDir()
	c := &cli{t: t, config: filepath.Join(t.TempDir(), "config.json"), env: map[string]string{}}
	c.ok("login", "--server", url, "--ca-file", filepath.Join(dir, "service-ca.pem"), "--token-file", filepath.Join(dir, "admin.token"))
	keysDir := filepath.Join(work, "keys")

	c.fails("no passphrase given", "keys", "init", "--dir", keysDir)
	c.env["RAMPART_KEYS_PASSPHRASE"] = "correct horse battery staple"
	c.fails("--threshold must be", "keys", "init", "--dir", keysDir, "--threshold", "3", "--keys", "2")
	out := c.ok("keys", "init", "--dir", keysDir, "--threshold", "2", "--keys", "3")
	if strings.Count(out, "\nroot ") != 3 || strings.Count(out, "\ntargets ") != 3 {
		t.Errorf("keys init output:\n%s", out)
	}
	c.fails("already holds key files", "keys", "init", "--dir", keysDir)
	c.fails("already has update keys", "keys", "init", "--dir", filepath.Join(work, "other"))
	if files, _ := filepath.Glob(filepath.Join(work, "other", "*.key")); len(files) != 0 {
		t.Errorf("a refused keys init left key files: %v", files)
	}

	c.ok("product", "create", "gateway")
	v1 := writeImage(t, filepath.Join(work, "rootfs-1.0.0.img"), 1, nil)
	writeImage(t, filepath.Join(work, "rootfs-1.1.0.img"), 2, v1)
	c.fails("--component and --version are required", "image", "add", filepath.Join(work, "rootfs-1.0.0.img"))
	id1 := strings.TrimSpace(c.ok("image", "add", filepath.Join(work, "rootfs-1.0.0.img"), "--component", "rootfs", "--version", "1.0.0", "--security-version", "1"))
	if !updatemeta.SHA256Re.MatchString(id1) {
		t.Fatalf("image add printed %q, want an image ID", id1)
	}
	c.fails("refused: version", "image", "add", filepath.Join(work, "rootfs-1.1.0.img"), "--component", "rootfs", "--version", "latest")
	c.ok("release", "create", "--product", "gateway", "--version", "1.0.0", "--image", id1)
	c.fails("not found", "release", "create", "--product", "toaster", "--version", "1.0.0", "--image", id1)

	// Too few keys, or the wrong passphrase, sign nothing.
	one := filepath.Join(work, "one-key")
	if err := os.MkdirAll(one, 0o700); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(keysDir, "targets-*.key"))
	b, _ := os.ReadFile(files[0])
	os.WriteFile(filepath.Join(one, filepath.Base(files[0])), b, 0o600)
	c.fails("not enough signing keys", "release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", one)
	c.env["RAMPART_KEYS_PASSPHRASE"] = "wrong"
	c.fails("wrong passphrase", "release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", keysDir)
	c.env["RAMPART_KEYS_PASSPHRASE"] = "correct horse battery staple"

	var r1 client.Release
	json.Unmarshal([]byte(c.ok("release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", keysDir, "-o", "json")), &r1)
	if r1.State != "signed" {
		t.Fatalf("release 1.0.0 after sign: %+v", r1)
	}
	c.fails("not in a state", "release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", keysDir)

	id2 := strings.TrimSpace(c.ok("image", "add", filepath.Join(work, "rootfs-1.1.0.img"), "--component", "rootfs", "--version", "1.1.0", "--security-version", "1"))
	c.ok("release", "create", "--product", "gateway", "--version", "1.1.0", "--image", id2)
	var r2 client.Release
	json.Unmarshal([]byte(c.ok("release", "sign", "--product", "gateway", "--version", "1.1.0", "--keys", keysDir, "-o", "json")), &r2)
	if r2.State != "signed" || len(r2.Deltas) != 1 || r2.Deltas[0].From != id1 || r2.Deltas[0].Length*5 > int64(len(v1)) {
		t.Fatalf("release 1.1.0 after sign: %+v", r2)
	}

	c.fails("--reason are required", "release", "revoke", "--product", "gateway", "--version", "1.0.0")
	out = c.ok("release", "revoke", "--product", "gateway", "--version", "1.0.0", "--reason", "CVE-2026-1234")
	if !strings.Contains(out, "revoked") || !strings.Contains(out, "CVE-2026-1234") {
		t.Errorf("release revoke output:\n%s", out)
	}
	if out := c.ok("audit", "list", "--action", "release.sign"); strings.Count(out, "release.sign") != 2 {
		t.Errorf("audit list --action release.sign:\n%s", out)
	}

	// A TUF client trusting the root from keys init reads the published
	// repository and finds 1.1.0's image with its delta.
	root, err := os.ReadFile(filepath.Join(keysDir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Join(dir, "service-ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg, err := config.New(url+"/tuf/default/metadata", root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir = t.TempDir()
	cfg.LocalTargetsDir = filepath.Join(cfg.LocalMetadataDir, "t")
	if err := cfg.SetDefaultFetcherHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}); err != nil {
		t.Fatal(err)
	}
	u, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tf, err := u.GetTargetInfo(tuf.ImagePath(id2))
	if err != nil {
		t.Fatalf("published repository: %v", err)
	}
	custom, err := tuf.ParseImageCustom(tf)
	if err != nil || len(custom.Deltas) != 1 || custom.Deltas[0].From != id1 {
		t.Fatalf("image 1.1.0 custom = %+v, %v", custom, err)
	}
}
