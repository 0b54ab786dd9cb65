package release_test

import (
	"bytes"
	"crypto/tls"
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
	"github.com/rampartsec/rampart/internal/certpool"
	"github.com/rampartsec/rampart/internal/cli/audit"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/image"
	"github.com/rampartsec/rampart/internal/cli/keys"
	"github.com/rampartsec/rampart/internal/cli/product"
	"github.com/rampartsec/rampart/internal/cli/release"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/tuf"
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
	srv := clitest.Start(t, "")
	url := srv.URL
	work := t.TempDir()
	c := clitest.New(t, clitest.Nouns(keys.Command, image.Command, release.Command, product.Command, audit.Command), srv, srv.Admin)
	keysDir := filepath.Join(work, "keys")

	c.Fails("no passphrase given", "keys", "init", "--dir", keysDir)
	c.Env["RAMPART_KEYS_PASSPHRASE"] = "correct horse battery staple"
	c.Fails("--threshold must be", "keys", "init", "--dir", keysDir, "--threshold", "3", "--keys", "2")
	out := c.OK("keys", "init", "--dir", keysDir, "--threshold", "2", "--keys", "3")
	if strings.Count(out, "\nroot ") != 3 || strings.Count(out, "\ntargets ") != 3 {
		t.Errorf("keys init output:\n%s", out)
	}
	c.Fails("already holds key files", "keys", "init", "--dir", keysDir)
	c.Fails("already has update keys", "keys", "init", "--dir", filepath.Join(work, "other"))
	if files, _ := filepath.Glob(filepath.Join(work, "other", "*.key")); len(files) != 0 {
		t.Errorf("a refused keys init left key files: %v", files)
	}

	c.OK("product", "create", "gateway")
	v1 := writeImage(t, filepath.Join(work, "rootfs-1.0.0.img"), 1, nil)
	writeImage(t, filepath.Join(work, "rootfs-1.1.0.img"), 2, v1)
	c.Fails("--component and --version are required", "image", "add", filepath.Join(work, "rootfs-1.0.0.img"))
	id1 := strings.TrimSpace(c.OK("image", "add", filepath.Join(work, "rootfs-1.0.0.img"), "--component", "rootfs", "--version", "1.0.0", "--security-version", "1"))
	if !deviceapi.SHA256Re.MatchString(id1) {
		t.Fatalf("image add printed %q, want an image ID", id1)
	}
	c.Fails("refused: version", "image", "add", filepath.Join(work, "rootfs-1.1.0.img"), "--component", "rootfs", "--version", "latest")
	c.OK("release", "create", "--product", "gateway", "--version", "1.0.0", "--image", id1)
	c.Fails("not found", "release", "create", "--product", "toaster", "--version", "1.0.0", "--image", id1)

	// Too few keys, or the wrong passphrase, sign nothing.
	one := filepath.Join(work, "one-key")
	if err := os.MkdirAll(one, 0o700); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(keysDir, "targets-*.key"))
	b, _ := os.ReadFile(files[0])
	os.WriteFile(filepath.Join(one, filepath.Base(files[0])), b, 0o600)
	// Each refusal is one sentence that says what to do, with no function names in it.
	c.FailsWith("rampart: not enough signing keys: the key folder holds 1 of the 2 targets keys the root requires\n",
		"release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", one)
	c.FailsWith("rampart: no key files (*.key) in "+work+": give the folder `rampart keys init --dir` created\n",
		"release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", work)
	c.Env["RAMPART_KEYS_PASSPHRASE"] = "wrong"
	c.FailsWith("rampart: key file "+filepath.Join(one, filepath.Base(files[0]))+" does not open with this passphrase: give the one `rampart keys init` used (--passphrase-file or RAMPART_KEYS_PASSPHRASE)\n",
		"release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", one)
	c.Env["RAMPART_KEYS_PASSPHRASE"] = "correct horse battery staple"

	var r1 client.Release
	json.Unmarshal([]byte(c.OK("release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", keysDir, "-o", "json")), &r1)
	if r1.State != "signed" {
		t.Fatalf("release 1.0.0 after sign: %+v", r1)
	}
	c.Fails("not in a state", "release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", keysDir)

	id2 := strings.TrimSpace(c.OK("image", "add", filepath.Join(work, "rootfs-1.1.0.img"), "--component", "rootfs", "--version", "1.1.0", "--security-version", "1"))
	c.OK("release", "create", "--product", "gateway", "--version", "1.1.0", "--image", id2)
	var r2 client.Release
	json.Unmarshal([]byte(c.OK("release", "sign", "--product", "gateway", "--version", "1.1.0", "--keys", keysDir, "-o", "json")), &r2)
	if r2.State != "signed" || len(r2.Deltas) != 1 || r2.Deltas[0].From != id1 || r2.Deltas[0].Length*5 > int64(len(v1)) {
		t.Fatalf("release 1.1.0 after sign: %+v", r2)
	}

	c.Fails("--reason are required", "release", "revoke", "--product", "gateway", "--version", "1.0.0")
	c.Fails("--affected takes --product only", "release", "revoke", "--product", "gateway", "--version", "1.0.0", "--affected")
	// No vulnerability report names a release yet: nothing to revoke.
	if out := c.OK("release", "revoke", "--product", "gateway", "--affected", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("revoke --affected with no reports: %s", out)
	}
	if out := c.OK("release", "revoke", "--product", "gateway", "--affected"); out != "no signed release of gateway is named affected by a vulnerability report with a linked fix; nothing revoked\n" {
		t.Errorf("revoke --affected with no reports printed %q, want a sentence rather than a bare header", out)
	}
	// The reason is a line of its own under the release, not a cell of the image table.
	out = c.OK("release", "revoke", "--product", "gateway", "--version", "1.0.0", "--reason", "CVE-2026-1234")
	want := "PRODUCT  VERSION  STATE\ngateway  1.0.0    revoked\nrevoked: CVE-2026-1234\n\n" +
		"COMPONENT  IMAGE VERSION  TYPE       IMAGE             DELTAS\nrootfs     1.0.0          directory  " + id1[:16] + "  0\n"
	if out != want {
		t.Errorf("release revoke printed\n%s\nwant\n%s", out, want)
	}

	// release list: oldest first, state and images, in a table and as JSON.
	c.Fails("--product is required", "release", "list")
	c.Fails("product toaster not found", "release", "list", "--product", "toaster")
	lines := strings.Split(strings.TrimSpace(c.OK("release", "list", "--product", "gateway")), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "VERSION  STATE    IMAGES") ||
		!strings.HasPrefix(lines[1], "1.0.0    revoked  rootfs 1.0.0") || !strings.HasPrefix(lines[2], "1.1.0    signed   rootfs 1.1.0") {
		t.Errorf("release list:\n%s", strings.Join(lines, "\n"))
	}
	var listed []client.Release
	if err := json.Unmarshal([]byte(c.OK("release", "list", "--product", "gateway", "-o", "json")), &listed); err != nil ||
		len(listed) != 2 || listed[1].Version != "1.1.0" || len(listed[1].Images) != 1 || listed[1].Images[0].ID != id2 {
		t.Errorf("release list -o json = %+v, %v", listed, err)
	}
	c.OK("product", "create", "toaster")
	if out := c.OK("release", "list", "--product", "toaster"); out != "product toaster has no releases yet (rampart release create)\n" {
		t.Errorf("release list of a product without releases: %q", out)
	}
	if out := c.OK("audit", "list", "--action", "release.sign"); strings.Count(out, "release.sign") != 2 {
		t.Errorf("audit list --action release.sign:\n%s", out)
	}

	// A TUF client trusting the root from keys init reads the published
	// repository and finds 1.1.0's image with its delta.
	root, err := os.ReadFile(filepath.Join(keysDir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := certpool.FromFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
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

	// go-tuf's stock updater, left at its defaults (consistent snapshots, so targets are fetched as
	// DIR/HASH.NAME under <metadata URL>/targets, TUF 5.7.3), downloads and verifies the image and
	// its delta; so does one pointed at the documented targets URL.
	if !cfg.PrefixTargetsWithHash {
		t.Fatal("go-tuf's default no longer prefixes targets with their hash; this test checks that default")
	}
	want2, _ := os.ReadFile(filepath.Join(work, "rootfs-1.1.0.img"))
	for _, base := range []string{"", url + "/tuf/default/targets/"} {
		for _, target := range []string{tuf.ImagePath(id2), tuf.DeltaPath(id1, id2)} {
			tf, err := u.GetTargetInfo(target)
			if err != nil {
				t.Fatalf("GetTargetInfo(%s): %v", target, err)
			}
			file := filepath.Join(t.TempDir(), "target")
			if _, data, err := u.DownloadTarget(tf, file, base); err != nil {
				t.Errorf("stock go-tuf updater, base %q: DownloadTarget(%s): %v", base, target, err)
			} else if target == tuf.ImagePath(id2) && !bytes.Equal(data, want2) {
				t.Errorf("downloaded image differs from the one added")
			}
		}
	}
	// A hash prefix that is not the target's hash is not served.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for p, want := range map[string]int{
		"/tuf/default/targets/images/" + id2 + "." + id2: 200,
		"/tuf/default/targets/images/" + id1 + "." + id2: 404,
		"/tuf/default/targets/images/" + id2:             200,
	} {
		resp, err := hc.Get(url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", p, resp.StatusCode, want)
		}
	}
}
