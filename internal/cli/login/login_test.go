package login_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/login"
	"github.com/rampartsec/rampart/internal/cli/product"
)

func TestLogin(t *testing.T) {
	srv := clitest.Start(t, "")
	root := clitest.Nouns(login.Command, product.Command)
	c := clitest.New(t, root, srv, "")
	c.Env = map[string]string{} // a fresh shell: nothing set
	c.Fails("no server given", "product", "list")
	c.Fails("login failed: the API token is not valid (HTTP 401)", "login", "--server", srv.URL, "--ca-file", srv.CAFile, "--token", "rpt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	if _, err := os.Stat(c.Config); err == nil {
		t.Fatal("a failed login saved the config")
	}
	c.Fails("holds no PEM certificate", "login", "--server", srv.URL, "--ca-file", "/dev/null", "--token", srv.Admin)
	out := c.OK("login", "--server", srv.URL, "--ca-file", srv.CAFile, "--token", srv.Admin)
	if !strings.Contains(out, "admin of tenant default") {
		t.Errorf("login said %q", out)
	}
	fi, err := os.Stat(c.Config)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v, mode %v; want 0600", err, fi.Mode())
	}
	c.OK("product", "list") // the saved connection is used
}

// TestLoginSavesAbsoluteCAFile logs in with a CA file named relative to the current folder, then
// runs a command from another folder: the saved path must still find the file.
func TestLoginSavesAbsoluteCAFile(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(login.Command, product.Command), srv, "")
	c.Env = map[string]string{}
	t.Chdir(filepath.Dir(srv.CAFile))
	c.OK("login", "--server", srv.URL, "--ca-file", filepath.Base(srv.CAFile), "--token", srv.Admin)
	t.Chdir(t.TempDir())
	c.OK("product", "list")
	b, err := os.ReadFile(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		CAFile string `json:"ca_file"`
	}
	if err := json.Unmarshal(b, &saved); err != nil || saved.CAFile != srv.CAFile {
		t.Fatalf("saved ca_file = %q (%v), want %q", saved.CAFile, err, srv.CAFile)
	}
}
