package keys_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/keys"
	"github.com/rampartsec/rampart/internal/tuf"
)

func TestKeysInit(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(keys.Command), srv, srv.Admin)
	dir := filepath.Join(t.TempDir(), "keys")
	pass := filepath.Join(t.TempDir(), "pass")
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(pass, []byte("s3cret phrase\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)

	c.Fails("--dir is required", "keys", "init")
	c.Fails("no passphrase given", "keys", "init", "--dir", dir)
	c.Fails("passphrase file is empty", "keys", "init", "--dir", dir, "--passphrase-file", empty)
	c.OK("keys", "init", "--dir", dir, "--passphrase-file", pass, "--keys", "2", "--threshold", "1")

	files, _ := filepath.Glob(filepath.Join(dir, "*.key"))
	if len(files) != 4 {
		t.Fatalf("key files = %v, want 4", files)
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", f, st.Mode().Perm(), err)
		}
	}
	ks, err := tuf.LoadKeys(dir, []byte("s3cret phrase"))
	if err != nil || len(ks.Role("root")) != 2 || len(ks.Role("targets")) != 2 {
		t.Fatalf("LoadKeys: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "root.json")); err != nil {
		t.Errorf("root.json not written: %v", err)
	}
}

func TestKeysRotate(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(keys.Command), srv, srv.Admin)
	c.Env["RAMPART_KEYS_PASSPHRASE"] = "pw"
	dir := filepath.Join(t.TempDir(), "keys")
	c.OK("keys", "init", "--dir", dir, "--keys", "2")
	ks, err := tuf.LoadKeys(dir, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	revoked := ks.Role("targets")[0]

	c.Fails("nothing to rotate", "keys", "rotate", "--dir", dir)
	c.Fails("no root or targets key", "keys", "rotate", "--dir", dir, "--revoke", "ffffffffffff")
	c.Fails("threshold", "keys", "rotate", "--dir", dir, "--targets-threshold", "5")
	out := c.OK("keys", "rotate", "--dir", dir, "--revoke", revoked.ID()[:12], "--add-root", "1")
	if !strings.Contains(out, "root version 2: 3 root keys") || !strings.Contains(out, "1 targets keys") {
		t.Errorf("rotate output: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "revoked", tuf.KeyFileName(revoked))); err != nil {
		t.Errorf("revoked key file not retired: %v", err)
	}
	after, err := tuf.LoadKeys(dir, []byte("pw"))
	if err != nil || len(after.Role("root")) != 3 || after.Key(revoked.ID()) != nil {
		t.Fatalf("keys after rotation: %v", err)
	}
	// The server now holds root version 2 and director root version 2.
	roots, err := client.New(srv.URL, client.WithToken(srv.Admin), client.WithCAFile(srv.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	r, err := roots.TUFRoots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"root": r.Root, "director root": r.DirectorRoot} {
		m, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(b)
		if err != nil || m.Signed.Version != 2 {
			t.Errorf("%s on the server: version %v, %v", name, m.Signed.Version, err)
		}
	}
}
