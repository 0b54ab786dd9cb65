package ca_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/cli/ca"
	"github.com/rampartsec/rampart/internal/cli/clitest"
)

func TestManufacturers(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(ca.Command), srv, srv.Admin)
	c.Fails("not found", "ca", "manufacturers")

	// Any CA certificate serves as a manufacturer CA here: use the tenant's own.
	bundle := c.OK("ca", "show")
	file := filepath.Join(t.TempDir(), "manufacturers.pem")
	if err := os.WriteFile(file, []byte(bundle), 0o600); err != nil {
		t.Fatal(err)
	}
	// --set says what it trusts now, one line per certificate, and does not echo the PEM.
	out := c.OK("ca", "manufacturers", "--set", file)
	if !strings.HasPrefix(out, "the tenant now trusts 1 TPM manufacturer CA certificates from "+file+"\n  CN=") || strings.Contains(out, "BEGIN") {
		t.Errorf("manufacturers --set printed %q, want a count and the subject", out)
	}
	if out := c.OK("ca", "manufacturers"); out != bundle {
		t.Errorf("manufacturers printed %q, want the bundle", out)
	}
	junk := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	c.Fails("CA certificates in PEM", "ca", "manufacturers", "--set", junk)
}
