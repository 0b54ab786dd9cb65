package keys_test

import (
	"os"
	"path/filepath"
	"testing"

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
